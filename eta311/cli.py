"""The `eta311` command line: a thin shell that builds settings, reads files and calls one library function.

Heavy libraries are imported inside each command so `eta311 --help` stays instant. Exit codes: 0 ok,
1 a data or check failure, 2 a usage error.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from enum import StrEnum
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
# Service workers: on the 2-core machine, production-size models, load client on the same cores, concurrency
# 8 gave p50 11.8 ms with one worker and 7.1 ms with two (benchmarks/bench_serve.py).
DEFAULT_WORKERS = 2


class InputFormat(StrEnum):
    auto = "auto"
    la = "la"
    nyc = "nyc"
    boston = "boston"
    chicago = "chicago"
    sf = "sf"
    open311 = "open311"
    canonical = "canonical"


class SynthFormat(StrEnum):
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
    inputs: Annotated[
        list[Path],
        typer.Argument(help="Raw city exports (CSV, JSON or Parquet), or canonical records.", show_default=False),
    ],
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
    from ingest.files import IngestError, ingest_files

    try:
        result = ingest_files(inputs, format.value, city)
    except IngestError as error:
        raise _fail(str(error)) from error
    quarantine = quarantine or out.with_name(out.stem + ".quarantine.parquet")
    summary = result.reconciliation.to_dict() | {"out": str(out), "quarantine": str(quarantine)}
    try:
        write_records(result.records, out)
        quarantine.parent.mkdir(parents=True, exist_ok=True)
        result.quarantine.to_parquet(quarantine, index=False)
        out.with_name(out.stem + ".reconciliation.json").write_text(json.dumps(summary, indent=2))
    except OSError as error:
        raise _fail(f"cannot write the outputs ({out}, {quarantine}): {error}", 2) from error
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
    from ingest.synth import synthesize, write_la_csv

    try:
        first_day = date.fromisoformat(start)
    except ValueError as error:
        raise _fail(f"--start: {start!r} is not a YYYY-MM-DD date", 2) from error
    records = synthesize(rows=rows, seed=seed, start=first_day, days=days)
    try:
        if format is SynthFormat.la:
            write_la_csv(records, out)
        else:
            write_records(records, out)
    except OSError as error:
        raise _fail(f"--out {out}: cannot write: {error}", 2) from error
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
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the service at the end.")] = True,
    host: Annotated[str, typer.Option("--host", help="Address the service binds.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port of the service.")] = 3000,
) -> None:
    """The whole product on a synthetic LA year: ingest, check, train, promote, forecast, then serve it."""
    from eta311.demo import ServeOptions, run_demo

    settings = Settings.from_env().ensure()
    options = ServeOptions(serve=serve, host=host, port=port)
    passed = run_demo(settings, rows, seed, typer.echo, _evaluation_table, options)
    if not passed:
        raise typer.Exit(1)


class Engine(StrEnum):
    local = "local"
    dask = "dask"


class Alias(StrEnum):
    champion = "champion"
    challenger = "challenger"
    previous = "previous"


def _tracking(settings: Settings) -> None:
    from models.registry import configure_tracking

    configure_tracking(settings.tracking_uri, settings.mlflow_artifacts_dir)


def _read(data: Path):
    """Canonical records from DATA, or exit 1 naming the file: missing, not Parquet, no required column, empty."""
    import pyarrow.parquet as pq

    from features.schema import REQUIRED_RECORD_COLUMNS, read_records

    if not data.is_file():
        raise _fail(f"{data}: no such file")
    hint = "not a canonical records file (run `eta311 ingest` first)"
    try:
        missing = [c for c in REQUIRED_RECORD_COLUMNS if c not in pq.read_schema(data).names]
        records = None if missing else read_records(data)
    except (KeyError, ValueError, OSError) as error:
        raise _fail(f"{data}: {hint}: {error}") from error
    if missing:
        raise _fail(f"{data}: {hint}: missing column(s) {', '.join(missing)}")
    if records.empty:
        raise _fail(f"{data}: no records (0 rows)")
    return records


@app.command()
def train(
    data: Annotated[
        Path | None,
        typer.Argument(
            help="Canonical records Parquet (from ingest or synth); none with --from-ledger.", show_default=False
        ),
    ] = None,
    spec: Annotated[Path | None, typer.Option("--spec", help="Folder with the model specs (default models/).")] = None,
    engine: Annotated[Engine, typer.Option("--engine", help="Train locally or on a Dask cluster.")] = Engine.local,
    dask_scheduler: Annotated[
        str | None, typer.Option("--dask-scheduler", help="Existing Dask scheduler address (default: a LocalCluster).")
    ] = None,
    test_start: Annotated[
        str | None, typer.Option("--test-start", help="Test on requests created from this date (default: by share).")
    ] = None,
    backtest_folds: Annotated[
        int,
        typer.Option(
            "--backtest-folds",
            min=0,
            help="Also run a rolling-origin backtest over this many 28-day windows (retrains per fold; 0 = off).",
        ),
    ] = 0,
    from_ledger: Annotated[
        bool, typer.Option("--from-ledger", help="Train on the requests the ledger holds instead of a file.")
    ] = False,
    since: Annotated[
        str | None, typer.Option("--since", help="With --from-ledger: requests created on or after this date.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Train both models, evaluate on a temporal test, log one MLflow run and register two challengers."""
    import pandas as pd

    from models.spec import SpecError, load_specs
    from training.train import make_engine
    from training.workflow import train_and_register

    settings = Settings.from_env().ensure()
    try:
        specs = load_specs(spec)
    except SpecError as error:
        raise _fail(str(error), 2) from error
    try:
        start = pd.Timestamp(test_start, tz="UTC") if test_start else None
    except ValueError as error:
        raise _fail(f"--test-start: {test_start!r} is not a date", 2) from error
    if from_ledger == (data is not None):
        raise _fail("give either DATA or --from-ledger (not both, not neither)", 2)
    if since is not None and not from_ledger:
        raise _fail("--since goes with --from-ledger", 2)
    if from_ledger:
        from eta311.ledger_commands import ledger_records

        records, source = ledger_records(settings, since)
    else:
        assert data is not None
        records, source = _read(data), data
    _tracking(settings)
    with make_engine(engine.value, dask_scheduler) as trainer:
        try:
            summary = train_and_register(records, specs, source, settings.snapshots_dir, trainer, start, backtest_folds)
        except ValueError as error:
            raise _fail(f"{source}: {error}") from error
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=float))
        return
    typer.echo(_training_report(summary))


def _training_report(summary: dict) -> str:
    """What `eta311 train` prints: run id, the new versions, the evaluation table and the backtest."""
    lines = [f"run id: {summary['run_id']}"]
    lines += [f"{name}: version {version} (alias challenger)" for name, version in summary["versions"].items()]
    lines.append(_evaluation_table(summary["evaluation"]))
    fallback = summary.get("split", {}).get("fallback")
    if fallback:
        lines.append(f"split: the {fallback} boundary is placed by row count (the data has gaps; --test-start chooses)")
    folds = summary.get("backtest", {}).get("folds")
    if folds == []:
        lines.append("backtest: skipped, the data spans too few 28-day windows")
    elif folds:
        import pandas as pd

        columns = ["test_start", "ttc_n", "ttc_mae_hours", "ttc_baseline_type_median_mae_hours", "ttc_coverage_p10_p90"]
        table = pd.DataFrame(folds)[[*columns, "dept_accuracy"]]
        lines.append("rolling-origin backtest:\n" + table.to_string(index=False))
    return "\n".join(lines)


def _evaluation_table(summary: dict) -> str:
    t, d = summary["time_to_close"], summary["department"]
    if t.get("n", 0) == 0:
        lines = ["time to close: no resolved requests in the test period"]
    else:
        lines = [
            f"time to close on {t['n']} resolved test requests (hours)     MAE   median AE",
            f"  model P50                                          {t['mae_hours']:7.1f} {t['median_ae_hours']:9.1f}",
            f"  per-type median (static SLA)                       {t['baseline_type_median_mae_hours']:7.1f} "
            f"{t['baseline_type_median_median_ae_hours']:9.1f}",
            f"  global median                                      {t['baseline_global_median_mae_hours']:7.1f} "
            f"{t['baseline_global_median_median_ae_hours']:9.1f}",
            f"  P10-P90 coverage {t['coverage_p10_p90']:.3f} (target 0.80)",
        ]
        if t.get("baseline_reference_mae_hours") is not None:
            lines.append(
                f"  reference (plain LightGBM on the intake fields)    {t['baseline_reference_mae_hours']:7.1f} "
                f"{t['baseline_reference_median_ae_hours']:9.1f}   coverage "
                f"{t['baseline_reference_coverage_p10_p90']:.3f}"
            )
        if "baseline_city_target_mae_hours" in t:
            lines.append(
                f"  city's own target                                  {t['baseline_city_target_mae_hours']:7.1f} "
                f"{t['baseline_city_target_median_ae_hours']:9.1f}"
            )
    if d.get("n", 0):
        lines += [
            f"department on {d['n']} test requests: accuracy {d['accuracy']:.3f}, top-3 {d['top3_accuracy']:.3f}, "
            f"without type {d['accuracy_without_type']:.3f}; per-type majority baseline "
            f"{d['baseline_type_majority_accuracy']:.3f}",
        ]
        if d.get("baseline_reference_accuracy") is not None:
            lines.append(
                f"  reference (TF-IDF + logistic regression): accuracy {d['baseline_reference_accuracy']:.3f}, "
                f"without type {d['baseline_reference_accuracy_without_type']:.3f}"
            )
    return "\n".join(lines)


@app.command()
def evaluate(
    data: Annotated[Path, typer.Argument(help="Canonical records Parquet to score.", show_default=False)],
    alias: Annotated[Alias, typer.Option("--alias", help="Which registered versions to score.")] = Alias.champion,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Score the registered models on DATA (every row; earlier rows are workload history) beside baselines."""
    from models.registry import DEPARTMENT, TIME_TO_CLOSE, RegistryError, load_model
    from training.evaluate import evaluate_bundles
    from training.reference import References

    settings = Settings.from_env().ensure()
    records = _read(data)
    _tracking(settings)
    try:
        time_model = load_model(TIME_TO_CLOSE, alias.value)
        department_model = load_model(DEPARTMENT, alias.value)
    except RegistryError as error:
        raise _fail(str(error)) from error
    references = References.load(time_model.path, department_model.path)
    evaluation = evaluate_bundles(time_model.bundle, department_model.bundle, records, references=references)
    summary = evaluation.summary | {
        "model": {
            "alias": alias.value,
            "time_to_close_version": time_model.version,
            "department_version": department_model.version,
        }
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=float))
    else:
        typer.echo(_evaluation_table(summary))


@app.command()
def promote(
    force: Annotated[bool, typer.Option("--force", help="Promote without applying the spec's rule.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    compile_boosters: Annotated[
        bool,
        typer.Option(
            "--compile/--no-compile",
            help="Compile new champions for this CPU now, so that `eta311 serve` starts in seconds.",
        ),
    ] = True,
) -> None:
    """Make the challengers champions when they beat the champions on the same temporal test."""
    from training.promote import promote as run_promote

    settings = Settings.from_env().ensure()
    _tracking(settings)
    decisions = run_promote(force)
    _print_decisions(decisions, as_json)
    if compile_boosters and any(d.promoted for d in decisions):
        from serving.serve import compile_champions

        compile_champions(settings)


@app.command()
def rollback(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Restore the previous champions."""
    from training.promote import rollback as run_rollback

    _tracking(Settings.from_env().ensure())
    decisions = run_rollback()
    _print_decisions(decisions, as_json)
    if not any(d.promoted for d in decisions):
        raise typer.Exit(1)


def _print_decisions(decisions, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([d.to_dict() for d in decisions], indent=2))
        return
    for d in decisions:
        verdict = "promoted" if d.promoted else "kept"
        typer.echo(f"{d.model}: {verdict}; champion {d.champion_before} -> {d.champion_after}: {d.reason}")


@app.command()
def snapshot(
    data: Annotated[Path, typer.Argument(help="Canonical records Parquet (history up to now).", show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", help="Parquet to write (default ETA311_HOME/snapshots).")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Instant (ISO 8601); default: latest in DATA.")] = None,
) -> None:
    """Write today's workload table (what the service looks requests up in), keyed like the champion."""
    import pandas as pd

    from features.pipeline import FeaturePipeline
    from models.registry import CHAMPION, TIME_TO_CLOSE, RegistryError, load_model
    from training.labels import extraction_time

    settings = Settings.from_env().ensure()
    records = _read(data)
    try:
        instant = pd.Timestamp(as_of) if as_of else extraction_time(records)
    except ValueError as error:
        raise _fail(f"--as-of: {as_of!r} is not a date or time", 2) from error
    if instant.tzinfo is None:
        instant = instant.tz_localize("UTC")
    _tracking(settings)
    try:
        pipeline = FeaturePipeline.from_dict(load_model(TIME_TO_CLOSE, CHAMPION).bundle.pipeline)
    except RegistryError:
        log.warning("no champion registered: the type -> department map is learned from %s", data)
        pipeline = FeaturePipeline().fit(records)
    from forecast.departments import default_as_of, write_forecast_inputs
    from models.files import LATEST_SNAPSHOT_FILE

    out = out or settings.snapshots_dir / LATEST_SNAPSHOT_FILE
    try:
        table = pipeline.workload_snapshot(records, instant)
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(out, index=False)
        # Without --as-of: the latest created_at, as `eta311 forecast` defaults to (the dashboard shows it).
        write_forecast_inputs(records, instant if as_of else default_as_of(records), out.parent, pipeline)
    except ValueError as error:
        raise _fail(f"{data}: {error}") from error
    except OSError as error:
        raise _fail(f"--out {out}: cannot write: {error}", 2) from error
    typer.echo(f"wrote workload snapshot as of {instant.isoformat()} ({len(table)} keys) to {out}")


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback unless you mean otherwise).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 3000,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", min=1, help="Worker processes (2 met the latency targets on a 2-core machine; 1 did not)."
        ),
    ] = DEFAULT_WORKERS,
    compile_boosters: Annotated[
        bool,
        typer.Option(
            "--compile/--no-compile",
            help="Predict with boosters compiled for this CPU (cached in ETA311_HOME/compiled; the first start "
            "after a new champion compiles them). Same numbers as LightGBM, several times faster.",
        ),
    ] = True,
) -> None:
    """Serve the champions (imported into ETA311_HOME/bentoml) and the latest workload snapshot over HTTP."""
    from serving.serve import NoChampion, prepare_and_exec

    settings = Settings.from_env().ensure()
    from eta311.ledger_commands import refuse_outdated_ledger

    refuse_outdated_ledger(settings)  # exit 1 naming `eta311 db upgrade` for a ledger of another schema
    try:
        prepare_and_exec(settings, host=host, port=port, workers=workers, compiled=compile_boosters)
    except NoChampion as error:
        raise _fail(str(error)) from error


def _read_targets(path: Path) -> dict[str, float]:
    """`--targets`: a JSON object of request type -> days (a positive number)."""
    payload = json.loads(path.read_text())
    if not isinstance(payload, dict):
        raise ValueError(f"expected a JSON object {{request type: days}}, got {type(payload).__name__}")
    bad = [k for k, v in payload.items() if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0]
    if bad:
        raise ValueError(f"days must be positive numbers; not for {', '.join(map(repr, bad[:5]))}")
    return {str(k): float(v) for k, v in payload.items()}


@app.command()
def forecast(
    data: Annotated[Path, typer.Argument(help="Canonical records Parquet (history up to as-of).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="Folder for index.html and the CSV tables.")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Instant (ISO 8601; naive = UTC); default: latest created_at.")
    ] = None,
    horizon_days: Annotated[int, typer.Option("--horizon-days", min=1, max=90, help="Days to forecast.")] = 14,
    lookback_days: Annotated[
        int, typer.Option("--lookback-days", min=7, max=365, help="History for intake and accountability.")
    ] = 28,
    alias: Annotated[Alias, typer.Option("--alias", help="Which registered versions to use.")] = Alias.champion,
    targets: Annotated[
        Path | None, typer.Option("--targets", help="JSON {request type: days} thresholds for the at-risk list.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Per department and day: expected closures (80% band), intake and backlog; at-risk list; accountability."""
    import os

    import pandas as pd

    from forecast.departments import forecast_records
    from models.compiled import attach_loaded
    from models.registry import DEPARTMENT, TIME_TO_CLOSE, RegistryError, load_model

    settings = Settings.from_env().ensure()
    records = _read(data)
    try:
        instant = pd.Timestamp(as_of) if as_of else None
    except ValueError as error:
        raise _fail(f"--as-of: {as_of!r} is not a date or time", 2) from error
    try:
        thresholds = _read_targets(targets) if targets else None
    except (OSError, ValueError) as error:
        raise _fail(f"--targets {targets}: {error}", 2) from error
    _tracking(settings)
    try:
        time_model = load_model(TIME_TO_CLOSE, alias.value)
        department_model = load_model(DEPARTMENT, alias.value)
    except RegistryError as error:
        raise _fail(str(error)) from error
    # Compiled boosters when `eta311 promote` cached them: the same numbers as LightGBM, faster.
    attach_loaded([time_model, department_model], settings.compiled_dir)
    try:
        report = forecast_records(
            records, time_model.bundle, department_model.bundle, instant, horizon_days, lookback_days, thresholds
        )
    except ValueError as error:
        raise _fail(f"{data}: {error}") from error
    try:
        page = report.write(out)
    except OSError as error:
        raise _fail(f"--out {out}: cannot write the report: {error}", 2) from error
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if run_id:  # under `mlflow run`: attach the report to the project's run without ending it
        from models.registry import client

        client().log_artifacts(run_id, str(out), artifact_path="forecast")
        log.info("logged %s as artifacts of run %s", out, run_id)
    summary = report.summary | {"page": str(page), "models": {"time_to_close": time_model.version}}
    summary["models"]["department"] = department_model.version
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    totals = report.department_totals
    week = totals[totals["days"] == totals["days"].min()]
    days = int(week["days"].iloc[0])
    typer.echo(f"forecast as of {report.as_of.isoformat()}: {summary['open_requests']:,} open requests")
    typer.echo(f"{'department':<28} {'open':>8} {f'closures {days}d':>12} {'80% band':>17} {f'intake {days}d':>10}")
    for _, row in week.iterrows():
        typer.echo(
            f"{row['department']:<28} {row['open_at_as_of']:>8,.0f} {row['expected_closures']:>12,.0f} "
            f"{row['low']:>8,.0f}-{row['high']:<8,.0f} {row['expected_intake']:>10,.0f}"
        )
    typer.echo(f"at risk: {summary['at_risk']:,}; report: {page}")


def _register_ledger_commands() -> None:
    """`eta311 db upgrade`, `eta311 sync`, `eta311 accountability` live in eta311.ledger_commands."""
    from eta311.ledger_commands import register

    register(app)


_register_ledger_commands()
