"""Great Expectations 1.x suites for canonical 311 records, built in code from `features.schema` and `rules`.

`eta311 check` runs them. The suite is not a stored JSON file: it is derived on each run from the schema
(columns, dtypes, value sets, city bounding boxes) and from `data_checks.rules.ROW_RULES` (the rules
`ingest` quarantines on), so a rule cannot drift between the two. Every expectation carries
`meta={"blocking", "rule", "column"}` and a GX `severity` (critical = blocking, warning = warning); a row
rule's expectations take their blocking flag from `RowRule.blocking`, never from a second list here.

Native GX expectations are used wherever one exists. Two rules have no native equivalent — a closing time
within minutes of creation (a difference of two columns against a constant) and near duplicates (grouping on
rounded keys) — so for those the rule's own vectorised predicate is evaluated once and the suite expects the
derived boolean column `_rule_<name>` to be all False. Counts therefore match `rules.violations` for those
two; for native ones they can differ by design: GX counts *both* members of a duplicated id pair (rules
flag only the later one), and it checks latitude and longitude as separate expectations (so a latitude
given without a longitude, which the rule flags, passes here).

Two suites: `eta311_records_schema` (required columns, exactly the canonical columns, canonical dtypes) and
`eta311_records_rows` (the row rules, then freshness). Rows that `ingest` keeps pass every blocking
expectation by construction; the table-level rules (`TABLE_RULES`) are about the file, not a row.

Great Expectations is slow to import (~4-5 s), so it is imported lazily inside functions.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from data_checks.rules import EARLIEST_PLAUSIBLE, FUTURE_TOLERANCE, ROW_RULES, RowRule
from features.schema import (
    CITIES,
    RECORD_COLUMNS,
    RECORD_DTYPES,
    REQUIRED_RECORD_COLUMNS,
    SOURCE_VALUES,
    STATUS_VALUES,
)

if TYPE_CHECKING:
    from great_expectations.data_context import AbstractDataContext
    from great_expectations.expectations import Expectation

log = logging.getLogger(__name__)

SCHEMA_SUITE = "eta311_records_schema"
ROWS_SUITE = "eta311_records_rows"
DOCS_SITE = "eta311"
# Data newer than this is "fresh"; older data is a warning (a stalled export), never a blocker.
FRESHNESS = pd.Timedelta(days=7)
MAX_EXAMPLES = 5
# Row rules GX cannot express natively: checked through a derived boolean column expected to be False.
DERIVED_RULES: tuple[str, ...] = ("closed_within_minutes", "near_duplicate")
DERIVED_PREFIX = "_rule_"

# Table-level rules (about the file, not a row): not in rules.ROW_RULES because ingest cannot quarantine a
# row for them. name -> (blocking, description).
TABLE_RULES: dict[str, tuple[bool, str]] = {
    "required_column": (True, "the columns no record can do without are present"),
    "schema_columns": (False, "exactly the canonical record columns, no more, no fewer"),
    "column_type": (True, "each column has its canonical dtype"),
    "stale_data": (False, f"the newest record is at most {FRESHNESS.days} days old (run_checks' freshness)"),
}
_ROW_RULES: dict[str, RowRule] = {r.name: r for r in ROW_RULES}


def rule_blocking(rule: str) -> bool:
    """Whether a rule blocks: from `rules.ROW_RULES` for row rules, `TABLE_RULES` for table rules."""
    if rule in _ROW_RULES:
        return _ROW_RULES[rule].blocking
    return TABLE_RULES[rule][0]


def rule_description(rule: str) -> str:
    return _ROW_RULES[rule].description if rule in _ROW_RULES else TABLE_RULES[rule][1]


# --- the report ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's verdict, flattened from the GX validation result into plain JSON-able values."""

    expectation: str  # GX expectation type, e.g. expect_column_values_to_not_be_null
    rule: str
    column: str
    blocking: bool
    success: bool
    unexpected_count: int | None = None  # rows breaking it (None for table-level expectations)
    examples: list[str | None] = field(default_factory=list)  # request_id of up to 5 offending rows
    observed: str | None = None  # aggregate expectations: what was seen (max timestamp, dtype, columns)
    error: str | None = None  # GX raised instead of answering: counted as a failure


@dataclass
class CheckReport:
    """The outcome of `run_checks`: passed means every blocking expectation succeeded."""

    passed: bool
    row_count: int
    results: list[ExpectationOutcome]
    docs_path: Path | None = None
    now: pd.Timestamp | None = None
    seconds: float = 0.0

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [r for r in self.results if not r.success]

    @property
    def blocking_failures(self) -> list[ExpectationOutcome]:
        return [r for r in self.failures if r.blocking]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [r for r in self.failures if not r.blocking]

    def failed_rules(self) -> set[str]:
        return {r.rule for r in self.failures}

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, for `eta311 check --json`."""
        return {
            "passed": self.passed,
            "row_count": self.row_count,
            "expectations": len(self.results),
            "blocking_failures": len(self.blocking_failures),
            "warnings": len(self.warnings),
            "now": self.now.isoformat() if self.now is not None else None,
            "seconds": round(self.seconds, 3),
            "docs_path": str(self.docs_path) if self.docs_path else None,
            "results": [asdict(r) for r in self.results],
        }


def format_report(report: CheckReport) -> str:
    """Human-readable summary: one headline, then one line per failed expectation, blocking first."""
    verdict = "PASSED" if report.passed else "FAILED"
    lines = [
        f"check {verdict}: {report.row_count:,} rows, {len(report.results)} expectations, "
        f"{len(report.blocking_failures)} blocking failed, {_plural(len(report.warnings), 'warning')} "
        f"({report.seconds:.1f} s)"
    ]
    for r in sorted(report.failures, key=lambda r: not r.blocking):
        level = "BLOCKING" if r.blocking else "warning "
        count = _plural(r.unexpected_count, "row") if r.unexpected_count is not None else "-"
        detail = ""
        if r.examples:
            detail = " e.g. " + ", ".join(str(e) for e in r.examples)
        elif r.observed is not None:
            detail = f" observed {r.observed}"
        if r.error:
            detail += f" error: {r.error}"
        lines.append(f"  {level} {r.rule:<26} {r.column:<14} {count:>12}{detail}  [{r.expectation}]")
    if report.docs_path:
        lines.append(f"data docs: {report.docs_path}")
    return "\n".join(lines)


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


# --- building the suites ------------------------------------------------------------------------------


def _import_gx() -> Any:
    """Import great_expectations with its analytics off (the env var is read at import).

    GX logs dozens of INFO lines while importing (docs decorators, datasource registration); unless the
    application chose a level for its logger, keep it at WARNING so `eta311 -v` output stays readable.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.WARNING)
    import great_expectations as gx

    return gx


def derived_columns(records: pd.DataFrame, now: pd.Timestamp) -> dict[str, pd.Series]:
    """`_rule_<name>` boolean columns for the rules GX cannot express; skipped when their inputs are missing."""
    out: dict[str, pd.Series] = {}
    for name in DERIVED_RULES:
        try:
            out[DERIVED_PREFIX + name] = _ROW_RULES[name].violations(records, now).astype(bool)
        except KeyError as missing:
            log.info("rule %s not checked: column %s is missing", name, missing)
    return out


class _Planner:
    """Collects expectations with their meta and severity, taken from the rule they implement."""

    def __init__(self, columns: Collection[str]) -> None:
        _import_gx()
        import great_expectations.expectations as gxe
        from great_expectations.expectations.row_conditions import Column

        self.gxe = gxe
        self.Column = Column
        self.present = set(columns)
        self.planned: list[Expectation] = []

    def have(self, *names: str) -> bool:
        return all(n in self.present for n in names)

    def add(self, cls_name: str, rule: str, about: str, /, **kwargs: Any) -> None:
        blocking = rule_blocking(rule)
        self.planned.append(
            getattr(self.gxe, cls_name)(
                **kwargs,
                meta={"blocking": blocking, "rule": rule, "column": about},
                severity="critical" if blocking else "warning",
                notes=f"{rule}: {rule_description(rule)}",
            )
        )


def schema_expectations(columns: Collection[str]) -> list[Expectation]:
    """Table-level expectations: required columns present, exactly the canonical columns, canonical dtypes."""
    p = _Planner(columns)
    for name in REQUIRED_RECORD_COLUMNS:
        p.add("ExpectColumnToExist", "required_column", name, column=name)
    p.add("ExpectTableColumnsToMatchSet", "schema_columns", "*", column_set=list(RECORD_COLUMNS), exact_match=True)
    for name, dtype in RECORD_DTYPES.items():
        if p.have(name):
            p.add("ExpectColumnTypeToBe", "column_type", name, column=name, type_=dtype)
    return p.planned


def row_expectations(
    columns: Collection[str],
    cities: Iterable[str],
    now: pd.Timestamp,
    freshness: pd.Timedelta = FRESHNESS,
) -> list[Expectation]:
    """One or more expectations per rule of `rules.ROW_RULES` (in its order), then freshness.

    Expectations about a column the frame lacks are left out (the schema suite already reports it), so one
    missing column gives one clear failure rather than a cascade of GX exceptions.
    """
    p = _Planner(columns)
    for rule in ROW_RULES:
        builder = _RULE_BUILDERS.get(rule.name)
        if builder is None:
            log.warning("rule %s has no expectation in the suite; it is not checked", rule.name)
            continue
        builder(p, set(cities), now)
    if p.have("created_at"):
        # A stalled export still validates row by row, so say so.
        p.add("ExpectColumnMaxToBeBetween", "stale_data", "created_at", column="created_at", min_value=now - freshness)
    return p.planned


def _not_null(column: str) -> Callable[[_Planner, set[str], pd.Timestamp], None]:
    def build(p: _Planner, cities: set[str], now: pd.Timestamp) -> None:
        if p.have(column):
            p.add("ExpectColumnValuesToNotBeNull", f"missing_{column}", column, column=column)

    return build


def _invalid_status(p: _Planner, cities: set[str], now: pd.Timestamp) -> None:
    if p.have("status"):
        # rules counts a missing status as invalid; GX's in-set ignores nulls, hence two expectations.
        p.add("ExpectColumnValuesToNotBeNull", "invalid_status", "status", column="status")
        p.add("ExpectColumnValuesToBeInSet", "invalid_status", "status", column="status", value_set=list(STATUS_VALUES))


def _created_out_of_window(p: _Planner, cities: set[str], now: pd.Timestamp) -> None:
    if p.have("created_at"):
        p.add(
            "ExpectColumnValuesToBeBetween",
            "created_out_of_window",
            "created_at",
            column="created_at",
            min_value=EARLIEST_PLAUSIBLE,
            max_value=now + FUTURE_TOLERANCE,
        )


def _closed_in_future(p: _Planner, cities: set[str], now: pd.Timestamp) -> None:
    if p.have("closed_at"):
        p.add(
            "ExpectColumnValuesToBeBetween",
            "closed_in_future",
            "closed_at",
            column="closed_at",
            max_value=now + FUTURE_TOLERANCE,
        )


def _closed_before_created(p: _Planner, cities: set[str], now: pd.Timestamp) -> None:
    if p.have("closed_at", "created_at"):
        p.add(
            "ExpectColumnPairValuesAToBeGreaterThanB",
            "closed_before_created",
            "closed_at",
            column_A="closed_at",
            column_B="created_at",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
        )


def _duplicate_request_id(p: _Planner, cities: set[str], now: pd.Timestamp) -> None:
    if p.have("city", "request_id"):
        # Rows without an id are missing_request_id's business, not duplicates of each other.
        p.add(
            "ExpectCompoundColumnsToBeUnique",
            "duplicate_request_id",
            "request_id",
            column_list=["city", "request_id"],
            ignore_row_if="any_value_is_missing",
        )


def _coordinates_out_of_bounds(p: _Planner, cities: set[str], now: pd.Timestamp) -> None:
    """One latitude and one longitude range per city present, scoped by a row condition on `city`."""
    if not p.have("city", "latitude", "longitude"):
        return
    for code in sorted(cities & set(CITIES)):
        min_lat, max_lat, min_lon, max_lon = CITIES[code].bounds
        for column, low, high in (("latitude", min_lat, max_lat), ("longitude", min_lon, max_lon)):
            p.add(
                "ExpectColumnValuesToBeBetween",
                "coordinates_out_of_bounds",
                column,
                column=column,
                min_value=low,
                max_value=high,
                row_condition=p.Column("city") == code,
            )
    if cities - set(CITIES):
        # A city we have no box for: only the globe's range can be checked.
        for column, limit in (("latitude", 90.0), ("longitude", 180.0)):
            p.add(
                "ExpectColumnValuesToBeBetween",
                "coordinates_out_of_bounds",
                column,
                column=column,
                min_value=-limit,
                max_value=limit,
                row_condition=p.Column("city").is_not_in(sorted(CITIES)),
            )


def _closed_without_closed_at(p: _Planner, cities: set[str], now: pd.Timestamp) -> None:
    if p.have("status", "closed_at"):
        p.add(
            "ExpectColumnValuesToNotBeNull",
            "closed_without_closed_at",
            "closed_at",
            column="closed_at",
            row_condition=p.Column("status") == "closed",
        )


def _open_with_closed_at(p: _Planner, cities: set[str], now: pd.Timestamp) -> None:
    if p.have("status", "closed_at"):
        p.add(
            "ExpectColumnValuesToBeNull",
            "open_with_closed_at",
            "closed_at",
            column="closed_at",
            row_condition=p.Column("status") == "open",
        )


def _unknown_source(p: _Planner, cities: set[str], now: pd.Timestamp) -> None:
    # GX's in-set ignores nulls, as the rule does: a missing channel is allowed.
    if p.have("source"):
        p.add("ExpectColumnValuesToBeInSet", "unknown_source", "source", column="source", value_set=list(SOURCE_VALUES))


def _derived(name: str) -> Callable[[_Planner, set[str], pd.Timestamp], None]:
    """The rule's own predicate, precomputed by `derived_columns`, expected False on every row."""

    def build(p: _Planner, cities: set[str], now: pd.Timestamp) -> None:
        if p.have(DERIVED_PREFIX + name):
            p.add(
                "ExpectColumnValuesToBeInSet",
                name,
                _ROW_RULES[name].column,
                column=DERIVED_PREFIX + name,
                value_set=[False],
            )

    return build


_RULE_BUILDERS: dict[str, Callable[[_Planner, set[str], pd.Timestamp], None]] = {
    "missing_request_id": _not_null("request_id"),
    "missing_city": _not_null("city"),
    "missing_created_at": _not_null("created_at"),
    "invalid_status": _invalid_status,
    "created_out_of_window": _created_out_of_window,
    "closed_in_future": _closed_in_future,
    "closed_before_created": _closed_before_created,
    "duplicate_request_id": _duplicate_request_id,
    "coordinates_out_of_bounds": _coordinates_out_of_bounds,
    "closed_without_closed_at": _closed_without_closed_at,
    "open_with_closed_at": _open_with_closed_at,
    "unknown_source": _unknown_source,
    **{name: _derived(name) for name in DERIVED_RULES},
}
# The columns the row suite reads (values, row conditions, example ids): GX copies the whole frame for every
# row condition and hashes it to fingerprint the batch, so it is given only these.
ROW_SUITE_COLUMNS: tuple[str, ...] = (
    "request_id",
    "city",
    "created_at",
    "closed_at",
    "status",
    "source",
    "latitude",
    "longitude",
    "source_row",
)


def make_context(docs_dir: Path | None) -> AbstractDataContext:
    """An ephemeral GX context, progress bars off, with one filesystem Data Docs site at `docs_dir` (if any).

    Ephemeral: suites are built in code on every run, so there is no project folder to keep; the only
    artefact worth keeping is the rendered Data Docs. The config is passed in whole because the default
    ephemeral context creates a temp-dir docs site (and its folder) on every call.
    """
    gx = _import_gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites: dict[str, dict[str, Any]] = {}
    if docs_dir is not None:
        sites[DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites=sites,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(project_config=config, mode="ephemeral")


# --- running them -------------------------------------------------------------------------------------


def run_checks(
    records: pd.DataFrame,
    docs_dir: Path | None,
    now: pd.Timestamp | None = None,
    *,
    freshness: pd.Timedelta = FRESHNESS,
) -> CheckReport:
    """Validate canonical records with both suites; write Data Docs to `docs_dir` when given.

    `now` is the extraction time the time-window and freshness rules compare against (default: the
    current time); pass it explicitly for reproducible results.

    Two suites, two batches, for speed (1.75M rows: 4.5 s instead of 11 s for one suite on the full frame):
    the schema suite only reads column names and dtypes, so it runs on a zero-row slice of `records`
    (GX would otherwise hash every value to fingerprint the batch); the row suite runs on the columns it
    reads plus the derived rule columns, because GX copies the whole frame for each row condition.
    """
    started = time.perf_counter()
    now = pd.Timestamp(now) if now is not None else pd.Timestamp.now(tz="UTC")
    if now.tzinfo is None:
        now = now.tz_localize("UTC")
    gx = _import_gx()

    derived = derived_columns(records, now)
    row_frame = records[[c for c in ROW_SUITE_COLUMNS if c in records.columns]].assign(**derived)
    cities = records["city"].dropna().unique().tolist() if "city" in records.columns else []
    plans = {
        SCHEMA_SUITE: (schema_expectations(records.columns), records.iloc[:0]),
        ROWS_SUITE: (row_expectations(row_frame.columns, cities, now, freshness), row_frame),
    }
    result_format: dict[str, Any] = {
        "result_format": "SUMMARY",
        "partial_unexpected_count": MAX_EXAMPLES,
        # Examples name the offending rows by request id rather than by position.
        "unexpected_index_column_names": [c for c in ("request_id", "source_row") if c in records.columns],
    }

    context = make_context(docs_dir)
    source = context.data_sources.add_pandas("records")
    outcomes: list[ExpectationOutcome] = []
    for name, (expectations, frame) in plans.items():
        suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole")
        validation = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        result = validation.run(batch_parameters={"dataframe": frame}, result_format=result_format)
        outcomes.extend(_in_suite_order([_outcome(r) for r in result.results], expectations))

    docs_path = _build_docs(context, docs_dir) if docs_dir is not None else None
    report = CheckReport(
        passed=all(o.success for o in outcomes if o.blocking),
        row_count=len(records),
        results=outcomes,
        docs_path=docs_path,
        now=now,
        seconds=time.perf_counter() - started,
    )
    log.info(
        "checked %d rows with %d expectations in %.1f s: %d blocking failed, %d warnings",
        report.row_count,
        len(outcomes),
        report.seconds,
        len(report.blocking_failures),
        len(report.warnings),
    )
    return report


def _build_docs(context: AbstractDataContext, docs_dir: Path) -> Path | None:
    """Render Data Docs for both validation results (GX 1.x no longer does it unless asked)."""
    Path(docs_dir).mkdir(parents=True, exist_ok=True)
    context.build_data_docs(site_names=[DOCS_SITE])
    index = Path(docs_dir) / "index.html"
    if not index.is_file():
        log.warning("Data Docs were not written to %s", index)
        return None
    return index


def _in_suite_order(outcomes: list[ExpectationOutcome], expectations: list[Expectation]) -> list[ExpectationOutcome]:
    """GX returns results in its own order (by metric graph); report them in the order the suite lists them."""
    rank: dict[tuple[str, str, str], int] = {}
    for i, e in enumerate(expectations):
        rank.setdefault((e.meta["rule"], e.meta["column"], e.expectation_type), i)
    return sorted(outcomes, key=lambda o: rank.get((o.rule, o.column, o.expectation), len(rank)))


def _example(entry: Any) -> str | None:
    """An offending row's request id; its source row when the id itself is what is missing."""
    if not isinstance(entry, dict):  # a bare index: the frame had neither column
        return str(entry)
    request_id, source_row = entry.get("request_id"), entry.get("source_row")
    if request_id is not None and not pd.isna(request_id):
        return str(request_id)
    if source_row is not None and not pd.isna(source_row):
        return f"source_row={int(source_row)}"
    return None


def _outcome(result: Any) -> ExpectationOutcome:
    """Flatten one GX ExpectationValidationResult."""
    config = result.expectation_config
    meta = config.meta or {}
    raw = result.result or {}
    info = result.exception_info or {}
    error = info.get("exception_message") if info.get("raised_exception") else None
    examples: list[str | None] = []
    for entry in raw.get("partial_unexpected_index_list") or []:
        example = _example(entry)
        if example not in examples:  # both rows of a duplicated id name the same id
            examples.append(example)
    observed = raw.get("observed_value")
    details = raw.get("details") or {}
    if "mismatched" in details:
        mismatched = details["mismatched"]
        observed = f"missing {mismatched.get('missing', [])}, unexpected {mismatched.get('unexpected', [])}"
    count = raw.get("unexpected_count")
    return ExpectationOutcome(
        expectation=config.type,
        rule=str(meta.get("rule", config.type)),
        column=str(meta.get("column", "")),
        blocking=bool(meta.get("blocking", True)),
        success=bool(result.success),
        unexpected_count=int(count) if count is not None else None,
        examples=examples[:MAX_EXAMPLES],
        observed=None if observed is None else str(observed),
        error=error,
    )
