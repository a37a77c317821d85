"""Fixtures shared by the forecast and dashboard tests: one small synthetic city with tiny champions, trained
once per session into a real sqlite MLflow store under a temporary ETA311_HOME."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import use_home, write_small_specs

ROOT = Path(__file__).resolve().parents[2]
# Local midnight: the forecast's 24-hour days are then calendar days.
AS_OF = pd.Timestamp("2024-04-10", tz="America/Los_Angeles").tz_convert("UTC")


@pytest.fixture(scope="session")
def forecast_city_trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 40k-request city over 110 days; the data file is what was known at AS_OF (later outcomes censored);
    champions trained on it with `eta311 train` + `eta311 promote`, which also write the forecast inputs."""
    from features.schema import write_records
    from forecast.departments import view_at
    from ingest.synth import synthesize
    from tests.integration.test_training_mlflow import run_cli

    folder = tmp_path_factory.mktemp("forecast")
    home = folder / "home"
    full = synthesize(rows=40_000, seed=21, start="2024-01-01", days=110)
    data = folder / "records.parquet"
    write_records(view_at(full, AS_OF), data)
    spec = write_small_specs(folder / "spec", rounds=30)
    with pytest.MonkeyPatch.context() as patch:
        use_home(patch, home)
        run_cli("train", str(data), "--spec", str(spec), "--json")
        run_cli("promote", "--force", "--json")
    return {"home": home, "full": full, "data": data, "folder": folder}


@pytest.fixture
def forecast_city(forecast_city_trained: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The trained city with ETA311_HOME and MLflow pointed at its store for this test."""
    from models.registry import configure_tracking

    home = forecast_city_trained["home"]
    use_home(monkeypatch, home)
    configure_tracking(f"sqlite:///{home / 'mlflow.db'}", home / "mlartifacts")
    return forecast_city_trained
