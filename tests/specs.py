"""The repository's model specs made small for tests: few boosting rounds and one thread per booster.

One thread because two LightGBM threads on a busy 2-core machine can stall for minutes; few rounds so a
test trains in seconds. Everything else (objectives, calibration, promotion rules) stays as in models/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from training.spec import SPEC_FILES, load_specs

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


def write_small_specs(folder: Path, rounds: int = 25) -> Path:
    """The small specs as YAML files in `folder`, for `eta311 train --spec FOLDER`; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in SPEC_FILES.values():
        spec = yaml.safe_load((ROOT / "models" / name).read_text())
        for key in BOOSTER_KEYS:
            if key in spec:
                spec[key].update(n_estimators=rounds, num_threads=1)
        (folder / name).write_text(yaml.safe_dump(spec))
    return folder
