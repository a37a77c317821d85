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
from training.split import rolling_origins, temporal_split

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
