"""The service's outer ASGI layers: the request guard and bounded labels for BentoML's HTTP metrics.

`GuardMiddleware` runs before BentoML parses anything. It answers:
- `/readyz` as JSON with its detail (models, snapshot, registry note, what is missing);
- 415 when a JSON endpoint is sent anything but one `Content-Type: application/json` (BentoML reads the
  first of several Content-Type headers and would run its multipart parser on a multipart one: a 500, or a
  form accepted as JSON); a request without a Content-Type is passed on as JSON, explicitly;
- 413 for bodies over 1 MiB, declared or streamed (BentoML has no limit);
- 503 with `Retry-After` while the models load;
and adds `serving.pages.DEFAULT_HEADERS` (no framing, no sniffing, a deny-all CSP) to every answer that does
not set them itself.

BentoML 1.4 labels its `bentoml_service_request_*` series by the raw request path, so every distinct 404 path
adds about twenty series to `/metrics` for the life of the worker (300 random paths: 143 KB -> 1.26 MB).
`install_route_labels` makes the metrics middleware label with the route template (`/requests/{id}`) and
one `unmatched` label for every other path; the request itself still routes on its real path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from serving.pages import DEFAULT_HEADERS

MAX_BODY_BYTES = 1024 * 1024
JSON_ENDPOINTS = frozenset({"/estimate", "/estimate_batch"})
MODEL_ENDPOINTS = JSON_ENDPOINTS | {"/open311/estimate"}
NOT_READY_RETRY_AFTER_S = 2
UNMATCHED = "unmatched"  # the one metrics label of every path no route serves
_REAL_PATH = "eta311.path"  # scope key: the real path while the metrics middleware sees the label
_JSON_MEDIA = "application/json"


async def send_json(send: Any, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def error_body(path: str, status: int, message: str, detail: str | None = None) -> Any:
    """The error shape of the endpoint: a GeoReport error list for Open311, {error, detail} elsewhere."""
    if path.startswith("/open311/"):
        return [{"code": status, "description": f"{message}: {detail}" if detail else message, "field": None}]
    return {"error": message, "detail": detail} if detail else {"error": message}


def media_problem(path: str, content_types: list[str]) -> str | None:
    """Why the Content-Type headers of a POST to `path` are refused (415), or None when they are fine."""
    if len(content_types) > 1:
        return "more than one Content-Type header"
    if path in JSON_ENDPOINTS and content_types:
        media = content_types[0].split(";")[0].strip().lower()
        if media != _JSON_MEDIA:
            return f"unsupported media type {media!r}: send application/json"
    return None


class GuardMiddleware:
    """413 over the body limit, 415 for anything but JSON on JSON endpoints, 503 while loading, JSON `/readyz`.

    `state` is the worker's `serving.service.ServiceState` (read only: `readiness()`, `estimator`, `detail`).
    """

    def __init__(self, app: Any, state: Any, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.state = state
        self.max_body = max_body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_default_headers(send)
        if _REAL_PATH in scope:  # labelled for the metrics middleware: route on the real path again
            scope = {**scope, "path": scope[_REAL_PATH]}
        path, method = scope["path"], scope["method"]
        if path == "/readyz" and method in ("GET", "HEAD"):
            status, body = self.state.readiness()
            await send_json(send, status, body, None if status == 200 else _retry_after())
            return
        raw_headers = scope.get("headers", [])
        content_types = [v.decode("latin-1") for k, v in raw_headers if k.lower() == b"content-type"]
        model_post = path in MODEL_ENDPOINTS and method == "POST"
        if model_post:
            problem = media_problem(path, content_types)
            if problem:
                await send_json(send, 415, error_body(path, 415, problem))
                return
            if path in JSON_ENDPOINTS and not content_types:  # BentoML's default, made explicit
                scope = {**scope, "headers": [*raw_headers, (b"content-type", _JSON_MEDIA.encode())]}
        declared = [v.decode("latin-1") for k, v in raw_headers if k.lower() == b"content-length"]
        too_big = error_body(path, 413, f"request body is over {self.max_body} bytes")
        if any(value.strip().isdigit() and int(value) > self.max_body for value in declared):
            await send_json(send, 413, too_big)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # client went away before sending the body
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                await send_json(send, 413, too_big)
                return
            if not message.get("more_body", False):
                break
        if model_post and self.state.estimator is None:
            await send_json(send, 503, error_body(path, 503, "not ready", self.state.detail), _retry_after())
            return
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


_DEFAULT_RAW = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in DEFAULT_HEADERS.items()]


def _with_default_headers(send: Any) -> Any:
    """`send` that adds each of DEFAULT_HEADERS the answer does not already carry."""

    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", [])}
            extra = [(name, value) for name, value in _DEFAULT_RAW if name not in present]
            if extra:
                message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending


def _retry_after() -> dict[str, str]:
    return {"Retry-After": str(NOT_READY_RETRY_AFTER_S)}


# --- bounded metric labels ---------------------------------------------------------------------------------


class RouteLabels:
    """Request path -> metrics label: the route template that serves it, else `UNMATCHED`.

    Built on first use from `templates()` (the service's routes, some with `{parameters}`), so routes added
    anywhere in the service module are known.
    """

    def __init__(self, templates: Callable[[], Iterable[str]]) -> None:
        self._templates = templates
        self._exact: set[str] | None = None
        self._patterns: list[tuple[re.Pattern[str], str]] = []

    def __call__(self, path: str) -> str:
        if self._exact is None:
            templates = set(self._templates())
            self._patterns = [(_template_regex(t), t) for t in sorted(templates) if "{" in t]
            self._exact = {t for t in templates if "{" not in t}
        if path in self._exact:
            return path
        for pattern, template in self._patterns:
            if pattern.fullmatch(path):
                return template
        return UNMATCHED


def _template_regex(template: str) -> re.Pattern[str]:
    """`/requests/{id}` -> a regex matching one path segment per parameter (`{p:path}` matches several)."""
    parts = re.split(r"(\{[^}]+\})", template)
    out = []
    for part in parts:
        if part.startswith("{") and part.endswith("}"):
            out.append(".+" if part.endswith(":path}") else "[^/]+")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out))


def install_route_labels(templates: Callable[[], Iterable[str]]) -> None:
    """Make BentoML's HTTP metrics middleware label requests by route template (see the module docstring).

    BentoML has no setting for this; its app factory imports `RunnerTrafficMetricsMiddleware` from
    `bentoml._internal.server.http.instruments` when it builds the worker's app, so a subclass put there
    before (at service import) is the one used. The subclass hands the labelled scope to the middlewares
    between it and `GuardMiddleware`, which restores the real path. Checked against BentoML 1.4.
    """
    from bentoml._internal.server.http import instruments

    base = instruments.RunnerTrafficMetricsMiddleware
    if getattr(base, "eta311_labels", None) is not None:
        base.eta311_labels = RouteLabels(templates)
        return
    labels = RouteLabels(templates)

    class RouteLabelledMetrics(base):  # type: ignore[misc, valid-type]
        eta311_labels = labels

        async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                label = type(self).eta311_labels(scope["path"])
                if label != scope["path"]:
                    scope = {**scope, "path": label, _REAL_PATH: scope["path"]}
            await super().__call__(scope, receive, send)

    instruments.RunnerTrafficMetricsMiddleware = RouteLabelledMetrics
