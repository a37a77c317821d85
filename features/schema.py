"""The canonical 311 schema: the intake request (known at submission) and the historical record (outcomes).

Everything else derives from here: the HTTP request model, `to_frame`, the Great Expectations column
list, the Parquet layout and the MLflow signature. Outcome fields are never part of the intake request, so
they cannot leak into features.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# --- cities -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class City:
    """What we know about a city independent of its data: its clock and its footprint."""

    code: str
    name: str
    timezone: str
    # (min_lat, max_lat, min_lon, max_lon): generous box around the city limits.
    bounds: tuple[float, float, float, float]
    holiday_subdivision: str | None = None  # US state code for the `holidays` package


# The city a request belongs to when it does not say: the service was built for Los Angeles' 311.
DEFAULT_CITY = "la"

CITIES: dict[str, City] = {
    "la": City("la", "Los Angeles", "America/Los_Angeles", (33.65, 34.40, -118.75, -118.10), "CA"),
    "nyc": City("nyc", "New York", "America/New_York", (40.45, 40.95, -74.30, -73.65), "NY"),
    "boston": City("boston", "Boston", "America/New_York", (42.20, 42.45, -71.20, -70.95), "MA"),
    "chicago": City("chicago", "Chicago", "America/Chicago", (41.60, 42.05, -87.95, -87.50), "IL"),
    "sf": City("sf", "San Francisco", "America/Los_Angeles", (37.60, 37.85, -122.55, -122.30), "CA"),
}
DEFAULT_TIMEZONE = "UTC"


def city_timezone(code: str) -> str:
    """The IANA time zone of a city code; UTC for a city we do not know (e.g. a generic Open311 feed)."""
    city = CITIES.get(code)
    return city.timezone if city else DEFAULT_TIMEZONE


# --- value sets ---------------------------------------------------------------------------------------

STATUS_VALUES: tuple[str, ...] = ("open", "closed", "cancelled", "referred")
# Channels, normalised across cities. `crew` = city staff reporting it themselves (LA "Driver Self Report",
# Boston "City Worker App"/"Employee Generated"); `elected_office` = council/alderman offices.
SOURCE_VALUES: tuple[str, ...] = (
    "phone",
    "mobile_app",
    "web",
    "email",
    "crew",
    "elected_office",
    "social",
    "walk_in",
    "integration",
    "other",
)

# --- columns and dtypes -------------------------------------------------------------------------------

TIMESTAMP_DTYPE = "datetime64[us, UTC]"
STRING_DTYPE = "str"

INTAKE_DTYPES: dict[str, str] = {
    "request_id": STRING_DTYPE,
    "city": STRING_DTYPE,
    "created_at": TIMESTAMP_DTYPE,
    "request_type": STRING_DTYPE,
    "source": STRING_DTYPE,
    "description": STRING_DTYPE,
    "latitude": "float64",
    "longitude": "float64",
    "zip_code": STRING_DTYPE,
    "council_district": STRING_DTYPE,
    "neighborhood": STRING_DTYPE,
}
OUTCOME_DTYPES: dict[str, str] = {
    "closed_at": TIMESTAMP_DTYPE,
    "status": STRING_DTYPE,
    "department": STRING_DTYPE,
    # The city's own promise (Boston TARGET_DT / sla_target_dt): the static baseline a model must beat.
    "sla_target_at": TIMESTAMP_DTYPE,
    # Provenance: which adapter read the row, from which file and which data row (0-based, header excluded).
    "source_format": STRING_DTYPE,
    "source_file": STRING_DTYPE,
    "source_row": "int64",
}
RECORD_DTYPES: dict[str, str] = {**INTAKE_DTYPES, **OUTCOME_DTYPES}

INTAKE_COLUMNS: tuple[str, ...] = tuple(INTAKE_DTYPES)
RECORD_COLUMNS: tuple[str, ...] = tuple(RECORD_DTYPES)
# A record without these is unusable; everything else may be missing.
REQUIRED_RECORD_COLUMNS: tuple[str, ...] = ("request_id", "city", "created_at", "status", "source_row")

_ARROW_TYPES: dict[str, pa.DataType] = {
    STRING_DTYPE: pa.large_string(),
    TIMESTAMP_DTYPE: pa.timestamp("us", tz="UTC"),
    "float64": pa.float64(),
    "int64": pa.int64(),
}
RECORD_ARROW_SCHEMA = pa.schema(
    [pa.field(name, _ARROW_TYPES[dtype], nullable=name != "source_row") for name, dtype in RECORD_DTYPES.items()]
)

# --- the intake request -------------------------------------------------------------------------------

MAX_DESCRIPTION_CHARS = 4000


class IntakeRequest(BaseModel):
    """One request as the intake API knows it at submission. Only what exists before any work is done."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    request_id: str | None = Field(default=None, max_length=128, description="Caller's id; never a feature.")
    city: str = Field(default=DEFAULT_CITY, max_length=32, description="City code, e.g. la, nyc, boston.")
    created_at: AwareDatetime | None = Field(
        default=None, description="Submission time with a UTC offset; defaults to now."
    )
    request_type: str | None = Field(default=None, max_length=200, description="The city's request type.")
    source: str | None = Field(default=None, max_length=64, description=f"Channel, one of {SOURCE_VALUES}.")
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_CHARS)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    zip_code: str | None = Field(default=None, max_length=10)
    council_district: str | None = Field(default=None, max_length=64)
    neighborhood: str | None = Field(default=None, max_length=200)


Status = Literal["open", "closed", "cancelled", "referred"]


def empty_records() -> pd.DataFrame:
    """A zero-row frame with every record column at its declared dtype."""
    return conform(pd.DataFrame({name: pd.Series([], dtype="object") for name in RECORD_COLUMNS}))


def conform(frame: pd.DataFrame, columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Return `frame` with exactly the declared columns, in order, at their declared dtypes.

    Missing optional columns are added as all-missing. Timestamps must already be timezone-aware or
    be UTC-naive; naive values are taken as UTC (adapters localise city-local clocks before this).
    """
    columns = columns or RECORD_DTYPES
    out = {}
    n = len(frame)
    for name, dtype in columns.items():
        values = frame[name] if name in frame.columns else pd.Series([None] * n, index=frame.index)
        if dtype == TIMESTAMP_DTYPE:
            values = pd.to_datetime(values, utc=True).astype(TIMESTAMP_DTYPE)
        elif dtype == STRING_DTYPE:
            values = values.astype(STRING_DTYPE)
        else:
            values = values.astype(dtype)
        out[name] = values
    return pd.DataFrame(out, index=frame.index).reset_index(drop=True)


def to_frame(requests: list[IntakeRequest], now: datetime | None = None) -> pd.DataFrame:
    """Intake requests as a frame with the intake columns and dtypes (created_at defaults to `now`)."""
    now = now or datetime.now().astimezone()
    rows = [r.model_dump() for r in requests]
    for row in rows:
        if row["created_at"] is None:
            row["created_at"] = now
    frame = pd.DataFrame(rows, columns=list(INTAKE_COLUMNS))
    return conform(frame, INTAKE_DTYPES)


def write_records(frame: pd.DataFrame, path: str | Path) -> None:
    """Write records as Parquet with the declared Arrow schema (deterministic: no pandas index)."""
    table = pa.Table.from_pandas(conform(frame), schema=RECORD_ARROW_SCHEMA, preserve_index=False)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def read_records(path: str | Path) -> pd.DataFrame:
    """Read a records Parquet file back at the declared dtypes."""
    return conform(pd.read_parquet(path))
