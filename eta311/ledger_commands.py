"""The ledger's commands: `eta311 db upgrade`, `eta311 sync` and `eta311 accountability`.

Kept beside `eta311.cli` (which registers them) so that each file stays one job; the same thin-shell rules
apply: settings built here, heavy imports inside the command, exit 1 for a data failure, 2 for usage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

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
    from ledger.sync import sync_files

    if format != "auto" and format not in FORMAT_NAMES:
        raise _fail(f"--format: {format!r} is not auto or one of {', '.join(FORMAT_NAMES)}", 2)
    settings = Settings.from_env().ensure()
    engine = _open(settings)
    try:
        summary = sync_files(engine, inputs, format, city, progress=not as_json)
    except IngestError as error:
        raise _fail(str(error)) from error
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        for line in summary.lines():
            typer.echo(line)


def register(app: typer.Typer) -> None:
    """Add the ledger's commands to the `eta311` app."""
    app.add_typer(db_app, name="db")
    app.command("sync")(sync)
