"""Calendar features in the city's own clock: local hour, weekday, month, day of year, holidays, next working day.

A request filed at 23:30 on a Friday in Los Angeles is a Friday-night request even though it is Saturday in
UTC, and whether the next day is a working day decides when a crew can start. So every feature here is taken
from the *local* wall clock of the request's city (``schema.city_timezone``).

Two forms of one definition:
- ``calendar_features`` (vectorised, for many rows): pandas converts time zones once per zone, the rest is
  integer arithmetic on numpy arrays.
- ``calendar_row`` (one request, for serving): ``zoneinfo`` gives the same local wall clock, then the same
  integer arithmetic in plain Python. Tests prove both agree on every value.

Holidays are US federal plus the city's state holidays from the ``holidays`` package, adjusted by a small
explicit per-city list (e.g. Boston's Suffolk County Evacuation and Bunker Hill days). They are cached per
(city, year) and per (city, year range).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from features.schema import CITIES, city_timezone

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
# No run of non-working days is longer than this (a weekend next to a four-day holiday block is 6).
_MAX_NON_WORKING_RUN = 21

CALENDAR_FEATURES: tuple[str, ...] = (
    "local_hour",
    "weekday",
    "month",
    "day_of_year",
    "is_weekend",
    "is_holiday",
    "days_to_next_working_day",
)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The n-th (1-based) `weekday` (Monday=0) of a month."""
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _observed(day: dt.date) -> dt.date:
    """US observance rule for a fixed-date holiday: Saturday -> Friday, Sunday -> Monday."""
    if day.weekday() == 5:
        return day - dt.timedelta(days=1)
    if day.weekday() == 6:
        return day + dt.timedelta(days=1)
    return day


# City holidays the state calendar does not carry (or might drop in a future `holidays` release).
# Each rule returns the dates the city offices are closed that year.
CITY_EXTRA_HOLIDAYS: dict[str, tuple[Callable[[int], list[dt.date]], ...]] = {
    # Cesar Chavez Day (March 31; closed on the Monday when it falls on a Sunday) and Indigenous Peoples'
    # Day (second Monday of October) are City of Los Angeles holidays.
    "la": (
        lambda y: sorted({dt.date(y, 3, 31), _observed(dt.date(y, 3, 31))}),
        lambda y: [_nth_weekday(y, 10, 0, 2)],
    ),
    "sf": (lambda y: [_nth_weekday(y, 10, 0, 2)],),
    # Suffolk County holidays: Evacuation Day (March 17) and Bunker Hill Day (June 17).
    "boston": (
        lambda y: sorted({dt.date(y, 3, 17), _observed(dt.date(y, 3, 17))}),
        lambda y: sorted({dt.date(y, 6, 17), _observed(dt.date(y, 6, 17))}),
    ),
}
# Observances the `holidays` package lists for a state but on which city offices stay open.
NOT_A_DAY_OFF: frozenset[str] = frozenset({"Susan B. Anthony Day"})


@functools.lru_cache(maxsize=512)
def holiday_days(city: str, year: int) -> frozenset[int]:
    """Days off (as days since 1970-01-01) for one city and year: federal + state + explicit city list."""
    # Imported here: building holiday tables is the only thing that needs the package, and it is not cheap.
    import holidays

    city_info = CITIES.get(city)
    subdivision = city_info.holiday_subdivision if city_info else None
    # Neighbouring years too: an observed day can cross the year boundary (Jan 1 on a Saturday -> Dec 31).
    calendar = holidays.country_holidays("US", subdiv=subdivision, years=(year - 1, year, year + 1))
    days = {d for d, name in calendar.items() if not any(skip in name for skip in NOT_A_DAY_OFF)}
    for rule in CITY_EXTRA_HOLIDAYS.get(city, ()):
        for neighbour in (year - 1, year, year + 1):
            days.update(rule(neighbour))
    return frozenset(d.toordinal() - _EPOCH_ORDINAL for d in days if d.year == year)


@functools.lru_cache(maxsize=256)
def _holiday_array(city: str, first_year: int, last_year: int) -> np.ndarray:
    """Sorted days off over a year range: the vectorised form of `holiday_days`, cached per range."""
    days: set[int] = set()
    for year in range(first_year, last_year + 1):
        days.update(holiday_days(city, year))
    return np.array(sorted(days), dtype=np.int64)


def is_working_day(city: str, day: int) -> bool:
    """Whether a local day (days since 1970-01-01) is a weekday that is not a holiday in that city."""
    if (day + 3) % 7 >= 5:  # 1970-01-01 was a Thursday (weekday 3)
        return False
    year = (dt.date.fromordinal(day + _EPOCH_ORDINAL)).year
    return day not in holiday_days(city, year)


# --- cities as codes ----------------------------------------------------------------------------------


class CityCodes(NamedTuple):
    """Each row's city as an index into `labels`; a missing or blank city is the unknown city ""."""

    codes: np.ndarray
    labels: list[str]


CityLike = CityCodes | pd.Series | np.ndarray | Sequence[object]


def city_codes(cities: CityLike) -> CityCodes:
    """Factorize a city column once, so per-city work loops over a handful of cities, not over rows."""
    if isinstance(cities, CityCodes):
        return cities
    codes, uniques = pd.factorize(pd.Series(cities) if not isinstance(cities, pd.Series) else cities)
    labels: list[str] = []
    index: dict[str, int] = {}
    remap = np.empty(len(uniques) + 1, dtype=np.int64)
    for i, value in enumerate([*(str(u) for u in uniques), ""]):
        label = value if value.strip() else ""
        remap[i] = index.setdefault(label, len(labels))
        if remap[i] == len(labels):
            labels.append(label)
    return CityCodes(remap[codes], labels)


def _per_city(cities: CityCodes) -> list[tuple[str, np.ndarray]]:
    """(city, row mask) for every city that has rows."""
    counts = np.bincount(cities.codes, minlength=len(cities.labels))
    return [(label, cities.codes == i) for i, label in enumerate(cities.labels) if counts[i]]


# --- local wall clock ----------------------------------------------------------------------------------


def local_wall_us(created_at: pd.Series, cities: CityLike) -> np.ndarray:
    """Local wall-clock time of each instant in its city's zone, as microseconds since local 1970-01-01.

    `created_at` is tz-aware (UTC); NaT comes back as the int64 minimum. Time zones are converted once
    per distinct zone (a handful), not per row.
    """
    utc = pd.Series(created_at).reset_index(drop=True)
    if getattr(utc.dtype, "tz", None) is None:
        utc = pd.to_datetime(utc, utc=True)
    cities = city_codes(cities)
    out = np.empty(len(utc), dtype=np.int64)
    zones = sorted({city_timezone(cities.labels[i]) for i in np.unique(cities.codes)})
    zone_of_label = np.array([zones.index(z) if z in zones else -1 for z in map(city_timezone, cities.labels)])
    zone_codes = zone_of_label[cities.codes]
    for z, zone in enumerate(zones):
        mask = zone_codes == z
        part = utc if len(zones) == 1 else utc[mask]
        local = part.dt.tz_convert(zone).dt.tz_localize(None).to_numpy(dtype="datetime64[us]").view(np.int64)
        if len(zones) == 1:
            out[:] = local
        else:
            out[mask] = local
    return out


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def local_wall_us_row(created_at: dt.datetime, city: str) -> int:
    """`local_wall_us` for one instant (naive datetimes are taken as UTC, as in `schema.conform`)."""
    if isinstance(created_at, pd.Timestamp):
        # Timestamp arithmetic costs ~15 us a call; the stdlib datetime it wraps is exact to the microsecond.
        created_at = created_at.to_pydatetime(warn=False)
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=dt.UTC)
    wall = created_at.astimezone(_zone(city_timezone(city))).replace(tzinfo=None)
    delta = wall - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# --- features ------------------------------------------------------------------------------------------


def calendar_features(created_at: pd.Series, cities: CityLike) -> dict[str, np.ndarray]:
    """The `CALENDAR_FEATURES` columns (float64) for many requests, from their UTC creation times."""
    cities = city_codes(cities)
    return calendar_from_wall(local_wall_us(created_at, cities), cities)


def calendar_from_wall(wall_us: np.ndarray, cities: CityLike) -> dict[str, np.ndarray]:
    """Calendar columns from local wall-clock microseconds (see `local_wall_us`)."""
    n = len(wall_us)
    day = np.floor_divide(wall_us, DAY_US)
    time_of_day = wall_us - day * DAY_US
    # Exactly 00:00:00.000000 local is how date-only exports write a request (NYC 2012-13 sets whole
    # agencies' complaints to midnight): the hour is unknown there, not 0 — else a model learns the format.
    hour = np.where(time_of_day == 0, np.nan, np.floor_divide(time_of_day, HOUR_US))
    weekday = (day + 3) % 7
    dates = day.astype("datetime64[D]")
    month = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day_of_year = day - dates.astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64) + 1
    is_holiday = np.zeros(n, dtype=bool)
    to_next = np.zeros(n, dtype=np.int64)
    for city, mask in _per_city(city_codes(cities)):
        is_holiday[mask], to_next[mask] = _holidays_and_next(city, day[mask])
    return {
        "local_hour": hour.astype(np.float64),
        "weekday": weekday.astype(np.float64),
        "month": month.astype(np.float64),
        "day_of_year": day_of_year.astype(np.float64),
        "is_weekend": (weekday >= 5).astype(np.float64),
        "is_holiday": is_holiday.astype(np.float64),
        "days_to_next_working_day": to_next.astype(np.float64),
    }


def _holidays_and_next(city: str, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is holiday, days to the next working day) for local days of one city, over a dense day range."""
    if len(day) == 0:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64)
    first, last = int(day.min()), int(day.max()) + _MAX_NON_WORKING_RUN
    years = day.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    span = np.arange(first, last + 1)
    first_year = int(years.min())
    last_year = int(span[-1].astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64)) + 1970
    holidays_in_range = _holiday_array(city, first_year, last_year)
    holiday_span = np.isin(span, holidays_in_range)
    working = ~holiday_span & ((span + 3) % 7 < 5)
    position = np.arange(len(span))
    # Next working position at or after each day: a reversed running minimum over working positions.
    next_working = np.minimum.accumulate(np.where(working, position, len(span))[::-1])[::-1]
    offset = day - first
    return holiday_span[offset], next_working[offset] - offset


def calendar_row(wall_us: int, city: str) -> tuple[float, ...]:
    """The `CALENDAR_FEATURES` values for one request from its local wall clock (see `local_wall_us_row`)."""
    day = wall_us // DAY_US
    time_of_day = wall_us - day * DAY_US
    hour = math.nan if time_of_day == 0 else time_of_day // HOUR_US
    weekday = (day + 3) % 7
    date = dt.date.fromordinal(day + _EPOCH_ORDINAL)
    day_of_year = day - (dt.date(date.year, 1, 1).toordinal() - _EPOCH_ORDINAL) + 1
    is_holiday = day in holiday_days(city, date.year)
    to_next = 0
    while not is_working_day(city, day + to_next) and to_next < _MAX_NON_WORKING_RUN:
        to_next += 1
    return (
        float(hour),
        float(weekday),
        float(date.month),
        float(day_of_year),
        float(weekday >= 5),
        float(is_holiday),
        float(to_next),
    )
