"""NYC 311 adapter: the Socrata exports in all four shapes we have seen, read into canonical records.

Variants (column names compare after ``common.normalise_name``, so display and API spellings coincide):
- display-name CSV, old 52-column schema (``Unique Key``, ``Created Date``, ``Due Date``; no channel column);
- display-name CSV, newer 41-column schema (adds ``Open Data Channel Type``, ``Resolution Description``);
- lower-case API CSV (``unique_key``, ``created_date``; ISO clocks like ``2023-12-08T12:00:00.000``);
- Socrata JSON with the API names (nested ``location`` objects arrive as JSON text).

Mapping choices, and why:
- ``description`` is ``Descriptor`` (the resident's sub-type), never ``Resolution Description``: that text is
  written when the agency acts on the request, so it is an outcome and would leak the answer into features.
- ``department`` is the agency *code* through one mapping (``AGENCY_CODES``): full agency names become their
  code and renamed agencies their current code (DCA -> DCWP, DOITT -> OTI, OEM -> NYCEM), so the same
  department keeps one label across years.
- ``Due Date`` is NOT an SLA target: it is an internal follow-up date set by some agencies, missing for most
  rows and sometimes before the close it is meant to bound. ``sla_target_at`` stays missing for NYC.
- ``Closed Date`` of 1900-01-01 is a placeholder (seen on an *Assigned* row), read as missing.
- ``Community Board`` ("08 MANHATTAN") is the council district; "0 Unspecified" / "Unspecified BRONX" are
  missing. ``Borough`` is the neighbourhood ("Unspecified" missing).
- Clocks are local America/New_York wall time without an offset.
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

NAME = "nyc"
CITY = "nyc"

REQUIRED: list[tuple[str, ...]] = [
    ("Unique Key", "unique_key"),
    ("Created Date", "created_date"),
    ("Closed Date", "closed_date"),
    ("Status", "status"),
    ("Complaint Type", "complaint_type"),
    ("Agency", "agency"),
]

# Columns every NYC variant carries and no other city's export does (generic names like status are left out).
SIGNATURE: set[str] = {
    normalise_name(c)
    for c in (
        "Unique Key",
        "Created Date",
        "Closed Date",
        "Agency",
        "Agency Name",
        "Complaint Type",
        "Descriptor",
        "Incident Zip",
        "Community Board",
        "Borough",
        "Resolution Action Updated Date",
        "X Coordinate (State Plane)",
    )
}
# The newer exports add the channel; scoring takes the best variant so the old schema is not penalised.
VARIANTS: tuple[frozenset[str], ...] = (
    frozenset(SIGNATURE),
    frozenset(SIGNATURE | {normalise_name("Open Data Channel Type"), normalise_name("BBL")}),
)

# One mapping to the agency code: codes map to themselves (or to the renamed agency's current code), full
# names to their code. Keys compare case-insensitively.
AGENCY_CODES: dict[str, str] = {
    # codes
    "NYPD": "NYPD",
    "DSNY": "DSNY",
    "DOT": "DOT",
    "DEP": "DEP",
    "HPD": "HPD",
    "DOB": "DOB",
    "DPR": "DPR",
    "DOHMH": "DOHMH",
    "DOF": "DOF",
    "DCWP": "DCWP",
    "DCA": "DCWP",  # Consumer Affairs became Consumer and Worker Protection in 2019
    "HRA": "HRA",
    "TLC": "TLC",
    "EDC": "EDC",
    "FDNY": "FDNY",
    "DHS": "DHS",
    "DOE": "DOE",
    "OTI": "OTI",
    "DOITT": "OTI",  # DoITT folded into the Office of Technology and Innovation in 2022
    "NYCEM": "NYCEM",
    "OEM": "NYCEM",
    "DFTA": "DFTA",
    "DCAS": "DCAS",
    "OSE": "OSE",
    "LPC": "LPC",
    "3-1-1": "3-1-1",
    # full names
    "New York City Police Department": "NYPD",
    "Department of Sanitation": "DSNY",
    "Department of Transportation": "DOT",
    "Department of Environmental Protection": "DEP",
    "Department of Housing Preservation and Development": "HPD",
    "Department of Buildings": "DOB",
    "Department of Parks and Recreation": "DPR",
    "Department of Health and Mental Hygiene": "DOHMH",
    "Department of Finance": "DOF",
    "Department of Consumer and Worker Protection": "DCWP",
    "Department of Consumer Affairs": "DCWP",
    "Human Resources Administration": "HRA",
    "Taxi and Limousine Commission": "TLC",
    "Economic Development Corporation": "EDC",
    "Fire Department of New York": "FDNY",
    "Department of Homeless Services": "DHS",
    "Department of Education": "DOE",
    "Office of Technology and Innovation": "OTI",
    "Department of Information Technology and Telecommunications": "OTI",
    "NYC Emergency Management": "NYCEM",
    "Office of Emergency Management": "NYCEM",
    "Department for the Aging": "DFTA",
    "Department of Citywide Administrative Services": "DCAS",
    "Mayor's Office of Special Enforcement": "OSE",
    "Landmarks Preservation Commission": "LPC",
}

# Open Data Channel Type -> canonical source; "" means missing (UNKNOWN says nothing about the channel).
SOURCES: dict[str, str] = {"PHONE": "phone", "ONLINE": "web", "MOBILE": "mobile_app", "OTHER": "other", "UNKNOWN": ""}

# Every state short of Closed is still waiting for work; "Unspecified" too (it is never a resolution).
STATUSES: dict[str, str] = {
    "closed": "closed",
    "open": "open",
    "assigned": "open",
    "in progress": "open",
    "pending": "open",
    "started": "open",
    "email sent": "open",
    "unspecified": "open",
}

DISPLAY_FORMAT = "%m/%d/%Y %I:%M:%S %p"
# Closes before this are the 1900-01-01 filler (no 311 system existed then).
PLACEHOLDER_BEFORE = pd.Timestamp("1901-01-01", tz="UTC")
_PROVENANCE = ("source_format", "source_file", "source_row")
OUTPUT_DTYPES: dict[str, str] = {k: v for k, v in RECORD_DTYPES.items() if k not in _PROVENANCE}


def score(columns: list[str]) -> float:
    """Share of the NYC signature present, best over the schema variants (0..1)."""
    present = {normalise_name(c) for c in columns}
    return max(len(variant & present) / len(variant) for variant in VARIANTS)


def parse_times(values: pd.Series, timezone: str) -> pd.Series:
    """NYC clocks in either spelling: display ``12/25/2013 11:59:08 PM`` or ISO ``2013-12-25T23:59:08.000``.

    Tries the two fixed formats (fast, exact) and only falls back to mixed parsing for what neither reads.
    """
    display = parse_local_time(values, timezone, DISPLAY_FORMAT)
    iso = parse_local_time(values, timezone, "ISO8601")
    parsed = display.fillna(iso)
    left = unparseable(values, parsed)
    if left.any():
        parsed = parsed.fillna(parse_local_time(values.where(left), timezone))
    return parsed


def _department(raw: pd.DataFrame, index: dict[str, str]) -> pd.Series:
    """Agency code through AGENCY_CODES; the agency name stands in where the code is missing."""
    agency = clean_text(pick(raw, index, "Agency", "agency"))
    agency = agency.fillna(clean_text(pick(raw, index, "Agency Name", "agency_name")))
    return map_values(agency, AGENCY_CODES)


def _coordinates(raw: pd.DataFrame, index: dict[str, str]) -> tuple[pd.Series, pd.Series]:
    """Latitude/longitude columns, falling back to the Location text where they are missing.

    Location comes as "(40.63, -73.92)" (display CSV), a Python-ish dict with 'latitude'/'longitude' (API CSV)
    or GeoJSON text {"coordinates": [lon, lat]} (JSON).
    """
    lat = to_float(pick(raw, index, "Latitude"))
    lon = to_float(pick(raw, index, "Longitude"))
    location = clean_text(pick(raw, index, "Location"))
    number = r"(-?\d+(?:\.\d+)?)"
    pair = location.str.extract(rf"^\(\s*{number}\s*,\s*{number}\s*\)$")
    keyed_lat = location.str.extract(rf"""['"]latitude['"]\s*:\s*['"]?{number}""", expand=False)
    keyed_lon = location.str.extract(rf"""['"]longitude['"]\s*:\s*['"]?{number}""", expand=False)
    geojson = location.str.extract(rf"""['"]coordinates['"]\s*:\s*\[\s*{number}\s*,\s*{number}\s*\]""")
    lat_text = pair[0].fillna(keyed_lat).fillna(geojson[1])
    lon_text = pair[1].fillna(keyed_lon).fillna(geojson[0])
    return lat.fillna(to_float(lat_text)), lon.fillna(to_float(lon_text))


def _unspecified(values: pd.Series) -> pd.Series:
    """Cleaned text with NYC's "Unspecified" fillers ("0 Unspecified", "Unspecified QUEENS") as missing."""
    text = clean_text(values)
    return text.mask(text.str.contains("unspecified", case=False, na=False))


def to_records(raw: pd.DataFrame, city: str | None = None) -> pd.DataFrame:
    """NYC rows as canonical records (without provenance) plus the reject reason, same order and index."""
    if city is not None and city != CITY:
        log.warning("nyc adapter writes city %r; ignoring the given city %r", CITY, city)
    index = column_index(raw)
    timezone = city_timezone(CITY)

    created_raw = pick(raw, index, "Created Date")
    closed_raw = pick(raw, index, "Closed Date")
    created = parse_times(created_raw, timezone)
    closed = parse_times(closed_raw, timezone)
    # A 1900-01-01 close is NYC's "no date" filler, not a time: missing, and not an unparseable value.
    placeholder = (closed < PLACEHOLDER_BEFORE).fillna(False).astype(bool)
    closed = closed.mask(placeholder)

    status = map_values(clean_text(pick(raw, index, "Status")).str.lower(), STATUSES)
    latitude, longitude = _coordinates(raw, index)
    columns = {
        "request_id": clean_id(pick(raw, index, "Unique Key")),
        "city": pd.Series(CITY, index=raw.index, dtype="str"),
        "created_at": created,
        "request_type": clean_text(pick(raw, index, "Complaint Type")),
        "source": clean_text(map_values(pick(raw, index, "Open Data Channel Type"), SOURCES)),
        "description": clean_text(pick(raw, index, "Descriptor")),
        "latitude": latitude,
        "longitude": longitude,
        "zip_code": clean_zip(pick(raw, index, "Incident Zip")),
        "council_district": _unspecified(pick(raw, index, "Community Board")),
        "neighborhood": _unspecified(pick(raw, index, "Borough")),
        "closed_at": closed,
        "status": status,
        "department": _department(raw, index),
    }
    frame = conform(pd.DataFrame(columns, index=raw.index), OUTPUT_DTYPES).set_axis(raw.index)

    reason = pd.Series(pd.NA, index=raw.index, dtype="str")
    reason = reason.mask(unparseable(closed_raw, closed) & ~placeholder, "unparseable_closed_at")
    reason = reason.mask(unparseable(created_raw, created), "unparseable_created_at")
    return frame.assign(**{REJECT_COLUMN: reason})
