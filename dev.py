#!/usr/bin/env python3
"""Bootstrap and run eta311 on a fresh machine that has only Python 3.11+ and pip.

    python3 dev.py demo    # set up .venv, then run the end-to-end demo
    python3 dev.py test    # set up .venv (with test tools), then run the whole test suite
    python3 dev.py test --fast   # only the unit and data families, without the tests marked slow

It creates `.venv` next to this file, installs the pinned dependency set from `requirements.lock` plus
the project in editable mode (with uv when it can be installed, plain pip otherwise), and runs the step.
Extra arguments are passed through (`python3 dev.py test -k adapters`, `python3 dev.py demo --rows 200000`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# The fast tier: unit and data tests on tiny frames, sharing one tiny model (tests/conftest.py `tiny_model`);
# what trains more than that model, compiles boosters or starts a server is marked slow.
FAST_TESTS = ("tests/unit", "tests/data", "-m", "not slow")
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".eta311-installed"


def _run(*args: str | Path, **kwargs) -> None:
    subprocess.run([str(a) for a in args], check=True, cwd=ROOT, **kwargs)


def _wanted_stamp() -> str:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "requirements.lock"):
        path = ROOT / name
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def setup() -> None:
    """Create the venv and install the locked dependencies once (again only when the lock changes)."""
    if not PYTHON.exists():
        sys.stderr.write(f"creating {VENV}\n")
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == _wanted_stamp():
        return
    sys.stderr.write("installing eta311 and its pinned dependencies\n")
    targets = ["-r", "requirements.lock", "-e", ".[dev]"]
    try:
        _run(PYTHON, "-m", "pip", "install", "--quiet", "uv")
        _run(BIN / "uv", "pip", "install", "--python", PYTHON, *targets)
    except (subprocess.CalledProcessError, FileNotFoundError):
        sys.stderr.write("uv unavailable; falling back to pip\n")
        _run(PYTHON, "-m", "pip", "install", "--quiet", *targets)
    STAMP.write_text(_wanted_stamp())


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"setup", "demo", "test"}:
        sys.stderr.write(__doc__ or "")
        return 2
    step, rest = argv[0], argv[1:]
    setup()
    # OpenMP threads sleep while waiting (see eta311/settings.py RUNTIME_ENV): spinning ones starve each
    # other on a busy 2-core machine. Set before the child process loads LightGBM.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if step == "demo":
        return subprocess.call([str(BIN / "eta311"), "demo", *rest], cwd=ROOT)
    if step == "test":
        selection = [*FAST_TESTS] if "--fast" in rest else []
        rest = [arg for arg in rest if arg != "--fast"]
        return subprocess.call([str(PYTHON), "-m", "pytest", *selection, *rest], cwd=ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
