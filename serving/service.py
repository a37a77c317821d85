"""The BentoML 1.4 service: `/estimate`, `/estimate_batch`, `/open311/estimate`, the dashboard, health, metrics.

Started by `eta311 serve` (which imports the champions into the BentoML store first) or directly with
`bentoml serve serving.service:Eta311 --host 127.0.0.1`. The models are declared with `BentoModel` at class
scope, so `bentoml build` packages them into the Bento.

How the BentoML defaults are bent to the contract, and why:
- Models load in a background thread, so the server answers at once and `/readyz` can say 503 (with what
  it is waiting for) until the estimator is ready; a request before that gets 503, never a 500.
- `serving.guard.GuardMiddleware` answers 413 for bodies over 1 MiB before any parsing (BentoML has no
  limit), 415 for anything but one `application/json` Content-Type on the JSON endpoints (BentoML would try
  a multipart parse and could fail with a 500), and serves `/readyz` as JSON with its detail (models,
  snapshot, and whether the registry was unreachable); BentoML's HTTP metrics are labelled by route
  template, so unknown paths cannot grow `/metrics`.
- `/docs.json` is BentoML's own OpenAPI document with every status the service can answer added
  (BentoML lists only 400/404/500 and 200 for the probes).
- Invalid JSON bodies are refused by pydantic with 400 and the field at fault (BentoML's behaviour); the
  request model (`serving.schemas`) adds the checks the intake schema leaves open.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bentoml
import orjson
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.compiled import COMPILED_DIR_ENV
from serving.guard import GuardMiddleware, install_route_labels
from serving.ledger_routes import router as ledger_router
from serving.model_store import BENTO_DEPARTMENT, BENTO_SNAPSHOT, BENTO_TIME_TO_CLOSE
from serving.openapi import complete_openapi
from serving.recording import RECORDER
from serving.schemas import Estimate, EstimateBatch, EstimateBatchRequest, EstimateRequest

log = logging.getLogger("eta311.service")

REGISTRY_NOTE_ENV = "ETA311_REGISTRY_NOTE"
REBALANCE_BATCH = 100  # batches at least this large close their connection (see Eta311.estimate_batch)
SNAPSHOTS_DIR_ENV = "ETA311_SNAPSHOTS_DIR"


@dataclass
class ServiceState:
    """What one worker process has loaded; shared by the service instance, the middleware and the routes."""

    estimator: Any | None = None
    detail: str = "loading models and workload snapshot"
    registry_note: str | None = None
    models: dict[str, str] = field(default_factory=dict)
    ready_seconds: float | None = None
    dashboard: Any | None = None  # serving.dashboard.DashboardSlot, created by the loading thread
    dashboard_error: str | None = None  # why there will be no dashboard slot at all
    counters: dict[str, Any] = field(default_factory=dict)
    damaged: list[str] = field(default_factory=list)  # "model tag/file: reason", never handed to LightGBM

    pool_ready: bool = False  # every worker of the first start has loaded (serving.workers); then stays True

    def readiness(self) -> tuple[int, dict[str, Any]]:
        """Ready once the estimator is loaded here and, at the first start, in every worker (any of them may
        take the next request); the dashboard's status is reported but never waited for."""
        ready = self.estimator is not None and self._every_worker_ready()
        detail = self.detail if ready or self.estimator is None else "waiting for the other workers to load"
        body: dict[str, Any] = {"ready": ready, "detail": detail, "models": self.models}
        if self.damaged:
            body["damaged_files"] = self.damaged
        if self.registry_note:
            body["registry"] = self.registry_note
        if self.ready_seconds is not None:
            body["load_seconds"] = round(self.ready_seconds, 3)
        if self.dashboard is not None:
            body["dashboard"] = self.dashboard.status
        body["ledger"] = RECORDER.status()  # whether estimates are being recorded, and why not
        return (200 if ready else 503), body

    def _every_worker_ready(self) -> bool:
        from serving.workers import expected_workers, ready_workers, run_dir

        folder = run_dir()
        if not self.pool_ready and (folder is None or len(ready_workers(folder)) >= expected_workers()):
            self.pool_ready = True
        return self.pool_ready

    def count(self, estimates: list[dict[str, Any]]) -> None:
        """Prometheus counters per predicted department and per warning kind."""
        from serving.estimator import warning_kind

        by_department, by_warning = self.counters.get("department"), self.counters.get("warning")
        if by_department is None:
            return
        for estimate in estimates:
            by_department.labels(department=estimate["department"]["name"]).inc()
            for message in estimate["warnings"]:
                by_warning.labels(kind=warning_kind(message)).inc()


STATE = ServiceState()


class _ClientErrorFilter(logging.Filter):
    """Drop BentoML's ERROR-with-traceback for invalid client input: it is answered with a 400, not a fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, ValidationError)


def _counters() -> dict[str, Any]:
    """Create the custom counters in the worker (prometheus_client must see BentoML's multiprocess dir)."""
    from prometheus_client import Counter

    if not _COUNTERS:  # once per process: prometheus_client refuses a second registration of a name
        _COUNTERS["department"] = Counter(
            "eta311_estimates_by_department", "Estimates answered, by predicted department.", ["department"]
        )
        _COUNTERS["warning"] = Counter("eta311_estimate_warnings", "Warnings attached to estimates, by kind.", ["kind"])
    return _COUNTERS


_COUNTERS: dict[str, Any] = {}


# --- routes BentoML's @api cannot express (form bodies, GET pages); their OpenAPI merges into /docs.json ---

extras = FastAPI(title="eta311 extras", docs_url=None, redoc_url=None, openapi_url=None)
extras.include_router(ledger_router)  # POST /events, GET /requests/{request_id}


class EstimateResponse(JSONResponse):
    """JSON rendered by orjson: a 1,000-answer batch in ~2 ms instead of ~12 ms. Floats are written in their
    shortest round-trip form, as `json.dumps` writes them, so a client parses the same numbers."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


@extras.exception_handler(RequestValidationError)
async def _bad_query(_: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI says 422; the service's contract for bad input is 400 with the field at fault."""
    detail = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in error.errors()
    ]
    return JSONResponse({"error": "invalid request", "detail": detail}, status_code=400)


@extras.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    """FastAPI's own 4xx (a body that is not JSON: "There was an error parsing the body") in the documented
    shape: `error`, and for a 400 the place at fault in `detail`."""
    if error.status_code == 400:
        detail = [{"loc": ["body"], "msg": str(error.detail), "type": "json_invalid"}]
        return JSONResponse({"error": "invalid request", "detail": detail}, status_code=400)
    return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)


_ERROR = {"content": {"application/json": {"schema": {"type": "object"}}}}
_OPEN311_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Open311Request"}},
            "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/Open311Request"}},
        },
    }
}


def _estimate_or_raise(rows: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
    """Estimates of validated rows; `options` are `Estimator.estimate`'s (accept_language, explain)."""
    estimator = STATE.estimator
    if estimator is None:
        raise bentoml.exceptions.ServiceUnavailable(STATE.detail)
    now = dt.datetime.now(dt.UTC)
    estimates = estimator.estimate(rows, now, **options)
    STATE.count(estimates)
    RECORDER.submit(rows, estimates, now)  # recorded by the ledger's writer thread, off the request path
    return estimates


_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _answer_options(ctx: bentoml.Context, explain: bool) -> dict[str, Any] | JSONResponse:
    """The answer options an HTTP request sets: `?explain=` (default `explain`) and its Accept-Language;
    a 400 naming the query parameter when `explain` is not a boolean (BentoML takes an API's status from
    `ctx.response`, whatever the returned response says)."""
    http = ctx.request
    value = http.query_params.get("explain")
    if value is not None:
        if value.strip().lower() not in _BOOLEANS:
            detail = [{"loc": ["query", "explain"], "msg": "must be true or false", "type": "bool_parsing"}]
            ctx.response.status_code = 400
            return EstimateResponse({"error": "invalid request", "detail": detail}, status_code=400)
        explain = _BOOLEANS[value.strip().lower()]
    return {"accept_language": http.headers.get("accept-language"), "explain": explain}


async def _open311_payload(request: Request) -> Any:
    """The body as a dict (JSON object or form fields); ValueError for a body that is neither."""
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.form()
        except Exception as error:  # starlette raises several types for a broken form
            raise ValueError(f"unreadable form body: {error}") from error
        return {key: value for key, value in form.items() if isinstance(value, str)}
    if media not in ("application/json", ""):
        raise LookupError(media)
    raw = await request.body()
    try:
        payload = json.loads(raw or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"invalid JSON: {error}") from error
    except RecursionError as error:  # json.loads recurses once per level of nesting
        raise ValueError("invalid JSON: nested too deeply") from error
    if not isinstance(payload, dict):
        raise ValueError("the body must be a JSON object")
    return payload


@extras.post(
    "/open311/estimate",
    summary="Open311 GeoReport v2 estimate",
    description="GeoReport v2 request fields (JSON or form-encoded) -> a GeoReport list with expected_datetime, "
    "agency_responsible and service_notice.",
    openapi_extra=_OPEN311_BODY,
    responses={
        200: {"description": "A one-element GeoReport list"},
        400: {"description": "GeoReport errors naming the field", **_ERROR},
        413: {"description": "Body over 1 MiB", **_ERROR},
        415: {"description": "Neither JSON nor a form", **_ERROR},
        503: {"description": "Models not loaded yet", **_ERROR},
    },
)
async def open311_estimate(request: Request) -> JSONResponse:
    from serving.open311 import field_errors, to_georeport, to_intake

    try:
        payload = await _open311_payload(request)
    except LookupError as error:
        return JSONResponse(
            [{"code": 415, "description": f"unsupported media type {error}", "field": None}], status_code=415
        )
    except ValueError as error:
        return JSONResponse([{"code": 400, "description": str(error), "field": None}], status_code=400)
    try:
        intake = to_intake(payload)
    except ValidationError as error:
        return JSONResponse(field_errors(error), status_code=400)
    if STATE.estimator is None:
        return JSONResponse([{"code": 503, "description": STATE.detail, "field": None}], status_code=503)
    options = {"accept_language": request.headers.get("accept-language")}
    estimate = _estimate_or_raise([intake.model_dump()], **options)[0]
    return EstimateResponse(to_georeport(estimate))


def _attach_compiled(bundles: list[tuple[Any, Path]]) -> bool:
    """Predict with the boosters `eta311 serve` compiled for this CPU (models.compiled) when it did: all
    bundles or none. Without them (`--no-compile`, a Bento on another machine, no lleaves) LightGBM predicts
    the same numbers, more slowly."""
    from models.compiled import attach_all

    folder = os.environ.get(COMPILED_DIR_ENV)
    if not folder:
        log.info("no compiled boosters (%s unset): predicting with LightGBM", COMPILED_DIR_ENV)
        return False
    if not attach_all(bundles, folder):
        refused = [bundle.cache.pop("compiled_refused") for bundle, _ in bundles if "compiled_refused" in bundle.cache]
        if refused:  # shown in /readyz: a damaged cache is worth an operator's look even though LightGBM serves
            STATE.models["compiled_refused"] = "; ".join(refused)
        return False
    log.info("predicting with compiled boosters from %s", folder)
    return True


def snapshots_dir() -> Path:
    """Settings.snapshots_dir, passed by `eta311 serve` (serving must not import the eta311 shell)."""
    explicit = os.environ.get(SNAPSHOTS_DIR_ENV)
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("ETA311_HOME", "~/.eta311")).expanduser() / "snapshots"


DASHBOARD_RETRY_AFTER_S = 5


def _dashboard_view(render: str, department: str | None) -> Any:
    """The page or its data from the report in memory; never computes a forecast on the request thread.

    503 with `Retry-After` while the first forecast is being computed (or the models are still loading),
    503 with the reason when its inputs are missing or unusable, 400 with the known departments when the
    filter names none of them.
    """
    from serving.dashboard import COMPUTING, WAITING, UnknownDepartment
    from serving.pages import dashboard_csp, without_paths

    slot = STATE.dashboard
    if slot is None:
        view_status, dashboard = ("unavailable", None) if STATE.dashboard_error else (WAITING, None)
        detail = STATE.dashboard_error or STATE.detail
    else:
        view = slot.view()
        view_status, detail, dashboard = view.status, view.detail, view.dashboard
    if dashboard is None:
        if view_status in (WAITING, COMPUTING):
            return JSONResponse(
                {"error": "dashboard is being computed", "detail": without_paths(detail)},
                status_code=503,
                headers={"Retry-After": str(DASHBOARD_RETRY_AFTER_S)},
            )
        return JSONResponse({"error": "dashboard unavailable", "detail": without_paths(detail)}, status_code=503)
    try:
        if render == "html":
            page = dashboard.html(department, refresh=False)
            return HTMLResponse(page, headers={"Content-Security-Policy": dashboard_csp()})
        return JSONResponse(dashboard.payload(department, refresh=False))
    except UnknownDepartment as error:
        return JSONResponse(
            {
                "error": "invalid request",
                "detail": [
                    {
                        "loc": ["query", "department"],
                        "msg": str(error),
                        "type": "unknown_department",
                        "known": error.known,
                    }
                ],
            },
            status_code=400,
        )


_DASHBOARD_RESPONSES = {
    400: {"description": "Unknown department (the detail lists the known ones) or invalid query", **_ERROR},
    503: {"description": "Dashboard being computed (Retry-After) or its inputs missing", **_ERROR},
}


@extras.get("/", response_class=HTMLResponse, include_in_schema=False)
def index_page() -> HTMLResponse:
    """The service's own index page (instead of BentoML's, which loads a third-party script)."""
    from serving.pages import INDEX_CSP, INDEX_HTML

    return HTMLResponse(INDEX_HTML, headers={"Content-Security-Policy": INDEX_CSP})


@extras.get("/dashboard", response_class=HTMLResponse, responses=_DASHBOARD_RESPONSES)
def dashboard_page(department: str | None = Query(default=None, max_length=200)) -> Any:
    """The managers' dashboard (HTML), optionally for one department."""
    return _dashboard_view("html", department)


@extras.get("/forecast/departments", responses=_DASHBOARD_RESPONSES)
def forecast_departments(department: str | None = Query(default=None, max_length=200)) -> Any:
    """Next week's workload forecast per department (JSON), optionally for one department."""
    return _dashboard_view("json", department)


@extras.get("/docs.json", include_in_schema=False)
def docs_json() -> JSONResponse:
    return JSONResponse(openapi_document())


def openapi_document() -> dict[str, Any]:
    """BentoML's OpenAPI document completed with this service's statuses and answer shapes (built once)."""
    if "doc" not in _OPENAPI_CACHE:
        _OPENAPI_CACHE["doc"] = complete_openapi(Eta311.openapi_spec.asdict())
    return _OPENAPI_CACHE["doc"]


_OPENAPI_CACHE: dict[str, Any] = {}


# --- the service ------------------------------------------------------------------------------------------


@bentoml.service(
    name="eta311",
    workers=1,
    traffic={"timeout": 30},
    logging={"access": {"enabled": False}},
)
@bentoml.asgi_app(extras, path="/")
class Eta311:
    """When will a 311 request be done, and which department will do it."""

    time_to_close_model = bentoml.models.BentoModel(f"{BENTO_TIME_TO_CLOSE}:latest")
    department_model = bentoml.models.BentoModel(f"{BENTO_DEPARTMENT}:latest")
    snapshot_model = bentoml.models.BentoModel(f"{BENTO_SNAPSHOT}:latest")

    def __init__(self) -> None:
        STATE.registry_note = os.environ.get(REGISTRY_NOTE_ENV) or None
        if STATE.registry_note:
            log.warning("%s", STATE.registry_note)
        STATE.counters = _counters()
        RECORDER.start()  # the ledger's writer thread, when a ledger is configured (serving.recording)
        logging.getLogger("bentoml._internal.server.http_app").addFilter(_ClientErrorFilter())
        from serving.workers import others_ready, run_dir

        folder = run_dir()
        if folder is not None and others_ready(folder):
            # A replacement for a worker that died while the others serve: load before accepting any
            # connection (BentoML starts serving once this returns), so no client meets a 503 "not ready".
            log.info("other workers are serving: loading the models before accepting connections")
            self._load()
            return
        self._loader = threading.Thread(target=self._load, name="eta311-loader", daemon=True)
        self._loader.start()

    def _load(self) -> None:
        """Resolve the three BentoML models, build the estimator, then freeze the heap (fewer GC stalls)."""
        import pandas as pd

        from models.bundle import ModelBundle
        from models.files import SNAPSHOT_FILE, bundle_folder
        from serving.estimator import Estimator, Versions
        from serving.model_store import stored_problems

        started = time.perf_counter()
        try:
            time_model, department_model, snapshot = (
                self.time_to_close_model,
                self.department_model,
                self.snapshot_model,
            )
            # Before any file reaches LightGBM: a damaged booster can crash its parser, and so the worker,
            # which would then restart and crash again. Not ready instead, naming the files.
            STATE.damaged = [
                problem for model in (time_model, department_model, snapshot) for problem in stored_problems(model)
            ]
            if STATE.damaged:
                STATE.detail = "model files differ from what was imported: " + "; ".join(STATE.damaged)
                STATE.dashboard_error = STATE.detail
                log.error("not loading the models: %s", STATE.detail)
                return
            # One thread per prediction (OMP_NUM_THREADS=1 from `eta311 serve`): with several requests in
            # flight, LightGBM's thread pool only adds contention (measured in STYLE.md).
            time_folder, department_folder = bundle_folder(time_model.path), bundle_folder(department_model.path)
            time_bundle = ModelBundle.load(time_folder)
            department_bundle = ModelBundle.load(department_folder)
            compiled = _attach_compiled([(time_bundle, time_folder), (department_bundle, department_folder)])
            frame = pd.read_parquet(Path(snapshot.path) / SNAPSHOT_FILE)
            versions = Versions(
                time_model.info.labels.get("registry_version", str(time_model.tag.version)),
                department_model.info.labels.get("registry_version", str(department_model.tag.version)),
            )
            estimator = Estimator(time_bundle, department_bundle, frame, versions)
            estimator.estimate([{"request_type": None}])  # warm the lookups and the boosters
        except Exception as error:  # any failure must show in /readyz, not kill the worker silently
            log.exception("could not load the models")
            STATE.detail = f"models could not be loaded: {error}"
            STATE.dashboard_error = STATE.detail
            return
        STATE.models = {
            "time_to_close": str(time_model.tag),
            "time_to_close_version": versions.time_to_close,
            "department": str(department_model.tag),
            "department_version": versions.department,
            "snapshot": str(snapshot.tag),
            "compiled_boosters": compiled,
        } | STATE.models
        gc.collect()
        gc.freeze()
        STATE.ready_seconds = time.perf_counter() - started
        STATE.detail = STATE.registry_note or "serving the champion models imported from the registry"
        STATE.estimator = estimator
        log.info("models loaded in %.2f s: %s", STATE.ready_seconds, STATE.models)
        from serving.workers import mark_ready, run_dir

        if run_dir() is not None:
            mark_ready(run_dir())
        threading.Thread(
            target=self._load_dashboard, args=(time_bundle, department_bundle), name="eta311-dashboard", daemon=True
        ).start()

    @staticmethod
    def _load_dashboard(time_bundle: Any, department_bundle: Any) -> None:
        """The managers' forecast, computed after the estimator is ready so /readyz never waits for it.

        Estimates are answered meanwhile (the forecast only shares the GIL with them); `/dashboard` answers
        503 with Retry-After until it is done, then serves it from memory.
        """
        try:
            from serving.dashboard import DashboardSlot
        except ImportError as error:  # the forecast's dependencies are optional for estimates
            STATE.dashboard_error = f"dashboard unavailable: {error}"
            log.warning("%s", STATE.dashboard_error)
            return
        slot = DashboardSlot(snapshots_dir())
        STATE.dashboard = slot
        slot.compute(time_bundle, department_bundle)
        gc.collect()
        gc.freeze()  # the report lives as long as the worker: keep it out of later collections

    def __is_ready__(self) -> bool:
        return STATE.estimator is not None

    @bentoml.api(route="/estimate", input_spec=EstimateRequest, output_spec=Estimate)
    async def estimate(self, ctx: bentoml.Context, **request: Any) -> JSONResponse:
        """Estimate for one intake request: hours P10/P50/P90, P(closed within 1/3/7/30 days), department,
        the message in the resident's language and, unless `explain` is false, why the P50 is what it is.

        Async on purpose: one row costs well under a millisecond of CPU, less than BentoML's hop to its
        one-thread pool (a sync API) and back, whose GIL hand-offs also stretched the tail under load.
        """
        options = _answer_options(ctx, explain=True)
        if isinstance(options, JSONResponse):
            return options
        return EstimateResponse(_estimate_or_raise([request], **options)[0])

    @bentoml.api(route="/estimate_batch", input_spec=EstimateBatchRequest, output_spec=EstimateBatch)
    async def estimate_batch(self, ctx: bentoml.Context, requests: list[EstimateRequest]) -> JSONResponse:
        """Estimates for up to 1,000 requests, in order (one vectorised prediction for the whole batch).

        Async on purpose, although a 1,000-row batch takes ~40 ms of CPU: the work holds the GIL for most of
        it (features and answers are Python; the compiled trees run in their own threads), so a thread-pool
        hop would not free the worker, while a blocked event loop stops this worker from accepting the next
        connection and lets an idle worker take it. `Connection: close` on large batches does the same for
        kept-alive clients, which otherwise stay with whichever worker accepted them first (two such clients
        on one worker: 16.6k predictions/s, the other worker idle; spread: 27-29k). A new connection costs
        ~0.1 ms against ~40 ms of work. The rows were validated by BentoML; their field dicts are what
        `model_dump()` would return for this flat model (the estimator copies them), without its cost.
        Explanations only where asked (`?explain=true` or a row's `explain`): they cost more than the rest
        of a row (README, Serving).
        """
        options = _answer_options(ctx, explain=False)
        if isinstance(options, JSONResponse):
            return options
        answers = _estimate_or_raise([r.__dict__ for r in requests], **options)
        headers = {"Connection": "close"} if len(answers) >= REBALANCE_BATCH else None
        return EstimateResponse({"estimates": answers}, headers=headers)


def _route_templates() -> list[str]:
    """Every path the service routes (metrics labels): its APIs, the extra routes, BentoML's own."""
    bentoml_routes = ["/", "/livez", "/healthz", "/readyz", "/metrics", "/docs.json", "/schema.json"]
    extra_routes = [route.path for route in extras.routes if hasattr(route, "path")]
    return [api.route for api in Eta311.apis.values()] + extra_routes + bentoml_routes


Eta311.add_asgi_middleware(GuardMiddleware, state=STATE)
install_route_labels(_route_templates)
