"""Text routing: a linear model of a request's words -> one score per department, as feature columns.

The department booster splits on a few dozen hashed word counts (``features.text``); that cannot hold the
thousands of words and word pairs that say where a request goes ("blocked hydrant", "loud music", a type
never seen before whose name shares words with known ones). A TF-IDF bag of word 1-2-grams with multinomial
logistic regression does, and on the real splits it routed better than the booster (issue 10). This module
is that model, fitted with the feature pipeline on the training rows that have a department, and applied by
both pipeline paths so the department bundle can blend its scores with the booster's
(``models.bundle.predict_department``).

Two models share one class list:
- *typed*, for a request that names its type: the description and the type's words;
- *plain*, for one that does not: the description plus source, district and neighbourhood as tokens.
Both also see the city as a token. A row's columns are ``route_typed`` (1 when the typed model scored it)
and ``route_00..`` (that model's class logits). In-sample logits of the training rows are optimistic, so no
booster may split on them (``route_`` is in the specs' ``exclude_features``); the blend is fitted on the
calibration slice, which the text model never saw.

Grams are hashed with MurmurHash3 by ``features.text``'s rule; only buckets seen
in at least ``MIN_DF`` training rows are kept, with their idf and coefficients, as base64 arrays in the
pipeline's JSON state (no pickles). Sublinear tf (1 + log count), smooth idf, l2 norm, as scikit-learn's
``TfidfVectorizer(sublinear_tf=True)``. One function (`TextRouter.scores`) scores one distinct text; the bulk
path calls it once per distinct (fields) combination and the row path once per request, so both give the
same numbers by construction.
"""

from __future__ import annotations

import base64
import functools
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.text import token_bucket
from features.workload import clean_text

log = logging.getLogger(__name__)

ROUTE_PREFIX = "route_"
TYPED_COLUMN = "route_typed"
DEFAULT_BUCKETS = 2**18
MIN_DF = 2
DEFAULT_C = 5.0
DEFAULT_MIN_CLASS_COUNT = 20
OTHER_CLASS = "other"
MAX_FIT_ROWS = 300_000
# Fields of a row, in the order of `_combination_codes` and `TextRouter.row`.
FIELDS = ("city", "description", "request_type", "source", "council_district", "neighborhood")
_WORD = re.compile(r"[0-9a-z]+")
_SPACE = re.compile(r"\W+")


def route_feature_names(n_classes: int) -> list[str]:
    """The typed flag, then one logit column per class."""
    return [TYPED_COLUMN] + [f"{ROUTE_PREFIX}{i:02d}" for i in range(n_classes)]


def route_classes(departments: pd.Series, min_count: int = DEFAULT_MIN_CLASS_COUNT) -> list[str]:
    """Departments seen at least `min_count` times, sorted, plus "other" when rarer ones exist (the
    department model's rule, training.train.fit_department_model)."""
    counts = departments.dropna().astype(str).value_counts()
    classes = sorted(counts[counts >= min_count].index.tolist())
    if OTHER_CLASS not in classes and (counts < min_count).any():
        classes.append(OTHER_CLASS)
    if len(classes) < 2:
        classes = sorted(counts.index.tolist())
    return classes


def _word_grams(text: str | None) -> list[str]:
    """Lower-cased alphanumeric words and adjacent word pairs."""
    if text is None:
        return []
    words = _WORD.findall(text.lower())
    return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]


def _token(prefix: str, value: str | None) -> list[str]:
    return [] if value is None else [prefix + _SPACE.sub("_", value.strip().lower())]


def grams(values: Sequence[str | None], typed: bool) -> list[str]:
    """The grams of one request, `values` in FIELDS order (cleaned: None when missing)."""
    city, description, request_type, source, district, neighborhood = values
    out = _token("city=", city) + _word_grams(description)
    if typed:
        return out + _word_grams(request_type)
    return out + _token("src=", source) + _token("cd=", district) + _token("nb=", neighborhood)


@functools.lru_cache(maxsize=2**16)
def gram_bucket(gram: str, n_buckets: int) -> int:
    """The bucket of one gram: the same hashing rule as the word features (`features.text.token_bucket`)."""
    return token_bucket(gram, n_buckets)


def _encode(array: np.ndarray, dtype: str) -> dict[str, Any]:
    data = np.ascontiguousarray(array, dtype=dtype)
    return {"dtype": dtype, "shape": list(data.shape), "data": base64.b64encode(data.tobytes()).decode("ascii")}


def _decode(state: Mapping[str, Any]) -> np.ndarray:
    raw = base64.b64decode(state["data"])
    return np.frombuffer(raw, dtype=state["dtype"]).reshape(state["shape"]).astype(np.float64)


@dataclass
class LinearText:
    """TF-IDF over the kept buckets and a linear layer to class logits (one of the two models)."""

    buckets: np.ndarray  # kept bucket ids, sorted
    idf: np.ndarray  # per kept bucket
    coef: np.ndarray  # kept buckets x classes
    intercept: np.ndarray  # classes
    _index: dict[int, int] = field(default_factory=dict, repr=False)
    _idf: list[float] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._index = {int(b): i for i, b in enumerate(self.buckets.tolist())}
        self._idf = self.idf.tolist()

    def vector(self, found: Sequence[str], n_buckets: int) -> tuple[list[int], list[float]]:
        """(kept-bucket positions in increasing order, l2-normalised sublinear tf-idf values)."""
        counts: dict[int, int] = {}
        for gram in found:
            i = self._index.get(gram_bucket(gram, n_buckets))
            if i is not None:
                counts[i] = counts.get(i, 0) + 1
        order = sorted(counts)
        values = [(1.0 + math.log(counts[i])) * self._idf[i] for i in order]
        total = 0.0
        for v in values:
            total += v * v
        if total > 0.0:
            norm = math.sqrt(total)
            values = [v / norm for v in values]
        return order, values

    def logits(self, found: Sequence[str], n_buckets: int) -> np.ndarray:
        order, values = self.vector(found, n_buckets)
        if not order:
            return self.intercept.copy()
        weighted = self.coef[order] * np.asarray(values)[:, None]
        return self.intercept + weighted.sum(axis=0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "buckets": _encode(self.buckets, "<i4"),
            "idf": _encode(self.idf, "<f8"),
            "coef": _encode(self.coef, "<f4"),
            "intercept": _encode(self.intercept, "<f8"),
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> LinearText:
        return cls(
            _decode(state["buckets"]).astype(np.int64),
            _decode(state["idf"]),
            _decode(state["coef"]),
            _decode(state["intercept"]),
        )


def _fit_linear(
    found: list[list[str]], row_counts: np.ndarray, labels: np.ndarray, n_classes: int, n_buckets: int, c: float
) -> LinearText:
    """Fit one model on distinct (text, label) pairs: `found[i]` is pair i's grams, `row_counts[i]` how many
    training rows it stands for (the sample weight: the same objective as fitting every row)."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    hashed = [np.unique([gram_bucket(g, n_buckets) for g in f]).astype(np.int64) for f in found]
    lengths = np.array([len(h) for h in hashed])
    flat = np.concatenate(hashed) if len(hashed) and lengths.sum() else np.zeros(0, dtype=np.int64)
    df = np.bincount(flat, weights=np.repeat(row_counts, lengths), minlength=n_buckets)
    kept = np.flatnonzero(df >= MIN_DF)
    n_rows = float(row_counts.sum())
    idf = np.log((1.0 + n_rows) / (1.0 + df[kept])) + 1.0
    shell = LinearText(kept, idf, np.zeros((len(kept), n_classes)), np.zeros(n_classes))
    vectors = [shell.vector(f, n_buckets) for f in found]
    indptr = np.cumsum([0] + [len(order) for order, _ in vectors])
    indices = np.fromiter((i for order, _ in vectors for i in order), dtype=np.int64, count=int(indptr[-1]))
    data = np.fromiter((v for _, values in vectors for v in values), dtype=np.float64, count=int(indptr[-1]))
    matrix = sparse.csr_matrix((data, indices, indptr), shape=(len(found), max(len(kept), 1)))
    present = np.unique(labels)
    coef = np.zeros((len(kept), n_classes))
    intercept = np.full(n_classes, -30.0)
    if len(present) == 1:
        intercept[present[0]] = 0.0
    else:
        model = LogisticRegression(C=c, max_iter=500).fit(matrix, labels, sample_weight=row_counts)
        weights, bias = model.coef_, model.intercept_
        if len(present) == 2:  # binary: one row of log-odds for classes_[1]
            weights, bias = np.vstack([-weights / 2, weights / 2]), np.array([-bias[0] / 2, bias[0] / 2])
        coef[:, model.classes_] = weights[:, : len(kept)].T
        intercept[model.classes_] = bias
    # Stored as float32: keep the in-memory model equal to the one a saved state loads.
    return LinearText(kept, idf, coef.astype(np.float32).astype(np.float64), intercept)


@dataclass
class TextRouter:
    """The typed and plain text models over one class list (see the module docstring)."""

    classes: list[str]
    n_buckets: int
    typed: LinearText
    plain: LinearText

    @classmethod
    def fit(
        cls,
        records: pd.DataFrame,
        n_buckets: int = DEFAULT_BUCKETS,
        c: float = DEFAULT_C,
        min_class_count: int = DEFAULT_MIN_CLASS_COUNT,
        seed: int = 7,
    ) -> TextRouter | None:
        """Fit on the rows of `records` with a department; None when fewer than two classes exist."""
        known = records.loc[records["department"].notna()]
        classes = route_classes(known["department"], min_class_count)
        if len(classes) < 2:
            return None
        if len(known) > MAX_FIT_ROWS:
            rows = np.sort(np.random.default_rng(seed).choice(len(known), MAX_FIT_ROWS, replace=False))
            known = known.iloc[rows]
        index = {name: i for i, name in enumerate(classes)}
        fallback = index.get(OTHER_CLASS, 0)
        labels = np.array([index.get(d, fallback) for d in known["department"].astype(str)], dtype=np.int64)
        codes, combos = _combination_codes(known)
        models = {}
        for typed in (True, False):
            pair, pair_keys = pd.factorize(codes * len(classes) + labels)
            weights = np.bincount(pair).astype(np.float64)
            pair_keys = np.asarray(pair_keys, dtype=np.int64)
            # Pairs in an order fixed by their content, so the fit does not depend on the rows' order.
            content = [
                (tuple(v or "" for v in combos[k // len(classes)]), k % len(classes)) for k in pair_keys.tolist()
            ]
            order = sorted(range(len(content)), key=content.__getitem__)
            pair_keys, weights = pair_keys[order], weights[order]
            found = [grams(combos[k // len(classes)], typed) for k in pair_keys.tolist()]
            models[typed] = _fit_linear(found, weights, pair_keys % len(classes), len(classes), n_buckets, c)
        log.info(
            "text router: %d classes, %d rows, %d/%d kept buckets (typed/plain)",
            len(classes),
            len(known),
            len(models[True].buckets),
            len(models[False].buckets),
        )
        return cls(classes, n_buckets, models[True], models[False])

    def scores(self, values: Sequence[str | None]) -> list[float]:
        """The route columns of one request, `values` in FIELDS order (cleaned)."""
        typed = values[2] is not None
        model = self.typed if typed else self.plain
        return [1.0 if typed else 0.0, *model.logits(grams(values, typed), self.n_buckets).tolist()]

    def row(self, row: Mapping[str, Any]) -> list[float]:
        """The route columns of one request dict."""
        return self.scores([clean_text(row.get(name)) for name in FIELDS])

    def transform(self, records: pd.DataFrame) -> np.ndarray:
        """(n, 1 + n_classes) route columns of many requests: each distinct combination scored once."""
        codes, combos = _combination_codes(records)
        table = np.array([self.scores(values) for values in combos], dtype=np.float64)
        return table.reshape(len(combos), 1 + len(self.classes))[codes]

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": list(self.classes),
            "n_buckets": int(self.n_buckets),
            "typed": self.typed.to_dict(),
            "plain": self.plain.to_dict(),
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> TextRouter:
        return cls(
            list(state["classes"]),
            int(state["n_buckets"]),
            LinearText.from_dict(state["typed"]),
            LinearText.from_dict(state["plain"]),
        )


def _combination_codes(records: pd.DataFrame) -> tuple[np.ndarray, list[tuple[str | None, ...]]]:
    """A code per row for its distinct combination of FIELDS, and each combination's cleaned values."""
    n = len(records)
    combined = np.zeros(n, dtype=np.int64)
    columns = []
    for name in FIELDS:
        column = records[name] if name in records.columns else pd.Series([None] * n, index=records.index)
        raw_codes, uniques = pd.factorize(column.astype(object), use_na_sentinel=True)
        # Values that clean alike ("" and missing, say) are one value.
        cleaned_codes, cleaned = pd.factorize(
            pd.Series([clean_text(u) for u in uniques.tolist()] + [None], dtype=object)
        )
        codes = cleaned_codes[raw_codes]  # raw -1 picks the trailing None: -1
        cleaned = [str(v) for v in cleaned.tolist()]
        columns.append((codes, cleaned))
        combined, _ = pd.factorize(combined * (len(cleaned) + 1) + np.where(codes < 0, len(cleaned), codes))
        combined = combined.astype(np.int64)
    _, first = np.unique(combined, return_index=True)  # codes are dense in order of appearance
    combos = [tuple(cleaned[codes[i]] if codes[i] >= 0 else None for codes, cleaned in columns) for i in first.tolist()]
    return combined, combos
