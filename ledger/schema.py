"""The ledger's tables (SQLAlchemy 2 Core), the one definition Alembic's migrations and every query share.

Instants are stored as integers: microseconds since the Unix epoch, UTC. They convert to and from pandas'
`datetime64[us, UTC]` without a per-value Python call (what lets `eta311 sync` write 100k+ rows a second),
compare exactly across SQLite and PostgreSQL, and never depend on a server's time zone setting.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# The schema revision this code reads and writes (Alembic's head); the service refuses any other.
SCHEMA_REVISION = "0001_initial"

metadata = MetaData()
# 64-bit ids on a server; SQLite autoincrements only an INTEGER primary key (its rowid).
_ID = BigInteger().with_variant(Integer, "sqlite")


def _instant(name: str, nullable: bool = True) -> Column:
    return Column(name, BigInteger, nullable=nullable, comment="microseconds since 1970-01-01 UTC")


# The canonical record of every request the city or the service told us about (one row per city and id).
requests = Table(
    "requests",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("city", String(32), nullable=False),
    Column("request_id", String(128), nullable=False),
    _instant("created_at", nullable=False),
    Column("request_type", String(200)),
    Column("source", String(64)),
    Column("description", Text),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("zip_code", String(10)),
    Column("council_district", String(64)),
    Column("neighborhood", String(200)),
    Column("status", String(16), nullable=False),
    _instant("closed_at"),
    Column("department", String(200)),
    _instant("sla_target_at"),
    Column("source_format", String(32)),
    Column("source_file", String(500)),
    Column("source_row", BigInteger),
    _instant("first_seen_at", nullable=False),
    _instant("last_updated_at", nullable=False),
    UniqueConstraint("city", "request_id", name="uq_requests_city_request_id"),
    Index("ix_requests_city_created_at", "city", "created_at"),
)

# Every estimate given. The first one for a (city, request_id) is the promise; later ones are revisions.
estimates = Table(
    "estimates",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("city", String(32), nullable=False),
    Column("request_id", String(128)),
    _instant("estimated_at", nullable=False),
    _instant("created_at", nullable=False),
    Column("time_to_close_version", String(64)),
    Column("department_version", String(64)),
    Column("p10_hours", Float, nullable=False),
    Column("p50_hours", Float, nullable=False),
    Column("p90_hours", Float, nullable=False),
    Column("p_closed_within", JSON, nullable=False),
    _instant("expected_close_at", nullable=False),
    Column("department", String(200)),
    Column("department_probability", Float),
    Column("message", Text),
    Index("ix_estimates_city_request_id", "city", "request_id", "id"),
)

# Every change of a request's outcome the ledger received, with where it came from.
events = Table(
    "events",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("city", String(32), nullable=False),
    Column("request_id", String(128), nullable=False),
    _instant("received_at", nullable=False),
    _instant("updated_at", nullable=True),
    Column("status", String(16), nullable=False),
    _instant("closed_at"),
    Column("department", String(200)),
    Column("previous_status", String(16)),
    _instant("previous_closed_at"),
    Column("origin", String(500), nullable=False),
    Index("ix_events_city_request_id", "city", "request_id"),
)

# Columns of `requests` that come from a canonical record (everything but the key and the ledger's clocks).
INSTANT_COLUMNS = ("created_at", "closed_at", "sla_target_at")
RECORD_FIELDS = tuple(c.name for c in requests.columns if c.name not in ("id", "first_seen_at", "last_updated_at"))
# What a later export or event may change; a difference in any of these is an update (and an event).
OUTCOME_FIELDS = ("status", "closed_at", "department")


def to_us(values: pd.Series) -> np.ndarray:
    """A datetime column as int64 microseconds UTC, as an object array with None where missing."""
    stamps = pd.to_datetime(values, utc=True).astype("datetime64[us, UTC]")
    missing = stamps.isna().to_numpy()
    numbers = stamps.to_numpy(dtype="datetime64[us]").astype("int64")
    out = numbers.astype(object)
    out[missing] = None
    return out


def from_us(values: pd.Series | np.ndarray) -> pd.Series:
    """Stored microseconds (None/NaN where missing) back to `datetime64[us, UTC]`."""
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").astype("Int64")
    return pd.to_datetime(numbers, unit="us", utc=True).astype("datetime64[us, UTC]")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(value: datetime | None) -> int | None:
    """An aware datetime as exact integer microseconds since the epoch (no float rounding)."""
    if value is None:
        return None
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def now_us() -> int:
    return int(pd.Timestamp.now(tz="UTC").value // 1000)
