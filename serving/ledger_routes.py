"""The ledger's HTTP routes: `POST /events` (the city's status changes in) and `GET /requests/{request_id}`
(a request, its promise and revisions). Mounted on the service's FastAPI app; their OpenAPI document merges
into `/docs.json`.

Both run in FastAPI's thread pool (plain `def`): a write or a read waits on the database, never on the
event loop that answers estimates. Both first flush this worker's queued estimates, so an estimate just
given is visible to the request's next event and to a read.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from features.schema import DEFAULT_CITY
from ledger.events import MAX_EVENTS, LedgerEvent
from serving.recording import RECORDER

log = logging.getLogger("eta311.ledger_routes")

router = APIRouter()
_ERROR = {"content": {"application/json": {"schema": {"type": "object"}}}}


class EventBatchRequest(BaseModel):
    """1 to 1,000 events, applied in order, all or none."""

    model_config = ConfigDict(extra="forbid")

    events: list[LedgerEvent] = Field(min_length=1, max_length=MAX_EVENTS)


class EventCounts(BaseModel):
    """Where every event went: `read == inserted + updated + unchanged`."""

    read: int
    inserted: int
    updated: int
    unchanged: int
    events: int = Field(description="Changes recorded in the ledger's event log.")


def _no_ledger() -> JSONResponse | None:
    if RECORDER.engine is not None:
        return None
    detail = RECORDER.detail if RECORDER.configured else "start the service with a ledger (`eta311 db upgrade`)"
    return JSONResponse({"error": "no ledger", "detail": detail}, status_code=503)


def _unavailable(error: Exception) -> JSONResponse:
    from ledger.store import describe

    message = describe(error)
    log.warning("ledger unavailable: %s", message)
    return JSONResponse({"error": "ledger unavailable", "detail": message}, status_code=503)


@router.post(
    "/events",
    summary="The city's events into the ledger",
    response_model=EventCounts,
    responses={
        400: {"description": "A bad event: `detail[0].loc` is [body, events, index, field]; none applied", **_ERROR},
        413: {"description": "Body over 1 MiB", **_ERROR},
        503: {"description": "No ledger, or the ledger is unavailable (nothing applied)", **_ERROR},
    },
)
def post_events(batch: EventBatchRequest) -> Any:
    """Status changes (status, closed_at, department, updated_at) of requests the ledger knows, or full
    records (with created_at and intake fields) of requests created elsewhere. Applied in order in one
    transaction; an event that changes nothing counts as unchanged, so a replayed batch changes nothing."""
    from ledger.events import EventError, apply_events
    from ledger.store import database_errors

    refused = _no_ledger()
    if refused is not None:
        return refused
    RECORDER.flush()
    try:
        counts = apply_events(RECORDER.engine, batch.events, origin="api")
    except EventError as error:
        return JSONResponse({"error": "invalid request", "detail": [error.detail()]}, status_code=400)
    except database_errors(RECORDER.engine) as error:
        return _unavailable(error)
    read = len(batch.events)
    return {"read": read, "inserted": counts.inserted, "updated": counts.updated, "unchanged": counts.unchanged} | {
        "events": counts.events
    }


@router.get(
    "/requests/{request_id}",
    summary="A request as the ledger knows it: status, promise, revisions, promise kept",
    responses={
        404: {"description": "The ledger does not know this request", **_ERROR},
        503: {"description": "No ledger, or the ledger is unavailable", **_ERROR},
    },
)
def get_request(
    request_id: str = Path(min_length=1, max_length=128),
    city: str = Query(default=DEFAULT_CITY, min_length=1, max_length=32),
) -> Any:
    """`promise` is the first estimate given for the request; `promise_kept` is whether it closed at or before
    the promised `expected_close_at` (null while open or without a promise)."""
    from ledger.estimates import request_view
    from ledger.store import database_errors

    refused = _no_ledger()
    if refused is not None:
        return refused
    RECORDER.flush()
    try:
        view = request_view(RECORDER.engine, city, request_id)
    except database_errors(RECORDER.engine) as error:
        return _unavailable(error)
    if view is None:
        return JSONResponse(
            {"error": "unknown request", "detail": f"no request {request_id!r} in city {city!r}"}, status_code=404
        )
    return view
