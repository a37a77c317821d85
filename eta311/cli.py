"""The `eta311` command line: a thin shell that builds settings, reads files and calls one library function.

Heavy libraries are imported inside each command so `eta311 --help` stays instant. Exit codes: 0 ok,
1 a data or check failure, 2 a usage error.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from eta311.settings import Settings, configure_runtime

app = typer.Typer(
    name="eta311",
    help="Learned completion estimates and department routing for 311 service requests.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("eta311")


class InputFormat(str, Enum):
    auto = "auto"
    la = "la"
    nyc = "nyc"
    boston = "boston"
    chicago = "chicago"
    sf = "sf"
    open311 = "open311"


class SynthFormat(str, Enum):
    parquet = "parquet"
    la = "la"


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    """eta311: when will a 311 request be done, and who will do it."""
    configure_runtime(logging.DEBUG if verbose else logging.INFO)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@app.command()
def ingest(
    inputs: Annotated[list[Path], typer.Argument(help="Raw city exports (CSV or JSON).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="Canonical records Parquet to write.")],
    format: Annotated[InputFormat, typer.Option("--format", help="Input format; auto detects it.")] = InputFormat.auto,
    quarantine: Annotated[
        Path | None,
        typer.Option(
            "--quarantine", help="Parquet for rejected rows with their reason (default: OUT.quarantine.parquet)."
        ),
    ] = None,
    city: Annotated[str | None, typer.Option("--city", help="City code for formats without one (open311).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reconciliation as JSON.")] = False,
) -> None:
    """Normalise raw exports into the canonical schema; every row is accepted or quarantined with a reason."""
    from features.schema import write_records
    from training.ingest import IngestError, ingest_files

    try:
        result = ingest_files(inputs, format.value, city)
    except IngestError as error:
        raise _fail(str(error)) from error
    quarantine = quarantine or out.with_name(out.stem + ".quarantine.parquet")
    write_records(result.records, out)
    quarantine.parent.mkdir(parents=True, exist_ok=True)
    result.quarantine.to_parquet(quarantine, index=False)
    summary = result.reconciliation.to_dict() | {"out": str(out), "quarantine": str(quarantine)}
    out.with_name(out.stem + ".reconciliation.json").write_text(json.dumps(summary, indent=2))
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        for line in result.reconciliation.lines():
            typer.echo(line)
        typer.echo(f"wrote {out} and {quarantine}")


@app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", help="File to write (Parquet, or CSV with --format la).")],
    rows: Annotated[int, typer.Option("--rows", min=1, help="Number of requests.")] = 1_750_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; same seed, same city.")] = 0,
    start: Annotated[str, typer.Option("--start", help="First day (YYYY-MM-DD).")] = "2024-01-01",
    days: Annotated[int, typer.Option("--days", min=1, help="Days covered.")] = 365,
    format: Annotated[
        SynthFormat, typer.Option("--format", help="parquet (canonical) or la (MyLA311 CSV export).")
    ] = SynthFormat.parquet,
) -> None:
    """Generate a synthetic LA-like city: seasonality, holidays, department capacity, censoring, data traps."""
    from features.schema import write_records
    from training.synth import synthesize, write_la_csv

    try:
        first_day = date.fromisoformat(start)
    except ValueError as error:
        raise _fail(f"--start: {start!r} is not a YYYY-MM-DD date", 2) from error
    records = synthesize(rows=rows, seed=seed, start=first_day, days=days)
    if format is SynthFormat.la:
        write_la_csv(records, out)
    else:
        write_records(records, out)
    typer.echo(f"wrote {len(records)} synthetic requests to {out}")


@app.command()
def check(
    data: Annotated[Path, typer.Argument(help="Canonical records Parquet.", show_default=False)],
    docs: Annotated[
        Path | None, typer.Option("--docs", help="Data Docs folder (default ETA311_HOME/data_docs).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Run the Great Expectations suites; exit 1 when a blocking expectation fails."""
    from data_checks.suite import format_report, run_checks
    from features.schema import read_records

    settings = Settings.from_env().ensure()
    if not data.is_file():
        raise _fail(f"{data}: no such file")
    try:
        records = read_records(data)
    except (KeyError, ValueError, OSError) as error:
        raise _fail(f"{data}: not a canonical records file: {error}") from error
    report = run_checks(records, docs or settings.docs_dir)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        typer.echo(format_report(report))
    if not report.passed:
        raise typer.Exit(1)


@app.command()
def demo(
    rows: Annotated[int, typer.Option("--rows", min=1000, help="Synthetic requests to generate.")] = 1_750_000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """The end-to-end demo on the embedded default: synthesize a city, ingest it, check it, summarise it."""
    from eta311.demo import run_demo

    settings = Settings.from_env().ensure()
    passed = run_demo(settings, rows=rows, seed=seed, echo=typer.echo)
    if not passed:
        raise typer.Exit(1)
