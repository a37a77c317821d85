"""Row-level data rules, defined once: `ingest` quarantines on the blocking ones, `check` reports them all.

Each rule is a vectorised predicate over canonical records that marks the rows that *violate* it. Blocking
rules make a row unusable (it goes to quarantine with the rule's name as its reason); warning rules flag
real-export traps we keep but want counted (self-reports closed in minutes, coordinates off the map).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.schema import CITIES, SOURCE_VALUES, STATUS_VALUES

# Plausible window for a 311 record: 311 systems started in the late 1990s; nothing from the future.
EARLIEST_PLAUSIBLE = pd.Timestamp("1996-01-01", tz="UTC")
FUTURE_TOLERANCE = pd.Timedelta(days=1)
SELF_REPORT_MINUTES = 5


@dataclass(frozen=True)
class RowRule:
    """One row-level expectation: which column it is about, whether it blocks, and how to find violators."""

    name: str
    column: str
    blocking: bool
    description: str
    violations: Callable[[pd.DataFrame, pd.Timestamp], pd.Series]


def _missing(column: str) -> Callable[[pd.DataFrame, pd.Timestamp], pd.Series]:
    return lambda f, now: f[column].isna()


def _invalid_status(f: pd.DataFrame, now: pd.Timestamp) -> pd.Series:
    return ~f["status"].isin(STATUS_VALUES)


def _closed_before_created(f: pd.DataFrame, now: pd.Timestamp) -> pd.Series:
    return (f["closed_at"] < f["created_at"]).fillna(False).astype(bool)


def _created_out_of_window(f: pd.DataFrame, now: pd.Timestamp) -> pd.Series:
    created = f["created_at"]
    return (created.notna() & ((created < EARLIEST_PLAUSIBLE) | (created > now + FUTURE_TOLERANCE))).astype(bool)


def _closed_out_of_window(f: pd.DataFrame, now: pd.Timestamp) -> pd.Series:
    closed = f["closed_at"]
    return (closed.notna() & (closed > now + FUTURE_TOLERANCE)).astype(bool)


def _duplicate_id(f: pd.DataFrame, now: pd.Timestamp) -> pd.Series:
    """Later occurrences of a (city, request_id) pair; the first one is kept."""
    ids = f[["city", "request_id"]]
    return (ids.duplicated(keep="first") & f["request_id"].notna()).astype(bool)


def _out_of_bounds(f: pd.DataFrame, now: pd.Timestamp) -> pd.Series:
    lat, lon = f["latitude"], f["longitude"]
    bounds = pd.DataFrame(
        [(code, *c.bounds) for code, c in CITIES.items()],
        columns=["city", "min_lat", "max_lat", "min_lon", "max_lon"],
    ).set_index("city")
    box = bounds.reindex(f["city"].to_numpy())
    has_box = box["min_lat"].notna().to_numpy()
    inside = (
        (lat.to_numpy() >= box["min_lat"].to_numpy())
        & (lat.to_numpy() <= box["max_lat"].to_numpy())
        & (lon.to_numpy() >= box["min_lon"].to_numpy())
        & (lon.to_numpy() <= box["max_lon"].to_numpy())
    )
    given = (lat.notna() | lon.notna()).to_numpy()
    # Unknown cities: only the globe's range can be checked.
    on_globe = (lat.abs() <= 90).to_numpy() & (lon.abs() <= 180).to_numpy()
    violation = given & np.where(has_box, ~inside, ~on_globe)
    return pd.Series(violation, index=f.index)


def _closed_without_time(f: pd.DataFrame, now: pd.Timestamp) -> pd.Series:
    return ((f["status"] == "closed") & f["closed_at"].isna()).astype(bool)


def _open_with_close_time(f: pd.DataFrame, now: pd.Timestamp) -> pd.Series:
    return ((f["status"] == "open") & f["closed_at"].notna()).astype(bool)


def _closed_within_minutes(f: pd.DataFrame, now: pd.Timestamp) -> pd.Series:
    minutes = (f["closed_at"] - f["created_at"]).dt.total_seconds() / 60
    return ((minutes >= 0) & (minutes < SELF_REPORT_MINUTES)).fillna(False).astype(bool)


def _unknown_source(f: pd.DataFrame, now: pd.Timestamp) -> pd.Series:
    return (f["source"].notna() & ~f["source"].isin(SOURCE_VALUES)).astype(bool)


def _near_duplicate(f: pd.DataFrame, now: pd.Timestamp) -> pd.Series:
    """Same type at the same spot (~10 m) within the same hour: a resident reporting twice."""
    key = pd.DataFrame(
        {
            "city": f["city"],
            "type": f["request_type"],
            "lat": f["latitude"].round(4),
            "lon": f["longitude"].round(4),
            "hour": f["created_at"].dt.floor("h"),
        }
    )
    located = f["latitude"].notna() & f["request_type"].notna() & f["created_at"].notna()
    return (key.duplicated(keep="first") & located).astype(bool)


ROW_RULES: tuple[RowRule, ...] = (
    RowRule("missing_request_id", "request_id", True, "every record has an id", _missing("request_id")),
    RowRule("missing_city", "city", True, "every record names its city (half of the record's key)", _missing("city")),
    RowRule("missing_created_at", "created_at", True, "every record has a creation time", _missing("created_at")),
    RowRule("invalid_status", "status", True, f"status is one of {STATUS_VALUES}", _invalid_status),
    RowRule(
        "created_out_of_window",
        "created_at",
        True,
        "created_at between 1996 and the extraction time",
        _created_out_of_window,
    ),
    RowRule("closed_in_future", "closed_at", True, "closed_at not after the extraction time", _closed_out_of_window),
    RowRule("closed_before_created", "closed_at", True, "closed_at >= created_at", _closed_before_created),
    RowRule("duplicate_request_id", "request_id", True, "request ids are unique per city", _duplicate_id),
    RowRule(
        "coordinates_out_of_bounds",
        "latitude",
        False,
        "coordinates inside the city's bounding box",
        _out_of_bounds,
    ),
    RowRule("closed_without_closed_at", "closed_at", False, "closed rows have closed_at", _closed_without_time),
    RowRule("open_with_closed_at", "closed_at", False, "open rows have no closed_at", _open_with_close_time),
    RowRule(
        "closed_within_minutes",
        "closed_at",
        False,
        f"closed at least {SELF_REPORT_MINUTES} minutes after creation (crew self-reports are not)",
        _closed_within_minutes,
    ),
    RowRule("unknown_source", "source", False, f"source is one of {SOURCE_VALUES}", _unknown_source),
    RowRule("near_duplicate", "request_type", False, "no same type, same spot, same hour repeats", _near_duplicate),
)
BLOCKING_RULES: tuple[RowRule, ...] = tuple(r for r in ROW_RULES if r.blocking)


def violations(records: pd.DataFrame, now: pd.Timestamp | None = None) -> pd.DataFrame:
    """A boolean frame, one column per rule, True where the row violates that rule."""
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    return pd.DataFrame({r.name: r.violations(records, now).to_numpy() for r in ROW_RULES}, index=records.index)


def first_blocking_reason(records: pd.DataFrame, now: pd.Timestamp | None = None) -> pd.Series:
    """The first blocking rule each row violates (its quarantine reason), NA for rows that pass."""
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    reason = pd.Series(pd.NA, index=records.index, dtype="str")
    # Reverse order so the first rule listed wins when a row breaks several.
    for rule in reversed(BLOCKING_RULES):
        hit = rule.violations(records, now).to_numpy()
        reason = reason.mask(hit, rule.name)
    return reason
