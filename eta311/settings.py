"""Where eta311 keeps its state: one folder, ETA311_HOME (default ~/.eta311), and what lives in it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

ENV_PREFIX = "ETA311_"
DEFAULT_HOME = Path("~/.eta311")
# Offline by default: no telemetry calls from the libraries we embed.
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "BENTOML_DO_NOT_TRACK": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
# OpenMP threads (LightGBM, scikit-learn) sleep instead of spinning while they wait. On a 2-core machine
# with anything else running, spinning threads starve each other: a 2-thread LightGBM fit measured 4.7x
# slower than with passive waiting (24.3 s vs 5.2 s, same data, same load). Read when libgomp loads, so it
# is set before the first model library is imported (here, in dev.py for tests, and in tests/conftest.py).
RUNTIME_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


@dataclass(frozen=True)
class Settings:
    """Paths and URIs derived from ETA311_HOME. Built once in the CLI and passed down, never global."""

    home: Path

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(home=Path(env.get(f"{ENV_PREFIX}HOME", str(DEFAULT_HOME))).expanduser().resolve())

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def docs_dir(self) -> Path:
        return self.home / "data_docs"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def snapshots_dir(self) -> Path:
        return self.home / "snapshots"

    @property
    def bentoml_home(self) -> Path:
        return self.home / "bentoml"

    @property
    def compiled_dir(self) -> Path:
        """Boosters compiled for this CPU (models.compiled), keyed by content: safe to delete."""
        return self.home / "compiled"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def tracking_uri(self) -> str:
        """MLFLOW_TRACKING_URI when set, else a sqlite store inside ETA311_HOME."""
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.home / 'mlflow.db'}"

    def ensure(self) -> Settings:
        self.home.mkdir(parents=True, exist_ok=True)
        return self


def configure_runtime(level: int = logging.INFO) -> None:
    """Logging and offline switches, set once at start-up by the CLI."""
    for key, value in (QUIET_ENV | RUNTIME_ENV).items():
        os.environ.setdefault(key, value)
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
