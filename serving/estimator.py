"""The estimation logic of the service, free of any HTTP framework: intake rows in, answers out.

`Estimator` holds both model bundles, their feature pipeline and today's workload snapshot. A call with
many rows is one `transform_rows` and one predict per booster for the whole batch, so `/estimate` (one row)
and `/estimate_batch` (up to 1,000) share the code and the numbers: the same row gives the same answer
alone or in a batch. Numbers are not rounded, so an HTTP answer equals offline scoring to the last bit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from features.pipeline import FeaturePipeline
from features.schema import DEFAULT_CITY, city_timezone
from features.workload import WorkloadSnapshot
from models.bundle import ModelBundle, horizon_key, predict_department, predict_time_to_close, quantile_key
from models.explain import explain_p50, top_reasons
from serving.i18n import reason_text, resident_message, resolve_language

TOP_DEPARTMENTS = 3
_HOUR = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Versions:
    """Registry versions of the two models being served (shown in every answer)."""

    time_to_close: str
    department: str


class Estimator:
    """Both models, their pipeline(s) and the workload snapshot; `estimate` answers a batch of rows."""

    def __init__(
        self,
        time_bundle: ModelBundle,
        department_bundle: ModelBundle,
        snapshot_frame: Any | None,
        versions: Versions,
    ) -> None:
        if time_bundle.kind != "time_to_close" or department_bundle.kind != "department":
            raise ValueError(
                f"expected time_to_close and department bundles, got {time_bundle.kind}, {department_bundle.kind}"
            )
        self.time_bundle = time_bundle
        self.department_bundle = department_bundle
        self.versions = versions
        self.time_pipeline = FeaturePipeline.from_dict(time_bundle.pipeline)
        # Training fits one pipeline for both models; should they ever differ, each gets its own features.
        self.department_pipeline = (
            self.time_pipeline
            if department_bundle.pipeline == time_bundle.pipeline
            else FeaturePipeline.from_dict(department_bundle.pipeline)
        )
        self.snapshot: WorkloadSnapshot | None = (
            self.time_pipeline.load_snapshot(snapshot_frame) if snapshot_frame is not None else None
        )
        self.department_snapshot = (
            self.snapshot
            if self.department_pipeline is self.time_pipeline or snapshot_frame is None
            else self.department_pipeline.load_snapshot(snapshot_frame)
        )
        self.quantiles = [(f"p{round(q * 100)}", quantile_key(q)) for q in time_bundle.spec["quantiles"]]
        self.horizons = [(f"{h:g}d", horizon_key(h)) for h in time_bundle.spec["horizons_days"]]
        self.classes = [str(c) for c in department_bundle.metadata["classes"]]
        self._zones: dict[str, ZoneInfo] = {}
        self._model = {"time_to_close_version": versions.time_to_close, "department_version": versions.department}

    def estimate(
        self,
        rows: Sequence[Mapping[str, Any]],
        now: dt.datetime | None = None,
        accept_language: str | None = None,
        explain: bool = False,
    ) -> list[dict[str, Any]]:
        """Answers for intake rows (`IntakeRequest.model_dump()` dicts), in order; vectorised over the batch.

        A missing created_at means "now" (the service's clock), so the estimate is for a request made
        this instant; the pipeline turns unknown categories and out-of-city locations into missing
        values with a warning, which is passed on in the answer. A row's `language` (else `accept_language`,
        the HTTP header) picks the language of its message and explanation (`serving.i18n`); its `explain`
        (else `explain`) asks for the reasons behind its P50 (`models.explain`), `None` where not asked.
        """
        if not rows:
            return []
        now = now or dt.datetime.now(dt.UTC)
        prepared = []
        for row in rows:
            row = dict(row)
            row["created_at"] = _utc(row.get("created_at"), now)
            if not row.get("city"):
                row["city"] = DEFAULT_CITY
            prepared.append(row)
        warnings: list[list[str]] = []
        matrix, department_matrix = self._features(prepared, warnings)
        times, probabilities = self._predict(matrix, department_matrix)
        asked = [i for i, row in enumerate(prepared) if (explain if row.get("explain") is None else row["explain"])]
        contributions = explain_p50(self.time_bundle, matrix[asked]) if asked else None
        explained = {i: k for k, i in enumerate(asked)}
        top = np.argsort(-probabilities, axis=1, kind="stable")[:, :TOP_DEPARTMENTS]

        # Plain Python values once per column (numpy scalars cost ~100 ns per access), then one dict per row.
        quantile_names = [name for name, _ in self.quantiles]
        horizon_names = [name for name, _ in self.horizons]
        quantile_rows = zip(*(times[key].tolist() for _, key in self.quantiles), strict=True)
        horizon_rows = zip(*(times[key].tolist() for _, key in self.horizons), strict=True)
        top_rows = top.tolist()
        top_probabilities = np.take_along_axis(probabilities, top, axis=1).tolist()
        classes = self.classes
        out = []
        for i, (row, quantile_values, horizon_values) in enumerate(
            zip(prepared, quantile_rows, horizon_rows, strict=True)
        ):
            hours = dict(zip(quantile_names, quantile_values, strict=True))
            ranked = [
                {"name": classes[j], "probability": p} for j, p in zip(top_rows[i], top_probabilities[i], strict=True)
            ]
            zone = self._zone(row["city"])
            expected = (row["created_at"] + hours["p50"] * _HOUR).astimezone(zone)
            language, language_warning = resolve_language(row.get("language"), accept_language)
            if language_warning:
                warnings[i].append(language_warning)
            k = explained.get(i)
            out.append(
                {
                    "request_id": row.get("request_id"),
                    "expected_close_at": expected.isoformat(timespec="seconds"),
                    "hours": hours,
                    "p_closed_within": dict(zip(horizon_names, horizon_values, strict=True)),
                    "department": {**ranked[0], "top": ranked},
                    "message": resident_message(hours, row["created_at"].astimezone(zone), expected, language),
                    "language": language,
                    "explanation": None
                    if k is None
                    else explanation(
                        contributions.typical_hours[k],
                        contributions.family_hours[k],
                        ranked[0]["name"],
                        hours["p90"],
                        language,
                    ),
                    "model": dict(self._model),
                    "warnings": warnings[i],
                }
            )
        return out

    def _features(self, rows: list[dict[str, Any]], warnings: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """(time-to-close matrix, department matrix) of prepared rows; one warnings list per row is appended."""
        matrix = self.time_pipeline.transform_rows(rows, self.snapshot, warnings)
        if self.department_pipeline is self.time_pipeline:
            return matrix, matrix
        department_warnings: list[list[str]] = []
        department_matrix = self.department_pipeline.transform_rows(rows, self.department_snapshot, department_warnings)
        for mine, theirs in zip(warnings, department_warnings, strict=True):
            mine.extend(w for w in theirs if w not in mine)
        return matrix, department_matrix

    def _predict(self, matrix: np.ndarray, department_matrix: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        return predict_time_to_close(self.time_bundle, matrix), predict_department(
            self.department_bundle, department_matrix
        )

    def _zone(self, city: str) -> ZoneInfo:
        zone = self._zones.get(city)
        if zone is None:
            zone = self._zones[city] = ZoneInfo(city_timezone(city))
        return zone


def explanation(
    typical_hours: float, family_hours: np.ndarray, department: str, p90_hours: float, language: str
) -> dict[str, Any]:
    """The `explanation` of one answer: the typical request's P50 and the biggest reasons this one differs,
    told in hours when the answer's message is (P90 under two days), else in days, in `language`.

    Public for other answers of a stored request (e.g. the ledger's): `models.explain.explain_p50` gives
    the numbers for a feature matrix."""
    in_hours = p90_hours < 48
    return {
        "typical_days": float(typical_hours) / 24,
        "reasons": [
            {"family": family, "days": hours / 24, "text": reason_text(family, size, department, in_hours, language)}
            for family, hours, size in top_reasons(family_hours, in_hours)
        ],
    }


def warning_kind(message: str) -> str:
    """A bounded label for a warning message (for metrics: the message itself names client values)."""
    if message.startswith("unseen "):
        return "unseen_" + message.split(" ", 2)[1].rstrip(":")
    if message.startswith("location is outside"):
        return "location_outside_city"
    if message.startswith("workload snapshot is from another day"):
        return "snapshot_other_day"
    if "workload" in message and "missing" in message:
        return "workload_missing"
    if message.startswith("unsupported language"):
        return "unsupported_language"
    return "other"


def _utc(created: Any, now: dt.datetime) -> dt.datetime:
    """created_at as an aware UTC datetime: `now` when missing, ISO strings parsed, naive values taken as UTC
    (as the feature pipeline takes them), so the features and expected_close_at use the same instant and
    adding hours is not wall-clock arithmetic across a DST change."""
    if created is None:
        created = now
    elif isinstance(created, str):
        created = dt.datetime.fromisoformat(created)
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    return created.astimezone(dt.UTC)
