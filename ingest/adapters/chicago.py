"""Chicago 311 adapter: the Socrata service-request export (sr_number, sr_type, owner_department, origin...).

Mapping choices, and why:
- ``department`` is ``owner_department`` (who works the request), not ``created_department`` (who typed it).
- ``council_district`` is the ward; ``neighborhood`` the community-area number (1-77) as text.
- ``description``: the export has no free text, so it stays missing.
- Calls without a place (all "311 INFORMATION ONLY CALL" rows in the 2021 file) are geocoded to the 311
  call centre, 2111 W Lexington St (41.871831, -87.679846; ward 28, community area 28, ZIP 60612). That is a
  placeholder, like Boston's City Hall point: coordinates, ZIP, ward and community area are set to missing,
  or the call centre's ward would look like the busiest place in the city.
- Duplicates (``duplicate`` True, ``parent_sr_number`` set) are kept with the status Chicago gives them. A
  duplicate is closed when its parent is closed (in the 2021 file all 73 pairs present close within one
  second of each other), so its closed time is exactly what the resident who filed it waited for. Marking
  them cancelled would throw away real waits; ``near_duplicate`` in the row rules already counts repeats.
- ``Canceled`` is ``cancelled`` (not a resolution; excluded from time-to-close labels).
- Clocks are ISO local America/Chicago wall time without an offset (``2021-01-01T00:00:09.000``).
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

NAME = "chicago"
CITY = "chicago"

REQUIRED: list[tuple[str, ...]] = [
    ("sr_number", "SR_NUMBER"),
    ("created_date", "CREATED_DATE"),
    ("closed_date", "CLOSED_DATE"),
    ("status", "STATUS"),
    ("sr_type", "SR_TYPE"),
    ("owner_department", "OWNER_DEPARTMENT"),
]

SIGNATURE: set[str] = {
    normalise_name(c)
    for c in (
        "sr_number",
        "sr_type",
        "sr_short_code",
        "owner_department",
        "origin",
        "created_date",
        "closed_date",
        "ward",
        "community_area",
        "street_address",
    )
}

# origin -> canonical source. spot-open311-* (Chicago Works, SeeClickFix...) are apps talking Open311.
SOURCES: dict[str, str] = {
    "Phone Call": "phone",
    "Internet": "web",
    "Mobile Device": "mobile_app",
    "Salesforce Mobile App": "mobile_app",
    "Open311 Interface": "mobile_app",
    "Mass Entry": "integration",
    "Alderman's Office": "elected_office",
    "E-Mail": "email",
    "Email": "email",
    "Walk In": "walk_in",
    "Generated In House": "crew",
}
OPEN311_PREFIX = "spot-open311-"

# The 311 call centre (2111 W Lexington St), where calls without a place are geocoded.
PLACEHOLDER_POINT: tuple[float, float] = (41.871831, -87.679846)
PLACEHOLDER_TOLERANCE = 5e-5  # degrees, about 5 m

STATUSES: dict[str, str] = {
    "completed": "closed",
    "completed - dup": "closed",
    "canceled": "cancelled",
    "cancelled": "cancelled",
    "open": "open",
    "open - dup": "open",
}

_PROVENANCE = ("source_format", "source_file", "source_row")
OUTPUT_DTYPES: dict[str, str] = {k: v for k, v in RECORD_DTYPES.items() if k not in _PROVENANCE}


def score(columns: list[str]) -> float:
    """Share of the Chicago signature present (0..1)."""
    present = {normalise_name(c) for c in columns}
    return len(SIGNATURE & present) / len(SIGNATURE)


def parse_times(values: pd.Series, timezone: str) -> pd.Series:
    """Chicago clocks (ISO, local); mixed parsing only for what ISO cannot read."""
    parsed = parse_local_time(values, timezone, "ISO8601")
    left = unparseable(values, parsed)
    if left.any():
        parsed = parsed.fillna(parse_local_time(values.where(left), timezone))
    return parsed


def map_source(origin: pd.Series) -> pd.Series:
    """Chicago origins to canonical sources; every ``spot-open311-<app>`` origin is a mobile app."""
    text = clean_text(origin)
    mapped = map_values(text, SOURCES)
    app = text.str.lower().str.startswith(OPEN311_PREFIX).fillna(False).astype(bool)
    return mapped.mask(app, "mobile_app")


def placeholder_location(latitude: pd.Series, longitude: pd.Series) -> pd.Series:
    """True where the point is the 311 call centre placeholder (no real location given)."""
    p_lat, p_lon = PLACEHOLDER_POINT
    near = ((latitude - p_lat).abs() <= PLACEHOLDER_TOLERANCE) & ((longitude - p_lon).abs() <= PLACEHOLDER_TOLERANCE)
    return near.fillna(False).astype(bool)


def to_records(raw: pd.DataFrame, city: str | None = None) -> pd.DataFrame:
    """Chicago rows as canonical records (without provenance) plus the reject reason, same order and index."""
    if city is not None and city != CITY:
        log.warning("chicago adapter writes city %r; ignoring the given city %r", CITY, city)
    index = column_index(raw)
    timezone = city_timezone(CITY)

    created_raw = pick(raw, index, "created_date")
    closed_raw = pick(raw, index, "closed_date")
    created = parse_times(created_raw, timezone)
    closed = parse_times(closed_raw, timezone)
    latitude = to_float(pick(raw, index, "latitude"))
    longitude = to_float(pick(raw, index, "longitude"))
    nowhere = placeholder_location(latitude, longitude)
    columns = {
        "request_id": clean_id(pick(raw, index, "sr_number")),
        "city": pd.Series(CITY, index=raw.index, dtype="str"),
        "created_at": created,
        "request_type": clean_text(pick(raw, index, "sr_type")),
        "source": map_source(pick(raw, index, "origin")),
        "latitude": latitude.mask(nowhere),
        "longitude": longitude.mask(nowhere),
        "zip_code": clean_zip(pick(raw, index, "zip_code")).mask(nowhere),
        "council_district": clean_id(pick(raw, index, "ward")).mask(nowhere),
        "neighborhood": clean_id(pick(raw, index, "community_area")).mask(nowhere),
        "closed_at": closed,
        "status": map_values(clean_text(pick(raw, index, "status")).str.lower(), STATUSES),
        "department": clean_text(pick(raw, index, "owner_department")),
    }
    frame = conform(pd.DataFrame(columns, index=raw.index), OUTPUT_DTYPES).set_axis(raw.index)

    reason = pd.Series(pd.NA, index=raw.index, dtype="str")
    reason = reason.mask(unparseable(closed_raw, closed), "unparseable_closed_at")
    reason = reason.mask(unparseable(created_raw, created), "unparseable_created_at")
    return frame.assign(**{REJECT_COLUMN: reason})
