"""Why an estimate is what it is: the P50 booster's feature contributions (TreeSHAP) grouped into families a
resident understands, each as a signed number of hours.

LightGBM's `pred_contrib=True` gives, per row, one additive contribution per feature plus the expected
value (the average raw score over the training data), summing to the booster's raw score. The P50 booster
predicts log1p(hours) minus a base (`calibration.log_base`, added back with the P50 conformal offset in
`models.bundle.predict_time_to_close`), so contributions are additive in log space, not in hours.

Conversion to hours (`explain_p50`): with L0 the log value of the typical request (expected value + base +
offset) and L the row's, every log contribution is multiplied by one per-row factor, the secant slope
(expm1(L) - expm1(L0)) / (L - L0). The family hours then add up exactly to P50 - typical, each keeps its
sign, and their order is the order in log space. The other common choice — expm1(L) - expm1(L - phi), the
estimate with one family set to typical — does not add up (on a log scale effects compound), so a list of
"+1.2 days" reasons would not reconcile with the estimate; the secant spreads the compounding over the
families in proportion to their log contributions. Where the quantile models cross and the sorted P50 is
another booster's value, the explanation is still of the P50 booster (the usual case is no crossing: the
booster's value is the answer's P50).

Compiled (lleaves) boosters have no contribution mode, so this always calls LightGBM's `Booster.predict`.
The English reason sentences are here (marked for `pybabel extract`) so that the managers' report can use
them without the service's translations; `serving.i18n` translates them for residents.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from models.bundle import ModelBundle, quantile_key

MAX_REASONS = 3
P50 = 0.5

# Families, in the order ties are broken. Each feature of the pipeline belongs to exactly one.
FAMILIES: tuple[str, ...] = ("request_type", "workload", "calendar", "area", "channel")
_CALENDAR = frozenset(
    {"local_hour", "weekday", "month", "day_of_year", "is_weekend", "is_holiday", "days_to_next_working_day"}
)
_AREA = frozenset({"latitude", "longitude", "city", "council_district", "neighborhood", "zip_code", "grid_cell"})


def N_(message: str) -> str:
    """Marks a message for `pybabel extract` without translating it (translation happens per request)."""
    return message


# (family, direction) -> the English sentence; `%(department)s` is the department the request is routed to.
REASONS: dict[tuple[str, int], str] = {
    ("request_type", 1): N_("Requests of this kind take longer than most"),
    ("request_type", -1): N_("Requests of this kind are quicker than most"),
    ("workload", 1): N_("%(department)s has more work than usual right now"),
    ("workload", -1): N_("%(department)s has less work than usual right now"),
    ("calendar", 1): N_("Requests made on this day and at this time take longer"),
    ("calendar", -1): N_("Requests made on this day and at this time are quicker"),
    ("area", 1): N_("Requests in this area take longer"),
    ("area", -1): N_("Requests in this area are quicker"),
    ("channel", 1): N_("Requests made this way take longer"),
    ("channel", -1): N_("Requests made this way are quicker"),
}
# "reason: +1.2 days"; the change carries its sign (hours: `describe`, with a plural).
CHANGE_DAYS = N_("%(reason)s: %(change)s days")


def family_of(feature: str) -> str:
    """The family of one pipeline feature name (see FAMILIES)."""
    if feature in _CALENDAR:
        return "calendar"
    if feature in _AREA or feature.startswith("wl_area_"):
        return "area"
    if feature == "source":
        return "channel"
    if feature.startswith("wl_"):  # the type's, its department's and the city's queues
        return "workload"
    return "request_type"  # request_type, type_department, the description's words (text_*)


def family_columns(feature_names: Sequence[str]) -> list[np.ndarray]:
    """The feature columns of each family, in FAMILIES order."""
    families = [family_of(name) for name in feature_names]
    return [np.array([i for i, f in enumerate(families) if f == family], dtype=np.intp) for family in FAMILIES]


@dataclass(frozen=True)
class Contributions:
    """Per explained row: the typical request's P50 hours and each family's share of the difference."""

    typical_hours: np.ndarray  # (n,)
    family_hours: np.ndarray  # (n, len(FAMILIES)); rows sum to p50_hours - typical_hours
    p50_hours: np.ndarray  # (n,) the P50 booster's own estimate


def explain_p50(bundle: ModelBundle, matrix: np.ndarray) -> Contributions:
    """TreeSHAP of the P50 booster on `matrix`, grouped into FAMILIES and converted to hours (module doc)."""
    key = quantile_key(P50)
    columns = bundle.cache.get("explain_columns")
    if columns is None:
        columns = bundle.cache["explain_columns"] = family_columns(bundle.pipeline["feature_names_"])
    contributions = np.asarray(bundle.boosters[key].predict(matrix, pred_contrib=True), dtype=np.float64)
    quantiles = list(bundle.spec["quantiles"])
    offsets = bundle.calibration.get("log_offsets", [0.0] * len(quantiles))
    shift = bundle.calibration.get("log_base", {}).get(key, 0.0) + offsets[quantiles.index(P50)]
    # Sums in a fixed order (cumsum is sequential; a matrix product or `sum` may block or vectorise
    # differently with the number of rows): a row's explanation is the same to the last bit alone or in a batch.
    log_family = np.column_stack([_ordered_sum(contributions[:, cols]) for cols in columns])
    log_typical = contributions[:, -1] + shift
    log_row = log_typical + _ordered_sum(log_family)
    typical, row = np.expm1(np.clip(log_typical, 0.0, None)), np.expm1(np.clip(log_row, 0.0, None))
    step = log_row - log_typical
    tiny = np.abs(step) < 1e-12
    # Secant slope of expm1 between the typical and the row's log value (its derivative where they meet).
    slope = np.where(
        tiny, np.where(log_typical > 0, np.exp(log_typical), 0.0), (row - typical) / np.where(tiny, 1, step)
    )
    return Contributions(typical, log_family * slope[:, None], row)


def _ordered_sum(values: np.ndarray) -> np.ndarray:
    """Row sums of a 2-d array, left to right whatever the number of rows (0 for no columns)."""
    return np.cumsum(values, axis=1)[:, -1] if values.shape[1] else np.zeros(len(values))


def told(hours: float, in_hours: bool) -> int:
    """A size as it is told: signed whole hours, or signed tenths of a day (0 reads as no change)."""
    return round(hours) if in_hours else round(hours / 2.4)


def top_reasons(family_hours: np.ndarray, in_hours: bool, limit: int = MAX_REASONS) -> list[tuple[str, float, int]]:
    """The `limit` largest families of one row by size, as (family, hours, told size), leaving out those
    that would read as zero once rounded (0 hours, or 0.0 days)."""
    order = sorted(range(len(FAMILIES)), key=lambda j: -abs(family_hours[j]))
    out = [(FAMILIES[j], float(family_hours[j]), told(float(family_hours[j]), in_hours)) for j in order[:limit]]
    return [reason for reason in out if reason[2] != 0]


def describe(
    family: str,
    size: int,
    department: str,
    in_hours: bool,
    catalog: gettext.NullTranslations | None = None,
    number: Callable[[float, int], str] = lambda value, digits: f"{value:.{digits}f}",
) -> str:
    """One reason as a sentence, "Sanitation has more work than usual right now: +1.2 days".

    `size` is `told(hours, in_hours)` (whole hours or tenths of a day, signed); `catalog` translates (None:
    English) and `number(value, digits)` writes an unsigned quantity for the locale (the caller's CLDR
    formatter).
    """
    catalog = catalog or gettext.NullTranslations()
    direction = 1 if size > 0 else -1
    reason = catalog.gettext(REASONS[(family, direction)]) % {"department": department}
    sign = "+" if direction > 0 else "\u2212"
    if in_hours:
        template = catalog.ngettext("%(reason)s: %(change)s hour", "%(reason)s: %(change)s hours", abs(size))
        return template % {"reason": reason, "change": sign + number(abs(size), 0)}
    return catalog.gettext(CHANGE_DAYS) % {"reason": reason, "change": sign + number(abs(size) / 10, 1)}
