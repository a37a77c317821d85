"""The text router (features.routing): scikit-learn's TF-IDF in hashed form, one answer for a row and a
batch, a JSON round trip that changes nothing, and a fit that ignores row order."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from features.routing import FIELDS, TYPED_COLUMN, TextRouter, grams, route_feature_names
from features.workload import clean_text

WORDS = {
    "Sanitation": ["couch on the sidewalk", "bulky items mattress", "trash not picked up", "old couch"],
    "Streets": ["big pothole in the road", "pothole near school", "cracked street", "road damage pothole"],
    "Animal Services": ["dead cat on the road", "dead dog", "stray dog barking", "dead animal"],
}


def records(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    departments = np.array(list(WORDS), dtype=object)[rng.integers(0, len(WORDS), n)]
    return pd.DataFrame(
        {
            "city": "la",
            "description": [WORDS[d][rng.integers(0, 4)] if rng.random() > 0.1 else None for d in departments],
            "request_type": [d.split()[0] + " request" if rng.random() > 0.3 else None for d in departments],
            "source": rng.choice(np.array(["phone", "web", None], dtype=object), n),
            "council_district": rng.choice(np.array(["1", "2", ""], dtype=object), n),
            "neighborhood": rng.choice(np.array(["Downtown", "Harbor", None], dtype=object), n),
            "department": departments,
        }
    )


@pytest.fixture(scope="module")
def fitted() -> tuple[TextRouter, pd.DataFrame]:
    frame = records()
    router = TextRouter.fit(frame)
    assert router is not None
    return router, frame


def test_the_vector_is_sklearns_sublinear_tfidf_of_the_same_grams(fitted: tuple[TextRouter, pd.DataFrame]) -> None:
    router, frame = fitted
    # Both models learn from every row with a department; the typed one reads each with its type's words.
    documents = [grams([clean_text(v) for v in row], typed=True) for row in frame[list(FIELDS)].itertuples(index=False)]
    reference = TfidfVectorizer(analyzer=lambda d: d, min_df=2, sublinear_tf=True).fit(documents)
    expected = reference.transform(documents)
    for i, document in enumerate(documents[:50]):
        _, values = router.typed.vector(document, router.n_buckets)
        want = np.sort(expected[i].data)
        np.testing.assert_allclose(np.sort(values), want, rtol=1e-12)


def test_it_routes_by_the_words(fitted: tuple[TextRouter, pd.DataFrame]) -> None:
    router, _ = fitted
    for department, phrase in (("Streets", "pothole in the road"), ("Animal Services", "a dead dog")):
        scores = router.row({"city": "la", "description": phrase})
        assert scores[0] == 0.0  # no type: the plain model
        assert router.classes[int(np.argmax(scores[1:]))] == department


def test_batch_and_row_give_the_same_columns(fitted: tuple[TextRouter, pd.DataFrame]) -> None:
    router, frame = fitted
    batch = router.transform(frame)
    assert batch.shape == (len(frame), len(route_feature_names(len(router.classes))))
    rows = np.array([router.row(row) for row in frame.to_dict("records")])
    np.testing.assert_array_equal(batch, rows)
    assert set(np.unique(batch[:, 0])) == {0.0, 1.0}  # the typed flag, as TYPED_COLUMN says
    assert route_feature_names(3)[0] == TYPED_COLUMN


def test_blank_and_missing_fields_are_one_value(fitted: tuple[TextRouter, pd.DataFrame]) -> None:
    router, _ = fitted
    blank = router.row({"city": "la", "description": "  ", "request_type": "", "council_district": ""})
    missing = router.row({"city": "la"})
    assert blank == missing


def test_json_round_trip_changes_nothing(fitted: tuple[TextRouter, pd.DataFrame]) -> None:
    router, frame = fitted
    loaded = TextRouter.from_dict(json.loads(json.dumps(router.to_dict())))
    np.testing.assert_array_equal(loaded.transform(frame), router.transform(frame))


def test_the_fit_does_not_depend_on_row_order(fitted: tuple[TextRouter, pd.DataFrame]) -> None:
    router, frame = fitted
    shuffled = TextRouter.fit(frame.sample(frac=1.0, random_state=3).reset_index(drop=True))
    assert shuffled is not None
    np.testing.assert_allclose(shuffled.transform(frame), router.transform(frame), rtol=1e-9, atol=1e-9)


def test_no_router_without_two_departments() -> None:
    frame = records(100)
    frame["department"] = "Sanitation"
    assert TextRouter.fit(frame) is None
