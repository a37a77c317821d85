"""The synthetic LA city: deterministic, canonical, calibrated, capacity-bound, censored, trapped, exportable."""

from __future__ import annotations

import csv
import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.schema import CITIES, RECORD_COLUMNS, RECORD_DTYPES, SOURCE_VALUES, STATUS_VALUES
from ingest import synth
from ingest.adapters.common import parse_local_time

LA_TZ = CITIES["la"].timezone
# Big enough that the smallest departments serve several requests a day (queue noise shrinks with volume);
# still ~0.2 s to generate.
YEAR_ROWS = 150_000
# Real MyLA311 exports used for calibration (the 2022 API pull has another schema and most rows open).
REAL_FILES = {
    "myla311_2017-12-27_to_31.csv": "%m/%d/%Y %I:%M:%S %p",
    "myla311_2018-01-01_to_04.csv": "%m/%d/%Y %I:%M:%S %p",
    "myla311_2020-01-01_to_03_lowercase.csv": "%Y-%m-%d %H:%M:%S",
}


@pytest.fixture(scope="module")
def year() -> pd.DataFrame:
    """One synthetic year at test size (the volume scales capacity, so queues behave as at full size)."""
    return synth.synthesize(YEAR_ROWS, seed=7)


@pytest.fixture(scope="module")
def real_la(real_data: Path) -> pd.DataFrame:
    """The three MyLA311 files, pooled: type, source, status and days to close."""
    frames = []
    for name, fmt in REAL_FILES.items():
        raw = pd.read_csv(real_data / "los_angeles" / name, dtype=str)
        raw.columns = [c.lower() for c in raw.columns]
        created = pd.to_datetime(raw["createddate"], format=fmt)
        closed = pd.to_datetime(raw["closeddate"], format=fmt, errors="coerce")
        frames.append(
            pd.DataFrame(
                {
                    "request_type": raw["requesttype"],
                    "source": raw["requestsource"],
                    "status": raw["status"],
                    "days": (closed - created).dt.total_seconds() / 86_400,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _days(records: pd.DataFrame) -> pd.Series:
    return (records["closed_at"] - records["created_at"]).dt.total_seconds() / 86_400


def _non_crew_closed_medians(records: pd.DataFrame) -> pd.Series:
    closed = records[(records["status"] == "closed") & (records["source"] != "crew")]
    return _days(closed).groupby(closed["request_type"]).median()


# --- determinism and schema ---------------------------------------------------------------------------------


def test_same_seed_same_frame_different_seed_different_frame() -> None:
    first = synth.synthesize(5_000, seed=11)
    pd.testing.assert_frame_equal(first, synth.synthesize(5_000, seed=11))
    other = synth.synthesize(5_000, seed=12)
    assert not first["request_type"].equals(other["request_type"])
    assert not first["created_at"].equals(other["created_at"])


def test_canonical_schema_and_values(year: pd.DataFrame) -> None:
    assert tuple(year.columns) == RECORD_COLUMNS
    assert {c: str(t) for c, t in year.dtypes.items()} == RECORD_DTYPES
    assert len(year) == YEAR_ROWS
    assert (year["city"] == "la").all()
    assert (year["source_format"] == "synth").all() and (year["source_file"] == "synth").all()
    assert np.array_equal(year["source_row"].to_numpy(), np.arange(YEAR_ROWS))
    assert year["created_at"].is_monotonic_increasing
    assert set(year["status"]) <= set(STATUS_VALUES)
    assert set(year["source"]) <= set(SOURCE_VALUES)
    assert set(year["department"]) == set(synth.DEPARTMENTS)
    assert set(year["request_type"]) <= set(synth.REQUEST_TYPES)
    assert year["request_id"].str.fullmatch(r"1-\d+").all()
    assert set(year["council_district"]) == {str(d) for d in range(1, 16)}
    assert year["zip_code"].str.fullmatch(r"9\d{4}").all()
    assert year["neighborhood"].notna().all()
    min_lat, max_lat, min_lon, max_lon = CITIES["la"].bounds
    located = year.dropna(subset=["latitude"])
    assert located["latitude"].between(min_lat, max_lat).all()
    assert located["longitude"].between(min_lon, max_lon).all()
    local_days = year["created_at"].dt.tz_convert(LA_TZ).dt.date
    assert local_days.min() == date(2024, 1, 1) and local_days.max() == date(2024, 12, 30)


@pytest.mark.parametrize("rows", [1, 2, 999])
def test_any_row_count_is_honoured(rows: int) -> None:
    assert len(synth.synthesize(rows, seed=0, days=30)) == rows


def test_extraction_before_end_of_intake_is_refused() -> None:
    with pytest.raises(ValueError, match="precedes the end of intake"):
        synth.synthesize(100, seed=0, extracted_at=pd.Timestamp("2024-06-01", tz="UTC"))


# --- calibration --------------------------------------------------------------------------------------------


def test_type_shares_match_the_declared_profile(year: pd.DataFrame) -> None:
    """Within 1.5 points of the declared shares (about 5 standard errors at this size)."""
    declared = pd.Series({p.name: p.share for p in synth.TYPE_PROFILES})
    declared /= declared.sum()
    observed = year["request_type"].value_counts(normalize=True).reindex(declared.index, fill_value=0.0)
    assert (observed - declared).abs().max() < 0.015
    assert 0.40 < observed["Bulky Items"] < 0.52  # "about half"
    assert 0.18 < observed["Graffiti Removal"] < 0.30  # "about a fifth"


def test_type_shares_match_the_real_files(year: pd.DataFrame, real_la: pd.DataFrame) -> None:
    """Within 4 points of the pooled real MyLA311 shares (the real files differ by up to 8 points)."""
    real = real_la["request_type"].value_counts(normalize=True)
    observed = year["request_type"].value_counts(normalize=True).reindex(real.index, fill_value=0.0)
    assert (observed - real).abs().max() < 0.04


def test_department_mostly_follows_the_type(year: pd.DataFrame) -> None:
    """Majority-by-type routing is right ~97% of the time: a few % go elsewhere, as the brief asks."""
    majority = year.groupby("request_type")["department"].agg(lambda s: s.value_counts().index[0])
    accuracy = (year["request_type"].map(majority) == year["department"]).mean()
    assert 0.95 < accuracy < 0.99
    assert majority["Graffiti Removal"] == "Community Beautification"
    assert majority["Bulky Items"] == "Sanitation"
    assert majority["Single Streetlight Issue"] == "Street Lighting"
    assert majority["Other"] == "Information Technology"
    assert majority["Report Water Waste"] == "Water and Power"


def test_channel_mix_per_type(year: pd.DataFrame) -> None:
    crew_share = (year["source"] == "crew").groupby(year["request_type"]).mean()
    assert crew_share["Graffiti Removal"] > 0.5  # graffiti is mostly crew self-reports
    assert crew_share["Bulky Items"] < 0.05
    phone = (year["source"] == "phone").groupby(year["request_type"]).mean()
    assert phone["Bulky Items"] > 0.5 and phone["Other"] < 0.05


def test_year_round_medians_near_the_declared_real_medians(year: pd.DataFrame) -> None:
    """Per-type median days to close (closed, non-crew) within a factor of 2 of `real_median_days`."""
    observed = _non_crew_closed_medians(year)
    for profile in synth.TYPE_PROFILES:
        if not profile.real_median_days:
            continue
        ratio = observed[profile.name] / profile.real_median_days
        assert 0.5 < ratio < 2.0, (profile.name, observed[profile.name], profile.real_median_days)
    assert observed["Report Water Waste"] < 1 / 1440  # auto-closed within a minute
    # The brief's orders of magnitude: graffiti ~a day or two, bulky 2-4 days, encampments weeks.
    assert observed["Graffiti Removal"] < 3 and 2 < observed["Bulky Items"] < 4.5
    assert observed["Homeless Encampment"] > 10


def test_same_window_medians_match_the_real_files(real_la: pd.DataFrame) -> None:
    """Over the real files' calendar window (Dec 27 - Jan 4, holidays included) medians agree within 2x."""
    records = synth.synthesize(
        150_000, seed=3, start="2017-11-01", days=64, extracted_at=pd.Timestamp("2018-09-01", tz="UTC")
    )
    local = records["created_at"].dt.tz_convert(LA_TZ).dt.tz_localize(None)
    window = records[(local >= "2017-12-27") & (local < "2018-01-05")]
    observed = _non_crew_closed_medians(window)
    observed_rows = window["request_type"].value_counts()
    real_closed = real_la[(real_la["status"] == "Closed") & (real_la["source"] != "Driver Self Report")]
    real = real_closed.groupby("request_type")["days"].agg(["median", "size"])
    checked = 0
    for request_type, row in real.iterrows():
        if row["size"] < 100 or row["median"] <= 0 or observed_rows.get(request_type, 0) < 100:
            continue  # a median of fewer rows is noise (lognormal spreads of 1-1.8)
        ratio = observed[request_type] / row["median"]
        assert 0.5 < ratio < 2.0, (request_type, observed[request_type], row["median"])
        checked += 1
    assert checked >= 8


def test_cancelled_and_referred_rates(year: pd.DataFrame) -> None:
    shares = year["status"].value_counts(normalize=True)
    assert 0.018 < shares["cancelled"] < 0.035
    assert 0.0003 < shares.get("referred", 0.0) < 0.0025
    left = year[year["status"].isin(["cancelled", "referred"])]
    assert left["closed_at"].notna().all()  # they leave the queue at a time, like the real exports


def test_intake_calendar(year: pd.DataFrame) -> None:
    """Summer above winter, weekends and holidays below weekdays."""
    local = year["created_at"].dt.tz_convert(LA_TZ)
    per_day = local.dt.date.value_counts()
    per_day.index = pd.to_datetime(per_day.index)
    by_month = per_day.groupby(per_day.index.month).mean()
    assert by_month[[6, 7, 8]].mean() > 1.1 * by_month[[1, 2, 12]].mean()
    holiday_days = {pd.Timestamp(d) for d in synth.la_holidays(date(2024, 1, 1), date(2024, 12, 31))}
    weekday = per_day[(per_day.index.day_of_week < 5) & ~per_day.index.isin(holiday_days)]
    sunday = per_day[per_day.index.day_of_week == 6]
    assert sunday.mean() < 0.6 * weekday.mean()
    assert per_day[pd.Timestamp("2024-07-04")] < 0.6 * weekday.mean()
    assert pd.Timestamp("2024-04-01") in holiday_days  # Cesar Chavez Day (observed)


# --- department capacity ------------------------------------------------------------------------------------


def _weekly(records: pd.DataFrame, department: str) -> pd.DataFrame:
    """Intake and median days to close (closed, non-crew) per week, for full weeks without a holiday."""
    local = records["created_at"].dt.tz_convert(LA_TZ).dt.tz_localize(None)
    week = local.dt.to_period("W")
    mine = records["department"] == department
    intake = mine.groupby(week).sum()
    queued = mine & (records["status"] == "closed") & (records["source"] != "crew")
    median = _days(records[queued]).groupby(week[queued]).median()
    holiday_weeks = {pd.Period(d, "W") for d in synth.la_holidays(date(2024, 1, 1), date(2024, 12, 31))}
    weekly = pd.DataFrame({"intake": intake, "median": median}).iloc[1:-1]
    return weekly[~weekly.index.isin(holiday_weeks)]


def _busy_to_quiet_ratio(weekly: pd.DataFrame) -> float:
    busy = weekly["intake"] >= weekly["intake"].quantile(2 / 3)
    quiet = weekly["intake"] <= weekly["intake"].quantile(1 / 3)
    return float(weekly.loc[busy, "median"].median() / weekly.loc[quiet, "median"].median())


@pytest.mark.parametrize("department", [synth.SANITATION, synth.BEAUTIFICATION])
def test_weeks_with_more_intake_close_slower(year: pd.DataFrame, department: str) -> None:
    weekly = _weekly(year, department)
    assert weekly["intake"].corr(weekly["median"], method="spearman") > 0.3
    assert _busy_to_quiet_ratio(weekly) > 1.08


def test_without_the_capacity_limit_busy_weeks_are_not_slower(monkeypatch: pytest.MonkeyPatch) -> None:
    """The slowdown is the queue's doing: with 100x capacity busy weeks close as fast as quiet ones."""
    unlimited = {k: replace(c, per_working_day=c.per_working_day * 100) for k, c in synth.DEPARTMENT_CAPACITY.items()}
    monkeypatch.setattr(synth, "DEPARTMENT_CAPACITY", unlimited)
    records = synth.synthesize(YEAR_ROWS, seed=7)
    for department in (synth.SANITATION, synth.BEAUTIFICATION):
        assert _busy_to_quiet_ratio(_weekly(records, department)) < 1.06


def test_capacity_schedule_is_known_and_scaled() -> None:
    full = synth.capacity_schedule(synth.REFERENCE_ROWS_PER_YEAR, "2024-01-01", 365)
    assert list(full.columns) == list(synth.DEPARTMENTS) and len(full) == 365
    sanitation = full[synth.SANITATION]
    assert sanitation[date(2024, 1, 2)] == pytest.approx(synth.DEPARTMENT_CAPACITY[synth.SANITATION].per_working_day)
    assert sanitation[date(2024, 1, 6)] < 0.6 * sanitation[date(2024, 1, 2)]  # Saturday
    assert sanitation[date(2024, 7, 4)] < 0.1 * sanitation[date(2024, 7, 3)]  # Independence Day
    half = synth.capacity_schedule(synth.REFERENCE_ROWS_PER_YEAR // 2, "2024-01-01", 365)
    assert half[synth.SANITATION].sum() == pytest.approx(sanitation.sum() / 2, rel=1e-6)
    for department, utilisation in synth.expected_utilisation().items():
        assert 0.8 < utilisation < 0.97, department


# --- censoring ----------------------------------------------------------------------------------------------


def test_censoring_at_extraction(year: pd.DataFrame) -> None:
    extracted = pd.Timestamp("2025-01-01").tz_localize(LA_TZ).tz_convert("UTC")
    assert (year["closed_at"].dropna() <= extracted).all()
    is_open = year["status"] == "open"
    assert year.loc[is_open, "closed_at"].isna().all()
    assert year.loc[year["status"] == "closed", "closed_at"].notna().all()
    local = year["created_at"].dt.tz_convert(LA_TZ)
    last_week = is_open[local >= pd.Timestamp("2024-12-24", tz=LA_TZ)].mean()
    spring = is_open[(local >= pd.Timestamp("2024-03-01", tz=LA_TZ)) & (local < pd.Timestamp("2024-06-01", tz=LA_TZ))]
    assert last_week > 0.3 and spring.mean() < 0.02
    assert last_week > 10 * spring.mean()


def test_long_follow_up_leaves_only_the_stuck_open() -> None:
    later = synth.synthesize(20_000, seed=7, extracted_at=pd.Timestamp("2026-01-01", tz="UTC"))
    assert (later["status"] == "open").mean() < 3 * synth.TRAPS.stuck_open


# --- data traps ---------------------------------------------------------------------------------------------


def test_traps_at_their_stated_rates(year: pd.DataFrame) -> None:
    days = _days(year)
    backwards = year[days < 0]
    unique_rows = YEAR_ROWS - round(YEAR_ROWS * synth.TRAPS.duplicate_rows)
    # Counted by request: a backdated row may also be one of the duplicated ones.
    assert backwards["request_id"].nunique() == round(unique_rows * synth.TRAPS.closed_before_created)
    assert backwards["request_type"].str.contains("Streetlight").all()
    assert (backwards["status"] == "closed").all()

    duplicated = year["request_id"].duplicated(keep="first")
    assert duplicated.sum() == round(YEAR_ROWS * synth.TRAPS.duplicate_rows)
    copies = year.drop(columns="source_row")
    assert copies.duplicated(keep="first").equals(duplicated)  # exact copies, every field
    assert (copies[duplicated].index == copies[duplicated.shift(-1, fill_value=False)].index + 1).all()

    crew = year[year["source"] == "crew"]
    crew_minutes = _days(crew) * 1_440
    within_five = ((crew_minutes >= 0) & (crew_minutes < 5)).mean()
    assert 0.65 < within_five < 0.9
    assert 0.07 < crew["latitude"].isna().mean() < 0.13
    assert year.loc[year["source"] != "crew", "latitude"].notna().all()


def test_no_published_promise(year: pd.DataFrame) -> None:
    """LA publishes no SLA; like the LA adapter, the generator leaves sla_target_at missing."""
    assert year["sla_target_at"].isna().all()
    assert year["description"].isna().all()  # MyLA311 exports carry no free text


# --- the MyLA311 CSV ----------------------------------------------------------------------------------------


def test_write_la_csv_header_rows_and_values_round_trip(tmp_path: Path) -> None:
    records = synth.synthesize(8_000, seed=5, start="2024-10-20", days=30)
    path = tmp_path / "myla311.csv"
    synth.write_la_csv(records, path)

    with path.open(newline="") as handle:
        first_line = handle.readline()
    assert first_line == ",".join(synth.LA_CSV_COLUMNS) + "\n"
    assert next(csv.reader([first_line])) == list(synth.LA_CSV_COLUMNS) and len(synth.LA_CSV_COLUMNS) == 33

    raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    assert len(raw) == len(records)
    assert (raw["SRNumber"].to_numpy() == records["request_id"].to_numpy()).all()
    assert raw["CreatedDate"].str.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d:\d\d [AP]M").all()
    # Wall-clock text read back with the adapters' own rule gives the same instants (DST day included).
    for column, field in (("CreatedDate", "created_at"), ("ClosedDate", "closed_at")):
        parsed = parse_local_time(raw[column], LA_TZ, synth.LA_TIME_FORMAT)
        pd.testing.assert_series_equal(parsed, records[field], check_names=False)
    service = parse_local_time(raw["ServiceDate"], LA_TZ, synth.LA_TIME_FORMAT)
    closing_day = records["closed_at"].dt.tz_convert(LA_TZ).dt.floor("D").dt.tz_convert("UTC")
    pd.testing.assert_series_equal(service, closing_day, check_names=False)  # as most real rows show
    latitude = pd.to_numeric(raw["Latitude"])
    assert np.array_equal(latitude.to_numpy(), records["latitude"].to_numpy(), equal_nan=True)

    assert set(raw["Owner"]) <= {"BOS", "LASAN", "OCB", "BSL", "ITA", "LADWP", "BSS"}
    owner_department = {"BOS": "Sanitation", "LASAN": "Sanitation"} | {
        code: name for name, code in synth.OWNER_CODES.items() if code != "BOS"
    }
    assert (raw["Owner"].map(owner_department).to_numpy() == records["department"].to_numpy()).all()
    status = {v: k for k, v in synth.LA_STATUS.items()}
    assert (raw["Status"].map(status).to_numpy() == records["status"].to_numpy()).all()
    source = {v: k for k, v in synth.LA_SOURCES.items()}
    assert (raw["RequestSource"].map(source).to_numpy() == records["source"].to_numpy()).all()
    assert (raw["CD"].to_numpy() == records["council_district"].to_numpy()).all()
    assert (raw["NCName"].to_numpy() == records["neighborhood"].to_numpy()).all()
    assert (raw["ZipCode"].to_numpy() == records["zip_code"].to_numpy()).all()
    assert raw["Address"].str.fullmatch(r"\d+ [NSEW] [0-9A-Z ]+, 9\d{4}").all()
    mobile = raw["RequestSource"] == "Mobile App"
    assert raw.loc[mobile, "MobileOS"].isin(["iOS", "Android"]).all() and raw.loc[~mobile, "MobileOS"].isna().all()
    # Duplicate requests stay exact duplicates in the export.
    assert raw.duplicated().sum() == records["request_id"].duplicated().sum()


def test_write_la_csv_keeps_missing_values_empty(tmp_path: Path) -> None:
    records = synth.synthesize(3_000, seed=2, days=20)
    path = tmp_path / "la.csv"
    synth.write_la_csv(records, path)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    assert raw["ClosedDate"].isna().sum() == records["closed_at"].isna().sum()
    assert raw["Latitude"].isna().sum() == records["latitude"].isna().sum()
    assert raw["Location"].isna().sum() == records["latitude"].isna().sum()
    assert re.fullmatch(r"\(3\d\.\d+, -11\d\.\d+\)", raw["Location"].dropna().iloc[0])


def test_la_adapter_reads_the_csv_back_to_the_same_records(tmp_path: Path) -> None:
    """The contract with ingest/adapters/la.py: the export reads back to the generated records, field by field."""
    la = pytest.importorskip("ingest.adapters.la")
    from ingest.files import read_raw

    records = synth.synthesize(10_000, seed=9, start="2024-10-25", days=20)  # crosses the DST change
    path = tmp_path / "myla311.csv"
    synth.write_la_csv(records, path)
    back = la.to_records(read_raw(path))
    assert back[la.REJECT_COLUMN].isna().all()
    for column in RECORD_COLUMNS:
        if column in back.columns:
            pd.testing.assert_series_equal(back[column], records[column], check_names=False, obj=column)
