"""Why this estimate, in-process on a small trained model: TreeSHAP families that add up to the P50, reasons
in the request's language, the switches, and batch = one by one; the language choice through the estimator."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

from features.pipeline import FeaturePipeline
from ingest.synth import synthesize
from models.bundle import predict_time_to_close, quantile_key
from models.explain import FAMILIES, explain_p50, family_columns, family_of
from serving.estimator import Estimator, Versions, warning_kind
from serving.schemas import Estimate, EstimateRequest
from tests.helpers import small_specs
from training.train import train_models


@pytest.fixture(scope="module")
def trained() -> dict[str, Any]:
    records = synthesize(rows=6000, seed=5, start="2024-01-01", days=50)
    result = train_models(records, small_specs(rounds=8))
    prep = result.prepared
    snapshot = prep.pipeline.workload_snapshot(prep.records, prep.extracted_at)
    return {"records": records, "bundles": result.bundles, "snapshot": snapshot}


@pytest.fixture(scope="module")
def estimator(trained: dict[str, Any]) -> Estimator:
    bundles = trained["bundles"]
    return Estimator(bundles["time_to_close"], bundles["department"], trained["snapshot"], Versions("1", "1"))


def _rows(trained: dict[str, Any], n: int) -> list[dict[str, Any]]:
    rows = []
    for record in trained["records"].tail(n).to_dict("records"):
        row = {
            key: (None if record[key] is None or record[key] != record[key] else record[key])
            for key in ("request_type", "source", "description", "latitude", "longitude", "council_district")
        }
        row["created_at"] = record["created_at"].isoformat()
        rows.append(EstimateRequest.model_validate(row).model_dump())
    return rows


def _matrix(trained: dict[str, Any], rows: list[dict[str, Any]]) -> np.ndarray:
    pipeline = FeaturePipeline.from_dict(trained["bundles"]["time_to_close"].pipeline)
    return pipeline.transform_rows(rows, pipeline.load_snapshot(trained["snapshot"]))


def test_every_feature_has_one_family_a_resident_understands(trained: dict[str, Any]) -> None:
    names = trained["bundles"]["time_to_close"].pipeline["feature_names_"]
    columns = family_columns(names)
    assert sorted(np.concatenate(columns).tolist()) == list(range(len(names)))  # each feature exactly once
    assert {family_of(name) for name in names} == set(FAMILIES)
    assert family_of("wl_dept_backlog") == "workload" and family_of("wl_area_backlog") == "area"
    assert family_of("is_holiday") == "calendar" and family_of("source") == "channel"
    assert family_of("request_type") == family_of("text_h07") == "request_type"


def test_families_add_up_to_the_p50_minus_the_typical_request(trained: dict[str, Any]) -> None:
    """The secant conversion: family hours sum exactly to P50 - typical, with the log contributions' signs."""
    bundle = trained["bundles"]["time_to_close"]
    matrix = _matrix(trained, _rows(trained, 200))
    explained = explain_p50(bundle, matrix)
    p50 = predict_time_to_close(bundle, matrix)[quantile_key(0.5)]
    uncrossed = np.isclose(explained.p50_hours, p50, rtol=1e-12, atol=1e-9)
    assert uncrossed.mean() > 0.9  # the P50 booster's own value is the answer's P50 unless quantiles cross
    np.testing.assert_allclose(explained.typical_hours + explained.family_hours.sum(axis=1), explained.p50_hours)
    contributions = bundle.boosters[quantile_key(0.5)].predict(matrix, pred_contrib=True)
    raw = bundle.boosters[quantile_key(0.5)].predict(matrix, raw_score=True)
    np.testing.assert_allclose(contributions.sum(axis=1), raw, atol=1e-9)  # TreeSHAP is additive in log space
    log_family = np.column_stack(
        [contributions[:, c].sum(axis=1) for c in family_columns(bundle.pipeline["feature_names_"])]
    )
    moved = np.abs(explained.family_hours) > 1e-9
    assert (np.sign(explained.family_hours[moved]) == np.sign(log_family[moved])).all()
    assert np.ptp(explained.typical_hours) == 0 and explained.typical_hours[0] > 0  # one typical request


def test_estimate_explains_its_p50_in_the_request_s_language(estimator: Estimator, trained: dict[str, Any]) -> None:
    rows = _rows(trained, 30)
    answers = estimator.estimate(rows, explain=True)
    for answer in answers:
        Estimate.model_validate(answer)  # the documented response shape
        explanation = answer["explanation"]
        reasons = explanation["reasons"]
        assert len(reasons) <= 3 and answer["language"] == "en"
        sizes = [abs(r["days"]) for r in reasons]
        assert sizes == sorted(sizes, reverse=True)
        for reason in reasons:
            assert reason["family"] in FAMILIES
            sign = "+" if reason["days"] > 0 else "\u2212"
            assert f": {sign}" in reason["text"]
        total = explanation["typical_days"] + sum(r["days"] for r in reasons)
        assert total == pytest.approx(answer["hours"]["p50"] / 24, abs=0.5 + 0.2 * answer["hours"]["p50"] / 24)
    assert any(answer["explanation"]["reasons"] for answer in answers)
    korean = estimator.estimate([row | {"language": "ko"} for row in rows], explain=True)
    for english, translated in zip(answers, korean, strict=True):
        assert translated["language"] == "ko" and translated["hours"] == english["hours"]
        assert [r["days"] for r in translated["explanation"]["reasons"]] == [
            r["days"] for r in english["explanation"]["reasons"]
        ]
        for reason in translated["explanation"]["reasons"]:
            assert reason["text"].endswith("일") or reason["text"].endswith("시간")


def test_explanation_switches_and_batch_equals_one_by_one(estimator: Estimator, trained: dict[str, Any]) -> None:
    rows = _rows(trained, 12)
    assert all(a["explanation"] is None for a in estimator.estimate(rows))  # the batch default: off
    asked = [row | {"explain": i % 2 == 0} for i, row in enumerate(rows)]
    batch = estimator.estimate(asked, explain=True)
    assert [a["explanation"] is not None for a in batch] == [i % 2 == 0 for i in range(len(rows))]
    singles = [estimator.estimate([row], explain=True)[0] for row in asked]
    assert batch == singles
    off = estimator.estimate(rows[:1], explain=False)[0]
    assert {k: v for k, v in off.items() if k != "explanation"} == {
        k: v for k, v in singles[0].items() if k != "explanation"
    }


def test_language_field_header_and_unsupported(estimator: Estimator, trained: dict[str, Any]) -> None:
    row = _rows(trained, 1)[0]
    now = dt.datetime.now(dt.UTC)
    english = estimator.estimate([row], now=now)[0]
    spanish = estimator.estimate([row], now=now, accept_language="es-419,es;q=0.9")[0]
    assert spanish["language"] == "es" and spanish["message"] != english["message"]
    assert spanish["warnings"] == english["warnings"]
    armenian = estimator.estimate([row | {"language": "hy"}], now=now, accept_language="es")[0]
    assert armenian["language"] == "hy" and "։" in armenian["message"]
    unsupported = estimator.estimate([row | {"language": "tlh"}], now=now)[0]
    assert unsupported["language"] == "en" and unsupported["message"] == english["message"]
    extra = [w for w in unsupported["warnings"] if w not in english["warnings"]]
    assert len(extra) == 1 and "'tlh'" in extra[0] and warning_kind(extra[0]) == "unsupported_language"
