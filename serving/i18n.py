"""The resident's language: which one an answer uses, its gettext catalog, and CLDR dates and numbers.

Sentences are gettext messages: English is the source (`msgid`), the other languages are `.po` catalogs in
`serving/locale/<lang>/LC_MESSAGES/eta311.po`, made from `serving/locale/eta311.pot` with the usual
`pybabel extract / update` flow (README, Serving). Catalogs are compiled in memory from the `.po` when a
language is first used (`babel.messages.pofile` + `mofile`, a few milliseconds), so no binary `.mo` is kept
in git and a catalog can never be stale against its `.po`. Dates and numbers come from CLDR through Babel:
no day or month name is written by hand, in any language.

Language selection (`resolve_language`): the request's `language` field, else the `Accept-Language` header,
else English. Tags are BCP 47 and matched on their language (es-MX is es); Chinese is answered in
Simplified script unless the tag asks for Traditional (zh-Hant, zh-TW, zh-HK, zh-MO), which is not
supported yet. An unsupported language is answered in English with a warning naming it.

Everything per request is memoised (language resolution, catalogs, date patterns, whole sentences): a batch
repeats a few hundred distinct sentences, so each is built once.
"""

from __future__ import annotations

import datetime as dt
import functools
import gettext
import io
import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "eta311"
DEFAULT_LANGUAGE = "en"
# BCP 47 tag answered -> Babel (CLDR) locale identifier.
LANGUAGES: dict[str, str] = {"en": "en", "es": "es", "ko": "ko", "hy": "hy", "zh-Hans": "zh_Hans"}
SUPPORTED = ", ".join(LANGUAGES)
_TRADITIONAL_CHINESE = frozenset({"hant", "tw", "hk", "mo"})
_TAG = re.compile(r"^[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*$")
MAX_HEADER_ENTRIES = 16  # an Accept-Language header longer than this is read up to here


def match_tag(tag: str) -> str | None:
    """The supported language a BCP 47 tag asks for, or None (see the module doc)."""
    tag = tag.strip()
    if not _TAG.match(tag):
        return None
    parts = [part.lower() for part in re.split("[-_]", tag)]
    language = parts[0]
    if language == "zh":
        return None if _TRADITIONAL_CHINESE & set(parts[1:]) else "zh-Hans"
    return language if language in LANGUAGES else None


def parse_accept_language(header: str) -> list[str]:
    """The tags of an Accept-Language header, most wanted first (q=0 dropped, ties in header order)."""
    weighted = []
    for position, entry in enumerate(header.split(",")[:MAX_HEADER_ENTRIES]):
        tag, _, params = entry.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag.strip() and quality > 0 and math.isfinite(quality):
            weighted.append((-quality, position, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


@functools.lru_cache(maxsize=1024)
def resolve_language(requested: str | None, accept_language: str | None = None) -> tuple[str, str | None]:
    """(language answered, warning or None) for a request's `language` field and Accept-Language header."""
    if requested:
        found = match_tag(requested)
        if found:
            return found, None
        return DEFAULT_LANGUAGE, f"unsupported language {requested!r}: answered in English (supported: {SUPPORTED})"
    if accept_language:
        tags = parse_accept_language(accept_language)
        for tag in tags:
            if tag == "*":
                return DEFAULT_LANGUAGE, None
            found = match_tag(tag)
            if found:
                return found, None
        if tags:
            shown = ", ".join(tags)
            return DEFAULT_LANGUAGE, (
                f"unsupported language {shown!r} (Accept-Language): answered in English (supported: {SUPPORTED})"
            )
    return DEFAULT_LANGUAGE, None


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalog of a supported language, compiled from its `.po` (English: the messages themselves)."""
    if language == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    path = LOCALE_DIR / language.replace("-", "_") / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=LANGUAGES[language])
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


# --- dates and numbers (CLDR) ------------------------------------------------------------------------------

# Skeletons tried for "weekday, month day" (and with the year), best first; CLDR locales have some of them.
_DAY_SKELETONS = ("MMMMEEEEd", "MMMEEEEd", "MMMMEd", "MMMEd")


@functools.cache
def day_pattern(language: str, with_year: bool) -> str:
    """The locale's CLDR pattern for a full weekday and month name with the day (and year): "EEEE, MMMM d".

    CLDR lists patterns by skeleton, mostly with short names ("E, MMM d"); as ICU's pattern generator does,
    the closest skeleton's pattern is taken and its text fields widened to the full names asked for
    (numeric months, as in Chinese "M月d日", stay numeric).
    """
    from babel import Locale

    skeletons = Locale.parse(LANGUAGES[language]).datetime_skeletons
    prefix = "y" if with_year else ""
    pattern = next(str(skeletons[prefix + s]) for s in _DAY_SKELETONS if prefix + s in skeletons)
    return _widen(pattern)


def _widen(pattern: str) -> str:
    """E/EE/EEE -> EEEE and MMM -> MMMM, outside quoted literals."""
    parts = re.split(r"('(?:[^']|'')*')", pattern)
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"E+", "EEEE", parts[i])
        parts[i] = re.sub(r"(?<!M)MMM(?!M)", "MMMM", parts[i])
    return "".join(parts)


def format_day(day: dt.date, language: str, with_year: bool) -> str:
    """ "Friday, March 14" (", 2026" with the year) in the language's CLDR form."""
    from babel.dates import format_date

    return format_date(day, day_pattern(language, with_year), locale=LANGUAGES[language])


def format_number(value: float, digits: int, language: str) -> str:
    """An unsigned quantity with `digits` decimals, in the locale's digits and decimal sign (1.2, 1,2)."""
    from babel.numbers import format_decimal

    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=LANGUAGES[language])


# --- the resident's sentence -------------------------------------------------------------------------------


def resident_message(
    hours: Mapping[str, float],
    created_local: dt.datetime,
    expected_local: dt.datetime,
    language: str = DEFAULT_LANGUAGE,
) -> str:
    """One plain sentence: the usual range (P10 to P90) and the expected day (P50), in the city's time.

    Ranges under two days are told in hours, longer ones in whole days (P10 rounded down, P90 up, at least
    one), so the sentence never promises more precision than the model has.
    """
    low, high = hours["p10"], hours["p90"]
    if high < 48:
        low_n, high_n = max(1, math.floor(low)), max(1, math.ceil(high))
        unit = "hours"
    else:
        low_n, high_n = max(1, math.floor(low / 24)), max(1, math.ceil(high / 24))
        unit = "days"
    return _sentence(low_n, high_n, unit, expected_local.date(), created_local.date(), language)


@functools.lru_cache(maxsize=8192)
def _sentence(low_n: int, high_n: int, unit: str, expected: dt.date, created: dt.date, language: str) -> str:
    """The sentence for rounded figures and dates, built once per distinct set (a batch repeats them)."""
    t = translations(language)
    if high_n > low_n:
        if unit == "hours":
            span = t.ngettext("%(low)d to %(high)d hour", "%(low)d to %(high)d hours", high_n)
        else:
            span = t.ngettext("%(low)d to %(high)d day", "%(low)d to %(high)d days", high_n)
    elif unit == "hours":
        span = t.ngettext("about %(count)d hour", "about %(count)d hours", high_n)
    else:
        span = t.ngettext("about %(count)d day", "about %(count)d days", high_n)
    span = span % {"low": low_n, "high": high_n, "count": high_n}
    day = format_day(expected, language, with_year=expected.year != created.year)
    if expected == created:
        text = t.gettext("Most requests like yours are completed in %(span)s; we expect yours by later today, %(day)s.")
    else:
        text = t.gettext("Most requests like yours are completed in %(span)s; we expect yours by %(day)s.")
    return text % {"span": span, "day": day}


@functools.lru_cache(maxsize=8192)
def reason_text(family: str, size: int, department: str, in_hours: bool, language: str) -> str:
    """One explanation reason in the language; `size` as `models.explain.told` gives it (signed whole hours
    or tenths of a day), so equal sentences share one cache entry."""
    from models.explain import describe

    return describe(
        family,
        size,
        department,
        in_hours,
        catalog=translations(language),
        number=lambda value, digits: format_number(value, digits, language),
    )
