"""The file names of a model bundle on disk, where a bundle sits inside an imported model, and the name of
the latest workload snapshot. Imports nothing heavy, so the service's process manager can use it without
loading LightGBM."""

from __future__ import annotations

from pathlib import Path

BUNDLE_FILE = "bundle.json"
SNAPSHOT_FILE = "snapshot.parquet"  # the workload snapshot saved inside a bundle (as of its training data)
# Today's workload table in ETA311_HOME/snapshots: written by `eta311 train` and `eta311 snapshot`, read by
# `eta311 serve`.
LATEST_SNAPSHOT_FILE = "latest.parquet"


def bundle_folder(path: str | Path) -> Path:
    """The folder holding bundle.json inside an imported model (MLflow's layout nests it)."""
    path = Path(path)
    if (path / BUNDLE_FILE).is_file():
        return path
    nested = sorted(path.rglob(BUNDLE_FILE))
    if not nested:
        raise FileNotFoundError(f"{path}: no {BUNDLE_FILE}")
    return nested[0].parent
