"""Fitting the LightGBM models on a feature matrix: quantiles, horizons, conformal offsets, departments.

Pure functions of (matrix, labels, spec) -> boosters or numbers; the orchestration lives in train.py.
The `engine` argument picks plain `lightgbm.train` or the Dask trainer (training.dask_engine).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from models.bundle import horizon_key, quantile_key, softmax

log = logging.getLogger(__name__)

# Keys of a spec's params that are not LightGBM parameters.
_N_ESTIMATORS = "n_estimators"


def booster_params(spec_params: dict[str, Any], **extra: Any) -> tuple[dict[str, Any], int]:
    params = {k: v for k, v in spec_params.items() if k != _N_ESTIMATORS}
    params.update(extra)
    return params, int(spec_params.get(_N_ESTIMATORS, 200))


def train_booster(
    params: dict[str, Any],
    rounds: int,
    matrix: np.ndarray,
    label: np.ndarray,
    feature_names: Sequence[str],
    categorical: Sequence[int],
    weight: np.ndarray | None = None,
) -> lgb.Booster:
    """One booster on a numeric matrix; categorical columns hold integer codes (NaN = missing/unseen)."""
    dataset = lgb.Dataset(
        matrix,
        label=label,
        weight=weight,
        feature_name=list(feature_names),
        categorical_feature=list(categorical),
        free_raw_data=True,
        params={"verbose": -1},
    )
    return lgb.train(params, dataset, num_boost_round=rounds)


def monotone_constraints(feature_names: Sequence[str], increasing: Sequence[str], sign: int = 1) -> list[int]:
    """+sign for workload features whose growth must never shorten the estimate, 0 elsewhere."""
    return [sign if any(name.startswith(prefix) for prefix in increasing) else 0 for name in feature_names]


def pinball_objective(q: float):
    """Gradient and (constant) Hessian of the pinball loss at quantile `q`, as a LightGBM custom objective.

    LightGBM refuses monotone constraints with its built-in quantile objective (it re-fits leaf values after
    the split search). The same loss as a custom objective has no such step, so workload features can be
    constrained — "a bigger backlog never shortens the estimate" then holds by construction.
    """

    def objective(predictions: np.ndarray, dataset: lgb.Dataset) -> tuple[np.ndarray, np.ndarray]:
        label = dataset.get_label()
        gradient = np.where(label < predictions, 1.0 - q, -q)
        # A unit Hessian makes each round a small, bounded step (at most one learning rate times q or 1-q).
        # Measured on the real LA files (train 2017-18, test 2020): a q(1-q) Hessian, i.e. bigger steps,
        # overfit the training years (median AE 38.8 h vs 28.3 h, coverage 0.49 vs 0.81).
        return gradient, np.ones_like(gradient)

    return objective


def fit_quantiles(
    matrix: np.ndarray,
    log_hours: np.ndarray,
    feature_names: Sequence[str],
    categorical: Sequence[int],
    spec: dict[str, Any],
    monotone: list[int],
) -> tuple[dict[str, lgb.Booster], dict[str, float]]:
    """One LightGBM regressor per quantile in the spec, on log1p(hours) minus its empirical quantile (the
    base, returned and added back at prediction time).

    With the spec's `quantile_objective: quantile` (the default) each booster is grown in two stages:
    1. LightGBM's built-in quantile objective on every feature except the monotone (workload) ones and
       those the spec's `first_stage_exclude_features` names. It
       re-fits each leaf to the quantile of its residuals, which a custom objective cannot: measured on the
       real splits (benchmarks/bench_quality.py), that step is what a plain model had over ours.
    2. `monotone_rounds` more trees with the pinball loss as a custom objective, which LightGBM allows under
       monotone constraints, on every feature. The stage-1 trees never split on a workload feature, so "a
       bigger backlog never shortens the estimate" holds for the whole booster by construction.
    `quantile_objective: pinball` is the custom objective alone under the constraints (the earlier model).
    """
    boosters, bases = {}, {}
    plan = QuantilePlan.of(matrix, feature_names, spec, monotone)
    for q in spec["quantiles"]:
        base = float(np.quantile(log_hours, q))
        key = quantile_key(q)
        label = log_hours - base
        if plan.two_stage:
            params, rounds = booster_params(spec["params"], objective="quantile", alpha=float(q))
            booster = train_booster(params, rounds, plan.first, label, feature_names, categorical)
            if plan.monotone_rounds:
                booster = continue_monotone(
                    booster, plan.monotone_rounds, plan.full, label, feature_names, categorical, spec, q, monotone
                )
        else:
            params, rounds = booster_params(
                spec["params"],
                objective=pinball_objective(float(q)),
                monotone_constraints=monotone,
                monotone_constraints_method="advanced",
            )
            booster = train_booster(params, rounds, plan.full, label, feature_names, categorical)
        boosters[key] = booster
        bases[key] = base
        log.info("quantile %.2f fitted on %d rows", q, len(matrix))
    return boosters, bases


@dataclass
class QuantilePlan:
    """What each stage of the quantile boosters sees, shared by the local and Dask engines: `full` is the
    matrix without the spec's `exclude_features` (NaN: never split on), `first` the stage-1 matrix (also
    without the monotone workload columns and `first_stage_exclude_features`), and `monotone_rounds` the
    stage-2 trees (0 when the spec asks for none or no constrained feature remains). Each is one copy of the
    input at most, and `full` is only built when a stage uses it (at 350 k rows a copy is ~0.25 GB)."""

    two_stage: bool
    full: np.ndarray
    first: np.ndarray
    monotone_rounds: int

    @classmethod
    def of(
        cls, matrix: np.ndarray, feature_names: Sequence[str], spec: dict[str, Any], monotone: list[int]
    ) -> QuantilePlan:
        excluded = set(_excluded(feature_names, spec.get("exclude_features", [])))
        constrained = {i for i, m in enumerate(monotone) if m} - excluded
        two_stage = spec.get("quantile_objective", "quantile") == "quantile"
        rounds = int(spec.get("monotone_rounds", 0)) if (two_stage and constrained) else 0
        full = matrix
        if excluded and (not two_stage or rounds):
            full = _without(matrix, excluded)
        if not two_stage:
            return cls(False, full, full, 0)
        hidden = excluded | constrained | set(_excluded(feature_names, spec.get("first_stage_exclude_features", [])))
        return cls(True, full, _without(matrix, hidden), rounds)


def without_excluded(matrix: np.ndarray, feature_names: Sequence[str], spec: dict[str, Any]) -> np.ndarray:
    """`matrix` (a copy when needed) with the spec's `exclude_features` all missing: never split on."""
    return _without(matrix, set(_excluded(feature_names, spec.get("exclude_features", []))))


def _without(matrix: np.ndarray, columns: set[int]) -> np.ndarray:
    """A copy of `matrix` with `columns` all missing (the input is never modified)."""
    if not columns:
        return matrix
    out = matrix.copy()
    out[:, sorted(columns)] = np.nan
    return out


def continue_monotone(
    booster: lgb.Booster,
    rounds: int,
    matrix: np.ndarray,
    label: np.ndarray,
    feature_names: Sequence[str],
    categorical: Sequence[int],
    spec: dict[str, Any],
    q: float,
    monotone: list[int],
) -> lgb.Booster:
    """Stage 2 of `fit_quantiles`: pinball trees under the monotone constraints on top of `booster`."""
    params, _ = booster_params(
        spec["params"],
        objective=pinball_objective(q),
        monotone_constraints=monotone,
        monotone_constraints_method="advanced",
    )
    dataset = lgb.Dataset(
        matrix,
        label=label,
        feature_name=list(feature_names),
        categorical_feature=list(categorical),
        free_raw_data=True,
        params={"verbose": -1},
    )
    return lgb.train(params, dataset, num_boost_round=rounds, init_model=booster, keep_training_booster=False)


def _excluded(feature_names: Sequence[str], prefixes: Sequence[str]) -> list[int]:
    """Columns whose name starts with one of `prefixes` (a spec's `exclude_features`)."""
    return [i for i, name in enumerate(feature_names) if prefixes and name.startswith(tuple(prefixes))]


def fit_horizons(
    matrix: np.ndarray,
    labels: dict[float, np.ndarray],
    feature_names: Sequence[str],
    categorical: Sequence[int],
    spec: dict[str, Any],
    monotone: list[int],
) -> dict[str, lgb.Booster]:
    """Binary classifiers for P(closed within h days), each on the rows where that outcome is known."""
    boosters = {}
    matrix = without_excluded(matrix, feature_names, spec)
    for days, label in labels.items():
        known = ~np.isnan(label)
        params, rounds = booster_params(
            spec["horizon_params"],
            objective="binary",
            monotone_constraints=[-m for m in monotone],
            monotone_constraints_method="advanced",
        )
        y = label[known]
        if y.min() == y.max():
            # Everything known closed (or none did): a constant model, expressed as a 1-round booster.
            params = params | {"boost_from_average": True}
            rounds = 1
        boosters[horizon_key(days)] = train_booster(params, rounds, matrix[known], y, feature_names, categorical)
        log.info("horizon %gd fitted on %d rows (positive share %.3f)", days, int(known.sum()), float(y.mean()))
    return boosters


def conformal_offsets(predicted_log: np.ndarray, actual_log: np.ndarray, coverage: float) -> list[float]:
    """Asymmetric conformalised quantile regression on a calibration slice (log scale).

    Lower and upper bounds are each shifted by the finite-sample (1 - alpha/2) quantile of their own
    conformity scores, so the [P10, P90] range covers `coverage` of exchangeable later requests. The
    median gets no offset. Returns one offset per quantile column (lowest, ..., highest).
    """
    n = len(actual_log)
    if n < 20:
        log.warning("calibration slice has %d rows; conformal offsets left at 0", n)
        return [0.0] * predicted_log.shape[1]
    alpha = 1.0 - coverage
    level = min(1.0, np.ceil((n + 1) * (1 - alpha / 2)) / n)
    lower_scores = predicted_log[:, 0] - actual_log
    upper_scores = actual_log - predicted_log[:, -1]
    lower = float(np.quantile(lower_scores, level, method="higher"))
    upper = float(np.quantile(upper_scores, level, method="higher"))
    offsets = [0.0] * predicted_log.shape[1]
    offsets[0] = -lower
    offsets[-1] = upper
    return offsets


def fit_department(
    matrix: np.ndarray,
    classes: np.ndarray,
    n_classes: int,
    feature_names: Sequence[str],
    categorical: Sequence[int],
    spec: dict[str, Any],
) -> lgb.Booster:
    """LightGBM multiclass over department codes 0..n_classes-1."""
    params, rounds = booster_params(spec["params"], objective="multiclass", num_class=n_classes)
    return train_booster(params, rounds, matrix, classes.astype(float), feature_names, categorical)


def fit_temperature(logits: np.ndarray, classes: np.ndarray) -> float:
    """One temperature minimising log loss on the calibration slice (golden-section search on log T)."""
    if len(classes) < 20:
        return 1.0

    def loss(log_t: float) -> float:
        probabilities = softmax(logits / np.exp(log_t))
        return float(-np.mean(np.log(np.clip(probabilities[np.arange(len(classes)), classes], 1e-12, 1.0))))

    lo, hi = np.log(0.25), np.log(8.0)
    golden = (np.sqrt(5) - 1) / 2
    for _ in range(40):
        a = hi - golden * (hi - lo)
        b = lo + golden * (hi - lo)
        if loss(a) < loss(b):
            hi = b
        else:
            lo = a
    return float(np.exp((lo + hi) / 2))


def fit_count_strength(blend: Callable[[float], np.ndarray], classes: np.ndarray) -> float:
    """The strength m of the model prior against a type's department counts, by log loss on the calibration
    slice over a log grid (m large = the model alone; small = the type's history alone)."""
    if len(classes) < 20:
        return 10.0
    grid = np.logspace(-1, 5, 25)

    def loss(m: float) -> float:
        probabilities = blend(m)
        return float(-np.mean(np.log(np.clip(probabilities[np.arange(len(classes)), classes], 1e-12, 1.0))))

    losses = [loss(float(m)) for m in grid]
    return float(grid[int(np.argmin(losses))])


class Engine:
    """Where boosters are trained. The local engine calls LightGBM directly; the Dask engine
    (training.dask_engine) trains the same models with `lightgbm.dask` and hands back local boosters."""

    name = "base"

    def fit_quantiles(self, *args: Any, **kwargs: Any) -> tuple[dict[str, lgb.Booster], dict[str, float]]:
        return fit_quantiles(*args, **kwargs)

    def fit_horizons(self, *args: Any, **kwargs: Any) -> dict[str, lgb.Booster]:
        return fit_horizons(*args, **kwargs)

    def fit_department(self, *args: Any, **kwargs: Any) -> lgb.Booster:
        return fit_department(*args, **kwargs)


class LocalEngine(Engine):
    name = "local"
