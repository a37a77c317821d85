"""Every module of the project against one layer map: nothing imports upward, and a logged MLflow model or a
Bento carries only what prediction needs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Each package and the project packages it may import (besides itself). Top to bottom: the shell; the service
# and the trainer (never each other); the managers' forecast; the ledger; ingest, models, data checks;
# features.
ALLOWED = {
    "eta311": {"serving", "training", "forecast", "ledger", "ingest", "models", "data_checks", "features"},
    "serving": {"forecast", "ledger", "ingest", "models", "features"},
    "training": {"forecast", "ledger", "ingest", "models", "data_checks", "features"},
    "forecast": {"ledger", "models", "features"},
    "ledger": {"ingest", "models", "data_checks", "features"},
    "ingest": {"data_checks", "features"},
    "data_checks": {"features"},
    "models": {"features"},
    "features": set(),
}
PACKAGES = set(ALLOWED)


def _project_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found += [(node.lineno, name.split(".")[0]) for name in names if name.split(".")[0] in PACKAGES]
    return found


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_the_layer_map_covers_every_package_with_python_code() -> None:
    top_level = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert top_level - {"tests", "benchmarks"} <= PACKAGES, top_level - PACKAGES


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_upward(path: Path) -> None:
    package = path.relative_to(ROOT).parts[0]
    upward = [(line, name) for line, name in _project_imports(path) if name != package and name not in ALLOWED[package]]
    assert not upward, f"{path.relative_to(ROOT)} imports upward: {upward}"


def test_a_logged_model_ships_only_prediction_code() -> None:
    from training.tracking import CODE_PATHS, MODEL_CODE

    assert sorted(Path(p).name for p in CODE_PATHS) == ["features", "models"]
    assert Path(MODEL_CODE).parent.name == "models"
