"""Model specs: the YAML files in models/specs/ (objective, parameters, calibration, promotion rule)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEFAULT_SPEC_DIR = Path(__file__).resolve().parent / "specs"
SPEC_FILES = {"time_to_close": "time_to_close.yaml", "department": "department.yaml"}


class SpecError(ValueError):
    """A spec file is missing or lacks a key the trainer needs."""


_REQUIRED = {
    "time_to_close": (
        "name",
        "quantiles",
        "horizons_days",
        "follow_up_days",
        "calibration",
        "split",
        "params",
        "horizon_params",
        "promotion",
    ),
    "department": ("name", "min_class_count", "type_dropout", "params", "promotion"),
}


def load_specs(spec_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """Both model specs from `spec_dir` (default: the packaged models/specs/), validated for required keys."""
    folder = Path(spec_dir) if spec_dir else DEFAULT_SPEC_DIR
    specs = {}
    for kind, filename in SPEC_FILES.items():
        path = folder / filename
        if not path.is_file():
            raise SpecError(f"{path}: model spec not found")
        spec = yaml.safe_load(path.read_text()) or {}
        missing = [key for key in _REQUIRED[kind] if key not in spec]
        if missing:
            raise SpecError(f"{path}: missing key(s) {', '.join(missing)}")
        specs[kind] = spec
    return specs
