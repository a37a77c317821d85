"""The one-command demo: a synthetic LA-like year through the whole product, each stage a library call.

Stages: synthesize a MyLA311 export, ingest it, check it with Great Expectations, train both models (one
MLflow run, evaluated beside the baselines), promote them, write the managers' forecast report, then
import the champions and start the BentoML service on 127.0.0.1. Each stage is announced and timed; all
state lives under ETA311_HOME.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd

from eta311.settings import Settings

log = logging.getLogger(__name__)
TOTAL_STAGES = 7


@dataclass(frozen=True)
class ServeOptions:
    """Where the demo's service listens; `serve=False` stops after the report (tests, CI)."""

    serve: bool = True
    host: str = "127.0.0.1"
    port: int = 3000
    workers: int = 2


@contextmanager
def stage(name: str, number: int, total: int, echo: Callable[[str], None]) -> Iterator[None]:
    """Announce a stage and report how long it took."""
    echo(f"[{number}/{total}] {name} ...")
    started = time.perf_counter()
    yield
    echo(f"[{number}/{total}] {name} done in {time.perf_counter() - started:.1f}s")


def summarise(records: pd.DataFrame) -> pd.DataFrame:
    """Per request type: volume, share, open share and median days to close (closed rows only)."""
    days = (records["closed_at"] - records["created_at"]).dt.total_seconds() / 86400
    frame = records.assign(days=days.where(records["status"] == "closed"), is_open=records["status"] == "open")
    table = frame.groupby("request_type", observed=True).agg(
        requests=("request_id", "size"),
        open_share=("is_open", "mean"),
        median_days=("days", "median"),
        p90_days=("days", lambda d: d.quantile(0.9)),
    )
    table = table.assign(share=table["requests"] / table["requests"].sum())
    return table.sort_values("requests", ascending=False)[
        ["requests", "share", "open_share", "median_days", "p90_days"]
    ]


def curl_example(host: str, port: int) -> str:
    """A ready-to-paste request for the running service."""
    body = (
        '{"request_type": "Bulky Items", "source": "mobile_app", "latitude": 34.05, "longitude": -118.25, '
        '"description": "old couch and mattress on the sidewalk"}'
    )
    return f"curl -s -X POST http://{host}:{port}/estimate -H 'Content-Type: application/json' -d '{body}'"


def run_demo(
    settings: Settings,
    rows: int,
    seed: int,
    echo: Callable[[str], None],
    evaluation_table: Callable[[dict], str],
    serve: ServeOptions | None = None,
) -> bool:
    """Run every stage; returns False when the data checks fail (the demo stops there). With
    `serve.serve`, the last stage replaces this process with the BentoML server and does not return."""
    from data_checks.suite import format_report, run_checks
    from features.schema import write_records
    from forecast.departments import forecast_records
    from ingest.files import ingest_files
    from ingest.synth import synthesize, write_la_csv
    from models.compiled import attach_loaded
    from models.registry import DEPARTMENT, TIME_TO_CLOSE, configure_tracking, load_model
    from models.spec import load_specs
    from serving.serve import compile_champions
    from training.promote import promote
    from training.workflow import train_and_register

    serve = serve or ServeOptions()
    total = TOTAL_STAGES
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    raw_csv = data_dir / "synthetic_la_export.csv"
    records_path = data_dir / "requests.parquet"

    with stage(f"synthesize {rows:,} LA-like requests as a MyLA311 export (seed {seed})", 1, total, echo):
        write_la_csv(synthesize(rows=rows, seed=seed), raw_csv)
    with stage(f"ingest {raw_csv.name} (format la)", 2, total, echo):
        result = ingest_files([raw_csv], "la")
        write_records(result.records, records_path)
        result.quarantine.to_parquet(data_dir / "requests.quarantine.parquet", index=False)
    for line in result.reconciliation.lines():
        echo("    " + line)
    with stage("check with Great Expectations", 3, total, echo):
        report = run_checks(result.records, settings.docs_dir)
    echo(format_report(report))
    if not report.passed:
        echo("the data checks failed: stopping before training")
        return False
    echo(summarise(result.records).to_string(float_format=lambda v: f"{v:.2f}"))

    configure_tracking(settings.tracking_uri, settings.mlflow_artifacts_dir)
    with stage("train time-to-close and department models (one MLflow run)", 4, total, echo):
        summary = train_and_register(result.records, load_specs(), records_path, settings.snapshots_dir)
    echo(f"    MLflow run {summary['run_id']} in {settings.tracking_uri}; stages " + _stages(summary))
    table = evaluation_table(summary["evaluation"])
    echo(table)
    with stage("promote the challengers and compile them for this CPU", 5, total, echo):
        decisions = promote()
        if any(decision.champion_after is None for decision in decisions):
            # The demo must serve something: a first version refused (say, by its reference) is promoted with
            # --force, and the refusal is printed above the forced decision.
            for decision in decisions:
                echo(f"    {decision.model}: kept (champion {decision.champion_after}): {decision.reason}")
            echo("    no champion for every model: the demo promotes the first versions with --force")
            decisions = promote(force=True)
        if any(decision.promoted for decision in decisions):
            compile_champions(settings)
    for decision in decisions:
        verdict = "promoted" if decision.promoted else "kept"
        echo(f"    {decision.model}: {verdict} (champion {decision.champion_after}): {decision.reason}")
    report_dir = settings.reports_dir / "forecast"
    with stage("forecast each department's queue for the next 14 days", 6, total, echo):
        time_model, department_model = load_model(TIME_TO_CLOSE, "champion"), load_model(DEPARTMENT, "champion")
        attach_loaded([time_model, department_model], settings.compiled_dir)
        page = forecast_records(result.records, time_model.bundle, department_model.bundle).write(report_dir)
    echo(f"    managers' report: {page}")
    echo(f"records: {records_path}\ndata docs: {report.docs_path}")
    if not serve.serve:
        return True
    from serving.serve import prepare_and_exec

    echo(f"[7/{total}] serving the champions on http://{serve.host}:{serve.port} (Ctrl-C stops it)")
    echo(table)
    echo(f"try it:\n  {curl_example(serve.host, serve.port)}")
    echo(f"dashboard: http://{serve.host}:{serve.port}/dashboard   API docs: http://{serve.host}:{serve.port}/docs")
    prepare_and_exec(settings, host=serve.host, port=serve.port, workers=serve.workers)
    return True  # not reached: prepare_and_exec replaces this process


def _stages(summary: dict) -> str:
    return ", ".join(f"{name} {seconds:.0f}s" for name, seconds in summary["stage_seconds"].items())
