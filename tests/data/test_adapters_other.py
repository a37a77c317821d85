"""Adapters for NYC, Boston, Chicago, SF and Open311: mapping, clocks, normalisation and detection.

Fixtures are small real slices (tests/fixtures/<city>/PROVENANCE.md) read through the same `read_raw` the
ingest step uses, so the adapters see exactly what they see in production: every value a string. The
`real_data` tests run the full shared exports when ../shared is present.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from features.schema import RECORD_COLUMNS, SOURCE_VALUES, STATUS_VALUES
from ingest.adapters import FORMAT_NAMES, adapter, boston, chicago, nyc, open311, sf
from ingest.adapters.common import REJECT_COLUMN, missing_columns
from ingest.files import DETECTION_THRESHOLD, read_raw

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
OUTPUT_COLUMNS = [c for c in RECORD_COLUMNS if c not in ("source_format", "source_file", "source_row")]

# (format, fixture path relative to tests/fixtures)
FIXTURE_FILES: list[tuple[str, str]] = [
    ("nyc", "nyc/nyc311_2013-12-25.csv"),
    ("nyc", "nyc/nyc311_2022-05-01.csv"),
    ("nyc", "nyc/nyc311_2023-12-07.csv"),
    ("nyc", "nyc/nyc311_2012-11_socrata.json"),
    ("boston", "boston/boston311_2015-2024_closed_sample.csv"),
    ("boston", "boston/boston311_2025_open_only.csv"),
    ("boston", "boston/boston311_2011-07_to_12.csv"),
    ("chicago", "chicago/chicago311_2021-01-01_to_02.csv"),
    ("sf", "sf/sf311_2018-07_to_2019-06_northbeach_cleaning.csv"),
    ("open311", "open311/requests.json"),
]
# (format, file under ../shared/data/real)
REAL_FILES: list[tuple[str, str]] = [
    ("nyc", "nyc/nyc311_2013-12-25.csv"),
    ("nyc", "nyc/nyc311_2022-05-01.csv"),
    ("nyc", "nyc/nyc311_2023-12-07.csv"),
    ("nyc", "nyc/nyc311_2012-11_socrata.json"),
    ("boston", "boston/boston311_2015-2024_closed_sample.csv"),
    ("boston", "boston/boston311_2025_open_only.csv"),
    ("boston", "boston/boston311_2011-07_to_12.csv"),
    ("chicago", "chicago/chicago311_2021-01-01_to_02.csv"),
    ("sf", "san_francisco/sf311_2018-07_to_2019-06_northbeach_cleaning.csv"),
]

_cache: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}


def load(relative: str, module: ModuleType, city: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(raw frame, records) for a fixture file, read once per test session."""
    key = f"{relative}|{city}"
    if key not in _cache:
        raw = read_raw(FIXTURES / relative)
        _cache[key] = (raw, module.to_records(raw, city))
    return _cache[key]


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def strings(values: dict[str, list[str | None]]) -> pd.DataFrame:
    """A tiny raw frame as ingest would hand it over: every column a string column."""
    return pd.DataFrame(values).astype("str")


# --- the contract, on every fixture ---------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "relative"), FIXTURE_FILES)
def test_contract_on_fixture(fmt: str, relative: str) -> None:
    module = adapter(fmt)
    raw, records = load(relative, module)
    assert fmt == module.NAME
    assert list(records.columns) == [*OUTPUT_COLUMNS, REJECT_COLUMN]
    assert len(records) == len(raw) and records.index.equals(raw.index)
    assert records[REJECT_COLUMN].isna().all(), records[REJECT_COLUMN].value_counts()
    assert records["request_id"].notna().all() and records["created_at"].notna().all()
    assert not records["request_id"].duplicated().any()
    assert records["status"].isin(STATUS_VALUES).all()
    assert records["source"].dropna().isin(SOURCE_VALUES).all()
    assert str(records["created_at"].dtype) == "datetime64[us, UTC]"
    assert missing_columns(list(raw.columns), module.REQUIRED) == []


@pytest.mark.parametrize(("fmt", "relative"), FIXTURE_FILES)
def test_each_fixture_scores_highest_for_its_own_adapter(fmt: str, relative: str) -> None:
    columns = [str(c) for c in read_raw(FIXTURES / relative).columns]
    scores = {name: adapter(name).score(columns) for name in FORMAT_NAMES}
    assert scores[fmt] == 1.0
    others = {name: s for name, s in scores.items() if name != fmt}
    assert max(others.values()) < DETECTION_THRESHOLD, scores


def test_nyc_json_and_open311_json_are_told_apart() -> None:
    """Both arrive as JSON lists of objects; only their field names differ."""
    nyc_columns = list(read_raw(FIXTURES / "nyc/nyc311_2012-11_socrata.json").columns)
    open311_columns = list(read_raw(FIXTURES / "open311/requests.json").columns)
    assert nyc.score(nyc_columns) == 1.0 and open311.score(nyc_columns) < 0.3
    assert open311.score(open311_columns) == 1.0 and nyc.score(open311_columns) < 0.3
    # A sparse GeoReport server that drops null fields is still recognised by the core fields.
    assert open311.score(["service_request_id", "status", "service_code", "requested_datetime"]) == 1.0


@pytest.mark.parametrize("module", [nyc, boston, chicago, sf, open311])
def test_required_columns_name_the_first_spelling(module: ModuleType) -> None:
    assert module.REQUIRED and all(isinstance(alts, tuple) and alts for alts in module.REQUIRED)
    first = [alts[0] for alts in module.REQUIRED]
    assert missing_columns(["unrelated"], module.REQUIRED) == first
    # Every alternative spelling is accepted on its own.
    last = [alts[-1] for alts in module.REQUIRED]
    assert missing_columns(last, module.REQUIRED) == []


# --- NYC ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "raw_created", "expected_utc"),
    [
        # 25 Dec 2013 is winter: EST, UTC-5.
        ("nyc/nyc311_2013-12-25.csv", "12/25/2013 11:59:08 PM", "2013-12-26 04:59:08"),
        # 1 May 2022 is summer: EDT, UTC-4.
        ("nyc/nyc311_2022-05-01.csv", "05/01/2022 12:00:03 AM", "2022-05-01 04:00:03"),
        ("nyc/nyc311_2023-12-07.csv", "2023-12-08T12:00:00.000", "2023-12-08 17:00:00"),
        ("nyc/nyc311_2012-11_socrata.json", "2012-11-20T07:50:59.000", "2012-11-20 12:50:59"),
    ],
)
def test_nyc_clocks_are_new_york_local(relative: str, raw_created: str, expected_utc: str) -> None:
    raw, records = load(relative, nyc)
    created_column = "Created Date" if "Created Date" in raw.columns else "created_date"
    assert raw[created_column].iloc[0] == raw_created
    assert records["created_at"].iloc[0] == utc(expected_utc)


def test_nyc_2013_mapping() -> None:
    raw, records = load("nyc/nyc311_2013-12-25.csv", nyc)
    first = records.iloc[0]
    assert first["request_id"] == "26984072"
    assert first["request_type"] == "Blocked Driveway" and first["description"] == "No Access"
    assert first["department"] == "NYPD" and first["zip_code"] == "11234"
    assert first["council_district"] == "18 BROOKLYN" and first["neighborhood"] == "BROOKLYN"
    assert first["closed_at"] == utc("2013-12-26 06:15:00") and first["status"] == "closed"
    # No channel column in the old schema; Due Date is present but is no SLA target.
    assert records["source"].isna().all()
    assert raw["Due Date"].notna().any() and records["sla_target_at"].isna().all()
    # "0 Unspecified" boards and the "Unspecified" borough are missing, not categories.
    unspecified = raw["Community Board"].eq("0 Unspecified")
    assert unspecified.any() and records.loc[unspecified, "council_district"].isna().all()
    assert records.loc[raw["Borough"].eq("Unspecified"), "neighborhood"].isna().all()
    # Pending/Assigned/Started/Open are all still open.
    assert set(records.loc[raw["Status"].ne("Closed"), "status"]) == {"open"}
    # Consumer Affairs (DCA) is filed under its current code.
    assert set(records.loc[raw["Agency"].eq("DCA"), "department"]) == {"DCWP"}


def test_nyc_description_is_the_descriptor_never_the_resolution() -> None:
    for relative in ("nyc/nyc311_2022-05-01.csv", "nyc/nyc311_2012-11_socrata.json"):
        raw, records = load(relative, nyc)
        descriptor = raw["Descriptor" if "Descriptor" in raw.columns else "descriptor"]
        resolution = raw[
            "Resolution Description" if "Resolution Description" in raw.columns else "resolution_description"
        ]
        pd.testing.assert_series_equal(records["description"], descriptor.str.strip(), check_names=False)
        assert not records["description"].isin(resolution.dropna()).any()


def test_nyc_channels_and_statuses() -> None:
    raw, records = load("nyc/nyc311_2022-05-01.csv", nyc)
    pairs = dict(zip(raw["Open Data Channel Type"], records["source"], strict=True))
    assert pairs["ONLINE"] == "web" and pairs["MOBILE"] == "mobile_app" and pairs["PHONE"] == "phone"
    assert pd.isna(pairs["UNKNOWN"])
    assert set(records.loc[raw["Status"].eq("In Progress"), "status"]) == {"open"}
    assert records["sla_target_at"].isna().all()

    raw, records = load("nyc/nyc311_2012-11_socrata.json", nyc)
    assert set(records.loc[raw["open_data_channel_type"].eq("OTHER"), "source"]) == {"other"}


def test_nyc_1900_close_is_a_placeholder_not_a_time() -> None:
    raw, records = load("nyc/nyc311_2012-11_socrata.json", nyc)
    placeholder = raw["closed_date"].eq("1900-01-01T00:00:00.000")
    assert placeholder.sum() == 1
    row = records.loc[placeholder].iloc[0]
    assert pd.isna(row["closed_at"]) and row["status"] == "open" and pd.isna(row[REJECT_COLUMN])


def test_nyc_department_maps_codes_and_full_names() -> None:
    raw = strings(
        {
            "Unique Key": ["1", "2", "3", "4"],
            "Created Date": ["01/02/2020 10:00:00 AM"] * 4,
            "Agency": ["Department of Sanitation", "doitt", None, "XYZ"],
            "Agency Name": ["x", "y", "New York City Police Department", "Somebody"],
            "Status": ["Closed", "Email Sent", "Unspecified", "Draft"],
        }
    )
    records = nyc.to_records(raw)
    assert records["department"].tolist() == ["DSNY", "OTI", "NYPD", "XYZ"]
    # Unknown states are kept (lower-cased) so the status rule can quarantine and count them.
    assert records["status"].tolist() == ["closed", "open", "open", "draft"]


def test_nyc_coordinates_fall_back_to_location_text() -> None:
    raw = strings(
        {
            "unique_key": ["1", "2", "3"],
            "created_date": ["2020-01-02T10:00:00.000"] * 3,
            "latitude": [None, None, None],
            "longitude": [None, None, None],
            "location": [
                "(40.63186547963468, -73.92053369143751)",
                "{'latitude': '40.85198589447398', 'longitude': '-73.92842546176509', 'human_address': '{}'}",
                '{"coordinates": [-73.963367927247, 40.774634083459], "type": "Point"}',
            ],
        }
    )
    records = nyc.to_records(raw)
    assert records["latitude"].round(4).tolist() == [40.6319, 40.852, 40.7746]
    assert records["longitude"].round(4).tolist() == [-73.9205, -73.9284, -73.9634]


def test_nyc_unparseable_times_are_rejected_with_a_reason() -> None:
    raw = strings(
        {
            "Unique Key": ["1", "2", "3"],
            "Created Date": ["not a date", "01/02/2020 10:00:00 AM", "01/02/2020 10:00:00 AM"],
            "Closed Date": [None, "soon", None],
        }
    )
    reasons = nyc.to_records(raw)[REJECT_COLUMN]
    assert reasons.iloc[0] == "unparseable_created_at"
    assert reasons.iloc[1] == "unparseable_closed_at"
    assert pd.isna(reasons.iloc[2])


# --- Boston ------------------------------------------------------------------------------------------------


def test_boston_2015_2024_mapping_and_clock() -> None:
    raw, records = load("boston/boston311_2015-2024_closed_sample.csv", boston)
    first = records.iloc[0]
    # 2022-01-17 11:20:00 in Boston is EST (UTC-5).
    assert raw["OPEN_DT"].iloc[0] == "2022-01-17 11:20:00"
    assert first["created_at"] == utc("2022-01-17 16:20:00")
    assert first["sla_target_at"] == utc("2022-01-18 16:20:22")
    assert first["closed_at"] == utc("2022-01-18 15:08:24")
    assert first["request_type"] == "Street Light Knock Downs"
    assert first["description"] == "PRINTED : Street Light  Knockdown//N.M."
    assert first["department"] == "Public Works" and first["source"] == "phone"
    assert first["status"] == "closed"
    assert records.loc[1, "zip_code"] == "02116"  # "2116.0" in the export


def test_boston_2011_lower_case_schema_mapping_and_clock() -> None:
    """The city's yearly 2011 file (lower-case columns, department codes such as PWDx): local EDT times, the
    city's target kept, the case title as the description (never the closure reason: an outcome)."""
    raw, records = load("boston/boston311_2011-07_to_12.csv", boston)
    assert len(records) == len(raw) == 142
    first = records.iloc[0]
    assert raw["open_dt"].iloc[0] == "2011-07-01 01:32:33"  # EDT (UTC-4)
    assert first["created_at"] == utc("2011-07-01 05:32:33")
    assert first["closed_at"] == utc("2011-07-01 09:06:58")
    assert first["sla_target_at"] == utc("2011-07-15 05:32:32")
    assert first["request_type"] == "Street Light Outages" and first["description"] == "Street Light Outages"
    assert first["department"] == "Public Works" and first["source"] == "crew"  # "Employee Generated"
    assert first["council_district"] == "3" and first["neighborhood"] == "Greater Mattapan"
    assert not records["description"].isin(raw["closure_reason"].dropna()).any()
    still_open = raw["case_status"] == "Open"
    assert still_open.sum() == 12
    assert (records.loc[still_open, "status"] == "open").all() and records.loc[still_open, "closed_at"].isna().all()
    assert records.loc[raw["target_dt"].isna(), "sla_target_at"].isna().all()


def test_boston_closed_dt_is_local_time() -> None:
    """CLOSURE_REASON often quotes the close in UTC ("Closed date : 2022-01-18 15:08:24.983"): it must agree."""
    raw, records = load("boston/boston311_2015-2024_closed_sample.csv", boston)
    quoted = raw["CLOSURE_REASON"].str.extract(r"Closed date : (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", expand=False)
    quoted_utc = pd.to_datetime(quoted).dt.tz_localize("UTC")
    given = quoted_utc.notna()
    assert given.sum() > 50
    assert (records.loc[given, "closed_at"] == quoted_utc[given]).all()


def test_boston_keeps_its_sla_target_in_both_schemas() -> None:
    raw, records = load("boston/boston311_2015-2024_closed_sample.csv", boston)
    assert records["sla_target_at"].notna().tolist() == raw["TARGET_DT"].notna().tolist()
    raw, records = load("boston/boston311_2025_open_only.csv", boston)
    assert records["sla_target_at"].notna().all()
    # 2025-02-07 03:30:00 local (EST) -> 08:30 UTC.
    assert raw["sla_target_dt"].iloc[0] == "2025-02-07 03:30:00"
    assert records["sla_target_at"].iloc[0] == utc("2025-02-07 08:30:00")
    assert set(records["status"]) == {"open"} and records["closed_at"].isna().all()


def test_boston_sources_departments_and_districts() -> None:
    raw, records = load("boston/boston311_2015-2024_closed_sample.csv", boston)
    sources = dict(zip(raw["Source"], records["source"], strict=True))
    assert sources == {
        "Constituent Call": "phone",
        "Citizens Connect App": "mobile_app",
        "Self Service": "web",
        "City Worker App": "crew",
        "Employee Generated": "crew",
        "Twitter": "social",
        "Maximo Integration": "integration",
    }
    departments = dict(zip(raw["Department"], records["department"], strict=True))
    assert departments["PWDx"] == "Public Works" and departments["BTDT"] == "Transportation"
    assert departments["ISD"] == "Inspectional Services" and departments["PARK"] == "Parks and Recreation"
    districts = raw["city_council_district"].str.strip()
    assert records.loc[districts.isin(["0", ""]) | districts.isna(), "council_district"].isna().all()
    assert records["council_district"].dropna().isin([str(d) for d in range(1, 10)]).all()


def test_boston_unknown_department_code_is_kept() -> None:
    raw = strings(
        {"CASE_ENQUIRY_ID": ["1", "2"], "OPEN_DT": ["2020-01-01 10:00:00"] * 2, "Department": ["NEW_", "BWSC"]}
    )
    assert boston.to_records(raw)["department"].tolist() == ["NEW_", "Boston Water and Sewer Commission"]


def test_boston_city_hall_placeholder_means_no_location() -> None:
    raw, records = load("boston/boston311_2015-2024_closed_sample.csv", boston)
    at_city_hall = raw["LATITUDE"].eq("42.35951952062117") & raw["LONGITUDE"].eq("-71.05875044525048")
    assert at_city_hall.sum() >= 1
    assert records.loc[at_city_hall, ["latitude", "longitude"]].isna().all().all()
    # The old default point is a placeholder too; a real point 30 m away (55 Court St, in the full file) is not.
    lat = pd.Series([42.3594, 42.35922952081225], dtype="float64")
    lon = pd.Series([-71.0587, -71.05888044618929], dtype="float64")
    assert boston.placeholder_location(lat, lon).tolist() == [True, False]


# --- Chicago -----------------------------------------------------------------------------------------------


def test_chicago_mapping_and_clock() -> None:
    raw, records = load("chicago/chicago311_2021-01-01_to_02.csv", chicago)
    # 2021-01-01T00:00:09.000 in Chicago is CST (UTC-6).
    assert raw["created_date"].iloc[0] == "2021-01-01T00:00:09.000"
    assert records["created_at"].iloc[0] == utc("2021-01-01 06:00:09")
    statuses = dict(zip(raw["status"], records["status"], strict=True))
    assert statuses == {"Completed": "closed", "Canceled": "cancelled", "Open": "open"}
    origins = dict(zip(raw["origin"], records["source"], strict=True))
    assert origins["Phone Call"] == "phone" and origins["Internet"] == "web"
    assert origins["Mobile Device"] == "mobile_app" and origins["Salesforce Mobile App"] == "mobile_app"
    assert origins["spot-open311-Chicago+Works"] == "mobile_app" and origins["Mass Entry"] == "integration"
    assert origins["Alderman's Office"] == "elected_office"
    assert records["department"].tolist() == raw["owner_department"].tolist()
    assert records["description"].isna().all()
    assert records.loc[raw["zip_code"].eq("0"), "zip_code"].isna().all()


def test_chicago_duplicates_keep_their_status_and_parent_close() -> None:
    """Decision: a duplicate stays closed at its parent's close, the wait its own resident saw."""
    raw, records = load("chicago/chicago311_2021-01-01_to_02.csv", chicago)
    by_id = records.set_index("request_id")
    child, parent = by_id.loc["SR21-00000247"], by_id.loc["SR21-00000245"]
    assert raw.loc[raw["sr_number"].eq("SR21-00000247"), "duplicate"].item() == "True"
    assert child["status"] == "closed" and child["closed_at"] == parent["closed_at"]
    duplicates = raw["duplicate"].eq("True")
    assert set(records.loc[duplicates, "status"]) <= {"closed", "open", "cancelled"}
    assert len(records) == len(raw)  # no duplicate dropped


def test_chicago_call_centre_point_is_no_location() -> None:
    raw, records = load("chicago/chicago311_2021-01-01_to_02.csv", chicago)
    centre = raw["latitude"].eq("41.871831277993564") & raw["longitude"].eq("-87.67984621876099")
    assert centre.sum() > 50
    located = ["latitude", "longitude", "zip_code", "council_district", "neighborhood"]
    assert records.loc[centre, located].isna().all().all()
    elsewhere = ~centre & raw["latitude"].notna()
    assert records.loc[elsewhere, "latitude"].notna().all()
    wards = raw.loc[elsewhere, "ward"].fillna("")
    assert (records.loc[elsewhere, "council_district"].fillna("") == wards).all()


# --- SF ----------------------------------------------------------------------------------------------------


def test_sf_mapping_and_clock() -> None:
    raw, records = load("sf/sf311_2018-07_to_2019-06_northbeach_cleaning.csv", sf)
    first = records.iloc[0]
    # 06/29/2019 09:48:00 PM in San Francisco is PDT (UTC-7).
    assert raw["Opened"].iloc[0] == "06/29/2019 09:48:00 PM"
    assert first["created_at"] == utc("2019-06-30 04:48:00")
    assert first["closed_at"] == utc("2019-06-30 15:43:04")
    assert first["request_type"] == "Bulky Items" and first["description"] == "Boxed or Bagged Items"
    assert first["department"] == "Recology_Abandoned" and first["zip_code"] == "94133"
    assert first["council_district"] == "3" and first["neighborhood"] == "North Beach"
    sources = dict(zip(raw["Source"], records["source"], strict=True))
    assert sources == {
        "Phone": "phone",
        "Web": "web",
        "Mobile/Open311": "mobile_app",
        "Integrated Agency": "integration",
        "Twitter": "social",
    }
    # Every queue in the file (16) is kept by name, trimmed.
    assert records["department"].nunique() == 16
    assert (records["department"] == raw["Responsible Agency"].str.strip()).all()
    # Intersections have no ZIP in the address: missing, not guessed.
    assert records.loc[raw["Address"].str.startswith("Intersection"), "zip_code"].isna().all()


def test_sf_winter_clock_and_category_fallback() -> None:
    raw = strings(
        {
            "CaseID": ["1", "2"],
            "Opened": ["01/15/2019 08:00:00 AM", "2019-01-15T08:00:00"],
            "Request Type": [None, "Bulky Items"],
            "Category": ["Street and Sidewalk Cleaning", "Street and Sidewalk Cleaning"],
        }
    )
    records = sf.to_records(raw)
    # January is PST (UTC-8); the ISO spelling reads the same.
    assert records["created_at"].tolist() == [utc("2019-01-15 16:00:00")] * 2
    assert records["request_type"].tolist() == ["Street and Sidewalk Cleaning", "Bulky Items"]


# --- Open311 -----------------------------------------------------------------------------------------------


def test_open311_mapping_with_default_city() -> None:
    raw, records = load("open311/requests.json", open311)
    assert open311.CITY is None and set(records["city"]) == {"open311"}
    by_id = records.set_index("request_id")
    closed = by_id.loc["638344"]
    assert closed["status"] == "closed" and closed["request_type"] == "Sidewalk and Curb Issues"
    # requested 2024-03-04T06:37:38-05:00; closed = updated_datetime 09:12:01-05:00; SLA = expected_datetime.
    assert closed["created_at"] == utc("2024-03-04 11:37:38")
    assert closed["closed_at"] == utc("2024-03-04 14:12:01")
    assert closed["sla_target_at"] == utc("2024-03-07 11:37:38")
    assert pd.isna(closed["department"]) and closed["zip_code"] == "47404"
    # An open request's last update is not a close.
    assert records.loc[records["status"].eq("open"), "closed_at"].isna().all()
    assert records.loc[records["status"].eq("closed"), "closed_at"].notna().all()
    assert by_id.loc["638354", "request_type"] == "ABANDVEH"  # no service_name: the code stands in
    assert by_id.loc["638353", "zip_code"] == "47404"  # id and zip given as strings in the JSON
    assert by_id.loc["638358", "created_at"] == utc("2024-03-15 11:11:11")  # "Z"
    assert by_id.loc["638345", "department"] == "Street Department"
    assert records["source"].isna().all()
    # Offsets across the DST change are honoured: -04:00 after 10 March.
    assert by_id.loc["638352", "created_at"] == utc("2024-03-10 07:30:00")


def test_open311_city_argument_sets_code_and_naive_clock() -> None:
    raw = read_raw(FIXTURES / "open311/requests.json")
    naive = raw["service_request_id"].eq("638363")
    assert raw.loc[naive, "requested_datetime"].item() == "2024-03-22T13:33:00"
    default = open311.to_records(raw)
    in_boston = open311.to_records(raw, "boston")
    assert set(in_boston["city"]) == {"boston"}
    assert default.loc[naive, "created_at"].item() == utc("2024-03-22 13:33:00")  # unknown city: UTC
    assert in_boston.loc[naive, "created_at"].item() == utc("2024-03-22 17:33:00")  # EDT
    offsets = ~naive
    assert (default.loc[offsets, "created_at"] == in_boston.loc[offsets, "created_at"]).all()


def test_open311_unparseable_times() -> None:
    raw = strings(
        {
            "service_request_id": ["1", "2", "3"],
            "status": ["open", "closed", "open"],
            "service_code": ["A", "A", "A"],
            "requested_datetime": ["yesterday", "2024-03-04T06:37:38-05:00", "2024-03-04T06:37:38-05:00"],
            "updated_datetime": [None, "later", "later"],
            "expected_datetime": [None, None, "2024-13-40T00:00:00-05:00"],
        }
    )
    reasons = open311.to_records(raw)[REJECT_COLUMN].tolist()
    # An open request's unreadable update is harmless: it is not read as a close.
    assert reasons == ["unparseable_created_at", "unparseable_closed_at", "unparseable_sla_target_at"]


# --- the full shared exports -------------------------------------------------------------------------------


@pytest.mark.shared
@pytest.mark.parametrize(("fmt", "relative"), REAL_FILES)
def test_real_exports_read_every_row(real_data: Path, fmt: str, relative: str) -> None:
    module = adapter(fmt)
    raw = read_raw(real_data / relative)
    columns = [str(c) for c in raw.columns]
    scores = {name: adapter(name).score(columns) for name in FORMAT_NAMES}
    assert max(scores, key=lambda name: scores[name]) == fmt and scores[fmt] >= DETECTION_THRESHOLD, scores
    assert missing_columns(columns, module.REQUIRED) == []

    records = module.to_records(raw)
    assert len(records) == len(raw) and records.index.equals(raw.index)
    assert records[REJECT_COLUMN].isna().all(), records[REJECT_COLUMN].value_counts()
    assert records["request_id"].notna().all() and records["created_at"].notna().all()
    assert records["status"].isin(STATUS_VALUES).all(), records["status"].value_counts()
    assert records["source"].dropna().isin(SOURCE_VALUES).all(), records["source"].value_counts()
    assert records["department"].notna().all()
