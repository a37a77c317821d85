"""Canonical records adapter: files in eta311's own schema (what `eta311 ingest` and `eta311 synth` write).

A data scientist re-ingests records: to merge earlier ingests, to re-check a file edited by hand, or to
load `synth` output into the same pipeline as a city export. The columns are the canonical ones
(features.schema.RECORD_COLUMNS); Parquet arrives here as strings like every other format (ingest.files), so
the same parsing and the same quarantine rules apply.

Mapping choices, and why:
- Values are kept as written (only trimmed): they were normalised when first ingested.
- Timestamps carry their UTC offset; naive ones (a hand-made CSV) are UTC, the schema's clock.
- Provenance is rewritten by ingest (source_format ``canonical``, this file, this row) so a quarantined row
  can be traced to the file it came from; the earlier provenance stays in the quarantine's raw JSON.
- ``city`` missing in a row is filled from ``--city`` when given; otherwise the row is quarantined.
"""

from __future__ import annotations

import pandas as pd

from features.schema import RECORD_DTYPES, conform
from ingest.adapters.common import (
    REJECT_COLUMN,
    clean_text,
    column_index,
    normalise_name,
    parse_local_time,
    pick,
    to_float,
    unparseable,
)

NAME = "canonical"
CITY: str | None = None

REQUIRED: list[tuple[str, ...]] = [("request_id",), ("city",), ("created_at",), ("status",)]

# Names of eta311's own schema that no city export uses.
SIGNATURE: set[str] = {
    normalise_name(c)
    for c in ("request_id", "created_at", "closed_at", "sla_target_at", "source_format", "source_file", "source_row")
}

_PROVENANCE = ("source_format", "source_file", "source_row")
OUTPUT_DTYPES: dict[str, str] = {k: v for k, v in RECORD_DTYPES.items() if k not in _PROVENANCE}
TIMES = ("created_at", "closed_at", "sla_target_at")
FLOATS = ("latitude", "longitude")


def score(columns: list[str]) -> float:
    """Share of the canonical signature present (0..1)."""
    present = {normalise_name(c) for c in columns}
    return len(SIGNATURE & present) / len(SIGNATURE)


def to_records(raw: pd.DataFrame, city: str | None = None) -> pd.DataFrame:
    """Canonical rows read back from strings (without provenance) plus the reject reason, same order and index."""
    index = column_index(raw)
    columns: dict[str, pd.Series] = {}
    reason = pd.Series(pd.NA, index=raw.index, dtype="str")
    for name in OUTPUT_DTYPES:
        values = pick(raw, index, name)
        if name in TIMES:
            columns[name] = parse_local_time(values, "UTC", "ISO8601")
            reason = reason.mask(reason.isna() & unparseable(values, columns[name]), f"unparseable_{name}")
        elif name in FLOATS:
            columns[name] = to_float(values)
        else:
            columns[name] = clean_text(values)
    if city is not None:
        columns["city"] = columns["city"].fillna(city)
    frame = conform(pd.DataFrame(columns, index=raw.index), OUTPUT_DTYPES).set_axis(raw.index)
    return frame.assign(**{REJECT_COLUMN: reason})
