"""Model behaviour: directional (backlog), invariance (request id, row order), ordering of quantiles, and
minimum quality on the real LA files when ../shared is present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingest.synth import synthesize
from models.bundle import predict_time_to_close
from models.spec import load_specs
from tests.helpers import small_specs, with_workload
from training.train import train_models

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return synthesize(rows=15_000, seed=11, start="2024-02-01", days=60)


@pytest.fixture(scope="module")
def trained(records: pd.DataFrame):
    return train_models(records, small_specs(rounds=40, threads=2))


@pytest.fixture(scope="module")
def trained_with_workload(records: pd.DataFrame):
    return train_models(records, with_workload(small_specs(rounds=40, threads=2)))


def test_a_bigger_backlog_never_shortens_the_p50(trained_with_workload) -> None:
    bundle = trained_with_workload.bundles["time_to_close"]
    features = trained_with_workload.prepared.features
    rows = features.values[trained_with_workload.prepared.test][:300].copy()
    backlog = [i for i, name in enumerate(features.feature_names) if name.endswith("_backlog")]
    assert backlog, "no backlog features found"
    splits = bundle.boosters["q50"].feature_importance("split")
    assert splits[backlog].sum() > 0, "the P50 never splits on a backlog: nothing to test"
    previous = predict_time_to_close(bundle, rows)["q50"]
    for factor in (1.5, 3.0, 10.0):
        grown = rows.copy()
        grown[:, backlog] = np.nan_to_num(rows[:, backlog], nan=0.0) * factor + 50
        current = predict_time_to_close(bundle, grown)["q50"]
        assert np.all(current >= previous - 1e-9)
        previous = current


def test_quantiles_are_ordered_even_on_odd_inputs(trained) -> None:
    bundle = trained.bundles["time_to_close"]
    rng = np.random.default_rng(0)
    matrix = trained.prepared.features.values[:500].copy()
    noise = rng.normal(0, 50, matrix.shape)
    odd = np.where(rng.random(matrix.shape) < 0.3, np.nan, matrix + noise)
    out = predict_time_to_close(bundle, odd)
    assert np.all(out["q10"] <= out["q50"]) and np.all(out["q50"] <= out["q90"])
    assert np.all((out["h1d"] <= out["h3d"]) & (out["h3d"] <= out["h7d"]) & (out["h7d"] <= out["h30d"]))


def test_request_ids_and_row_order_change_nothing(records: pd.DataFrame, trained) -> None:
    shuffled = records.sample(frac=1.0, random_state=5).reset_index(drop=True)
    shuffled = shuffled.assign(request_id=[f"other-{i}" for i in range(len(shuffled))])
    again = train_models(shuffled, small_specs(rounds=40, threads=2))
    for section in ("time_to_close", "department"):
        first, second = trained.evaluation.summary[section], again.evaluation.summary[section]
        for key, value in first.items():
            assert second[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (section, key)


@pytest.mark.shared
def test_real_la_train_on_earlier_years_test_on_the_latest(real_data: Path) -> None:
    """Train on the 2017 and 2018 MyLA311 files, test on 2020: P50 beats the per-type median (a static SLA)
    on MAE and clearly on median absolute error, is level with the plain reference (within 1%), and the
    calibrated P10-P90 range covers more of 2020 than the reference's uncalibrated one. Two years on, the
    range no longer covers 80% (0.67 measured, README): the bound here guards what holds today."""
    from ingest.files import ingest_files

    folder = real_data / "los_angeles"
    files = ["myla311_2017-12-27_to_31.csv", "myla311_2018-01-01_to_04.csv", "myla311_2020-01-01_to_03_lowercase.csv"]
    records = ingest_files([folder / f for f in files], "la").records
    result = train_models(records, load_specs(), test_start=pd.Timestamp("2019-06-01", tz="UTC"))
    ttc = result.evaluation.summary["time_to_close"]
    assert ttc["n"] > 9000
    assert ttc["mae_hours"] < ttc["baseline_type_median_mae_hours"]
    assert ttc["median_ae_hours"] < 0.85 * ttc["baseline_type_median_median_ae_hours"]
    assert ttc["mae_hours"] <= 1.01 * ttc["baseline_reference_mae_hours"]
    assert ttc["median_ae_hours"] <= 1.01 * ttc["baseline_reference_median_ae_hours"]
    assert ttc["baseline_reference_coverage_p10_p90"] + 0.1 < ttc["coverage_p10_p90"] <= 0.88
    department = result.evaluation.summary["department"]
    assert department["accuracy_without_type"] > department["baseline_overall_majority_accuracy"] + 0.1
    assert department["accuracy_without_type"] > department["baseline_reference_accuracy_without_type"]


@pytest.mark.shared
def test_real_boston_six_months_train_july_to_october_test_november_december(real_data: Path) -> None:
    """The whole city's 2011 file: P50 MAE below the per-type median, the city's own targets and the plain
    reference; median AE level with the reference (within 1%); routing above the per-type majority."""
    from ingest.files import ingest_files

    records = ingest_files([real_data / "boston" / "boston311_2011-07_to_12.csv"], "boston").records
    result = train_models(records, load_specs(), test_start=pd.Timestamp("2011-11-01", tz="UTC"))
    ttc = result.evaluation.summary["time_to_close"]
    assert ttc["n"] > 10_000
    assert ttc["mae_hours"] < ttc["baseline_type_median_mae_hours"]
    assert ttc["mae_hours"] < ttc["baseline_reference_mae_hours"]
    assert ttc["model_on_city_target_rows_mae_hours"] < ttc["baseline_city_target_mae_hours"]
    assert ttc["median_ae_hours"] <= 1.01 * ttc["baseline_reference_median_ae_hours"]
    department = result.evaluation.summary["department"]
    assert department["accuracy"] > department["baseline_type_majority_accuracy"]


@pytest.mark.shared
def test_real_nyc_department_beats_the_type_majority_with_and_without_type(real_data: Path) -> None:
    """Train on NYC 2012-13, test on 2022-23: with the complaint type, without it, and on the 2022-23
    complaint types never seen in 2012-13 (renamed ones such as HEAT/HOT WATER), the department model beats
    the per-type majority (whose only answer without a known type is the overall majority department)."""
    from ingest.files import ingest_files

    records = ingest_files(sorted((real_data / "nyc").glob("nyc311_*")), "auto").records
    result = train_models(records, load_specs(), test_start=pd.Timestamp("2020-01-01", tz="UTC"))
    department = result.evaluation.summary["department"]
    assert department["n"] > 1500 and department["n_unseen_type"] > 200
    assert department["accuracy"] > department["baseline_type_majority_accuracy"]
    assert department["accuracy_without_type"] > department["baseline_overall_majority_accuracy"] + 0.3
    assert department["accuracy_unseen_type"] > department["baseline_type_majority_accuracy_unseen_type"]
