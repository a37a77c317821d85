"""Data tests for the Great Expectations suites: a good frame passes, each bad variant fails as expected.

Frames are built here, small and deterministic, rather than read from a fixture file: each variant is one
visible edit of the good frame. GX is imported once for the module (~5 s); each `run_checks` then builds a
fresh ephemeral context, which is cheap (well under a second for these frames).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_checks.rules import BLOCKING_RULES, ROW_RULES, violations
from data_checks.suite import (
    DERIVED_RULES,
    TABLE_RULES,
    CheckReport,
    format_report,
    row_expectations,
    rule_blocking,
    run_checks,
    schema_expectations,
)
from features.schema import CITIES, RECORD_COLUMNS, conform, empty_records

NOW = pd.Timestamp("2025-06-01 12:00", tz="UTC")
ROWS = 40


def good_records(rows: int = ROWS) -> pd.DataFrame:
    """Canonical LA records that break no rule: recent, inside the city, closed ones closed after a day."""
    min_lat, max_lat, min_lon, max_lon = CITIES["la"].bounds
    created = NOW - pd.to_timedelta(np.linspace(1.0, 6.0, rows), unit="D")
    status = np.where(np.arange(rows) % 4 == 3, "open", "closed")
    closed = pd.Series(created + pd.Timedelta(hours=30)).where(status == "closed")
    return conform(
        pd.DataFrame(
            {
                "request_id": [f"LA-{i:04d}" for i in range(rows)],
                "city": "la",
                "created_at": created,
                "request_type": np.resize(["Bulky Items", "Graffiti Removal", "Dead Animal Removal"], rows),
                "source": np.resize(["phone", "mobile_app", "web", None], rows),
                "description": "couch on the sidewalk",
                "latitude": np.linspace(min_lat + 0.1, max_lat - 0.1, rows),
                "longitude": np.linspace(min_lon + 0.1, max_lon - 0.1, rows),
                "zip_code": "90012",
                "closed_at": closed,
                "status": status,
                "department": "BOS",
                "source_format": "test",
                "source_file": "test.csv",
                "source_row": np.arange(rows, dtype="int64"),
            }
        )
    )


def _set(column: str, value: object, row: int = 0) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame.loc[row, column] = value
        return frame

    return edit


def _duplicate_id(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[5, "request_id"] = frame.loc[4, "request_id"]
    return frame


def _closed_before_created(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[0, "closed_at"] = frame.loc[0, "created_at"] - pd.Timedelta(hours=2)
    return frame


def _closed_within_minutes(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[0, ["source", "closed_at"]] = ["crew", frame.loc[0, "created_at"] + pd.Timedelta(minutes=1)]
    return frame


def _near_duplicate(frame: pd.DataFrame) -> pd.DataFrame:
    """Row 3 repeats row 0's type and spot ten minutes later, under a new id."""
    frame = frame.copy()
    for column in ("request_type", "latitude", "longitude"):
        frame.loc[3, column] = frame.loc[0, column]
    frame.loc[3, "created_at"] = frame.loc[0, "created_at"] + pd.Timedelta(minutes=10)
    frame.loc[3, "closed_at"] = pd.NaT  # row 3 is open
    return frame


def _stale(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in ("created_at", "closed_at"):
        frame[column] = frame[column] - pd.Timedelta(days=60)
    return frame


def _unknown_city_off_globe(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[0, ["city", "latitude"]] = ["springfield", 95.0]
    return frame


# name -> (edit, exactly the rules that must fail, the blocking flag they carry, the offending id or None)
VARIANTS: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], set[str], bool, str | None]] = {
    "missing column": (lambda f: f.drop(columns=["status"]), {"required_column", "schema_columns"}, True, None),
    "extra column": (lambda f: f.assign(notes="x"), {"schema_columns"}, False, None),
    "wrong dtype": (lambda f: f.astype({"source_row": "float64"}), {"column_type"}, True, None),
    "null id": (_set("request_id", None), {"missing_request_id"}, True, "source_row=0"),
    "null city": (_set("city", None), {"missing_city"}, True, "LA-0000"),
    "null created_at": (_set("created_at", pd.NaT, row=3), {"missing_created_at"}, True, "LA-0003"),
    "duplicate id": (_duplicate_id, {"duplicate_request_id"}, True, "LA-0004"),
    "bad status": (_set("status", "Closed?"), {"invalid_status"}, True, "LA-0000"),
    "null status": (_set("status", None), {"invalid_status"}, True, "LA-0000"),
    "closed before created": (_closed_before_created, {"closed_before_created"}, True, "LA-0000"),
    "created in the future": (
        _set("created_at", NOW + pd.Timedelta(days=3), row=3),
        {"created_out_of_window"},
        True,
        "LA-0003",
    ),
    "created before 311": (
        _set("created_at", pd.Timestamp("1990-01-01", tz="UTC"), row=3),
        {"created_out_of_window"},
        True,
        "LA-0003",
    ),
    "closed in the future": (_set("closed_at", NOW + pd.Timedelta(days=3)), {"closed_in_future"}, True, "LA-0000"),
    "coordinates outside LA": (_set("latitude", 40.7), {"coordinates_out_of_bounds"}, False, "LA-0000"),
    "unknown city off the globe": (_unknown_city_off_globe, {"coordinates_out_of_bounds"}, False, "LA-0000"),
    "closed without closed_at": (_set("closed_at", pd.NaT), {"closed_without_closed_at"}, False, "LA-0000"),
    "open with closed_at": (
        _set("closed_at", NOW - pd.Timedelta(hours=1), row=3),
        {"open_with_closed_at"},
        False,
        "LA-0003",
    ),
    "crew self-report": (_closed_within_minutes, {"closed_within_minutes"}, False, "LA-0000"),
    "unknown source": (_set("source", "carrier pigeon"), {"unknown_source"}, False, "LA-0000"),
    "near duplicate": (_near_duplicate, {"near_duplicate"}, False, "LA-0003"),
    "stale data": (_stale, {"stale_data"}, False, None),
}


@pytest.fixture(scope="module")
def good() -> pd.DataFrame:
    return good_records()


@pytest.fixture(scope="module")
def good_report(good: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> CheckReport:
    """One run with Data Docs, shared by the tests that only read it."""
    return run_checks(good, tmp_path_factory.mktemp("docs"), now=NOW)


def test_good_records_pass_every_expectation(good_report: CheckReport) -> None:
    assert good_report.passed
    assert good_report.failures == [], format_report(good_report)
    assert good_report.row_count == ROWS
    assert all(r.error is None for r in good_report.results)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_bad_variant_fails_with_expected_rule(good: pd.DataFrame, variant: str) -> None:
    edit, rules, blocking, offender = VARIANTS[variant]
    report = run_checks(edit(good), None, now=NOW)
    failed = [r for r in report.results if not r.success]
    assert {r.rule for r in failed} == rules, format_report(report)
    primary = [r for r in failed if r.rule in rules and r.blocking == blocking]
    assert primary, f"no failure with blocking={blocking}: {format_report(report)}"
    assert report.passed is not blocking
    if offender is not None:
        assert any(offender in r.examples for r in primary), format_report(report)
        assert all(r.unexpected_count and r.unexpected_count >= 1 for r in primary)


def test_blocking_flags_follow_the_rules(good: pd.DataFrame) -> None:
    """Blocking vs warning comes from rules.ROW_RULES (shared with ingest's quarantine), never restated."""
    expectations = schema_expectations(good.columns) + row_expectations(
        [*good.columns, *(f"_rule_{n}" for n in DERIVED_RULES)], ["la", "springfield"], NOW
    )
    row_rules = {r.name: r.blocking for r in ROW_RULES}
    for e in expectations:
        assert set(e.meta) == {"blocking", "rule", "column"}
        assert e.meta["blocking"] == rule_blocking(e.meta["rule"])
        assert e.meta["blocking"] == row_rules.get(e.meta["rule"], TABLE_RULES.get(e.meta["rule"], (None,))[0])
        assert e.severity.value == ("critical" if e.meta["blocking"] else "warning")
    covered = {e.meta["rule"] for e in expectations}
    assert set(row_rules) <= covered, "a row rule has no expectation in the suite"
    assert {r.name for r in BLOCKING_RULES} <= {e.meta["rule"] for e in expectations if e.meta["blocking"]}


def test_derived_rule_counts_match_the_pandas_rules(good: pd.DataFrame) -> None:
    frame = _near_duplicate(_closed_within_minutes(good))
    report = run_checks(frame, None, now=NOW)
    expected = violations(frame, NOW).sum()
    for rule in DERIVED_RULES:
        (outcome,) = [r for r in report.results if r.rule == rule]
        assert outcome.unexpected_count == expected[rule]


def test_data_docs_index_is_written(good_report: CheckReport) -> None:
    assert good_report.docs_path is not None
    assert good_report.docs_path.name == "index.html" and good_report.docs_path.is_file()
    html = good_report.docs_path.read_text()
    assert "eta311_records_rows" in html and "eta311_records_schema" in html


def test_report_to_dict_is_json_serialisable(good: pd.DataFrame) -> None:
    report = run_checks(_stale(_set("status", "bogus")(good)), None, now=NOW)
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["passed"] is False
    assert payload["row_count"] == ROWS
    assert payload["blocking_failures"] == 1 and payload["warnings"] == 1
    first = payload["results"][0]
    assert {"expectation", "rule", "column", "blocking", "success", "unexpected_count", "examples"} <= set(first)


def test_format_report_lists_one_line_per_failure(good: pd.DataFrame) -> None:
    report = run_checks(_closed_within_minutes(_set("status", "bogus")(good)), None, now=NOW)
    lines = format_report(report).splitlines()
    assert lines[0].startswith("check FAILED")
    failure_lines = [line for line in lines[1:] if line.lstrip().startswith(("BLOCKING", "warning"))]
    assert len(failure_lines) == len(report.failures) == 2
    assert "BLOCKING" in failure_lines[0] and "invalid_status" in failure_lines[0] and "LA-0000" in failure_lines[0]
    assert "warning" in failure_lines[1] and "closed_within_minutes" in failure_lines[1]


def test_empty_records_do_not_crash() -> None:
    report = run_checks(empty_records(), None, now=NOW)
    assert report.row_count == 0
    assert report.passed, format_report(report)


def test_no_progress_bars(good: pd.DataFrame, capfd: pytest.CaptureFixture[str]) -> None:
    run_checks(good, None, now=NOW)
    captured = capfd.readouterr()
    assert "Calculating Metrics" not in captured.err + captured.out
    assert "%|" not in captured.err


def test_schema_columns_are_the_canonical_record(good: pd.DataFrame) -> None:
    assert list(good.columns) == list(RECORD_COLUMNS)


def test_naive_now_is_taken_as_utc(good: pd.DataFrame, tmp_path: Path) -> None:
    report = run_checks(good, None, now=NOW.tz_localize(None))
    assert report.passed and report.now == NOW
