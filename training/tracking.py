"""Logging a training run to MLflow: params, spec, data digest and range, features, metrics, baselines,
plots, and both models (pyfunc from code, native LightGBM files inside) registered with alias `challenger`."""

from __future__ import annotations

import json
import logging
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from features.schema import INTAKE_COLUMNS, INTAKE_DTYPES
from models.bundle import save_snapshot_frame
from models.registry import CHALLENGER, DEPARTMENT, TIME_TO_CLOSE, set_alias
from training import plots
from training.backtest import backtest_summary
from training.evaluate import write_tables
from training.train import TrainResult

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
# A logged model carries only what prediction needs: the model package and the features it computes.
MODEL_CODE = ROOT / "models" / "mlflow_model.py"
CODE_PATHS = [str(ROOT / "features"), str(ROOT / "models")]
# What the logged pyfunc needs to load anywhere: explicit, pinned to what trained it.
REQUIREMENT_PACKAGES = ("mlflow", "lightgbm", "numpy", "pandas", "pyarrow", "scikit-learn", "holidays", "pydantic")


def pip_requirements() -> list[str]:
    return [f"{name}=={metadata.version(name)}" for name in REQUIREMENT_PACKAGES]


def _flatten(prefix: str, values: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in values.items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            out[f"{prefix}{key}"] = float(value)
    return out


def input_schema():
    """The pyfunc input schema, straight from the intake request: every field optional, times as ISO text."""
    from mlflow.types import ColSpec, Schema

    kinds = {"float64": "double"}
    return Schema(
        [
            ColSpec(kinds.get(dtype, "string"), name, required=name == "created_at")
            for name, dtype in INTAKE_DTYPES.items()
        ]
    )


def input_example(records: pd.DataFrame, n: int = 3) -> pd.DataFrame:
    """A few intake rows as the pyfunc receives them (JSON-friendly types)."""
    sample = records[list(INTAKE_COLUMNS)].head(n).copy()
    sample["created_at"] = sample["created_at"].dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    return sample.astype(object).where(sample.notna(), None)


def log_training(
    result: TrainResult,
    data_path: str,
    records: pd.DataFrame,
    snapshot: pd.DataFrame,
    specs: dict[str, dict[str, Any]],
    backtest: pd.DataFrame | None = None,
) -> TrainResult:
    """One MLflow run for one `eta311 train`; returns the result with run id and the new versions.

    With a rolling-origin `backtest` table, its per-fold rows are logged as `evaluation/backtest.csv` and
    the mean/min/max over folds as `backtest_*` metrics.
    """
    import mlflow
    from mlflow.models import ModelSignature, infer_signature

    time_bundle = result.bundles["time_to_close"]
    department_bundle = result.bundles["department"]
    evaluation = result.evaluation
    pipeline_state = time_bundle.pipeline
    with mlflow.start_run() as run, tempfile.TemporaryDirectory(prefix="eta311-log-") as scratch:
        folder = Path(scratch)
        meta = time_bundle.metadata
        mlflow.log_params(
            {
                "data_path": str(data_path),
                "data_digest": meta["data_digest"],
                "rows": meta["rows"],
                "date_start": records["created_at"].min().isoformat(),
                "date_end": records["created_at"].max().isoformat(),
                "extracted_at": meta["extracted_at"],
                "engine": meta["engine"],
                "n_features": len(pipeline_state["feature_names_"]),
                **{f"split_{k}": v for k, v in meta["split"].items()},
                **{f"ttc_{k}": v for k, v in specs["time_to_close"]["params"].items()},
                **{f"dept_{k}": v for k, v in specs["department"]["params"].items()},
                "conformal_log_offsets": json.dumps(time_bundle.calibration.get("log_offsets")),
                "department_temperature": department_bundle.calibration.get("temperature"),
            }
        )
        mlflow.set_tags({"eta311.data_digest": meta["data_digest"], "eta311.test_start": meta["split"]["test_start"]})
        mlflow.log_metrics(_flatten("ttc_", evaluation.summary["time_to_close"]))
        mlflow.log_metrics(_flatten("dept_", evaluation.summary["department"]))
        mlflow.log_metrics({f"stage_seconds_{k}": v for k, v in result.stage_seconds.items()})
        mlflow.log_dict(specs, "spec/model_specs.json")
        mlflow.log_dict({"features": pipeline_state["feature_names_"]}, "features/feature_list.json")
        mlflow.log_dict(evaluation.summary, "evaluation/summary.json")
        for path in write_tables(evaluation, folder / "tables"):
            mlflow.log_artifact(str(path), "evaluation")
        if backtest is not None and not backtest.empty:
            backtest.to_csv(folder / "backtest.csv", index=False)
            mlflow.log_artifact(str(folder / "backtest.csv"), "evaluation")
            mlflow.log_metrics(backtest_summary(backtest))
        if evaluation.scored is not None and evaluation.scored["hours"].notna().any():
            resolved = evaluation.scored[evaluation.scored["hours"].notna()]
            mlflow.log_artifact(str(plots.calibration_plot(resolved, folder / "calibration.png")), "plots")
            mlflow.log_artifact(
                str(plots.coverage_over_time_plot(resolved, folder / "coverage_over_time.png")), "plots"
            )
            by_department = evaluation.tables.get("by_department")
            if by_department is not None and len(by_department):
                path = plots.error_by_group_plot(by_department, "department", folder / "error_by_department.png")
                mlflow.log_artifact(str(path), "plots")

        example = input_example(records)
        versions = {}
        for kind, registered, bundle in (
            ("time_to_close", TIME_TO_CLOSE, time_bundle),
            ("department", DEPARTMENT, department_bundle),
        ):
            bundle_dir = bundle.save(folder / "bundles" / kind)
            save_snapshot_frame(bundle_dir, snapshot)
            if result.references is not None:  # scored beside the model by `evaluate` and `promote`
                result.references.save(kind, bundle_dir)
            output = _example_output(bundle_dir, example)
            info = mlflow.pyfunc.log_model(
                name=kind,
                python_model=str(MODEL_CODE),
                artifacts={"bundle": str(bundle_dir)},
                code_paths=CODE_PATHS,
                pip_requirements=pip_requirements(),
                signature=ModelSignature(inputs=input_schema(), outputs=infer_signature(example, output).outputs),
                input_example=example,
                registered_model_name=registered,
            )
            version = str(info.registered_model_version)
            set_alias(registered, CHALLENGER, version)
            versions[registered] = version
            log.info("registered %s version %s as %s", registered, version, CHALLENGER)
    result.run_id = run.info.run_id
    result.versions = versions
    return result


def _example_output(bundle_dir: Path, example: pd.DataFrame) -> pd.DataFrame:
    """Predict the input example with the very class MLflow will load, for the signature."""
    from models.mlflow_model import BundleModel

    class _Context:
        artifacts = {"bundle": str(bundle_dir)}

    model = BundleModel()
    model.load_context(_Context())
    return model.predict(None, example)
