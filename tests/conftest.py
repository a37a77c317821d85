"""Shared test fixtures: where the real city exports live, and a throwaway ETA311_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import use_home

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SHARED_REAL = ROOT.parent / "shared" / "data" / "real"


def pytest_configure(config: pytest.Config) -> None:
    """OpenMP threads wait passively (eta311.settings.RUNTIME_ENV), set before any test imports LightGBM."""
    from eta311.settings import RUNTIME_ENV

    for key, value in RUNTIME_ENV.items():
        os.environ.setdefault(key, value)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """../shared/data/real, or skip the test cleanly when this machine does not have it."""
    if not SHARED_REAL.is_dir():
        pytest.skip("../shared/data/real is not present on this machine")
    return SHARED_REAL


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def eta_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ETA311_HOME for one test, with telemetry off."""
    return use_home(monkeypatch, tmp_path / "eta311_home")
