"""The loop, replayed over real HTTP against a real ledger: a synthetic city's history synced with `eta311 sync`,
champions trained on it (the session's forecast city) and served with the ledger; then day by day the
intake sends each new request to `/estimate_batch` (and one to `/estimate`) with its id, and the city's
events of the day arrive through `POST /events`. At the end every request and estimate is in the ledger
exactly once, every promise is the first estimate, `GET /requests/{id}` agrees, replaying every event again
changes nothing, a restart keeps everything, and `eta311 accountability --json` equals the same figures
computed here from the answers and the synthetic outcomes.

One server for the module (started twice, for the restart), sharing the session's trained champions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from data_checks.rules import first_blocking_reason
from eta311.cli import app
from ledger.schema import estimates, events, requests
from ledger.store import make_engine
from tests.integration.conftest import AS_OF
from tests.integration.test_service_http import Server

pytestmark = pytest.mark.slow
DAYS = 4
INTAKE = ["request_id", "city", "request_type", "source", "description", "latitude", "longitude", "zip_code"]
INTAKE += ["council_district", "neighborhood"]


def _cli(env: dict[str, str], *args: str) -> dict:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.find("{") :])


def _intake(rows: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for record in rows.to_dict("records"):
        body = {k: (None if pd.isna(record[k]) else record[k]) for k in INTAKE}
        body["created_at"] = record["created_at"].isoformat()
        out.append({k: v for k, v in body.items() if v is not None})
    return out


def _events(rows: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            "request_id": r["request_id"],
            "city": r["city"],
            "status": r["status"],
            "closed_at": r["closed_at"].isoformat(),
            "updated_at": r["closed_at"].isoformat(),
            **({"department": r["department"]} if isinstance(r["department"], str) else {}),
        }
        for r in rows.to_dict("records")
    ]


@pytest.fixture(scope="module")
def replay(forecast_city_trained: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    city = forecast_city_trained
    folder = tmp_path_factory.mktemp("ledger_replay")
    url = f"sqlite:///{folder / 'ledger.db'}"
    env = {
        "ETA311_HOME": str(city["home"]),
        "BENTOML_HOME": str(city["home"] / "bentoml"),
        "ETA311_DATABASE_URL": url,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "BENTOML_DO_NOT_TRACK": "true",
        "GX_ANALYTICS_ENABLED": "false",
    }
    _cli(env, "db", "upgrade", "--json")
    history = _cli(env, "sync", str(city["data"]), "--json")

    full = city["full"]
    valid = full[first_blocking_reason(full).isna()]
    server_env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | env
    server = Server(server_env, folder / "server.log")
    server.wait_ready()
    client = httpx.Client(base_url=server.url, timeout=60)
    answers: dict[str, dict[str, Any]] = {}
    sent_events: list[list[dict[str, Any]]] = []
    counts: list[dict[str, int]] = []
    try:
        for day in range(DAYS):
            start, end = AS_OF + pd.Timedelta(days=day), AS_OF + pd.Timedelta(days=day + 1)
            new = valid[(valid["created_at"] >= start) & (valid["created_at"] < end)]
            bodies = _intake(new)
            single = client.post("/estimate", json=bodies[0])
            assert single.status_code == 200, single.text
            answers[bodies[0]["request_id"]] = single.json()
            for chunk in range(1, len(bodies), 1000):
                response = client.post("/estimate_batch", json={"requests": bodies[chunk : chunk + 1000]})
                assert response.status_code == 200, response.text
                for body, answer in zip(bodies[chunk : chunk + 1000], response.json()["estimates"], strict=True):
                    answers[body["request_id"]] = answer
            closing = valid[valid["closed_at"].notna() & (valid["closed_at"] >= start) & (valid["closed_at"] < end)]
            closing = closing[closing["created_at"] < end]
            day_events = _events(closing)
            for chunk in range(0, len(day_events), 1000):
                batch = day_events[chunk : chunk + 1000]
                response = client.post("/events", json={"events": batch})
                assert response.status_code == 200, response.text
                counts.append(response.json())
                sent_events.append(batch)
        yield {
            "client": client,
            "server": server,
            "env": env,
            "server_env": server_env,
            "url": url,
            "folder": folder,
            "history": history,
            "answers": answers,
            "events": sent_events,
            "counts": counts,
            "valid": valid,
            "end": AS_OF + pd.Timedelta(days=DAYS),
        }
    finally:
        client.close()
        server.stop()


def _table_counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    with engine.connect() as connection:
        return {
            t.name: connection.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (requests, estimates, events)
        }


def test_every_request_and_estimate_is_in_the_ledger_once(replay: dict[str, Any]) -> None:
    answers, history = replay["answers"], replay["history"]
    assert len(answers) > 500
    replay["client"].get("/readyz")  # the writer flushes in the background; GET /requests flushes explicitly
    replay["client"].get(f"/requests/{next(iter(answers))}")
    engine = make_engine(replay["url"])
    with engine.connect() as connection:
        per_request = connection.execute(
            select(estimates.c.request_id, func.count()).group_by(estimates.c.request_id)
        ).all()
        stored = connection.execute(select(func.count()).select_from(requests)).scalar_one()
    assert dict(per_request) == dict.fromkeys(answers, 1)
    assert stored == history["inserted"] + len(answers)
    for batch_counts in replay["counts"]:
        assert batch_counts["read"] == batch_counts["inserted"] + batch_counts["updated"] + batch_counts["unchanged"]
        assert batch_counts["inserted"] == 0  # every event was for a request the ledger knew


def test_get_requests_agrees_with_the_answers_and_the_events(replay: dict[str, Any]) -> None:
    client, answers, valid = replay["client"], replay["answers"], replay["valid"].set_index("request_id")
    closed_ids = {e["request_id"] for batch in replay["events"] for e in batch if e["status"] == "closed"}
    sample = sorted(answers)[:40] + sorted(closed_ids & set(answers))[:40]
    for request_id in sample:
        view = client.get(f"/requests/{request_id}", params={"city": "la"}).json()
        answer = answers[request_id]
        assert view["promise"]["hours"] == answer["hours"]
        assert pd.Timestamp(view["promise"]["expected_close_at"]) == pd.Timestamp(answer["expected_close_at"])
        assert view["revisions"] == []
        if request_id in closed_ids:
            closed_at = valid.loc[request_id, "closed_at"]
            assert view["status"] == "closed" and pd.Timestamp(view["closed_at"]) == closed_at
            assert view["promise_kept"] == (closed_at <= pd.Timestamp(answer["expected_close_at"]))
        else:
            assert view["promise_kept"] is None
    missing = client.get("/requests/no-such-id", params={"city": "la"})
    assert missing.status_code == 404 and "no-such-id" in missing.json()["detail"]


def test_a_bad_event_is_a_400_naming_it_and_nothing_applies(replay: dict[str, Any]) -> None:
    client = replay["client"]
    known = next(iter(replay["answers"]))
    before = _table_counts(replay["url"])
    bad = [
        {"request_id": known, "department": "Somewhere"},
        {"request_id": known, "status": "closed", "closed_at": "2001-01-01T00:00:00+00:00"},
    ]
    response = client.post("/events", json={"events": bad})
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["body", "events", 1, "closed_at"]
    unknown = client.post("/events", json={"events": [{"request_id": "never-seen", "status": "open"}]})
    assert unknown.status_code == 400 and unknown.json()["detail"][0]["loc"][-1] == "request_id"
    malformed = client.post("/events", json={"events": [{"request_id": known, "status": "finished"}]})
    assert malformed.status_code == 400 and malformed.json()["detail"][0]["loc"][-1] == "status"
    assert client.post("/events", json={"events": []}).status_code == 400
    assert _table_counts(replay["url"]) == before
    assert client.get(f"/requests/{known}").json()["department"] != "Somewhere"


def test_replaying_every_event_changes_nothing_and_a_restart_keeps_everything(replay: dict[str, Any]) -> None:
    client = replay["client"]
    before = _table_counts(replay["url"])
    for batch in replay["events"]:
        again = client.post("/events", json={"events": batch}).json()
        assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, len(batch))
    assert _table_counts(replay["url"]) == before
    sample = sorted(replay["answers"])[:20]
    views = {rid: client.get(f"/requests/{rid}").json() for rid in sample}

    replay["server"].stop()
    restarted = Server(replay["server_env"], replay["folder"] / "server2.log")
    try:
        restarted.wait_ready()
        ready = httpx.get(f"{restarted.url}/readyz", timeout=10).json()
        assert ready["ledger"]["recording"] is True, ready
        for rid, view in views.items():
            assert httpx.get(f"{restarted.url}/requests/{rid}", timeout=10).json() == view
    finally:
        restarted.stop()
    assert _table_counts(replay["url"]) == before


def test_accountability_equals_the_figures_computed_from_the_answers(replay: dict[str, Any]) -> None:
    end, valid = replay["end"], replay["valid"].set_index("request_id")
    got = _cli(replay["env"], "accountability", "--json", "--as-of", end.isoformat())
    rows = []
    for request_id, answer in replay["answers"].items():
        record = valid.loc[request_id]
        known_closed = pd.notna(record["closed_at"]) and record["closed_at"] < end
        rows.append(
            {
                "department": record["department"]
                if known_closed and isinstance(record["department"], str)
                else answer["department"]["name"],
                "closed": known_closed and record["status"] == "closed",
                "open": not known_closed,
                "created_at": record["created_at"],
                "closed_at": record["closed_at"],
                "expected": pd.Timestamp(answer["expected_close_at"]),
                "p10": answer["hours"]["p10"],
                "p90": answer["hours"]["p90"],
            }
        )
    frame = pd.DataFrame(rows)
    done = frame[frame["closed"]]
    hour = pd.Timedelta(hours=1)
    assert got["n_promised"] == len(frame)
    assert got["n_closed"] == len(done)
    assert got["share_closed_by_promise"] == pytest.approx((done["closed_at"] <= done["expected"]).mean())
    within = (done["closed_at"] >= done["created_at"] + done["p10"] * hour) & (
        done["closed_at"] <= done["created_at"] + done["p90"] * hour
    )
    assert got["share_within_range"] == pytest.approx(within.mean())
    lateness = ((done["closed_at"] - done["expected"]) / hour).to_numpy(dtype=float)
    assert got["median_lateness_hours"] == pytest.approx(float(np.median(lateness)))
    assert got["open_late"] == int((frame["open"] & (frame["expected"] < end)).sum())
    assert sum(d["n_promised"] for d in got["by_department"]) == len(frame)
