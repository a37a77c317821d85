"""What counts as resolved, and the labels the time-to-close models learn from. A stated, tested choice.

- **Resolved** means status ``closed`` with a ``closed_at``: the work was done. That includes crew
  self-reports closed within minutes (LA "Driver Self Report", Boston "City Worker App"): the crew did fix it
  on the spot, and ``source`` tells the model which requests those are.
- **Cancelled** and **referred** requests are not resolved by this city: they are excluded from the
  time-to-close labels (they would teach the model that work finishes when a ticket is bounced), but they do
  leave the queue at their ``closed_at`` for the workload features.
- **Open** requests are right-censored: their duration is at least their age at extraction. They count as
  negatives for every horizon they have outlived ("still open after h days"), they are dropped from horizons
  they have not yet reached, and quantile models learn only from cohorts with full follow-up (see
  ``follow_up_cohort``), where an open request's age is used as its (lower-bound) duration.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

HOUR = 3600.0


def extraction_time(records: pd.DataFrame) -> pd.Timestamp:
    """When the data was pulled, as far as the data itself tells: its latest timestamp."""
    latest = records["created_at"].max()
    closed = records["closed_at"].max()
    return max(latest, closed) if pd.notna(closed) else latest


def hours_to_close(records: pd.DataFrame) -> pd.Series:
    """Hours from creation to closing for resolved requests; NaN for everything else."""
    hours = (records["closed_at"] - records["created_at"]).dt.total_seconds() / HOUR
    resolved = (records["status"] == "closed") & records["closed_at"].notna() & (hours >= 0)
    return hours.where(resolved)


def observed_hours(records: pd.DataFrame, extracted_at: pd.Timestamp) -> tuple[pd.Series, pd.Series]:
    """(duration in hours, event flag): resolved requests with their time; open ones censored at their age.

    Cancelled/referred rows get NaN (not part of the time-to-close population).
    """
    resolved_hours = hours_to_close(records)
    age = (extracted_at - records["created_at"]).dt.total_seconds() / HOUR
    is_open = records["status"] == "open"
    duration = resolved_hours.where(resolved_hours.notna(), age.where(is_open))
    return duration, resolved_hours.notna()


def horizon_labels(records: pd.DataFrame, horizon_days: float, extracted_at: pd.Timestamp) -> pd.Series:
    """1.0 if resolved within the horizon, 0.0 if not (still open or resolved later), NaN if not yet knowable.

    A request whose age at extraction is below the horizon and that is still open is censored for this
    horizon: NaN. Cancelled/referred requests are NaN (not in the population).
    """
    duration, event = observed_hours(records, extracted_at)
    horizon = horizon_days * 24.0
    label = pd.Series(np.nan, index=records.index)
    label = label.mask(event & (duration <= horizon), 1.0)
    label = label.mask(event & (duration > horizon), 0.0)
    label = label.mask(~event & duration.notna() & (duration > horizon), 0.0)
    return label


def follow_up_cohort(records: pd.DataFrame, follow_up_days: float, extracted_at: pd.Timestamp) -> pd.Series:
    """Rows whose outcome is known for at least `follow_up_days`: created that long before extraction."""
    cutoff = extracted_at - pd.Timedelta(days=follow_up_days)
    return records["created_at"] <= cutoff


def effective_follow_up_days(records: pd.DataFrame, wanted_days: float) -> float:
    """The follow-up window actually used: the spec's, shortened to a third of the data's span if needed.

    Short exports (the real LA files span 3-5 days and were pulled long after) would otherwise leave no
    cohort at all; for them most requests are closed anyway, so the censoring bias is small — and stated.
    """
    span_days = (extraction_time(records) - records["created_at"].min()).total_seconds() / 86400
    return float(min(wanted_days, max(span_days / 3.0, 0.0)))
