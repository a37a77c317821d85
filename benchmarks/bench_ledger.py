"""Benchmark the ledger's writes: `upsert_records` (what `eta311 sync` runs after ingest) into a fresh
SQLite file, and into PostgreSQL with --postgres-url, as rows/s (medians of --repeats runs):

- insert: an empty ledger takes the records;
- resync: the same records again (all unchanged);
- changes: the records with 10% of their outcomes changed (updates and events);

beside a reference measured in the same run: a bare sqlite3 executemany of the same rows into a table of
the same columns without indexes (the floor of what SQLite can take from Python). Also times
`apply_events` (POST /events) in batches of 1,000 events.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from ingest.synth import synthesize
from ledger.schema import RECORD_FIELDS
from ledger.store import make_engine, upgrade
from ledger.sync import _column_values, upsert_records


def _fresh(url_or_folder: str, n: int) -> str:
    if url_or_folder.startswith("postgresql"):
        from tests.postgres import fresh_database

        return fresh_database(url_or_folder)
    return f"sqlite:///{Path(url_or_folder) / f'ledger-{n}.db'}"


def _reference(records: pd.DataFrame, folder: str) -> float:
    path = Path(folder) / "reference.db"
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute(f"CREATE TABLE t ({', '.join(RECORD_FIELDS)})")
    started = time.perf_counter()
    rows = list(zip(*(_column_values(records, name) for name in RECORD_FIELDS), strict=True))
    connection.execute("BEGIN")
    connection.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(RECORD_FIELDS))})", rows)
    connection.execute("COMMIT")
    seconds = time.perf_counter() - started
    connection.close()
    return seconds


def _events_seconds(url: str, records: pd.DataFrame, batches: int) -> tuple[float, int]:
    from ledger.events import apply_events

    engine = make_engine(url)
    open_rows = records[records["status"] == "open"].head(batches * 1000)
    events = [
        {
            "city": city,
            "request_id": rid,
            "status": "closed",
            "closed_at": (created + pd.Timedelta(hours=30)).isoformat(),
        }
        for city, rid, created in zip(open_rows["city"], open_rows["request_id"], open_rows["created_at"], strict=True)
    ]
    started = time.perf_counter()
    for start in range(0, len(events), 1000):
        apply_events(engine, events[start : start + 1000], origin="bench")
    return time.perf_counter() - started, len(events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres-url", default=os.environ.get("ETA311_TEST_POSTGRES_URL"))
    parser.add_argument("--event-batches", type=int, default=5)
    args = parser.parse_args()
    records = synthesize(rows=args.rows, seed=0, start="2024-01-01", days=max(30, args.rows // 4800))
    records = records.drop_duplicates(["city", "request_id"]).reset_index(drop=True)
    changed = records.copy()
    flip = changed.index[changed["status"] == "open"][: len(records) // 10]
    changed.loc[flip, "status"] = "cancelled"
    n = len(records)
    with tempfile.TemporaryDirectory() as folder:
        targets = [("sqlite", folder)] + ([("postgresql", args.postgres_url)] if args.postgres_url else [])
        reference = statistics.median(_reference(records, folder) for _ in range(args.repeats))
        print(f"{n:,} records; reference (bare sqlite3 executemany, no indexes): {n / reference:,.0f} rows/s")
        for name, target in targets:
            timings: dict[str, list[float]] = {"insert": [], "resync": [], "changes": []}
            for run in range(args.repeats):
                url = _fresh(target, run)
                engine = make_engine(url)
                upgrade(engine)
                for phase, frame in (("insert", records), ("resync", records), ("changes", changed)):
                    started = time.perf_counter()
                    upsert_records(engine, frame, f"bench-{phase}")
                    timings[phase].append(time.perf_counter() - started)
                engine.dispose()
            for phase, seconds in timings.items():
                median = statistics.median(seconds)
                ratio = f"; {median / reference:.1f}x the reference" if name == "sqlite" else ""
                print(f"{name} {phase:8s}: median {median:.2f}s = {n / median:,.0f} rows/s{ratio}")
            seconds, count = _events_seconds(url, records, args.event_batches)
            print(f"{name} apply_events: {count:,} events in batches of 1,000: {count / seconds:,.0f} events/s")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
