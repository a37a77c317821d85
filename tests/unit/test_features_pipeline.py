"""FeaturePipeline: the estimator contract, unseen categories, bulk/per-request parity, JSON state,
invariances and no leakage of outcomes."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import HashingVectorizer

from features.geo import clean_coordinates, grid_cell_row, grid_cells
from features.pipeline import CATEGORICAL_FIELDS, OUTSIDE_CITY_WARNING, FeatureMatrix, FeaturePipeline
from features.schema import INTAKE_COLUMNS, IntakeRequest, city_timezone, conform
from features.text import hash_text_row, hash_texts

OUTCOMES = ["closed_at", "status", "department"]
SNAPSHOT_DAY = "2024-03-20"


def synthetic(n: int = 2500, seed: int = 0) -> pd.DataFrame:
    """Three cities over ~45 days (across the DST switch), with text, places and every kind of outcome."""
    rng = np.random.default_rng(seed)
    created = pd.Timestamp("2024-02-15", tz="UTC").value // 1000 + np.sort(rng.integers(0, 45 * 86_400_000_000, n))
    city = rng.choice(np.array(["la", "nyc", "chicago"], dtype=object), n, p=[0.6, 0.25, 0.15])
    kind = rng.integers(0, 6, n)
    types = np.array(["Bulky Items", "Graffiti", "Pothole", "Dead Animal", "Streetlight", None], dtype=object)
    departments = np.array(["Sanitation", "Sanitation", "Streets", "Animal Services", "Lighting", None], dtype=object)
    hours = np.exp(rng.normal(1.0 + 0.5 * kind, 1.0, n))
    status = rng.choice(np.array(["closed", "open", "cancelled", "referred"]), n, p=[0.8, 0.12, 0.06, 0.02])
    closed = np.where(status == "open", np.nan, created + hours * 3.6e9)
    centre = {"la": (34.05, -118.25), "nyc": (40.71, -73.95), "chicago": (41.85, -87.7)}
    lat = np.array([centre[c][0] for c in city]) + rng.normal(0, 0.03, n)
    lon = np.array([centre[c][1] for c in city]) + rng.normal(0, 0.03, n)
    lat[rng.random(n) < 0.05] = np.nan
    phrases = np.array(["couch on the sidewalk", "graffiti on wall", "big pothole", "dead cat", "", None], dtype=object)
    frame = pd.DataFrame(
        {
            "request_id": [f"id-{i}" for i in range(n)],
            "city": city,
            "created_at": pd.to_datetime(created, unit="us", utc=True),
            "request_type": types[kind],
            "source": rng.choice(np.array(["phone", "web", "mobile_app", None], dtype=object), n),
            "description": phrases[rng.integers(0, len(phrases), n)],
            "latitude": lat,
            "longitude": lon,
            "zip_code": rng.choice(np.array(["90012", "10001", "60601", None], dtype=object), n),
            "council_district": rng.choice(np.array(["1", "2", "3", None], dtype=object), n),
            "neighborhood": rng.choice(np.array(["Downtown", "Harbor", None], dtype=object), n),
            "closed_at": pd.to_datetime(closed, unit="us", utc=True),
            "status": status,
            "department": departments[kind],
            "source_row": np.arange(n),
        }
    )
    return conform(frame)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic()


@pytest.fixture(scope="module")
def pipeline(frame: pd.DataFrame) -> FeaturePipeline:
    return FeaturePipeline(n_text_buckets=16).fit(frame)


def intake_rows(frame: pd.DataFrame) -> list[dict]:
    """Rows as the service receives them: validated intake requests, outcomes absent by construction."""
    out = []
    for record in frame[list(INTAKE_COLUMNS)].to_dict("records"):
        clean = {k: (None if not isinstance(v, pd.Timestamp) and pd.isna(v) else v) for k, v in record.items()}
        out.append(IntakeRequest(**clean).model_dump())
    return out


def local_day(frame: pd.DataFrame) -> np.ndarray:
    return np.array(
        [
            ts.tz_convert(city_timezone(c)).date().isoformat()
            for ts, c in zip(frame["created_at"], frame["city"], strict=True)
        ]
    )


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    assert np.array_equal(a, b, equal_nan=True)


# --- estimator contract ---------------------------------------------------------------------------------


def test_init_only_stores_parameters() -> None:
    pipe = FeaturePipeline(n_text_buckets=8, intake_windows_days=(3, 14))
    assert pipe.get_params()["n_text_buckets"] == 8
    assert not [k for k in vars(pipe) if k.endswith("_")]
    assert clone(pipe).get_params() == pipe.get_params()


def test_fit_returns_self_and_learns_underscore_attributes(frame: pd.DataFrame) -> None:
    pipe = FeaturePipeline()
    assert pipe.fit(frame) is pipe
    assert set(pipe.vocabularies_) == set(CATEGORICAL_FIELDS)
    assert pipe.type_department_["la"]["Graffiti"] == "Sanitation"
    assert [pipe.feature_names_[i] for i in pipe.categorical_features_] == list(CATEGORICAL_FIELDS)


def test_transforms_need_a_fitted_pipeline(frame: pd.DataFrame) -> None:
    with pytest.raises(NotFittedError):
        FeaturePipeline().transform(frame)
    with pytest.raises(NotFittedError):
        FeaturePipeline().transform_rows([{"city": "la"}], None)


def test_transform_is_pure_and_repeatable(pipeline: FeaturePipeline, frame: pd.DataFrame) -> None:
    before = frame.copy()
    first = pipeline.transform(frame)
    second = pipeline.transform(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert_same(first.values, second.values)
    assert isinstance(first, FeatureMatrix)
    assert first.values.dtype == np.float64 and first.values.shape == (len(frame), len(pipeline.feature_names_))
    assert first.feature_names == pipeline.feature_names_
    codes = first.values[:, pipeline.categorical_features_]
    assert np.all(np.isnan(codes) | (codes == np.round(codes)) & (codes >= 0))


def test_explicit_workload_frame_gives_the_same_matrix(pipeline: FeaturePipeline, frame: pd.DataFrame) -> None:
    from features.workload import workload_features

    workload = workload_features(frame, pipeline.type_department_, pipeline.workload_spec())
    assert_same(pipeline.transform(frame, workload).values, pipeline.transform(frame).values)
    with pytest.raises(ValueError, match="rows"):
        pipeline.transform(frame, workload.iloc[:10])


def test_empty_frame(pipeline: FeaturePipeline, frame: pd.DataFrame) -> None:
    assert pipeline.transform(frame.iloc[:0]).values.shape == (0, len(pipeline.feature_names_))


# --- unseen categories -----------------------------------------------------------------------------------


def test_unseen_categories_become_missing_with_a_warning(pipeline: FeaturePipeline, frame: pd.DataFrame) -> None:
    new = frame.iloc[:3].copy()
    new["request_type"] = pd.array(["Flying Saucer", "Graffiti", None], dtype="str")
    new["source"] = pd.array(["carrier pigeon", "web", "web"], dtype="str")
    matrix = pipeline.transform(new)
    col = {name: i for i, name in enumerate(matrix.feature_names)}
    assert math.isnan(matrix.values[0, col["request_type"]]) and not math.isnan(matrix.values[1, col["request_type"]])
    assert math.isnan(matrix.values[0, col["type_department"]])
    assert math.isnan(matrix.values[2, col["request_type"]])  # missing: NaN, no warning
    assert any("'Flying Saucer'" in w for w in matrix.warnings[0])
    assert any("'carrier pigeon'" in w for w in matrix.warnings[0])
    assert not [w for w in matrix.warnings.get(2, []) if "request_type" in w]
    assert matrix.warning_counts()["request_type"] == 1
    # The per-request path says the same.
    served: list[list[str]] = []
    rows = pipeline.transform_rows(intake_rows(new), None, warnings=served)
    assert np.isnan(rows[0, col["request_type"]])
    assert [w for w in served[0] if w.startswith("unseen")] == matrix.warnings[0]


def test_request_type_is_coded_within_its_city(pipeline: FeaturePipeline) -> None:
    assert "la|Graffiti" in pipeline.vocabularies_["request_type"]
    assert "nyc|Graffiti" in pipeline.vocabularies_["request_type"]


def test_out_of_city_location_is_ignored_with_a_warning(pipeline: FeaturePipeline, frame: pd.DataFrame) -> None:
    row = frame.iloc[[0]].copy()
    row["city"] = pd.array(["la"], dtype="str")
    row["latitude"], row["longitude"] = 0.0, 0.0
    matrix = pipeline.transform(row)
    assert np.isnan(matrix.values[0, :2]).all()
    assert matrix.warnings[0][0] == OUTSIDE_CITY_WARNING
    served: list[list[str]] = []
    assert_same(pipeline.transform_rows(intake_rows(row), None, warnings=served)[:, :2], matrix.values[:, :2])
    assert served[0][0] == OUTSIDE_CITY_WARNING


# --- parity: bulk vs per request -------------------------------------------------------------------------


def test_transform_rows_equals_transform_on_the_snapshot_day(pipeline: FeaturePipeline, frame: pd.DataFrame) -> None:
    bulk = pipeline.transform(frame)
    snapshot = pipeline.load_snapshot(pipeline.workload_snapshot(frame, pd.Timestamp(f"{SNAPSHOT_DAY}T20:00:00Z")))
    on_day = np.flatnonzero(local_day(frame) == SNAPSHOT_DAY)
    assert len(on_day) > 20
    warnings: list[list[str]] = []
    served = pipeline.transform_rows(intake_rows(frame.iloc[on_day]), snapshot, warnings=warnings)
    assert_same(served, bulk.values[on_day])
    assert warnings == [bulk.warnings.get(int(i), []) for i in on_day]
    # A batch is the same as one request at a time.
    one_by_one = np.vstack([pipeline.transform_rows([row], snapshot) for row in intake_rows(frame.iloc[on_day[:8]])])
    assert_same(one_by_one, served[:8])


def test_serving_notes_for_missing_or_stale_snapshots(pipeline: FeaturePipeline, frame: pd.DataFrame) -> None:
    rows = intake_rows(frame.iloc[np.flatnonzero(local_day(frame) == SNAPSHOT_DAY)[:1]])
    workload = [i for i, name in enumerate(pipeline.feature_names_) if name.startswith("wl_")]
    notes: list[list[str]] = []
    values = pipeline.transform_rows(rows, None, warnings=notes)
    assert np.isnan(values[0, workload]).all() and "no workload snapshot" in notes[0][-1]
    stale = pipeline.load_snapshot(pipeline.workload_snapshot(frame, pd.Timestamp("2024-03-10T20:00:00Z")))
    notes = []
    values = pipeline.transform_rows(rows, stale, warnings=notes)
    assert "another day" in notes[0][-1]
    assert np.isnan(values[0, workload]).all()  # never another day's numbers
    elsewhere = dict(rows[0], city="boston", latitude=None, longitude=None)
    notes = []
    values = pipeline.transform_rows([elsewhere], stale, warnings=notes)
    assert np.isnan(values[0, workload]).all()
    assert any("no workload snapshot for city 'boston'" in n for n in notes[0])
    assert any("unseen city 'boston'" in n for n in notes[0])


def test_snapshot_frame_is_accepted_directly(pipeline: FeaturePipeline, frame: pd.DataFrame) -> None:
    table = pipeline.workload_snapshot(frame, pd.Timestamp(f"{SNAPSHOT_DAY}T20:00:00Z"))
    rows = intake_rows(frame.iloc[-3:])
    assert_same(pipeline.transform_rows(rows, table), pipeline.transform_rows(rows, pipeline.load_snapshot(table)))


# --- state ---------------------------------------------------------------------------------------------


def test_json_round_trip_gives_identical_features(pipeline: FeaturePipeline, frame: pd.DataFrame) -> None:
    text = json.dumps(pipeline.to_dict())
    restored = FeaturePipeline.from_dict(json.loads(text))
    assert restored.get_params() == pipeline.get_params()
    assert restored.feature_names_ == pipeline.feature_names_
    assert_same(restored.transform(frame).values, pipeline.transform(frame).values)
    rows = intake_rows(frame.iloc[-5:])
    assert_same(restored.transform_rows(rows, None), pipeline.transform_rows(rows, None))
    assert FeaturePipeline.from_json(pipeline.to_json()).vocabularies_ == pipeline.vocabularies_


def test_from_dict_rejects_foreign_state(pipeline: FeaturePipeline) -> None:
    with pytest.raises(ValueError, match="not a feature pipeline"):
        FeaturePipeline.from_dict({"format": "something else"})
    state = pipeline.to_dict()
    state["feature_names_"] = state["feature_names_"][:-1]
    with pytest.raises(ValueError, match="feature names"):
        FeaturePipeline.from_dict(state)


# --- invariances and leakage -----------------------------------------------------------------------------


def test_request_id_and_row_order_do_not_change_features(pipeline: FeaturePipeline, frame: pd.DataFrame) -> None:
    order = np.random.default_rng(1).permutation(len(frame))
    shuffled = frame.iloc[order].assign(request_id=[f"other-{i}" for i in range(len(frame))])
    assert_same(pipeline.transform(shuffled).values, pipeline.transform(frame).values[order])
    refit = FeaturePipeline(n_text_buckets=16).fit(shuffled)
    assert refit.to_dict() == pipeline.to_dict()


def test_outcomes_from_day_d_on_never_reach_earlier_features(pipeline: FeaturePipeline, frame: pd.DataFrame) -> None:
    cut = pd.Timestamp("2024-03-10T08:00:00Z")  # midnight in LA
    later = (frame["created_at"] >= cut).to_numpy()
    rng = np.random.default_rng(2)
    altered = frame.copy()
    for column in OUTCOMES:
        values = altered[column].to_numpy(copy=True)
        values[later] = values[later][rng.permutation(later.sum())]
        altered[column] = values
    altered.loc[later, "closed_at"] = altered.loc[later, "created_at"] + pd.Timedelta(minutes=5)
    altered.loc[later & (rng.random(len(frame)) < 0.5), "status"] = "closed"
    before, after = pipeline.transform(frame).values, pipeline.transform(altered).values
    assert_same(after[~later], before[~later])
    assert not np.array_equal(after[later], before[later], equal_nan=True)  # the test can see a change


def test_a_rows_own_outcome_never_enters_its_features(pipeline: FeaturePipeline, frame: pd.DataFrame) -> None:
    base = pipeline.transform(frame).values
    for i in (100, 1500, len(frame) - 1):
        changed = frame.copy()
        changed.loc[i, "closed_at"] = changed.loc[i, "created_at"] + pd.Timedelta(days=300)
        changed.loc[i, "status"] = "referred"
        changed.loc[i, "department"] = "Somewhere Else"
        assert_same(pipeline.transform(changed).values[i], base[i])


# --- text and geo ----------------------------------------------------------------------------------------


def test_text_hashing_matches_sklearn_in_both_forms() -> None:
    texts = ["Pothole on Main St.", "ÉCOLE naïve İstanbul ß 2nd", "a b c", "", "dead dead dead cat", "x_y z-1"]
    bulk = hash_texts([*texts, None], 32)
    reference = HashingVectorizer(n_features=32, alternate_sign=False, norm=None).transform(texts).toarray()
    np.testing.assert_array_equal(bulk[:-1, 1:], reference)
    np.testing.assert_array_equal(bulk[:-1, 0], reference.sum(axis=1))
    assert not bulk[-1].any()
    for text, row in zip(texts, bulk, strict=False):
        assert hash_text_row(text, 32) == row.tolist()


def test_grid_cells_agree_and_bad_points_are_dropped() -> None:
    lat = np.array([34.0512, 34.0612, 0.0, 91.0, np.nan, 40.7])
    lon = np.array([-118.2437, -118.2437, 0.0, 10.0, -118.2, -74.0])
    clean_lat, clean_lon = clean_coordinates(lat, lon, np.array(["la", "la", "la", "xx", "la", "la"], dtype=object))
    assert np.isnan(clean_lat[2:]).all() and np.isnan(clean_lon[2:]).all()
    cells = grid_cells(clean_lat, clean_lon)
    assert cells[0] != cells[1] and (cells[2:] == -1).all()
    assert [grid_cell_row(a, b) for a, b in zip(clean_lat, clean_lon, strict=True)] == cells.tolist()


def test_an_intake_only_frame_is_accepted(pipeline: FeaturePipeline, frame: pd.DataFrame) -> None:
    from features.schema import to_frame

    requests = [IntakeRequest(**row) for row in intake_rows(frame.iloc[-4:])]
    matrix = pipeline.transform(to_frame(requests))  # no outcome columns at all: nothing earlier is known
    assert matrix.values.shape == (4, len(pipeline.feature_names_))


def test_a_missing_creation_time_is_refused(pipeline: FeaturePipeline, frame: pd.DataFrame) -> None:
    broken = frame.iloc[:3].copy()
    broken.loc[1, "created_at"] = pd.NaT
    with pytest.raises(ValueError, match="created_at"):
        pipeline.transform(broken)
