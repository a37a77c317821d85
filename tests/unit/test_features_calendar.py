"""Calendar features: the city's local clock, holidays (federal, state, city), next working day, and the
vectorised form agreeing with the per-request form on every value."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from features.calendar import (
    CALENDAR_FEATURES,
    calendar_features,
    calendar_row,
    city_codes,
    local_wall_us,
    local_wall_us_row,
)


def features(instant: str, city: str | None) -> dict[str, float]:
    """Vectorised features of one UTC instant, checked against the per-request form on the way."""
    created = pd.Series(pd.to_datetime([instant], utc=True)).astype("datetime64[us, UTC]")
    bulk = calendar_features(created, [city])
    row = calendar_row(local_wall_us_row(created.iloc[0].to_pydatetime(), city or ""), city or "")
    as_dict = {name: float(bulk[name][0]) for name in CALENDAR_FEATURES}
    assert tuple(as_dict.values()) == row
    return as_dict


def test_friday_night_in_los_angeles_is_saturday_in_new_york() -> None:
    # 2024-01-06 07:30 UTC = Friday 23:30 in LA (PST), Saturday 02:30 in New York (EST).
    la = features("2024-01-06T07:30:00Z", "la")
    assert (la["local_hour"], la["weekday"], la["is_weekend"], la["days_to_next_working_day"]) == (23, 4, 0, 0)
    assert (la["month"], la["day_of_year"]) == (1, 5)
    nyc = features("2024-01-06T07:30:00Z", "nyc")
    assert (nyc["local_hour"], nyc["weekday"], nyc["is_weekend"], nyc["days_to_next_working_day"]) == (2, 5, 1, 2)


def test_long_weekend_counts_the_holiday_monday() -> None:
    # Saturday 2024-01-13; Monday 2024-01-15 is Martin Luther King Jr. Day: next working day is Tuesday.
    saturday = features("2024-01-13T18:00:00Z", "la")
    assert (saturday["is_holiday"], saturday["days_to_next_working_day"]) == (0, 3)
    monday = features("2024-01-15T18:00:00Z", "la")
    assert (monday["is_holiday"], monday["is_weekend"], monday["days_to_next_working_day"]) == (1, 0, 1)


@pytest.mark.parametrize(
    ("instant", "city", "other_city"),
    [
        ("2025-03-31T18:00:00Z", "la", "nyc"),  # Cesar Chavez Day (Monday)
        ("2024-04-01T18:00:00Z", "la", "chicago"),  # Cesar Chavez Day observed (March 31 was a Sunday)
        ("2025-03-17T15:00:00Z", "boston", "nyc"),  # Evacuation Day, Suffolk County
        ("2024-06-17T15:00:00Z", "boston", "chicago"),  # Bunker Hill Day
        ("2024-03-04T18:00:00Z", "chicago", "nyc"),  # Casimir Pulaski Day (Illinois)
    ],
)
def test_state_and_city_holidays_are_local(instant: str, city: str, other_city: str) -> None:
    assert features(instant, city)["is_holiday"] == 1
    assert features(instant, other_city)["is_holiday"] == 0


def test_observances_on_which_offices_stay_open_are_not_days_off() -> None:
    # Susan B. Anthony Day (Feb 15) is listed for New York by the `holidays` package; offices are open.
    assert features("2023-02-15T17:00:00Z", "nyc")["is_holiday"] == 0


def test_observed_new_year_crosses_the_year_boundary() -> None:
    # 2022-01-01 was a Saturday: observed on Friday 2021-12-31.
    friday = features("2021-12-31T18:00:00Z", "nyc")
    assert (friday["is_holiday"], friday["days_to_next_working_day"]) == (1, 3)  # Fri off, Sat, Sun -> Mon


def test_daylight_saving_switch_follows_the_local_clock() -> None:
    # LA springs forward on 2024-03-10 at 02:00 PST -> 03:00 PDT.
    assert features("2024-03-10T09:59:00Z", "la")["local_hour"] == 1
    assert features("2024-03-10T10:00:00Z", "la")["local_hour"] == 3
    # and falls back on 2024-11-03: 01:30 happens twice.
    assert features("2024-11-03T08:30:00Z", "la")["local_hour"] == 1
    assert features("2024-11-03T09:30:00Z", "la")["local_hour"] == 1


def test_day_of_year_in_a_leap_year() -> None:
    assert features("2024-12-31T20:00:00Z", "la")["day_of_year"] == 366
    assert features("2023-12-31T20:00:00Z", "la")["day_of_year"] == 365


@pytest.mark.parametrize("city", ["atlantis", None, ""])
def test_unknown_or_missing_city_uses_utc_and_federal_holidays(city: str | None) -> None:
    out = features("2024-07-04T07:30:00Z", city)
    assert (out["local_hour"], out["weekday"], out["is_holiday"]) == (7, 3, 1)


def test_city_codes_merge_missing_and_blank() -> None:
    codes = city_codes(pd.Series(["la", None, " ", "nyc", "la"], dtype="str"))
    labels = [codes.labels[c] for c in codes.codes]
    assert labels == ["la", "", "", "nyc", "la"]


def test_row_form_accepts_naive_utc_and_pandas_timestamps() -> None:
    aware = dt.datetime(2024, 1, 6, 7, 30, tzinfo=dt.UTC)
    naive = dt.datetime(2024, 1, 6, 7, 30)
    stamp = pd.Timestamp("2024-01-06T07:30:00Z")
    assert local_wall_us_row(aware, "la") == local_wall_us_row(naive, "la") == local_wall_us_row(stamp, "la")


def test_vectorised_and_per_request_forms_agree_everywhere() -> None:
    rng = np.random.default_rng(11)
    n = 3000
    start = pd.Timestamp("2015-01-01", tz="UTC").value // 1000
    span = (pd.Timestamp("2026-12-31", tz="UTC").value // 1000) - start
    micros = start + rng.integers(0, span, n)
    # Add instants around every US DST switch of 2024 and around midnights.
    edges = pd.to_datetime(
        ["2024-03-10T09:59:59Z", "2024-03-10T10:00:00Z", "2024-11-03T08:59:59Z", "2024-11-03T09:00:00Z"]
        + ["2024-03-10T06:59:59Z", "2024-03-10T07:00:00Z", "2024-11-03T05:59:59Z", "2024-11-03T06:00:00Z"],
        utc=True,
    )
    created = pd.Series(
        pd.concat([pd.Series(pd.to_datetime(micros, unit="us", utc=True)), pd.Series(edges)], ignore_index=True)
    ).astype("datetime64[us, UTC]")
    cities = rng.choice(np.array(["la", "nyc", "boston", "chicago", "sf", "elsewhere", ""], dtype=object), len(created))
    bulk = calendar_features(created, cities)
    wall = local_wall_us(created, cities)
    for i, (instant, city) in enumerate(zip(created, cities, strict=True)):
        wall_row = local_wall_us_row(instant.to_pydatetime(), city)
        assert wall_row == wall[i]
        assert calendar_row(wall_row, city) == tuple(float(bulk[name][i]) for name in CALENDAR_FEATURES)


def test_exact_local_midnight_means_the_hour_is_unknown() -> None:
    """Date-only exports write 00:00:00 local; the hour is then missing in both forms, the day still known."""
    created = pd.Series(pd.to_datetime(["2013-12-25T05:00:00Z", "2013-12-25T05:00:01Z"], utc=True))
    bulk = calendar_features(created.astype("datetime64[us, UTC]"), ["nyc", "nyc"])
    assert np.isnan(bulk["local_hour"][0]) and bulk["local_hour"][1] == 0
    row = calendar_row(local_wall_us_row(created.iloc[0].to_pydatetime(), "nyc"), "nyc")
    assert np.isnan(row[0])
    assert row[1:] == tuple(float(bulk[name][0]) for name in CALENDAR_FEATURES[1:])
