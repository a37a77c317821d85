"""Helpers shared by the test families: small model specs, a throwaway ETA311_HOME, a free loopback port.

Small specs have few boosting rounds (a test trains in seconds) and one thread per booster (two LightGBM
threads on a busy 2-core machine can stall for minutes); everything else (objectives, calibration,
promotion rules) stays as in models/.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from models.spec import SPEC_FILES, load_specs

ROOT = Path(__file__).resolve().parents[1]
BOOSTER_KEYS = ("params", "horizon_params")


def small_specs(rounds: int = 25, threads: int = 1) -> dict[str, dict[str, Any]]:
    """Both specs as `load_specs` returns them, with `rounds` boosting rounds and `threads` threads."""
    specs = load_specs()
    for spec in specs.values():
        for key in BOOSTER_KEYS:
            if key in spec:
                spec[key] = {**spec[key], "n_estimators": rounds, "num_threads": threads}
    return specs


def with_workload(specs: dict[str, dict[str, Any]], monotone_rounds: int = 20) -> dict[str, dict[str, Any]]:
    """The time-to-close spec with the workload switched back on, in the monotone second stage (the default
    spec leaves it out), so the monotone machinery is exercised: a bigger backlog never shortens the estimate."""
    spec = specs["time_to_close"]
    spec["exclude_features"] = [p for p in spec.get("exclude_features", []) if p != "wl_"]
    spec["monotone_rounds"] = monotone_rounds
    return specs


def write_small_specs(folder: Path, rounds: int = 25) -> Path:
    """The small specs as YAML files in `folder`, for `eta311 train --spec FOLDER`; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in SPEC_FILES.values():
        spec = yaml.safe_load((ROOT / "models" / "specs" / name).read_text())
        for key in BOOSTER_KEYS:
            if key in spec:
                spec[key].update(n_estimators=rounds, num_threads=1)
        (folder / name).write_text(yaml.safe_dump(spec))
    return folder


QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "BENTOML_DO_NOT_TRACK": "true", "GX_ANALYTICS_ENABLED": "false"}


def use_home(patch: pytest.MonkeyPatch, home: Path) -> Path:
    """Point ETA311_HOME at `home` (its sqlite MLflow store included) with telemetry off."""
    patch.setenv("ETA311_HOME", str(home))
    patch.delenv("MLFLOW_TRACKING_URI", raising=False)
    patch.delenv("MLFLOW_RUN_ID", raising=False)
    for key, value in QUIET_ENV.items():
        patch.setenv(key, value)
    return home


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (tests only ever listen on loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
