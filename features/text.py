"""A hashed bag of words of the free-text description, as a few dense numeric columns for LightGBM.

Residents describe the problem in their own words ("water gushing from hydrant"); a few dozen hashed
token counts let the trees pick up such words without a learned vocabulary, so there is nothing to fit,
store or drift. Hashing is MurmurHash3 with seed 0 (scikit-learn's ``HashingVectorizer`` with
``alternate_sign=False, norm=None``), not Python's salted ``hash()``: the same text gives the same columns in
every process.

The pipeline hashes the description together with the request type's words: the type also enters as a
categorical code, but a code knows nothing of a type it has never seen, while its words do ("HEAT/HOT
WATER" shares "heat" with last year's "HEATING" and its "HEAT" descriptors). The department model's type
dropout stays honest: a row shown without its type loses the type's words too and must route from the
description alone.

Two forms of one definition, sharing the tokenizer and the bucket rule: ``hash_texts`` (bulk; each
distinct text tokenised once, each distinct token hashed once, counts by ``np.bincount``) and
``hash_text_row`` (one request; plain Python, ~3 us). Tests prove both equal ``HashingVectorizer``.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
from sklearn.utils import murmurhash3_32

DEFAULT_BUCKETS = 32
# scikit-learn's default token pattern: words of two or more word characters, after lower-casing.
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
_TOKEN_RE = re.compile(TOKEN_PATTERN)
_INT32_MIN = -2_147_483_648


def text_feature_names(n_buckets: int) -> list[str]:
    """Column names: the token count, then one column per hash bucket."""
    width = len(str(n_buckets - 1))
    return ["text_tokens"] + [f"text_h{i:0{width}d}" for i in range(n_buckets)]


def token_bucket(token: str, n_buckets: int) -> int:
    """The bucket of one token: sklearn FeatureHasher's rule on MurmurHash3 (seed 0), INT32_MIN included."""
    h = murmurhash3_32(token, 0)
    return (2_147_483_647 - (n_buckets - 1)) % n_buckets if h == _INT32_MIN else abs(h) % n_buckets


def tokens(text: str) -> list[str]:
    """Lower-cased tokens of two or more word characters (sklearn's default analyzer)."""
    return _TOKEN_RE.findall(text.lower())


class _BucketCache(dict):
    """token -> bucket, hashing each distinct token once (the token vocabulary is small)."""

    def __init__(self, n_buckets: int) -> None:
        super().__init__()
        self.n_buckets = n_buckets

    def __missing__(self, token: str) -> int:
        bucket = self[token] = token_bucket(token, self.n_buckets)
        return bucket


def hash_texts(texts: pd.Series | np.ndarray | list, n_buckets: int = DEFAULT_BUCKETS) -> np.ndarray:
    """(n, 1 + n_buckets) float64: token count and bucket counts per text; missing text is all zeros."""
    codes, table = hash_texts_table(texts, n_buckets)
    return table[codes]


def hash_texts_table(
    texts: pd.Series | np.ndarray | list, n_buckets: int = DEFAULT_BUCKETS
) -> tuple[np.ndarray, np.ndarray]:
    """(codes, table): row i's features are ``table[codes[i]]``; the last table row (all zeros) is for
    missing text. Each distinct text is tokenised once and each distinct token hashed once (311 text
    repeats: templates, short phrases), so the per-row cost is a table lookup.
    """
    series = texts if isinstance(texts, pd.Series) else pd.Series(texts, dtype=object)
    codes, uniques = pd.factorize(series.reset_index(drop=True))
    cache = _BucketCache(n_buckets)
    found = list(map(tokens, np.asarray(uniques, dtype=object).astype(str).tolist()))
    lengths = np.fromiter(map(len, found), dtype=np.int64, count=len(found))
    buckets = np.fromiter(map(cache.__getitem__, itertools.chain.from_iterable(found)), dtype=np.int64)
    table = np.zeros((len(uniques) + 1, 1 + n_buckets), dtype=np.float64)
    if len(buckets):
        doc = np.repeat(np.arange(len(uniques)), lengths)
        counts = np.bincount(doc * n_buckets + buckets, minlength=len(uniques) * n_buckets)
        table[:-1, 1:] = counts.reshape(len(uniques), n_buckets)
    table[:-1, 0] = lengths
    return np.asarray(codes, dtype=np.int64), table


def hash_text_row(text: str | None, n_buckets: int = DEFAULT_BUCKETS) -> list[float]:
    """`hash_texts` for one text, in plain Python (same tokenizer, same bucket rule)."""
    out = [0.0] * (1 + n_buckets)
    if not text:
        return out
    found = tokens(text)
    for token in found:
        out[1 + token_bucket(token, n_buckets)] += 1.0
    out[0] = float(len(found))
    return out
