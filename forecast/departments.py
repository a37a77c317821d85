"""The managers' forecast: per department and day, expected closures with an 80% band and the projected backlog.

Pure functions on frames and arrays, shared by `eta311 forecast` (CLI) and the service's `/dashboard`
(``serving.dashboard``), so both show the same numbers. What it computes, and the choices it makes:

- **The view at as-of.** Rows created after ``as_of`` are dropped; outcomes after it are censored (the row is
  ``open`` with no ``closed_at``), so a forecast from an older as-of sees exactly what was known then.
- **Open requests** are the rows whose status is ``open`` in that view. Their **department** is the record's
  own when the city recorded one at intake, else the department model's most likely class.
- **Each request's closing distribution.** The time model gives P10/P50/P90 of total hours and P(closed
  within 1/3/7/30 days) from creation. ``ClosingCurves`` joins these seven knots into one CDF per request:
  knots sorted by time, made monotone (mean of the running max and the reverse running min), turned into a
  cumulative hazard H = -log(1 - F) and interpolated linearly in x = log1p(hours) (piecewise Weibull).
  Beyond the last knot the hazard goes on along the slope of the last segment (clipped to
  [``TAIL_SLOPE_MIN``, ``TAIL_SLOPE_MAX``]): the stated **residual hazard** for requests past the model's
  range, where 1 - F(a) ~ 0 would make a plain ratio meaningless. Conditioning on survival to age a is
  then a difference of hazards, P(close by a + t | open at a) = 1 - exp(-(H(a + t) - H(a))), which stays
  finite for any age.
- **Summing.** Expected closures per department and day are the sums of those per-request probabilities;
  the **80% band** treats requests as independent Bernoullis (Poisson-binomial) with the normal
  approximation, variance sum p(1 - p) — never a sum of medians.
- **Intake.** Forecast day k (the 24 hours from ``as_of + k days``) expects the mean intake of the same
  24-hour window 1, 2, 3 and 4 weeks earlier ("the last 4 same weekdays"; fewer weeks when the data is
  shorter; holidays are not special-cased). New requests also close within the horizon: each department's
  **closing curve for new requests** is the mean predicted CDF of its requests created in the lookback window,
  averaged over arrival times within a day (midpoint rule, ``ARRIVAL_STEPS`` points); intake counts are
  Poisson, so the closures and the still-open part of the intake are Poisson too (variance = mean).
- **Backlog.** projected_backlog(k) = open + intake up to day k - closures up to day k, with its own band
  (open requests still open: Poisson-binomial; intake still open: Poisson). Closures over the horizon can
  never exceed open + intake: every probability is at most 1 (a test holds it).
- **Closures** mean "leaves the open queue". The model was trained on resolved requests only; cancellations
  and referrals (about 2.6% of LA's rows) leave faster, so they are slightly under-forecast.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.pipeline import FeaturePipeline
from features.schema import INTAKE_COLUMNS
from features.workload import workload_arrays
from forecast.districts import district_cells, district_map
from models.bundle import ModelBundle, horizon_key, predict_department, predict_time_to_close, quantile_key

log = logging.getLogger(__name__)

HOUR = 3600.0
DAY_HOURS = 24.0
DEFAULT_HORIZON_DAYS = 14
DEFAULT_LOOKBACK_DAYS = 28
INTAKE_WEEKS = 4
BAND = 0.80
Z_BAND = 1.2815515655446004  # standard normal quantile at 0.90: an 80% central band
TAIL_SLOPE_MIN, TAIL_SLOPE_MAX, TAIL_SLOPE_DEFAULT = 1.0, 4.0, 1.0
F_EPS = 1e-4
ARRIVAL_STEPS = 6
MIN_WEEKDAY_EXITS = 70
WEEKDAY_FACTOR_MIN, WEEKDAY_FACTOR_MAX = 0.01, 4.0
CHUNK_ROWS = 50_000
MAX_CURVE_ROWS_PER_DEPARTMENT = 20_000
MIN_TYPE_ROWS_FOR_THRESHOLD = 20
AT_RISK_QUANTILE = 0.9
PAYLOAD_AT_RISK_ROWS = 200
MIN_THRESHOLD_DAYS = 1.0
UNKNOWN = "(unknown)"

FORECAST_INPUTS_FILE = "forecast_inputs.parquet"
FORECAST_META_FILE = "forecast_inputs.json"
OUTCOME_INPUT_COLUMNS: tuple[str, ...] = ("closed_at", "status", "department", "sla_target_at")
INPUT_COLUMNS: tuple[str, ...] = (*INTAKE_COLUMNS, *OUTCOME_INPUT_COLUMNS)


# --- the view at as-of ------------------------------------------------------------------------------------


def as_timestamp(value: object) -> pd.Timestamp:
    """An instant as a UTC Timestamp (naive values are read as UTC)."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def default_as_of(records: pd.DataFrame) -> pd.Timestamp:
    """The issue's default as-of: the latest ``created_at`` in the data."""
    latest = records["created_at"].max()
    if pd.isna(latest):
        raise ValueError("no created_at in the data: cannot choose an as-of")
    return as_timestamp(latest)


def view_at(records: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The records as they were known at `as_of`: later rows dropped, later outcomes censored to ``open``."""
    as_of = as_timestamp(as_of)
    kept = records.loc[records["created_at"] <= as_of].reset_index(drop=True)
    later = kept["closed_at"].notna() & (kept["closed_at"] > as_of)
    status = kept["status"].where(~later, "open")
    closed_at = kept["closed_at"].where(~later)
    return kept.assign(status=status, closed_at=closed_at)


def is_resolved(view: pd.DataFrame) -> np.ndarray:
    """Resolved as ``training.labels`` defines it: status closed, with a close time not before creation.

    Restated here (three lines) because ``serving`` must not import ``training``; a unit test holds both
    definitions to the same answer.
    """
    closed = view["closed_at"]
    return ((view["status"] == "closed") & closed.notna() & (closed >= view["created_at"])).to_numpy(dtype=bool)


def is_open(view: pd.DataFrame) -> np.ndarray:
    return (view["status"] == "open").to_numpy(dtype=bool)


# --- inputs the dashboard keeps ------------------------------------------------------------------------


def forecast_inputs(
    records: pd.DataFrame,
    as_of: pd.Timestamp,
    pipeline: FeaturePipeline | None = None,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
) -> pd.DataFrame:
    """The rows a forecast needs, with their point-in-time workload features when a pipeline is given.

    Rows: open at `as_of`, created in the lookback window (intake history, new-request curves) or closed in
    it (accountability). Workload features need the *whole* history (the backlog on a request's day counts
    every earlier request), so they are computed here on the full view and stored with the rows; without a
    pipeline they are left out and computed later from these rows only (a shorter history: backlogs of old
    requests are under-counted; logged).
    """
    as_of = as_timestamp(as_of)
    view = view_at(records, as_of)
    if len(view) == 0:
        raise ValueError(f"no requests created at or before {as_of.isoformat()}")
    start = as_of - pd.Timedelta(days=lookback_days)
    keep = (
        is_open(view) | (view["created_at"] > start).to_numpy() | (view["closed_at"] > start).fillna(False).to_numpy()
    )
    columns = [c for c in INPUT_COLUMNS if c in view.columns]
    out = view.loc[keep, columns].reset_index(drop=True)
    if pipeline is not None:
        arrays = workload_arrays(view, pipeline.type_department_, pipeline.workload_spec())
        rows = np.flatnonzero(keep)
        out = out.assign(**{name: values[rows] for name, values in arrays.items()})
    log.info("forecast inputs as of %s: %d of %d rows kept", as_of.isoformat(), len(out), len(view))
    return out


def write_forecast_inputs(
    records: pd.DataFrame,
    as_of: pd.Timestamp | str,
    snapshots_dir: Path,
    pipeline: FeaturePipeline | None = None,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
) -> Path:
    """Save what `/dashboard` needs next to the workload snapshot: ``forecast_inputs.parquet`` and its as-of."""
    as_of = as_timestamp(as_of)
    frame = forecast_inputs(records, as_of, pipeline, lookback_days)
    snapshots_dir = Path(snapshots_dir)
    snapshots_dir.mkdir(parents=True, exist_ok=True)
    path = snapshots_dir / FORECAST_INPUTS_FILE
    frame.to_parquet(path, index=False)
    meta = {"as_of": as_of.isoformat(), "lookback_days": int(lookback_days), "rows": int(len(frame))}
    (snapshots_dir / FORECAST_META_FILE).write_text(json.dumps(meta, indent=1))
    return path


def read_forecast_inputs(snapshots_dir: Path) -> tuple[pd.DataFrame, pd.Timestamp, int]:
    """(rows, as_of, lookback_days) written by `write_forecast_inputs`; FileNotFoundError when absent."""
    path = Path(snapshots_dir) / FORECAST_INPUTS_FILE
    meta_path = Path(snapshots_dir) / FORECAST_META_FILE
    if not path.is_file() or not meta_path.is_file():
        raise FileNotFoundError(
            f"{path}: no forecast inputs; run `eta311 train` or `eta311 snapshot DATA.parquet` to write them"
        )
    meta = json.loads(meta_path.read_text())
    if "as_of" not in meta:
        raise ValueError(f"{meta_path}: no as_of")
    return pd.read_parquet(path), as_timestamp(meta["as_of"]), int(meta.get("lookback_days", DEFAULT_LOOKBACK_DAYS))


# --- per-request closing curves ---------------------------------------------------------------------------


@dataclass
class ClosingCurves:
    """One cumulative hazard curve per request: knots (x = log1p(hours), H) and a tail slope beyond them."""

    x: np.ndarray  # (n, K), non-decreasing per row, x[:, 0] == 0
    h: np.ndarray  # (n, K), non-decreasing per row, h[:, 0] == 0
    tail: np.ndarray  # (n,)

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, rows: np.ndarray) -> ClosingCurves:
        return ClosingCurves(self.x[rows], self.h[rows], self.tail[rows])

    def hazard(self, hours: np.ndarray) -> np.ndarray:
        """Cumulative hazard H at `hours` (shape (n,) or (n, m)), piecewise linear in log1p(hours)."""
        hours = np.asarray(hours, dtype=float)
        squeeze = hours.ndim == 1
        q = np.log1p(np.maximum(hours, 0.0))
        if squeeze:
            q = q[:, None]
        x, h = self.x[:, None, :], self.h[:, None, :]
        k = x.shape[2]
        segment = (x <= q[:, :, None]).sum(axis=2)  # 1..K: number of knots at or before the query
        lo = np.clip(segment - 1, 0, k - 1)
        hi = np.clip(segment, 0, k - 1)
        x_lo = np.take_along_axis(self.x, lo.reshape(len(self.x), -1), axis=1).reshape(lo.shape)
        x_hi = np.take_along_axis(self.x, hi.reshape(len(self.x), -1), axis=1).reshape(hi.shape)
        h_lo = np.take_along_axis(self.h, lo.reshape(len(self.h), -1), axis=1).reshape(lo.shape)
        h_hi = np.take_along_axis(self.h, hi.reshape(len(self.h), -1), axis=1).reshape(hi.shape)
        width = x_hi - x_lo
        weight = np.where(width > 0, (q - x_lo) / np.where(width > 0, width, 1.0), 0.0)
        inside = h_lo + np.clip(weight, 0.0, 1.0) * (h_hi - h_lo)
        beyond = h[:, :, -1] + self.tail[:, None] * (q - x[:, :, -1])
        out = np.where(segment >= k, beyond, inside)
        del x, h
        return out[:, 0] if squeeze else out

    def cdf(self, hours: np.ndarray) -> np.ndarray:
        return -np.expm1(-self.hazard(hours))

    def conditional_quantile(self, age_hours: np.ndarray, p: float) -> np.ndarray:
        """Total hours t with P(close by t | open at age) = p: solves H(t) = H(age) - log(1 - p)."""
        target = self.hazard(age_hours) - np.log1p(-p)
        k = self.x.shape[1]
        segment = (self.h < target[:, None]).sum(axis=1)  # knots strictly below the target hazard
        beyond = segment >= k
        hi = np.clip(segment, 0, k - 1)
        lo = np.clip(segment - 1, 0, k - 1)
        rows = np.arange(len(self.x))
        h_lo, h_hi = self.h[rows, lo], self.h[rows, hi]
        x_lo, x_hi = self.x[rows, lo], self.x[rows, hi]
        dh = h_hi - h_lo
        inside = x_lo + np.where(dh > 0, (target - h_lo) / np.where(dh > 0, dh, 1.0), 0.0) * (x_hi - x_lo)
        tail_x = self.x[:, -1] + (target - self.h[:, -1]) / self.tail
        x_t = np.where(beyond, tail_x, np.where(segment == 0, 0.0, inside))
        return np.maximum(np.expm1(x_t), np.asarray(age_hours, dtype=float))


def closing_curves(
    predictions: Mapping[str, np.ndarray], quantiles: list[float], horizons: list[float]
) -> ClosingCurves:
    """Per-request CDF knots from the time model's quantiles and horizon probabilities (see module docstring)."""
    times = [predictions[quantile_key(q)] for q in quantiles] + [
        np.full(len(predictions[quantile_key(quantiles[0])]), h * DAY_HOURS) for h in horizons
    ]
    levels = [np.full(len(times[0]), q) for q in quantiles] + [predictions[horizon_key(h)] for h in horizons]
    t = np.column_stack(times).astype(float)
    f = np.clip(np.column_stack(levels).astype(float), F_EPS, 1.0 - F_EPS)
    order = np.argsort(t, axis=1, kind="stable")
    t = np.take_along_axis(t, order, axis=1)
    f = np.take_along_axis(f, order, axis=1)
    # Monotone: the mean of the running max and the reverse running min equals f where f already rises.
    up = np.maximum.accumulate(f, axis=1)
    down = np.minimum.accumulate(f[:, ::-1], axis=1)[:, ::-1]
    f = 0.5 * (up + down)
    x = np.column_stack([np.zeros(len(t)), np.log1p(np.maximum(t, 0.0))])
    h = np.column_stack([np.zeros(len(t)), -np.log1p(-f)])
    h = np.maximum.accumulate(h, axis=1)
    dx = x[:, -1] - x[:, -2]
    dh = h[:, -1] - h[:, -2]
    slope = np.where(dx > 1e-9, dh / np.where(dx > 1e-9, dx, 1.0), TAIL_SLOPE_DEFAULT)
    tail = np.clip(slope, TAIL_SLOPE_MIN, TAIL_SLOPE_MAX)
    return ClosingCurves(x, h, tail)


def conditional_closing(
    curves: ClosingCurves, age_hours: np.ndarray, horizon_days: int, day_factor: np.ndarray | None = None
) -> np.ndarray:
    """P(closed by the end of forecast day k | open at its age), k = 0..horizon-1, shape (n, horizon).

    `day_factor` (n, horizon) rescales each day's hazard increment (the department's weekday closing rhythm,
    see ``weekday_factors``): the model's curve says how much hazard a request accrues per day on average,
    the department's calendar says on which days it is spent. Cumulative and non-decreasing in k; computed
    in chunks of rows to bound memory.
    """
    n = len(curves)
    out = np.empty((n, horizon_days))
    ends = DAY_HOURS * np.arange(1, horizon_days + 1)
    for start in range(0, n, CHUNK_ROWS):
        rows = slice(start, min(start + CHUNK_ROWS, n))
        part = curves.subset(np.arange(rows.start, rows.stop))
        age = np.asarray(age_hours[rows], dtype=float)
        grid = np.column_stack([age, age[:, None] + ends[None, :]])
        increments = np.diff(np.maximum.accumulate(part.hazard(grid), axis=1), axis=1)
        if day_factor is not None:
            increments = increments * day_factor[rows]
        out[rows] = -np.expm1(-np.cumsum(increments, axis=1))
    return out


def weekday_factors(
    closed_hours_before: np.ndarray, weekday: np.ndarray, department: np.ndarray, n_departments: int, weeks: int
) -> np.ndarray:
    """(D, 7) relative closing intensity per local weekday (mean 1), from exits in the last `weeks` weeks.

    Departments with fewer than ``MIN_WEEKDAY_EXITS`` such exits keep a flat rhythm (all ones)."""
    out = np.ones((n_departments, 7))
    recent = (
        np.isfinite(closed_hours_before) & (closed_hours_before >= 0) & (closed_hours_before < weeks * 7 * DAY_HOURS)
    )
    if weeks < 1 or not recent.any():
        return out
    counts = np.zeros((n_departments, 7))
    np.add.at(counts, (department[recent], weekday[recent]), 1.0)
    enough = counts.sum(axis=1) >= MIN_WEEKDAY_EXITS
    mean = counts.mean(axis=1, keepdims=True)
    factors = np.clip(counts / np.where(mean > 0, mean, 1.0), WEEKDAY_FACTOR_MIN, WEEKDAY_FACTOR_MAX)
    out[enough] = factors[enough] / factors[enough].mean(axis=1, keepdims=True)
    return out


def arrival_matrix(curve: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """P[j, k]: a new request arriving on forecast day j is closed by the end of day k (0 when k < j).

    `curve` is G(L) from ``new_request_curve``; its hazard increments per lag are rescaled by the weekday
    factor of the day they fall on, as for open requests."""
    horizon = len(curve)
    hazard = -np.log1p(-np.clip(curve, 0.0, 1.0 - F_EPS))
    increments = np.diff(hazard, prepend=0.0)
    out = np.zeros((horizon, horizon))
    for j in range(horizon):
        lags = np.arange(horizon - j)
        out[j, j:] = -np.expm1(-np.cumsum(increments[lags] * factor[j:]))
    return out


def new_request_curve(curves: ClosingCurves, horizon_days: int) -> np.ndarray:
    """G(L): mean probability a request arriving uniformly within a day closes by the end of the day L later.

    Shape (horizon,). Averages the requests' CDFs over ARRIVAL_STEPS arrival times per day (midpoint rule)."""
    if len(curves) == 0:
        return np.zeros(horizon_days)
    offsets = (np.arange(ARRIVAL_STEPS) + 0.5) / ARRIVAL_STEPS * DAY_HOURS
    ends = DAY_HOURS * np.arange(horizon_days)
    grid = (ends[:, None] + offsets[None, :]).ravel()  # time from arrival to a day's end
    total = np.zeros(len(grid))
    for start in range(0, len(curves), CHUNK_ROWS):
        part = curves.subset(np.arange(start, min(start + CHUNK_ROWS, len(curves))))
        total += part.cdf(np.broadcast_to(grid, (len(part), len(grid)))).sum(axis=0)
    mean = total / len(curves)
    return np.maximum.accumulate(mean.reshape(horizon_days, ARRIVAL_STEPS).mean(axis=1))


# --- predictions for the inputs --------------------------------------------------------------------------


@dataclass
class Scored:
    """The inputs with what the models say about each row (aligned by position)."""

    rows: pd.DataFrame  # the view's kept rows plus department_used, department_predicted
    curves: ClosingCurves
    q10: np.ndarray
    q50: np.ndarray
    q90: np.ndarray
    baseline_hours: np.ndarray  # the per-type median of the 28 days before each row's day (NaN if none)


def score_inputs(inputs: pd.DataFrame, time_bundle: ModelBundle, department_bundle: ModelBundle | None) -> Scored:
    """Predict every input row once: the time model for all, the department model where none was recorded."""
    pipeline = FeaturePipeline.from_dict(time_bundle.pipeline)
    names = pipeline.workload_spec().feature_names()
    rows = inputs.reset_index(drop=True)
    if all(name in rows.columns for name in names):
        workload = rows[names]
    else:
        log.warning("forecast inputs carry no workload features: computing them from the kept rows only")
        workload = None
    matrix = pipeline.transform(rows[[c for c in INPUT_COLUMNS if c in rows.columns]], workload)
    predictions = predict_time_to_close(time_bundle, matrix.values)
    curves = closing_curves(predictions, time_bundle.spec["quantiles"], time_bundle.spec["horizons_days"])
    recorded = rows["department"].astype("str")
    recorded = recorded.where(rows["department"].notna() & (recorded.str.strip() != ""))
    predicted = pd.Series(pd.NA, index=rows.index, dtype="str")
    missing = np.flatnonzero(recorded.isna().to_numpy())
    if len(missing) and department_bundle is not None:
        department_pipeline = FeaturePipeline.from_dict(department_bundle.pipeline)
        # The two champions can come from different runs (promotion moves each alias on its own): reuse the
        # time model's features only when the pipelines are the same fitted state, codes and all.
        if department_bundle.pipeline == time_bundle.pipeline:
            sub = matrix.values[missing]
        else:
            part = rows.iloc[missing][[c for c in INPUT_COLUMNS if c in rows.columns]]
            history = workload.iloc[missing] if workload is not None else None
            sub = department_pipeline.transform(part, history).values
        classes = np.asarray(department_bundle.metadata["classes"], dtype=object)
        predicted.iloc[missing] = classes[predict_department(department_bundle, sub).argmax(axis=1)]
    department = recorded.fillna(predicted).fillna(UNKNOWN)
    rows = rows.assign(department_used=department, department_predicted=recorded.isna() & predicted.notna())
    # The per-type median baseline: the type's median hours over the 28 days before the row's day (a
    # point-in-time "static SLA" that knows nothing the row's day did not), the city's median where the type
    # has none.
    window = pipeline.median_window_days
    by_type = matrix.values[:, pipeline.feature_names_.index(f"wl_type_median_hours{window}d")]
    by_city = matrix.values[:, pipeline.feature_names_.index(f"wl_city_median_hours{window}d")]
    baseline = np.where(np.isnan(by_type), by_city, by_type).astype(float)
    return Scored(rows, curves, predictions["q10"], predictions["q50"], predictions["q90"], baseline)


# --- intake, departments, days --------------------------------------------------------------------------


def _hours_before(as_of: pd.Timestamp, times: pd.Series) -> np.ndarray:
    return ((as_of - times).dt.total_seconds() / HOUR).to_numpy(dtype=float, na_value=np.nan)


def intake_by_phase(
    hours_before: np.ndarray, department: np.ndarray, n_departments: int, history_days: float
) -> tuple[np.ndarray, int]:
    """Expected intake per department for the 7 phases of a week after as-of, and the weeks averaged.

    Phase k is the 24 hours from ``as_of + k days``; its estimate is the mean count of the same 24-hour
    window 1..W weeks earlier (W = ``INTAKE_WEEKS`` or fewer when the history is shorter). With under a
    week of history, the mean daily rate is used for every phase.
    """
    back = np.floor(hours_before / DAY_HOURS)
    valid = (hours_before >= 0) & np.isfinite(back)
    weeks = int(min(INTAKE_WEEKS, history_days // 7))
    out = np.zeros((n_departments, 7))
    if weeks == 0:
        days = max(history_days, 1.0)
        recent = valid & (back < days)
        rate = np.bincount(department[recent], minlength=n_departments) / days
        return np.repeat(rate[:, None], 7, axis=1), 0
    for k in range(7):
        for w in range(1, weeks + 1):
            rows = valid & (back == 7 * w - k - 1)
            out[:, k] += np.bincount(department[rows], minlength=n_departments)
    return out / weeks, weeks


def forecast_dates(as_of: pd.Timestamp, horizon_days: int, timezone: str) -> list[str]:
    """Forecast day k covers the 24 h from ``as_of + k days``; its label is the local date of its middle."""
    middles = as_of + pd.to_timedelta(np.arange(horizon_days) * DAY_HOURS + 12.0, unit="h")
    return [d.isoformat() for d in pd.DatetimeIndex(middles).tz_convert(timezone).date]


def department_table(
    departments: list[str],
    dates: list[str],
    open_department: np.ndarray,
    open_cumulative: np.ndarray,
    intake: np.ndarray,
    new_cumulative: np.ndarray,
) -> pd.DataFrame:
    """Per department and forecast day: expected closures with the 80% band, intake and projected backlog.

    `open_cumulative` (n_open, H): P(closed by the end of day k) per open request; `intake` (D, H): expected
    new requests per day; `new_cumulative` (D, H, H): P(a new request arriving on day j is closed by the end
    of day k), from ``arrival_matrix``.
    """
    n_dep, horizon = len(departments), len(dates)
    open_daily = np.diff(open_cumulative, axis=1, prepend=0.0)

    def by_department(values: np.ndarray) -> np.ndarray:
        if values.size == 0:
            return np.zeros((n_dep, horizon))
        return np.column_stack(
            [np.bincount(open_department, weights=values[:, k], minlength=n_dep) for k in range(horizon)]
        )

    open_now = np.bincount(open_department, minlength=n_dep).astype(float)
    closures_open = by_department(open_daily)
    variance_open = by_department(open_daily * (1.0 - open_daily))
    still_open = open_now[:, None] - by_department(open_cumulative)
    variance_still_open = by_department(open_cumulative * (1.0 - open_cumulative))
    closed_new = np.einsum("dj,djk->dk", intake, new_cumulative)
    closures_new = np.diff(closed_new, axis=1, prepend=0.0)
    remaining_new = np.cumsum(intake, axis=1) - closed_new
    # Poisson intake thinned by independent closings stays Poisson: variance = mean.
    expected = closures_open + closures_new
    sd = np.sqrt(variance_open + closures_new)
    backlog = still_open + remaining_new
    backlog_sd = np.sqrt(variance_still_open + remaining_new)
    frame = pd.DataFrame(
        {
            "department": np.repeat(np.asarray(departments, dtype=object), horizon),
            "date": np.tile(np.asarray(dates, dtype=object), n_dep),
            "day": np.tile(np.arange(horizon), n_dep),
            "expected_closures": expected.ravel(),
            "low": np.maximum(expected - Z_BAND * sd, 0.0).ravel(),
            "high": (expected + Z_BAND * sd).ravel(),
            "projected_backlog": backlog.ravel(),
            "backlog_low": np.maximum(backlog - Z_BAND * backlog_sd, 0.0).ravel(),
            "backlog_high": (backlog + Z_BAND * backlog_sd).ravel(),
            "expected_intake": intake.ravel(),
            "closures_of_open": closures_open.ravel(),
            "closures_of_new": closures_new.ravel(),
            "open_at_as_of": np.repeat(open_now, horizon),
        }
    )
    return frame.astype({"department": "str", "date": "str"})


def department_totals(
    departments: list[str],
    days: list[int],
    open_department: np.ndarray,
    open_cumulative: np.ndarray,
    intake: np.ndarray,
    new_cumulative: np.ndarray,
) -> pd.DataFrame:
    """Closures over the first `days` of the horizon per department, with the band of the *total*.

    A request closes at most once, so "closed within the first n days" is one Bernoulli per open request
    (variance P(1 - P)), plus the Poisson closures of new requests; summing the daily bands instead would
    overstate the spread of a week's total.
    """
    n_dep = len(departments)
    closed_new = np.einsum("dj,djk->dk", intake, new_cumulative)
    rows = []
    for n in days:
        k = n - 1
        p = open_cumulative[:, k] if open_cumulative.size else np.zeros(0)
        mean_open = np.bincount(open_department, weights=p, minlength=n_dep)
        var_open = np.bincount(open_department, weights=p * (1.0 - p), minlength=n_dep)
        mean = mean_open + closed_new[:, k]
        sd = np.sqrt(var_open + closed_new[:, k])
        intake_n = intake[:, :n].sum(axis=1)
        open_now = np.bincount(open_department, minlength=n_dep).astype(float)
        for d, name in enumerate(departments):
            rows.append(
                {
                    "department": name,
                    "days": n,
                    "expected_closures": mean[d],
                    "low": max(mean[d] - Z_BAND * sd[d], 0.0),
                    "high": mean[d] + Z_BAND * sd[d],
                    "expected_intake": intake_n[d],
                    "open_at_as_of": open_now[d],
                    "projected_backlog": open_now[d] + intake_n[d] - mean[d],
                }
            )
    return pd.DataFrame(rows).astype({"department": "str"})


# --- at-risk, accountability, equity ----------------------------------------------------------------------


def type_thresholds(request_type: pd.Series, hours: np.ndarray) -> tuple[dict[str, float], float]:
    """Per-type threshold (hours) where the city states no target: the type's P90 of resolved hours in the
    lookback window ("slower than 9 in 10 recent requests of its kind"), at least ``MIN_THRESHOLD_DAYS``;
    types with fewer than ``MIN_TYPE_ROWS_FOR_THRESHOLD`` such rows get the all-type P90."""
    frame = pd.DataFrame({"type": request_type.to_numpy(), "hours": hours}).dropna()
    overall = float(frame["hours"].quantile(AT_RISK_QUANTILE)) if len(frame) else 30 * DAY_HOURS
    stats = frame.groupby("type")["hours"].agg(["size", lambda s: s.quantile(AT_RISK_QUANTILE)])
    stats.columns = ["n", "p90"]
    kept = stats[stats["n"] >= MIN_TYPE_ROWS_FOR_THRESHOLD]
    floor = MIN_THRESHOLD_DAYS * DAY_HOURS  # a same-day auto-close is not a target a manager can be held to
    return {str(k): max(float(v), floor) for k, v in kept["p90"].items()}, max(overall, floor)


def _seconds(hours: np.ndarray) -> pd.TimedeltaIndex:
    """Hours as a whole-second timedelta (no nanosecond noise in the tables)."""
    return pd.to_timedelta(np.round(np.asarray(hours, dtype=float) * HOUR), unit="s")


def at_risk_table(
    rows: pd.DataFrame,
    curves: ClosingCurves,
    age_hours: np.ndarray,
    thresholds_hours: Mapping[str, float],
    default_hours: float,
) -> pd.DataFrame:
    """Open requests whose predicted closing (the median given that they are still open at their age) falls
    after their target: the city's ``sla_target_at`` where it has one, else created_at + the type's threshold.
    Oldest first."""
    remaining_median = curves.conditional_quantile(age_hours, 0.5)
    created = rows["created_at"]
    predicted_close = created + _seconds(remaining_median)
    type_hours = rows["request_type"].map(thresholds_hours).astype(float).fillna(default_hours)
    by_type = created + _seconds(type_hours.to_numpy())
    city_target = rows["sla_target_at"] if "sla_target_at" in rows.columns else pd.Series(pd.NaT, index=rows.index)
    has_city = city_target.notna()
    target = city_target.where(has_city, by_type)
    late = (predicted_close > target).to_numpy()
    out = pd.DataFrame(
        {
            "request_id": rows["request_id"],
            "department": rows["department_used"],
            "department_source": np.where(rows["department_predicted"].to_numpy(dtype=bool), "predicted", "recorded"),
            "request_type": rows["request_type"],
            "council_district": rows["council_district"],
            "neighborhood": rows["neighborhood"],
            "created_at": created,
            "age_days": age_hours / DAY_HOURS,
            "predicted_close_at": predicted_close,
            "target_at": target,
            "target_source": np.where(has_city.to_numpy(), "city target", "type threshold (P90 of recent)"),
            "days_past_target": (predicted_close - target).dt.total_seconds() / (DAY_HOURS * HOUR),
        }
    )
    return out.loc[late].sort_values(["created_at", "request_id"], kind="stable").reset_index(drop=True)


def _group_accuracy(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """MAE of P50 and of the baseline (hours), P10-P90 coverage, share closed by the promise, medians (days)."""
    grouped = frame.groupby(by, dropna=False, sort=True)
    out = grouped.agg(
        n=("actual_hours", "size"),
        mae_hours=("abs_error", "mean"),
        baseline_mae_hours=("baseline_abs_error", "mean"),
        within_p10_p90=("within", "mean"),
        closed_before_expected=("on_time", "mean"),
        below_p10=("below_p10", "mean"),
        below_p50=("on_time", "mean"),
        below_p90=("below_p90", "mean"),
        median_actual_days=("actual_days", "median"),
        median_predicted_days=("predicted_days", "median"),
    ).reset_index()
    out[by] = out[by].astype("str").fillna(UNKNOWN)
    out.insert(
        4,
        "improvement_vs_baseline",
        1.0 - out["mae_hours"] / out["baseline_mae_hours"].where(out["baseline_mae_hours"] > 0),
    )
    return out.sort_values("n", ascending=False, kind="stable").reset_index(drop=True)


def accountability_frame(scored: Scored, as_of: pd.Timestamp, lookback_days: int) -> pd.DataFrame:
    """Requests resolved in the last `lookback_days`, with prediction, actual and baseline (hours)."""
    rows = scored.rows
    closed_recently = is_resolved(rows) & (rows["closed_at"] > as_of - pd.Timedelta(days=lookback_days)).fillna(
        False
    ).to_numpy(dtype=bool)
    idx = np.flatnonzero(closed_recently)
    part = rows.iloc[idx]
    actual = ((part["closed_at"] - part["created_at"]).dt.total_seconds() / HOUR).to_numpy(dtype=float)
    q10, q50, q90 = scored.q10[idx], scored.q50[idx], scored.q90[idx]
    baseline = scored.baseline_hours[idx]
    return pd.DataFrame(
        {
            "department": part["department_used"].to_numpy(),
            "request_type": part["request_type"].fillna(UNKNOWN).to_numpy(),
            "council_district": part["council_district"].fillna(UNKNOWN).to_numpy(),
            "neighborhood": part["neighborhood"].fillna(UNKNOWN).to_numpy(),
            "actual_hours": actual,
            "predicted_hours": q50,
            "expected_close_at": (part["created_at"] + _seconds(q50)).to_numpy(),
            "abs_error": np.abs(q50 - actual),
            "baseline_abs_error": np.abs(baseline - actual),
            "within": ((actual >= q10) & (actual <= q90)).astype(float),
            "on_time": (part["closed_at"].to_numpy() <= (part["created_at"] + _seconds(q50)).to_numpy()).astype(float),
            "below_p10": (actual <= q10).astype(float),
            "below_p90": (actual <= q90).astype(float),
            "actual_days": actual / DAY_HOURS,
            "predicted_days": q50 / DAY_HOURS,
        }
    )


# --- the whole forecast ------------------------------------------------------------------------------------

REPORT_TABLES: tuple[str, ...] = (
    "department_forecast",
    "department_totals",
    "at_risk",
    "accuracy_by_department",
    "accuracy_by_district",
    "accuracy_by_type",
    "equity_by_neighborhood",
    "calibration",
    "district_map",
    "district_cells",
)


@dataclass
class ForecastReport:
    """Everything the managers' page shows, as tables (each written as ``<name>.csv``) plus a summary."""

    as_of: pd.Timestamp
    horizon_days: int
    lookback_days: int
    timezone: str
    departments: list[str]
    department_forecast: pd.DataFrame
    department_totals: pd.DataFrame
    at_risk: pd.DataFrame
    accuracy_by_department: pd.DataFrame
    accuracy_by_district: pd.DataFrame
    accuracy_by_type: pd.DataFrame
    equity_by_neighborhood: pd.DataFrame
    calibration: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    # The map of council districts (forecast.districts): one row per district, and the grid cells it is drawn from.
    district_map: pd.DataFrame = field(default_factory=pd.DataFrame)
    district_cells: pd.DataFrame = field(default_factory=pd.DataFrame)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in REPORT_TABLES}

    def payload(self, department: str | None = None, at_risk_rows: int | None = PAYLOAD_AT_RISK_ROWS) -> dict[str, Any]:
        """JSON-serialisable data behind the page; one department's rows only when `department` is given.

        The at-risk list keeps the oldest `at_risk_rows` per department (all of them with None; the page shows
        fewer still) with the full counts in ``at_risk_counts``: a city-wide list can run to tens of thousands.
        """
        if department is not None and department not in self.departments:
            raise ValueError(f"unknown department {department!r}; known: {self.departments}")
        out: dict[str, Any] = {
            "as_of": self.as_of.isoformat(),
            "horizon_days": self.horizon_days,
            "lookback_days": self.lookback_days,
            "timezone": self.timezone,
            "departments": self.departments if department is None else [department],
            "summary": self.summary,
        }
        for name, frame in self.tables().items():
            if department is not None and "department" in frame.columns:
                frame = frame[frame["department"] == department]
            if name == "at_risk":
                out["at_risk_counts"] = {str(k): int(v) for k, v in frame["department"].value_counts().items()}
                if at_risk_rows is not None:
                    frame = frame.groupby("department", sort=True, group_keys=False).head(at_risk_rows)
            out[name] = json.loads(frame.to_json(orient="records", date_format="iso"))
        return out

    def write(self, out_dir: Path) -> Path:
        """The CSVs and the self-contained ``index.html`` in `out_dir`; returns the page's path."""
        from forecast.report import render_report

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, frame in self.tables().items():
            frame.to_csv(out_dir / f"{name}.csv", index=False)
        (out_dir / "summary.json").write_text(json.dumps(self.summary, indent=1, default=str))
        page = out_dir / "index.html"
        page.write_text(render_report(self), encoding="utf-8")
        return page


def _city_timezone(rows: pd.DataFrame) -> str:
    from features.schema import city_timezone

    cities = rows["city"].dropna()
    return city_timezone(str(cities.mode().iloc[0])) if len(cities) else "UTC"


def build_forecast(
    inputs: pd.DataFrame,
    as_of: pd.Timestamp,
    time_bundle: ModelBundle,
    department_bundle: ModelBundle | None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    targets_days: Mapping[str, float] | None = None,
) -> ForecastReport:
    """The forecast from `forecast_inputs` rows (see the module docstring for every step and choice).

    `targets_days` states a threshold (days) per request type for the at-risk list, overriding the default
    (the type's P90 of recent resolved requests); a city's own ``sla_target_at`` always wins.
    """
    from tqdm.auto import tqdm

    if horizon_days < 1:
        raise ValueError(f"horizon must be at least one day, got {horizon_days}")
    as_of = as_timestamp(as_of)
    inputs = inputs.loc[inputs["created_at"] <= as_of].reset_index(drop=True)
    if len(inputs) == 0:
        raise ValueError(f"no requests created at or before {as_of.isoformat()}")
    progress = tqdm(total=5, desc="forecast", unit="step", disable=None)
    scored = score_inputs(inputs, time_bundle, department_bundle)
    progress.update()
    rows = scored.rows
    departments = sorted(set(rows["department_used"].tolist()))
    code_of = {d: i for i, d in enumerate(departments)}
    department_code = rows["department_used"].map(code_of).to_numpy(dtype=np.int64)
    timezone = _city_timezone(rows)
    dates = forecast_dates(as_of, horizon_days, timezone)

    open_rows = np.flatnonzero(is_open(rows))
    age = _hours_before(as_of, rows["created_at"])
    history_days = min(float(lookback_days), float(np.nanmax(age)) / DAY_HOURS if len(rows) else 0.0)
    phase, weeks = intake_by_phase(age, department_code, len(departments), history_days)
    intake = phase[:, np.arange(horizon_days) % 7]
    closed_local = rows["closed_at"].dt.tz_convert(timezone)
    factors = weekday_factors(
        _hours_before(as_of, rows["closed_at"]),
        closed_local.dt.day_of_week.fillna(0).to_numpy(dtype=np.int64),
        department_code,
        len(departments),
        max(weeks, 1),
    )
    day_weekday = pd.DatetimeIndex(pd.to_datetime(dates)).day_of_week.to_numpy()
    day_factor = factors[:, day_weekday]  # (D, H)
    open_curves = scored.curves.subset(open_rows)
    open_cumulative = conditional_closing(
        open_curves, age[open_rows], horizon_days, day_factor[department_code[open_rows]]
    )
    progress.update()

    recent = np.flatnonzero(age <= lookback_days * DAY_HOURS)
    rng = np.random.default_rng(0)
    new_cumulative = np.zeros((len(departments), horizon_days, horizon_days))
    for d in range(len(departments)):
        members = recent[department_code[recent] == d]
        if len(members) > MAX_CURVE_ROWS_PER_DEPARTMENT:
            members = np.sort(rng.choice(members, MAX_CURVE_ROWS_PER_DEPARTMENT, replace=False))
        curve = new_request_curve(scored.curves.subset(members), horizon_days)
        new_cumulative[d] = arrival_matrix(curve, day_factor[d])
    table = department_table(departments, dates, department_code[open_rows], open_cumulative, intake, new_cumulative)
    totals_days = sorted({min(7, horizon_days), horizon_days})
    totals = department_totals(
        departments, totals_days, department_code[open_rows], open_cumulative, intake, new_cumulative
    )
    progress.update()

    resolved_recent = is_resolved(rows) & (rows["closed_at"] > as_of - pd.Timedelta(days=lookback_days)).fillna(
        False
    ).to_numpy(dtype=bool)
    hours = np.where(resolved_recent, _hours_before(rows["closed_at"].fillna(as_of), rows["created_at"]), np.nan)
    thresholds, default_threshold = type_thresholds(rows["request_type"], hours)
    if targets_days:
        thresholds.update({str(k): float(v) * DAY_HOURS for k, v in targets_days.items()})
    risk = at_risk_table(rows.iloc[open_rows], open_curves, age[open_rows], thresholds, default_threshold)
    progress.update()

    acc = accountability_frame(scored, as_of, lookback_days)
    by_department = _group_accuracy(acc, "department")
    by_district = _group_accuracy(acc, "council_district")
    by_type = _group_accuracy(acc, "request_type")
    by_neighborhood = _group_accuracy(acc, "neighborhood")[
        ["neighborhood", "n", "median_actual_days", "median_predicted_days", "mae_hours", "within_p10_p90"]
    ]
    open_part = rows.iloc[open_rows]
    open_by_district = open_part["council_district"].fillna(UNKNOWN).astype("str").value_counts()
    risk_by_district = risk["council_district"].fillna(UNKNOWN).astype("str").value_counts()
    by_district = by_district.assign(
        open_now=by_district["council_district"].map(open_by_district).fillna(0).astype(int),
        at_risk_now=by_district["council_district"].map(risk_by_district).fillna(0).astype(int),
    )
    calibration = _calibration(acc)
    cells = district_cells(rows)
    map_table = district_map(rows, cells, by_district)
    progress.update()
    progress.close()

    horizon_totals = totals[totals["days"] == horizon_days].set_index("department")
    summary = {
        "as_of": as_of.isoformat(),
        "open_requests": int(len(open_rows)),
        "open_with_predicted_department": int(rows["department_predicted"].to_numpy(dtype=bool)[open_rows].sum()),
        "at_risk": int(len(risk)),
        "resolved_in_lookback": int(len(acc)),
        "intake_weeks_averaged": int(weeks),
        "at_risk_threshold_days": {t: round(h / DAY_HOURS, 3) for t, h in sorted(thresholds.items())},
        "at_risk_default_threshold_days": round(default_threshold / DAY_HOURS, 3),
        "expected_closures_over_horizon": {d: float(v) for d, v in horizon_totals["expected_closures"].items()},
        "expected_intake_over_horizon": {d: float(v) for d, v in horizon_totals["expected_intake"].items()},
        "model_p50_mae_hours": float(acc["abs_error"].mean()) if len(acc) else None,
        "baseline_mae_hours": float(acc["baseline_abs_error"].mean()) if len(acc) else None,
        "coverage_p10_p90": float(acc["within"].mean()) if len(acc) else None,
        "time_model": {k: time_bundle.metadata.get(k) for k in ("extracted_at", "rows", "data_digest")},
    }
    log.info(
        "forecast as of %s: %d open, %d departments, %d at risk, %d resolved in the last %d days",
        as_of.isoformat(),
        len(open_rows),
        len(departments),
        len(risk),
        len(acc),
        lookback_days,
    )
    return ForecastReport(
        as_of=as_of,
        horizon_days=horizon_days,
        lookback_days=lookback_days,
        timezone=timezone,
        departments=departments,
        department_forecast=table,
        department_totals=totals,
        at_risk=risk,
        accuracy_by_department=by_department,
        accuracy_by_district=by_district,
        accuracy_by_type=by_type,
        equity_by_neighborhood=by_neighborhood,
        calibration=calibration,
        summary=summary,
        district_map=map_table,
        district_cells=cells,
    )


def _calibration(acc: pd.DataFrame) -> pd.DataFrame:
    """Nominal quantile level vs the observed share of resolved requests at or below it, per department."""
    frames = []
    for name, part in [("All departments", acc), *acc.groupby("department", sort=True)]:
        for level, column in ((0.1, "below_p10"), (0.5, "on_time"), (0.9, "below_p90")):
            frames.append(
                {
                    "department": str(name),
                    "nominal": level,
                    "observed": float(part[column].mean()) if len(part) else np.nan,
                    "n": int(len(part)),
                }
            )
    return pd.DataFrame(frames, columns=["department", "nominal", "observed", "n"]).astype({"department": "str"})


def forecast_records(
    records: pd.DataFrame,
    time_bundle: ModelBundle,
    department_bundle: ModelBundle | None,
    as_of: pd.Timestamp | None = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    targets_days: Mapping[str, float] | None = None,
) -> ForecastReport:
    """`eta311 forecast`'s library core: the view at as-of (default: latest created_at), inputs, forecast."""
    as_of = default_as_of(records) if as_of is None else as_timestamp(as_of)
    pipeline = FeaturePipeline.from_dict(time_bundle.pipeline)
    inputs = forecast_inputs(records, as_of, pipeline, lookback_days)
    return build_forecast(inputs, as_of, time_bundle, department_bundle, horizon_days, lookback_days, targets_days)
