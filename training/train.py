"""`eta311 train`: features -> time-to-close and department models -> temporal evaluation -> MLflow.

Stages (each timed and logged): prepare (sort, split, fit the feature pipeline, point-in-time features),
time-to-close (quantiles, conformal calibration, horizons), department (multiclass, temperature),
evaluation (temporal test beside the baselines, plots) and logging (one MLflow run, both models registered
with alias `challenger`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.pipeline import FeatureMatrix, FeaturePipeline
from features.routing import ROUTE_PREFIX, TYPED_COLUMN
from features.schema import INTAKE_COLUMNS, RECORD_COLUMNS
from models.bundle import (
    ModelBundle,
    blend_inputs,
    predict_department,
    predict_quantile_hours,
    quantile_key,
    type_count_posterior,
)
from training import fitting
from training.baselines import TypeMajorityDepartment, TypeMedianBaseline
from training.evaluate import Evaluation, evaluate_bundles, without_type
from training.labels import (
    effective_follow_up_days,
    extraction_time,
    follow_up_cohort,
    horizon_labels,
    hours_to_close,
    observed_hours,
)
from training.reference import ReferenceDepartment, References, ReferenceTimeToClose
from training.split import TemporalSplit, split_at, temporal_split

log = logging.getLogger(__name__)

# Workload statistics whose growth must never shorten the estimate (monotone constraints).
MONOTONE_PREFIXES = tuple(
    f"wl_{level}_{stat}" for level in ("type", "dept", "area", "city") for stat in ("backlog", "median_hours")
)
OTHER_DEPARTMENT = "other"
# Below this many labelled rows before the test, no reference is fitted (an export of open requests only):
# the evaluation then reports none rather than a model of a handful of rows.
MIN_REFERENCE_ROWS = 50


@dataclass
class Prepared:
    """Everything both models train from: sorted records, the split and the features of every row."""

    records: pd.DataFrame
    split: TemporalSplit
    train: np.ndarray
    calibration: np.ndarray
    test: np.ndarray
    extracted_at: pd.Timestamp
    pipeline: FeaturePipeline
    features: FeatureMatrix
    features_no_type: FeatureMatrix


@dataclass
class TrainResult:
    run_id: str | None
    versions: dict[str, str]
    evaluation: Evaluation
    stage_seconds: dict[str, float] = field(default_factory=dict)
    bundles: dict[str, ModelBundle] = field(default_factory=dict)
    references: References | None = None
    prepared: Prepared | None = None


@contextmanager
def timed(stages: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    log.info("stage %s ...", name)
    yield
    stages[name] = time.perf_counter() - started
    log.info("stage %s done in %.1fs", name, stages[name])


def canonical_order(records: pd.DataFrame) -> pd.DataFrame:
    """Rows in an order fixed by their content (not by file order or request id), so training is invariant
    to both: by creation time, then every other field except the id."""
    keys = [
        c
        for c in RECORD_COLUMNS
        if c in records.columns and c not in ("request_id", "source_row", "source_file", "source_format")
    ]
    return records.sort_values(keys, kind="stable", na_position="last", ignore_index=True)


def data_digest(records: pd.DataFrame) -> str:
    """A content hash of the training data (order-independent after canonical ordering)."""
    hashed = pd.util.hash_pandas_object(
        records[list(INTAKE_COLUMNS) + ["closed_at", "status", "department"]], index=False
    )
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()[:16]


def prepare(records: pd.DataFrame, spec: dict[str, Any], test_start: pd.Timestamp | None = None) -> Prepared:
    """Sort, split by time, fit the feature pipeline on the training part, featurise every row. The spec's
    optional `features` block holds the pipeline's parameters (features.pipeline.FeaturePipeline)."""
    records = canonical_order(records)
    split_spec = spec["split"]
    calibration_spec = spec["calibration"]
    if test_start is None:
        split = temporal_split(
            records["created_at"],
            split_spec["test_fraction"],
            split_spec["max_test_days"],
            calibration_spec["slice_fraction"],
            calibration_spec["max_slice_days"],
        )
    else:
        split = split_at(
            records["created_at"], test_start, calibration_spec["slice_fraction"], calibration_spec["max_slice_days"]
        )
    train, calibration, test = split.masks(records["created_at"])
    log.info(
        "split: train %d, calibration %d, test %d rows (%s)",
        train.sum(),
        calibration.sum(),
        test.sum(),
        split.to_dict(),
    )
    pipeline = FeaturePipeline(**spec.get("features", {})).fit(records.loc[train])
    features = pipeline.transform(records)
    features_no_type = pipeline.transform(without_type(records))
    return Prepared(
        records, split, train, calibration, test, extraction_time(records), pipeline, features, features_no_type
    )


def _time_rows(
    prep: Prepared, mask: np.ndarray, follow_up_days: float, include_open: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices and log1p(duration) of the quantile population within `mask`: resolved requests and
    (with `include_open`) open ones censored at their age, restricted to cohorts with full follow-up."""
    duration, resolved = observed_hours(prep.records, prep.extracted_at)
    if not include_open:
        duration = duration.where(resolved)
    cohort = follow_up_cohort(prep.records, follow_up_days, prep.extracted_at).to_numpy()
    keep = mask & cohort & duration.notna().to_numpy()
    if keep.sum() < 50:  # short exports: fall back to every resolved request in the mask
        keep = mask & duration.notna().to_numpy()
    rows = np.flatnonzero(keep)
    return rows, np.log1p(duration.to_numpy()[rows])


def fit_time_to_close(prep: Prepared, spec: dict[str, Any], engine: fitting.Engine) -> ModelBundle:
    """Quantile boosters on the follow-up cohort, conformal offsets on the calibration slice, horizons.

    With the spec's `refit_with_calibration` (the default), the quantile boosters whose calibration slice set
    the conformal offsets are then fitted again, with the same parameters, on the training rows *and* the
    calibration slice, and the horizons learn from both: the slice just before the test is the most recent
    history, and on the real LA split leaving it out of the fit cost more than anything else (median AE
    25.0 h against 14.9 h for the plain reference model). The offsets, measured on a model that had not
    seen the slice, then stand for the refitted one (measured coverage in benchmarks/bench_quality.py).
    """
    follow_up = effective_follow_up_days(prep.records.loc[prep.train | prep.calibration], spec["follow_up_days"])
    matrix = prep.features.values
    names, categorical = prep.features.feature_names, prep.features.categorical_features
    monotone = fitting.monotone_constraints(names, MONOTONE_PREFIXES)
    refit = bool(spec.get("refit_with_calibration", True))
    include_open = bool(spec.get("include_open", True))

    def quantiles(mask: np.ndarray) -> tuple[dict[str, Any], dict[str, float], int]:
        rows, log_hours = _time_rows(prep, mask, follow_up, include_open)
        keep = capped(len(rows), spec)
        boosters, bases = engine.fit_quantiles(matrix[rows[keep]], log_hours[keep], names, categorical, spec, monotone)
        return boosters, bases, int(keep.size)

    boosters, bases, n_rows = quantiles(prep.train)
    probe = ModelBundle("time_to_close", spec, prep.pipeline.to_dict(), boosters, {"log_base": bases})
    cal_rows, cal_log = _time_rows(prep, prep.calibration, follow_up, include_open)
    offsets = [0.0] * len(spec["quantiles"])
    if len(cal_rows) and spec["calibration"].get("method", "conformal") == "conformal":
        raw = predict_quantile_hours(probe, matrix[cal_rows])  # the probe has no offsets yet
        predicted_log = np.log1p(np.column_stack([raw[quantile_key(q)] for q in spec["quantiles"]]))
        offsets = fitting.conformal_offsets(predicted_log, cal_log, spec["calibration"]["coverage"])
    if refit and len(cal_rows):
        boosters, bases, n_rows = quantiles(prep.train | prep.calibration)
    horizon_rows = np.flatnonzero((prep.train | prep.calibration) if refit else prep.train)
    horizon_rows = horizon_rows[capped(len(horizon_rows), spec)]
    labels = {
        float(h): horizon_labels(prep.records, h, prep.extracted_at).to_numpy()[horizon_rows]
        for h in spec["horizons_days"]
    }
    boosters |= engine.fit_horizons(matrix[horizon_rows], labels, names, categorical, spec, monotone)

    calibration = {
        "log_base": bases,
        "log_offsets": offsets,
        "n_calibration": int(len(cal_rows)),
        "follow_up_days": follow_up,
    }
    bundle = ModelBundle("time_to_close", spec, prep.pipeline.to_dict(), boosters, calibration)
    baseline = TypeMedianBaseline().fit(prep.records.loc[prep.train | prep.calibration])
    bundle.metadata.update(
        {
            "baseline_type_median_hours": {str(k): float(v) for k, v in baseline.medians_.items()},
            "baseline_global_median_hours": baseline.global_median_,
            "n_train_rows": n_rows,
        }
    )
    log.info(
        "time to close: %d quantile rows, %d calibration rows, offsets %s%s",
        n_rows,
        len(cal_rows),
        [round(o, 3) for o in offsets],
        " (refitted with the calibration slice)" if refit else "",
    )
    return bundle


def fit_department_model(prep: Prepared, spec: dict[str, Any], engine: fitting.Engine) -> ModelBundle:
    """Multiclass over departments seen at least `min_class_count` times; some rows shown without type."""
    departments = prep.records["department"]
    train_known = prep.train & departments.notna().to_numpy()
    counts = departments[train_known].value_counts()
    classes = sorted(counts[counts >= spec["min_class_count"]].index.tolist())
    if OTHER_DEPARTMENT not in classes and (counts < spec["min_class_count"]).any():
        classes.append(OTHER_DEPARTMENT)
    if len(classes) < 2:
        classes = sorted(counts.index.tolist()) + ([OTHER_DEPARTMENT] if len(counts) < 2 else [])
    codes = department_codes(departments, classes)

    every_row = np.flatnonzero(train_known)
    rows = every_row[capped(len(every_row), spec)]
    rng = np.random.default_rng(int(spec["params"].get("seed", 0)))
    dropped = rows[rng.random(len(rows)) < float(spec["type_dropout"])]
    matrix = np.vstack([prep.features.values[rows], prep.features_no_type.values[dropped]])
    target = np.concatenate([codes[rows], codes[dropped]])
    names, categorical = prep.features.feature_names, prep.features.categorical_features
    excluded = excluded_columns(names, spec.get("exclude_features", []))
    matrix[:, excluded] = np.nan  # a column that is all missing is never split on: the booster ignores it
    booster = engine.fit_department(matrix, target, len(classes), names, categorical, spec)

    cal = np.flatnonzero(prep.calibration & departments.notna().to_numpy())
    logits = booster.predict(prep.features.values[cal], raw_score=True).reshape(len(cal), len(classes))
    temperature = fitting.fit_temperature(logits, codes[cal])
    blend = fit_text_blend(prep, booster, classes, codes, cal, temperature)
    type_column = prep.features.feature_names.index("request_type")
    n_types = len(prep.pipeline.vocabularies_["request_type"])
    train_counts = type_count_matrix(
        prep.features.values[every_row, type_column], codes[every_row], n_types, len(classes)
    )
    prior = {"temperature": temperature, "text_blend": blend}
    probe = ModelBundle("department", spec, prep.pipeline.to_dict(), {"department": booster}, prior)
    probe.metadata["classes"] = classes
    probabilities = predict_department(probe, prep.features.values[cal])  # no type counts yet: the prior
    cal_types = prep.features.values[cal, type_column]
    strength = fitting.fit_count_strength(
        lambda m: type_count_posterior(probabilities, cal_types, train_counts, m), codes[cal]
    )
    # The stored counts also take in the calibration slice: the most recent history of each type.
    seen = np.concatenate([every_row, cal])
    counts = type_count_matrix(prep.features.values[seen, type_column], codes[seen], n_types, len(classes))
    present = np.flatnonzero(counts.sum(axis=1))
    calibration = {
        "temperature": temperature,
        "text_blend": blend,
        "type_counts": {"codes": present.tolist(), "counts": counts[present].astype(np.int64).tolist()},
        "type_count_strength": strength,
    }
    majority = TypeMajorityDepartment().fit(prep.records.loc[prep.train | prep.calibration])
    metadata = {
        "classes": classes,
        "other_class": OTHER_DEPARTMENT,
        "n_train_rows": int(len(matrix)),
        "baseline_type_majority": {str(k): str(v) for k, v in majority.majority_.items()},
        "baseline_overall_majority": majority.overall_,
    }
    log.info(
        "department: %d classes, %d rows (%d without type), temperature %.3f, type-count strength %.3g",
        len(classes),
        len(matrix),
        len(dropped),
        temperature,
        calibration["type_count_strength"],
    )
    return ModelBundle("department", spec, prep.pipeline.to_dict(), {"department": booster}, calibration, metadata)


def fit_text_blend(
    prep: Prepared, booster: Any, classes: list[str], codes: np.ndarray, cal: np.ndarray, temperature: float
) -> dict[str, Any] | None:
    """The weights (a, b) of softmax(a * log p_booster + b * text logits) (``models.bundle.blend_logits``),
    fitted by log loss on the calibration slice shown with and without its type, one pair for rows the
    typed text model scored and one for the rest; None without a text router in the pipeline.

    The text model never saw the calibration slice, so its logits there are honest (on training rows they
    are in-sample, which is why no booster splits on them). Too few rows for a group (under 20): a = 1/T
    (0 without the type), b = 1.
    """
    from scipy.optimize import minimize

    router = prep.pipeline.router_
    if router is None:
        return None
    position = {name: i for i, name in enumerate(router.classes)}
    columns = [f"{ROUTE_PREFIX}{position[c]:02d}" if c in position else None for c in classes]
    blend: dict[str, Any] = {"columns": columns, "typed_column": TYPED_COLUMN}
    matrix = np.vstack([prep.features.values[cal], prep.features_no_type.values[cal]])
    target = np.concatenate([codes[cal], codes[cal]])
    names = {name: i for i, name in enumerate(prep.features.feature_names)}
    index = np.array([names[c] if c else -1 for c in columns], dtype=np.int64)
    raw = booster.predict(matrix, raw_score=True).reshape(len(matrix), len(classes))
    log_p, text, typed = blend_inputs(raw, matrix, index, names[TYPED_COLUMN])
    # Without a type, the text model alone (a = 0): on the real splits the booster's location and channel
    # evidence won on the calibration slice and lost on later periods (LA 2020 without type: blend 0.767,
    # text alone 0.859, the reference 0.821; never worse on Boston or NYC).
    booster_bounds = {"typed": (0.0, 20.0), "plain": (0.0, 0.0)}
    for key, rows in (("typed", typed), ("plain", ~typed)):
        start = [1.0 / temperature if key == "typed" else 0.0, 1.0]
        if rows.sum() < 20:
            blend[key] = start
            continue
        lp, tx, y = log_p[rows], text[rows], target[rows]

        def loss(w: np.ndarray, lp: np.ndarray = lp, tx: np.ndarray = tx, y: np.ndarray = y) -> float:
            z = w[0] * lp + w[1] * tx
            z = z - z.max(axis=1, keepdims=True)
            return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))

        found = minimize(loss, np.array(start), method="L-BFGS-B", bounds=[booster_bounds[key], (0.0, 20.0)])
        blend[key] = [float(v) for v in found.x]
    log.info("department text blend: typed %s, plain %s", blend["typed"], blend["plain"])
    return blend


def capped(n: int, spec: dict[str, Any]) -> np.ndarray:
    """Positions of a uniform sample of at most the spec's `max_train_rows` of `n` rows, in order (all of
    them without a limit), seeded by the spec's `params.seed`.

    Boosters gain little past a few hundred thousand rows of a few dozen request types, while their cost
    grows linearly; the spec's `max_train_rows` keeps a city-year within the training budget. Statistics
    that need every row (the type's department counts, conformal offsets, baselines) still use them all.
    """
    limit = spec.get("max_train_rows")
    if not limit or n <= limit:
        return np.arange(n)
    rng = np.random.default_rng(int(spec["params"].get("seed", 0)))
    return np.sort(rng.choice(n, size=int(limit), replace=False))


def excluded_columns(names: list[str], prefixes: list[str]) -> list[int]:
    """Columns whose name starts with one of `prefixes` (a spec's `exclude_features`)."""
    return [i for i, name in enumerate(names) if name.startswith(tuple(prefixes))]


def type_count_matrix(type_codes: np.ndarray, classes: np.ndarray, n_types: int, n_classes: int) -> np.ndarray:
    """Department counts per request-type code (rows 0..n_types-1, plus a last all-zero row for no type)."""
    known = ~np.isnan(type_codes)
    pairs = type_codes[known].astype(np.int64) * n_classes + classes[known]
    counts = np.bincount(pairs, minlength=(n_types + 1) * n_classes)
    return counts.reshape(n_types + 1, n_classes).astype(np.float64)


def train_models(
    records: pd.DataFrame,
    specs: dict[str, dict[str, Any]],
    engine: fitting.Engine | None = None,
    test_start: pd.Timestamp | None = None,
) -> TrainResult:
    """Train and evaluate both models without touching MLflow (the library core of `eta311 train`)."""
    engine = engine or fitting.LocalEngine()
    stages: dict[str, float] = {}
    with timed(stages, "features"):
        prep = prepare(records, specs["time_to_close"], test_start)
    with timed(stages, "time_to_close"):
        time_bundle = fit_time_to_close(prep, specs["time_to_close"], engine)
    with timed(stages, "department"):
        department_bundle = fit_department_model(prep, specs["department"], engine)
    with timed(stages, "reference"):
        references = fit_references(prep, specs, department_bundle)
    with timed(stages, "evaluation"):
        features = (prep.features, prep.features_no_type)
        evaluation = evaluate_bundles(
            time_bundle, department_bundle, prep.records, prep.test, features, references=references
        )
    info = {
        "split": prep.split.to_dict(),
        "extracted_at": prep.extracted_at.isoformat(),
        "data_digest": data_digest(prep.records),
        "rows": int(len(prep.records)),
        "engine": engine.name,
    }
    for bundle in (time_bundle, department_bundle):
        bundle.metadata.update(info)
    bundles = {"time_to_close": time_bundle, "department": department_bundle}
    return TrainResult(None, {}, evaluation, stages, bundles, references, prep)


def fit_references(prep: Prepared, specs: dict[str, dict[str, Any]], department_bundle: ModelBundle) -> References:
    """The reference models (training.reference) on every row before the test: resolved requests for the
    time to close, requests with a department (in the product's classes) for routing."""
    before_test = prep.train | prep.calibration
    hours = hours_to_close(prep.records).to_numpy()
    rows = np.flatnonzero(before_test & np.isfinite(hours))
    rows = rows[capped(len(rows), specs["time_to_close"])]
    time_reference: ReferenceTimeToClose | None = None
    if len(rows) >= MIN_REFERENCE_ROWS:
        time_reference = ReferenceTimeToClose(tuple(specs["time_to_close"]["quantiles"]))
        features = prep.features
        sample = FeatureMatrix(features.values[rows], features.feature_names, features.categorical_features)
        time_reference.fit(sample, np.log1p(hours[rows]))
    else:
        log.warning("reference time to close not fitted: %d resolved requests before the test", len(rows))
    known = np.flatnonzero(before_test & prep.records["department"].notna().to_numpy())
    department_reference: ReferenceDepartment | None = None
    if len(known) >= MIN_REFERENCE_ROWS:
        codes = department_codes(prep.records["department"], department_bundle.metadata["classes"])
        department_reference = ReferenceDepartment().fit(prep.records.iloc[known], codes[known])
    else:
        log.warning("reference department not fitted: %d requests with a department before the test", len(known))
    return References(time_reference, department_reference)


def department_codes(departments: pd.Series, classes: list[str]) -> np.ndarray:
    """Class index of each row's department; departments outside `classes` count as the "other" class."""
    index = {name: i for i, name in enumerate(classes)}
    fallback = index.get(OTHER_DEPARTMENT, 0)
    return np.array([index.get(d, fallback) for d in departments.astype("str").fillna("").to_numpy()])


@contextmanager
def make_engine(name: str, scheduler: str | None = None) -> Iterator[fitting.Engine]:
    """The training engine for `--engine`: local LightGBM, or LightGBM on a Dask cluster."""
    if name == "local":
        yield fitting.LocalEngine()
        return
    from training.dask_engine import dask_engine

    with dask_engine(scheduler) as engine:
        yield engine
