"""The estimates a city would use without us: a global median, a per-type median (a static SLA), the city's
own target where it publishes one (Boston's TARGET_DT), and the per-type majority department."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.labels import hours_to_close


class TypeMedianBaseline:
    """Median hours to close per request type, learned on resolved training requests; global median fallback."""

    def fit(self, records: pd.DataFrame) -> TypeMedianBaseline:
        hours = hours_to_close(records)
        frame = pd.DataFrame({"type": records["request_type"], "hours": hours}).dropna(subset=["hours"])
        self.global_median_ = float(frame["hours"].median()) if len(frame) else 24.0
        self.medians_ = frame.groupby("type", observed=True)["hours"].median().to_dict()
        return self

    def predict(self, records: pd.DataFrame) -> np.ndarray:
        mapped = records["request_type"].map(self.medians_).astype("float64")
        return mapped.fillna(self.global_median_).to_numpy()

    def predict_global(self, records: pd.DataFrame) -> np.ndarray:
        return np.full(len(records), self.global_median_)


class TypeMajorityDepartment:
    """The department most often handling each type; the overall most common one for unseen types."""

    def fit(self, records: pd.DataFrame) -> TypeMajorityDepartment:
        known = records.dropna(subset=["department"])
        self.overall_ = str(known["department"].mode().iloc[0]) if len(known) else ""
        counts = known.groupby(["request_type", "department"], observed=True).size().rename("n").reset_index()
        top = counts.sort_values(["request_type", "n", "department"], ascending=[True, False, True])
        self.majority_ = top.drop_duplicates("request_type").set_index("request_type")["department"].to_dict()
        return self

    def predict(self, records: pd.DataFrame) -> np.ndarray:
        mapped = records["request_type"].map(self.majority_)
        return mapped.fillna(self.overall_).astype("str").to_numpy()


def city_target_hours(records: pd.DataFrame) -> np.ndarray:
    """The city's own promise in hours (sla_target_at - created_at); NaN where the city gives none."""
    return ((records["sla_target_at"] - records["created_at"]).dt.total_seconds() / 3600).to_numpy(dtype=float)
