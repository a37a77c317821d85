"""Metric functions for both models and their baselines: plain numpy in, plain floats out."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _clean(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    keep = np.ones(len(arrays[0]), dtype=bool)
    for a in arrays:
        keep &= np.isfinite(a)
    return tuple(a[keep] for a in arrays)


def pinball(actual: np.ndarray, predicted: np.ndarray, q: float) -> float:
    diff = actual - predicted
    return float(np.mean(np.maximum(q * diff, (q - 1) * diff)))


def time_to_close_metrics(hours: np.ndarray, p10: np.ndarray, p50: np.ndarray, p90: np.ndarray) -> dict[str, float]:
    """Point and interval quality in hours and on the log scale (resolved requests only)."""
    hours, p10, p50, p90 = _clean(
        np.asarray(hours, float), np.asarray(p10, float), np.asarray(p50, float), np.asarray(p90, float)
    )
    if len(hours) == 0:
        return {"n": 0}
    log_actual = np.log1p(hours)
    error = np.abs(p50 - hours)
    return {
        "n": int(len(hours)),
        "mae_hours": float(error.mean()),
        "median_ae_hours": float(np.median(error)),
        "mae_log": float(np.abs(np.log1p(p50) - log_actual).mean()),
        "pinball_p10_log": pinball(log_actual, np.log1p(p10), 0.1),
        "pinball_p50_log": pinball(log_actual, np.log1p(p50), 0.5),
        "pinball_p90_log": pinball(log_actual, np.log1p(p90), 0.9),
        "coverage_p10_p90": float(((hours >= p10) & (hours <= p90)).mean()),
        "mean_width_hours": float((p90 - p10).mean()),
    }


def point_metrics(hours: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAE, median AE and log-scale MAE of a point estimate (for baselines)."""
    hours, predicted = _clean(np.asarray(hours, float), np.asarray(predicted, float))
    if len(hours) == 0:
        return {"n": 0}
    error = np.abs(predicted - hours)
    return {
        "n": int(len(hours)),
        "mae_hours": float(error.mean()),
        "median_ae_hours": float(np.median(error)),
        "mae_log": float(np.abs(np.log1p(np.clip(predicted, 0, None)) - np.log1p(hours)).mean()),
    }


def classification_metrics(probabilities: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Accuracy, top-3 accuracy, macro-F1 and log loss; `actual` holds class indices (-1 = unknown class)."""
    from sklearn.metrics import f1_score

    n = len(actual)
    if n == 0:
        return {"n": 0}
    predicted = probabilities.argmax(axis=1)
    top3 = np.argsort(-probabilities, axis=1)[:, :3]
    known = actual >= 0
    picked = np.where(known, probabilities[np.arange(n), np.clip(actual, 0, None)], 0.0)
    return {
        "n": int(n),
        "accuracy": float((predicted == actual).mean()),
        "top3_accuracy": float((top3 == actual[:, None]).any(axis=1).mean()),
        "macro_f1": float(f1_score(actual, predicted, average="macro", labels=np.unique(actual[known]))),
        "log_loss": float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0)))),
    }


def grouped_time_metrics(frame: pd.DataFrame, by: str, min_rows: int = 20) -> pd.DataFrame:
    """Per-group MAE, median AE and coverage from a frame with hours, p10, p50, p90 and the baseline."""
    rows = []
    for key, group in frame.groupby(by, observed=True, dropna=False):
        if len(group) < min_rows:
            continue
        m = time_to_close_metrics(
            group["hours"].to_numpy(), group["p10"].to_numpy(), group["p50"].to_numpy(), group["p90"].to_numpy()
        )
        b = point_metrics(group["hours"].to_numpy(), group["baseline"].to_numpy())
        rows.append(
            {
                by: key,
                "n": m["n"],
                "mae_hours": m["mae_hours"],
                "median_ae_hours": m["median_ae_hours"],
                "coverage_p10_p90": m["coverage_p10_p90"],
                "baseline_mae_hours": b["mae_hours"],
                "baseline_median_ae_hours": b["median_ae_hours"],
            }
        )
    return pd.DataFrame(rows)
