"""The reference: the strongest simple alternative a data scientist would write in twenty lines, fitted on the
same training rows and reported beside the product in every evaluation.

- **Time to close**: LightGBM's built-in `quantile` objective for P10/P50/P90 of log1p(hours), 400 trees,
  learning rate 0.05, 31 leaves, at least 40 rows per leaf, on the intake fields only (request type, source,
  council district, neighbourhood and zip code as categories; local hour, weekday, month; latitude and
  longitude), fitted on the resolved requests. No workload, no calibration, no constraints.
- **Department**: TF-IDF (word 1-2-grams, min_df 2, sublinear tf) of the description plus the type's words,
  logistic regression (C=5); without the type, the description plus source, district and neighbourhood tokens.

Both are saved next to the time-to-close bundle (`reference/`: native LightGBM text files, and the TF-IDF and
logistic-regression arrays as `.npz` without pickles), so `eta311 evaluate` scores a later file against the
reference that was trained with the model, and `eta311 promote` can refuse a challenger that loses to it.
The service never loads them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.pipeline import FeatureMatrix
from models.bundle import quantile_key

log = logging.getLogger(__name__)

REFERENCE_DIR = "reference"
TIME_FEATURES = (
    "request_type",
    "source",
    "council_district",
    "neighborhood",
    "zip_code",
    "local_hour",
    "weekday",
    "month",
    "latitude",
    "longitude",
)
TIME_PARAMS: dict[str, Any] = {
    "objective": "quantile",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 40,
    "verbose": -1,
    "seed": 7,
    "num_threads": 2,
}
TIME_ROUNDS = 400
DEPARTMENT_C = 5.0
# The logistic regressions learn from a uniform sample of at most this many rows: past it the solver's time
# grows linearly while accuracy stays put; the product's department booster has its own cap (300 k).
DEPARTMENT_MAX_ROWS = 200_000


def time_columns(feature_names: list[str]) -> list[int]:
    """Positions of the reference's intake fields in the product's feature matrix (same vocabularies)."""
    return [feature_names.index(name) for name in TIME_FEATURES]


@dataclass
class ReferenceTimeToClose:
    """Built-in quantile LightGBM on the intake fields (see the module docstring)."""

    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    boosters_: dict[str, lgb.Booster] = field(default_factory=dict)
    columns_: list[int] = field(default_factory=list)

    def fit(self, features: FeatureMatrix, log_hours: np.ndarray) -> ReferenceTimeToClose:
        self.columns_ = time_columns(features.feature_names)
        names = [features.feature_names[i] for i in self.columns_]
        categorical = [i for i, c in enumerate(self.columns_) if c in features.categorical_features]
        dataset = lgb.Dataset(
            features.values[:, self.columns_],
            label=log_hours,
            feature_name=names,
            categorical_feature=categorical,
            params={"verbose": -1},
            free_raw_data=False,
        )
        for q in self.quantiles:
            params = TIME_PARAMS | {"alpha": float(q)}
            self.boosters_[quantile_key(q)] = lgb.train(params, dataset, num_boost_round=TIME_ROUNDS)
        log.info("reference time to close fitted on %d resolved requests", len(log_hours))
        return self

    def predict_hours(self, matrix: np.ndarray) -> dict[str, np.ndarray]:
        """P10/P50/P90 hours for rows of the product's feature matrix (no sorting, no calibration)."""
        part = matrix[:, self.columns_]
        return {key: np.expm1(np.clip(b.predict(part), 0.0, None)) for key, b in self.boosters_.items()}

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for key, booster in self.boosters_.items():
            booster.save_model(str(folder / f"time_{key}.txt"))
        meta = {"quantiles": list(self.quantiles), "columns": self.columns_}
        (folder / "time.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, folder: Path) -> ReferenceTimeToClose:
        meta = json.loads((folder / "time.json").read_text())
        quantiles = tuple(float(q) for q in meta["quantiles"])
        boosters = {
            quantile_key(q): lgb.Booster(model_file=str(folder / f"time_{quantile_key(q)}.txt")) for q in quantiles
        }
        return cls(quantiles, boosters, list(meta["columns"]))


def _words(values: pd.Series) -> pd.Series:
    return values.astype("str").fillna("").str.replace(r"[^0-9A-Za-z]+", " ", regex=True).str.lower()


def department_texts(records: pd.DataFrame, with_type: bool) -> pd.Series:
    """The reference's text: the description plus the type's words, or, without the type, the description
    plus source, district and neighbourhood as tokens (one token each, so "district 1" is not "1")."""
    description = _words(records["description"])
    if with_type:
        return description + " " + _words(records["request_type"])
    tokens = [
        (prefix + records[column].astype("str").fillna("").str.replace(r"\W+", "_", regex=True)).where(
            records[column].notna(), ""
        )
        for prefix, column in (("src_", "source"), ("cd_", "council_district"), ("nb_", "neighborhood"))
    ]
    return description + " " + tokens[0] + " " + tokens[1] + " " + tokens[2]


@dataclass
class _TextClassifier:
    """TF-IDF + logistic regression stored as plain arrays (vocabulary, idf, coefficients)."""

    vocabulary: np.ndarray
    idf: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray

    @classmethod
    def fit(cls, texts: pd.Series, labels: np.ndarray) -> _TextClassifier:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
        try:
            matrix = vectorizer.fit_transform(texts.to_numpy())
        except ValueError:  # no term occurs twice: an empty vocabulary
            vectorizer = TfidfVectorizer(ngram_range=(1, 1), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
            matrix = vectorizer.fit_transform((texts + " _").to_numpy())
        classes = np.unique(labels)
        if len(classes) < 2:
            n_terms = matrix.shape[1]
            return cls(_vocab(vectorizer), vectorizer.idf_, np.zeros((1, n_terms)), np.zeros(1), classes)
        model = LogisticRegression(C=DEPARTMENT_C, max_iter=300).fit(matrix, labels)
        return cls(_vocab(vectorizer), vectorizer.idf_, model.coef_, model.intercept_, model.classes_)

    def predict(self, texts: pd.Series) -> np.ndarray:
        from sklearn.feature_extraction.text import TfidfVectorizer

        if len(self.classes) < 2:
            return np.full(len(texts), self.classes[0] if len(self.classes) else -1)
        vectorizer = TfidfVectorizer(
            ngram_range=(1, 2),
            sublinear_tf=True,
            token_pattern=r"(?u)\b\w+\b",
            vocabulary={str(term): i for i, term in enumerate(self.vocabulary)},
        )
        vectorizer.idf_ = self.idf
        scores = vectorizer.transform(texts.to_numpy()) @ self.coef.T + self.intercept
        if scores.shape[1] == 1:  # binary: one column of log-odds for classes[1]
            return np.where(np.asarray(scores).ravel() > 0, self.classes[1], self.classes[0])
        return self.classes[np.asarray(scores).argmax(axis=1)]

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            vocabulary=self.vocabulary.astype("U"),
            idf=self.idf,
            coef=self.coef,
            intercept=self.intercept,
            classes=self.classes,
        )

    @classmethod
    def load(cls, path: Path) -> _TextClassifier:
        with np.load(path, allow_pickle=False) as data:
            return cls(data["vocabulary"], data["idf"], data["coef"], data["intercept"], data["classes"])


def _vocab(vectorizer: Any) -> np.ndarray:
    terms = np.empty(len(vectorizer.vocabulary_), dtype=object)
    for term, i in vectorizer.vocabulary_.items():
        terms[i] = term
    return terms.astype("U")


@dataclass
class ReferenceDepartment:
    """TF-IDF + logistic regression, with and without the type (see the module docstring). Labels are the
    product's class codes, so both are scored in the same class space."""

    with_type_: _TextClassifier | None = None
    without_type_: _TextClassifier | None = None

    def fit(self, records: pd.DataFrame, codes: np.ndarray, seed: int = 7) -> ReferenceDepartment:
        rows = np.arange(len(records))
        if len(rows) > DEPARTMENT_MAX_ROWS:
            rows = np.sort(np.random.default_rng(seed).choice(len(rows), DEPARTMENT_MAX_ROWS, replace=False))
        sample = records.iloc[rows]
        self.with_type_ = _TextClassifier.fit(department_texts(sample, True), codes[rows])
        self.without_type_ = _TextClassifier.fit(department_texts(sample, False), codes[rows])
        log.info("reference department fitted on %d requests", len(rows))
        return self

    def predict(self, records: pd.DataFrame, with_type: bool = True) -> np.ndarray:
        model = self.with_type_ if with_type else self.without_type_
        assert model is not None, "fit or load first"
        return model.predict(department_texts(records, with_type))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        assert self.with_type_ is not None and self.without_type_ is not None
        self.with_type_.save(folder / "department_with_type.npz")
        self.without_type_.save(folder / "department_without_type.npz")

    @classmethod
    def load(cls, folder: Path) -> ReferenceDepartment:
        return cls(
            _TextClassifier.load(folder / "department_with_type.npz"),
            _TextClassifier.load(folder / "department_without_type.npz"),
        )


@dataclass
class References:
    """Both reference models. Each is saved beside the bundle of the model it is the reference for
    (`reference/` inside the bundle folder), so each registered version carries its own."""

    time_to_close: ReferenceTimeToClose | None
    department: ReferenceDepartment | None

    def save(self, kind: str, bundle_folder: Path) -> Path:
        folder = Path(bundle_folder) / REFERENCE_DIR
        model = self.time_to_close if kind == "time_to_close" else self.department
        if model is not None:
            model.save(folder)
        return folder

    @classmethod
    def load(cls, time_folder: Path | None = None, department_folder: Path | None = None) -> References:
        """The references saved beside the given bundles (searched below each folder, as MLflow nests them);
        None for a bundle trained before references existed."""
        return cls(
            _load(time_folder, "time.json", ReferenceTimeToClose.load),
            _load(department_folder, "department_with_type.npz", ReferenceDepartment.load),
        )


def _load(folder: Path | None, marker: str, loader: Any) -> Any:
    if folder is None:
        return None
    matches = sorted(Path(folder).rglob(f"{REFERENCE_DIR}/{marker}"))
    return loader(matches[0].parent) if matches else None
