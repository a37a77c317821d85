"""The fitted feature pipeline: intake fields -> one numeric matrix for LightGBM, in bulk and per request.

``FeaturePipeline`` follows scikit-learn's estimator contract: ``__init__`` stores parameters, ``fit``
learns category vocabularies and the type -> department map into attributes ending in ``_``, and the
transforms are pure. Its whole state is plain JSON (``to_dict``/``from_dict``), saved next to the model —
no pickles.

Two paths give the same numbers (a test holds them to float equality):
- ``transform(records, workload)`` for many rows (training, evaluation): vectorised pandas/numpy, with
  point-in-time workload features from ``features.workload``;
- ``transform_rows(rows, snapshot)`` for a request or a small batch (serving): plain Python and one numpy
  array at the end, no DataFrame per request (~tens of us per row), workload looked up in today's
  ``WorkloadSnapshot``.

Categorical fields become integer codes of the fitted vocabulary (``categorical_features_`` lists their
columns); a missing value is NaN, and so is a value the vocabulary does not know — never a crash — with a
warning per affected row so the service can say its estimate ignored that field. Request type, council
district, neighbourhood and the type's department are coded within their city ("1" in Los Angeles is not
district "1" in Chicago).

Only what is known at intake enters a row's features. The row's own ``closed_at``, ``status`` and
``department`` are never read for it: the department level of the workload features keys on the type's
usual department from the fitted map, and workload counts only events before the row's day began.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from features.calendar import (
    CALENDAR_FEATURES,
    DAY_US,
    CityCodes,
    calendar_from_wall,
    calendar_row,
    city_codes,
    local_wall_us,
    local_wall_us_row,
)
from features.geo import DEFAULT_GRID_DEG, clean_coordinates, clean_coordinates_row, grid_cell_row, grid_cells
from features.routing import TextRouter, route_feature_names
from features.text import DEFAULT_BUCKETS, hash_text_row, hash_texts_table, text_feature_names
from features.types import MIN_SIMILARITY, NearestType
from features.workload import (
    LEVELS,
    WorkloadSnapshot,
    WorkloadSpec,
    clean_text,
    iso_day,
    learn_type_department,
    row_keys,
    text_codes,
    with_record_columns,
    workload_arrays,
    workload_snapshot,
)

log = logging.getLogger(__name__)

STATE_FORMAT = "eta311.feature_pipeline"
STATE_VERSION = 4
# Older states load with the features they were fitted with: version 1 before the type's words were hashed,
# versions 1 and 2 before workload knew its history (features.workload.WorkloadSpec.history_aware),
# versions 1 to 3 before the text router (features.routing).
_COMPATIBLE_VERSIONS = {
    1: {"type_words": False, "nearest_type_similarity": 0.0, "workload_history": False, "route_text": False},
    2: {"workload_history": False, "route_text": False},
    3: {"route_text": False},
    4: {},
}

# Categorical fields, in column order. City-scoped ones are coded as "city|value".
CATEGORICAL_FIELDS: tuple[str, ...] = (
    "city",
    "request_type",
    "source",
    "council_district",
    "neighborhood",
    "zip_code",
    "grid_cell",
    "type_department",
)
CITY_SCOPED: frozenset[str] = frozenset({"request_type", "council_district", "neighborhood", "type_department"})
# Derived fields whose unseen values need no warning of their own (the field they derive from has one).
_SILENT_FIELDS: frozenset[str] = frozenset({"type_department"})
_SCOPE_SEPARATOR = "|"
OUTSIDE_CITY_WARNING = "location is outside the city's bounds; ignored"


def unseen_warning(field_name: str, value: object) -> str:
    """The message for a categorical value the fitted vocabulary does not know (shared by both paths)."""
    if field_name == "grid_cell":
        return "unseen grid_cell: the location's area is not in the training vocabulary, treated as missing"
    return f"unseen {field_name} {value!r}: not in the training vocabulary, treated as missing"


@dataclass
class FeatureMatrix:
    """A feature matrix with its column metadata and the warnings of the rows that need one.

    Warnings are kept compact — per source (location, then each categorical field in column order) the
    affected row positions and one message per such row — and turned into per-row lists only on demand:
    a training transform may flag a million rows and nobody reads them one by one.
    """

    values: np.ndarray
    feature_names: list[str]
    categorical_features: list[int]
    notes: list[tuple[str, np.ndarray, np.ndarray]] = field(default_factory=list)  # (source, rows, messages)

    def __len__(self) -> int:
        return len(self.values)

    @functools.cached_property
    def warnings(self) -> dict[int, list[str]]:
        """Row position -> messages, for the rows that have any (the same messages `transform_rows` gives)."""
        out: dict[int, list[str]] = {}
        for _, rows, messages in self.notes:
            for i, message in zip(rows.tolist(), messages.tolist(), strict=True):
                out.setdefault(i, []).append(message)
        return out

    def warning_counts(self) -> dict[str, int]:
        """How many rows each source flagged (e.g. for a log line after a bulk transform)."""
        return {source: len(rows) for source, rows, _ in self.notes if len(rows)}


def _as_datetime(value: object) -> dt.datetime:
    """created_at of a request dict: datetime, pandas Timestamp or ISO string (naive = UTC)."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    raise TypeError(f"created_at must be a datetime or ISO string, got {type(value).__name__}")


class FeaturePipeline(BaseEstimator):
    """Intake request fields -> numeric features (see the module docstring for the contract).

    Parameters
    ----------
    n_text_buckets: number of hashed bag-of-words columns of the description.
    nearest_type_similarity: an unseen request type takes the usual department of the known type whose name
        it resembles most, at least this much (``features.types``); 0 turns that off.
    type_words: hash the request type's words into the same bag as the description's, so that a type name
        never seen in training still says something ("HEAT/HOT WATER" shares "heat" with "HEATING" and
        its "HEAT" descriptors).
    grid_deg: grid cell size in degrees for the location area key.
    max_categories: per categorical field, keep at most this many values (the most frequent in fit).
    min_category_count: a value must occur this often in fit to get its own code.
    intake_windows_days: intake windows (days before the request's day) for the workload counts.
    median_window_days: window of closings for the recent median time-to-close.
    workload_history: workload statistics are missing where the data's history is shorter than their
        window, and the city's days of history is a feature (`features.workload.WorkloadSpec`).
    route_text: when the fit records carry departments, fit the text router (``features.routing``): TF-IDF
        logistic regression whose department logits become the last columns (``route_``), for the
        department model to blend with its booster. No booster may split on them (in-sample on fit rows).
    """

    def __init__(
        self,
        n_text_buckets: int = DEFAULT_BUCKETS,
        type_words: bool = True,
        nearest_type_similarity: float = MIN_SIMILARITY,
        grid_deg: float = DEFAULT_GRID_DEG,
        max_categories: int = 2000,
        min_category_count: int = 1,
        intake_windows_days: tuple[int, ...] = (7, 28),
        median_window_days: int = 28,
        workload_history: bool = True,
        route_text: bool = True,
    ) -> None:
        self.n_text_buckets = n_text_buckets
        self.type_words = type_words
        self.nearest_type_similarity = nearest_type_similarity
        self.grid_deg = grid_deg
        self.max_categories = max_categories
        self.min_category_count = min_category_count
        self.intake_windows_days = intake_windows_days
        self.median_window_days = median_window_days
        self.workload_history = workload_history
        self.route_text = route_text

    # --- fit -------------------------------------------------------------------------------------------

    def fit(self, records: pd.DataFrame, y: object = None) -> FeaturePipeline:
        """Learn the category vocabularies and the type -> department map from historical records."""
        del y  # unsupervised: labels are built elsewhere
        records = with_record_columns(records.reset_index(drop=True))
        self.type_department_ = learn_type_department(records)
        self.router_ = TextRouter.fit(records) if self.route_text else None
        fields = self._category_fields(records, self.type_department_)
        self.vocabularies_ = {name: self._learn_vocabulary(fields[name]) for name in CATEGORICAL_FIELDS}
        self.feature_names_ = self._feature_names()
        self.categorical_features_ = [self.feature_names_.index(name) for name in CATEGORICAL_FIELDS]
        self.n_rows_fit_ = len(records)
        self.__dict__.pop("_lookup_cache", None)
        self.__dict__.pop("_nearest_cache", None)
        log.info(
            "feature pipeline fitted on %d rows: %s",
            len(records),
            ", ".join(f"{name}={len(v)}" for name, v in self.vocabularies_.items()),
        )
        return self

    def _learn_vocabulary(self, field: _Field) -> list[Any]:
        """Most frequent first (ties by value), so codes do not depend on row order."""
        counts = np.bincount(field.codes[field.codes >= 0], minlength=len(field.keys))
        kept = [
            (int(n), key) for key, n in zip(field.keys, counts.tolist(), strict=True) if n >= self.min_category_count
        ]
        kept.sort(key=lambda item: (-item[0], str(item[1])))
        return [key for _, key in kept[: self.max_categories]]

    def workload_spec(self) -> WorkloadSpec:
        return WorkloadSpec(
            tuple(int(w) for w in self.intake_windows_days), int(self.median_window_days), bool(self.workload_history)
        )

    def _feature_names(self) -> list[str]:
        return [
            "latitude",
            "longitude",
            *CALENDAR_FEATURES,
            *CATEGORICAL_FIELDS,
            *text_feature_names(self.n_text_buckets),
            *self.workload_spec().feature_names(),
            *(route_feature_names(len(self.router_.classes)) if self.router_ is not None else []),
        ]

    # --- category keys (vectorised) --------------------------------------------------------------------

    def _category_fields(
        self,
        records: pd.DataFrame,
        type_department: Mapping[str, Mapping[str, str]],
        cities: CityCodes | None = None,
        coordinates: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> dict[str, _Field]:
        """Every row's vocabulary key for every categorical field, as codes into per-field key lists."""
        cities = cities or city_codes(records["city"])
        if coordinates is None:
            coordinates = clean_coordinates(records["latitude"], records["longitude"], cities)
        known_city = np.array([label != "" for label in cities.labels] + [False])
        fields = {"city": _Field(np.where(known_city[cities.codes], cities.codes, -1), cities.labels, cities.labels)}
        for name in ("request_type", "source", "council_district", "neighborhood", "zip_code"):
            codes, labels = text_codes(records[name])
            if name in CITY_SCOPED:
                fields[name] = _scoped_field(cities, codes, labels)
            else:
                fields[name] = _Field(codes, labels, labels)
        cells = grid_cells(*coordinates, self.grid_deg)
        cell_codes, cell_keys = pd.factorize(np.where(cells >= 0, cells, -1))
        cell_list = [int(c) for c in cell_keys]
        missing_code = cell_list.index(-1) if -1 in cell_list else -2
        cell_codes = np.where(cell_codes == missing_code, -1, cell_codes).astype(np.int64)
        fields["grid_cell"] = _Field(cell_codes, cell_list, cell_list)
        fields["type_department"] = _department_field(fields["request_type"], type_department, self._nearest_type())
        return fields

    # --- transform (many rows) -------------------------------------------------------------------------

    def transform(self, records: pd.DataFrame, workload: pd.DataFrame | None = None) -> FeatureMatrix:
        """Features of many requests. `workload` (aligned with `records` by position) defaults to the
        point-in-time features computed with `records` as their own history (``workload_features``).

        Only intake columns are read, plus — through the workload history — outcomes of *earlier* rows.
        The matrix is column-major (Fortran order): filled column by column, and LightGBM reads that
        layout without a copy.
        """
        check_is_fitted(self, "vocabularies_")
        records = with_record_columns(records.reset_index(drop=True))
        n = len(records)
        names = self.feature_names_
        matrix = np.empty((n, len(names)), dtype=np.float64, order="F")
        position = {name: i for i, name in enumerate(names)}
        notes: list[tuple[str, np.ndarray, np.ndarray]] = []

        cities = city_codes(records["city"])
        raw_lat = records["latitude"].to_numpy(dtype=np.float64, na_value=np.nan)
        raw_lon = records["longitude"].to_numpy(dtype=np.float64, na_value=np.nan)
        lat, lon = clean_coordinates(raw_lat, raw_lon, cities)
        matrix[:, position["latitude"]] = lat
        matrix[:, position["longitude"]] = lon
        ignored = np.flatnonzero(~np.isnan(raw_lat) & ~np.isnan(raw_lon) & np.isnan(lat))
        notes.append(("location", ignored, np.full(len(ignored), OUTSIDE_CITY_WARNING, dtype=object)))

        wall = local_wall_us(records["created_at"], cities)
        for name, column in calendar_from_wall(wall, cities).items():
            matrix[:, position[name]] = column

        fields = self._category_fields(records, self.type_department_, cities, coordinates=(lat, lon))
        lookups = self._lookups()
        for name in CATEGORICAL_FIELDS:
            field = fields[name]
            mapped = np.array([lookups[name].get(key, np.nan) for key in field.keys] + [np.nan])
            values = mapped[field.codes]
            matrix[:, position[name]] = values
            if name in _SILENT_FIELDS:
                continue
            unseen = np.flatnonzero((field.codes >= 0) & np.isnan(values))
            if len(unseen):
                messages = np.array([unseen_warning(name, shown) for shown in field.shown], dtype=object)
                notes.append((name, unseen, messages[field.codes[unseen]]))

        text = records["description"]
        if self.type_words:
            text = text.fillna("").str.cat(records["request_type"].fillna(""), sep=" ")
        text_codes_, table = hash_texts_table(text, self.n_text_buckets)
        text_start = position[text_feature_names(self.n_text_buckets)[0]]
        for j in range(table.shape[1]):
            matrix[:, text_start + j] = table[text_codes_, j]

        spec = self.workload_spec()
        if workload is None:
            columns = workload_arrays(records, self.type_department_, spec)
        elif len(workload) != n:
            raise ValueError(f"workload has {len(workload)} rows for {n} records")
        else:
            columns = {
                name: workload[name].to_numpy(dtype=np.float64, na_value=np.nan) for name in spec.feature_names()
            }
        for name in spec.feature_names():
            matrix[:, position[name]] = columns[name]
        if self.router_ is not None:
            matrix[:, len(names) - 1 - len(self.router_.classes) :] = self.router_.transform(records)
        return FeatureMatrix(matrix, list(names), list(self.categorical_features_), notes)

    def workload_snapshot(self, records: pd.DataFrame, as_of: dt.datetime | pd.Timestamp) -> pd.DataFrame:
        """Today's workload table from `records`, keyed with this pipeline's type -> department map."""
        check_is_fitted(self, "vocabularies_")
        return workload_snapshot(records, as_of, self.type_department_, self.workload_spec())

    def load_snapshot(self, frame: pd.DataFrame) -> WorkloadSnapshot:
        """The service's lookup form of a snapshot frame; build it once per snapshot, not per request."""
        return WorkloadSnapshot.from_frame(frame, self.workload_spec())

    # --- transform_rows (one request or a small batch) ------------------------------------------------

    def transform_rows(
        self,
        rows: Sequence[Mapping[str, Any]],
        snapshot: WorkloadSnapshot | pd.DataFrame | None,
        warnings: list[list[str]] | None = None,
    ) -> np.ndarray:
        """Features of intake requests given as dicts (``IntakeRequest.model_dump()``), for serving.

        `snapshot` is today's ``WorkloadSnapshot`` (a frame is accepted but converted on every call: load it
        once with ``load_snapshot``). ``None`` leaves the workload features missing. When `warnings` is a
        list, one list of messages per row is appended to it: unseen categories, ignored locations, and
        serving-only notes (no snapshot for the city, a snapshot from another day).
        """
        if "vocabularies_" not in self.__dict__:  # check_is_fitted costs ~7 us: too much per request
            raise NotFittedError("FeaturePipeline is not fitted yet: call fit or from_dict first")
        if isinstance(snapshot, pd.DataFrame):
            snapshot = self.load_snapshot(snapshot)
        lookups = self._lookups()
        out = [self._row_values(row, snapshot, lookups, warnings) for row in rows]
        return np.array(out, dtype=np.float64).reshape(len(rows), len(self.feature_names_))

    def _nearest_type(self) -> NearestType | None:
        """The unseen-type matcher for the fitted type -> department map (cached; not part of the state)."""
        if self.nearest_type_similarity <= 0:
            return None
        matcher = self.__dict__.get("_nearest_cache")
        if matcher is None:
            matcher = self.__dict__["_nearest_cache"] = NearestType(self.type_department_, self.nearest_type_similarity)
        return matcher

    def _lookups(self) -> dict[str, dict[Any, float]]:
        """value -> code dicts per field, derived from the vocabularies (cached; not part of the state)."""
        cache = self.__dict__.get("_lookup_cache")
        if cache is None:
            cache = {name: {v: float(i) for i, v in enumerate(vocab)} for name, vocab in self.vocabularies_.items()}
            self.__dict__["_lookup_cache"] = cache
        return cache

    def _row_values(
        self,
        row: Mapping[str, Any],
        snapshot: WorkloadSnapshot | None,
        lookups: dict[str, dict[Any, float]],
        warnings: list[list[str]] | None,
    ) -> list[float]:
        messages: list[str] = []
        city = clean_text(row.get("city")) or ""
        created_at = row.get("created_at")
        if created_at is None:
            created_at = dt.datetime.now(dt.UTC)
            messages.append("created_at missing: used the current time")
        wall = local_wall_us_row(_as_datetime(created_at), city)

        raw_lat, raw_lon = row.get("latitude"), row.get("longitude")
        lat, lon = clean_coordinates_row(raw_lat, raw_lon, city)
        given = raw_lat is not None and raw_lon is not None and not math.isnan(float(raw_lat) + float(raw_lon))
        if given and math.isnan(lat):
            messages.append(OUTSIDE_CITY_WARNING)
        values = [lat, lon, *calendar_row(wall, city)]

        request_type = clean_text(row.get("request_type"))
        department = None
        if request_type is not None:
            department = self.type_department_.get(city, {}).get(request_type)
            if department is None and self.nearest_type_similarity > 0:
                department = self._nearest_type().department(city, request_type)
        cell = grid_cell_row(lat, lon, self.grid_deg)
        raw_fields = {
            "city": city or None,
            "request_type": request_type,
            "source": clean_text(row.get("source")),
            "council_district": clean_text(row.get("council_district")),
            "neighborhood": clean_text(row.get("neighborhood")),
            "zip_code": clean_text(row.get("zip_code")),
            "grid_cell": cell if cell >= 0 else None,
            "type_department": department,
        }
        for name in CATEGORICAL_FIELDS:
            value = raw_fields[name]
            if value is None:
                values.append(math.nan)
                continue
            key = f"{city}{_SCOPE_SEPARATOR}{value}" if name in CITY_SCOPED else value
            code = lookups[name].get(key)
            if code is None:
                values.append(math.nan)
                if name not in _SILENT_FIELDS:
                    messages.append(unseen_warning(name, value))
            else:
                values.append(code)

        text = clean_text(row.get("description"))
        if self.type_words:
            text = f"{text or ''} {request_type or ''}"
        values.extend(hash_text_row(text, self.n_text_buckets))

        keys = row_keys(row, self.type_department_)
        if snapshot is None:
            spec = self.workload_spec()
            values.extend([math.nan] * len(spec.feature_names()))
            messages.append("no workload snapshot loaded: workload features missing")
        else:
            snapshot_day = snapshot.days.get(city)
            if snapshot_day is not None and snapshot_day != wall // DAY_US:
                # Another day's queue is not this request's: unknown, never silently the wrong numbers.
                values.extend([math.nan] * len(snapshot.spec.feature_names()))
                messages.append(
                    f"workload snapshot is from another day than the request ({iso_day(snapshot_day)}): "
                    "workload features missing"
                )
            else:
                for level in LEVELS:
                    values.extend(snapshot.values(city, level, keys[level]))
            if snapshot_day is None:
                messages.append(f"no workload snapshot for city {city!r}: workload features missing")
        if self.router_ is not None:
            values.extend(self.router_.row(row))
        if warnings is not None:
            warnings.append(messages)
        return values

    # --- state -----------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The fitted state as plain JSON-serialisable data (parameters, vocabularies, department map)."""
        check_is_fitted(self, "vocabularies_")
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in self.get_params().items()}
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "params": params,
            "vocabularies_": {name: list(values) for name, values in self.vocabularies_.items()},
            "type_department_": {city: dict(m) for city, m in self.type_department_.items()},
            "feature_names_": list(self.feature_names_),
            "categorical_features_": list(self.categorical_features_),
            "n_rows_fit_": int(self.n_rows_fit_),
            "router_": self.router_.to_dict() if self.router_ is not None else None,
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> FeaturePipeline:
        """Rebuild a fitted pipeline from `to_dict` output (e.g. after a JSON round trip)."""
        version = state.get("version")
        if state.get("format") != STATE_FORMAT or version not in _COMPATIBLE_VERSIONS:
            raise ValueError(f"not a feature pipeline state (format {state.get('format')!r}, v{version})")
        params = _COMPATIBLE_VERSIONS[version] | dict(state["params"])
        params["intake_windows_days"] = tuple(params["intake_windows_days"])
        pipeline = cls(**params)
        pipeline.vocabularies_ = {name: list(values) for name, values in state["vocabularies_"].items()}
        pipeline.type_department_ = {city: dict(m) for city, m in state["type_department_"].items()}
        pipeline.feature_names_ = list(state["feature_names_"])
        pipeline.categorical_features_ = [int(i) for i in state["categorical_features_"]]
        pipeline.n_rows_fit_ = int(state["n_rows_fit_"])
        router = state.get("router_")
        pipeline.router_ = TextRouter.from_dict(router) if router else None
        if pipeline.feature_names_ != pipeline._feature_names():
            raise ValueError("feature pipeline state: feature names do not match its parameters")
        return pipeline

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FeaturePipeline:
        return cls.from_dict(json.loads(text))


# --- helpers of the vectorised path --------------------------------------------------------------------


@dataclass
class _Field:
    """One categorical field of many rows: a code per row (-1 = missing) into `keys` (the vocabulary key
    of each distinct value) and `shown` (the value a warning names)."""

    codes: np.ndarray
    keys: list[Any]
    shown: list[Any]


def _scoped_field(cities: CityCodes, codes: np.ndarray, labels: list[str]) -> _Field:
    """A city-scoped field: keys 'city|value', each distinct (city, value) pair formatted once."""
    valid = codes >= 0
    width = max(len(labels), 1)
    combined = cities.codes[valid].astype(np.int64) * width + codes[valid]
    dense, uniques = pd.factorize(combined)
    out = np.full(len(codes), -1, dtype=np.int64)
    out[valid] = dense
    pairs = [(cities.labels[int(u) // width], labels[int(u) % width]) for u in uniques]
    return _Field(out, [f"{city}{_SCOPE_SEPARATOR}{value}" for city, value in pairs], [value for _, value in pairs])


def _department_field(
    request_type: _Field, type_department: Mapping[str, Mapping[str, str]], nearest: NearestType | None = None
) -> _Field:
    """The usual department of each row's (city, type), coded within its city; for a type the map does not
    know, its nearest known type's department (when `nearest` is given); -1 where neither gives one."""
    keys: list[str] = []
    index: dict[str, int] = {}
    code_of_type = np.full(len(request_type.keys) + 1, -1, dtype=np.int64)
    for i, key in enumerate(request_type.keys):
        city, value = key.split(_SCOPE_SEPARATOR, 1)
        department = type_department.get(city, {}).get(value)
        if department is None and nearest is not None:
            department = nearest.department(city, value)
        if department is None:
            continue
        scoped = f"{city}{_SCOPE_SEPARATOR}{department}"
        code_of_type[i] = index.setdefault(scoped, len(keys))
        if code_of_type[i] == len(keys):
            keys.append(scoped)
    return _Field(code_of_type[request_type.codes], keys, [k.split(_SCOPE_SEPARATOR, 1)[1] for k in keys])
