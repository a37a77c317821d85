"""The department forecast's arithmetic on tiny frames: curves, conditioning, bands, invariants, at-risk,
accountability, intake by weekday, and the layering rule for the new serving modules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forecast.departments import (
    DAY_HOURS,
    Z_BAND,
    _group_accuracy,
    arrival_matrix,
    at_risk_table,
    closing_curves,
    conditional_closing,
    department_table,
    department_totals,
    intake_by_phase,
    is_resolved,
    type_thresholds,
    view_at,
    weekday_factors,
)
from training.labels import hours_to_close

ROOT = Path(__file__).resolve().parents[2]
QUANTILES = [0.1, 0.5, 0.9]
HORIZONS = [1, 3, 7, 30]


def predictions(q10: float, q50: float, q90: float, h: tuple[float, float, float, float], n: int = 1) -> dict:
    out = {"q10": np.full(n, q10), "q50": np.full(n, q50), "q90": np.full(n, q90)}
    out.update({f"h{d}d": np.full(n, p) for d, p in zip(HORIZONS, h, strict=True)})
    return out


def test_curve_passes_through_consistent_knots_and_is_monotone() -> None:
    # Knots that agree: P10 = 12 h, P50 = 48 h, P90 = 240 h; P(<=1d)=.2, P(<=3d)=.6, P(<=7d)=.85, P(<=30d)=.98.
    curves = closing_curves(predictions(12, 48, 240, (0.2, 0.6, 0.85, 0.98)), QUANTILES, HORIZONS)
    cdf = curves.cdf(np.array([[12.0, 24.0, 48.0, 72.0, 168.0, 240.0, 720.0]]))
    np.testing.assert_allclose(cdf[0], [0.1, 0.2, 0.5, 0.6, 0.85, 0.9, 0.98], atol=1e-6)
    grid = np.geomspace(0.01, 50_000, 400)[None, :]
    values = curves.cdf(grid)[0]
    assert np.all(np.diff(values) >= -1e-12) and values[0] >= 0 and values[-1] < 1
    assert curves.tail[0] >= 1.0  # the stated minimum residual-hazard slope


def test_conflicting_knots_still_give_a_monotone_curve() -> None:
    # P50 = 200 h but P(<=3d) = .7: the two heads disagree; the curve must still rise.
    curves = closing_curves(predictions(5, 200, 400, (0.3, 0.7, 0.75, 0.99)), QUANTILES, HORIZONS)
    values = curves.cdf(np.geomspace(0.1, 10_000, 300)[None, :])[0]
    assert np.all(np.diff(values) >= -1e-12)


def test_conditioning_on_age_and_the_residual_hazard_for_requests_past_the_model() -> None:
    curves = closing_curves(predictions(12, 48, 240, (0.2, 0.6, 0.85, 0.98), n=3), QUANTILES, HORIZONS)
    ages = np.array([0.0, 72.0, 400 * DAY_HOURS])  # new, 3 days, 400 days (F(a) ~ 1)
    cumulative = conditional_closing(curves, ages, 14)
    assert np.all(np.isfinite(cumulative)) and np.all((cumulative >= 0) & (cumulative <= 1))
    assert np.all(np.diff(cumulative, axis=1) >= -1e-12)
    # From creation, P(closed within 1 day) is the model's own 0.2.
    assert cumulative[0, 0] == pytest.approx(0.2, abs=1e-6)
    # Given 3 days open: P(close within the next 4 days) = (F(7d) - F(3d)) / (1 - F(3d)).
    assert cumulative[1, 3] == pytest.approx((0.85 - 0.6) / (1 - 0.6), abs=1e-6)
    # 400 days old: a small but non-zero residual hazard (Pareto tail with slope >= 1: ~1/age per day).
    assert 0 < cumulative[2, 0] < 0.01
    age = 400 * DAY_HOURS
    assert cumulative[2, -1] == pytest.approx(1 - ((1 + age) / (1 + age + 14 * DAY_HOURS)) ** curves.tail[2], rel=1e-6)


def test_conditional_median_is_after_the_age() -> None:
    curves = closing_curves(predictions(12, 48, 240, (0.2, 0.6, 0.85, 0.98), n=3), QUANTILES, HORIZONS)
    ages = np.array([0.0, 72.0, 2000.0])
    median = curves.conditional_quantile(ages, 0.5)
    assert median[0] == pytest.approx(48.0, rel=1e-6)
    assert np.all(median > ages)
    # Consistency: the conditional CDF at the conditional median is 1/2.
    h = curves.hazard(np.column_stack([ages, median]))
    np.testing.assert_allclose(-np.expm1(-(h[:, 1] - h[:, 0])), 0.5, atol=1e-6)


def band_table(p: np.ndarray, intake: float = 0.0, horizon: int = 1) -> pd.DataFrame:
    n = len(p)
    cumulative = np.repeat(p[:, None], horizon, axis=1)
    new = np.broadcast_to(arrival_matrix(np.full(horizon, 0.5), np.ones(horizon)), (1, horizon, horizon))
    return department_table(
        ["A"],
        [f"2024-01-{d + 1:02d}" for d in range(horizon)],
        np.zeros(n, dtype=np.int64),
        cumulative,
        np.full((1, horizon), intake),
        np.array(new),
    )


def test_poisson_binomial_band_matches_the_exact_binomial_and_covers_80_percent() -> None:
    p = np.full(400, 0.3)
    row = band_table(p).iloc[0]
    assert row["expected_closures"] == pytest.approx(120.0)
    assert row["high"] - row["expected_closures"] == pytest.approx(Z_BAND * np.sqrt(400 * 0.3 * 0.7))
    exact_low, exact_high = stats.binom.ppf([0.1, 0.9], 400, 0.3)
    assert abs(row["low"] - exact_low) <= 1.5 and abs(row["high"] - exact_high) <= 1.5
    # Mixed probabilities: simulate independent Bernoullis; ~80% of draws fall inside the band.
    rng = np.random.default_rng(0)
    mixed = rng.uniform(0.01, 0.9, 600)
    row = band_table(mixed).iloc[0]
    draws = (rng.random((4000, len(mixed))) < mixed).sum(axis=1)
    inside = np.mean((draws >= row["low"]) & (draws <= row["high"]))
    assert 0.76 <= inside <= 0.84
    # Not a sum of medians: the median of each Bernoulli(0.3) is 0, the expected sum is 120.
    assert row["expected_closures"] == pytest.approx(mixed.sum())


def test_closures_never_exceed_open_plus_intake_and_backlog_balances() -> None:
    rng = np.random.default_rng(1)
    horizon, n = 14, 500
    cumulative = np.sort(rng.random((n, horizon)), axis=1)
    department = rng.integers(0, 3, n)
    intake = rng.uniform(0, 40, (3, horizon))
    factors = rng.uniform(0.05, 2.0, (3, horizon))
    curves = np.sort(rng.random((3, horizon)), axis=1)
    new = np.stack([arrival_matrix(curves[d], factors[d]) for d in range(3)])
    table = department_table(["A", "B", "C"], [str(k) for k in range(horizon)], department, cumulative, intake, new)
    for d, part in table.groupby("department"):
        code = "ABC".index(d)
        open_now = int((department == code).sum())
        total_intake = intake[code].sum()
        assert part["expected_closures"].sum() <= open_now + total_intake + 1e-9
        balance = open_now + part["expected_intake"].cumsum() - part["expected_closures"].cumsum()
        np.testing.assert_allclose(part["projected_backlog"], balance, rtol=1e-9, atol=1e-9)
        assert (part["low"] <= part["expected_closures"]).all() and (part["expected_closures"] <= part["high"]).all()
        assert (part["projected_backlog"] >= -1e-9).all()


def test_arrival_matrix_is_zero_before_arrival_and_cumulative() -> None:
    matrix = arrival_matrix(np.array([0.5, 0.7, 0.8, 0.9]), np.array([1.0, 1.0, 0.0, 1.0]))
    assert np.all(np.tril(matrix, -1) == 0)
    for j in range(4):
        assert np.all(np.diff(matrix[j, j:]) >= -1e-12)
    assert matrix[0, 0] == pytest.approx(0.5)
    # A day with no closing capacity (factor 0) adds no closures.
    assert matrix[0, 2] == pytest.approx(matrix[0, 1])


def test_weekday_factors_follow_the_closing_rhythm() -> None:
    hours_before = np.arange(28 * 24, dtype=float)[::2]
    weekday = (np.arange(len(hours_before)) // 12) % 7
    keep = weekday != 6  # nothing ever closes on Sundays
    factors = weekday_factors(hours_before[keep], weekday[keep], np.zeros(keep.sum(), dtype=np.int64), 1, 4)
    assert factors.shape == (1, 7)
    assert factors[0, 6] < 0.02
    assert factors[0].mean() == pytest.approx(1.0)
    np.testing.assert_allclose(factors[0, :6], factors[0, 0], rtol=0.3)


def test_intake_by_phase_is_the_mean_of_the_last_four_same_windows() -> None:
    # Counts on the days before as-of: 3 requests in each "same weekday" window of phase 0 (b = 6, 13, 20, 27).
    hours = []
    for b, count in ((6, 3), (13, 5), (20, 1), (27, 3), (0, 10)):
        hours += [b * 24 + 1.0] * count
    phase, weeks = intake_by_phase(np.array(hours), np.zeros(len(hours), dtype=np.int64), 1, 28.0)
    assert weeks == 4
    assert phase[0, 0] == pytest.approx((3 + 5 + 1 + 3) / 4)
    assert phase[0, 6] == pytest.approx(10 / 4)  # b = 0 is phase 6 one week back
    short, weeks = intake_by_phase(np.array([1.0, 30.0, 50.0]), np.zeros(3, dtype=np.int64), 1, 3.0)
    assert weeks == 0 and short[0, 0] == pytest.approx(1.0)


def open_rows() -> pd.DataFrame:
    created = pd.to_datetime(["2024-01-05", "2024-01-01", "2024-01-03", "2024-01-02"], utc=True)
    return pd.DataFrame(
        {
            "request_id": ["d", "a", "c", "b"],
            "department_used": ["X", "X", "Y", "Y"],
            "department_predicted": [False, False, True, False],
            "request_type": ["slow", "fast", "fast", "fast"],
            "council_district": ["1", "2", "3", "4"],
            "neighborhood": ["n1", "n2", "n3", "n4"],
            "created_at": created,
            "sla_target_at": pd.to_datetime([None, None, None, "2024-03-01"], utc=True),
        }
    )


def test_at_risk_is_oldest_first_and_the_city_target_wins() -> None:
    rows = open_rows()
    as_of = pd.Timestamp("2024-01-10", tz="UTC")
    age = ((as_of - rows["created_at"]).dt.total_seconds() / 3600).to_numpy()
    curves = closing_curves(predictions(12, 48, 240, (0.2, 0.6, 0.85, 0.98), n=4), QUANTILES, HORIZONS)
    # "fast" must close within 2 days, "slow" within 400 days; "b" has the city's own target two months out.
    table = at_risk_table(rows, curves, age, {"fast": 48.0, "slow": 400 * 24.0}, 100.0)
    assert table["request_id"].tolist() == ["a", "c"]  # b's city target is far; d's threshold is generous
    assert table["created_at"].is_monotonic_increasing
    assert (table["predicted_close_at"] > table["target_at"]).all()
    assert set(table["target_source"]) == {"type threshold (P90 of recent)"}
    assert table.loc[table["request_id"] == "c", "department_source"].item() == "predicted"


def test_accountability_arithmetic() -> None:
    frame = pd.DataFrame(
        {
            "department": ["X", "X", "Y"],
            "actual_hours": [10.0, 30.0, 5.0],
            "predicted_hours": [20.0, 20.0, 5.0],
            "abs_error": [10.0, 10.0, 0.0],
            "baseline_abs_error": [5.0, 15.0, 1.0],
            "within": [1.0, 0.0, 1.0],
            "on_time": [1.0, 0.0, 1.0],
            "below_p10": [0.0, 0.0, 0.0],
            "below_p90": [1.0, 0.0, 1.0],
            "actual_days": [10 / 24, 30 / 24, 5 / 24],
            "predicted_days": [20 / 24, 20 / 24, 5 / 24],
        }
    )
    table = _group_accuracy(frame, "department").set_index("department")
    assert table.loc["X", "n"] == 2 and table.loc["X", "mae_hours"] == pytest.approx(10.0)
    assert table.loc["X", "baseline_mae_hours"] == pytest.approx(10.0)
    assert table.loc["X", "improvement_vs_baseline"] == pytest.approx(0.0)
    assert table.loc["X", "within_p10_p90"] == pytest.approx(0.5)
    assert table.loc["X", "closed_before_expected"] == pytest.approx(0.5)
    assert table.loc["X", "median_actual_days"] == pytest.approx(20 / 24)
    assert table.loc["Y", "improvement_vs_baseline"] == pytest.approx(1.0)


def test_view_at_censors_later_outcomes_and_resolved_matches_training_labels() -> None:
    records = pd.DataFrame(
        {
            "created_at": pd.to_datetime(
                ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-09", "2024-01-04"], utc=True
            ),
            "closed_at": pd.to_datetime(["2024-01-02", "2024-01-08", None, None, "2024-01-03"], utc=True),
            "status": ["closed", "cancelled", "open", "open", "closed"],
        }
    )
    view = view_at(records, pd.Timestamp("2024-01-05", tz="UTC"))
    assert len(view) == 4  # the row created after as-of is gone
    assert view["status"].tolist() == ["closed", "open", "open", "closed"]
    assert view["closed_at"].isna().tolist() == [False, True, True, False]
    np.testing.assert_array_equal(is_resolved(view), hours_to_close(view).notna().to_numpy())


def test_weekly_totals_sum_the_days_with_the_band_of_the_total() -> None:
    rng = np.random.default_rng(2)
    horizon, n = 14, 300
    cumulative = np.sort(rng.random((n, horizon)), axis=1)
    department = rng.integers(0, 2, n)
    intake = rng.uniform(0, 20, (2, horizon))
    new = np.stack([arrival_matrix(np.sort(rng.random(horizon)), np.ones(horizon)) for _ in range(2)])
    daily = department_table(["A", "B"], [str(k) for k in range(horizon)], department, cumulative, intake, new)
    totals = department_totals(["A", "B"], [7, 14], department, cumulative, intake, new)
    for (name, days), row in totals.set_index(["department", "days"]).iterrows():
        part = daily[(daily["department"] == name) & (daily["day"] < days)]
        assert row["expected_closures"] == pytest.approx(part["expected_closures"].sum())
        assert row["expected_intake"] == pytest.approx(part["expected_intake"].sum())
        assert row["projected_backlog"] == pytest.approx(part["projected_backlog"].iloc[-1])
        # One closing per request: the total's band is narrower than the daily bands added up.
        assert row["high"] - row["low"] < (part["high"] - part["low"]).sum()
        # ... and it is the exact Poisson-binomial spread of "closed within `days`" for the open requests.
        p = cumulative[department == "AB".index(name), days - 1]
        closed_new = row["expected_closures"] - p.sum()
        assert row["high"] - row["expected_closures"] == pytest.approx(
            Z_BAND * np.sqrt((p * (1 - p)).sum() + closed_new)
        )


def test_type_thresholds_are_the_recent_p90_with_a_one_day_floor_and_a_fallback() -> None:
    types = pd.Series(["slow"] * 100 + ["instant"] * 30 + ["rare"] * 5)
    hours = np.concatenate([np.arange(1, 101, dtype=float) * 2.0, np.full(30, 0.01), np.full(5, 500.0)])
    thresholds, default = type_thresholds(types, hours)
    assert thresholds["slow"] == pytest.approx(np.quantile(np.arange(1, 101) * 2.0, 0.9))
    assert thresholds["instant"] == pytest.approx(24.0)  # floor: one day
    assert "rare" not in thresholds  # too few rows: the all-type P90 applies
    assert default == pytest.approx(max(np.quantile(hours, 0.9), 24.0))
