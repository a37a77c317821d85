"""`--engine dask`: the same LightGBM models trained data-parallel on a Dask cluster with `lightgbm.dask`.

What runs where:

* The feature pipeline, labels, the temporal split, conformal offsets, temperature scaling and evaluation run
  in the client process exactly as with `--engine local` (pandas/numpy; the per-request feature work is
  point-in-time and sequential, and on the data sizes this project sees it is a minor share of the time).
* Only boosting is distributed: the feature matrix of each model is cut by rows into one chunk per Dask worker,
  each chunk is scattered to its own worker, and `lightgbm.dask` runs LightGBM's data-parallel tree learner
  there (histograms are all-reduced between workers each round). The fitted model comes back as a plain
  `lgb.Booster` (`.to_local().booster_`), so bundles are saved, logged and served exactly like local ones.

Workers of an external cluster (`--dask-scheduler`) need this package installed: the pinball objective is
pickled by reference to `training.dask_engine`.

Rows are dealt to chunks stratified by label (sorted, then round-robin) rather than in time order, so every
worker sees the whole period and every class: LightGBM builds its feature bins from each worker's own rows,
and the Dask classifiers encode labels per worker, which silently breaks when a worker misses a class.

Differences from the local engine (the tolerance test in tests/integration/test_dask_engine.py measures them):

* Data-parallel histograms, bagging and feature bins drawn per worker, and one thread per worker: the trees are
  not bit-identical to local ones, only statistically equivalent.
* The quantile models follow the same plan as local training (`fitting.QuantilePlan`: the built-in quantile
  objective, then any monotone pinball rounds; the same bases and excluded features); the monotone rounds,
  when the spec asks for them, continue the distributed booster in the client process. `lightgbm.dask`
  accepts a callable objective, and each worker evaluates it on its own rows, which is all data-parallel
  boosting needs. LightGBM enforces monotone constraints only with its "basic" method when distributed
  (local training uses "advanced"), so splits next to constrained features are more conservative.
* A horizon whose known outcomes are all one class, or a department class with fewer rows than workers, is
  fitted locally: there is nothing to distribute in a constant model, and the Dask classifier cannot encode it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np

from models.bundle import horizon_key, quantile_key
from training import fitting

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

# The local cluster started when no scheduler is given: two single-threaded worker processes fit this
# project's two-core machines. Processes rather than threads: LightGBM's socket listener prints straight to the
# C stdout of its process, which only a worker process can send elsewhere (see `_quiet_worker`); processes also
# keep the two workers' Python pinball gradients off one GIL and exercise the pickling a real cluster needs.
# The price is a few seconds of start-up (measured on the 2-core box: threads ~0.7 s, processes ~3-9 s).
LOCAL_WORKERS = 2
LOCAL_THREADS_PER_WORKER = 1
LOCAL_PROCESSES = True

# LightGBM can only enforce monotone constraints with the "basic" method when learning is distributed (a worker
# lacks the other workers' histograms to re-check splits); it switches "advanced" to "basic" itself, with a
# warning. Said here explicitly: still monotone by construction, only more conservative splits near constraints.
DISTRIBUTED_MONOTONE_METHOD = "basic"

# LightGBM parameters the Dask trainer sets itself (it would warn and drop them).
_DROPPED = ("num_threads", "n_jobs", "nthread", "num_thread", "num_machines")


class _LightGBMToLogging:
    """LightGBM's messages (its own and the native library's) as records of this module's logger.

    `lightgbm.dask` reports its network set-up with print() and warns about parameters it drops; on stdout
    that would corrupt `eta311 train --json`. Info goes to debug; the dropped n_jobs/num_threads are expected.
    """

    def info(self, msg: str) -> None:
        log.debug("lightgbm: %s", msg.strip())

    def warning(self, msg: str) -> None:
        if "will be ignored" in msg:  # n_jobs/num_threads: the Dask trainer sets threads per worker itself
            log.debug("lightgbm: %s", msg)
        else:
            log.warning("lightgbm: %s", msg)


@contextmanager
def _lightgbm_messages_to_logging() -> Iterator[None]:
    """Route LightGBM's messages to logging for the duration, then restore whatever logger was registered."""
    basic = lgb.basic
    previous = (
        getattr(basic, "_LOGGER", None),
        getattr(basic, "_INFO_METHOD_NAME", "info"),
        getattr(basic, "_WARNING_METHOD_NAME", "warning"),
    )
    lgb.register_logger(_LightGBMToLogging())
    try:
        yield
    finally:
        if previous[0] is not None:
            lgb.register_logger(*previous)


class _Labels:
    """Just enough of an `lgb.Dataset` (its label) to call the local engine's pinball objective unchanged."""

    def __init__(self, label: np.ndarray) -> None:
        self._label = label

    def get_label(self) -> np.ndarray:
        return self._label


class SklearnPinball:
    """`fitting.pinball_objective(q)` in the scikit-learn signature `(y_true, y_pred)` used by `lightgbm.dask`.

    A class, not a closure, so it pickles to process-based workers; it delegates to the local objective so the
    gradient and Hessian stay defined in one place.
    """

    def __init__(self, q: float) -> None:
        self.q = q

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return fitting.pinball_objective(self.q)(y_pred, _Labels(y_true))  # type: ignore[arg-type]


def _sklearn_params(spec_params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Spec params (n_estimators included) as keyword arguments of a Dask LightGBM estimator."""
    params, rounds = fitting.booster_params(spec_params, **extra)
    params = {k: v for k, v in params.items() if k not in _DROPPED}
    return params | {"n_estimators": rounds}


def _usable_categorical(matrix: np.ndarray, categorical: Sequence[int]) -> list[int]:
    """The categorical columns that hold a value somewhere. Distributed LightGBM (4.6) kills a worker on a
    categorical column that is all missing (the excluded ones are), so those go in as numeric: all missing
    either way, never split on, and the booster predicts the same."""
    return [c for c in categorical if not np.isnan(matrix[:, c]).all()]


class DaskEngine(fitting.Engine):
    """Trains the quantile, horizon and department boosters with `lightgbm.dask` on `client`'s workers."""

    name = "dask"

    def __init__(self, client: Client) -> None:
        self.client = client

    # -- data placement -------------------------------------------------------------------------------------

    def _workers(self) -> list[str]:
        workers = sorted(self.client.ncores())  # every worker (scheduler_info() lists only the first few)
        if not workers:
            raise RuntimeError("the Dask cluster has no workers")
        return workers

    def _placement(self, label: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """(worker, row indices) per chunk: one chunk per worker, stratified by label.

        Sorting by label (stable, so time order is kept within a label) and dealing rows round-robin gives
        every chunk a near-equal share of each label value and of each stretch of time: LightGBM bins features
        from each worker's own rows, and the Dask classifiers encode labels per worker.
        """
        workers = self._workers()[: max(1, len(label))]
        order = np.argsort(label, kind="stable")
        return [(worker, np.sort(order[i :: len(workers)])) for i, worker in enumerate(workers)]

    def _to_dask(self, array: np.ndarray, placement: list[tuple[str, np.ndarray]]) -> Any:
        """`array`'s rows scattered chunk by chunk to their workers, as one row-chunked dask array.

        `hash=False` gives every scatter a fresh key: with content-hashed keys, re-scattering the same matrix
        for the next model raced the release of the previous one and the scheduler dropped the data.
        """
        import dask
        import dask.array as da

        parts = []
        for worker, rows in placement:
            [future] = self.client.scatter([array[rows]], workers=[worker], hash=False)
            shape = (len(rows), *array.shape[1:])
            parts.append(da.from_delayed(dask.delayed(future), shape=shape, dtype=array.dtype))
        return da.concatenate(parts, axis=0)

    def _fit(
        self,
        estimator_class: type,
        params: dict[str, Any],
        x: Any,
        y: Any,
        feature_names: Sequence[str],
        categorical: Sequence[int],
    ) -> lgb.Booster:
        """Fit one Dask estimator on distributed (x, y) and hand back its plain booster."""
        estimator = estimator_class(client=self.client, **params)
        estimator.fit(x, y, feature_name=list(feature_names), categorical_feature=list(categorical))
        return estimator.to_local().booster_

    # -- the three model families ---------------------------------------------------------------------------

    def fit_quantiles(
        self,
        matrix: np.ndarray,
        log_hours: np.ndarray,
        feature_names: Sequence[str],
        categorical: Sequence[int],
        spec: dict[str, Any],
        monotone: list[int],
    ) -> tuple[dict[str, lgb.Booster], dict[str, float]]:
        """Quantile regressors on log1p(hours) minus the empirical quantile (the base), in the stages of
        `fitting.fit_quantiles` (`fitting.QuantilePlan`): LightGBM's built-in quantile objective on the
        workers, then the spec's monotone pinball rounds (if any) continuing that booster in this process."""
        from lightgbm.dask import DaskLGBMRegressor

        plan = fitting.QuantilePlan.of(matrix, feature_names, spec, monotone)
        # The labels of all quantiles differ by a constant, so one placement and one scattered matrix serve all.
        placement = self._placement(log_hours)
        distributed = plan.first if plan.two_stage else plan.full
        x = self._to_dask(distributed, placement)
        distributed_categorical = _usable_categorical(distributed, categorical)
        boosters, bases = {}, {}
        for q in spec["quantiles"]:
            base = float(np.quantile(log_hours, q))
            key = quantile_key(q)
            y = self._to_dask(log_hours - base, placement)
            pinball = _sklearn_params(
                spec["params"],
                objective=SklearnPinball(float(q)),
                monotone_constraints=monotone,
                monotone_constraints_method=DISTRIBUTED_MONOTONE_METHOD,
            )
            if not plan.two_stage:
                boosters[key] = self._fit(DaskLGBMRegressor, pinball, x, y, feature_names, distributed_categorical)
            else:
                params = _sklearn_params(spec["params"], objective="quantile", alpha=float(q))
                booster = self._fit(DaskLGBMRegressor, params, x, y, feature_names, distributed_categorical)
                if plan.monotone_rounds:
                    # In this process: lightgbm.dask does not support continuing a booster (init_model), and
                    # these few constrained trees are a small share of the work.
                    booster = fitting.continue_monotone(
                        booster,
                        plan.monotone_rounds,
                        plan.full,
                        log_hours - base,
                        feature_names,
                        distributed_categorical,
                        spec,
                        float(q),
                        monotone,
                    )
                boosters[key] = booster
            bases[key] = base
            log.info("quantile %.2f fitted on %d rows (dask)", q, len(matrix))
        return boosters, bases

    def fit_horizons(
        self,
        matrix: np.ndarray,
        labels: dict[float, np.ndarray],
        feature_names: Sequence[str],
        categorical: Sequence[int],
        spec: dict[str, Any],
        monotone: list[int],
    ) -> dict[str, lgb.Booster]:
        """Binary classifiers for P(closed within h days) on the rows where that outcome is known."""
        from lightgbm.dask import DaskLGBMClassifier

        n_workers = len(self._workers())
        matrix = fitting.without_excluded(matrix, feature_names, spec)
        boosters = {}
        for days, label in labels.items():
            known = ~np.isnan(label)
            y = label[known]
            counts = np.bincount(y.astype(int), minlength=2)
            if counts.min() < n_workers:
                log.info("horizon %gd: a class has fewer rows than workers; fitted locally", days)
                boosters |= fitting.fit_horizons(matrix, {days: label}, feature_names, categorical, spec, monotone)
                continue
            params = _sklearn_params(
                spec["horizon_params"],
                objective="binary",
                monotone_constraints=[-m for m in monotone],
                monotone_constraints_method=DISTRIBUTED_MONOTONE_METHOD,
            )
            placement = self._placement(y)
            x, y_dask = self._to_dask(matrix[known], placement), self._to_dask(y.astype(int), placement)
            usable = _usable_categorical(matrix, categorical)
            boosters[horizon_key(days)] = self._fit(DaskLGBMClassifier, params, x, y_dask, feature_names, usable)
            log.info("horizon %gd fitted on %d rows (dask, positive share %.3f)", days, len(y), float(y.mean()))
        return boosters

    def fit_department(
        self,
        matrix: np.ndarray,
        classes: np.ndarray,
        n_classes: int,
        feature_names: Sequence[str],
        categorical: Sequence[int],
        spec: dict[str, Any],
    ) -> lgb.Booster:
        """Multiclass over department codes 0..n_classes-1 (every class must reach every worker)."""
        from lightgbm.dask import DaskLGBMClassifier

        codes = classes.astype(int)
        counts = np.bincount(codes, minlength=n_classes)
        if counts.min() < len(self._workers()):
            log.info("department: a class has fewer rows than workers; fitted locally")
            return fitting.fit_department(matrix, classes, n_classes, feature_names, categorical, spec)
        params = _sklearn_params(spec["params"], objective="multiclass")
        placement = self._placement(codes)
        x, y = self._to_dask(matrix, placement), self._to_dask(codes, placement)
        booster = self._fit(DaskLGBMClassifier, params, x, y, feature_names, _usable_categorical(matrix, categorical))
        log.info("department fitted on %d rows, %d classes (dask)", len(matrix), n_classes)
        return booster


def _quiet_worker() -> None:
    """Run in each local worker process: C-level stdout to /dev/null, LightGBM's Python messages to logging.

    LightGBM's network set-up ("Listening...", "Connected to rank 1", from a socket thread that ignores
    `verbose`) prints straight to the worker's C stdout, which is this process's stdout: it would corrupt
    `eta311 train --json` and adds ~20 lines per run. Nothing else writes there (worker logs and errors go
    through logging to stderr, and failures come back to the client as exceptions), so it is dropped.
    """
    import os
    import sys

    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    lgb.register_logger(_LightGBMToLogging())


@contextmanager
def _quiet_distributed_logs() -> Iterator[None]:
    """Keep the scheduler's per-connection INFO lines (this process) out of the CLI's log unless -v asked for debug.

    `silence_logs` only quiets the workers; the scheduler of a LocalCluster runs here and logs through the root
    handler the CLI configured.
    """
    logger = logging.getLogger("distributed")
    previous = logger.level
    if not log.isEnabledFor(logging.DEBUG):
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(previous)


@contextmanager
def dask_engine(scheduler: str | None = None) -> Iterator[DaskEngine]:
    """A `DaskEngine` on the cluster at `scheduler`, or on a local cluster started (and stopped) here."""
    from distributed import Client, LocalCluster

    with _lightgbm_messages_to_logging(), _quiet_distributed_logs():
        if scheduler:
            log.info("connecting to the Dask scheduler at %s", scheduler)
            with Client(scheduler) as client:
                yield DaskEngine(client)
            return
        with (
            LocalCluster(
                n_workers=LOCAL_WORKERS,
                threads_per_worker=LOCAL_THREADS_PER_WORKER,
                processes=LOCAL_PROCESSES,
                dashboard_address=None,
                # The scheduler serves health routes over HTTP even without a dashboard, on :8787 by default;
                # a free loopback port keeps concurrent runs (tests, a second train) from colliding there.
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                silence_logs=logging.WARNING,
            ) as cluster,
            Client(cluster) as client,
        ):
            if LOCAL_PROCESSES:
                client.run(_quiet_worker)
            log.info(
                "started a local Dask cluster: %d workers x %d thread(s), %s",
                LOCAL_WORKERS,
                LOCAL_THREADS_PER_WORKER,
                "processes" if LOCAL_PROCESSES else "threads in this process",
            )
            yield DaskEngine(client)
