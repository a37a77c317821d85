"""Evaluation plots saved as PNG files (logged to MLflow as artifacts): calibration, error by department,
coverage over time. Matplotlib with the non-interactive Agg backend; nothing is shown."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def calibration_plot(scored: pd.DataFrame, path: Path) -> Path:
    """Share of requests closed by each predicted quantile, against the quantile's nominal level."""
    plt = _pyplot()
    levels = [0.1, 0.5, 0.9]
    observed = [float((scored["hours"] <= scored[c]).mean()) for c in ("p10", "p50", "p90")]
    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect")
    axis.plot(levels, observed, marker="o", label="model")
    axis.set_xlabel("nominal quantile")
    axis.set_ylabel("share closed by the predicted time")
    axis.set_title("Quantile calibration (test period)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def error_by_group_plot(table: pd.DataFrame, by: str, path: Path) -> Path:
    """Median absolute error per group: model P50 beside the per-type-median baseline."""
    plt = _pyplot()
    table = table.sort_values("n", ascending=False).head(15)
    figure, axis = plt.subplots(figsize=(8, 4.5))
    y = np.arange(len(table))
    axis.barh(y - 0.2, table["median_ae_hours"], height=0.4, label="model P50")
    axis.barh(y + 0.2, table["baseline_median_ae_hours"], height=0.4, label="per-type median")
    axis.set_yticks(y, [str(v) for v in table[by]])
    axis.invert_yaxis()
    axis.set_xlabel("median absolute error (hours)")
    axis.set_title(f"Error by {by.replace('_', ' ')} (test period)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def coverage_over_time_plot(scored: pd.DataFrame, path: Path, target: float = 0.8) -> Path:
    """Daily share of resolved requests inside their P10-P90 range."""
    plt = _pyplot()
    inside = (scored["hours"] >= scored["p10"]) & (scored["hours"] <= scored["p90"])
    daily = inside.groupby(scored["created_at"].dt.floor("D")).mean()
    figure, axis = plt.subplots(figsize=(8, 3.5))
    axis.plot(daily.index, daily.to_numpy(), marker=".")
    axis.axhline(target, color="grey", linestyle="--", label=f"target {target:.0%}")
    axis.set_ylim(0, 1)
    axis.set_ylabel("P10-P90 coverage")
    axis.set_title("Coverage over the test period (by creation day)")
    axis.legend()
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
