"""Point-in-time workload features: hand-computed tiny examples, a brute-force reference, exact medians,
and the parity between training-time features and today's snapshot."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from features.schema import city_timezone, conform
from features.workload import (
    MAX_GAP_DAYS,
    WorkloadSnapshot,
    WorkloadSpec,
    learn_type_department,
    range_median,
    row_keys,
    workload_features,
    workload_snapshot,
)

LA = "America/Los_Angeles"
# The counting tests below use days of data that do not fill the windows: counted as if history were complete.
COUNTING = WorkloadSpec(history_aware=False)
SPEC = COUNTING


def la(local: str) -> pd.Timestamp:
    """A Los Angeles wall-clock time as a UTC instant."""
    return pd.Timestamp(local, tz=LA).tz_convert("UTC")


def records(rows: list[dict]) -> pd.DataFrame:
    """Canonical records from a few fields; defaults: LA, type A, district 1, closed."""
    full = []
    for i, row in enumerate(rows):
        base = {
            "request_id": f"r{i}",
            "city": "la",
            "request_type": "A",
            "council_district": "1",
            "status": "closed" if row.get("closed_at") is not None else "open",
            "source_row": i,
        }
        full.append(base | row)
    return conform(pd.DataFrame(full))


def feature(frame: pd.DataFrame, row: int, name: str, type_department: dict | None = None) -> float:
    return float(workload_features(frame, type_department or {}, COUNTING)[name].iloc[row])


# --- hand-computed examples ----------------------------------------------------------------------------


@pytest.fixture
def queue() -> pd.DataFrame:
    return records(
        [
            {"created_at": la("2024-01-01 09:00"), "closed_at": la("2024-01-01 12:00")},  # 0: 3 h, same day
            {"created_at": la("2024-01-01 10:00"), "closed_at": la("2024-01-03 10:00")},  # 1: 48 h
            {"created_at": la("2024-01-02 08:00")},  # 2: never closed
            {
                "created_at": la("2024-01-02 23:00"),
                "closed_at": la("2024-01-03 01:00"),
                "status": "cancelled",
            },  # 3: leaves the queue at 01:00 on Jan 3, not a resolution
            {"created_at": la("2024-01-03 09:00")},  # 4: the request we look at
        ]
    )


def test_backlog_counts_what_was_open_at_local_midnight(queue: pd.DataFrame) -> None:
    wl = workload_features(queue, {}, COUNTING)
    # Row 4 (Jan 3): created before Jan 3 00:00 = rows 0-3; row 0 closed Jan 1; rows 1 and 3 closed after
    # midnight; row 2 never: backlog 3.
    assert wl["wl_type_backlog"].tolist() == [0, 0, 1, 1, 3]
    assert wl["wl_type_intake7d"].tolist() == [0, 0, 2, 2, 4]
    assert wl["wl_area_backlog"].tolist() == wl["wl_type_backlog"].tolist()
    assert wl["wl_city_intake28d"].tolist() == [0, 0, 2, 2, 4]


def test_same_day_requests_never_see_each_other(queue: pd.DataFrame) -> None:
    wl = workload_features(queue, {}, COUNTING)
    # Rows 2 and 3 share Jan 2: row 3 (23:00) does not count row 2 (08:00).
    assert wl.iloc[2].equals(wl.iloc[3])
    # Rows 0 and 1 are the first day: nothing earlier at all.
    assert wl.loc[0, "wl_type_backlog"] == 0 and math.isnan(wl.loc[0, "wl_type_median_hours28d"])


def test_median_uses_resolved_requests_closed_before_midnight(queue: pd.DataFrame) -> None:
    wl = workload_features(queue, {}, COUNTING)
    # Row 4: only row 0 (3 h) was resolved before Jan 3 00:00 (row 1 closed at 10:00 that day; row 3 was
    # cancelled, which empties the queue but is no resolution).
    assert wl.loc[4, "wl_type_closed28d"] == 1
    assert wl.loc[4, "wl_type_median_hours28d"] == 3.0
    assert wl.loc[2, "wl_type_median_hours28d"] == 3.0


def test_day_boundary_is_local_not_utc() -> None:
    frame = records(
        [
            # Jan 1 23:30 in LA (Jan 2 07:30 UTC): an earlier local day, so it counts.
            {"created_at": pd.Timestamp("2024-01-02T07:30:00Z")},
            # Jan 2 00:30 in LA (08:30 UTC): the same local day as the request below, so it does not.
            {"created_at": pd.Timestamp("2024-01-02T08:30:00Z")},
            {"created_at": pd.Timestamp("2024-01-02T18:00:00Z")},  # Jan 2 10:00 in LA
        ]
    )
    assert feature(frame, 2, "wl_type_intake7d") == 1
    assert feature(frame, 2, "wl_type_backlog") == 1
    # In New York (UTC-5) all three are Jan 2 local: none counts for the last.
    assert feature(frame.assign(city="nyc"), 2, "wl_type_intake7d") == 0


def test_windows_and_exact_medians() -> None:
    query = la("2024-02-10 12:00")
    # Window of closings for a Feb 10 request: [Jan 13 00:00, Feb 10 00:00) local.
    closings = [
        ("2024-01-12 23:30", 1000.0),  # just before the window: excluded
        ("2024-01-13 00:30", 1.0),
        ("2024-01-20 10:00", 2.0),
        ("2024-02-01 10:00", 10.0),
        ("2024-02-09 23:59", 100.0),
        ("2024-02-10 00:30", 5000.0),  # the request's own day: excluded
    ]
    rows = [
        {"created_at": la(closed) - pd.Timedelta(hours=hours), "closed_at": la(closed)} for closed, hours in closings
    ]
    frame = records([*rows, {"created_at": query}])
    q = len(rows)
    assert feature(frame, q, "wl_type_closed28d") == 4
    assert feature(frame, q, "wl_type_median_hours28d") == 6.0  # median of 1, 2, 10, 100
    five = records(
        [*rows, {"created_at": la("2024-01-25 08:00"), "closed_at": la("2024-01-25 13:00")}, {"created_at": query}]
    )
    assert feature(five, q + 1, "wl_type_median_hours28d") == 5.0  # median of 1, 2, 5, 10, 100


def test_intake_windows_count_local_days() -> None:
    days = ["2024-03-01", "2024-03-03", "2024-03-04", "2024-03-09", "2024-03-10"]  # DST starts Mar 10
    frame = records([{"created_at": la(f"{d} 12:00")} for d in days] + [{"created_at": la("2024-03-11 00:30")}])
    # For Mar 11: the 7 days before are Mar 4..10 -> 3 requests; 28 days -> all 5.
    assert feature(frame, 5, "wl_type_intake7d") == 3
    assert feature(frame, 5, "wl_type_intake28d") == 5


def test_closed_before_created_leaves_at_creation_and_is_no_resolution() -> None:
    frame = records(
        [
            {"created_at": la("2024-01-01 10:00"), "closed_at": la("2024-01-01 09:00")},
            {"created_at": la("2024-01-02 10:00")},
        ]
    )
    assert feature(frame, 1, "wl_type_backlog") == 0
    assert feature(frame, 1, "wl_type_closed28d") == 0


def test_department_level_keys_on_the_usual_department_of_the_type() -> None:
    mapping = {"la": {"A": "Sanitation", "B": "Sanitation", "C": "Streets"}}
    frame = records(
        [
            {"created_at": la("2024-01-01 10:00"), "request_type": "A", "department": "Sanitation"},
            {"created_at": la("2024-01-01 11:00"), "request_type": "B", "department": "Streets"},
            {"created_at": la("2024-01-01 12:00"), "request_type": "C", "department": "Streets"},
            {"created_at": la("2024-01-02 10:00"), "request_type": "A", "department": "Streets"},
        ]
    )
    wl = workload_features(frame, mapping, COUNTING)
    # A and B go to Sanitation by the map, whatever department each row itself ended up with.
    assert wl.loc[3, "wl_dept_backlog"] == 2
    assert wl.loc[3, "wl_type_backlog"] == 1
    # The row's own department never matters.
    assert workload_features(frame.assign(department="Elsewhere"), mapping, COUNTING).equals(wl)
    # A type the map does not know has no department queue.
    unknown = workload_features(frame.assign(request_type="Z"), mapping, COUNTING)
    assert unknown["wl_dept_backlog"].isna().all()


def test_missing_district_leaves_area_missing_but_city_present() -> None:
    frame = records(
        [{"created_at": la("2024-01-01 10:00")}, {"created_at": la("2024-01-02 10:00"), "council_district": None}]
    )
    wl = workload_features(frame, {}, COUNTING)
    assert math.isnan(wl.loc[1, "wl_area_backlog"])
    assert wl.loc[1, "wl_city_backlog"] == 1


def test_learn_type_department_takes_the_majority_ties_alphabetical() -> None:
    frame = records(
        [{"created_at": la("2024-01-01 10:00"), "request_type": "A", "department": d} for d in ["X", "Y", "Y", None]]
        + [{"created_at": la("2024-01-01 10:00"), "request_type": "B", "department": d} for d in ["Q", "P"]]
        + [{"created_at": la("2024-01-01 10:00"), "request_type": None, "department": "X"}]
    )
    assert learn_type_department(frame) == {"la": {"A": "Y", "B": "P"}}


# --- a brute-force reference ---------------------------------------------------------------------------


def brute_force(frame: pd.DataFrame, type_department: dict) -> dict[str, np.ndarray]:
    """The definition, instant by instant, O(n^2): what the vectorised code must reproduce."""

    def key(value: object) -> str | None:
        return None if value is None or pd.isna(value) or not str(value).strip() else str(value)

    def midnight(ts: pd.Timestamp, zone: str, days_back: int = 0) -> pd.Timestamp:
        local = ts.tz_convert(zone).tz_localize(None).normalize() - pd.Timedelta(days=days_back)
        return local.tz_localize(zone).tz_convert("UTC")

    rows = frame.to_dict("records")
    for row in rows:
        row["keys"] = row_keys(row, type_department)
        closed, created = row["closed_at"], row["created_at"]
        row["exit"] = max(closed, created) if pd.notna(closed) else None
        row["resolved"] = row["status"] == "closed" and pd.notna(closed) and closed >= created
    out: dict[str, list[float]] = {name: [] for name in SPEC.feature_names()}
    for row in rows:
        city = key(row["city"]) or ""
        zone = city_timezone(city)
        start = midnight(row["created_at"], zone)
        for level in ("type", "dept", "area", "city"):
            mine = row["keys"][level]
            names = [f"wl_{level}_{stat}" for stat in SPEC.stats(level)]
            if mine is None:
                for name in names:
                    out[name].append(math.nan)
                continue
            peers = [p for p in rows if p["keys"][level] == mine and (key(p["city"]) or "") == city]
            values = [
                float(sum(p["created_at"] < start and not (p["exit"] is not None and p["exit"] < start) for p in peers))
            ]
            for window in SPEC.intake_windows_days:
                since = midnight(row["created_at"], zone, window)
                values.append(float(sum(since <= p["created_at"] < start for p in peers)))
            if len(names) > len(values):
                since = midnight(row["created_at"], zone, SPEC.median_window_days)
                hours = [
                    (p["closed_at"] - p["created_at"]).total_seconds() / 3600
                    for p in peers
                    if p["resolved"] and since <= p["closed_at"] < start
                ]
                values += [float(len(hours)), float(np.median(hours)) if hours else math.nan]
            for name, value in zip(names, values, strict=True):
                out[name].append(value)
    return {name: np.array(values) for name, values in out.items()}


def random_records(n: int, seed: int, start: str, days: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    created = pd.Timestamp(start, tz="UTC").value // 1000 + rng.integers(0, days * 86_400_000_000, n)
    hours = np.exp(rng.normal(2.5, 1.5, n)) * 3_600_000_000
    status = rng.choice(np.array(["closed", "open", "cancelled", "referred"]), n, p=[0.75, 0.15, 0.07, 0.03])
    closed = np.where(status == "open", np.nan, created + hours)
    before = rng.random(n) < 0.02  # a few closed before they were created
    closed = np.where(before, created - 3_600_000_000, closed)
    frame = pd.DataFrame(
        {
            "request_id": [f"x{i}" for i in range(n)],
            "city": rng.choice(np.array(["la", "nyc", "chicago", None], dtype=object), n, p=[0.5, 0.3, 0.15, 0.05]),
            "created_at": pd.to_datetime(created, unit="us", utc=True),
            "closed_at": pd.to_datetime(closed, unit="us", utc=True),
            "status": status,
            "request_type": rng.choice(np.array(["A", "B", "C", " ", None], dtype=object), n),
            "department": rng.choice(np.array(["D1", "D2", None], dtype=object), n),
            "council_district": rng.choice(np.array(["1", "2", None], dtype=object), n),
            "source_row": np.arange(n),
        }
    )
    return conform(frame)


def test_matches_the_brute_force_definition_across_dst() -> None:
    frame = pd.concat(
        [random_records(150, 1, "2024-02-20", 30), random_records(150, 2, "2024-10-20", 25)], ignore_index=True
    )
    mapping = learn_type_department(frame)
    fast = workload_features(frame, mapping, COUNTING)
    slow = brute_force(frame, mapping)
    for name in SPEC.feature_names():
        np.testing.assert_array_equal(fast[name].to_numpy(), slow[name], err_msg=name)


def test_history_aware_statistics_are_missing_until_their_window_is_covered() -> None:
    """A window reaching back past the city's unbroken history (its first day, or its last gap of more than
    MAX_GAP_DAYS) is missing, not a partial count; the city level says how many days stand behind each row."""
    frame = pd.concat(
        [random_records(300, 4, "2024-02-01", 50), random_records(100, 6, "2024-05-01", 30)], ignore_index=True
    )
    mapping = learn_type_department(frame)
    aware = workload_features(frame, mapping, WorkloadSpec())
    counted = workload_features(frame, mapping, COUNTING)
    history = np.zeros(len(frame))
    for city in frame["city"].fillna("").unique():
        rows = np.flatnonzero((frame["city"].fillna("") == city).to_numpy())
        zone = city_timezone(city)
        local = frame["created_at"].iloc[rows].dt.tz_convert(zone).dt.tz_localize(None).dt.normalize()
        days = ((local - pd.Timestamp("1970-01-01")).dt.days).to_numpy()
        covered = sorted(set(days.tolist()))
        for row, day in zip(rows, days, strict=True):
            earlier = [d for d in covered if d < day]
            if not earlier or day - earlier[-1] > MAX_GAP_DAYS:
                continue  # no history right before this day
            start = earlier[-1]
            for previous in reversed(earlier[:-1]):
                if start - previous > MAX_GAP_DAYS:
                    break
                start = previous
            history[row] = day - start
    np.testing.assert_array_equal(aware["wl_city_history_days"].to_numpy(), history)
    for name in COUNTING.feature_names():
        stat = name.split("_", 2)[2]
        need = WorkloadSpec().history_needed(stat)
        want = np.where(history >= need, counted[name].to_numpy(), np.nan)
        np.testing.assert_array_equal(aware[name].to_numpy(), want, err_msg=name)
    assert need > 0 and np.isnan(aware["wl_city_backlog"].to_numpy()[history < 28]).all()
    assert np.isfinite(aware["wl_city_backlog"].to_numpy()[history >= 28]).all()


def test_range_median_is_exact() -> None:
    rng = np.random.default_rng(5)
    values = np.round(rng.exponential(10, 500), 1)  # ties on purpose
    lo = rng.integers(0, 500, 400)
    hi = np.minimum(lo + rng.integers(0, 60, 400), 500)
    got = range_median(values, lo, hi)
    want = np.array([np.median(values[a:b]) if b > a else np.nan for a, b in zip(lo, hi, strict=True)])
    np.testing.assert_array_equal(got, want)
    assert math.isnan(range_median(np.array([]), np.array([0]), np.array([0]))[0])


# --- the snapshot --------------------------------------------------------------------------------------


def test_snapshot_lookup_equals_training_features_for_rows_of_that_day() -> None:
    frame = random_records(600, 3, "2024-03-01", 20)
    mapping = learn_type_department(frame)
    training = workload_features(frame, mapping, COUNTING)
    as_of = pd.Timestamp("2024-03-15T20:00:00Z")  # Mar 15 in all three cities
    table = workload_snapshot(frame, as_of, mapping, spec=COUNTING)
    assert set(table["day"]) == {"2024-03-15"}
    snapshot = WorkloadSnapshot.from_frame(table, COUNTING)
    rows = frame.to_dict("records")
    checked = 0
    for i, row in enumerate(rows):
        city = row["city"] if isinstance(row["city"], str) else ""
        local_day = row["created_at"].tz_convert(city_timezone(city)).date().isoformat()
        if local_day != "2024-03-15":
            continue
        keys = row_keys(row, mapping)
        served = [v for level in ("type", "dept", "area", "city") for v in snapshot.values(city, level, keys[level])]
        np.testing.assert_array_equal(np.array(served), training.iloc[i].to_numpy())
        checked += 1
    assert checked > 10


def test_snapshot_fallbacks() -> None:
    frame = records([{"created_at": la("2024-01-01 10:00")}, {"created_at": la("2024-01-02 10:00")}])
    snapshot = WorkloadSnapshot.from_frame(
        workload_snapshot(frame, la("2024-01-03 08:00"), {}, spec=COUNTING), COUNTING
    )
    assert snapshot.values("la", "type", "A")[:3] == (2.0, 2.0, 2.0)
    # A key with no history: an empty queue, median unknown — what training computes for a new type.
    empty = snapshot.values("la", "type", "never seen")
    assert empty[:4] == (0.0, 0.0, 0.0, 0.0) and math.isnan(empty[4])
    # No key, or a city the snapshot does not cover: unknown.
    assert all(math.isnan(v) for v in snapshot.values("la", "area", None))
    assert all(math.isnan(v) for v in snapshot.values("nyc", "type", "A"))


def test_snapshot_needs_its_columns() -> None:
    frame = records([{"created_at": la("2024-01-01 10:00")}])
    table = workload_snapshot(frame, la("2024-01-02 10:00"), {}, spec=COUNTING)
    with pytest.raises(ValueError, match="lacks columns"):
        WorkloadSnapshot.from_frame(table.drop(columns=["backlog"]))
