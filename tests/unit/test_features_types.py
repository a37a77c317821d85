"""Unseen request types: the nearest known type's department, and the bulk and per-row paths agree."""

from __future__ import annotations

import math

import pandas as pd

from features.pipeline import FeaturePipeline
from features.types import NearestType, stems


def test_stems_join_word_forms() -> None:
    assert stems("HEAT/HOT WATER") == {"heat", "hot", "wate"}
    assert stems("Heating") == {"heat"}
    assert stems("   ") == frozenset()


def test_nearest_type_takes_the_most_similar_known_name_within_the_city() -> None:
    known = {"nyc": {"HEATING": "HPD", "Dirty Conditions": "DSNY", "Noise - Street": "NYPD"}, "la": {"Heat": "X"}}
    nearest = NearestType(known)
    assert nearest.department("nyc", "HEAT/HOT WATER") == "HPD"
    assert nearest.department("nyc", "Dirty Condition") == "DSNY"
    assert nearest.department("nyc", "Something else entirely") is None
    assert nearest.department("boston", "HEATING") is None  # another city's names are not borrowed


def _records() -> pd.DataFrame:
    created = pd.date_range("2024-01-01 09:00", periods=40, freq="h", tz="UTC")
    return pd.DataFrame(
        {
            "request_id": [str(i) for i in range(40)],
            "city": "nyc",
            "created_at": created,
            "request_type": ["HEATING", "Dirty Conditions"] * 20,
            "department": ["HPD", "DSNY"] * 20,
            "description": ["HEAT", "trash"] * 20,
            "status": "closed",
            "closed_at": created + pd.Timedelta(hours=5),
        }
    )


def test_bulk_and_row_paths_give_an_unseen_type_its_nearest_department() -> None:
    pipeline = FeaturePipeline(n_text_buckets=8).fit(_records())
    column = pipeline.feature_names_.index("type_department")
    fresh = _records().head(3).assign(request_type=["HEAT/HOT WATER", "Dirty Condition", "Parking"])
    bulk = pipeline.transform(fresh).values[:, column]
    rows = pipeline.transform_rows(fresh.to_dict("records"), None)[:, column]
    heating = pipeline.transform(_records().head(1)).values[0, column]
    assert bulk[0] == heating and rows[0] == heating
    assert not math.isnan(bulk[1]) and bulk[1] != heating
    assert math.isnan(bulk[2]) and math.isnan(rows[2])
    off = FeaturePipeline(n_text_buckets=8, nearest_type_similarity=0.0).fit(_records())
    assert math.isnan(off.transform(fresh).values[0, column])


def test_a_version_1_state_loads_without_the_new_features() -> None:
    state = FeaturePipeline(n_text_buckets=8).fit(_records()).to_dict()
    state["version"] = 1
    for name in ("type_words", "nearest_type_similarity"):
        del state["params"][name]
    old = FeaturePipeline.from_dict(state)
    assert old.type_words is False and old.nearest_type_similarity == 0.0
