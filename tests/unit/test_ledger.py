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


def _upgraded(url: str):
    engine = make_engine(url)
    upgrade(engine)
    return engine


def test_events_apply_in_order_and_a_replay_changes_nothing(ledger_url: str, records) -> None:  # noqa: F811
    from ledger.events import apply_events

    engine = _upgraded(ledger_url)
    upsert_records(engine, records, "history")
    target = records[records["status"] == "open"].iloc[0]
    created = target["created_at"]
    batch = [
        {"request_id": target["request_id"], "city": "la", "department": "Street Services"},
        {
            "request_id": target["request_id"],
            "status": "closed",
            "closed_at": (created + pd.Timedelta(hours=7)).isoformat(),
            "updated_at": (created + pd.Timedelta(hours=7)).isoformat(),
        },
        {"request_id": "elsewhere-1", "created_at": created.isoformat(), "request_type": "Graffiti Removal"},
        {"request_id": records["request_id"].iloc[-1]},  # says nothing new
    ]
    counts = apply_events(engine, batch, origin="api")
    assert (counts.inserted, counts.updated, counts.unchanged, counts.events) == (1, 2, 1, 2)
    again = apply_events(engine, batch, origin="api")
    assert (again.inserted, again.updated, again.unchanged, again.events) == (0, 0, 4, 0)
    assert _count(engine, events) == 2
    with engine.connect() as connection:
        row = connection.execute(select(requests).where(requests.c.request_id == target["request_id"])).mappings().one()
    assert (row["status"], row["department"]) == ("closed", "Street Services")
    assert row["closed_at"] == (created + pd.Timedelta(hours=7)).value // 1000


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"request_id": "nobody-knows"}, "request_id"),
        ({"request_id": "R", "status": "done"}, "status"),
        ({"request_id": "R", "closed_at": "2024-01-01T00:00:00"}, "closed_at"),  # no offset
        ({"request_id": "R", "colour": "red"}, "colour"),
        ({"request_id": "R", "status": "closed"}, "closed_at"),  # closed without a close time
        ({"request_id": "R", "status": "closed", "closed_at": "2001-01-01T00:00:00+00:00"}, "closed_at"),
    ],
)
def test_a_bad_event_names_its_index_and_field_and_nothing_applies(tmp_path, records, event, field) -> None:
    from ledger.events import EventError, apply_events

    engine = _upgraded(f"sqlite:///{tmp_path / 'ledger.db'}")
    first = records[records["status"] == "open"].iloc[0]
    upsert_records(engine, records.loc[[first.name]], "history")
    good = {"request_id": first["request_id"], "department": "Somewhere Else"}
    bad = {**event, "request_id": first["request_id"] if event["request_id"] == "R" else event["request_id"]}
    with pytest.raises(EventError) as caught:
        apply_events(engine, [good, good, bad])
    assert caught.value.index == 2
    assert caught.value.detail()["loc"] == ["body", "events", 2, field]
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(events)).scalar_one() == 0
        department = connection.execute(
            select(requests.c.department).where(requests.c.request_id == first["request_id"])
        ).scalar_one()
    assert department == first["department"]


def test_the_first_estimate_is_the_promise(ledger_url: str) -> None:  # noqa: F811
    import datetime as dt

    from ledger.estimates import record_estimates, request_view

    engine = _upgraded(ledger_url)
    created = dt.datetime(2024, 3, 11, 9, 30, tzinfo=dt.UTC)

    def answer(p50: float) -> dict:
        expected = (created + dt.timedelta(hours=p50)).isoformat()
        return {
            "expected_close_at": expected,
            "hours": {"p10": p50 / 2, "p50": p50, "p90": p50 * 2},
            "p_closed_within": {"1d": 0.2, "3d": 0.5, "7d": 0.8, "30d": 0.99},
            "department": {"name": "Sanitation", "probability": 0.9},
            "message": f"about {p50} hours",
            "model": {"time_to_close_version": "3", "department_version": "4"},
        }

    row = {"request_id": "A-1", "city": "la", "created_at": created, "request_type": "Bulky Items"}
    assert record_estimates(engine, [(row, answer(48.0))], created) == (1, 1)
    assert record_estimates(engine, [(row, answer(30.0)), ({"request_id": None}, answer(5.0))], created) == (0, 2)
    view = request_view(engine, "la", "A-1")
    assert view["status"] == "open" and view["promise_kept"] is None
    assert view["promise"]["hours"]["p50"] == 48.0
    assert [r["hours"]["p50"] for r in view["revisions"]] == [30.0]
    assert view["promise"]["expected_close_at"] == "2024-03-13T02:30:00-07:00"
    assert request_view(engine, "la", "unknown") is None
    from ledger.events import apply_events

    apply_events(engine, [{"request_id": "A-1", "status": "closed", "closed_at": "2024-03-12T10:00:00+00:00"}])
    assert request_view(engine, "la", "A-1")["promise_kept"] is True


def _answer(request_id: str | None) -> tuple[dict, dict]:
    import datetime as dt

    created = dt.datetime(2024, 3, 11, 9, 30, tzinfo=dt.UTC)
    answer = {
        "expected_close_at": (created + dt.timedelta(hours=30)).isoformat(),
        "hours": {"p10": 5.0, "p50": 30.0, "p90": 90.0},
        "p_closed_within": {"1d": 0.3, "3d": 0.7},
        "department": {"name": "Sanitation", "probability": 0.8},
        "message": "soon",
        "model": {"time_to_close_version": "1", "department_version": "1"},
    }
    return {"request_id": request_id, "city": "la", "created_at": created}, answer


def test_two_writers_on_one_ledger_lose_nothing(ledger_url: str) -> None:  # noqa: F811
    """Two engines (as two service replicas have), writing the same requests' estimates at once."""
    import datetime as dt
    import threading

    from ledger.estimates import record_estimates

    _upgraded(ledger_url)
    engines = [make_engine(ledger_url), make_engine(ledger_url)]
    errors: list[BaseException] = []

    def write(engine, writer: int) -> None:
        try:
            for batch in range(40):
                items = [_answer(f"R-{i}") for i in range(batch * 5, batch * 5 + 5)]
                items += [_answer(f"W{writer}-{batch}")]
                record_estimates(engine, items, dt.datetime.now(dt.UTC))
        except BaseException as error:  # noqa: BLE001  (reported below)
            errors.append(error)

    threads = [threading.Thread(target=write, args=(engine, n)) for n, engine in enumerate(engines)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _count(engines[0], estimates_table()) == 2 * 40 * 6
    assert _count(engines[0], requests) == 200 + 80  # shared ids once, each writer's own ids once


def estimates_table():
    from ledger.schema import estimates

    return estimates


def test_the_recorder_never_raises_and_says_why_it_is_not_recording(tmp_path) -> None:
    """A read-only ledger: estimates are still submitted without error; /readyz's status says why."""
    import datetime as dt

    from serving.recording import Recorder

    path = tmp_path / "ledger.db"
    _upgraded(f"sqlite:///{path}")
    recorder = Recorder()
    recorder.start(f"sqlite:///file:{path}?mode=ro&uri=true")
    for _ in range(3):
        recorder.submit(*[[part] for part in _answer("A-1")], dt.datetime.now(dt.UTC))
    assert recorder.flush(timeout=1.5) is False  # nothing can be written
    status = recorder.status()
    assert status["configured"] is True and status["recording"] is False
    assert "readonly" in status["detail"].replace("-", "").replace(" ", "") and status["pending"] == 3


def test_the_recorder_catches_up_when_a_database_comes_back(postgres_server: str) -> None:  # noqa: F811
    """PostgreSQL goes away mid-run (its database dropped), then comes back: nothing submitted is lost."""
    import datetime as dt
    import time

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from serving.recording import Recorder
    from tests.postgres import fresh_database

    url = fresh_database(postgres_server)
    _upgraded(url)
    recorder = Recorder()
    recorder.start(url)
    now = dt.datetime.now(dt.UTC)
    recorder.submit(*[[part] for part in _answer("A-1")], now)
    assert recorder.flush(timeout=10) and recorder.status()["recording"] is True

    name = make_url(url).database
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    recorder.submit(*[[part] for part in _answer("A-2")], now)
    assert recorder.flush(timeout=2) is False
    assert recorder.status()["recording"] is False and recorder.status()["pending"] == 1

    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    _upgraded(url)
    deadline = time.monotonic() + 30
    while not recorder.flush(timeout=1) and time.monotonic() < deadline:
        pass
    assert recorder.status()["recording"] is True and recorder.status()["pending"] == 0
    assert _count(make_engine(url), estimates_table()) == 1  # the estimate made while it was away
