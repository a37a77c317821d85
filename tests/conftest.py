"""Shared test fixtures: where the real city exports live, a throwaway ETA311_HOME, the one tiny model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="session")
def tiny_model() -> dict[str, Any]:
    """The one tiny trained model of a test run, for the tests that need a model but not its quality:
    6,000 synthetic LA requests over 45 days, the small specs at 40 rounds (more than one 34-tree block, which
    the compiled-booster tests need). Keys: records, result (the TrainResult), bundles, snapshot, as_of."""
    from ingest.synth import synthesize
    from tests.helpers import small_specs
    from training.train import train_models

    records = synthesize(rows=6000, seed=5, start="2024-01-01", days=45)
    result = train_models(records, small_specs(rounds=40))
    prep = result.prepared
    snapshot = prep.pipeline.workload_snapshot(prep.records, prep.extracted_at)
    return {
        "records": records,
        "result": result,
        "bundles": result.bundles,
        "snapshot": snapshot,
        "as_of": prep.extracted_at,
    }


@pytest.fixture
def eta_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ETA311_HOME for one test, with telemetry off."""
    return use_home(monkeypatch, tmp_path / "eta311_home")
