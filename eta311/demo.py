"""The one-command demo: each stage is a library call, shown with progress, state kept under ETA311_HOME."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pandas as pd

from eta311.settings import Settings

log = logging.getLogger(__name__)


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


def run_demo(settings: Settings, rows: int, seed: int, echo: Callable[[str], None]) -> bool:
    """Synthesize an LA-like year as a MyLA311 export, ingest and check it, and print what came out."""
    from data_checks.suite import format_report, run_checks
    from features.schema import write_records
    from training.ingest import ingest_files
    from training.synth import synthesize, write_la_csv

    total = 4
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    raw_csv = data_dir / "synthetic_la_export.csv"
    records_path = data_dir / "requests.parquet"

    with stage(f"synthesize {rows:,} LA-like requests (seed {seed})", 1, total, echo):
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
    with stage("summarise", 4, total, echo):
        table = summarise(result.records)
    echo(table.to_string(float_format=lambda v: f"{v:.2f}"))
    echo(f"records: {records_path}")
    echo(f"data docs: {report.docs_path}")
    return report.passed
