"""The service's managers' view: `/dashboard` (HTML) and `/forecast/departments` (the JSON behind it).

The same forecast as `eta311 forecast` (``serving.forecast.build_forecast``), computed from what `eta311
train` and `eta311 snapshot` leave in ``ETA311_HOME/snapshots`` (``forecast_inputs.parquet``: the requests
open at the snapshot and the recent history, with their point-in-time workload features) and the champion
bundles the service already holds. It is computed once when loaded and again only when the inputs file
changes (a new snapshot), so a page view costs a render, not a forecast.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from serving.bundle import ModelBundle
from serving.forecast import (
    DEFAULT_HORIZON_DAYS,
    FORECAST_INPUTS_FILE,
    ForecastReport,
    build_forecast,
    read_forecast_inputs,
)
from serving.report import render_report

log = logging.getLogger(__name__)
DATA_PATH = "/forecast/departments"


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
        inputs, as_of, lookback_days = read_forecast_inputs(snapshots_dir)
        mtime = (snapshots_dir / FORECAST_INPUTS_FILE).stat().st_mtime
        report = build_forecast(inputs, as_of, time_bundle, department_bundle, horizon_days, lookback_days)
        log.info("dashboard forecast as of %s computed (%d departments)", as_of.isoformat(), len(report.departments))
        return report, mtime

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

    def _check(self, department: str | None) -> str | None:
        if department in (None, ""):
            return None
        if department not in self.report.departments:
            raise ValueError(f"unknown department {department!r}; known: {', '.join(self.report.departments)}")
        return department

    def html(self, department: str | None = None) -> str:
        """The page (all departments, the filter preselected to `department` when given)."""
        self.refresh()
        return render_report(self.report, self._check(department), csv_links=False, data_link=DATA_PATH)

    def payload(self, department: str | None = None) -> dict[str, Any]:
        """The data behind the page, as JSON-serialisable dicts and lists (one department's rows if given)."""
        self.refresh()
        return self.report.payload(self._check(department))
