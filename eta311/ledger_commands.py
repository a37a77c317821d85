"""The ledger's commands: `eta311 db upgrade`, `eta311 sync` and `eta311 accountability`.

Kept beside `eta311.cli` (which registers them) so that each file stays one job; the same thin-shell rules
apply: settings built here, heavy imports inside the command, exit 1 for a data failure, 2 for usage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from eta311.settings import Settings

db_app = typer.Typer(help="The request ledger's database: create or migrate it.", no_args_is_help=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _url(settings: Settings) -> str:
    from ledger.store import database_url

    return database_url(settings.home)


def _open(settings: Settings):
    """The upgraded ledger, or exit 1 naming `eta311 db upgrade`."""
    from ledger.store import LedgerError, open_ledger

    try:
        return open_ledger(_url(settings))
    except LedgerError as error:
        raise _fail(str(error)) from error


@db_app.command("upgrade")
def db_upgrade(as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False) -> None:
    """Create the ledger (ETA311_DATABASE_URL, or ETA311_HOME/ledger.db) or migrate it to this version."""
    from sqlalchemy.exc import SQLAlchemyError

    from ledger.store import make_engine, redact, upgrade

    settings = Settings.from_env().ensure()
    url = _url(settings)
    try:
        before, after = upgrade(make_engine(url))
    except SQLAlchemyError as error:
        raise _fail(f"ledger {redact(url)}: {str(getattr(error, 'orig', error)).splitlines()[0]}") from error
    result = {"url": redact(url), "revision_before": before, "revision": after}
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    elif before == after:
        typer.echo(f"ledger {result['url']} is up to date (revision {after})")
    else:
        typer.echo(f"ledger {result['url']}: revision {before or '(empty)'} -> {after}")


def sync(
    inputs: Annotated[
        list[Path], typer.Argument(help="City exports (CSV/JSON) or canonical records Parquet.", show_default=False)
    ],
    format: Annotated[str, typer.Option("--format", help="Input format of the exports; auto detects it.")] = "auto",
    city: Annotated[str | None, typer.Option("--city", help="City code for formats without one (open311).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reconciliation as JSON.")] = False,
) -> None:
    """Upsert exports into the ledger by city and request id: read = inserted + updated + unchanged + quarantined."""
    from ingest.adapters import FORMAT_NAMES
    from ingest.files import IngestError
    from ledger.store import database_errors, describe
    from ledger.sync import sync_files

    if format != "auto" and format not in FORMAT_NAMES:
        raise _fail(f"--format: {format!r} is not auto or one of {', '.join(FORMAT_NAMES)}", 2)
    settings = Settings.from_env().ensure()
    engine = _open(settings)
    try:
        summary = sync_files(engine, inputs, format, city, progress=not as_json)
    except IngestError as error:
        raise _fail(str(error)) from error
    except database_errors(engine) as error:
        raise _fail(f"the ledger refused the sync (nothing was written): {describe(error)}") from error
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        for line in summary.lines():
            typer.echo(line)


def accountability(
    since: Annotated[
        str | None, typer.Option("--since", help="Only requests created on or after this date (YYYY-MM-DD).")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Instant the outcomes are judged at (ISO 8601; default now).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for accountability.json and one CSV per grouping.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Promised vs actual from the ledger (the estimates residents were given, not re-predictions)."""
    import pandas as pd

    from ledger.accountability import GROUPS, promises
    from ledger.accountability import accountability as measure

    try:
        start = pd.Timestamp(since, tz="UTC") if since else None
        instant = pd.Timestamp(as_of) if as_of else pd.Timestamp.now(tz="UTC")
    except ValueError as error:
        raise _fail(f"--since/--as-of: {error}", 2) from error
    settings = Settings.from_env().ensure()
    figures = measure(promises(_open(settings), start), instant)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "accountability.json").write_text(json.dumps(figures, indent=2))
        for key in GROUPS:
            pd.DataFrame(figures[key]).to_csv(out / f"{key}.csv", index=False)
    if as_json:
        typer.echo(json.dumps(figures, indent=2))
        return
    typer.echo(
        f"{figures['n_promised']} promises, {figures['n_closed']} closed by {figures['as_of']}; "
        f"{figures['open_late']} open and already late"
    )
    if figures["n_closed"]:
        typer.echo(
            f"closed by the promised date {figures['share_closed_by_promise']:.1%}, inside the promised range "
            f"{figures['share_within_range']:.1%}, median lateness {figures['median_lateness_hours']:+.1f} h"
        )
    for row in figures["by_department"]:
        share = row["share_closed_by_promise"]
        typer.echo(
            f"  {row['department']:<28} promised {row['n_promised']:>6} closed {row['n_closed']:>6} "
            f"on time {'-' if share is None else f'{share:.1%}':>6} open late {row['open_late']:>5}"
        )


def ledger_records(settings: Settings, since: str | None) -> tuple[Any, str]:
    """(the ledger's requests as canonical records, the ledger's redacted URL) for `eta311 train --from-ledger`;
    exit 2 for a bad --since, 1 for a missing or outdated ledger or one without requests."""
    import pandas as pd

    from ledger.records import read_records
    from ledger.store import redact

    try:
        start = pd.Timestamp(since, tz="UTC") if since else None
    except ValueError as error:
        raise _fail(f"--since: {since!r} is not a date", 2) from error
    url = _url(settings)
    records = read_records(_open(settings), start)
    if records.empty:
        raise _fail(
            f"ledger {redact(url)}: no requests" + (f" created since {since}" if since else "") + " to train on"
        )
    return records, redact(url)


def refuse_outdated_ledger(settings: Settings) -> None:
    """Before `eta311 serve`: exit 1 naming `eta311 db upgrade` when the configured ledger has another schema.
    An unreachable ledger does not stop the service: it estimates, and /readyz says it is not recording."""
    import logging

    from ledger.store import LedgerError, LedgerOutdated, check_schema, make_engine, redact
    from serving.recording import configured_url

    url = configured_url()
    if url is None:
        return
    try:
        check_schema(make_engine(url))
    except LedgerOutdated as error:
        raise _fail(str(error)) from error
    except LedgerError as error:
        logging.getLogger("eta311").warning("%s; serving without recording until it is back", error)
        return
    logging.getLogger("eta311").info("recording estimates in ledger %s", redact(url))


def register(app: typer.Typer) -> None:
    """Add the ledger's commands to the `eta311` app."""
    app.add_typer(db_app, name="db")
    app.command("sync")(sync)
    app.command("accountability")(accountability)
