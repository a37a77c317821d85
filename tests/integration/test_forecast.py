"""The managers' forecast end to end: a synthetic city cut at as-of, tiny champions in a real sqlite MLflow
store (the `forecast_city` fixture in conftest.py), `eta311 forecast` through the CLI (files, invariants, run
artifacts), the service's `Dashboard`, and a backtest of the forecast itself against what the simulation's
department queues then actually closed."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from forecast.departments import FORECAST_INPUTS_FILE, forecast_records
from ingest.synth import DEPARTMENTS, capacity_schedule
from models.registry import CHAMPION, DEPARTMENT, TIME_TO_CLOSE, load_model
from serving.dashboard import Dashboard
from tests.integration.conftest import AS_OF
from tests.integration.test_training_mlflow import run_cli

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)

BACKTEST_DAYS = 7
BACKTEST_TOLERANCE = 0.20  # relative error of 7-day closures, departments with enough volume
BACKTEST_MIN_CLOSURES = 300


def test_forecast_cli_writes_the_page_and_tables_and_logs_them_to_the_run(forecast_city: dict) -> None:
    out = forecast_city["folder"] / "report"
    run = mlflow.MlflowClient().create_run(mlflow.get_experiment_by_name("eta311").experiment_id)
    os.environ["MLFLOW_RUN_ID"] = run.info.run_id
    try:
        summary = run_cli("forecast", str(forecast_city["data"]), "--out", str(out), "--horizon-days", "14", "--json")
    finally:
        os.environ.pop("MLFLOW_RUN_ID", None)  # mlflow.end_run pops it already
    as_of = pd.Timestamp(summary["as_of"])  # default: the latest created_at
    assert summary["open_requests"] > 0 and AS_OF - pd.Timedelta(hours=2) < as_of <= AS_OF
    for name in (
        "index.html",
        "department_forecast.csv",
        "department_totals.csv",
        "at_risk.csv",
        "accuracy_by_department.csv",
    ):
        assert (out / name).is_file(), name
    forecast = pd.read_csv(out / "department_forecast.csv")
    assert list(forecast.columns[:6]) == ["department", "date", "day", "expected_closures", "low", "high"]
    assert {"projected_backlog", "expected_intake", "open_at_as_of"} <= set(forecast.columns)
    assert set(forecast["department"]) <= set(DEPARTMENTS) and forecast.groupby("department").size().eq(14).all()
    for _, part in forecast.groupby("department"):
        assert part["expected_closures"].sum() <= part["open_at_as_of"].iloc[0] + part["expected_intake"].sum()
        assert (part["low"] <= part["expected_closures"]).all() and (part["expected_closures"] <= part["high"]).all()
    at_risk = pd.read_csv(out / "at_risk.csv", parse_dates=["created_at"])
    assert len(at_risk) > 0 and at_risk["created_at"].is_monotonic_increasing
    assert {"department", "request_type", "council_district", "neighborhood"} <= set(at_risk.columns)
    by_district = pd.read_csv(out / "accuracy_by_district.csv")
    assert {"mae_hours", "baseline_mae_hours", "within_p10_p90", "closed_before_expected"} <= set(by_district.columns)
    assert {"median_actual_days", "median_predicted_days"} <= set(by_district.columns)
    assert by_district["n"].sum() == summary["resolved_in_lookback"]
    page = (out / "index.html").read_text()
    assert (
        'id="department-filter"' in page
        and page.count('class="chart forecast-chart"') == forecast["department"].nunique()
    )
    # Self-contained: no script, style, image or icon from anywhere but the page itself.
    assert "http://" not in page and "https://" not in page and "<script src" not in page
    assert all(part.startswith(' rel="icon" href="data:') for part in page.split("<link")[1:])
    logged = {a.path for a in mlflow.artifacts.list_artifacts(run_id=run.info.run_id, artifact_path="forecast")}
    assert {"forecast/index.html", "forecast/department_forecast.csv", "forecast/at_risk.csv"} <= logged


def test_forecast_of_seven_days_of_closures_matches_what_the_simulation_then_closed(
    forecast_city: dict, caplog: pytest.LogCaptureFixture
) -> None:
    """Backtest of the forecast itself: per department, expected closures over (as_of, as_of + 7 days] vs the
    requests the simulated queues (known capacities) actually let go in that window (any exit)."""
    caplog.set_level(logging.INFO, logger=__name__)
    records = pd.read_parquet(forecast_city["data"])
    time_bundle = load_model(TIME_TO_CLOSE, CHAMPION).bundle
    department_bundle = load_model(DEPARTMENT, CHAMPION).bundle
    report = forecast_records(records, time_bundle, department_bundle, as_of=AS_OF, horizon_days=BACKTEST_DAYS)
    full = forecast_city["full"]
    end = AS_OF + pd.Timedelta(days=BACKTEST_DAYS)
    actual = full[(full["closed_at"] > AS_OF) & (full["closed_at"] <= end)].groupby("department").size()
    expected = report.department_forecast.groupby("department")["expected_closures"].sum()
    week = report.department_totals[report.department_totals["days"] == BACKTEST_DAYS].set_index("department")
    np.testing.assert_allclose(week["expected_closures"], expected.loc[week.index], rtol=1e-9)
    low, high = week["low"], week["high"]
    errors = {}
    # The simulation's known capacity over the same days (queued work only; crew self-reports, auto-closes,
    # cancellations and referrals leave without it): context for the error, and a bound the queue respected.
    schedule = capacity_schedule(40_000, "2024-01-01", 110)
    first_day = AS_OF.tz_convert("America/Los_Angeles").date()
    capacity = schedule.loc[[first_day + dt.timedelta(days=k) for k in range(BACKTEST_DAYS)]].sum()
    queued = full[(full["closed_at"] > AS_OF) & (full["closed_at"] <= end)]
    queued = queued[(queued["closed_at"] - queued["created_at"]) > pd.Timedelta(hours=1)]
    for department, count in actual.items():
        errors[department] = expected.get(department, 0.0) / count - 1.0
        log.info(
            "backtest %s: forecast %.0f (80%% band of the 7-day total %.0f-%.0f), actual %d, error %+.1f%%; "
            "capacity %.0f",
            department,
            expected.get(department, 0.0),
            low.get(department, 0.0),
            high.get(department, 0.0),
            count,
            100 * errors[department],
            capacity[department],
        )
    served = queued[queued["status"] == "closed"].groupby("department").size()
    assert (served <= capacity.loc[served.index] * 1.05 + 5).all(), (served.to_dict(), capacity.to_dict())
    big = [d for d, count in actual.items() if count >= BACKTEST_MIN_CLOSURES]
    assert len(big) >= 2, actual.to_dict()
    assert all(abs(errors[d]) <= BACKTEST_TOLERANCE for d in big), errors
    total_error = expected.sum() / actual.sum() - 1.0
    assert abs(total_error) <= 0.10, total_error
    # Day by day, the weekly rhythm is kept: Sunday closures are a small fraction of a weekday's.
    sanitation = report.department_forecast[report.department_forecast["department"] == "Sanitation"]
    weekday = pd.to_datetime(sanitation["date"]).dt.day_of_week
    assert (
        sanitation.loc[weekday == 6, "expected_closures"].max()
        < 0.2 * sanitation.loc[weekday < 5, "expected_closures"].min()
    )


def test_dashboard_loads_what_train_and_snapshot_wrote(forecast_city: dict) -> None:
    snapshots = forecast_city["home"] / "snapshots"
    assert (snapshots / FORECAST_INPUTS_FILE).is_file()  # written by `eta311 train`
    run_cli("snapshot", str(forecast_city["data"]))  # and rewritten by `eta311 snapshot`
    time_bundle = load_model(TIME_TO_CLOSE, CHAMPION).bundle
    department_bundle = load_model(DEPARTMENT, CHAMPION).bundle
    dashboard = Dashboard.load(snapshots, time_bundle, department_bundle)
    page = dashboard.html()
    for department in dashboard.report.departments:
        assert f'class="chart forecast-chart" data-department="{department}"' in page
    assert "/forecast/departments" in page
    payload = dashboard.payload()
    json.dumps(payload)  # JSON-serialisable
    assert {"department_forecast", "at_risk", "accuracy_by_department", "accuracy_by_district"} <= set(payload)
    assert sum(payload["at_risk_counts"].values()) == len(dashboard.report.at_risk)
    assert all(n <= 200 for n in pd.Series([r["department"] for r in payload["at_risk"]]).value_counts())
    one = dashboard.payload("Sanitation")
    assert {row["department"] for row in one["department_forecast"]} == {"Sanitation"}
    assert 'value="Sanitation" selected' in dashboard.html("Sanitation")
    with pytest.raises(ValueError, match="unknown department"):
        dashboard.payload("Nope")
    with pytest.raises(FileNotFoundError):
        Dashboard.load(forecast_city["folder"] / "nowhere", time_bundle, department_bundle)
    with pytest.raises(ValueError):
        Dashboard.load(snapshots, department_bundle, time_bundle)
    # Same inputs, same numbers as the CLI path (one forecast function behind both).
    records = pd.read_parquet(forecast_city["data"])
    cli_side = forecast_records(records, time_bundle, department_bundle, as_of=dashboard.report.as_of)
    np.testing.assert_allclose(
        dashboard.report.department_forecast["expected_closures"].to_numpy(),
        cli_side.department_forecast["expected_closures"].to_numpy(),
        rtol=1e-9,
    )


def test_forecast_cli_usage_and_data_errors(forecast_city: dict, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from eta311.cli import app

    runner = CliRunner()
    bad_date = runner.invoke(app, ["forecast", str(forecast_city["data"]), "--as-of", "soon", "--out", str(tmp_path)])
    assert bad_date.exit_code == 2 and "--as-of" in bad_date.output
    missing = runner.invoke(app, ["forecast", str(tmp_path / "none.parquet"), "--out", str(tmp_path)])
    assert missing.exit_code == 1 and "no such file" in missing.output
    too_early = runner.invoke(
        app, ["forecast", str(forecast_city["data"]), "--as-of", "2020-01-01", "--out", str(tmp_path)]
    )
    assert too_early.exit_code == 1 and "no requests created" in too_early.output


def test_open_requests_without_a_recorded_department_get_the_department_models_choice(forecast_city: dict) -> None:
    records = pd.read_parquet(forecast_city["data"])
    blank = (records["status"] == "open").to_numpy() & (np.arange(len(records)) % 3 == 0)
    records = records.assign(department=records["department"].where(~blank))
    time_bundle = load_model(TIME_TO_CLOSE, CHAMPION).bundle
    department_bundle = load_model(DEPARTMENT, CHAMPION).bundle
    report = forecast_records(records, time_bundle, department_bundle)
    assert report.summary["open_with_predicted_department"] == int(blank.sum()) > 0
    classes = set(department_bundle.metadata["classes"])
    assert set(report.departments) <= classes | set(DEPARTMENTS)
    predicted = report.at_risk[report.at_risk["department_source"] == "predicted"]
    assert len(predicted) > 0 and set(predicted["department"]) <= classes
