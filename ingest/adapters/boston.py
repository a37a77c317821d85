"""Boston 311 adapter: the 2015-2024 upper-case export and the 2025 lower-case one, read into canonical records.

Variants (names compare after ``common.normalise_name``):
- 2015-2024: ``CASE_ENQUIRY_ID, OPEN_DT, TARGET_DT, CLOSED_DT, OnTime_Status, CASE_STATUS, CASE_TITLE, TYPE,
  QUEUE, Department, ..., LATITUDE, LONGITUDE, Source`` (duplicate trailing resolution_* columns ignored);
- 2025: the same fields in lower case, ``sla_target_dt`` for ``TARGET_DT`` and ``on_time`` for
  ``OnTime_Status``, with a leading unnamed index column (ignored);
- the city's yearly files (2011): the 2015-2024 fields in lower case, ``target_dt`` and ``ontime``.

Mapping choices, and why:
- ``sla_target_at`` is ``TARGET_DT`` / ``sla_target_dt``: Boston's own per-type promise, the static baseline
  a model has to beat. It is kept, never used as a feature (it is an outcome-side column).
- ``department`` is the ``Department`` code through one mapping (``DEPARTMENTS``) to a readable name; an
  unknown code is kept as it is so a new department shows up rather than vanishing.
- ``description`` is ``CASE_TITLE`` (what the resident or intake typed), ``request_type`` is ``TYPE``.
  ``CLOSURE_REASON`` and ``OnTime_Status`` are outcomes and are not read.
- Coordinates at Boston's placeholder (City Hall, 42.3594 / -71.0587, and the geocoder's
  42.35952 / -71.05875) mean "no location given": both set to missing.
- ``city_council_district`` "0" or blank is missing (Boston has districts 1-9).
- Clocks are local America/New_York wall time without an offset.
"""

from __future__ import annotations

import logging

import numpy as np
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

NAME = "boston"
CITY = "boston"

REQUIRED: list[tuple[str, ...]] = [
    ("CASE_ENQUIRY_ID", "case_enquiry_id"),
    ("OPEN_DT", "open_dt"),
    ("CLOSED_DT", "closed_dt"),
    ("CASE_STATUS", "case_status"),
    ("TYPE", "type"),
    ("Department", "department"),
]

# Shared by both variants; the SLA and on-time columns differ and are added per variant below.
SIGNATURE: set[str] = {
    normalise_name(c)
    for c in (
        "CASE_ENQUIRY_ID",
        "OPEN_DT",
        "CLOSED_DT",
        "CASE_STATUS",
        "CLOSURE_REASON",
        "CASE_TITLE",
        "QUEUE",
        "LOCATION_ZIPCODE",
        "neighborhood_services_district",
        "pwd_district",
    )
}
VARIANTS: tuple[frozenset[str], ...] = (
    frozenset(SIGNATURE | {"targetdt", "ontimestatus"}),
    frozenset(SIGNATURE | {"slatargetdt", "ontime"}),
    frozenset(SIGNATURE | {"targetdt", "ontime"}),  # the city's yearly files (2011): lower case, target_dt
)

# Department codes -> readable names (codes as the export spells them, trailing "_"/"x" included).
DEPARTMENTS: dict[str, str] = {
    "PWDx": "Public Works",
    "BTDT": "Transportation",
    "ISD": "Inspectional Services",
    "PARK": "Parks and Recreation",
    # INFO queues are information and hand-offs to outside bodies (Mass DCR, MBTA, Eversource).
    "INFO": "311 Information and Referrals",
    # GEN_ is the needle pickup queue, whose subject is the Mayor's 24 Hour Hotline.
    "GEN_": "Mayor's 24 Hour Hotline",
    "PROP": "Property Management",
    "BWSC": "Boston Water and Sewer Commission",
    "ANML": "Animal Control",
    "DND_": "Neighborhood Development",
    "DISB": "Disability Commission",
    "BPS_": "Boston Public Schools",
    "BPD_": "Boston Police",
    "BHA_": "Boston Housing Authority",
    "ONS_": "Neighborhood Services",
    "CHT_": "City Hall Truck",
    "ECON": "Economic Development",
}

SOURCES: dict[str, str] = {
    "Constituent Call": "phone",
    "Citizens Connect App": "mobile_app",
    "BOS:311 App": "mobile_app",
    "Self Service": "web",
    "City Worker App": "crew",
    "Employee Generated": "crew",
    "Twitter": "social",
    "Maximo Integration": "integration",
    "Email": "email",
    "Walk-In": "walk_in",
}

STATUSES: dict[str, str] = {"closed": "closed", "open": "open"}

# (lat, lon) placeholders: the city's default point and where its geocoder puts "City Hall Plaza".
PLACEHOLDER_POINTS: tuple[tuple[float, float], ...] = ((42.3594, -71.0587), (42.35951952, -71.05875045))
PLACEHOLDER_TOLERANCE = 5e-5  # degrees, about 5 m

_PROVENANCE = ("source_format", "source_file", "source_row")
OUTPUT_DTYPES: dict[str, str] = {k: v for k, v in RECORD_DTYPES.items() if k not in _PROVENANCE}


def score(columns: list[str]) -> float:
    """Share of the Boston signature present, best over the two schema variants (0..1)."""
    present = {normalise_name(c) for c in columns}
    return max(len(variant & present) / len(variant) for variant in VARIANTS)


def parse_times(values: pd.Series, timezone: str) -> pd.Series:
    """Boston clocks (``2022-01-17 11:20:00``); ISO first, mixed parsing only for what ISO cannot read."""
    parsed = parse_local_time(values, timezone, "ISO8601")
    left = unparseable(values, parsed)
    if left.any():
        parsed = parsed.fillna(parse_local_time(values.where(left), timezone))
    return parsed


def placeholder_location(latitude: pd.Series, longitude: pd.Series) -> pd.Series:
    """True where the point is one of Boston's placeholders (no real location given)."""
    hit = np.zeros(len(latitude), dtype=bool)
    lat, lon = latitude.to_numpy(dtype="float64"), longitude.to_numpy(dtype="float64")
    for p_lat, p_lon in PLACEHOLDER_POINTS:
        hit |= (np.abs(lat - p_lat) <= PLACEHOLDER_TOLERANCE) & (np.abs(lon - p_lon) <= PLACEHOLDER_TOLERANCE)
    return pd.Series(hit, index=latitude.index)


def to_records(raw: pd.DataFrame, city: str | None = None) -> pd.DataFrame:
    """Boston rows as canonical records (without provenance) plus the reject reason, same order and index."""
    if city is not None and city != CITY:
        log.warning("boston adapter writes city %r; ignoring the given city %r", CITY, city)
    index = column_index(raw)
    timezone = city_timezone(CITY)

    created_raw = pick(raw, index, "OPEN_DT")
    closed_raw = pick(raw, index, "CLOSED_DT")
    target_raw = pick(raw, index, "TARGET_DT", "sla_target_dt")
    created = parse_times(created_raw, timezone)
    closed = parse_times(closed_raw, timezone)
    target = parse_times(target_raw, timezone)

    latitude = to_float(pick(raw, index, "LATITUDE"))
    longitude = to_float(pick(raw, index, "LONGITUDE"))
    placeholder = placeholder_location(latitude, longitude)
    district = clean_id(pick(raw, index, "city_council_district"))
    columns = {
        "request_id": clean_id(pick(raw, index, "CASE_ENQUIRY_ID")),
        "city": pd.Series(CITY, index=raw.index, dtype="str"),
        "created_at": created,
        "request_type": clean_text(pick(raw, index, "TYPE")),
        "source": map_values(pick(raw, index, "Source"), SOURCES),
        "description": clean_text(pick(raw, index, "CASE_TITLE")),
        "latitude": latitude.mask(placeholder),
        "longitude": longitude.mask(placeholder),
        "zip_code": clean_zip(pick(raw, index, "LOCATION_ZIPCODE")),
        "council_district": district.mask(district == "0"),
        "neighborhood": clean_text(pick(raw, index, "neighborhood")),
        "closed_at": closed,
        "status": map_values(clean_text(pick(raw, index, "CASE_STATUS")).str.lower(), STATUSES),
        "department": map_values(pick(raw, index, "Department"), DEPARTMENTS),
        "sla_target_at": target,
    }
    frame = conform(pd.DataFrame(columns, index=raw.index), OUTPUT_DTYPES).set_axis(raw.index)

    reason = pd.Series(pd.NA, index=raw.index, dtype="str")
    reason = reason.mask(unparseable(target_raw, target), "unparseable_sla_target_at")
    reason = reason.mask(unparseable(closed_raw, closed), "unparseable_closed_at")
    reason = reason.mask(unparseable(created_raw, created), "unparseable_created_at")
    return frame.assign(**{REJECT_COLUMN: reason})
