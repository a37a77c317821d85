"""Fixtures shared by the integration tests: one small synthetic city with tiny champions, trained once per
session into a real sqlite MLflow store under a temporary ETA311_HOME, and one `eta311 serve` server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`eta311 serve` as a subprocess on loopback, serving tiny champions trained and promoted through the
    CLI into a temporary ETA311_HOME; one server for the session (the HTTP and hardening tests share it)."""
    import httpx

    from features.schema import write_records
    from ingest.synth import synthesize
    from tests.integration.test_service_http import Server, _cli

    folder = tmp_path_factory.mktemp("service")
    home = folder / "home"
    env_overrides = {
        "ETA311_HOME": str(home),
        "BENTOML_HOME": str(home / "bentoml"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "BENTOML_DO_NOT_TRACK": "true",
        "GX_ANALYTICS_ENABLED": "false",
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env_overrides.items():
            mp.setenv(key, value)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        records = synthesize(rows=8000, seed=3, start="2024-01-01", days=60)
        data = folder / "records.parquet"
        write_records(records, data)
        trained = _cli("train", str(data), "--spec", str(write_small_specs(folder / "spec", rounds=5)), "--json")
        _cli("promote", "--force", "--json")  # tiny models may lose to the reference; served all the same
        _cli("db", "upgrade", "--json")  # a real ledger (SQLite in ETA311_HOME): estimates are recorded
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        server = Server(env, folder / "server.log")
        try:
            startup = server.wait_ready()
            with httpx.Client(base_url=server.url, timeout=30) as client:
                yield {
                    "client": client,
                    "url": server.url,
                    "home": home,
                    "env": env,
                    "records": records,
                    "versions": trained["versions"],
                    "startup_s": startup,
                    "folder": folder,
                    "log": folder / "server.log",
                }
        finally:
            server.stop()
