"""The city's events into the ledger (`POST /events`): status changes of known requests, or full records of
requests created elsewhere, applied all together or not at all.

A batch is checked against the ledger and against its own earlier events (a request may be assigned and
closed in one batch) before anything is written; the first bad event raises `EventError` naming its index
and field, and the transaction is rolled back. An event that changes nothing is counted `unchanged` and
leaves no trace, so a replayed batch changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine

from features.schema import DEFAULT_CITY, MAX_DESCRIPTION_CHARS, Status
from ledger.schema import OUTCOME_FIELDS, micros, now_us
from ledger.store import writing
from ledger.sync import WriteCounts, apply_updates, insert_ignoring_duplicates

MAX_EVENTS = 1000
INTAKE_FIELDS = (
    "request_type",
    "source",
    "description",
    "latitude",
    "longitude",
    "zip_code",
    "council_district",
    "neighborhood",
)


class LedgerEvent(BaseModel):
    """One event: a request's new status (and close time, department), or a full record with created_at."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    request_id: str = Field(min_length=1, max_length=128)
    city: str = Field(default=DEFAULT_CITY, min_length=1, max_length=32)
    status: Status | None = None
    closed_at: AwareDatetime | None = None
    department: str | None = Field(default=None, max_length=200)
    updated_at: AwareDatetime | None = Field(default=None, description="When the city changed it.")
    # A full record (a request the ledger has not seen, created elsewhere) carries its intake fields.
    created_at: AwareDatetime | None = None
    request_type: str | None = Field(default=None, max_length=200)
    source: str | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_CHARS)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    zip_code: str | None = Field(default=None, max_length=10)
    council_district: str | None = Field(default=None, max_length=64)
    neighborhood: str | None = Field(default=None, max_length=200)
    sla_target_at: AwareDatetime | None = None


class EventError(ValueError):
    """A bad event: its index in the batch, the field at fault and why. Nothing of the batch was applied."""

    def __init__(self, index: int, field: str, message: str) -> None:
        super().__init__(f"events[{index}].{field}: {message}")
        self.index, self.field, self.message = index, field, message

    def detail(self) -> dict[str, Any]:
        return {"loc": ["body", "events", self.index, self.field], "msg": self.message, "type": "invalid_event"}


def parse_events(raw: list[Any]) -> list[LedgerEvent]:
    """Validate raw JSON events; EventError at the first one that does not parse."""
    if not 1 <= len(raw) <= MAX_EVENTS:
        raise EventError(0, "events", f"send 1 to {MAX_EVENTS} events, got {len(raw)}")
    parsed = []
    for index, item in enumerate(raw):
        if isinstance(item, LedgerEvent):
            parsed.append(item)
            continue
        try:
            parsed.append(LedgerEvent.model_validate(item))
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first.get("loc", ())) or "event"
            raise EventError(index, field, first.get("msg", "invalid")) from error
    return parsed


_COLUMNS = ("id", "city", "request_id", "created_at", *OUTCOME_FIELDS)


def _stored(connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    postgres = connection.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    # PostgreSQL: lock the rows, so that two replicas applying events to one request queue (SQLite's
    # BEGIN IMMEDIATE already serialises writers).
    lock = " FOR UPDATE" if postgres else ""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    by_city: dict[str, list[str]] = {}
    for city, request_id in keys:
        by_city.setdefault(city, []).append(request_id)
    cursor = connection.connection.cursor()
    try:
        for city, ids in by_city.items():
            cursor.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM requests WHERE city = {mark} "
                f"AND request_id IN ({', '.join([mark] * len(ids))}){lock}",
                [city, *ids],
            )
            for row in cursor.fetchall():
                found[(row[1], row[2])] = dict(zip(_COLUMNS, row, strict=True))
    finally:
        cursor.close()
    return found


def _new_state(event: LedgerEvent, index: int, state: dict[str, Any]) -> dict[str, Any]:
    """The request's outcome after `event` (pure); EventError when the event contradicts the request."""
    fields = event.model_fields_set
    status = event.status if "status" in fields and event.status else state["status"]
    closed_at = micros(event.closed_at) if "closed_at" in fields else state["closed_at"]
    if status == "open" and "closed_at" not in fields:
        closed_at = None  # reopened: the earlier close no longer holds
    department = event.department if "department" in fields else state["department"]
    if closed_at is not None and closed_at < state["created_at"]:
        raise EventError(index, "closed_at", "the request was closed before it was created")
    if status == "closed" and closed_at is None:
        raise EventError(index, "closed_at", "a closed request needs its close time")
    if status == "open" and closed_at is not None:
        raise EventError(index, "closed_at", "an open request has no close time")
    return {"status": status, "closed_at": closed_at, "department": department}


def _full_record(event: LedgerEvent, index: int, clock: int) -> dict[str, Any]:
    if event.created_at is None:
        raise EventError(index, "request_id", f"unknown request {event.request_id!r} in city {event.city!r}")
    row = {name: getattr(event, name) for name in INTAKE_FIELDS}
    row |= {
        "city": event.city,
        "request_id": event.request_id,
        "created_at": micros(event.created_at),
        "status": "open",
        "closed_at": None,
        "department": None,
        "sla_target_at": micros(event.sla_target_at),
        "source_format": "events",
        "source_file": None,
        "source_row": None,
        "first_seen_at": clock,
        "last_updated_at": clock,
    }
    return row


@dataclass
class _Plan:
    inserts: dict[tuple[str, str], dict[str, Any]]
    updates: dict[tuple[str, str], dict[str, Any]]
    events: list[dict[str, Any]]
    counts: WriteCounts


def plan(events: list[LedgerEvent], stored: dict[tuple[str, str], dict[str, Any]], origin: str, clock: int) -> _Plan:
    """What applying `events` in order to `stored` writes (pure): new rows, changed rows, event rows, counts."""
    state = {key: dict(row) for key, row in stored.items()}
    result = _Plan({}, {}, [], WriteCounts())
    for index, event in enumerate(events):
        key = (event.city, event.request_id)
        inserted = key not in state
        if inserted:
            state[key] = result.inserts[key] = _full_record(event, index, clock)
        before = state[key]
        after = _new_state(event, index, before)
        changed = any(after[name] != before[name] for name in OUTCOME_FIELDS)
        if changed:
            result.events.append(
                {
                    "city": event.city,
                    "request_id": event.request_id,
                    "received_at": clock,
                    "updated_at": micros(event.updated_at),
                    **after,
                    "previous_status": before["status"],
                    "previous_closed_at": before["closed_at"],
                    "origin": origin,
                }
            )
            before.update(after)
            if key not in result.inserts:
                result.updates[key] = before
        if inserted:
            result.counts.inserted += 1
        elif changed:
            result.counts.updated += 1
        else:
            result.counts.unchanged += 1
    result.counts.events = len(result.events)
    return result


def apply_events(engine: Engine, raw: list[Any], origin: str = "api") -> WriteCounts:
    """Validate and apply a batch in one transaction; EventError (nothing applied) for a bad event."""
    from ledger.schema import events as events_table
    from ledger.schema import requests

    parsed = parse_events(raw)
    clock = now_us()
    with writing(engine) as connection:
        stored = _stored(connection, {(e.city, e.request_id) for e in parsed})
        planned = plan(parsed, stored, origin, clock)
        rows = list(planned.inserts.values())
        if rows:
            columns = list(rows[0])
            insert_ignoring_duplicates(
                connection, requests, columns, [tuple(r[c] for c in columns) for r in rows], ["city", "request_id"]
            )
        apply_updates(
            connection,
            [
                {
                    "_id": row["id"],
                    "_status": row["status"],
                    "_closed_at": row["closed_at"],
                    "_department": row["department"],
                    "_updated": clock,
                }
                for row in planned.updates.values()
            ],
        )
        if planned.events:
            connection.execute(events_table.insert(), planned.events)
    return planned.counts
