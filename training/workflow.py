"""`eta311 train` as one library call: train, backtest, log to MLflow, write today's serving inputs.

The CLI and the demo both call `train_and_register`, so the demo trains exactly what a data scientist's
`eta311 train` trains. Every stage is timed: the `stage_seconds` of the result cover features, each model,
evaluation, the optional backtest, MLflow logging and the snapshot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from forecast.departments import default_as_of, write_forecast_inputs
from models.files import LATEST_SNAPSHOT_FILE
from training import fitting
from training.backtest import backtest, backtest_summary
from training.tracking import log_training
from training.train import timed, train_models


def train_and_register(
    records: pd.DataFrame,
    specs: dict[str, dict[str, Any]],
    data_path: Path | str,
    snapshots_dir: Path,
    engine: fitting.Engine | None = None,
    test_start: pd.Timestamp | None = None,
    backtest_folds: int = 0,
) -> dict[str, Any]:
    """Train both models, log one MLflow run (new versions get alias `challenger`) and write the workload
    snapshot and forecast inputs the service reads. Returns the JSON-ready summary `eta311 train` prints.

    Raises ValueError when the data cannot be split or trained on (the message says why).
    """
    result = train_models(records, specs, engine, test_start)
    stages = result.stage_seconds
    folds = None
    if backtest_folds:
        with timed(stages, "backtest"):
            folds = backtest(records, specs, engine, backtest_folds)
    prep = result.prepared
    with timed(stages, "logging"):
        snapshot = prep.pipeline.workload_snapshot(prep.records, prep.extracted_at)
        source = str(data_path.resolve()) if isinstance(data_path, Path) else data_path  # a file, or the ledger's URL
        log_training(result, source, prep.records, snapshot, specs, folds)
    with timed(stages, "snapshot"):
        snapshots_dir.mkdir(parents=True, exist_ok=True)
        snapshot.to_parquet(snapshots_dir / LATEST_SNAPSHOT_FILE, index=False)
        # As of the latest created_at, as `eta311 forecast` defaults to, so the dashboard shows its numbers.
        write_forecast_inputs(prep.records, default_as_of(prep.records), snapshots_dir, prep.pipeline)
    summary: dict[str, Any] = {
        "run_id": result.run_id,
        "versions": result.versions,
        "data": source,
        "rows": int(len(prep.records)),
        "evaluation": result.evaluation.summary,
        "split": prep.split.to_dict(),
        "stage_seconds": stages,
    }
    if folds is not None:
        summary["backtest"] = {"folds": folds.to_dict("records"), "summary": backtest_summary(folds)}
    return summary
