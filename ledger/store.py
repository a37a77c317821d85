"""Where the ledger lives and how to open it: an engine from ETA311_DATABASE_URL or the embedded SQLite
file, Alembic migrations to create or upgrade it, and the schema check the service makes before recording.

SQLite runs in WAL mode (readers never wait for the writer; several worker processes can write, one at a
time) and writing transactions start with BEGIN IMMEDIATE, so two writers queue on the busy timeout
instead of failing when one upgrades a read lock. PostgreSQL is used as it is (psycopg 3).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from ledger.schema import SCHEMA_REVISION

log = logging.getLogger(__name__)

DATABASE_URL_ENV = "ETA311_DATABASE_URL"
LEDGER_FILE = "ledger.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
UPGRADE_HINT = "run `eta311 db upgrade`"
SQLITE_BUSY_TIMEOUT_MS = 30_000


class LedgerError(RuntimeError):
    """The ledger cannot be used: unreachable, not created, or of another schema revision."""


class LedgerOutdated(LedgerError):
    """The ledger is reachable but not at this version's schema revision: `eta311 db upgrade` fixes it."""


def database_url(home: Path | str, environ: dict[str, str] | None = None) -> str:
    """ETA311_DATABASE_URL when set, else the embedded SQLite file ETA311_HOME/ledger.db."""
    env = os.environ if environ is None else environ
    explicit = env.get(DATABASE_URL_ENV)
    if explicit:
        return explicit
    return f"sqlite:///{Path(home).expanduser() / LEDGER_FILE}"


def redact(url: str) -> str:
    """The URL without its password, for messages and /readyz."""
    return make_url(url).render_as_string(hide_password=True)


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and explicit (IMMEDIATE for writes) transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # durable at each checkpoint; safe against corruption
        cursor.execute("PRAGMA cache_size = -65536")  # 64 MiB: a year's unique index stays in memory
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get("ledger_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


@contextlib.contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """One writing transaction: everything inside commits together or not at all."""
    with engine.connect().execution_options(ledger_write=True) as connection, connection.begin():
        yield connection


def _alembic_config(connection: Connection | None = None):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Create or migrate the ledger to the head revision; (revision before, revision after)."""
    from alembic import command

    before = current_revision(engine)
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "head")
    return before, current_revision(engine) or ""


def current_revision(engine: Engine) -> str | None:
    """The ledger's Alembic revision; None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def check_schema(engine: Engine) -> str:
    """The revision when it is the one this code uses; LedgerError naming `eta311 db upgrade` otherwise."""
    try:
        revision = current_revision(engine)
        tables = set(inspect(engine).get_table_names())
    except SQLAlchemyError as error:
        raise LedgerError(f"ledger {redact(str(engine.url))} is unreachable: {_first_line(error)}") from error
    if revision is None:
        detail = "has no ledger tables" if "requests" not in tables else "has no schema revision"
        raise LedgerOutdated(f"ledger {redact(str(engine.url))} {detail}: {UPGRADE_HINT}")
    if revision != SCHEMA_REVISION:
        raise LedgerOutdated(
            f"ledger {redact(str(engine.url))} is at schema revision {revision}, this version needs "
            f"{SCHEMA_REVISION}: {UPGRADE_HINT}"
        )
    return revision


def database_errors(engine: Engine) -> tuple[type[BaseException], ...]:
    """What a failing database raises: SQLAlchemy's errors, and the driver's own from raw cursors (the bulk
    writes use the transaction's DBAPI cursor directly)."""
    return (SQLAlchemyError, engine.dialect.loaded_dbapi.Error)


def describe(error: BaseException) -> str:
    """One line saying what the database said."""
    return _first_line(error)


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error)
    return text.splitlines()[0][:300] if text else type(error).__name__


def open_ledger(url: str) -> Engine:
    """An engine on an upgraded ledger, or LedgerError saying why not (and what to run)."""
    engine = make_engine(url)
    check_schema(engine)
    return engine
