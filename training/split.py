"""Temporal splits: train on earlier requests, calibrate on the slice just before the test, test on later.

Never random: a request's neighbours in time share workload, weather and staffing, so a random split leaks.
Boundaries are first placed by days (the test is at most the last `max_test_days`); on sparse or gapped data
(yearly files years apart) such a window can hold no rows, and then the boundary falls back to row counts,
says so in the log and records it in the split, so that no slice is ever empty without a word.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

# A slice bounded by days holding fewer rows than this (or than its row share, when that is smaller) is too
# thin to calibrate or test on: the boundary is placed by row count instead.
MIN_SLICE_ROWS = 50
MIN_RECORDS = 10


@dataclass(frozen=True)
class TemporalSplit:
    """Boundaries in created_at: train < calibration_start <= calibration < test_start <= test.

    `fallback` names the slices whose boundary was placed by row count because the day-bounded slice was
    (nearly) empty; empty when every boundary is by days, or was given (`--test-start`).
    """

    calibration_start: pd.Timestamp
    test_start: pd.Timestamp
    end: pd.Timestamp
    fallback: tuple[str, ...] = ()

    def masks(self, created_at: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        train = (created_at < self.calibration_start).to_numpy()
        calibration = ((created_at >= self.calibration_start) & (created_at < self.test_start)).to_numpy()
        test = (created_at >= self.test_start).to_numpy()
        return train, calibration, test

    def to_dict(self) -> dict[str, str]:
        """Flat strings (logged as MLflow params): the three boundaries and how they were placed."""
        out = {k: getattr(self, k).isoformat() for k in ("calibration_start", "test_start", "end")}
        out["boundaries"] = "rows" if self.fallback else "days"
        if self.fallback:
            out["fallback"] = ",".join(self.fallback)
        return out


class SplitError(ValueError):
    """The data cannot be split into non-empty train, calibration and test slices."""


def _boundary(
    ordered: pd.Series, fraction: float, max_days: float, end: pd.Timestamp, name: str
) -> tuple[pd.Timestamp, bool]:
    """Start of the last slice of `ordered` (sorted, non-empty, all before or at `end`): the later of the
    row-share boundary and `max_days` before `end`; the row-share boundary alone when the day window holds
    too few rows. Returns (start, whether it fell back to rows)."""
    n = len(ordered)
    by_rows = ordered.iloc[min(int(n * (1 - fraction)), n - 1)]
    by_days = end - pd.Timedelta(days=max_days)
    if by_days <= by_rows:
        return by_rows, False
    in_window = n - int(ordered.searchsorted(by_days, side="left"))
    share_rows = n - int(ordered.searchsorted(by_rows, side="left"))
    if in_window >= min(MIN_SLICE_ROWS, share_rows):
        return by_days, False
    log.warning(
        "the %s slice (%g days before %s) holds %d of %d rows (the data has gaps): its boundary is placed by "
        "row count instead (the last %.0f%% of rows, from %s)",
        name,
        max_days,
        end.isoformat(),
        in_window,
        n,
        100 * fraction,
        by_rows.isoformat(),
    )
    return by_rows, True


def _check(split: TemporalSplit, created_at: pd.Series, hint: str) -> TemporalSplit:
    train, calibration, test = split.masks(created_at)
    empty = [name for name, mask in (("train", train), ("calibration", calibration), ("test", test)) if not mask.any()]
    if empty:
        raise SplitError(f"the temporal split ({split.to_dict()}) leaves the {' and '.join(empty)} slice empty; {hint}")
    return split


def temporal_split(
    created_at: pd.Series,
    test_fraction: float = 0.2,
    max_test_days: float = 28,
    calibration_fraction: float = 0.15,
    max_calibration_days: float = 28,
) -> TemporalSplit:
    """Split by time: the last `test_fraction` of the rows (at most `max_test_days`) is the test; the
    last `calibration_fraction` of what remains (at most `max_calibration_days`) calibrates.

    Boundaries are by row quantile of created_at, so uneven volume still gives each part its share of rows;
    a day cap that would leave a slice (nearly) empty is dropped for that slice (see `_boundary`).
    Raises SplitError when even row counts cannot give three non-empty slices (many equal timestamps).
    """
    ordered = created_at.sort_values(ignore_index=True)
    n = len(ordered)
    if n < MIN_RECORDS:
        raise SplitError(f"need at least {MIN_RECORDS} requests for a temporal split, got {n}")
    test_start, test_fell_back = _boundary(ordered, test_fraction, max_test_days, ordered.iloc[-1], "test")
    before = ordered[ordered < test_start]
    if before.empty:
        raise SplitError(f"no request was created before the test start {test_start.isoformat()}; pass --test-start")
    calibration_start, cal_fell_back = _boundary(
        before, calibration_fraction, max_calibration_days, test_start, "calibration"
    )
    fallback = tuple(name for name, fell in (("test", test_fell_back), ("calibration", cal_fell_back)) if fell)
    split = TemporalSplit(calibration_start, test_start, ordered.iloc[-1], fallback)
    return _check(split, created_at, "pass --test-start to choose the test period")


def split_at(
    created_at: pd.Series,
    test_start: pd.Timestamp,
    calibration_fraction: float = 0.15,
    max_calibration_days: float = 28,
) -> TemporalSplit:
    """Split with a given test start (`--test-start`): the calibration slice is the last
    `calibration_fraction` (at most `max_calibration_days`) of the requests before it."""
    ordered = created_at.sort_values(ignore_index=True)
    before = ordered[ordered < test_start]
    hint = f"--test-start {test_start.isoformat()}"
    if len(before) < MIN_RECORDS or (ordered >= test_start).sum() == 0:
        raise SplitError(
            f"{hint} leaves {len(before)} training and {int((ordered >= test_start).sum())} test rows "
            f"(the data spans {ordered.iloc[0].isoformat()} to {ordered.iloc[-1].isoformat()}); need at least "
            f"{MIN_RECORDS} before it and one after"
        )
    calibration_start, fell_back = _boundary(
        before, calibration_fraction, max_calibration_days, test_start, "calibration"
    )
    split = TemporalSplit(calibration_start, test_start, ordered.iloc[-1], ("calibration",) if fell_back else ())
    return _check(split, created_at, f"choose another {hint}")


def rolling_origins(created_at: pd.Series, folds: int = 3, test_days: float = 28) -> list[pd.Timestamp]:
    """Test-period starts for a rolling-origin backtest: `folds` consecutive windows ending at the data's end.

    Only used when the data spans at least (folds + 2) windows; otherwise one temporal split is all we have.
    """
    end = created_at.max()
    span = end - created_at.min()
    if span < pd.Timedelta(days=test_days * (folds + 2)):
        return []
    return [end - pd.Timedelta(days=test_days * k) for k in range(folds, 0, -1)]
