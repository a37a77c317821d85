"""The service's ASGI guard in-process: /readyz 503 until loaded, 503 for estimates while loading, 413 over the
body limit (declared or streamed), 415 for non-JSON on the JSON endpoints, bodies passed on intact."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from serving.service import GuardMiddleware, ServiceState


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"received": len(await request.body())})


@pytest.fixture
def guarded() -> Iterator[tuple[TestClient, ServiceState]]:
    state = ServiceState()
    inner = Starlette(routes=[Route("/estimate", echo, methods=["POST"]), Route("/other", echo, methods=["POST"])])
    with TestClient(GuardMiddleware(inner, state=state, max_body=1000)) as client:
        yield client, state


def test_readyz_is_503_with_detail_until_the_estimator_is_loaded(guarded: tuple[TestClient, ServiceState]) -> None:
    client, state = guarded
    waiting = client.get("/readyz")
    assert waiting.status_code == 503 and waiting.json()["ready"] is False and "loading" in waiting.json()["detail"]
    assert client.post("/estimate", json={}).status_code == 503
    state.estimator = object()
    state.registry_note = "tracking store unreachable"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["registry"] == "tracking store unreachable"
    body = b'{"a": 1}'
    assert client.post("/estimate", content=body, headers={"content-type": "application/json"}).json() == {
        "received": 8
    }


def test_bodies_over_the_limit_answer_413(guarded: tuple[TestClient, ServiceState]) -> None:
    client, state = guarded
    state.estimator = object()
    assert client.post("/other", content=b"x" * 1001).status_code == 413

    def stream() -> Iterator[bytes]:
        for _ in range(5):
            yield b"y" * 300

    assert client.post("/other", content=stream()).status_code == 413
    assert client.post("/other", content=b"x" * 1000).json() == {"received": 1000}


def test_non_json_on_json_endpoints_answers_415(guarded: tuple[TestClient, ServiceState]) -> None:
    client, state = guarded
    state.estimator = object()
    assert client.post("/estimate", content=b"a=1", headers={"content-type": "text/plain"}).status_code == 415
    assert client.post("/estimate", content=b"{}", headers={"content-type": "application/json; charset=utf-8"}).json()
    assert client.post("/other", content=b"a=1", headers={"content-type": "text/plain"}).status_code == 200
