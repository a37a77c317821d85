"""Open311 GeoReport v2 adapter: a ``requests.json`` list (GET /requests.json) read into canonical records.

GeoReport v2 is a standard any city can serve, so the adapter has no city of its own: ``to_records`` takes the
city code from its ``city`` argument (default ``open311``, an unknown city: UTC clock, no bounding box).

Mapping choices, and why:
- ``request_type`` is ``service_name``, or ``service_code`` when a server leaves the name out.
- ``department`` is ``agency_responsible``; ``sla_target_at`` is ``expected_datetime``, the server's own
  promise (the GeoReport equivalent of Boston's TARGET_DT).
- ``closed_at`` is ``updated_datetime`` for ``closed`` requests only: the spec has no close time, and the last
  update of a closed request is when it was closed. For an open request the update says nothing about closing.
- ``status_notes`` is written while the request is worked (an outcome) and is not read. The spec has no
  channel, so ``source`` stays missing.
- Timestamps carry their offset (``2024-03-04T09:15:00-05:00``) and are converted to UTC as given; a value
  without an offset is read as wall time in the city's time zone (UTC for an unknown city).
"""

from __future__ import annotations

import logging

import pandas as pd

from features.schema import RECORD_DTYPES, city_timezone, conform
from ingest.adapters.common import (
    REJECT_COLUMN,
    clean_id,
    clean_text,
    clean_zip,
    column_index,
    map_values,
    normalise_name,
    parse_local_time,
    pick,
    to_float,
    unparseable,
)

log = logging.getLogger(__name__)

NAME = "open311"
CITY: str | None = None
DEFAULT_CITY = "open311"

REQUIRED: list[tuple[str, ...]] = [
    ("service_request_id",),
    ("requested_datetime",),
    ("status",),
    ("service_name", "service_code"),
]

# The spec's fields that no city's own export uses under these names.
SIGNATURE: set[str] = {
    normalise_name(c)
    for c in (
        "service_request_id",
        "service_name",
        "service_code",
        "requested_datetime",
        "updated_datetime",
        "expected_datetime",
        "agency_responsible",
        "service_notice",
        "status_notes",
        "address_id",
        "media_url",
    )
}
# Servers may omit optional fields (null ones often vanish from the JSON); the core alone still identifies it.
CORE: frozenset[str] = frozenset(
    normalise_name(c) for c in ("service_request_id", "service_code", "requested_datetime", "status")
)
VARIANTS: tuple[frozenset[str], ...] = (frozenset(SIGNATURE), CORE)

# GeoReport v2 defines open and closed; a few servers add in-between states, which are still open.
STATUSES: dict[str, str] = {
    "open": "open",
    "closed": "closed",
    "acknowledged": "open",
    "in_progress": "open",
    "in progress": "open",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}

OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})$"
_PROVENANCE = ("source_format", "source_file", "source_row")
OUTPUT_DTYPES: dict[str, str] = {k: v for k, v in RECORD_DTYPES.items() if k not in _PROVENANCE}


def score(columns: list[str]) -> float:
    """Share of the GeoReport v2 signature present, best of the full field list and the core (0..1)."""
    present = {normalise_name(c) for c in columns}
    return max(len(variant & present) / len(variant) for variant in VARIANTS)


def parse_times(values: pd.Series, timezone: str) -> pd.Series:
    """ISO 8601 timestamps to UTC: offsets honoured (they may differ row to row), naive ones read as local."""
    text = clean_text(values)
    has_offset = text.str.contains(OFFSET, regex=True, na=False)
    aware = pd.to_datetime(text.where(has_offset), utc=True, errors="coerce", format="ISO8601")
    aware = aware.astype("datetime64[us, UTC]")
    naive = parse_local_time(text.where(~has_offset), timezone, "ISO8601")
    return aware.fillna(naive)


def to_records(raw: pd.DataFrame, city: str | None = None) -> pd.DataFrame:
    """GeoReport v2 requests as canonical records (without provenance) plus the reject reason, same index."""
    code = city or DEFAULT_CITY
    index = column_index(raw)
    timezone = city_timezone(code)

    created_raw = pick(raw, index, "requested_datetime")
    updated_raw = pick(raw, index, "updated_datetime")
    expected_raw = pick(raw, index, "expected_datetime")
    created = parse_times(created_raw, timezone)
    updated = parse_times(updated_raw, timezone)
    expected = parse_times(expected_raw, timezone)

    status = map_values(clean_text(pick(raw, index, "status")).str.lower(), STATUSES)
    is_closed = (status == "closed").fillna(False).astype(bool)
    name = clean_text(pick(raw, index, "service_name"))
    columns = {
        "request_id": clean_id(pick(raw, index, "service_request_id")),
        "city": pd.Series(code, index=raw.index, dtype="str"),
        "created_at": created,
        "request_type": name.fillna(clean_text(pick(raw, index, "service_code"))),
        "description": clean_text(pick(raw, index, "description")),
        "latitude": to_float(pick(raw, index, "lat")),
        "longitude": to_float(pick(raw, index, "long")),
        "zip_code": clean_zip(pick(raw, index, "zipcode")),
        "closed_at": updated.where(is_closed),
        "status": status,
        "department": clean_text(pick(raw, index, "agency_responsible")),
        "sla_target_at": expected,
    }
    frame = conform(pd.DataFrame(columns, index=raw.index), OUTPUT_DTYPES).set_axis(raw.index)

    reason = pd.Series(pd.NA, index=raw.index, dtype="str")
    reason = reason.mask(unparseable(expected_raw, expected), "unparseable_sla_target_at")
    reason = reason.mask(unparseable(updated_raw, updated) & is_closed, "unparseable_closed_at")
    reason = reason.mask(unparseable(created_raw, created), "unparseable_created_at")
    return frame.assign(**{REJECT_COLUMN: reason})
