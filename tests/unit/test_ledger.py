"""The ledger against real databases (SQLite always, PostgreSQL when installed): migrations, the schema check,
idempotent upserts whose counts reconcile, and writes that fail leaving the ledger as it was."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import func, select, text

from ingest.synth import synthesize
from ledger.schema import SCHEMA_REVISION, events, requests
from ledger.store import LedgerError, check_schema, database_url, make_engine, open_ledger, upgrade
from ledger.sync import upsert_records
from tests.postgres import ledger_url, postgres_server  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    frame = synthesize(rows=3000, seed=5, start="2024-01-01", days=20)
    return frame.drop_duplicates(["city", "request_id"]).reset_index(drop=True)


def _count(engine, table) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def test_default_url_is_the_sqlite_file_in_home(tmp_path) -> None:
    assert database_url(tmp_path, {}) == f"sqlite:///{tmp_path / 'ledger.db'}"
    assert database_url(tmp_path, {"ETA311_DATABASE_URL": "postgresql://x/y"}) == "postgresql://x/y"


def test_upgrade_creates_then_is_a_no_op_and_the_check_names_the_command(ledger_url: str) -> None:  # noqa: F811
    engine = make_engine(ledger_url)
    with pytest.raises(LedgerError, match="eta311 db upgrade"):
        check_schema(engine)
    assert upgrade(engine) == (None, SCHEMA_REVISION)
    assert upgrade(engine) == (SCHEMA_REVISION, SCHEMA_REVISION)
    assert check_schema(engine) == SCHEMA_REVISION
    with engine.begin() as connection:  # a ledger written by an older (or newer) version
        connection.execute(text("UPDATE alembic_version SET version_num = '0000_older'"))
    with pytest.raises(LedgerError, match="0000_older.*eta311 db upgrade"):
        open_ledger(ledger_url)


def test_sqlite_runs_in_wal_mode(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"


def test_the_same_records_twice_are_unchanged_and_changes_are_updates(ledger_url: str, records) -> None:  # noqa: F811
    engine = make_engine(ledger_url)
    upgrade(engine)
    first = upsert_records(engine, records, "test", chunk_rows=700)
    assert (first.inserted, first.updated, first.unchanged) == (len(records), 0, 0)
    again = upsert_records(engine, records, "test", chunk_rows=700)
    assert (again.inserted, again.updated, again.unchanged, again.events) == (0, 0, len(records), 0)

    changed = records.copy()
    open_rows = changed.index[changed["status"] == "open"][:25]
    closed_at = changed.loc[open_rows, "created_at"] + pd.Timedelta(hours=5)
    changed.loc[open_rows, "status"] = "closed"
    changed.loc[open_rows, "closed_at"] = closed_at
    new = synthesize(rows=50, seed=99, start="2024-02-01", days=2).assign(
        request_id=lambda f: "new-" + f["request_id"].astype(str)
    )
    result = upsert_records(engine, pd.concat([changed, new], ignore_index=True), "export-2")
    assert (result.inserted, result.updated, result.events) == (50, 25, 25)
    assert result.inserted + result.updated + result.unchanged == len(records) + 50
    assert _count(engine, requests) == len(records) + 50
    with engine.connect() as connection:
        stored = connection.execute(
            select(requests.c.status, requests.c.closed_at).where(
                requests.c.request_id == changed.at[open_rows[0], "request_id"]
            )
        ).one()
        event = connection.execute(select(events).order_by(events.c.id).limit(1)).mappings().one()
    assert stored.status == "closed" and stored.closed_at == closed_at.iloc[0].value // 1000
    assert (event["previous_status"], event["status"], event["origin"]) == ("open", "closed", "export-2")
    # The same changed export again: nothing moves, no new event.
    replay = upsert_records(engine, pd.concat([changed, new], ignore_index=True), "export-2")
    assert (replay.inserted, replay.updated, replay.events) == (0, 0, 0)
    assert _count(engine, events) == 25


def test_a_failing_write_leaves_the_ledger_as_it_was(ledger_url: str, records) -> None:  # noqa: F811
    engine = make_engine(ledger_url)
    upgrade(engine)
    upsert_records(engine, records.iloc[:1000], "first")
    broken = records.copy()
    broken.loc[:999, "status"] = "cancelled"  # would update the first 1,000 ...
    broken.loc[2600, "city"] = None  # ... but a row without a city breaks the NOT NULL constraint
    with pytest.raises(Exception):  # noqa: B017  (the driver's IntegrityError or DataError)
        upsert_records(engine, broken, "broken", chunk_rows=500)
    assert _count(engine, requests) == 1000
    assert _count(engine, events) == 0
    with engine.connect() as connection:
        stored = dict(connection.execute(select(requests.c.request_id, requests.c.status)).all())
    assert stored == dict(zip(records["request_id"][:1000], records["status"][:1000], strict=True))
