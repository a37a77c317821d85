"""The MLflow pyfunc face of an eta311 bundle (logged as "models from code": no pickle is stored).

`mlflow.pyfunc.load_model("models:/eta311-time-to-close@champion").predict(frame)` takes intake requests
(the columns of features.schema.INTAKE_COLUMNS) and answers one row per request. Workload features come
from the workload snapshot saved in the bundle (as of the end of the training data); the service uses
today's snapshot instead. The bundle folder arrives as the `bundle` artifact.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd


class BundleModel(mlflow.pyfunc.PythonModel):
    """Loads a ModelBundle from the `bundle` artifact and predicts with the fast per-row feature path."""

    def load_context(self, context: Any) -> None:
        from features.pipeline import FeaturePipeline
        from models.bundle import ModelBundle, load_snapshot_frame

        self.bundle = ModelBundle.load(context.artifacts["bundle"])
        self.pipeline = FeaturePipeline.from_dict(self.bundle.pipeline)
        frame = load_snapshot_frame(context.artifacts["bundle"])
        self.snapshot = self.pipeline.load_snapshot(frame) if frame is not None else None

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        from models.bundle import horizon_key, predict_department, predict_time_to_close, quantile_key

        rows = intake_rows(model_input)
        matrix = self.pipeline.transform_rows(rows, self.snapshot)
        if self.bundle.kind == "time_to_close":
            out = predict_time_to_close(self.bundle, matrix)
            columns = {f"p{round(q * 100)}_hours": out[quantile_key(q)] for q in self.bundle.spec["quantiles"]}
            columns |= {f"p_closed_within_{h:g}d": out[horizon_key(h)] for h in self.bundle.spec["horizons_days"]}
            return pd.DataFrame(columns)
        probabilities = predict_department(self.bundle, matrix)
        classes = np.asarray(self.bundle.metadata["classes"], dtype=object)
        best = probabilities.argmax(axis=1)
        return pd.DataFrame({"department": classes[best], "probability": probabilities.max(axis=1)})


def intake_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Intake dicts from a frame: missing columns are None, missing values None, created_at as datetimes."""
    from features.schema import DEFAULT_CITY, INTAKE_COLUMNS

    out = []
    created = pd.to_datetime(frame["created_at"], utc=True) if "created_at" in frame else None
    for i in range(len(frame)):
        row: dict[str, Any] = {}
        for column in INTAKE_COLUMNS:
            value = frame[column].iloc[i] if column in frame else None
            row[column] = None if value is None or (not isinstance(value, str) and pd.isna(value)) else value
        row["city"] = row["city"] or DEFAULT_CITY
        if created is not None:
            row["created_at"] = created.iloc[i].to_pydatetime()
        out.append(row)
    return out


mlflow.models.set_model(BundleModel())
