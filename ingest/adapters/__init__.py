"""City export adapters: one module per format, each turning a raw export into canonical records.

Adapter contract (module-level names in each format module):
- ``NAME``: the ``--format`` value; ``CITY``: the city code written to ``city`` (None: given by caller).
- ``REQUIRED``: list of tuples of accepted spellings for each raw column the format cannot do without.
- ``SIGNATURE``: normalised column names distinctive for the format, used by ``--format auto``.
- ``to_records(raw, city) -> DataFrame``: one output row per raw row, same order, canonical columns
  (see features.schema.RECORD_COLUMNS, without provenance) plus ``_reject_reason`` for rows it could not
  read (e.g. an unparseable timestamp), NA otherwise.
"""

from __future__ import annotations

import importlib
from types import ModuleType

FORMAT_NAMES: tuple[str, ...] = ("la", "nyc", "boston", "chicago", "sf", "open311", "canonical")


def adapter(name: str) -> ModuleType:
    """The adapter module for a format name."""
    if name not in FORMAT_NAMES:
        raise ValueError(f"unknown format {name!r}; expected one of {', '.join(FORMAT_NAMES)}")
    return importlib.import_module(f"ingest.adapters.{name}")
