"""Model fitting pieces: conformal offsets, monotone ordering, temperature, bundle round trip, metrics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from models.bundle import ModelBundle, predict_department, predict_time_to_close
from training.fitting import (
    conformal_offsets,
    fit_department,
    fit_horizons,
    fit_quantiles,
    fit_temperature,
    monotone_constraints,
)
from training.metrics import classification_metrics, point_metrics, time_to_close_metrics

SPEC = {
    "quantiles": [0.1, 0.5, 0.9],
    "horizons_days": [1, 3],
    "params": {
        "n_estimators": 30,
        "learning_rate": 0.1,
        "num_leaves": 15,
        "verbose": -1,
        "seed": 1,
        "num_threads": 1,
        "min_child_samples": 10,
    },
    "horizon_params": {"n_estimators": 20, "num_leaves": 7, "verbose": -1, "seed": 1, "num_threads": 1},
}


def _data(n: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    backlog = rng.uniform(0, 100, n)
    kind = rng.integers(0, 3, n).astype(float)
    noise = rng.normal(0, 0.5, n)
    log_hours = 1.0 + 0.02 * backlog + kind + noise
    return np.column_stack([backlog, kind]), log_hours


def test_conformal_offsets_reach_the_target_coverage_on_fresh_data():
    rng = np.random.default_rng(1)
    actual = rng.normal(0, 1, 4000)
    too_narrow = np.column_stack([np.full(4000, -0.5), np.zeros(4000), np.full(4000, 0.5)])
    offsets = conformal_offsets(too_narrow[:2000], actual[:2000], 0.8)
    lo = too_narrow[2000:, 0] + offsets[0]
    hi = too_narrow[2000:, 2] + offsets[2]
    coverage = np.mean((actual[2000:] >= lo) & (actual[2000:] <= hi))
    assert coverage == pytest.approx(0.8, abs=0.03)
    assert offsets[1] == 0.0


def test_quantile_bundle_orders_quantiles_and_respects_backlog_monotonicity(tmp_path):
    matrix, log_hours = _data()
    names = ["workload_backlog_type", "type_code"]
    monotone = monotone_constraints(names, ["workload_backlog"])
    assert monotone == [1, 0]
    boosters, bases = fit_quantiles(matrix, log_hours, names, [1], SPEC, monotone)
    labels = {1: (np.expm1(log_hours) <= 24).astype(float), 3: (np.expm1(log_hours) <= 72).astype(float)}
    boosters |= fit_horizons(matrix, labels, names, [1], SPEC, monotone)
    bundle = ModelBundle("time_to_close", SPEC, {}, boosters, {"log_offsets": [-0.2, 0.0, 0.2], "log_base": bases})
    loaded = ModelBundle.load(bundle.save(tmp_path / "b"))
    out = predict_time_to_close(loaded, matrix[:500])
    assert np.all(out["q10"] <= out["q50"]) and np.all(out["q50"] <= out["q90"])
    assert np.all(out["h1d"] <= out["h3d"])
    np.testing.assert_allclose(out["q50"], predict_time_to_close(bundle, matrix[:500])["q50"])
    grid = np.column_stack([np.linspace(0, 100, 50), np.ones(50)])
    p50 = predict_time_to_close(loaded, grid)["q50"]
    assert np.all(np.diff(p50) >= -1e-9), "a bigger backlog shortened the P50"


def test_department_model_and_temperature(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 4, 2000).astype(float)
    y = np.where(rng.random(2000) < 0.9, x % 3, rng.integers(0, 3, 2000)).astype(int)
    booster = fit_department(x[:, None], y, 3, ["type_code"], [0], {"params": {"n_estimators": 20, "verbose": -1}})
    logits = booster.predict(x[:, None], raw_score=True)
    temperature = fit_temperature(logits, y)

    def log_loss(t: float) -> float:
        return float(-np.mean(np.log(softmax(logits / t, axis=1)[np.arange(len(y)), y])))

    # The log-loss minimum: no better a little either side, nor at no scaling at all.
    assert log_loss(temperature) <= min(log_loss(temperature * 1.05), log_loss(temperature / 1.05), log_loss(1.0))
    bundle = ModelBundle("department", {}, {}, {"department": booster}, {"temperature": temperature})
    probabilities = predict_department(ModelBundle.load(bundle.save(tmp_path / "d")), x[:, None])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    metrics = classification_metrics(probabilities, y)
    assert metrics["accuracy"] > 0.85 and metrics["top3_accuracy"] == 1.0


def test_metrics_on_known_values():
    hours = np.array([1.0, 10.0, 100.0])
    m = time_to_close_metrics(hours, hours / 2, hours, hours * 2)
    assert m["mae_hours"] == 0 and m["coverage_p10_p90"] == 1.0
    b = point_metrics(hours, np.array([2.0, 10.0, 10.0]))
    assert b["mae_hours"] == pytest.approx((1 + 0 + 90) / 3) and b["median_ae_hours"] == 1.0


def test_type_counts_pull_a_well_known_type_to_its_history_and_leave_unseen_types_to_the_model(tmp_path):
    """p = (counts + m * p_model) / (n_type + m): type 0 (1000 rows, all class 2) follows its history; type 1
    (two rows) mostly the model; a missing or unknown type code gets the model alone."""
    rng = np.random.default_rng(3)
    signal = rng.normal(size=600)
    x = np.column_stack([np.full(600, np.nan), signal])  # the type column excluded, as the spec can do
    y = (signal > 0).astype(int)
    params = {"params": {"n_estimators": 10, "verbose": -1}}
    booster = fit_department(x, y, 3, ["request_type", "signal"], [], params)
    pipeline = {"feature_names_": ["request_type", "signal"], "vocabularies_": {"request_type": ["a", "b"]}}
    calibration = {
        "temperature": 1.0,
        "type_counts": {"codes": [0, 1], "counts": [[0, 0, 1000], [2, 0, 0]]},
        "type_count_strength": 10.0,
    }
    bundle = ModelBundle("department", {}, pipeline, {"department": booster}, calibration, {"classes": ["x", "y", "z"]})
    bundle = ModelBundle.load(bundle.save(tmp_path / "d"))
    rows = np.array([[0.0, 2.0], [1.0, 2.0], [np.nan, 2.0], [7.0, 2.0]])
    blended = predict_department(bundle, rows)
    alone = predict_department(ModelBundle("department", {}, pipeline, {"department": booster}, {}, {}), rows)
    np.testing.assert_allclose(blended.sum(axis=1), 1.0)
    assert blended[0].argmax() == 2 and blended[0, 2] > 0.98
    np.testing.assert_allclose(blended[1], (np.array([2, 0, 0]) + 10 * alone[1]) / 12)
    np.testing.assert_allclose(blended[2:], alone[2:])


def test_capped_keeps_every_row_under_the_limit_and_a_sorted_sample_over_it():
    from training.train import capped

    spec = {"max_train_rows": 100, "params": {"seed": 7}}
    np.testing.assert_array_equal(capped(5, {"params": {}}), np.arange(5))
    np.testing.assert_array_equal(capped(5, spec), np.arange(5))
    sample = capped(1000, spec)
    assert len(sample) == 100 and len(set(sample.tolist())) == 100
    assert np.all(np.diff(sample) > 0) and sample.max() < 1000
    np.testing.assert_array_equal(sample, capped(1000, spec))  # deterministic for a seed
