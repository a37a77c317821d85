"""Estimates into the ledger, and a request as the ledger knows it (`GET /requests/{id}`).

Every estimate given is a row; the first one for a (city, request_id), in the order the ledger received
them, is the promise and the later ones are revisions. An estimate for a request the ledger does not know
also records the request (its intake fields, status open), so the city's later events for it apply.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from features.schema import DEFAULT_CITY, city_timezone
from ledger.events import INTAKE_FIELDS
from ledger.schema import estimates, micros, requests
from ledger.store import writing
from ledger.sync import insert_ignoring_duplicates

_REQUEST_COLUMNS = (
    "city",
    "request_id",
    "created_at",
    *INTAKE_FIELDS,
    "status",
    "source_format",
    "first_seen_at",
    "last_updated_at",
)


def _createdmicros(row: Mapping[str, Any], now: dt.datetime) -> int:
    created = row.get("created_at") or now
    if isinstance(created, str):
        created = dt.datetime.fromisoformat(created)
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    return micros(created)


def estimate_rows(
    items: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]], now: dt.datetime
) -> tuple[list[tuple], list[dict[str, Any]]]:
    """(request rows for the requests table, estimate rows) from (intake row, answer) pairs (pure)."""
    clock = micros(now)
    request_rows, estimate_rows_ = [], []
    for row, answer in items:
        city = row.get("city") or DEFAULT_CITY
        request_id = row.get("request_id")
        created = _createdmicros(row, now)
        hours = answer["hours"]
        expected = micros(dt.datetime.fromisoformat(answer["expected_close_at"]))
        estimate_rows_.append(
            {
                "city": city,
                "request_id": request_id,
                "estimated_at": clock,
                "created_at": created,
                "time_to_close_version": answer["model"]["time_to_close_version"],
                "department_version": answer["model"]["department_version"],
                "p10_hours": hours["p10"],
                "p50_hours": hours["p50"],
                "p90_hours": hours["p90"],
                "p_closed_within": dict(answer["p_closed_within"]),
                "expected_close_at": expected,
                "department": answer["department"]["name"],
                "department_probability": answer["department"]["probability"],
                "message": answer["message"],
            }
        )
        if request_id:
            intake = tuple(row.get(name) for name in INTAKE_FIELDS)
            request_rows.append((city, request_id, created, *intake, "open", "estimate", clock, clock))
    return request_rows, estimate_rows_


def record_estimates(
    engine: Engine, items: list[tuple[Mapping[str, Any], Mapping[str, Any]]], now: dt.datetime
) -> tuple[int, int]:
    """Write estimates (and requests new to the ledger) in one transaction; (requests added, estimates)."""
    return write_estimates(engine, *estimate_rows(items, now))


def write_estimates(engine: Engine, request_rows: list[tuple], rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Rows from `estimate_rows` in one transaction: requests new to the ledger, then every estimate."""
    if not rows:
        return 0, 0
    with writing(engine) as connection:
        added = insert_ignoring_duplicates(
            connection, requests, list(_REQUEST_COLUMNS), request_rows, ["city", "request_id"]
        )
        connection.execute(estimates.insert(), rows)
    return added, len(rows)


def _iso(us: int | None, zone: ZoneInfo) -> str | None:
    if us is None:
        return None
    return (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)).astimezone(zone).isoformat()


def _estimate_view(row: Mapping[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    return {
        "estimated_at": _iso(row["estimated_at"], zone),
        "expected_close_at": _iso(row["expected_close_at"], zone),
        "hours": {"p10": row["p10_hours"], "p50": row["p50_hours"], "p90": row["p90_hours"]},
        "p_closed_within": row["p_closed_within"],
        "department": {"name": row["department"], "probability": row["department_probability"]},
        "message": row["message"],
        "model": {
            "time_to_close_version": row["time_to_close_version"],
            "department_version": row["department_version"],
        },
    }


def request_view(engine: Engine, city: str, request_id: str) -> dict[str, Any] | None:
    """The request, its promise and revisions, and whether the promise was kept; None when unknown."""
    with engine.connect() as connection:
        request = (
            connection.execute(select(requests).where(requests.c.city == city, requests.c.request_id == request_id))
            .mappings()
            .first()
        )
        if request is None:
            return None
        given = (
            connection.execute(
                select(estimates)
                .where(estimates.c.city == city, estimates.c.request_id == request_id)
                .order_by(estimates.c.id)
            )
            .mappings()
            .all()
        )
    zone = ZoneInfo(city_timezone(city))
    views = [_estimate_view(row, zone) for row in given]
    promise = given[0] if given else None
    kept = None
    if promise is not None and request["status"] == "closed" and request["closed_at"] is not None:
        kept = request["closed_at"] <= promise["expected_close_at"]
    return {
        "request_id": request_id,
        "city": city,
        "status": request["status"],
        "created_at": _iso(request["created_at"], zone),
        "request_type": request["request_type"],
        "department": request["department"],
        "promise": views[0] if views else None,
        "revisions": views[1:],
        "closed_at": _iso(request["closed_at"], zone),
        "promise_kept": kept,
    }
