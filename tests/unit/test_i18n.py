"""The resident's language without a model: choosing the language, the catalogs against the code, CLDR dates,
and English exactly as it was before translations existed."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from babel.dates import get_day_names
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from models.explain import FAMILIES, REASONS, describe
from serving.i18n import (
    LANGUAGES,
    LOCALE_DIR,
    _sentence,
    format_day,
    parse_accept_language,
    reason_text,
    resident_message,
    resolve_language,
)

ROOT = Path(__file__).resolve().parents[2]
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October")
_MONTHS += ("November", "December")
_PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _english_day(day: dt.date, with_year: bool) -> str:
    """The English the service wrote before Babel (hand-written names), as the oracle of parity."""
    text = f"{_WEEKDAYS[day.weekday()]}, {_MONTHS[day.month - 1]} {day.day}"
    return f"{text}, {day.year}" if with_year else text


def test_english_days_are_byte_identical_to_the_old_sentences_for_three_years() -> None:
    day = dt.date(2024, 1, 1)
    while day < dt.date(2027, 1, 1):
        assert format_day(day, "en", False) == _english_day(day, False)
        assert format_day(day, "en", True) == _english_day(day, True)
        day += dt.timedelta(days=1)
    created = dt.date(2025, 3, 10)
    assert _sentence(2, 2, "hours", created, created, "en") == (
        "Most requests like yours are completed in about 2 hours; we expect yours by later today, Monday, March 10."
    )
    assert _sentence(1, 1, "days", created + dt.timedelta(days=1), created, "en") == (
        "Most requests like yours are completed in about 1 day; we expect yours by Tuesday, March 11."
    )


@pytest.mark.parametrize(
    ("language", "opening", "day"),
    [
        ("es", "La mayoría de las solicitudes como la suya se completan en 2 a 5 días", "viernes, 14 de marzo"),
        ("ko", "귀하와 비슷한 요청은 대부분 2~5일 이내에", "3월 14일 금요일"),
        ("hy", "Ձերին նման հարցումների մեծ մասը կատարվում է 2–5 օրվա ընթացքում", "14 մարտի, ուրբաթ"),
        ("zh-Hans", "与您类似的请求大多在2至5天内完成", "3月14日星期五"),
    ],
)
def test_each_language_tells_the_range_and_the_cldr_day(language: str, opening: str, day: str) -> None:
    created = dt.datetime(2025, 3, 10, 9, tzinfo=dt.timezone(dt.timedelta(hours=-7)))
    text = resident_message(
        {"p10": 50.0, "p50": 100.0, "p90": 115.0}, created, created + dt.timedelta(hours=100), language
    )
    assert text.startswith(opening) and day in text
    # The weekday is CLDR's (Babel), not a name written here.
    assert get_day_names("wide", locale=LANGUAGES[language])[4] in text
    later = resident_message({"p10": 2.2, "p50": 4.0, "p90": 9.5}, created, created + dt.timedelta(hours=4), language)
    assert "10" in later and later != resident_message(
        {"p10": 2.2, "p50": 4.0, "p90": 9.5}, created, created + dt.timedelta(hours=4)
    )
    next_year = dt.datetime(2025, 12, 30, 9, tzinfo=dt.UTC)
    assert "2026" in resident_message(
        {"p10": 30.0, "p50": 72.0, "p90": 90.0}, next_year, next_year + dt.timedelta(hours=72), language
    )


@pytest.mark.parametrize(
    ("field", "header", "language"),
    [
        (None, None, "en"),
        ("es", None, "es"),
        ("es-MX", "ko", "es"),  # the field wins over the header
        ("ES_us", None, "es"),
        ("ko-KR", None, "ko"),
        ("hy-AM", None, "hy"),
        ("zh", None, "zh-Hans"),
        ("zh-CN", None, "zh-Hans"),
        ("zh-Hans-SG", None, "zh-Hans"),
        (None, "ko-KR,ko;q=0.9,en-US;q=0.8", "ko"),
        (None, "fr;q=0.9, hy;q=0.8, es;q=0.7", "hy"),
        (None, "es;q=0.2, ko", "ko"),  # by quality, not by position
        (None, "ko;q=0, es", "es"),  # q=0 means "not this one"
        (None, "fr-CA, *;q=0.1", "en"),
        (None, "en-GB", "en"),
    ],
)
def test_language_resolution(field: str | None, header: str | None, language: str) -> None:
    assert resolve_language(field, header) == (language, None)


@pytest.mark.parametrize(
    ("field", "header", "named"),
    [
        ("fr", None, "'fr'"),
        ("zh-TW", None, "'zh-TW'"),  # Traditional script is not Simplified
        ("zh-Hant", "zh-CN", "'zh-Hant'"),
        ("12345", None, "'12345'"),
        ("not a tag!", None, "'not a tag!'"),
        (None, "fr-FR,fr;q=0.9", "'fr-FR, fr' (Accept-Language)"),
        (None, "de;q=0.5, it", "'it, de' (Accept-Language)"),
    ],
)
def test_an_unsupported_language_is_english_with_a_warning_naming_it(
    field: str | None, header: str | None, named: str
) -> None:
    language, warning = resolve_language(field, header)
    assert language == "en"
    assert warning is not None and warning.startswith("unsupported language") and named in warning
    assert "en, es, ko, hy, zh-Hans" in warning


def test_accept_language_parsing_is_total() -> None:
    assert parse_accept_language("da, en-gb;q=0.8, en;q=0.7") == ["da", "en-gb", "en"]
    assert parse_accept_language(";;,,q=;  ;q=x") == []
    assert parse_accept_language("de;q=nan, it;q=1e999, es;q=0.1") == ["es"]
    assert resolve_language(None, ",,,") == ("en", None)  # nothing named: no warning
    assert len(parse_accept_language(",".join(["xx"] * 1000))) == 16


def _code_messages() -> set[str]:
    """Every message id the code marks for translation, as `pybabel extract` finds them."""
    found = set()
    for path in (ROOT / "serving" / "i18n.py", ROOT / "models" / "explain.py"):
        for _, message, _, _ in extract_from_file("python", str(path)):
            found.add(message[0] if isinstance(message, tuple) else message)
    return found


def _catalog(path: Path, locale: str | None = None):
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def test_the_template_holds_exactly_the_code_s_messages() -> None:
    """A sentence added to the code without `pybabel extract` (README, Serving) fails here."""
    template = {m.id[0] if isinstance(m.id, tuple) else m.id for m in _catalog(LOCALE_DIR / "eta311.pot") if m.id}
    assert template == _code_messages()


@pytest.mark.parametrize("language", [code for code in LANGUAGES if code != "en"])
def test_every_catalog_translates_every_message_with_the_same_placeholders(language: str) -> None:
    path = LOCALE_DIR / language.replace("-", "_") / "LC_MESSAGES" / "eta311.po"
    catalog = _catalog(path, LANGUAGES[language])
    messages = [m for m in catalog if m.id]
    assert {m.id[0] if isinstance(m.id, tuple) else m.id for m in messages} == _code_messages()
    for message in messages:
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings) and not message.fuzzy, message.id
        wanted = set(_PLACEHOLDER.findall(ids[-1]))
        for text in strings:
            assert set(_PLACEHOLDER.findall(text)) == wanted, (message.id, text)


def test_reasons_read_plainly_in_english_and_are_translated() -> None:
    assert describe("workload", 12, "Sanitation", in_hours=False) == (
        "Sanitation has more work than usual right now: +1.2 days"
    )
    assert describe("calendar", -1, "Sanitation", in_hours=True) == (
        "Requests made on this day and at this time are quicker: \u22121 hour"
    )
    assert describe("area", 3, "Sanitation", in_hours=True).endswith(": +3 hours")
    assert reason_text("workload", 12, "Sanitation", False, "es") == (
        "Sanitation tiene más trabajo de lo habitual en este momento: +1,2 días"
    )
    assert reason_text("workload", -5, "Sanitation", False, "zh-Hans") == "Sanitation目前的工作量比平时少：\u22120.5天"
    for family in FAMILIES:
        for direction in (1, -1):
            assert (family, direction) in REASONS
            for language in LANGUAGES:
                text = reason_text(family, 7 * direction, "Streets", False, language)
                assert ("0.7" in text or "0,7" in text) and text != "", (family, language)
