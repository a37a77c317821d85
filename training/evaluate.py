"""Scoring registered (or just-trained) models against what actually happened, beside the city's baselines.

Used twice: by `train` on its temporal test slice, and by `eta311 evaluate DATA` on any later file. Only
resolved requests have a true time-to-close; open ones are censored and excluded from the error metrics
(stated in the output as `n`), which is what every baseline is measured on too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.pipeline import FeatureMatrix, FeaturePipeline
from models.bundle import ModelBundle, predict_department, predict_time_to_close
from training.labels import hours_to_close
from training.metrics import classification_metrics, grouped_time_metrics, point_metrics, time_to_close_metrics
from training.reference import ReferenceDepartment, References, ReferenceTimeToClose

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """Headline metrics (the `evaluate --json` contract) plus the tables and scored rows behind them."""

    summary: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    scored: pd.DataFrame | None = None


def without_type(records: pd.DataFrame) -> pd.DataFrame:
    """The same requests as a resident who only describes the problem would send them."""
    return records.assign(request_type=pd.Series(pd.NA, index=records.index, dtype="str"))


def score_time_to_close(
    bundle: ModelBundle, matrix: np.ndarray, records: pd.DataFrame, reference: ReferenceTimeToClose | None = None
) -> pd.DataFrame:
    """Predictions beside the actual outcome for each row (actual NaN where not resolved), with the
    reference's P10/P50/P90 when there is one."""
    predicted = predict_time_to_close(bundle, matrix)
    baseline = bundle.metadata.get("baseline_type_median_hours", {})
    global_median = float(bundle.metadata.get("baseline_global_median_hours", np.nan))
    scored = pd.DataFrame(
        {
            "created_at": records["created_at"].to_numpy(),
            "request_type": records["request_type"].to_numpy(),
            "department": records["department"].to_numpy(),
            "council_district": records["council_district"].to_numpy(),
            "hours": hours_to_close(records).to_numpy(),
            "p10": predicted["q10"],
            "p50": predicted["q50"],
            "p90": predicted["q90"],
            "baseline": records["request_type"].map(baseline).astype("float64").fillna(global_median).to_numpy(),
            "global_median": np.full(len(records), global_median),
            "city_target": ((records["sla_target_at"] - records["created_at"]).dt.total_seconds() / 3600).to_numpy(),
        }
    )
    if reference is not None:
        hours = reference.predict_hours(matrix)
        scored = scored.assign(reference_p10=hours["q10"], reference_p50=hours["q50"], reference_p90=hours["q90"])
    return scored


def time_to_close_summary(scored: pd.DataFrame) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """The time-to-close block of the evaluation and its per-group tables."""
    resolved = scored[scored["hours"].notna()]
    model = time_to_close_metrics(resolved["hours"], resolved["p10"], resolved["p50"], resolved["p90"])
    type_median = point_metrics(resolved["hours"], resolved["baseline"])
    global_median = point_metrics(resolved["hours"], resolved["global_median"])
    summary: dict[str, Any] = dict(model)
    summary.update(
        {
            "baseline_type_median_mae_hours": type_median.get("mae_hours"),
            "baseline_type_median_median_ae_hours": type_median.get("median_ae_hours"),
            "baseline_type_median_mae_log": type_median.get("mae_log"),
            "baseline_global_median_mae_hours": global_median.get("mae_hours"),
            "baseline_global_median_median_ae_hours": global_median.get("median_ae_hours"),
        }
    )
    with_target = resolved[np.isfinite(resolved["city_target"])]
    if len(with_target):
        target = point_metrics(with_target["hours"], with_target["city_target"])
        ours = point_metrics(with_target["hours"], with_target["p50"])
        summary.update(
            {
                "n_with_city_target": target["n"],
                "baseline_city_target_mae_hours": target["mae_hours"],
                "baseline_city_target_median_ae_hours": target["median_ae_hours"],
                "model_on_city_target_rows_mae_hours": ours["mae_hours"],
                "model_on_city_target_rows_median_ae_hours": ours["median_ae_hours"],
            }
        )
    if "reference_p50" in resolved:
        reference = time_to_close_metrics(
            resolved["hours"], resolved["reference_p10"], resolved["reference_p50"], resolved["reference_p90"]
        )
        summary.update(
            {
                "baseline_reference_mae_hours": reference.get("mae_hours"),
                "baseline_reference_median_ae_hours": reference.get("median_ae_hours"),
                "baseline_reference_mae_log": reference.get("mae_log"),
                "baseline_reference_coverage_p10_p90": reference.get("coverage_p10_p90"),
            }
        )
        if len(with_target):
            summary["reference_on_city_target_rows_mae_hours"] = point_metrics(
                with_target["hours"], with_target["reference_p50"]
            )["mae_hours"]
    summary["n_open_excluded"] = int(scored["hours"].isna().sum())
    tables = {
        "by_department": grouped_time_metrics(resolved, "department"),
        "by_request_type": grouped_time_metrics(resolved, "request_type"),
    }
    return summary, tables


def department_summary(
    bundle: ModelBundle,
    with_type: np.ndarray,
    no_type: np.ndarray,
    records: pd.DataFrame,
    reference: ReferenceDepartment | None = None,
) -> dict[str, Any]:
    """Accuracy with and without the request type, beside the per-type majority baseline and the reference."""
    classes: list[str] = list(bundle.metadata["classes"])
    index = {name: i for i, name in enumerate(classes)}
    other = index.get(bundle.metadata.get("other_class", "other"), -1)
    known = records["department"].notna().to_numpy()
    actual = np.array([index.get(d, other) for d in records["department"].to_numpy()[known]], dtype=int)
    if len(actual) == 0:
        return {"n": 0}
    full = classification_metrics(predict_department(bundle, with_type[known]), actual)
    blind = classification_metrics(predict_department(bundle, no_type[known]), actual)
    majority = bundle.metadata.get("baseline_type_majority", {})
    overall = bundle.metadata.get("baseline_overall_majority", "")
    baseline = records["request_type"].map(majority).astype("str").fillna(overall).to_numpy()[known]
    truth = records["department"].to_numpy()[known]
    seen_types = set(majority)
    unseen = ~records["request_type"].isin(seen_types).to_numpy()[known]
    summary = {
        "n": full["n"],
        "accuracy": full["accuracy"],
        "top3_accuracy": full["top3_accuracy"],
        "macro_f1": full["macro_f1"],
        "log_loss": full["log_loss"],
        "accuracy_without_type": blind["accuracy"],
        "top3_accuracy_without_type": blind["top3_accuracy"],
        "macro_f1_without_type": blind["macro_f1"],
        "log_loss_without_type": blind["log_loss"],
        "baseline_type_majority_accuracy": float(np.mean(baseline == truth)),
        "baseline_overall_majority_accuracy": float(np.mean(truth == overall)),
        "n_unseen_type": int(unseen.sum()),
    }
    if reference is not None:
        rows = records.loc[known]
        referenced = reference.predict(rows, with_type=True)
        summary["baseline_reference_accuracy"] = float(np.mean(referenced == actual))
        summary["baseline_reference_accuracy_without_type"] = float(
            np.mean(reference.predict(rows, with_type=False) == actual)
        )
    if unseen.any():
        predicted = predict_department(bundle, with_type[known][unseen]).argmax(axis=1)
        summary["accuracy_unseen_type"] = float(np.mean(predicted == actual[unseen]))
        summary["baseline_type_majority_accuracy_unseen_type"] = float(np.mean(baseline[unseen] == truth[unseen]))
        if reference is not None:
            summary["baseline_reference_accuracy_unseen_type"] = float(np.mean(referenced[unseen] == actual[unseen]))
    return summary


def features_for(pipeline: FeaturePipeline, records: pd.DataFrame) -> tuple[FeatureMatrix, FeatureMatrix]:
    """Point-in-time features of `records` (their own history), with and without the request type."""
    return pipeline.transform(records), pipeline.transform(without_type(records))


def evaluate_time_bundle(
    bundle: ModelBundle,
    records: pd.DataFrame,
    mask: np.ndarray,
    features: FeatureMatrix | None = None,
    reference: ReferenceTimeToClose | None = None,
) -> tuple[dict[str, Any], dict[str, pd.DataFrame], pd.DataFrame]:
    """Time-to-close metrics of one bundle on the `mask` rows of `records` (all rows are workload history).
    `features` are the bundle pipeline's features of `records` when the caller already has them."""
    if features is None:
        features = FeaturePipeline.from_dict(bundle.pipeline).transform(records)
    matrix = features.values[mask]
    scored = score_time_to_close(bundle, matrix, records.loc[mask].reset_index(drop=True), reference)
    summary, tables = time_to_close_summary(scored)
    return summary, tables, scored


def evaluate_department_bundle(
    bundle: ModelBundle,
    records: pd.DataFrame,
    mask: np.ndarray,
    features: tuple[FeatureMatrix, FeatureMatrix] | None = None,
    reference: ReferenceDepartment | None = None,
) -> dict[str, Any]:
    """Department metrics of one bundle on the `mask` rows, with and without the request type (`features`:
    both matrices of `records` when the caller already has them)."""
    with_type, no_type = features or features_for(FeaturePipeline.from_dict(bundle.pipeline), records)
    return department_summary(
        bundle, with_type.values[mask], no_type.values[mask], records.loc[mask].reset_index(drop=True), reference
    )


def evaluate_bundles(
    time_bundle: ModelBundle,
    department_bundle: ModelBundle,
    records: pd.DataFrame,
    mask: np.ndarray | None = None,
    features: tuple[FeatureMatrix, FeatureMatrix] | None = None,
    references: References | None = None,
) -> Evaluation:
    """Score both bundles on `records` (restricted to `mask` rows; the rest serve as workload history),
    beside the baselines and, when given, the reference models trained with them.

    `features` (with and without the type) may be passed when both bundles share the pipeline that made
    them, as right after training: the evaluation then reuses them instead of featurising every row again.
    """
    records = records.reset_index(drop=True)
    mask = np.ones(len(records), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if features is None and time_bundle.pipeline == department_bundle.pipeline:
        features = features_for(FeaturePipeline.from_dict(time_bundle.pipeline), records)
    time_reference = references.time_to_close if references else None
    department_reference = references.department if references else None
    ttc, tables, scored = evaluate_time_bundle(
        time_bundle, records, mask, features[0] if features else None, time_reference
    )
    department = evaluate_department_bundle(department_bundle, records, mask, features, department_reference)
    created = records.loc[mask, "created_at"]
    summary = {
        "time_to_close": ttc,
        "department": department,
        "period": {
            "start": created.min().isoformat() if len(created) else None,
            "end": created.max().isoformat() if len(created) else None,
            "rows": int(mask.sum()),
        },
    }
    return Evaluation(summary=summary, tables=tables, scored=scored)


def write_tables(evaluation: Evaluation, folder: Path) -> list[Path]:
    """Per-group tables as CSV (logged to MLflow beside the plots)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, table in evaluation.tables.items():
        path = folder / f"{name}.csv"
        table.to_csv(path, index=False)
        paths.append(path)
    return paths
