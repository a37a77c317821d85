# eta311 — `make help` lists the targets. Everything runs inside .venv, which `dev.py` creates.
.DEFAULT_GOAL := help
PY := .venv/bin/python

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install: ## create .venv with the locked dependencies and the project (editable)
	python3 dev.py setup

demo: ## the end-to-end demo (README's first command)
	python3 dev.py demo

test: ## the whole test suite (README's second command; what CI runs)
	python3 dev.py test

test-fast: ## unit and data tests without the slow ones, one tiny model (under 2 minutes)
	python3 dev.py test --fast

lint: install ## ruff lint and format check
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

lock: ## re-resolve requirements.lock from pyproject.toml
	.venv/bin/uv pip compile pyproject.toml --extra dev -o requirements.lock --python-version 3.11

bench: install ## run the benchmark scripts (prints medians and ratios)
	for script in benchmarks/bench_*.py; do $(PY) $$script || exit 1; done
