"""Open311 GeoReport v2: a POST service-request's fields mapped onto the intake schema, and the answer
shaped as a GeoReport list so an Open311 front end can show it unchanged.

`service_name` (or `service_code` when the name is absent — the rule the Open311 ingest adapter uses) is
the request type; `lat`/`long` are the coordinates; a five-digit zip code at the end of `address_string`
becomes `zip_code` (no geocoding); `requested_datetime` is the creation time; `jurisdiction_id` picks the
city when it is one of ours. GeoReport front ends send more fields (email, names, media_url,
attribute[...]); they are accepted and ignored, as none of them is known to the models. `language` (an
eta311 extension; else the Accept-Language header) picks the language of `service_notice`, which the
answer names in its own `language`.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from features.schema import CITIES, MAX_DESCRIPTION_CHARS
from serving.schemas import EstimateRequest, not_a_boolean, not_a_number, plausible_created_at

_ZIP_AT_END = re.compile(r"\b(\d{5})(?:-\d{4})?\s*$")
# Intake field -> the Open311 field a client sent it as (to name the right field in a 400).
_OPEN311_NAME = {
    "request_type": "service_name",
    "latitude": "lat",
    "longitude": "long",
    "created_at": "requested_datetime",
    "zip_code": "address_string",
    "city": "jurisdiction_id",
}


class Open311Request(BaseModel):
    """The GeoReport v2 POST fields eta311 reads (others are accepted and ignored)."""

    model_config = ConfigDict(
        extra="ignore", str_strip_whitespace=True, allow_inf_nan=False, coerce_numbers_to_str=True
    )

    jurisdiction_id: str | None = Field(default=None, max_length=64)
    service_code: str | None = Field(default=None, max_length=200)
    service_name: str | None = Field(default=None, max_length=200)
    lat: float | None = Field(default=None, ge=-90, le=90)
    long: float | None = Field(default=None, ge=-180, le=180)
    address_string: str | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_CHARS)
    requested_datetime: AwareDatetime | None = Field(
        default=None, description="ISO 8601 with a UTC offset; defaults to now."
    )
    service_request_id: str | None = Field(default=None, max_length=128)
    language: str | None = Field(
        default=None,
        max_length=35,
        description="eta311 extension: BCP 47 tag of the service_notice's language (else Accept-Language).",
    )

    @field_validator("requested_datetime")
    @classmethod
    def _plausible_time(cls, value: AwareDatetime | None) -> AwareDatetime | None:
        return plausible_created_at(value)

    @field_validator("requested_datetime", mode="before")
    @classmethod
    def _time_is_text(cls, value: Any) -> Any:
        return not_a_number(value)

    @field_validator("lat", "long", mode="before")
    @classmethod
    def _coordinate_is_number(cls, value: Any) -> Any:
        return not_a_boolean(value)


class Open311Response(BaseModel):
    """One element of the GeoReport answer list."""

    service_request_id: str | None = None
    service_notice: str
    expected_datetime: str
    agency_responsible: str
    language: str = Field(description="eta311 extension: the language of service_notice (BCP 47).")
    account_id: str | None = None
    token: str | None = None


class Open311Error(BaseModel):
    """GeoReport error element: code and description, plus the offending field."""

    code: int
    description: str
    field: str | None = None


def to_intake(payload: Any) -> EstimateRequest:
    """Validate a GeoReport body (a dict from JSON or a form) and map it to an intake request.

    Raises `pydantic.ValidationError` for bad input; `field_errors` turns it into GeoReport errors that
    name the Open311 field.
    """
    request = Open311Request.model_validate(payload)
    zip_match = _ZIP_AT_END.search(request.address_string or "")
    city = request.jurisdiction_id if request.jurisdiction_id in CITIES else None
    fields: dict[str, Any] = {
        "request_id": request.service_request_id,
        "request_type": request.service_name or request.service_code,
        "latitude": request.lat,
        "longitude": request.long,
        "description": request.description,
        "created_at": request.requested_datetime,
        "zip_code": zip_match.group(1) if zip_match else None,
        "language": request.language,
    }
    if city:
        fields["city"] = city
    return EstimateRequest.model_validate(fields)


def field_errors(error: ValidationError) -> list[dict[str, Any]]:
    """GeoReport-style errors (code 400), one per invalid field, named as the client sent it."""
    out = []
    for item in error.errors(include_url=False, include_context=False, include_input=False):
        loc = [str(part) for part in item["loc"]]
        name = _OPEN311_NAME.get(loc[0], loc[0]) if loc else None
        out.append({"code": 400, "description": f"{name}: {item['msg']}" if name else item["msg"], "field": name})
    return out


def to_georeport(estimate: dict[str, Any]) -> list[dict[str, Any]]:
    """The GeoReport answer for one estimate: a one-element list."""
    return [
        {
            "service_request_id": estimate.get("request_id"),
            "service_notice": estimate["message"],
            "expected_datetime": estimate["expected_close_at"],
            "agency_responsible": estimate["department"]["name"],
            "language": estimate["language"],
            "account_id": None,
            "token": None,
        }
    ]
