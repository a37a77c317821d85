"""Labels (what counts as resolved, censoring) and temporal splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.schema import conform
from training.labels import (
    effective_follow_up_days,
    follow_up_cohort,
    horizon_labels,
    hours_to_close,
    observed_hours,
)
from training.split import SplitError, rolling_origins, split_at, temporal_split

T0 = pd.Timestamp("2024-03-01 08:00", tz="UTC")


def _records() -> pd.DataFrame:
    hours = pd.to_timedelta
    return conform(
        pd.DataFrame(
            {
                "request_id": ["closed-2h", "closed-5d", "open-10d", "open-1h", "cancelled", "self-report"],
                "city": "la",
                "created_at": [T0, T0, T0 - hours("9D"), T0 + hours("9D") + hours("23h"), T0, T0],
                "closed_at": [T0 + hours("2h"), T0 + hours("5D"), pd.NaT, pd.NaT, T0 + hours("1h"), T0 + hours("2min")],
                "status": ["closed", "closed", "open", "open", "cancelled", "closed"],
                "source_row": range(6),
            }
        )
    )


def test_resolved_means_closed_with_a_time_and_includes_self_reports():
    hours = hours_to_close(_records())
    assert hours.iloc[0] == pytest.approx(2.0)
    assert hours.iloc[1] == pytest.approx(120.0)
    assert np.isnan(hours.iloc[2]) and np.isnan(hours.iloc[3])  # open: not resolved
    assert np.isnan(hours.iloc[4])  # cancelled: not resolved
    assert hours.iloc[5] == pytest.approx(2 / 60)  # crew self-report: resolved on the spot


def test_open_requests_are_censored_at_their_age():
    records = _records()
    extracted = T0 + pd.Timedelta("10D")
    duration, event = observed_hours(records, extracted)
    assert duration.iloc[2] == pytest.approx(19 * 24)  # open for 19 days so far
    assert not event.iloc[2] and event.iloc[0]
    assert np.isnan(duration.iloc[4])  # cancelled is outside the population


def test_horizon_labels_treat_outlived_horizons_as_negative_and_unreached_as_unknown():
    records = _records()
    extracted = T0 + pd.Timedelta("10D")
    one_day = horizon_labels(records, 1, extracted)
    assert one_day.tolist()[:2] == [1.0, 0.0]
    assert one_day.iloc[2] == 0.0  # open 19 days: certainly not closed within 1 day
    assert np.isnan(one_day.iloc[3])  # open 1 hour: not knowable yet
    assert np.isnan(one_day.iloc[4])  # cancelled
    thirty = horizon_labels(records, 30, extracted)
    assert np.isnan(thirty.iloc[2])  # open 19 days: 30-day outcome unknown


def test_follow_up_cohort_and_its_shortening_for_short_exports():
    records = _records()
    extracted = T0 + pd.Timedelta("10D")
    cohort = follow_up_cohort(records, 5, extracted)
    assert cohort.tolist() == [True, True, True, False, True, True]
    assert effective_follow_up_days(records, 30) == pytest.approx(
        (pd.Timedelta("19D") / 3).total_seconds() / 86400, rel=0.01
    )


def test_temporal_split_orders_train_calibration_test():
    created = pd.Series(pd.date_range("2024-01-01", periods=1000, freq="h", tz="UTC"))
    split = temporal_split(created, test_fraction=0.2, max_test_days=28, calibration_fraction=0.15)
    train, calibration, test = split.masks(created)
    assert train.sum() + calibration.sum() + test.sum() == len(created)
    assert created[train].max() < created[calibration].min() <= created[calibration].max() < created[test].min()
    assert 0.15 < test.mean() <= 0.21


def test_temporal_split_caps_test_days_and_rejects_tiny_data():
    created = pd.Series(pd.date_range("2023-01-01", periods=365 * 24, freq="h", tz="UTC"))
    split = temporal_split(created, test_fraction=0.5, max_test_days=28)
    assert split.end - split.test_start <= pd.Timedelta(days=28)
    with pytest.raises(ValueError, match="at least 10"):
        temporal_split(created.iloc[:5])


def test_rolling_origins_only_when_the_span_allows():
    short = pd.Series(pd.date_range("2024-01-01", periods=30, freq="D", tz="UTC"))
    assert rolling_origins(short, folds=3, test_days=28) == []
    long = pd.Series(pd.date_range("2023-01-01", periods=365, freq="D", tz="UTC"))
    origins = rolling_origins(long, folds=3, test_days=28)
    assert len(origins) == 3 and origins == sorted(origins)


def _gapped() -> pd.Series:
    """Four short bursts years apart, like the shared NYC files (2012, 2013, 2022, 2023)."""
    bursts = [("2012-11-20", 1000), ("2013-12-25", 2400), ("2022-05-01", 900), ("2023-12-07", 1000)]
    parts = [pd.Series(pd.date_range(day, periods=n, freq="min", tz="UTC")) for day, n in bursts]
    return pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=0)


def test_gapped_data_falls_back_to_row_counts_and_says_so(caplog: pytest.LogCaptureFixture):
    created = _gapped()
    with caplog.at_level("WARNING", logger="training.split"):
        split = temporal_split(created, test_fraction=0.2, max_test_days=28, calibration_fraction=0.15)
    train, calibration, test = split.masks(created)
    assert train.sum() and calibration.sum() and test.sum()
    assert train.sum() + calibration.sum() + test.sum() == len(created)
    # The test (the last file) fits in 28 days; the 28 days before it are empty, so calibration is by rows.
    assert split.test_start == split.end - pd.Timedelta(days=28) and test.sum() == 1000
    assert split.fallback == ("calibration",)
    assert calibration.sum() == len(created[created < split.test_start]) - int(4300 * 0.85)
    assert split.to_dict()["boundaries"] == "rows" and split.to_dict()["fallback"] == "calibration"
    assert "calibration slice" in caplog.text and "row count" in caplog.text


def test_test_slice_falls_back_when_its_days_are_nearly_empty():
    created = _gapped()
    # A few stragglers six weeks after the last burst: the last 28 days would hold only them.
    late = pd.Series(pd.date_range("2024-01-20", periods=3, freq="h", tz="UTC"))
    created = pd.concat([created, late], ignore_index=True)
    split = temporal_split(created, test_fraction=0.2, max_test_days=28, calibration_fraction=0.15)
    _, calibration, test = split.masks(created)
    assert split.fallback == ("test",)
    assert test.sum() == len(created) - int(len(created) * 0.8) and calibration.sum() > 0


def test_contiguous_data_keeps_day_boundaries():
    created = pd.Series(pd.date_range("2023-01-01", periods=365 * 24, freq="h", tz="UTC"))
    split = temporal_split(created, test_fraction=0.2, max_test_days=28, calibration_fraction=0.15)
    assert split.fallback == () and split.to_dict()["boundaries"] == "days" and "fallback" not in split.to_dict()
    assert split.test_start == split.end - pd.Timedelta(days=28)
    assert split.calibration_start == split.test_start - pd.Timedelta(days=28)


def test_identical_timestamps_cannot_be_split_and_the_error_names_test_start():
    created = pd.Series([pd.Timestamp("2024-01-01", tz="UTC")] * 100)
    with pytest.raises(SplitError, match="--test-start"):
        temporal_split(created)


def test_split_at_a_given_test_start():
    created = _gapped()
    start = pd.Timestamp("2022-01-01", tz="UTC")
    split = split_at(created, start, calibration_fraction=0.15, max_calibration_days=28)
    train, calibration, test = split.masks(created)
    assert split.test_start == start and test.sum() == 1900 and calibration.sum() and train.sum()
    assert split.fallback == ("calibration",)  # nothing in the 28 days before 2022
    for bad in ("2000-01-01", "2030-01-01"):
        with pytest.raises(SplitError, match=f"--test-start {bad}"):
            split_at(created, pd.Timestamp(bad, tz="UTC"))
