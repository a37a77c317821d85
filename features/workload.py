"""Point-in-time workload features: how busy each queue was at the start of a request's day.

For a request created on local day D in its city, every feature here is computed *as of 00:00 local time
on D* from strictly earlier events, so a request never sees itself, its same-day neighbours or anything that
happened after its day began:

- ``backlog``: requests created before that instant and not yet gone from the queue at it (closed,
  cancelled or referred requests leave at their ``closed_at``; one closed "before" its creation leaves at
  creation; open ones never leave);
- ``intake{w}d``: requests created in the ``w`` local days before D (default 7 and 28);
- ``closed{m}d`` and ``median_hours{m}d``: the number and the exact median hours-to-close of requests
  *resolved* (status ``closed``, closed not before created — as in ``training.labels``) whose closing fell
  in the ``m`` local days before D (default 28).

Levels (each keyed within its city):
- ``type``: the request type;
- ``dept``: the department the request type usually goes to. A new request's department is unknown at
  intake (routing is itself predicted), so neither training nor serving may key on the row's own
  ``department``. Both key on ``type_department`` — the majority department of each (city, type) learned by
  ``learn_type_department`` over the training history (``FeaturePipeline.fit``) — and history events are
  counted under that same mapped department. The department queue is thus "all types this department
  usually handles", and the row's own outcome never enters. The map is fitted once over the training
  period, like a vocabulary, and saved with the pipeline so serving uses the very same one;
- ``area``: the council district (missing district -> NaN features for this level; the city level and
  the grid cell still describe where);
- ``city``: the whole city.

One code path serves both uses: ``workload_features`` asks it for every (key, creation day) pair of the
training rows; ``workload_snapshot`` asks it for every key on one day (today) and returns the table the
service loads (``WorkloadSnapshot``) and looks requests up in. A request created on the snapshot's day thus
gets exactly the numbers training computed for requests of that day.

Cost is O(n log n), no Python loop over rows: events are encoded as int64 ``key << 32 | day`` and sorted;
counts in any window are two ``searchsorted`` calls on the sorted codes, for all queries at once. The
window median is exact: resolved events sorted by (key, closing day) make each window a contiguous index
range, and a wavelet matrix over the ranks of their durations answers all "k-th smallest in range"
queries level by level (log2(n) vectorised passes), so no histogram or sketch approximation is involved.

Caveat: the first weeks of any history under-count the backlog (requests opened before the data starts
are missing); that is a property of the data window, the same in training and serving.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.calendar import DAY_US, CityCodes, city_codes, local_wall_us
from features.schema import RECORD_DTYPES

log = logging.getLogger(__name__)

LEVELS: tuple[str, ...] = ("type", "dept", "area", "city")
HISTORY_STAT = "history_days"
# Days without a single request that still count as unbroken history (a small city's quiet weekend); a
# longer gap means the data is missing there, and history starts again after it.
MAX_GAP_DAYS = 7
MEDIAN_LEVELS: frozenset[str] = frozenset({"type", "dept", "city"})
HOUR_SECONDS = 3600.0
# Room for window arithmetic below the earliest day without leaving a key's block of the int64 code.
_DAY_BITS = 32
_MAX_DAY = (1 << _DAY_BITS) - 1

TypeDepartment = Mapping[str, Mapping[str, str]]  # city -> request type -> department


@dataclass(frozen=True)
class WorkloadSpec:
    """Which windows the workload features use; the feature names follow from it.

    `history_aware` (the default): a statistic whose window reaches back past the city's unbroken history
    (`_Events.history_days`: back to the data's first day or its last long gap) is missing, not a count of
    the part of the window the data happens to cover, and the city level carries `history_days`, so a model
    learns to trust workload only where it is real. The backlog needs `backlog_history_days` of history: a
    file that starts yesterday does not show the requests still open from last month. Pipelines saved before
    this existed load with it off.
    """

    intake_windows_days: tuple[int, ...] = (7, 28)
    median_window_days: int = 28
    history_aware: bool = True
    backlog_history_days: int = 28

    def stats(self, level: str | None = None) -> tuple[str, ...]:
        """Statistic names for one level (all of them when `level` is None), in column order."""
        counts = ("backlog", *(f"intake{w}d" for w in self.intake_windows_days))
        durations = (f"closed{self.median_window_days}d", f"median_hours{self.median_window_days}d")
        history = (HISTORY_STAT,) if self.history_aware and level in (None, "city") else ()
        if level is None or level in MEDIAN_LEVELS:
            return counts + durations + history
        return counts + history

    def history_needed(self, stat: str) -> int:
        """Days of history a statistic needs before its as-of to be real (0: always real)."""
        if not self.history_aware or stat == HISTORY_STAT:
            return 0
        if stat == "backlog":
            return self.backlog_history_days
        if stat.startswith("intake"):
            return int(stat[len("intake") : -1])
        return self.median_window_days

    def masked(self, level: str, values: np.ndarray, history: np.ndarray) -> np.ndarray:
        """`values` (rows x stats(level)) with each statistic missing where `history` (days) is too short."""
        out = np.array(values, dtype=np.float64, copy=True)
        for i, stat in enumerate(self.stats(level)):
            need = self.history_needed(stat)
            if need:
                out[history < need, i] = np.nan
        return out

    def feature_names(self) -> list[str]:
        """`wl_{level}_{stat}` for every level and its statistics."""
        return [f"wl_{level}_{stat}" for level in LEVELS for stat in self.stats(level)]

    def empty_values(self, level: str) -> tuple[float, ...]:
        """What a key with no events at all gets: zero counts and an undefined (NaN) median (the history days
        of its city are filled in by the caller)."""
        return tuple(
            math.nan if stat.startswith("median") or stat == HISTORY_STAT else 0.0 for stat in self.stats(level)
        )


def with_record_columns(records: pd.DataFrame) -> pd.DataFrame:
    """`records` with every canonical column present: absent ones are added all-missing at their declared
    dtype (an intake-only frame has no outcomes yet). Existing columns are not copied (copy-on-write).

    Raises ValueError when a creation time is missing: every feature here is anchored on it.
    """
    missing = {name: dtype for name, dtype in RECORD_DTYPES.items() if name not in records.columns}
    if missing:
        n = len(records)
        records = records.assign(
            **{
                # An all-missing integer column needs the nullable dtype.
                name: pd.Series([None] * n, index=records.index).astype("Int64" if dtype == "int64" else dtype)
                for name, dtype in missing.items()
            }
        )
    if records["created_at"].isna().any():
        raise ValueError("created_at is missing on some rows; quarantine them before computing features")
    return records


# --- the type -> department map ------------------------------------------------------------------------


def learn_type_department(records: pd.DataFrame) -> dict[str, dict[str, str]]:
    """Majority department of each (city, request type) in `records` (ties: alphabetically first).

    JSON-friendly nested dict ``{city: {request_type: department}}``. Rows without a type or a department
    are ignored. Vectorised: the three columns are factorized once and only distinct triples are counted.
    """
    records = with_record_columns(records)
    cities = city_codes(records["city"])
    type_codes, type_labels = text_codes(records["request_type"])
    dept_codes, dept_labels = text_codes(records["department"])
    pairs = _pair_keys(cities.codes, cities.labels, type_codes, type_labels)
    valid = (pairs.codes >= 0) & (dept_codes >= 0)
    triples, counts = np.unique(pairs.codes[valid] * max(len(dept_labels), 1) + dept_codes[valid], return_counts=True)
    width = max(len(dept_labels), 1)
    table = pd.DataFrame(
        {
            "pair": triples // width,
            "department": [dept_labels[int(d)] for d in triples % width],
            "n": counts,
        }
    )
    table = table.sort_values(["pair", "n", "department"], ascending=[True, False, True])
    best = table.drop_duplicates("pair", keep="first")
    mapping: dict[str, dict[str, str]] = {}
    for pair, department in zip(best["pair"].tolist(), best["department"].tolist(), strict=True):
        city, request_type = pairs.labels[pair]
        mapping.setdefault(city, {})[request_type] = department
    return {city: dict(sorted(types.items())) for city, types in sorted(mapping.items())}


def row_keys(row: Mapping[str, object], type_department: TypeDepartment) -> dict[str, str | None]:
    """The key of one request at each level (None where it has none); the per-request form of `_level_keys`."""
    city = clean_text(row.get("city")) or ""
    request_type = clean_text(row.get("request_type"))
    department = type_department.get(city, {}).get(request_type) if request_type is not None else None
    return {
        "type": request_type,
        "dept": department,
        "area": clean_text(row.get("council_district")),
        "city": city,
    }


def clean_text(value: object) -> str | None:
    """A text field as the key it is, or None when missing/blank (the same rule as the vectorised path)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    text = str(value)
    return text if text.strip() else None


# --- events --------------------------------------------------------------------------------------------


@dataclass
class _Keys:
    """Integer key codes per row (-1 = no key) and what each code means: (city, key)."""

    codes: np.ndarray
    labels: list[tuple[str, str]]


@dataclass
class _Events:
    """Per-row arrays the statistics are computed from, all in local days of the row's city."""

    created_day: np.ndarray
    exit_day: np.ndarray  # the day the request left the queue; only where has_exit
    has_exit: np.ndarray
    resolved: np.ndarray
    close_day: np.ndarray  # only where resolved
    hours: np.ndarray  # only where resolved
    keys: dict[str, _Keys] = field(default_factory=dict)

    def history_days(self, level: str, q_key: np.ndarray, q_day: np.ndarray) -> np.ndarray:
        """Days of unbroken history before each query day in the query key's city: the data's days with
        requests, back to the last gap of more than MAX_GAP_DAYS (a file that starts yesterday has 1 day;
        yearly files two years apart start afresh after the gap). 0 where the city has no earlier data."""
        city = self.keys["city"]
        city_of_key = {label: i for i, label in enumerate(c for c, _ in city.labels)}
        key_city = np.array([city_of_key.get(c, -1) for c, _ in self.keys[level].labels] + [-1], dtype=np.int64)
        q_city = key_city[np.where(q_key >= 0, q_key, len(key_city) - 1)]
        history = np.zeros(len(q_day), dtype=np.float64)
        for code in np.unique(q_city[q_city >= 0]):
            days = np.unique(self.created_day[city.codes == code])
            if not len(days):
                continue
            breaks = np.flatnonzero(np.diff(days) > MAX_GAP_DAYS) + 1
            run_start = days[np.maximum.accumulate(np.isin(np.arange(len(days)), breaks) * np.arange(len(days)))]
            mine = np.flatnonzero(q_city == code)
            last = np.searchsorted(days, q_day[mine]) - 1  # the last day with requests before the query day
            known = (last >= 0) & (q_day[mine] - days[np.maximum(last, 0)] <= MAX_GAP_DAYS)
            history[mine] = np.where(known, q_day[mine] - run_start[np.maximum(last, 0)], 0.0)
        return history


def text_codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Factorize a text column (int64 codes, labels), treating missing and blank values alike as -1."""
    codes, uniques = pd.factorize(values)
    labels = [str(u) for u in uniques]
    blank = np.array([not label.strip() for label in labels] + [True], dtype=bool)
    return np.where(blank[codes], -1, codes).astype(np.int64), labels


def _pair_keys(city_index: np.ndarray, cities: list[str], codes: np.ndarray, labels: list[str]) -> _Keys:
    """Combine city codes and value codes into one dense key code per (city, value) pair."""
    valid = codes >= 0
    width = max(len(labels), 1)
    combined = city_index[valid].astype(np.int64) * width + codes[valid]
    dense, uniques = pd.factorize(combined)
    out = np.full(len(codes), -1, dtype=np.int64)
    out[valid] = dense
    return _Keys(out, [(cities[int(u) // width], labels[int(u) % width]) for u in uniques])


def _level_keys(records: pd.DataFrame, type_department: TypeDepartment, cities: CityCodes) -> dict[str, _Keys]:
    """Key codes of every row at every level (see the module docstring for what each level means)."""
    # A missing city is the unknown city "": it still has a (UTC) clock and a city-level queue.
    type_codes, type_labels = text_codes(records["request_type"])
    area_codes, area_labels = text_codes(records["council_district"])
    keys = {
        "type": _pair_keys(cities.codes, cities.labels, type_codes, type_labels),
        "area": _pair_keys(cities.codes, cities.labels, area_codes, area_labels),
        "city": _Keys(cities.codes.astype(np.int64), [(c, c) for c in cities.labels]),
    }
    keys["dept"] = _department_keys(keys["type"], type_department)
    return keys


def _department_keys(type_keys: _Keys, type_department: TypeDepartment) -> _Keys:
    """Map each (city, type) key to its usual department, then code the (city, department) pairs."""
    dept_code_of_type = np.full(len(type_keys.labels) + 1, -1, dtype=np.int64)  # last slot: no type
    dept_labels: list[tuple[str, str]] = []
    dept_index: dict[tuple[str, str], int] = {}
    for i, (city, request_type) in enumerate(type_keys.labels):
        department = type_department.get(city, {}).get(request_type)
        if department is None:
            continue
        pair = (city, department)
        if pair not in dept_index:
            dept_index[pair] = len(dept_labels)
            dept_labels.append(pair)
        dept_code_of_type[i] = dept_index[pair]
    return _Keys(dept_code_of_type[type_keys.codes], dept_labels)


def _events(records: pd.DataFrame, type_department: TypeDepartment) -> _Events:
    """Local days of creation, queue exit and resolution, and durations, for every row."""
    cities = city_codes(records["city"])
    created = records["created_at"]
    closed = records["closed_at"]
    created_day = np.floor_divide(local_wall_us(created, cities), DAY_US)
    has_exit = closed.notna().to_numpy()
    closed_day = np.floor_divide(local_wall_us(closed, cities), DAY_US)
    exit_day = np.where(has_exit, np.maximum(closed_day, created_day), 0)
    seconds = (closed - created).dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)
    resolved = (records["status"] == "closed").to_numpy(dtype=bool, na_value=False) & has_exit & (seconds >= 0)
    return _Events(
        created_day=created_day,
        exit_day=exit_day,
        has_exit=has_exit,
        resolved=resolved,
        close_day=np.where(resolved, closed_day, 0),
        hours=np.where(resolved, seconds / HOUR_SECONDS, np.nan),
        keys=_level_keys(records, type_department, cities),
    )


# --- the one computation -------------------------------------------------------------------------------


def _level_stats(
    events: _Events, level: str, q_key: np.ndarray, q_day: np.ndarray, spec: WorkloadSpec
) -> dict[str, np.ndarray]:
    """Statistics of one level for queries (key code >= 0, local day D), as of the start of day D.

    Both training (every row's (key, creation day)) and the snapshot (every key, today) come through here.
    """
    key = events.keys[level].codes
    valid = key >= 0
    longest = max(*spec.intake_windows_days, spec.median_window_days)
    base = int(min(events.created_day.min(initial=0), q_day.min(initial=0))) - longest - 1

    def code(k: np.ndarray, day: np.ndarray) -> np.ndarray:
        return (k.astype(np.int64) << _DAY_BITS) | np.clip(day - base, 0, _MAX_DAY)

    created = np.sort(code(key[valid], events.created_day[valid]))
    leaving = valid & events.has_exit
    exits = np.sort(code(key[leaving], events.exit_day[leaving]))
    at_day = code(q_key, q_day)
    block = code(q_key, np.full(len(q_key), base))  # the first code of each query's key

    created_before = np.searchsorted(created, at_day) - np.searchsorted(created, block)
    exited_before = np.searchsorted(exits, at_day) - np.searchsorted(exits, block)
    out = {"backlog": (created_before - exited_before).astype(np.float64)}
    for window in spec.intake_windows_days:
        since = np.searchsorted(created, code(q_key, q_day - window))
        out[f"intake{window}d"] = (np.searchsorted(created, at_day) - since).astype(np.float64)

    if level in MEDIAN_LEVELS:
        window = spec.median_window_days
        done = valid & events.resolved
        done_codes = code(key[done], events.close_day[done])
        order = np.argsort(done_codes)  # any order within a (key, day) block gives the same medians
        done_codes = done_codes[order]
        hours = events.hours[done][order]
        lo = np.searchsorted(done_codes, code(q_key, q_day - window))
        hi = np.searchsorted(done_codes, at_day)
        out[f"closed{window}d"] = (hi - lo).astype(np.float64)
        out[f"median_hours{window}d"] = range_median(hours, lo, hi)
    if spec.history_aware:
        history = events.history_days(level, q_key, q_day)
        for stat in list(out):
            out[stat] = np.where(history >= spec.history_needed(stat), out[stat], np.nan)
        if level == "city":
            out[HISTORY_STAT] = history
    return out


def range_median(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Exact median of ``values[lo[i]:hi[i]]`` for every i (NaN for an empty range), O((n + q) log n).

    A wavelet matrix over the ranks of `values`: at each bit (from the top) the elements are stably split
    by that bit, and every query's range and target rank follow into the half that holds its k-th
    element — one vectorised pass per bit for all queries together. Even counts average the two middle
    values, as ``np.median`` does.
    """
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    out = np.full(len(lo), np.nan)
    count = hi - lo
    some = count > 0
    if not some.any():
        return out
    by_value = np.argsort(values)  # tie order is irrelevant: equal values are the same median
    rank_type = np.int32 if len(values) < 2**31 else np.int64  # half the memory traffic per pass
    ranks = np.empty(len(values), dtype=rank_type)
    ranks[by_value] = np.arange(len(values), dtype=rank_type)
    sorted_values = values[by_value]
    n_q = int(some.sum())
    lower = _kth_in_range(
        ranks,
        np.concatenate([lo[some], lo[some]]),
        np.concatenate([hi[some], hi[some]]),
        np.concatenate([(count[some] - 1) // 2, count[some] // 2]),
    )
    out[some] = (sorted_values[lower[:n_q]] + sorted_values[lower[n_q:]]) / 2.0
    return out


def _kth_in_range(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, k: np.ndarray) -> np.ndarray:
    """k-th smallest (0-based) of ``values[lo:hi]`` per query; `values` are non-negative integers."""
    current = values
    lo, hi, k = lo.copy(), hi.copy(), k.copy()
    result = np.zeros(len(k), dtype=np.int64)
    zeros_before = np.empty(len(values) + 1, dtype=values.dtype)
    zeros_before[0] = 0
    for bit in range(max(int(values.max()).bit_length(), 1) - 1, -1, -1):
        is_zero = ((current >> bit) & 1) == 0
        np.cumsum(is_zero, out=zeros_before[1:])
        n_zeros = zeros_before[-1]
        zl, zr = zeros_before[lo], zeros_before[hi]
        in_zeros = zr - zl
        go_left = k < in_zeros
        result |= (~go_left).astype(np.int64) << bit
        lo = np.where(go_left, zl, n_zeros + lo - zl)
        hi = np.where(go_left, zr, n_zeros + hi - zr)
        k = np.where(go_left, k, k - in_zeros)
        current = np.concatenate([current[is_zero], current[~is_zero]])
    return result


# --- training: features of every row -------------------------------------------------------------------


def workload_features(
    records: pd.DataFrame, type_department: TypeDepartment, spec: WorkloadSpec | None = None
) -> pd.DataFrame:
    """Point-in-time workload features of every row of `records` (see `workload_arrays`), as a frame."""
    columns = workload_arrays(records, type_department, spec)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(records)), copy=False)


def workload_arrays(
    records: pd.DataFrame, type_department: TypeDepartment, spec: WorkloadSpec | None = None
) -> dict[str, np.ndarray]:
    """Point-in-time workload features of every row of `records`, with `records` as its own history.

    Returns float64 arrays named ``spec.feature_names()``, aligned with `records` by position (the
    pipeline's bulk transform reads these directly, without a DataFrame in between). Rows without a key
    at a level (no type, no mapped department, no district) get NaN for that level. To featurise a later
    slice with the earlier history, compute on the whole frame and slice: a row's features depend only
    on events before its own day.
    """
    spec = spec or WorkloadSpec()
    records = with_record_columns(records.reset_index(drop=True))
    events = _events(records, type_department)
    n = len(records)
    columns: dict[str, np.ndarray] = {}
    for level in LEVELS:
        key = events.keys[level].codes
        valid = key >= 0
        # Queries: the distinct (key, creation day) pairs, found by hashing (no sort of all rows).
        first_day = int(events.created_day.min(initial=0))
        pair_codes = (key[valid] << _DAY_BITS) | (events.created_day[valid] - first_day)
        inverse, pairs = pd.factorize(pair_codes)
        pairs = np.asarray(pairs, dtype=np.int64)
        stats = _level_stats(events, level, pairs >> _DAY_BITS, (pairs & _MAX_DAY) + first_day, spec)
        for stat in spec.stats(level):
            column = np.full(n, np.nan)
            column[valid] = stats[stat][inverse]
            columns[f"wl_{level}_{stat}"] = column
    log.debug("workload features for %d rows", n)
    return columns


# --- serving: today's table ----------------------------------------------------------------------------

SNAPSHOT_KEY_COLUMNS: tuple[str, ...] = ("city", "level", "key", "day")


def workload_snapshot(
    records: pd.DataFrame,
    as_of: dt.datetime | pd.Timestamp,
    type_department: TypeDepartment | None = None,
    spec: WorkloadSpec | None = None,
) -> pd.DataFrame:
    """The workload table for every key, as of 00:00 local time of `as_of`'s day in each city.

    One row per (city, level, key) seen in `records`, with the ISO local ``day`` it describes and every
    statistic of ``spec.stats()`` (NaN where a level has no such statistic). Pass the fitted pipeline's
    ``type_department_`` (or use ``FeaturePipeline.workload_snapshot``) so the department level is keyed
    as in training; without one, the map is learned from `records`.
    """
    spec = spec or WorkloadSpec()
    records = with_record_columns(records.reset_index(drop=True))
    if type_department is None:
        type_department = learn_type_department(records)
    as_of = pd.Timestamp(as_of)
    if as_of.tzinfo is None:
        as_of = as_of.tz_localize("UTC")
    events = _events(records, type_department)
    city_labels = events.keys["city"].labels
    cities = np.array([city for city, _ in city_labels], dtype=object)
    today = np.floor_divide(
        local_wall_us(pd.Series([as_of] * len(cities), dtype="datetime64[us, UTC]"), cities), DAY_US
    )
    day_of_city = dict(zip(cities.tolist(), today.tolist(), strict=True))
    frames = []
    all_stats = spec.stats()
    for level in LEVELS:
        labels = events.keys[level].labels
        q_key = np.arange(len(labels), dtype=np.int64)
        q_day = np.array([day_of_city[city] for city, _ in labels], dtype=np.int64)
        stats = _level_stats(events, level, q_key, q_day, spec)
        frame = pd.DataFrame(
            {
                "city": pd.array([city for city, _ in labels], dtype="str"),
                "level": pd.array([level] * len(labels), dtype="str"),
                "key": pd.array([key for _, key in labels], dtype="str"),
                "day": pd.array([iso_day(int(d)) for d in q_day], dtype="str"),
            }
        )
        for stat in all_stats:
            frame[stat] = stats.get(stat, np.full(len(labels), np.nan))
        if spec.history_aware:  # every row says how much history its numbers stand on
            frame[HISTORY_STAT] = events.history_days(level, q_key, q_day)
        frames.append(frame)
    snapshot = pd.concat(frames, ignore_index=True)
    log.info("workload snapshot as of %s: %d keys", as_of.isoformat(), len(snapshot))
    return snapshot


def iso_day(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


class WorkloadSnapshot:
    """A snapshot table turned into plain dict lookups, built once when the service loads it.

    ``values(city, level, key)`` returns the level's statistics in ``spec.stats(level)`` order: the
    table's row when the key is there; zero counts and a NaN median when the key has no history (what
    training computes for a key never seen before); all NaN when the level has no key (None) or the city is
    not in the snapshot at all (no data: better unknown than an empty queue).
    """

    def __init__(
        self,
        values: dict[tuple[str, str, str], tuple[float, ...]],
        days: dict[str, int],
        spec: WorkloadSpec,
    ) -> None:
        self._values = values
        self.days = days
        self.spec = spec
        self.history_days = {city: values.get((city, "city", city), ()) for city in days}
        self.history_days = {
            city: float(row[spec.stats("city").index(HISTORY_STAT)]) if spec.history_aware and row else math.nan
            for city, row in self.history_days.items()
        }
        self._empty: dict[tuple[str, str], tuple[float, ...]] = {}
        self._missing = {level: (math.nan,) * len(spec.stats(level)) for level in LEVELS}

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, spec: WorkloadSpec | None = None) -> WorkloadSnapshot:
        """Build the lookup from a `workload_snapshot` frame (e.g. read back from Parquet)."""
        spec = spec or WorkloadSpec()
        missing = [c for c in (*SNAPSHOT_KEY_COLUMNS, *spec.stats()) if c not in frame.columns]
        if missing:
            raise ValueError(f"workload snapshot lacks columns {missing}")
        values: dict[tuple[str, str, str], tuple[float, ...]] = {}
        days: dict[str, int] = {}
        for level in LEVELS:
            part = frame[frame["level"] == level]
            stats = part[list(spec.stats(level))].to_numpy(dtype=np.float64)
            for city, key, row in zip(part["city"].tolist(), part["key"].tolist(), stats.tolist(), strict=True):
                values[(city, level, key)] = tuple(row)
        for city, day in zip(frame["city"].tolist(), frame["day"].tolist(), strict=True):
            days.setdefault(city, (dt.date.fromisoformat(day) - dt.date(1970, 1, 1)).days)
        return cls(values, days, spec)

    def values(self, city: str, level: str, key: str | None) -> tuple[float, ...]:
        """The level's statistics for one key (see the class docstring for the fallbacks)."""
        if key is None or city not in self.days:
            return self._missing[level]
        found = self._values.get((city, level, key))
        return found if found is not None else self._no_events(city, level)

    def _no_events(self, city: str, level: str) -> tuple[float, ...]:
        """A key the city's history never saw: zero counts where the history is long enough to say so."""
        empty = self._empty.get((city, level))
        if empty is None:
            values = np.array([self.spec.empty_values(level)])
            history = np.array([self.history_days.get(city, math.nan)])
            empty = (
                tuple(self.spec.masked(level, values, history)[0].tolist())
                if self.spec.history_aware
                else tuple(values[0])
            )
            self._empty[(city, level)] = empty
        return empty
