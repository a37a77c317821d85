"""HTTP request and response models of the service, derived from `features.schema.IntakeRequest`.

The intake fields are defined once, in `features.schema`; the HTTP model only tightens what a public
endpoint must refuse with a field-level 400 (a timestamp far in the future or before any data we have,
NaN or infinite coordinates) and accepts numbers where the city's codes are strings (a zip code or council
district sent as a JSON number means the same string). Response models exist so the OpenAPI document
describes exactly what a client receives.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from features.schema import IntakeRequest

MAX_BATCH = 1000
# A request cannot have been created more than this far ahead of the server clock (clock skew allowance).
MAX_FUTURE = dt.timedelta(days=1)
# No city's open data goes back further; earlier values are typos (e.g. year 0024), not history.
EARLIEST_CREATED_AT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def not_a_boolean(value: Any) -> Any:
    """JSON `true` is not a coordinate (pydantic would read it as 1.0)."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


def not_a_number(value: Any) -> Any:
    """A timestamp must say its UTC offset: a bare number (pydantic would read Unix seconds) does not."""
    if isinstance(value, int | float):
        raise ValueError("must be an ISO 8601 date-time string with a UTC offset, not a number")
    return value


def plausible_created_at(value: dt.datetime | None) -> dt.datetime | None:
    """Refuse instants no intake system produces; the estimate would be meaningless."""
    if value is None:
        return value
    if value > dt.datetime.now(dt.UTC) + MAX_FUTURE:
        raise ValueError(f"created_at is more than {MAX_FUTURE.days} day in the future")
    if value < EARLIEST_CREATED_AT:
        raise ValueError(f"created_at is before {EARLIEST_CREATED_AT.date().isoformat()}")
    return value


class EstimateRequest(IntakeRequest):
    """One intake request as the HTTP API accepts it (flat JSON object, unknown keys refused)."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        allow_inf_nan=False,
        coerce_numbers_to_str=True,
    )

    language: str | None = Field(
        default=None,
        max_length=35,
        description="BCP 47 tag of the resident's language: en, es, ko, hy, zh-Hans (else the Accept-Language "
        "header, else English; an unsupported one is answered in English with a warning).",
    )
    explain: bool | None = Field(
        default=None,
        description="Whether the answer carries `explanation` (default: yes on /estimate, no in a batch; the "
        "`explain` query parameter sets the default).",
    )

    @field_validator("created_at")
    @classmethod
    def _plausible_time(cls, value: dt.datetime | None) -> dt.datetime | None:
        return plausible_created_at(value)

    @field_validator("created_at", mode="before")
    @classmethod
    def _time_is_text(cls, value: Any) -> Any:
        return not_a_number(value)

    @field_validator("latitude", "longitude", mode="before")
    @classmethod
    def _coordinate_is_number(cls, value: Any) -> Any:
        return not_a_boolean(value)


class EstimateBatchRequest(BaseModel):
    """Up to MAX_BATCH requests, answered in order."""

    model_config = ConfigDict(extra="forbid")

    requests: list[EstimateRequest] = Field(min_length=1, max_length=MAX_BATCH)


class Hours(BaseModel):
    p10: float
    p50: float
    p90: float


class DepartmentScore(BaseModel):
    name: str
    probability: float


class Department(DepartmentScore):
    top: list[DepartmentScore]


class ModelVersions(BaseModel):
    time_to_close_version: str
    department_version: str


class Reason(BaseModel):
    family: str = Field(description="request_type, workload, calendar, area or channel.")
    days: float = Field(description="Its share of P50 minus the typical P50, in days (signed).")
    text: str = Field(description="The reason in the answer's language, with its size as told.")


class Explanation(BaseModel):
    """Why the P50 is what it is: the P50 model's feature contributions (TreeSHAP), grouped."""

    typical_days: float = Field(description="P50 of a typical request (the model's expected value).")
    reasons: list[Reason] = Field(description="The two or three biggest, largest first.")


class Estimate(BaseModel):
    """One answer: when the request will most likely be closed, and by whom."""

    request_id: str | None = None
    expected_close_at: str = Field(description="ISO 8601 with the city's UTC offset (the P50).")
    hours: Hours
    p_closed_within: dict[str, float] = Field(description="Keys 1d, 3d, 7d, 30d.")
    department: Department
    message: str
    language: str = Field(description="The language of `message` and `explanation` (BCP 47).")
    explanation: Explanation | None = None
    model: ModelVersions
    warnings: list[str]


class EstimateBatch(BaseModel):
    estimates: list[Estimate]
