"""Rolling-origin backtest: one retrain per window, each tested only on the window after its origin."""

from __future__ import annotations

import pandas as pd
import pytest

from ingest.synth import synthesize
from tests.helpers import small_specs
from training.backtest import backtest, backtest_summary


@pytest.mark.slow  # two full retrains
def test_backtest_trains_one_fold_per_window_and_tests_after_each_origin() -> None:
    records = synthesize(rows=12_000, seed=3, start="2024-01-01", days=100)
    table = backtest(records, small_specs(rounds=10), folds=2, test_days=14)
    assert list(table["fold"]) == [0, 1]
    starts = pd.to_datetime(table["test_start"])
    assert (starts.diff().dropna() == pd.Timedelta(days=14)).all()
    for row in table.itertuples():
        window = records[
            records["created_at"].between(pd.Timestamp(row.test_start), pd.Timestamp(row.test_end), inclusive="left")
        ]
        assert row.dept_n == window["department"].notna().sum()  # tested on exactly its window
    assert (table["ttc_n"] > 0).all()
    assert table["ttc_coverage_p10_p90"].between(0.7, 0.9).all()  # each fold calibrated to its 80% target
    summary = backtest_summary(table)
    assert summary["backtest_folds"] == 2
    for stat in ("mean", "min", "max"):
        assert summary[f"backtest_{stat}_ttc_mae_hours"] == getattr(table["ttc_mae_hours"], stat)()


def test_backtest_is_skipped_when_the_data_is_too_short() -> None:
    records = synthesize(rows=2_000, seed=3, start="2024-01-01", days=20)
    assert backtest(records, small_specs(rounds=5), folds=3, test_days=28).empty
    assert backtest_summary(pd.DataFrame()) == {}
