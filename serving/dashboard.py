"""The service's managers' view: `/dashboard` (HTML) and `/forecast/departments` (the JSON behind it).

The same forecast as `eta311 forecast` (``forecast.departments.build_forecast``), computed from what `eta311
train` and `eta311 snapshot` leave in ``ETA311_HOME/snapshots`` (``forecast_inputs.parquet``: the requests
open at the snapshot and the recent history, with their point-in-time workload features) and the champion
bundles the service already holds. It is computed once when loaded and again only when the inputs file
changes (a new snapshot), so a page view costs a render, not a forecast.

`DashboardSlot` is how the service holds it: the forecast takes about 1 s on a test city and 40 s at full
size, so it is computed in the service's loading thread after the estimator is ready (estimates never wait
for it), recomputed in a background thread when the inputs file changes (the previous report is served
meanwhile), and a request that comes before the first report gets a status to answer 503 with, never a
forecast computed on the request thread.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forecast.departments import (
    DEFAULT_HORIZON_DAYS,
    FORECAST_INPUTS_FILE,
    ForecastReport,
    build_forecast,
    read_forecast_inputs,
)
from forecast.report import render_report
from models.bundle import ModelBundle

log = logging.getLogger(__name__)
DATA_PATH = "/forecast/departments"

WAITING, COMPUTING, READY, UNAVAILABLE = "waiting", "computing", "ready", "unavailable"


class UnknownDepartment(ValueError):
    """The `department` filter names no department of the forecast; `known` lists those that exist."""

    def __init__(self, department: str, known: list[str]) -> None:
        super().__init__(f"unknown department {department!r}; known: {', '.join(known)}")
        self.department = department
        self.known = known


class Dashboard:
    """A forecast report for the service, with HTML and JSON views, optionally for one department."""

    def __init__(
        self,
        snapshots_dir: Path,
        time_bundle: ModelBundle,
        department_bundle: ModelBundle | None,
        report: ForecastReport,
        inputs_mtime: float,
        horizon_days: int = DEFAULT_HORIZON_DAYS,
    ) -> None:
        self.snapshots_dir = Path(snapshots_dir)
        self.time_bundle = time_bundle
        self.department_bundle = department_bundle
        self.report = report
        self.inputs_mtime = inputs_mtime
        self.horizon_days = horizon_days
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        snapshots_dir: Path,
        time_bundle: ModelBundle,
        department_bundle: ModelBundle | None,
        horizon_days: int = DEFAULT_HORIZON_DAYS,
    ) -> Dashboard:
        """Read the forecast inputs and compute the report.

        Raises FileNotFoundError when ``forecast_inputs.parquet`` is missing (run `eta311 train` or `eta311
        snapshot`), ValueError when the bundles are not what the forecast needs or the inputs are empty.
        """
        if time_bundle is None or time_bundle.kind != "time_to_close":
            raise ValueError("the dashboard needs the time-to-close bundle")
        if department_bundle is not None and department_bundle.kind != "department":
            raise ValueError("department_bundle is not a department model")
        report, mtime = cls._compute(Path(snapshots_dir), time_bundle, department_bundle, horizon_days)
        return cls(Path(snapshots_dir), time_bundle, department_bundle, report, mtime, horizon_days)

    @staticmethod
    def _compute(
        snapshots_dir: Path, time_bundle: ModelBundle, department_bundle: ModelBundle | None, horizon_days: int
    ) -> tuple[ForecastReport, float]:
        # The time stamp before the read: a file rewritten during the read then looks stale and is redone.
        mtime = (snapshots_dir / FORECAST_INPUTS_FILE).stat().st_mtime
        inputs, as_of, lookback_days = read_forecast_inputs(snapshots_dir)
        report = build_forecast(inputs, as_of, time_bundle, department_bundle, horizon_days, lookback_days)
        log.info("dashboard forecast as of %s computed (%d departments)", as_of.isoformat(), len(report.departments))
        return report, mtime

    def stale(self) -> bool:
        """True when the inputs file was rewritten since the report was computed (a stat, no read)."""
        try:
            mtime = (self.snapshots_dir / FORECAST_INPUTS_FILE).stat().st_mtime
        except FileNotFoundError:
            return False  # keep serving the last good report
        return mtime != self.inputs_mtime

    def refresh(self) -> bool:
        """Recompute when a newer snapshot was written since; True when it did."""
        path = self.snapshots_dir / FORECAST_INPUTS_FILE
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return False  # keep serving the last good report
        if mtime == self.inputs_mtime:
            return False
        with self._lock:
            if mtime != self.inputs_mtime:
                self.report, self.inputs_mtime = self._compute(
                    self.snapshots_dir, self.time_bundle, self.department_bundle, self.horizon_days
                )
        return True

    def check(self, department: str | None) -> str | None:
        """`department` when the forecast has it, None for no filter; UnknownDepartment (a ValueError) else."""
        if department in (None, ""):
            return None
        if department not in self.report.departments:
            raise UnknownDepartment(department, [str(name) for name in self.report.departments])
        return department

    def html(self, department: str | None = None, refresh: bool = True, promises_by_district: Any | None = None) -> str:
        """The page (all departments, the filter preselected to `department` when given).

        `refresh=False` renders the report in hand (the service recomputes in the background instead).
        `promises_by_district` colours the map's second view: the ledger's share of promises kept per council
        district (a frame with ``council_district`` and ``share_promises_kept``, or a mapping; see
        ``forecast.districts.with_promises``); without it the map says no promises are recorded yet.
        """
        if refresh:
            self.refresh()
        report = self.report
        return render_report(
            report,
            self.check(department),
            csv_links=False,
            data_link=DATA_PATH,
            promises_by_district=promises_by_district,
        )

    def payload(self, department: str | None = None, refresh: bool = True) -> dict[str, Any]:
        """The data behind the page, as JSON-serialisable dicts and lists (one department's rows if given)."""
        if refresh:
            self.refresh()
        return self.report.payload(self.check(department))


@dataclass(frozen=True)
class DashboardView:
    """What a request finds: the dashboard when it is ready, else the status and why (for a 503)."""

    dashboard: Dashboard | None
    status: str
    detail: str


class DashboardSlot:
    """The service's dashboard, computed off the request path (see the module docstring).

    `compute` runs the first forecast synchronously (the service calls it from its loading thread once the
    estimator is ready); `view` is what a request calls: it never computes, but starts a background
    recompute when the inputs file changed since the report (or appeared or changed since a failed attempt),
    so a new `eta311 snapshot` shows without a restart and a broken one is not retried on every request.
    """

    def __init__(self, snapshots_dir: Path, horizon_days: int = DEFAULT_HORIZON_DAYS) -> None:
        self.snapshots_dir = Path(snapshots_dir)
        self.horizon_days = horizon_days
        self.dashboard: Dashboard | None = None
        self.status = WAITING
        self.detail = "waiting for the models to load"
        self.compute_seconds: float | None = None
        self._bundles: tuple[ModelBundle, ModelBundle | None] | None = None
        self._failed_mtime: float | None = None
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    def _inputs_mtime(self) -> float | None:
        try:
            return (self.snapshots_dir / FORECAST_INPUTS_FILE).stat().st_mtime
        except FileNotFoundError:
            return None

    def compute(self, time_bundle: ModelBundle, department_bundle: ModelBundle | None) -> None:
        """Compute the first report now (blocking); failures become status UNAVAILABLE with the reason."""
        with self._lock:
            self._bundles = (time_bundle, department_bundle)
            self.status, self.detail = COMPUTING, "dashboard is being computed"
        self._compute_first()

    def _compute_first(self) -> None:
        assert self._bundles is not None
        mtime = self._inputs_mtime()
        started = time.perf_counter()
        try:
            dashboard = Dashboard.load(self.snapshots_dir, *self._bundles, horizon_days=self.horizon_days)
        except (FileNotFoundError, ValueError) as error:
            self._fail(mtime, f"dashboard inputs unavailable: {error}")
            return
        except Exception as error:  # a fault in the forecast must show in the 503, not kill the loader
            log.exception("dashboard forecast failed")
            self._fail(mtime, f"dashboard forecast failed: {error}")
            return
        with self._lock:
            self.dashboard, self.status, self.detail = dashboard, READY, "ready"
            self.compute_seconds = time.perf_counter() - started
        log.info("dashboard ready in %.2f s", self.compute_seconds)

    def _fail(self, mtime: float | None, detail: str) -> None:
        log.warning("%s", detail)
        with self._lock:
            self.status, self.detail, self._failed_mtime = UNAVAILABLE, detail, mtime

    def _recompute(self) -> None:
        """Background: swap in a report from the new inputs; on failure keep the last good one."""
        dashboard = self.dashboard
        try:
            if dashboard is not None:
                dashboard.refresh()
            else:
                self._compute_first()
        except Exception:
            log.exception("dashboard recompute failed; serving the previous report")
            with self._lock:  # do not retry the same file on every request
                if dashboard is not None:
                    dashboard.inputs_mtime = self._inputs_mtime() or dashboard.inputs_mtime

    def _start(self) -> None:
        """Start one background recompute unless one is running (callers hold the lock)."""
        if self._worker is not None and self._worker.is_alive():
            return
        if self.dashboard is None:
            self.status, self.detail = COMPUTING, "dashboard is being computed"
        self._worker = threading.Thread(target=self._recompute, name="eta311-dashboard", daemon=True)
        self._worker.start()

    def view(self) -> DashboardView:
        """The dashboard for a request, or why there is none; cheap (a stat at most)."""
        with self._lock:
            if self.dashboard is not None:
                if self.dashboard.stale():
                    self._start()
                return DashboardView(self.dashboard, READY, "ready")
            if self.status == UNAVAILABLE and self._bundles is not None:
                mtime = self._inputs_mtime()
                if mtime is not None and mtime != self._failed_mtime:
                    self._start()
            return DashboardView(None, self.status, self.detail)
