"""The file names of a model bundle on disk, and where a bundle sits inside an imported model. Imports
nothing heavy, so the service's process manager can use it without loading LightGBM."""

from __future__ import annotations

from pathlib import Path

BUNDLE_FILE = "bundle.json"
SNAPSHOT_FILE = "snapshot.parquet"


def bundle_folder(path: str | Path) -> Path:
    """The folder holding bundle.json inside an imported model (MLflow's layout nests it)."""
    path = Path(path)
    if (path / BUNDLE_FILE).is_file():
        return path
    nested = sorted(path.rglob(BUNDLE_FILE))
    if not nested:
        raise FileNotFoundError(f"{path}: no {BUNDLE_FILE}")
    return nested[0].parent
