"""Rolling-origin backtest: retrain at several past origins and test each on the window that followed.

One temporal split measures one period; a city's service changes with seasons, staffing and backlog, so a
data scientist comparing models wants the spread too. For each origin (``training.split.rolling_origins``:
`folds` consecutive windows of `test_days` ending at the data's end) both models are trained exactly as
``eta311 train`` trains them, on the requests created before the origin (with their own calibration slice),
and tested on the requests created in the window after it; later requests are dropped from that fold
entirely, so they are neither training data nor workload history. Labels follow ``train``'s rule: outcomes
as known at extraction.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from training import fitting
from training.split import rolling_origins
from training.train import train_models

log = logging.getLogger(__name__)

# The per-fold figures kept (the headline keys of both evaluation blocks).
TIME_KEYS = (
    "n",
    "mae_hours",
    "median_ae_hours",
    "mae_log",
    "coverage_p10_p90",
    "baseline_type_median_mae_hours",
    "baseline_type_median_median_ae_hours",
)
DEPARTMENT_KEYS = ("n", "accuracy", "accuracy_without_type", "top3_accuracy", "baseline_type_majority_accuracy")


def backtest(
    records: pd.DataFrame,
    specs: dict[str, dict[str, Any]],
    engine: fitting.Engine | None = None,
    folds: int = 3,
    test_days: float = 28,
) -> pd.DataFrame:
    """One row per fold (origin, window end, and the evaluation's headline figures); empty when the data
    spans fewer than `folds` + 2 windows."""
    origins = rolling_origins(records["created_at"], folds, test_days)
    if not origins:
        log.info("backtest skipped: the data spans less than %d windows of %g days", folds + 2, test_days)
        return pd.DataFrame()
    rows = []
    for i, origin in enumerate(tqdm(origins, desc="backtest folds", unit="fold")):
        end = origin + pd.Timedelta(days=test_days)
        window = records[records["created_at"] < end]
        result = train_models(window, specs, engine, test_start=origin)
        t, d = result.evaluation.summary["time_to_close"], result.evaluation.summary["department"]
        row: dict[str, Any] = {"fold": i, "test_start": origin.isoformat(), "test_end": end.isoformat()}
        row |= {f"ttc_{k}": t.get(k) for k in TIME_KEYS}
        row |= {f"dept_{k}": d.get(k) for k in DEPARTMENT_KEYS}
        rows.append(row)
        log.info("backtest fold %d (%s): %s", i, origin.date(), row)
    return pd.DataFrame(rows)


def backtest_summary(table: pd.DataFrame) -> dict[str, float]:
    """Mean and spread (min, max) over folds of every numeric column, for MLflow metrics and the CLI."""
    if table.empty:
        return {}
    numeric = table.drop(columns=["fold"]).select_dtypes("number")
    out: dict[str, float] = {"backtest_folds": float(len(table))}
    for column in numeric.columns:
        values = numeric[column].astype("float64")
        out[f"backtest_mean_{column}"] = float(values.mean())
        out[f"backtest_min_{column}"] = float(values.min())
        out[f"backtest_max_{column}"] = float(values.max())
    return out
