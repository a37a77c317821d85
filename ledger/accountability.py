"""Promises measured: what residents were told (the first estimate per request) against what happened.

`promises` reads the ledger (I/O); `accountability` is a pure function of that frame and an instant, so a
test can compute the same figures from its own records. Definitions, for every group and overall:

- n_promised: requests with a promise (created on or after `since` when given);
- n_closed: of those, resolved (status closed, with a close time) by `as_of`;
- share_closed_by_promise: closed at or before the promised `expected_close_at`, over n_closed;
- share_within_range: closed inside the promised P10-P90 (created_at + p10 hours ... + p90 hours), over n_closed;
- median_lateness_hours: median of (closed_at - expected_close_at) in hours over n_closed; negative = early;
- open_late: still open at `as_of` although the promised `expected_close_at` has passed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

from ledger.schema import estimates, from_us, requests

GROUPS = {"by_department": "department", "by_request_type": "request_type", "by_council_district": "council_district"}
UNKNOWN = "(unknown)"


def promises(engine: Engine, since: pd.Timestamp | None = None) -> pd.DataFrame:
    """One row per request with a promise: the first estimate's figures beside the request's outcome."""
    first = (
        select(estimates.c.city, estimates.c.request_id, func.min(estimates.c.id).label("id"))
        .where(estimates.c.request_id.is_not(None))
        .group_by(estimates.c.city, estimates.c.request_id)
        .subquery()
    )
    query = (
        select(
            requests.c.city,
            requests.c.request_id,
            requests.c.created_at,
            requests.c.request_type,
            requests.c.council_district,
            requests.c.status,
            requests.c.closed_at,
            requests.c.department,
            estimates.c.department.label("promised_department"),
            estimates.c.expected_close_at,
            estimates.c.p10_hours,
            estimates.c.p50_hours,
            estimates.c.p90_hours,
        )
        .select_from(first)
        .join(estimates, estimates.c.id == first.c.id)
        .join(requests, (requests.c.city == first.c.city) & (requests.c.request_id == first.c.request_id))
    )
    if since is not None:
        query = query.where(requests.c.created_at >= since.value // 1000)
    with engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(query).all(), columns=[c.name for c in query.selected_columns])
    for name in ("created_at", "closed_at", "expected_close_at"):
        frame[name] = from_us(frame[name]).set_axis(frame.index)
    return frame


def _figures(frame: pd.DataFrame, as_of: pd.Timestamp) -> dict[str, Any]:
    closed = (frame["status"] == "closed") & frame["closed_at"].notna() & (frame["closed_at"] <= as_of)
    done = frame.loc[closed]
    hours = pd.Timedelta(hours=1)
    by_promise = done["closed_at"] <= done["expected_close_at"]
    low = done["created_at"] + done["p10_hours"].astype(float) * hours
    high = done["created_at"] + done["p90_hours"].astype(float) * hours
    within = (done["closed_at"] >= low) & (done["closed_at"] <= high)
    lateness = (done["closed_at"] - done["expected_close_at"]) / hours
    still_open = ~closed & ~frame["status"].isin(["cancelled", "referred"])
    return {
        "n_promised": len(frame),
        "n_closed": int(closed.sum()),
        "share_closed_by_promise": float(by_promise.mean()) if len(done) else None,
        "share_within_range": float(within.mean()) if len(done) else None,
        "median_lateness_hours": float(np.median(lateness.to_numpy(dtype=float))) if len(done) else None,
        "open_late": int((still_open & (frame["expected_close_at"] < as_of)).sum()),
    }


def accountability(frame: pd.DataFrame, as_of: pd.Timestamp) -> dict[str, Any]:
    """The figures overall and per department (the city's, else the promised one), type and district."""
    as_of = pd.Timestamp(as_of)
    as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    frame = frame.assign(department=frame["department"].fillna(frame["promised_department"]))
    out: dict[str, Any] = {"as_of": as_of.isoformat(), **_figures(frame, as_of)}
    for key, column in GROUPS.items():
        values = frame[column].astype(object).where(frame[column].notna(), UNKNOWN)
        out[key] = [{column: name, **_figures(group, as_of)} for name, group in frame.groupby(values, sort=True)]
    return out
