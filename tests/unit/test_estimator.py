"""The service's estimation logic in-process: answer shape, parity with offline scoring, batch = one by one,
JSON strings = training-time categoricals, warnings, the resident's sentence, request validation, Open311."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from features.pipeline import FeaturePipeline
from models.bundle import FastPredict, horizon_key, predict_department, predict_time_to_close, quantile_key
from serving.estimator import Estimator, Versions, resident_message, warning_kind
from serving.open311 import field_errors, to_georeport, to_intake
from serving.schemas import MAX_BATCH, EstimateBatchRequest, EstimateRequest


@pytest.fixture(scope="module")
def trained(tiny_model: dict[str, Any]) -> dict[str, Any]:
    """The session's tiny model (tests/conftest.py): these tests check the answer's shape and parity, not quality."""
    return tiny_model


@pytest.fixture(scope="module")
def estimator(trained: dict[str, Any]) -> Estimator:
    bundles = trained["bundles"]
    return Estimator(bundles["time_to_close"], bundles["department"], trained["snapshot"], Versions("3", "4"))


def sample_rows(trained: dict[str, Any], n: int = 40) -> list[dict[str, Any]]:
    """Intake rows as a JSON client sends them: strings, ISO timestamps with an offset, numbers."""
    frame = trained["records"].tail(n)
    rows = []
    for record in frame.to_dict("records"):
        row = {
            key: (None if pd.isna(record[key]) else record[key])
            for key in (
                "request_type",
                "source",
                "description",
                "latitude",
                "longitude",
                "zip_code",
                "council_district",
                "neighborhood",
            )
        }
        row["created_at"] = record["created_at"].tz_convert("America/Los_Angeles").isoformat()
        rows.append(EstimateRequest.model_validate(row).model_dump())
    return rows


def test_answer_has_every_contract_key(estimator: Estimator, trained: dict[str, Any]) -> None:
    answer = estimator.estimate(sample_rows(trained, 5))
    assert len(answer) == 5
    for item in answer:
        assert {"expected_close_at", "hours", "p_closed_within", "department", "message", "model", "warnings"} <= set(
            item
        )
        hours = item["hours"]
        assert 0 <= hours["p10"] <= hours["p50"] <= hours["p90"]
        assert list(item["p_closed_within"]) == ["1d", "3d", "7d", "30d"]
        closed = list(item["p_closed_within"].values())
        assert all(0 <= p <= 1 for p in closed) and closed == sorted(closed)
        top = item["department"]["top"]
        assert len(top) == 3 and [t["probability"] for t in top] == sorted(
            (t["probability"] for t in top), reverse=True
        )
        assert item["department"]["name"] == top[0]["name"]
        assert item["model"] == {"time_to_close_version": "3", "department_version": "4"}
        expected = dt.datetime.fromisoformat(item["expected_close_at"])
        assert expected.utcoffset() in (dt.timedelta(hours=-7), dt.timedelta(hours=-8))  # Los Angeles time


def test_expected_close_is_created_plus_p50(estimator: Estimator, trained: dict[str, Any]) -> None:
    row = sample_rows(trained, 1)[0]
    item = estimator.estimate([row])[0]
    expected = dt.datetime.fromisoformat(item["expected_close_at"])
    delta = expected - row["created_at"]
    assert abs(delta.total_seconds() / 3600 - item["hours"]["p50"]) < 1 / 3600


def test_numbers_equal_offline_scoring(estimator: Estimator, trained: dict[str, Any]) -> None:
    """The service's numbers are exactly bundle.predict_* on the pipeline's features: nothing added on top."""
    rows = sample_rows(trained)
    bundles = trained["bundles"]
    pipeline = FeaturePipeline.from_dict(bundles["time_to_close"].pipeline)
    matrix = pipeline.transform_rows(rows, pipeline.load_snapshot(trained["snapshot"]))
    times = predict_time_to_close(bundles["time_to_close"], matrix)
    probabilities = predict_department(bundles["department"], matrix)
    classes = bundles["department"].metadata["classes"]
    answer = estimator.estimate(rows)
    for i, item in enumerate(answer):
        assert item["hours"]["p50"] == times[quantile_key(0.5)][i]
        assert item["hours"]["p90"] == times[quantile_key(0.9)][i]
        assert item["p_closed_within"]["7d"] == times[horizon_key(7)][i]
        assert item["department"]["name"] == classes[int(np.argmax(probabilities[i]))]
        assert item["department"]["probability"] == probabilities[i].max()


def test_fast_predict_equals_booster_predict_bit_for_bit(trained: dict[str, Any]) -> None:
    """The serving path's direct C call gives Booster.predict's numbers exactly, one row or many."""
    bundles = trained["bundles"]
    pipeline = FeaturePipeline.from_dict(bundles["time_to_close"].pipeline)
    matrix = pipeline.transform_rows(sample_rows(trained, 200), pipeline.load_snapshot(trained["snapshot"]))
    for bundle in bundles.values():
        for name, booster in bundle.boosters.items():
            raw = bundle.kind == "department"
            fast = FastPredict(booster, raw_score=raw)
            assert fast.check(matrix), name  # the fast path is really in use here
            for rows in [*(matrix[i : i + 1] for i in range(50)), matrix[:64], matrix]:
                assert np.array_equal(fast(rows), booster.predict(rows, raw_score=raw)), name
    assert not FastPredict(booster, raw_score=True).check(matrix[:, :-1])  # a wrong shape: the public path


def test_fast_predict_single_rows_from_many_threads_at_once(trained: dict[str, Any]) -> None:
    """One single-row predictor per thread: concurrent callers never see each other's numbers."""
    from concurrent.futures import ThreadPoolExecutor

    bundles = trained["bundles"]
    pipeline = FeaturePipeline.from_dict(bundles["time_to_close"].pipeline)
    matrix = pipeline.transform_rows(sample_rows(trained, 100), pipeline.load_snapshot(trained["snapshot"]))
    booster = bundles["department"].boosters["department"]
    fast = FastPredict(booster, raw_score=True)
    assert fast.check(matrix)
    expected = booster.predict(matrix, raw_score=True)

    def run(offset: int) -> bool:
        order = np.roll(np.arange(len(matrix)), offset * 17)
        return all(np.array_equal(fast(matrix[i : i + 1])[0], expected[i]) for _ in range(5) for i in order)

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(run, range(8)))


def test_batch_equals_one_by_one(estimator: Estimator, trained: dict[str, Any]) -> None:
    rows = sample_rows(trained, 25)
    assert estimator.estimate(rows) == [estimator.estimate([row])[0] for row in rows]


def test_json_strings_equal_training_time_categoricals(estimator: Estimator, trained: dict[str, Any]) -> None:
    """The bulk path (pandas, category dtype as in training) and the JSON path build the same matrix."""
    rows = sample_rows(trained, 30)
    pipeline = estimator.time_pipeline
    from_rows = pipeline.transform_rows(rows, estimator.snapshot)
    frame = pd.DataFrame(rows)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    for column in ("request_type", "source", "zip_code", "council_district", "neighborhood", "city"):
        frame[column] = frame[column].astype("category")
    workload_columns = [name for name in pipeline.feature_names_ if name.startswith("wl_")]
    positions = [pipeline.feature_names_.index(name) for name in workload_columns]
    workload = pd.DataFrame(from_rows[:, positions], columns=workload_columns)
    bulk = pipeline.transform(frame, workload).values
    np.testing.assert_array_equal(bulk, from_rows)


def test_unknown_values_become_missing_with_a_named_warning(estimator: Estimator) -> None:
    created = dt.datetime(2024, 2, 20, 10, tzinfo=dt.UTC)
    base = {"request_type": "Bulky Items", "created_at": created, "city": "la"}
    unknown = {**base, "request_type": "Dragon Removal", "neighborhood": "Atlantis"}
    missing = {**base, "request_type": None}
    answers = estimator.estimate([unknown, missing])
    assert any("Dragon Removal" in w and "request_type" in w for w in answers[0]["warnings"])
    assert any("Atlantis" in w for w in answers[0]["warnings"])
    pipeline = estimator.time_pipeline
    matrix = pipeline.transform_rows([unknown, missing], estimator.snapshot)
    column = pipeline.feature_names_.index("request_type")
    assert np.isnan(matrix[0, column]) and np.isnan(matrix[1, column])  # unknown = missing for the category
    kinds = {warning_kind(w) for w in answers[0]["warnings"]}
    assert {"unseen_request_type", "unseen_neighborhood"} <= kinds


def test_missing_created_at_means_now(estimator: Estimator) -> None:
    now = dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC)
    item = estimator.estimate([{"request_type": "Bulky Items"}], now=now)[0]
    expected = dt.datetime.fromisoformat(item["expected_close_at"])
    assert abs((expected - now).total_seconds() / 3600 - item["hours"]["p50"]) < 1 / 3600


def test_resident_message_reads_plainly() -> None:
    created = dt.datetime(2025, 3, 10, 9, tzinfo=dt.timezone(dt.timedelta(hours=-7)))
    expected = created + dt.timedelta(hours=100)
    text = resident_message({"p10": 50.0, "p50": 100.0, "p90": 115.0}, created, expected)
    assert text == "Most requests like yours are completed in 2 to 5 days; we expect yours by Friday, March 14."
    short = resident_message({"p10": 2.2, "p50": 4.0, "p90": 9.5}, created, created + dt.timedelta(hours=4))
    assert short == (
        "Most requests like yours are completed in 2 to 10 hours; we expect yours by later today, Monday, March 10."
    )
    new_year = dt.datetime(2025, 12, 30, 9, tzinfo=dt.UTC)
    assert "January 2, 2026" in resident_message(
        {"p10": 30.0, "p50": 72.0, "p90": 90.0}, new_year, new_year + dt.timedelta(hours=72)
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"created_at": "2024-03-01T10:00:00"}, "created_at"),  # no offset
        ({"created_at": "2999-01-01T00:00:00Z"}, "created_at"),  # far in the future
        ({"latitude": 91.0}, "latitude"),
        ({"longitude": -181}, "longitude"),
        ({"description": "x" * 4001}, "description"),
        ({"latitude": "north"}, "latitude"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_request_model_names_the_bad_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        EstimateRequest.model_validate(body)
    assert [e["loc"][0] for e in error.value.errors()] == [field]


def test_request_model_accepts_numbers_for_codes_and_caps_batches() -> None:
    request = EstimateRequest.model_validate({"council_district": 5, "zip_code": 90012})
    assert (request.council_district, request.zip_code) == ("5", "90012")
    EstimateBatchRequest.model_validate({"requests": [{}] * MAX_BATCH})
    with pytest.raises(ValidationError) as error:
        EstimateBatchRequest.model_validate({"requests": [{}] * (MAX_BATCH + 1)})
    assert error.value.errors()[0]["loc"] == ("requests",)


def test_open311_fields_map_onto_the_intake_schema(estimator: Estimator) -> None:
    intake = to_intake(
        {
            "service_code": "Graffiti Removal",
            "lat": "34.05",
            "long": "-118.25",
            "address_string": "200 N Spring St, Los Angeles, CA 90012",
            "requested_datetime": "2024-02-20T09:00:00-08:00",
            "email": "resident@example.org",
        }
    )
    assert intake.request_type == "Graffiti Removal" and intake.zip_code == "90012"
    assert intake.latitude == 34.05 and intake.created_at.utcoffset() == dt.timedelta(hours=-8)
    named = to_intake({"service_code": "GR-1", "service_name": "Graffiti Removal"})
    assert named.request_type == "Graffiti Removal"
    answer = to_georeport(estimator.estimate([intake.model_dump()])[0])
    assert set(answer[0]) >= {"expected_datetime", "agency_responsible", "service_notice", "service_request_id"}
    with pytest.raises(ValidationError) as error:
        to_intake({"lat": 123, "requested_datetime": "yesterday"})
    fields = {e["field"] for e in field_errors(error.value)}
    assert fields == {"lat", "requested_datetime"}
