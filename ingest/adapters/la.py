"""Los Angeles MyLA311 adapter: Socrata exports (2017-2020 layouts) and 311-data API pulls to canonical records.

Five raw layouts are read, told apart only by which columns they carry (names compared normalised):

- the 33-column MyLA311 Socrata export (``SRNumber``, ``CreatedDate`` as ``12/31/2017 11:59:58 PM`` ...);
- the lower-case 35-column 2020 export (``srnumber``, ``createddate`` as ``2020-01-01 00:05:00``);
- the 39-column export: the 33 columns plus Socrata's computed region columns (``Zip Codes``, ``Council
  Districts`` ...), which hold Socrata region ids, not ZIPs or districts, and are ignored;
- the 311-data API pull (``typeName``, ``agencyName``, ``sourceName``, ``councilName``; no status column);
- the same pull with numeric ids only (``typeId``, ``agencyId``, ``sourceId``, ``councilId``), resolved
  through the code tables in ``lookups/``.

All clocks are LA wall-clock time. Everything is vectorised: low-cardinality columns are normalised once
per distinct value and spread back with a take, and timestamps go through Arrow's strptime with an explicit
format per layout (pandas only sees the rare leftovers), so ~1.75M rows cost about a second.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.schema import RECORD_COLUMNS, city_timezone
from ingest.adapters.common import (
    REJECT_COLUMN,
    clean_id,
    clean_zip,
    column_index,
    normalise_name,
    parse_local_time,
    pick,
)

log = logging.getLogger(__name__)

NAME = "la"
CITY = "la"
TIMEZONE = city_timezone(CITY)

# Each tuple: the accepted spellings of one column the format cannot do without (compared normalised).
REQUIRED: list[tuple[str, ...]] = [
    ("SRNumber", "requestId"),
    ("CreatedDate",),
    ("RequestType", "typeName", "typeId"),
    ("Status", "ClosedDate"),
]

# Normalised column names distinctive for each layout. Generic names other cities share (created/closed
# dates: NYC "Created Date", Chicago "created_date"; Chicago also has "sr_number") are left out on purpose.
SIGNATURES: dict[str, frozenset[str]] = {
    "myla311": frozenset({"srnumber", "requesttype", "requestsource", "ncname", "cd", "owner", "actiontaken"}),
    "api": frozenset({"srnumber", "requestid", "typename", "agencyname", "sourcename", "councilname"}),
    "api_ids": frozenset({"srnumber", "requestid", "typeid", "agencyid", "sourceid", "councilid"}),
}
SIGNATURE: set[str] = set().union(*SIGNATURES.values())

# --- normalisation: one mapping per field -----------------------------------------------------------------

REQUEST_TYPES: tuple[str, ...] = (
    "Bulky Items",
    "Graffiti Removal",
    "Illegal Dumping Pickup",
    "Metal/Household Appliances",
    "Electronic Waste",
    "Homeless Encampment",
    "Dead Animal Removal",
    "Other",
    "Single Streetlight Issue",
    "Multiple Streetlight Issue",
    "Report Water Waste",
    "Feedback",
)
# The API's short type names ("Graffiti", "Animal Remains" ...) come from lookups/types.csv (data_code).

DEPARTMENTS: tuple[str, ...] = (
    "Sanitation",
    "Community Beautification",
    "Street Lighting",
    "Information Technology",
    "Water and Power",
    "Street Services",
)
# Owner codes and agency names, across years: BOS and LASAN are the same bureau (renamed ~2019).
DEPARTMENT_ALIASES: dict[str, str] = {
    "BOS": "Sanitation",
    "LASAN": "Sanitation",
    "Sanitation Bureau": "Sanitation",
    "Bureau of Sanitation": "Sanitation",
    "LA Sanitation": "Sanitation",
    "Sanitation": "Sanitation",
    "OCB": "Community Beautification",
    "Office of Community Beautification": "Community Beautification",
    "Community Beautification": "Community Beautification",
    "BSL": "Street Lighting",
    "Street Lighting Bureau": "Street Lighting",
    "Bureau of Street Lighting": "Street Lighting",
    "Street Lighting": "Street Lighting",
    "ITA": "Information Technology",
    "Information Technology Agency": "Information Technology",
    "Information Technology": "Information Technology",
    "LADWP": "Water and Power",
    "DWP": "Water and Power",
    "Department of Water & Power": "Water and Power",
    "Department of Water and Power": "Water and Power",
    "Water and Power": "Water and Power",
    "BSS": "Street Services",
    "Bureau of Street Services": "Street Services",
    "StreetsLA": "Street Services",
    "Street Services": "Street Services",
}

STATUS_ALIASES: dict[str, str] = {
    "closed": "closed",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "referred out": "referred",
    "referred": "referred",
    "open": "open",
    "pending": "open",
}

# RequestSource (MyLA311) and sourceName (API) to features.schema.SOURCE_VALUES; anything else -> "other".
SOURCE_ALIASES: dict[str, str] = {
    "Call": "phone",
    "Phone Call": "phone",
    "Voicemail": "phone",
    "TTY": "phone",
    "TTY/ NexTalk": "phone",
    "Queue-Initiated": "phone",
    "Queue Initiated Customer Call": "phone",
    "Mobile App": "mobile_app",
    "Self Service": "web",
    "Website": "web",
    "Web Form": "web",
    "Email": "email",
    "Letter": "email",
    "Fax": "email",
    "Driver Self Report": "crew",
    "Work Crew": "crew",
    "Proactive Insert": "crew",
    "Council's Office": "elected_office",
    "City Attorney": "elected_office",
    "Mayor's Office": "elected_office",
    "Social": "social",
    "Twitter": "social",
    "Walk-in": "walk_in",
}

# API council names that differ from the code table's current names (renames between pulls). "No council"
# (council id 0) is an area outside every council: missing, as MyLA311 leaves NCName blank there.
NEIGHBORHOOD_ALIASES: dict[str, str | None] = {
    "Historic Cultural": "Arts District Little Tokyo",
    "Noho West": "North Hollywood West",
    "UNNC": "United Neighborhoods",
    "No council": None,
}


@dataclass(frozen=True)
class ClockFormat:
    """A fixed-width wall-clock layout: Arrow parses it; the day-of-month check catches Feb 30 roll-overs."""

    fmt: str
    width: int
    day_start: int


CLOCK_FORMATS: tuple[ClockFormat, ...] = (
    ClockFormat("%m/%d/%Y %I:%M:%S %p", 22, 3),  # MyLA311 Socrata CSV: 12/31/2017 11:59:58 PM
    ClockFormat("%Y-%m-%d %H:%M:%S", 19, 8),  # 2020 lower-case export: 2020-01-01 00:05:00
    ClockFormat("%Y-%m-%dT%H:%M:%S", 19, 8),  # 311-data API: 2022-09-19T11:07:12
)
_FORMAT_SAMPLE = 1_000

# --- detection ----------------------------------------------------------------------------------------------


def score(columns: list[str]) -> float:
    """How well `columns` look like an LA layout: best share of one variant's signature present, 0..1."""
    present = {normalise_name(c) for c in columns}
    return max(len(signature & present) / len(signature) for signature in SIGNATURES.values())


# --- lookups (read lazily, once) ----------------------------------------------------------------------------


@functools.cache
def _lookup(name: str) -> pd.DataFrame:
    """One of the 311-data code tables shipped in lookups/ (package data), all values as strings."""
    path = resources.files("ingest.adapters").joinpath("lookups", f"{name}.csv")
    with path.open("r", encoding="utf-8") as handle:
        return pd.read_csv(handle, dtype=str, keep_default_na=False)


def _table(name: str, key: str, value: str) -> dict[str, str]:
    frame = _lookup(name)
    return dict(zip(frame[key].str.strip(), frame[value].str.strip(), strict=True))


@functools.cache
def type_names() -> dict[str, str]:
    """Lower-cased MyLA311 or API type name -> the MyLA311 name (the API's "Graffiti" -> "Graffiti Removal")."""
    table = _lookup("types")
    names = {t.lower(): t for t in REQUEST_TYPES}
    names.update({code.strip().lower(): code.strip() for code in table["data_code"]})
    for api_name, code in zip(table["type_name"], table["data_code"], strict=True):
        names[api_name.strip().lower()] = code.strip()
    return names


@functools.cache
def type_ids() -> dict[str, str]:
    """API typeId -> MyLA311 type name."""
    return _table("types", "type_id", "data_code")


@functools.cache
def agency_codes() -> dict[str, str]:
    """API agencyId -> MyLA311 Owner code (2 and 3 are both Sanitation: BOS and LASAN)."""
    return _table("agencies", "agency_id", "data_code")


@functools.cache
def _agency_name_codes() -> dict[str, str]:
    """Lower-cased API agency name -> Owner code, for agencies outside the six named departments."""
    table = _lookup("agencies")
    return {n.strip().lower(): c.strip() for n, c in zip(table["agency_name"], table["data_code"], strict=True)}


@functools.cache
def source_ids() -> dict[str, str]:
    """API sourceId -> source name."""
    return _table("sources", "source_id", "source_name")


@functools.cache
def council_ids() -> dict[str, str]:
    """API councilId -> council name, as numbered in lookups/councils.csv (id 0 is 'No council')."""
    return {k: v for k, v in _table("councils", "council_id", "council_name").items() if k != "0"}


@functools.cache
def council_codes() -> dict[str, str]:
    """MyLA311 NC number -> council name (the table's data_code), so all layouts name councils alike."""
    return {k: v for k, v in _table("councils", "data_code", "council_name").items() if k not in ("", "0")}


# --- vectorised helpers -------------------------------------------------------------------------------------

_DAY_TEXT = tuple(f"{day:02d}" for day in range(32))  # day of month -> its two-digit text, for the parse check


def _arrow(values: pd.Series) -> pa.Array | pa.ChunkedArray:
    """The Series' values as Arrow strings (zero-copy for pandas' Arrow-backed `str` columns)."""
    return pa.array(values, pa.large_string()) if len(values) else pa.array([], pa.large_string())


def _str_series(values: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    """An Arrow string array as a pandas `str` Series without a round trip through Python objects."""
    return pd.Series(values, dtype="str", index=index)


def _missing(index: pd.Index) -> pd.Series:
    """An all-missing `str` column (built from Arrow nulls: ~100x faster than from a NaN scalar)."""
    return _str_series(pa.nulls(len(index), pa.large_string()), index)


def _text(values: pd.Series) -> pa.Array | pa.ChunkedArray:
    """Trimmed Arrow strings with blank values as null."""
    trimmed = pc.utf8_trim_whitespace(_arrow(values))
    blank = pc.equal(trimmed, "")
    if pc.any(blank).as_py():
        return pc.if_else(blank, pa.scalar(None, pa.large_string()), trimmed)
    return trimmed


def _per_distinct(values: pd.Series, normalise: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """Normalise each distinct value once, then spread the results back with a take (1.75M rows: ~50 ms).

    `normalise` gets the distinct values, trimmed, as a `str` Series and returns one result per value.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    distinct = pd.Series(uniques, dtype="str").str.strip()
    distinct = distinct.where(distinct.str.len() > 0)
    mapped = normalise(distinct).astype("str").where(distinct.notna())
    table = pa.array(mapped, pa.large_string())
    return _str_series(table.take(pa.array(codes, mask=codes < 0)), values.index)


def _by_value(values: pd.Series, normalise: Callable[[str], str | None]) -> pd.Series:
    """`_per_distinct` with a plain function of one (non-blank, trimmed) value."""
    return _per_distinct(values, lambda d: d.map(lambda v: normalise(v) if isinstance(v, str) else None))


def _fill(current: pd.Series, values: pd.Series, normalise: Callable[[str], str | None]) -> pd.Series:
    """`current`, with its missing rows filled from `values` (normalised); only those rows are read."""
    gaps = current.isna().to_numpy()
    if not gaps.any():
        return current
    if gaps.all():
        return _by_value(values, normalise)
    return current.mask(gaps, _by_value(values[gaps], normalise))


def _ids(values: pd.Series) -> pd.Series:
    """Request ids as trimmed strings; float-looking ids ("123.0") lose the decimal (common.clean_id)."""
    text = _text(values)
    if pc.any(pc.ends_with(text, ".0")).as_py():
        return clean_id(_str_series(text, values.index))
    return _str_series(text, values.index)


def _floats(values: pd.Series) -> pd.Series:
    """Coordinates as floats (0 -> NaN): Arrow's cast when all are clean numbers, else pandas' coercion."""
    try:
        numbers = pc.cast(_arrow(values), pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        numbers = pd.to_numeric(_str_series(_text(values), values.index), errors="coerce").to_numpy(dtype="float64")
    numbers = np.where(numbers == 0, np.nan, numbers)
    return pd.Series(numbers, index=values.index, dtype="float64")


def _address_zip(address: pd.Series) -> pd.Series:
    """The ZIP at an address's tail ("8209 N KESTER AVE, 91402"): the API pull's only ZIP."""
    found = pc.extract_regex(_text(address), r",\s*(?P<zip>\d{5})(?:-\d{4})?$")
    return _str_series(pc.struct_field(found, [0]), address.index)


# --- timestamps ---------------------------------------------------------------------------------------------


def _localise(naive: np.ndarray, index: pd.Index) -> pd.Series:
    """LA wall clock (``datetime64[s]``) -> UTC, as common.parse_local_time does it: the autumn overlap reads
    as daylight time, the spring gap shifts forward, so no row is lost to the clock."""
    local = pd.Series(naive, index=index)
    aware = local.dt.tz_localize(TIMEZONE, ambiguous=np.ones(len(local), dtype=bool), nonexistent="shift_forward")
    return aware.dt.tz_convert("UTC").astype("datetime64[us, UTC]")


def _parse_leftovers(text: pd.Series) -> pd.Series:
    """Values in no known layout: pandas' mixed parser, offset-carrying ones apart (pandas refuses a mix)."""
    aware = text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True).fillna(False).astype(bool)
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
    if (~aware).any():
        naive = text[~aware]
        # ISO 8601 spellings (fractional seconds, a lone date) have a fast C path; the rest go to "mixed".
        parsed = parse_local_time(naive, TIMEZONE, fmt="ISO8601")
        if parsed.isna().any():
            parsed = parsed.where(parsed.notna(), parse_local_time(naive, TIMEZONE))
        out[~aware] = parsed
    if aware.any():
        parsed = pd.to_datetime(text[aware], errors="coerce", utc=True, format="mixed")
        out[aware] = parsed.astype("datetime64[us, UTC]")
    return out


def _ordered_formats(text: pa.Array | pa.ChunkedArray) -> list[ClockFormat]:
    """The known layouts, the one that parses most of a small sample first (so it runs over every row once)."""
    sample = pc.drop_null(text)[:_FORMAT_SAMPLE]
    hits = [
        pc.sum(pc.is_valid(pc.strptime(sample, f.fmt, "s", error_is_null=True))).as_py() or 0 for f in CLOCK_FORMATS
    ]
    return [f for _, f in sorted(zip(hits, CLOCK_FORMATS, strict=True), key=lambda pair: -pair[0])]


def _written_day_matches(
    text: pa.Array | pa.ChunkedArray, parsed: pa.Array | pa.ChunkedArray, ok: pa.Array | pa.ChunkedArray, day_start: int
) -> pa.Array | pa.ChunkedArray:
    """`ok`, narrowed to values whose written day of month is the parsed one (Arrow reads Feb 30 as Mar 1)."""
    written = pc.utf8_slice_codeunits(text, day_start, day_start + 2)
    day = pc.day(parsed)
    try:  # all digits when every value is in this layout: the common case, and the cheapest
        same = pc.equal(pc.cast(written, pa.int64()), day)
    except pa.ArrowInvalid:
        written = pc.if_else(ok, written, pa.scalar(None, pa.large_string()))
        try:  # digits wherever the layout matched, except for odd whitespace ("1/2/2018 1:02:03    PM")
            same = pc.equal(pc.cast(written, pa.int64()), day)
        except pa.ArrowInvalid:
            same = pc.equal(written, pa.array(_DAY_TEXT, pa.large_string()).take(day))
    return pc.and_(ok, pc.fill_null(same, False))


def _parse_times(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """(UTC timestamps, which rows held a non-blank value); see `parse_times`."""
    n = len(values)
    text = _arrow(values)
    given = pc.is_valid(text).to_numpy(zero_copy_only=False)
    naive = np.full(n, np.datetime64("NaT", "s"))
    # The first layout runs over every row (cheaper than copying out the non-null ones), later ones over
    # the rows still unparsed.
    subset, positions = text, np.arange(n)
    pending = np.flatnonzero(given)
    for layout in _ordered_formats(text) if len(pending) else []:
        parsed = pc.strptime(subset, layout.fmt, "s", error_is_null=True)
        ok = pc.fill_null(pc.and_(pc.is_valid(parsed), pc.equal(pc.binary_length(subset), layout.width)), False)
        ok = _written_day_matches(subset, parsed, ok, layout.day_start).to_numpy(zero_copy_only=False)
        if len(positions) == n:  # the first pass: take the parsed column whole, unmatched rows blanked
            naive = np.where(ok, parsed.to_numpy(zero_copy_only=False).astype("datetime64[s]"), naive)
        else:
            naive[positions[ok]] = parsed.filter(pa.array(ok)).to_numpy(zero_copy_only=False).astype("datetime64[s]")
        pending = positions[~ok & given[positions]]
        if not len(pending):
            break
        subset, positions = text.take(pa.array(pending)), pending
    out = _localise(naive, values.index)
    if len(pending):
        # Rare by construction (odd spellings, padding, offsets): pandas may take its time over these.
        leftovers = pc.utf8_trim_whitespace(text.take(pa.array(pending)))
        blank = pc.equal(leftovers, "").to_numpy(zero_copy_only=False)
        given[pending[blank]] = False
        pending, leftovers = pending[~blank], leftovers.filter(pa.array(~blank))
        if len(pending):
            log.debug("la: %d timestamps in no known layout; parsing them with pandas", len(pending))
            out.iloc[pending] = _parse_leftovers(_str_series(leftovers, values.index[pending])).to_numpy()
    return out, given


def parse_times(values: pd.Series) -> pd.Series:
    """LA wall-clock strings in any known layout -> UTC timestamps (``datetime64[us, UTC]``); unparseable -> NaT.

    Arrow's strptime parses the fixed-width layouts ~25x faster than pandas (which has no fast path for
    ``%I ... %p``). Arrow rolls impossible days over (Feb 30 -> Mar 1), so a value only counts as parsed when
    it has the layout's width and its day of month survives; everything else goes to pandas.
    """
    return _parse_times(values)[0]


# --- field normalisers (one distinct value at a time) -------------------------------------------------------


def clean_code(value: str) -> str:
    """A numeric code as text without a spurious decimal part ("13.0" -> "13")."""
    text = value.strip()
    return text[:-2] if text.endswith(".0") else text


def _lower_keys(mapping: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in mapping.items()}


def _request_type(value: str) -> str:
    """MyLA311 or API type name -> the MyLA311 name; unknown types as given."""
    return type_names().get(value.lower(), value)


def _department(value: str) -> str:
    """Six named departments; any other agency as its Owner code (as MyLA311 writes it), else as given."""
    aliases = _lower_keys(DEPARTMENT_ALIASES)
    key = value.lower()
    if key in aliases:
        return aliases[key]
    code = _agency_name_codes().get(key)
    return aliases.get(code.lower(), code) if code else value


def _status(value: str) -> str:
    key = value.lower()
    return STATUS_ALIASES.get(key, key)  # unknown statuses stay (lower-cased) so invalid_status quarantines them


def _source(value: str) -> str:
    return _lower_keys(SOURCE_ALIASES).get(value.lower(), "other")


def _neighborhood(value: str) -> str | None:
    return NEIGHBORHOOD_ALIASES.get(value, value)


def _present(index: dict[str, str], *names: str) -> str | None:
    """The actual column for the first of `names` present (normalised), else None."""
    return next((index[normalise_name(n)] for n in names if normalise_name(n) in index), None)


def _field(
    raw: pd.DataFrame, cols: dict[str, str], sources: list[tuple[tuple[str, ...], Callable[[str], str | None]]]
) -> pd.Series:
    """A field read from the first column present in each (spellings, normaliser) pair, in order; later pairs
    fill only the rows earlier ones left missing (e.g. typeName, then typeId where the name is blank)."""
    out = _missing(raw.index)
    for spellings, normalise in sources:
        if (column := _present(cols, *spellings)) is not None:
            out = _fill(out, raw[column], normalise)
    return out


# --- the adapter --------------------------------------------------------------------------------------------


def to_records(raw: pd.DataFrame, city: str | None = None) -> pd.DataFrame:
    """Canonical records for a raw LA export: one row per raw row, same order and index, plus `_reject_reason`.

    Columns the adapter does not know (Socrata computed regions, an unnamed index column) are ignored.
    ``neighborhood`` is the neighborhood council under the code table's name (lookups/councils.csv), found
    by MyLA311's NC number or the API's council name/id, so every layout and year names a council alike
    (MyLA311 wrote "GREATER ECHO PARK ELYSIAN NC" in 2017 and "ECHO PARK NC" in 2020; the API "Echo Park").
    ``sla_target_at`` stays missing: MyLA311's ``ServiceDate`` equals the closing day for ~70% of rows, even
    for streetlight repairs nobody schedules at intake, so it is (at least partly) an outcome.
    """
    cols = column_index(raw)
    idx = raw.index

    created_at, created_given = _parse_times(pick(raw, cols, "CreatedDate"))
    closed_at, closed_given = _parse_times(pick(raw, cols, "ClosedDate"))
    reject = _missing(idx)
    for given, parsed, reason in (
        (closed_given, closed_at, "unparseable_closed_at"),
        (created_given, created_at, "unparseable_created_at"),  # last, so it wins when both fail
    ):
        unreadable = given & parsed.isna().to_numpy()
        if unreadable.any():
            reject = reject.mask(unreadable, reason)

    request_type = _field(
        raw,
        cols,
        [(("RequestType", "typeName"), _request_type), (("typeId",), lambda v: type_ids().get(clean_code(v), v))],
    )
    department = _field(
        raw,
        cols,
        [
            (("Owner", "agencyName"), _department),
            (("agencyId",), lambda v: _department(agency_codes().get(clean_code(v), v))),
        ],
    )
    source = _field(
        raw,
        cols,
        [
            (("RequestSource", "sourceName"), _source),
            (("sourceId",), lambda v: _source(source_ids().get(clean_code(v), v))),
        ],
    )
    # MyLA311 states a status; the API pull has none, so there a close time is what closes a request.
    if (status_column := _present(cols, "Status")) is not None:
        status = _by_value(raw[status_column], _status)
    else:
        status = pd.Series(np.where(closed_given, "closed", "open"), index=idx, dtype="str")

    # CD is the council district (MyLA311 only); the API's "council" is a neighborhood council.
    district = _field(raw, cols, [(("CD",), clean_code)])
    neighborhood = _field(
        raw,
        cols,
        [
            (("NC",), lambda v: council_codes().get(clean_code(v))),
            (("NCName", "councilName"), _neighborhood),
            (("councilId",), lambda v: council_ids().get(clean_code(v))),
        ],
    )
    zip_code = _missing(idx)
    if (zip_column := _present(cols, "ZipCode")) is not None:
        zip_code = _per_distinct(raw[zip_column], clean_zip)
    if (address_column := _present(cols, "Address")) is not None:
        gaps = zip_code.isna().to_numpy()
        if gaps.any():
            zip_code = zip_code.mask(gaps, _address_zip(raw[address_column][gaps]))

    out = {
        "request_id": _ids(pick(raw, cols, "SRNumber", "requestId")),
        "city": _str_series(pa.repeat(pa.scalar(city or CITY, pa.large_string()), len(idx)), idx),
        "created_at": created_at,
        "request_type": request_type,
        "source": source,
        "description": _missing(idx),
        "latitude": _floats(pick(raw, cols, "Latitude")),
        "longitude": _floats(pick(raw, cols, "Longitude")),
        "zip_code": zip_code,
        "council_district": district,
        "neighborhood": neighborhood,
        "closed_at": closed_at,
        "status": status,
        "department": department,
        "sla_target_at": pd.Series(pd.NaT, index=idx, dtype="datetime64[us, UTC]"),
    }
    columns = [c for c in RECORD_COLUMNS if c in out]
    return pd.DataFrame({c: out[c] for c in columns} | {REJECT_COLUMN: reject}, index=idx)
