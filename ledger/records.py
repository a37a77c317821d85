"""The ledger's requests read back as canonical records: what `eta311 train --from-ledger` learns from, so the
loop closes (the city's exports and events flow in through `sync` and `POST /events`, the models learn from
what the ledger holds)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, select

from features.schema import conform
from ledger.schema import INSTANT_COLUMNS, RECORD_FIELDS, from_us, requests


def read_records(engine: Engine, since: pd.Timestamp | None = None, city: str | None = None) -> pd.DataFrame:
    """Every request the ledger holds (created at or after `since`, of `city` when given) as canonical records,
    in the order of their creation."""
    query = select(*(requests.c[name] for name in RECORD_FIELDS)).order_by(requests.c.created_at, requests.c.id)
    if since is not None:
        query = query.where(requests.c.created_at >= int(since.value // 1000))
    if city is not None:
        query = query.where(requests.c.city == city)
    with engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(query).all(), columns=list(RECORD_FIELDS))
    for name in INSTANT_COLUMNS:
        frame[name] = from_us(frame[name]).set_axis(frame.index)
    return conform(frame)
