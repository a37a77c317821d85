"""Temporal splits: train on earlier requests, calibrate on the slice just before the test, test on later.

Never random: a request's neighbours in time share workload, weather and staffing, so a random split leaks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class TemporalSplit:
    """Boundaries in created_at: train < calibration_start <= calibration < test_start <= test."""

    calibration_start: pd.Timestamp
    test_start: pd.Timestamp
    end: pd.Timestamp

    def masks(self, created_at: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        train = (created_at < self.calibration_start).to_numpy()
        calibration = ((created_at >= self.calibration_start) & (created_at < self.test_start)).to_numpy()
        test = (created_at >= self.test_start).to_numpy()
        return train, calibration, test

    def to_dict(self) -> dict[str, str]:
        return {k: v.isoformat() for k, v in vars(self).items()}


def temporal_split(
    created_at: pd.Series,
    test_fraction: float = 0.2,
    max_test_days: float = 28,
    calibration_fraction: float = 0.15,
    max_calibration_days: float = 28,
) -> TemporalSplit:
    """Split by time: the last `test_fraction` of the period (at most `max_test_days`) is the test; the
    last `calibration_fraction` of what remains (at most `max_calibration_days`) calibrates.

    Boundaries are by row quantile of created_at, so uneven volume (gaps between yearly files) still gives
    each part its share of rows.
    """
    ordered = created_at.sort_values(ignore_index=True)
    n = len(ordered)
    if n < 10:
        raise ValueError(f"need at least 10 requests for a temporal split, got {n}")
    end = ordered.iloc[-1]
    test_start = max(ordered.iloc[int(n * (1 - test_fraction))], end - pd.Timedelta(days=max_test_days))
    n_before = int((ordered < test_start).sum())
    calibration_start = max(
        ordered.iloc[int(n_before * (1 - calibration_fraction))],
        test_start - pd.Timedelta(days=max_calibration_days),
    )
    return TemporalSplit(calibration_start=calibration_start, test_start=test_start, end=end)


def rolling_origins(created_at: pd.Series, folds: int = 3, test_days: float = 28) -> list[pd.Timestamp]:
    """Test-period starts for a rolling-origin backtest: `folds` consecutive windows ending at the data's end.

    Only used when the data spans at least (folds + 2) windows; otherwise one temporal split is all we have.
    """
    end = created_at.max()
    span = end - created_at.min()
    if span < pd.Timedelta(days=test_days * (folds + 2)):
        return []
    return [end - pd.Timedelta(days=test_days * k) for k in range(folds, 0, -1)]
