"""Compiled boosters (lleaves): bit-for-bit equal to LightGBM for every kind of booster we train, cached by
content and CPU, and never used when they could change a number."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from models import compiled
from models.bundle import ModelBundle, predict_department, predict_time_to_close
from serving.estimator import Estimator, Versions

pytestmark = pytest.mark.skipif(not compiled.available(), reason="lleaves is not installed")


@pytest.fixture(scope="module")
def saved(tiny_model: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The session's tiny bundles (40 rounds: more than one 34-tree block), saved, and their feature matrix."""
    result = tiny_model["result"]
    root = tmp_path_factory.mktemp("bundles")
    dirs = {kind: bundle.save(root / kind) for kind, bundle in result.bundles.items()}
    matrix = np.ascontiguousarray(result.prepared.features.values[-700:], dtype=np.float64)
    return {"dirs": dirs, "matrix": matrix, "snapshot": tiny_model["snapshot"], "records": tiny_model["records"]}


@pytest.fixture(scope="module")
def cache(saved: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("compiled")
    summary = compiled.ensure_compiled(saved["dirs"].values(), folder, jobs=2)
    assert summary.compiled == 8 and summary.cached == 0  # 3 quantiles, 4 horizons, 1 department
    return folder


# Compiling the eight boosters takes most of a minute: the tests that need them are outside the fast tier.
@pytest.mark.slow
def test_compiled_raw_scores_equal_lightgbm_bit_for_bit(saved: dict[str, Any], cache: Path) -> None:
    matrix = saved["matrix"]
    for folder in saved["dirs"].values():
        for name, path in compiled.booster_files(folder).items():
            booster = lgb.Booster(model_file=str(path))
            predict = compiled.load_compiled(path, cache)
            assert predict is not None, name
            expected = np.asarray(booster.predict(matrix, raw_score=True)).reshape(len(matrix), -1)
            # 700 rows take the threaded path, one row the single-call path.
            assert np.array_equal(predict(matrix).reshape(len(matrix), -1), expected), name
            assert np.array_equal(predict(matrix[:1]).reshape(1, -1), expected[:1]), name


@pytest.mark.slow
def test_lleaves_default_block_sums_would_not_be_bit_exact(saved: dict[str, Any], tmp_path: Path) -> None:
    """Why the code generator is patched: lleaves as shipped adds per-block sums (a different order)."""
    import lleaves

    path = compiled.booster_files(saved["dirs"]["department"])["department"]
    text = tmp_path / "model.txt"
    text.write_text(compiled.compilable_text(path.read_text()))
    model = lleaves.Model(model_file=str(text))
    model.compile(raw_score=True, fblocksize=3)
    booster = lgb.Booster(model_file=str(path))
    probe = compiled.probe_matrix(booster, rows=2000)
    shipped = model.predict(probe, n_jobs=1).reshape(len(probe), -1)
    expected = np.asarray(booster.predict(probe, raw_score=True)).reshape(len(probe), -1)
    assert np.allclose(shipped, expected, rtol=0, atol=1e-9)
    assert not np.array_equal(shipped, expected)


@pytest.mark.slow
def test_cache_is_reused_and_keyed_by_content(saved: dict[str, Any], cache: Path, tmp_path: Path) -> None:
    again = compiled.ensure_compiled(saved["dirs"].values(), cache)
    assert again.compiled == 0 and again.cached == 8
    path = compiled.booster_files(saved["dirs"]["time_to_close"])["q50"]
    changed = tmp_path / "q50.txt"
    changed.write_bytes(path.read_bytes().replace(b"shrinkage=", b"shrinkage=", 1) + b"\n")
    assert compiled.load_compiled(changed, cache) is None  # a different text is a different model


@pytest.mark.slow
def test_bundle_predictions_are_identical_with_and_without_compiled_boosters(
    saved: dict[str, Any], cache: Path
) -> None:
    matrix = saved["matrix"]
    plain = {kind: ModelBundle.load(folder) for kind, folder in saved["dirs"].items()}
    fast = {kind: ModelBundle.load(folder) for kind, folder in saved["dirs"].items()}
    for kind, folder in saved["dirs"].items():
        assert compiled.attach_compiled(fast[kind], folder, cache)
    assert "compiled" not in plain["time_to_close"].cache
    times_plain = predict_time_to_close(plain["time_to_close"], matrix)
    times_fast = predict_time_to_close(fast["time_to_close"], matrix)
    assert times_plain.keys() == times_fast.keys()
    for key in times_plain:
        assert np.array_equal(times_plain[key], times_fast[key]), key
    assert np.array_equal(
        predict_department(plain["department"], matrix), predict_department(fast["department"], matrix)
    )

    rows = [{"request_type": t, "created_at": "2024-02-10T09:30:00-08:00"} for t in ("Graffiti Removal", None, "x")]
    # 700 real-shaped rows: large enough for the compiled boosters' threaded path.
    rows += [
        {
            "request_type": record["request_type"],
            "source": record["source"],
            "description": record["description"],
            "latitude": None if np.isnan(record["latitude"]) else record["latitude"],
            "longitude": None if np.isnan(record["longitude"]) else record["longitude"],
            "created_at": record["created_at"].isoformat(),
        }
        for record in saved["records"].tail(700).to_dict("records")
    ]
    estimators = [
        Estimator(b["time_to_close"], b["department"], saved["snapshot"], Versions("1", "1")) for b in (plain, fast)
    ]
    now = dt.datetime(2024, 2, 15, tzinfo=dt.UTC)
    answers = [estimator.estimate(rows, now=now) for estimator in estimators]
    assert answers[0] == answers[1]
    assert (
        answers[1][3:]
        == [answer for row in rows[3:6] for answer in estimators[1].estimate([row], now=now)] + answers[1][6:]
    )


@pytest.mark.slow
def test_attach_refuses_a_missing_cache_and_code_that_differs(
    saved: dict[str, Any], cache: Path, tmp_path: Path
) -> None:
    folder = saved["dirs"]["department"]
    bundle = ModelBundle.load(folder)
    assert not compiled.attach_compiled(bundle, folder, tmp_path / "empty")
    assert "compiled" not in bundle.cache

    # Plant another booster's object under this booster's key: the bit-for-bit check must refuse it.
    path = compiled.booster_files(folder)["department"]
    key = compiled.cache_key(path.read_bytes(), compiled.host_target())
    other = compiled.booster_files(saved["dirs"]["time_to_close"])["h1d"]
    other_key = compiled.cache_key(other.read_bytes(), compiled.host_target())
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / f"{key}.o").write_bytes((cache / f"{other_key}.o").read_bytes())
    (forged / f"{key}.txt").write_text(compiled.compilable_text(path.read_text()))
    assert not compiled.attach_compiled(bundle, folder, forged)
    assert "compiled" not in bundle.cache


def test_compilable_text_adds_an_identity_objective_only_when_missing() -> None:
    text = "tree\nversion=v4\nnum_class=1\nmax_feature_idx=1\nfeature_names=a b\n"
    assert "\nobjective=regression\nfeature_names=a b" in compiled.compilable_text(text)
    with_objective = "tree\nobjective=binary sigmoid:1\nfeature_names=a b\n"
    assert compiled.compilable_text(with_objective) == with_objective
    with pytest.raises(ValueError, match="feature_names"):
        compiled.compilable_text("not a model")
