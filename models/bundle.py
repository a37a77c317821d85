"""Model bundles: the fitted feature pipeline, native LightGBM boosters and calibration, as plain files.

A bundle is a folder with `bundle.json` (kind, spec, pipeline state, calibration, metadata) and one
native LightGBM text file per booster — no pickles, so loading one runs no code from the file. Training
writes bundles and logs them to MLflow; the service and `evaluate` load them. Prediction here works on
the numeric feature matrix, so batch (training, evaluation) and one-row (serving) calls share it.
"""

from __future__ import annotations

import ctypes
import json
import logging
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from models.files import BUNDLE_FILE, SNAPSHOT_FILE

log = logging.getLogger(__name__)
BUNDLE_FORMAT_VERSION = 1
# One row walks faster through LightGBM's single-row predictor and compact node arrays than through
# megabytes of compiled code that is cold in the instruction cache when eight boosters take turns
# (measured, one request: 0.45 ms with LightGBM, 0.50 ms compiled); from two rows on compiled code wins
# (2 rows 0.69 against 0.82 ms, 64 rows 4.4 against 10.5 ms). Both give the same numbers.
COMPILED_MIN_ROWS = 2
FAST_PREDICT_PROBE_ROWS = 64  # rows on which the fast predict path is proven equal to Booster.predict


@dataclass
class ModelBundle:
    """Everything needed to turn a feature matrix into predictions for one model kind."""

    kind: str  # "time_to_close" or "department"
    spec: dict[str, Any]
    pipeline: dict[str, Any]  # FeaturePipeline.to_dict()
    boosters: dict[str, lgb.Booster]
    calibration: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    # Derived lookups built on first use (never saved): prediction must not rebuild them per request.
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        (folder / "boosters").mkdir(parents=True, exist_ok=True)
        names = sorted(self.boosters)
        for name in names:
            self.boosters[name].save_model(str(folder / "boosters" / f"{name}.txt"))
        payload = {
            "format_version": BUNDLE_FORMAT_VERSION,
            "kind": self.kind,
            "spec": self.spec,
            "pipeline": self.pipeline,
            "boosters": names,
            "calibration": self.calibration,
            "metadata": self.metadata,
        }
        (folder / BUNDLE_FILE).write_text(json.dumps(payload, indent=1, sort_keys=True, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ModelBundle:
        folder = Path(folder)
        path = folder / BUNDLE_FILE
        if not path.is_file():
            # MLflow pyfunc layout keeps the bundle under artifacts/bundle.
            nested = list(folder.rglob(BUNDLE_FILE))
            if not nested:
                raise FileNotFoundError(f"{folder}: no {BUNDLE_FILE} found")
            folder, path = nested[0].parent, nested[0]
        payload = json.loads(path.read_text())
        if payload.get("format_version") != BUNDLE_FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported bundle format {payload.get('format_version')!r}")
        boosters = {}
        for name in payload["boosters"]:
            # Threads are not set here: LightGBM ignores `params` for a model file. Prediction runs on OpenMP's
            # default, which the service pins with OMP_NUM_THREADS=1 (serving/serve.py).
            booster = lgb.Booster(model_file=str(folder / "boosters" / f"{name}.txt"))
            boosters[name] = booster
        return cls(
            kind=payload["kind"],
            spec=payload["spec"],
            pipeline=payload["pipeline"],
            boosters=boosters,
            calibration=payload.get("calibration", {}),
            metadata=payload.get("metadata", {}),
        )


class _SingleRowConfig:
    """One thread's LightGBM single-row predictor of one booster (`LGBM_BoosterPredictForMatSingleRowFastInit`).

    LightGBM keeps the predictor inside this handle, so one handle must not serve two threads at once
    (lightgbm-org/LightGBM#6024): FastPredict keeps one per thread. Freed with the object; it holds the
    booster so the booster outlives it.
    """

    def __init__(self, booster: lgb.Booster, basic: Any, predict_type: int, num_iteration: int, ncol: int) -> None:
        self.ncol = ncol
        self.num_iteration = num_iteration
        self.handle = ctypes.c_void_p()
        basic._safe_call(
            basic._LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(predict_type),
                ctypes.c_int(0),
                ctypes.c_int(num_iteration),
                ctypes.c_int(basic._C_API_DTYPE_FLOAT64),
                ctypes.c_int32(ncol),
                basic._c_str(""),
                ctypes.byref(self.handle),
            )
        )
        weakref.finalize(self, _free_fast_config, basic._LIB, self.handle.value, booster)


def _free_fast_config(lib: Any, handle: int, booster: lgb.Booster) -> None:
    lib.LGBM_FastConfigFree(ctypes.c_void_p(handle))


class FastPredict:
    """`booster.predict(matrix, raw_score=...)` for a float64 matrix, without its per-call set-up.

    `Booster.predict` builds an `_InnerPredictor` on every call (three extra C calls, a deepcopy of the
    keyword arguments, a parameter string), and LightGBM's C side then builds a `Predictor` for the call;
    for one row that set-up is a large part of the cost, and a request runs eight boosters. Here a batch
    goes to the same C function as `Booster.predict` (`LGBM_BoosterPredictForMat`) with the same arguments,
    and a single row to LightGBM's single-row API with a predictor set up once per thread, the same tree
    walk. `check` proves both bit for bit against `Booster.predict` when the bundle is first used; any
    difference, or a change in LightGBM's private API, falls back to `Booster.predict` for good.
    """

    def __init__(self, booster: lgb.Booster, raw_score: bool) -> None:
        self.booster = booster
        self.raw_score = raw_score
        self.fast = False
        self._local = threading.local()
        try:
            from lightgbm import basic

            self._basic = basic
            self._lib, self._safe_call = basic._LIB, basic._safe_call
            self._type = basic._C_API_PREDICT_RAW_SCORE if raw_score else basic._C_API_PREDICT_NORMAL
            self._row_major = basic._C_API_IS_ROW_MAJOR
            self._float64 = basic._C_API_DTYPE_FLOAT64
            self._params = basic._c_str("")  # Booster.predict with no keyword arguments passes ""
            self._outputs = booster.num_model_per_iteration()
        except (AttributeError, ImportError):
            return
        self.fast = True

    def check(self, probe: np.ndarray) -> bool:
        """Bit-for-bit agreement with `Booster.predict` on `probe` (rows one by one and all at once)."""
        if self.fast:
            probe = np.ascontiguousarray(probe, dtype=np.float64)
            try:
                singles = [probe[i : i + 1] for i in range(min(len(probe), 16))]
                # The batch path (LGBM_BoosterPredictForMat) is only taken for 2+ rows: prove it on 2+ rows
                # even when the first matrix is a single request (the service's warm-up).
                batch = probe if len(probe) > 1 else np.vstack([probe, probe])
                agree = all(
                    np.array_equal(self._fast(rows), self.booster.predict(rows, raw_score=self.raw_score))
                    for rows in [*singles, batch]
                )
            except Exception:  # any failure of the private path means: use the public one
                log.warning("fast LightGBM predict path refused; using Booster.predict", exc_info=True)
                agree = False
            self.fast = agree
        return self.fast

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        if (
            self.fast
            and matrix.dtype == np.float64
            and matrix.ndim == 2
            and matrix.flags["C_CONTIGUOUS"]
            and 0 < len(matrix) < 2**31
        ):
            return self._fast(matrix)
        return self.booster.predict(matrix, raw_score=self.raw_score)

    def _fast(self, matrix: np.ndarray) -> np.ndarray:
        nrow, ncol = matrix.shape
        # Booster.predict(num_iteration=None) from iteration 0 uses best_iteration (-1 or 0: all trees).
        num_iteration = self.booster.best_iteration
        preds = np.empty(nrow * self._outputs, dtype=np.float64)
        out_num = ctypes.c_int64(0)
        out = preds.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        if nrow == 1:
            config = getattr(self._local, "config", None)
            if config is None or config.ncol != ncol or config.num_iteration != num_iteration:
                config = self._local.config = _SingleRowConfig(
                    self.booster, self._basic, self._type, num_iteration, ncol
                )
            self._safe_call(
                self._lib.LGBM_BoosterPredictForMatSingleRowFast(
                    config.handle, matrix.ctypes.data_as(ctypes.c_void_p), ctypes.byref(out_num), out
                )
            )
        else:
            self._safe_call(
                self._lib.LGBM_BoosterPredictForMat(
                    self.booster._handle,
                    matrix.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
                    ctypes.c_int(self._float64),
                    ctypes.c_int32(nrow),
                    ctypes.c_int32(ncol),
                    ctypes.c_int(self._row_major),
                    ctypes.c_int(self._type),
                    ctypes.c_int(0),
                    ctypes.c_int(num_iteration),
                    self._params,
                    ctypes.byref(out_num),
                    out,
                )
            )
        if out_num.value != preds.size:
            raise ValueError(f"LightGBM returned {out_num.value} predictions, expected {preds.size}")
        return preds.reshape(nrow, -1) if self._outputs > 1 else preds


def predictor(bundle: ModelBundle, name: str, raw_score: bool = False, probe: np.ndarray | None = None) -> FastPredict:
    """The cached FastPredict of one booster; checked against `Booster.predict` on the first matrix it sees."""
    key = ("predict", name, raw_score)
    cached = bundle.cache.get(key)
    if cached is None:
        cached = FastPredict(bundle.boosters[name], raw_score)
        if probe is None or len(probe) == 0:
            cached.fast = False  # nothing to prove it on: the public path now, a check on a later call
            return cached
        cached.check(probe[:FAST_PREDICT_PROBE_ROWS])
        bundle.cache[key] = cached
    return cached


def raw_scores(bundle: ModelBundle, name: str, matrix: np.ndarray) -> np.ndarray:
    """Raw scores of one booster: its compiled code when `models.compiled.attach_compiled` gave the bundle
    one (proven equal to LightGBM bit for bit) and the matrix has at least COMPILED_MIN_ROWS rows, else
    LightGBM. Links (sigmoid, softmax) are applied by the callers in numpy, the same code for both engines,
    so the engine never changes a number."""
    compiled = bundle.cache.get("compiled")
    if compiled and len(matrix) >= COMPILED_MIN_ROWS:
        return compiled[name](matrix)
    return predictor(bundle, name, raw_score=True, probe=matrix)(matrix)


def link_scale(bundle: ModelBundle, name: str) -> float:
    """The `sigmoid` parameter of a binary booster's objective (`binary sigmoid:1`), read once per bundle."""
    key = ("sigmoid", name)
    scale = bundle.cache.get(key)
    if scale is None:
        objective = str(bundle.boosters[name].dump_model(num_iteration=1).get("objective", ""))
        parts = dict(part.split(":", 1) for part in objective.split()[1:] if ":" in part)
        scale = bundle.cache[key] = float(parts.get("sigmoid", 1.0))
    return scale


def sigmoid(raw: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """LightGBM's binary link, 1 / (1 + exp(-scale * raw))."""
    return 1.0 / (1.0 + np.exp(-scale * raw))


def quantile_key(q: float) -> str:
    return f"q{round(q * 100):02d}"


def horizon_key(days: float) -> str:
    return f"h{days:g}d"


def predict_time_to_close(bundle: ModelBundle, matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Hours to close at P10/P50/P90 (calibrated, ordered) and P(closed within h) for each horizon.

    Quantiles are learned on log1p(hours) minus a per-quantile base (added back here); the conformal
    offsets (log scale) widen or narrow the outer quantiles; sorting the three per row makes
    P10 <= P50 <= P90 hold even where the raw models cross.
    Horizon probabilities are made non-decreasing in h with a running maximum.
    """
    out = predict_quantile_hours(bundle, matrix)
    horizons = bundle.spec["horizons_days"]
    probabilities = np.column_stack(
        [sigmoid(raw_scores(bundle, horizon_key(h), matrix), link_scale(bundle, horizon_key(h))) for h in horizons]
    )
    probabilities = np.maximum.accumulate(np.clip(probabilities, 0.0, 1.0), axis=1)
    out.update({horizon_key(h): probabilities[:, i] for i, h in enumerate(horizons)})
    return out


def predict_quantile_hours(bundle: ModelBundle, matrix: np.ndarray) -> dict[str, np.ndarray]:
    """The quantiles of `predict_time_to_close` alone (base added, offsets applied, sorted per row): what a
    bundle without horizon boosters (training's probe for the conformal offsets) can answer."""
    quantiles = bundle.spec["quantiles"]
    bases = bundle.calibration.get("log_base", {})
    raw = np.column_stack(
        [raw_scores(bundle, quantile_key(q), matrix) + bases.get(quantile_key(q), 0.0) for q in quantiles]
    )
    offsets = bundle.calibration.get("log_offsets", [0.0] * len(quantiles))
    adjusted = np.sort(raw + np.asarray(offsets, dtype=float), axis=1)
    hours = np.expm1(np.clip(adjusted, 0.0, None))
    return {quantile_key(q): hours[:, i] for i, q in enumerate(quantiles)}


def predict_department(bundle: ModelBundle, matrix: np.ndarray) -> np.ndarray:
    """Calibrated class probabilities (rows sum to 1), columns in `bundle.metadata['classes']` order.

    The booster's temperature-scaled probabilities are the prior; where the row's request type was seen in
    training, that type's department counts are the evidence: p = (counts + m * p_model) / (n_type + m),
    with the strength m fitted on the calibration slice. A type seen thousands of times is routed as its
    history says (the majority baseline, which the booster alone trails slightly on a few rows), a rare type
    leans on the booster, and an unseen or missing type gets the booster alone (text, location, source).

    With a text blend (a pipeline with the text router, ``features.routing``), the prior is not the booster
    alone but softmax(a * log p_booster + b * text logits), (a, b) fitted on the calibration slice by log
    loss, one pair for rows the typed text model scored and one for the rest.
    """
    raw = raw_scores(bundle, "department", matrix).reshape(len(matrix), -1)
    blend = bundle.calibration.get("text_blend")
    if blend:
        columns, typed_column = text_blend_columns(bundle)
        probabilities = softmax(blend_logits(raw, matrix, columns, typed_column, blend))
    else:
        probabilities = softmax(raw / float(bundle.calibration.get("temperature", 1.0)))
    if not bundle.calibration.get("type_counts"):
        return probabilities
    column, table = type_count_table(bundle)
    return type_count_posterior(probabilities, matrix[:, column], table, bundle.calibration["type_count_strength"])


def text_blend_columns(bundle: ModelBundle) -> tuple[np.ndarray, int]:
    """(matrix column of each class's text logit, -1 where the router has no such class; the typed-flag
    column), from the blend's column names, built once per bundle and cached."""
    cached = bundle.cache.get("text_blend_columns")
    if cached is None:
        names = {name: i for i, name in enumerate(bundle.pipeline["feature_names_"])}
        blend = bundle.calibration["text_blend"]
        columns = np.array([names.get(name, -1) if name else -1 for name in blend["columns"]], dtype=np.int64)
        cached = bundle.cache["text_blend_columns"] = (columns, names[blend["typed_column"]])
    return cached


def blend_logits(
    raw: np.ndarray, matrix: np.ndarray, columns: np.ndarray, typed_column: int, blend: dict[str, Any]
) -> np.ndarray:
    """a * log_softmax(raw) + b * text logits per row, (a, b) = blend["typed"] or blend["plain"] by the row's
    typed flag (`blend_inputs` says what each term holds)."""
    log_p, text, typed = blend_inputs(raw, matrix, columns, typed_column)
    weights = np.where(typed[:, None], np.asarray(blend["typed"], dtype=float), np.asarray(blend["plain"], dtype=float))
    return weights[:, :1] * log_p + weights[:, 1:2] * text


def blend_inputs(
    raw: np.ndarray, matrix: np.ndarray, columns: np.ndarray, typed_column: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the booster's log-probabilities, the text logits in the booster's class order, the typed flag) per
    row: the terms the blend weighs, shared by prediction and by the fit of its weights
    (training.train.fit_text_blend). A class the text model lacks gets the row's lowest text logit; a row
    without text logits (NaN) gets 0 for them, so the booster alone speaks."""
    shifted = raw - raw.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    text = matrix[:, np.maximum(columns, 0)]
    if (columns < 0).any():
        text[:, columns < 0] = text.min(axis=1, keepdims=True)
    return log_p, np.nan_to_num(text, nan=0.0), matrix[:, typed_column] == 1.0


def type_count_table(bundle: ModelBundle) -> tuple[int, np.ndarray]:
    """(request_type column, dense counts per type code x class), built once per bundle and cached."""
    cached = bundle.cache.get("type_count_table")
    if cached is None:
        prior = bundle.calibration["type_counts"]
        column = list(bundle.pipeline["feature_names_"]).index("request_type")
        n_types = len(bundle.pipeline["vocabularies_"]["request_type"])
        table = np.zeros((n_types + 1, len(bundle.metadata["classes"])), dtype=np.float64)  # last row: none
        for code, counts in zip(prior["codes"], prior["counts"], strict=True):
            table[int(code)] = counts
        cached = bundle.cache["type_count_table"] = (column, table)
    return cached


def type_count_posterior(
    probabilities: np.ndarray, type_codes: np.ndarray, table: np.ndarray, strength: float
) -> np.ndarray:
    """p = (counts + m * p_model) / (n_type + m) per row (see `predict_department`). `type_codes` are the
    rows' request_type codes (NaN or out of range: no counts); `table` has one row per code plus a last,
    all-zero row for none."""
    index = np.where(np.isnan(type_codes), len(table) - 1, np.nan_to_num(type_codes, nan=0.0)).astype(np.int64)
    index = np.where((index < 0) | (index >= len(table)), len(table) - 1, index)
    counts = table[index]
    return (counts + strength * probabilities) / (counts.sum(axis=1, keepdims=True) + strength)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def save_snapshot_frame(folder: str | Path, frame) -> Path:
    """Store a workload snapshot table next to a bundle (Parquet)."""
    path = Path(folder) / SNAPSHOT_FILE
    frame.to_parquet(path, index=False)
    return path


def load_snapshot_frame(folder: str | Path):
    """The workload snapshot saved with a bundle, or None."""
    import pandas as pd

    matches = list(Path(folder).rglob(SNAPSHOT_FILE))
    return pd.read_parquet(matches[0]) if matches else None
