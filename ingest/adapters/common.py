"""Helpers every city adapter shares: column lookup, clock parsing, id and text cleaning."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

# Reason an adapter attaches to a row it could not read; the ingest step quarantines these rows.
REJECT_COLUMN = "_reject_reason"


def normalise_name(column: str) -> str:
    """Column names compared across export variants: lower case, alphanumerics only."""
    return re.sub(r"[^a-z0-9]", "", str(column).lower())


def column_index(raw: pd.DataFrame) -> dict[str, str]:
    """Map normalised column name -> actual column name (first wins)."""
    index: dict[str, str] = {}
    for column in raw.columns:
        index.setdefault(normalise_name(column), column)
    return index


def pick(raw: pd.DataFrame, index: dict[str, str], *candidates: str) -> pd.Series:
    """The first candidate column present (by normalised name), else an all-missing string column."""
    for candidate in candidates:
        actual = index.get(normalise_name(candidate))
        if actual is not None:
            return raw[actual]
    return pd.Series([None] * len(raw), index=raw.index, dtype="str")


def missing_columns(raw_columns: list[str], required: list[tuple[str, ...]]) -> list[str]:
    """Which required columns (each a tuple of accepted spellings) are absent; names the first spelling."""
    present = {normalise_name(c) for c in raw_columns}
    return [alts[0] for alts in required if not any(normalise_name(a) in present for a in alts)]


def clean_text(values: pd.Series) -> pd.Series:
    """Strings stripped, empty strings as missing."""
    out = values.astype("str").str.strip()
    return out.where(out.str.len() > 0)


def clean_id(values: pd.Series) -> pd.Series:
    """Ids as strings; a float-looking id ("123.0") loses its spurious decimal part."""
    out = clean_text(values)
    return out.str.replace(r"\.0$", "", regex=True)


def clean_zip(values: pd.Series) -> pd.Series:
    """Five-digit ZIP codes; anything else (0, 'N/A', 9-digit +4 kept to 5) normalised or missing."""
    text = clean_text(values).str.replace(r"\.0$", "", regex=True)
    five = text.str.extract(r"^(\d{4,5})", expand=False)
    five = five.where(five.isna(), five.str.zfill(5))
    return five.where(five != "00000")


def to_float(values: pd.Series) -> pd.Series:
    """Numbers from strings; unparseable -> NaN."""
    return pd.to_numeric(values, errors="coerce").astype("float64")


def parse_local_time(values: pd.Series, timezone: str, fmt: str | None = None) -> pd.Series:
    """Parse city-local wall-clock strings (or offset-carrying ones) into UTC timestamps.

    Naive values are localised to `timezone`; in the autumn DST overlap the first (daylight) reading is
    taken and spring-forward gaps shift forward, so no row is lost to the clock. Unparseable -> NaT.
    """
    text = clean_text(values)
    if fmt is None:
        parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    else:
        parsed = pd.to_datetime(text, errors="coerce", format=fmt)
    if getattr(parsed.dt, "tz", None) is not None:
        return parsed.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    localized = parsed.dt.tz_localize(timezone, ambiguous=np.ones(len(parsed), dtype=bool), nonexistent="shift_forward")
    return localized.dt.tz_convert("UTC").astype("datetime64[us, UTC]")


def unparseable(raw: pd.Series, parsed: pd.Series) -> pd.Series:
    """Rows where a value was given but could not be parsed."""
    return clean_text(raw).notna() & parsed.isna()


def map_values(values: pd.Series, mapping: dict[str, str], default: str | None = None) -> pd.Series:
    """Map raw values case-insensitively; unmapped non-missing values become `default` (or stay as is)."""
    lowered = {k.lower(): v for k, v in mapping.items()}
    text = clean_text(values)
    mapped = text.str.lower().map(lowered)
    fallback = text if default is None else pd.Series(default, index=text.index, dtype="str").where(text.notna())
    return mapped.where(mapped.notna(), fallback).astype("str")
