"""Canonical records into the ledger, upserted by (city, request_id): new requests inserted, a changed
outcome (status, close time, department) updated with an event recorded, everything else unchanged.

Vectorised so that a city's year (1.75 M rows) syncs in seconds: the rows already stored are looked up in
batches of keys, compared in pandas, and written with executemany; the whole sync is one transaction, so a
failure leaves the ledger as it was. The same export twice is all `unchanged` the second time.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, bindparam
from tqdm import tqdm

from ledger.schema import INSTANT_COLUMNS, OUTCOME_FIELDS, RECORD_FIELDS, events, now_us, requests, to_us
from ledger.store import writing

log = logging.getLogger(__name__)

CHUNK_ROWS = 50_000
SCAN_RATIO = 4  # scan a city's stored rows when they are at most this many times the input
LOOKUP_KEYS = 10_000  # request ids per lookup query (SQLite allows 32,766 bound values)


@dataclass
class WriteCounts:
    """What a write did to the requests table; `read == inserted + updated + unchanged`."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    events: int = 0

    def add(self, other: WriteCounts) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


@dataclass
class SyncSummary:
    """The reconciliation `eta311 sync` prints: read = inserted + updated + unchanged + quarantined."""

    read: int
    inserted: int
    updated: int
    unchanged: int
    quarantined: int
    by_reason: dict[str, int] = field(default_factory=dict)
    events: int = 0
    files: list[dict] = field(default_factory=list)

    def reconciles(self) -> bool:
        return self.read == self.inserted + self.updated + self.unchanged + self.quarantined

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        out = [
            f"read {self.read} = inserted {self.inserted} + updated {self.updated} + unchanged {self.unchanged}"
            f" + quarantined {self.quarantined}"
        ]
        out += [f"  quarantined {reason}: {count}" for reason, count in self.by_reason.items()]
        out.append(f"events recorded: {self.events}")
        return out


def _placeholder(connection: Connection) -> str:
    return "%s" if connection.dialect.name == "postgresql" else "?"


def insert_ignoring_duplicates(
    connection: Connection, table, columns: list[str], rows: list[tuple], keys: list[str]
) -> int:
    """INSERT ... ON CONFLICT DO NOTHING of positional rows (the same SQL on SQLite and PostgreSQL), through
    the transaction's own DBAPI cursor: SQLAlchemy's per-row parameter handling would cost more than the
    database itself at 100k rows a second. Returns the number of rows actually inserted."""
    if not rows:
        return 0
    mark = _placeholder(connection)
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))}) "
        f"ON CONFLICT ({', '.join(keys)}) DO NOTHING"
    )
    cursor = connection.connection.cursor()
    try:
        cursor.executemany(sql, rows)
        return max(cursor.rowcount, 0)
    finally:
        cursor.close()


def _column_values(frame: pd.DataFrame, name: str) -> list:
    """One column as plain Python values, None where missing (what the database driver binds)."""
    values = frame[name]
    if name in INSTANT_COLUMNS:
        return to_us(values).tolist()
    if values.dtype.kind == "f":
        array = values.to_numpy(dtype="float64")
        out = array.astype(object)
        out[np.isnan(array)] = None
        return out.tolist()
    if values.dtype.kind in "iu":
        return values.tolist()
    return values.astype(object).where(values.notna(), None).tolist()


def _stored(connection: Connection, frame: pd.DataFrame) -> pd.DataFrame:
    """The stored outcome of the rows of `frame` the ledger already holds, keyed by (city, request_id).

    Per city, either one scan of the city's rows (when the input is a sizeable share of them: a first or
    full re-sync) or index probes in batches of ids (a nightly export against a large ledger).
    """
    names = ["id", "city", "request_id", *OUTCOME_FIELDS]
    mark = _placeholder(connection)
    select_sql = f"SELECT {', '.join(names)} FROM requests WHERE city = {mark}"
    found: list = []
    cursor = connection.connection.cursor()
    try:
        for city, ids in frame.groupby("city", sort=False)["request_id"]:
            cursor.execute(f"SELECT count(*) FROM requests WHERE city = {mark}", [city])
            stored = cursor.fetchone()[0]
            if stored <= SCAN_RATIO * len(ids):
                cursor.execute(select_sql, [city])
                found += cursor.fetchall()
                continue
            ids = ids.tolist()
            for start in range(0, len(ids), LOOKUP_KEYS):
                batch = ids[start : start + LOOKUP_KEYS]
                cursor.execute(f"{select_sql} AND request_id IN ({', '.join([mark] * len(batch))})", [city, *batch])
                found += cursor.fetchall()
    finally:
        cursor.close()
    return pd.DataFrame(found, columns=names)


def _differs(new: pd.Series, old: pd.Series) -> np.ndarray:
    """Elementwise "not the same value", where two missing values are the same."""
    new_missing, old_missing = new.isna().to_numpy(), old.isna().to_numpy()
    equal = (new.astype(object).to_numpy() == old.astype(object).to_numpy()) & ~new_missing & ~old_missing
    return ~(equal | (new_missing & old_missing))


def upsert_chunk(
    connection: Connection, chunk: pd.DataFrame, merged: pd.DataFrame, origin: str, clock: int
) -> WriteCounts:
    """Upsert canonical records inside `connection`'s transaction; `merged` holds, row for row, what the
    ledger stores for them (id NaN for new requests)."""
    chunk = chunk.reset_index(drop=True)
    merged = merged.reset_index(drop=True).assign(position=np.arange(len(chunk)))
    known = merged["id"].notna().to_numpy()

    new_rows: list[tuple] = []
    if (~known).any():  # full rows only for new requests: a re-sync converts just the outcome columns
        fresh = chunk.loc[~known]
        clocks = [clock] * len(fresh)
        new_rows = list(zip(*(_column_values(fresh, name) for name in RECORD_FIELDS), clocks, clocks, strict=True))
    columns = [*RECORD_FIELDS, "first_seen_at", "last_updated_at"]
    inserted = insert_ignoring_duplicates(connection, requests, columns, new_rows, ["city", "request_id"])
    values = {name: _column_values(chunk, name) for name in OUTCOME_FIELDS}

    old = merged.loc[known].reset_index(drop=True)
    positions = old["position"].to_numpy()
    new_outcome = {
        name: pd.Series([values[name][i] for i in positions.tolist()], dtype=object) for name in OUTCOME_FIELDS
    }
    changed = np.zeros(len(old), dtype=bool)
    for name in OUTCOME_FIELDS:
        changed |= _differs(new_outcome[name], old[name])
    updates, changes = [], []
    for i in np.flatnonzero(changed).tolist():
        status, closed_at, department = (new_outcome[name].iat[i] for name in OUTCOME_FIELDS)
        updates.append(
            {"_id": int(old["id"].iat[i]), "_status": status, "_closed_at": closed_at, "_department": department}
            | {"_updated": clock}
        )
        changes.append(
            {
                "city": old["city"].iat[i],
                "request_id": old["request_id"].iat[i],
                "received_at": clock,
                "updated_at": None,
                "status": status,
                "closed_at": closed_at,
                "department": department,
                "previous_status": old["status"].iat[i],
                "previous_closed_at": None if pd.isna(old["closed_at"].iat[i]) else int(old["closed_at"].iat[i]),
                "origin": origin,
            }
        )
    apply_updates(connection, updates)
    if changes:
        connection.execute(events.insert(), changes)
    return WriteCounts(
        inserted=inserted,
        updated=len(updates),
        unchanged=len(chunk) - inserted - len(updates),
        events=len(changes),
    )


_UPDATE = (
    requests.update()
    .where(requests.c.id == bindparam("_id"))
    .values(
        status=bindparam("_status"),
        closed_at=bindparam("_closed_at"),
        department=bindparam("_department"),
        last_updated_at=bindparam("_updated"),
    )
)


def apply_updates(connection: Connection, updates: list[dict]) -> None:
    """New outcomes by row id: dicts with _id, _status, _closed_at, _department, _updated."""
    if updates:
        connection.execute(_UPDATE, updates)


def upsert_records(
    engine: Engine, records: pd.DataFrame, origin: str, progress: bool = False, chunk_rows: int = CHUNK_ROWS
) -> WriteCounts:
    """Upsert canonical records in one transaction (all or nothing); progress bar when `progress`."""
    total = WriteCounts()
    clock = now_us()
    keys = pd.DataFrame(
        {"city": records["city"].to_numpy(object), "request_id": records["request_id"].to_numpy(object)}
    )
    with writing(engine) as connection, tqdm(total=len(records), unit="rows", disable=not progress) as bar:
        merged = keys.merge(_stored(connection, keys), on=["city", "request_id"], how="left")
        for start in range(0, len(records), chunk_rows):
            chunk = records.iloc[start : start + chunk_rows]
            total.add(upsert_chunk(connection, chunk, merged.iloc[start : start + chunk_rows], origin, clock))
            bar.update(len(chunk))
    if total.inserted + total.updated + total.unchanged != len(records):
        raise AssertionError("ledger sync lost rows: counts do not reconcile")
    log.info("upserted %d rows from %s: %s", len(records), origin, total)
    return total


def sync_files(engine: Engine, paths: list, fmt: str = "auto", city: str | None = None, progress: bool = False):
    """`eta311 sync`: exports (any adapter) or canonical Parquet files into the ledger; a SyncSummary."""
    from ingest.files import ingest_files

    summary = SyncSummary(read=0, inserted=0, updated=0, unchanged=0, quarantined=0)
    parquet = [p for p in paths if str(p).lower().endswith(".parquet")]
    exports = [p for p in paths if p not in parquet]
    frames = []
    if exports:
        result = ingest_files(exports, fmt, city)
        reconciliation = result.reconciliation
        summary.read += reconciliation.rows_read
        summary.quarantined += reconciliation.quarantined
        summary.by_reason = dict(reconciliation.by_reason)
        summary.files += [vars(f) for f in reconciliation.files]
        frames.append(result.records)
    for path in parquet:
        frame, quarantined, reasons = _canonical_file(path)
        summary.read += len(frame) + quarantined
        summary.quarantined += quarantined
        for reason, count in reasons.items():
            summary.by_reason[reason] = summary.by_reason.get(reason, 0) + count
        summary.files.append(
            {"file": str(path), "format": "parquet", "rows": len(frame) + quarantined, "quarantined": quarantined}
        )
        frames.append(frame)
    origin = "sync:" + ",".join(str(getattr(p, "name", p)) for p in paths)[:480]
    records = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    counts = upsert_records(engine, records, origin, progress) if len(records) else WriteCounts()
    summary.inserted, summary.updated, summary.unchanged, summary.events = (
        counts.inserted,
        counts.updated,
        counts.unchanged,
        counts.events,
    )
    if not summary.reconciles():
        raise AssertionError(f"sync counts do not reconcile: {summary}")
    return summary


def _canonical_file(path) -> tuple[pd.DataFrame, int, dict[str, int]]:
    """A canonical records Parquet: rows breaking a blocking rule are quarantined, as `ingest` would."""
    from collections import Counter

    from data_checks.rules import first_blocking_reason
    from features.schema import read_records
    from ingest.files import IngestError

    try:
        frame = read_records(path)
    except (KeyError, ValueError, OSError) as error:
        raise IngestError(f"{path}: not a canonical records file: {error}") from error
    reasons = first_blocking_reason(frame)
    rejected = reasons.notna().to_numpy()
    return frame.loc[~rejected].reset_index(drop=True), int(rejected.sum()), dict(Counter(reasons[rejected].tolist()))
