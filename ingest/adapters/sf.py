"""San Francisco 311 adapter: the DataSF case export with display names (CaseID, Opened, Closed, ...).

Mapping choices, and why:
- ``request_type`` is ``Request Type`` ("Bulky Items", "General Cleaning"); ``Category`` ("Street and
  Sidewalk Cleaning") is the coarser level above it and only fills in where the type is missing, so one
  request type never mixes the two levels.
- ``description`` is ``Request Details`` (the resident's sub-choice, "Mattress", "Needles"). ``Status Notes``
  is written when the case is worked ("Case Resolved - Pickup completed.") and is an outcome: not read.
- ``department`` is ``Responsible Agency``, the queue that works the case (16 queues in the North Beach
  file, e.g. "DPW Ops Queue", "Recology_Abandoned"), names kept and trimmed: routing between queues within
  one category is the point of the department model here.
- ``council_district`` is the Supervisor District, ``neighborhood`` the Neighborhood.
- Clocks are local America/Los_Angeles, ``06/29/2019 09:48:00 PM``.
- The newer DataSF API export (service_request_id, requested_datetime, agency_responsible...) is a different
  schema, not handled here.
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

NAME = "sf"
CITY = "sf"

REQUIRED: list[tuple[str, ...]] = [
    ("CaseID", "case_id"),
    ("Opened", "opened"),
    ("Closed", "closed"),
    ("Status", "status"),
    ("Request Type", "request_type", "Category", "category"),
    ("Responsible Agency", "responsible_agency"),
]

SIGNATURE: set[str] = {
    normalise_name(c)
    for c in (
        "CaseID",
        "Opened",
        "Closed",
        "Updated",
        "Status Notes",
        "Responsible Agency",
        "Category",
        "Request Type",
        "Request Details",
        "Supervisor District",
        "Police District",
    )
}

SOURCES: dict[str, str] = {
    "Phone": "phone",
    "Web": "web",
    "Mobile/Open311": "mobile_app",
    "Open311": "mobile_app",
    "Mobile": "mobile_app",
    "Integrated Agency": "integration",
    "Twitter": "social",
    "e-mail": "email",
    "Email": "email",
    "Other Department": "integration",
}

STATUSES: dict[str, str] = {"closed": "closed", "open": "open"}

DISPLAY_FORMAT = "%m/%d/%Y %I:%M:%S %p"
# The export writes ZIP codes only inside the address ("101 BARTOL ST, SAN FRANCISCO, CA, 94133").
ADDRESS_ZIP = r",\s*CA,?\s*(\d{5})\s*$"

_PROVENANCE = ("source_format", "source_file", "source_row")
OUTPUT_DTYPES: dict[str, str] = {k: v for k, v in RECORD_DTYPES.items() if k not in _PROVENANCE}


def score(columns: list[str]) -> float:
    """Share of the SF signature present (0..1)."""
    present = {normalise_name(c) for c in columns}
    return len(SIGNATURE & present) / len(SIGNATURE)


def parse_times(values: pd.Series, timezone: str) -> pd.Series:
    """SF clocks: display ``06/29/2019 09:48:00 PM`` first, then ISO, mixed parsing only for the rest."""
    parsed = parse_local_time(values, timezone, DISPLAY_FORMAT).fillna(parse_local_time(values, timezone, "ISO8601"))
    left = unparseable(values, parsed)
    if left.any():
        parsed = parsed.fillna(parse_local_time(values.where(left), timezone))
    return parsed


def to_records(raw: pd.DataFrame, city: str | None = None) -> pd.DataFrame:
    """SF rows as canonical records (without provenance) plus the reject reason, same order and index."""
    if city is not None and city != CITY:
        log.warning("sf adapter writes city %r; ignoring the given city %r", CITY, city)
    index = column_index(raw)
    timezone = city_timezone(CITY)

    created_raw = pick(raw, index, "Opened")
    closed_raw = pick(raw, index, "Closed")
    created = parse_times(created_raw, timezone)
    closed = parse_times(closed_raw, timezone)
    address_zip = clean_text(pick(raw, index, "Address")).str.extract(ADDRESS_ZIP, expand=False)
    columns = {
        "request_id": clean_id(pick(raw, index, "CaseID")),
        "city": pd.Series(CITY, index=raw.index, dtype="str"),
        "created_at": created,
        "request_type": clean_text(pick(raw, index, "Request Type")).fillna(clean_text(pick(raw, index, "Category"))),
        "source": map_values(pick(raw, index, "Source"), SOURCES),
        "description": clean_text(pick(raw, index, "Request Details")),
        "latitude": to_float(pick(raw, index, "Latitude")),
        "longitude": to_float(pick(raw, index, "Longitude")),
        "zip_code": clean_zip(address_zip),
        "council_district": clean_id(pick(raw, index, "Supervisor District")),
        "neighborhood": clean_text(pick(raw, index, "Neighborhood")),
        "closed_at": closed,
        "status": map_values(clean_text(pick(raw, index, "Status")).str.lower(), STATUSES),
        "department": clean_text(pick(raw, index, "Responsible Agency")),
    }
    frame = conform(pd.DataFrame(columns, index=raw.index), OUTPUT_DTYPES).set_axis(raw.index)

    reason = pd.Series(pd.NA, index=raw.index, dtype="str")
    reason = reason.mask(unparseable(closed_raw, closed), "unparseable_closed_at")
    reason = reason.mask(unparseable(created_raw, created), "unparseable_created_at")
    return frame.assign(**{REJECT_COLUMN: reason})
