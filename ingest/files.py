"""Ingest: raw city exports in, canonical records and a quarantine out, with counts that reconcile.

Every input row ends up in exactly one of the two outputs. Inputs are only read. The output order is the
input order (files in the order given, rows in file order), so re-running gives byte-identical files.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from data_checks.rules import first_blocking_reason
from features.schema import RECORD_COLUMNS, conform
from ingest.adapters import FORMAT_NAMES, adapter
from ingest.adapters.common import REJECT_COLUMN, missing_columns

log = logging.getLogger(__name__)

# A format is accepted by auto-detection only when this share of its signature columns is present.
DETECTION_THRESHOLD = 0.6
QUARANTINE_COLUMNS = ("source_file", "source_row", "source_format", "reason", "raw")


class IngestError(ValueError):
    """An input file cannot be ingested at all (unknown format, missing required columns, unreadable)."""


@dataclass
class FileCount:
    file: str
    format: str
    rows: int
    accepted: int = 0
    quarantined: int = 0


@dataclass
class Reconciliation:
    """Where every input row went. `rows_read == accepted + quarantined` always holds."""

    files: list[FileCount] = field(default_factory=list)
    rows_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "rows_read": self.rows_read,
            "accepted": self.accepted,
            "quarantined": self.quarantined,
            "by_reason": dict(self.by_reason),
            "files": [vars(f) for f in self.files],
        }

    def lines(self) -> list[str]:
        out = [
            f"{f.file}: format={f.format} rows={f.rows} accepted={f.accepted} quarantined={f.quarantined}"
            for f in self.files
        ]
        out.append(f"rows read {self.rows_read} = accepted {self.accepted} + quarantined {self.quarantined}")
        out.extend(f"  quarantined {reason}: {count}" for reason, count in self.by_reason.items())
        return out


@dataclass
class IngestResult:
    records: pd.DataFrame
    quarantine: pd.DataFrame
    reconciliation: Reconciliation


PARQUET_MAGIC = b"PAR1"


def read_raw(path: Path) -> pd.DataFrame:
    """Read a CSV, JSON or Parquet file with every value as a string (no type guessing, no lost zeros)."""
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    suffix = path.suffix.lower()
    with path.open("rb") as handle:
        is_parquet = handle.read(len(PARQUET_MAGIC)) == PARQUET_MAGIC
    try:
        if is_parquet:
            return _parquet_as_strings(path)
        if suffix == ".parquet":
            raise ValueError("not a Parquet file (no PAR1 header)")
        if suffix == ".json":
            with path.open(encoding="utf-8") as handle:
                payload = json.load(handle)
            if isinstance(payload, dict):  # {"requests": [...]} or similar wrappers
                payload = next((v for v in payload.values() if isinstance(v, list)), [payload])
            if not isinstance(payload, list) or not all(isinstance(item, dict) for item in payload):
                raise ValueError("expected a list of request objects (or an object holding one)")
            frame = pd.DataFrame.from_records([{k: _json_scalar(v) for k, v in item.items()} for item in payload])
            return frame.astype("str") if len(frame) else frame
        return pd.read_csv(path, dtype=str, engine="pyarrow", keep_default_na=False, na_values=[""])
    except (ValueError, OSError, UnicodeDecodeError, pa.ArrowException) as error:
        kind = "parquet" if is_parquet else suffix.lstrip(".") or "csv"
        raise IngestError(f"{path}: cannot be read as {kind}: {error}") from error


def _parquet_as_strings(path: Path) -> pd.DataFrame:
    """A Parquet file (canonical records, or a city export saved as Parquet) as strings, like a CSV would
    give: timestamps in ISO 8601 with their offset, numbers as their shortest round-trip text, missing as NA."""
    frame = pq.read_table(path).to_pandas()
    return pd.DataFrame(
        {name: frame[name].astype("str").where(frame[name].notna()) for name in frame.columns}, index=frame.index
    )


def _json_scalar(value: object) -> object:
    """Nested JSON values (location objects) kept as JSON text; scalars as they are."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def detect_format(columns: list[str], path: Path) -> str:
    """The best-matching format for a set of columns, or an IngestError naming the file."""
    scores = {name: float(adapter(name).score(columns)) for name in FORMAT_NAMES}
    best = max(scores, key=lambda name: scores[name])
    if scores[best] < DETECTION_THRESHOLD:
        ranked = ", ".join(f"{n}={s:.2f}" for n, s in sorted(scores.items(), key=lambda kv: -kv[1]))
        raise IngestError(f"{path}: matches no known format (signature scores: {ranked})")
    return best


def _check_required(module, columns: list[str], path: Path) -> None:
    missing = missing_columns(columns, module.REQUIRED)
    if missing:
        raise IngestError(f"{path}: missing required column(s) for format {module.NAME!r}: {', '.join(missing)}")


def read_file(path: Path, fmt: str = "auto", city: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """One file to (canonical rows with a reject column, its raw frame, the format used)."""
    raw = read_raw(path)
    columns = [str(c) for c in raw.columns]
    if fmt == "auto":
        fmt = detect_format(columns, path)
        log.info("%s: detected format %s", path, fmt)
    module = adapter(fmt)
    _check_required(module, columns, path)
    records = module.to_records(raw, city)
    if len(records) != len(raw):
        raise AssertionError(f"adapter {fmt} returned {len(records)} rows for {len(raw)} input rows")
    records = records.assign(source_format=fmt, source_file=path.name, source_row=np.arange(len(raw)))
    return records, raw, fmt


def ingest_files(
    paths: list[Path], fmt: str = "auto", city: str | None = None, now: pd.Timestamp | None = None
) -> IngestResult:
    """Read, normalise and validate `paths`; split rows into accepted records and quarantine."""
    if fmt != "auto" and fmt not in FORMAT_NAMES:
        raise IngestError(f"unknown --format {fmt!r}; expected auto or one of {', '.join(FORMAT_NAMES)}")
    reconciliation = Reconciliation()
    frames, raws, file_index = [], [], []
    for number, path in enumerate(paths):
        records, raw, used = read_file(Path(path), fmt, city)
        frames.append(records)
        raws.append(raw)
        file_index.append(np.full(len(raw), number))
        reconciliation.files.append(FileCount(file=str(path), format=used, rows=len(raw)))
    combined = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(RECORD_COLUMNS))
    reject = combined[REJECT_COLUMN] if REJECT_COLUMN in combined else pd.Series(pd.NA, index=combined.index)
    canonical = conform(combined)
    # Adapter-level reasons (unparseable values) first, then the shared blocking rules.
    reasons = reject.astype("str").fillna(first_blocking_reason(canonical, now))
    rejected = reasons.notna().to_numpy()

    accepted = canonical.loc[~rejected].reset_index(drop=True)
    files = np.concatenate(file_index) if file_index else np.zeros(0, dtype=int)
    quarantine = _quarantine_frame(canonical.loc[rejected], reasons[rejected], files[rejected], raws)

    for number, count in enumerate(reconciliation.files):
        in_file = files == number
        count.quarantined = int((rejected & in_file).sum())
        count.accepted = int(in_file.sum()) - count.quarantined
    reconciliation.rows_read = len(canonical)
    reconciliation.accepted = len(accepted)
    reconciliation.quarantined = len(quarantine)
    reconciliation.by_reason = dict(sorted(Counter(reasons[rejected].tolist()).items()))
    if reconciliation.rows_read != reconciliation.accepted + reconciliation.quarantined:
        raise AssertionError("ingest lost rows: counts do not reconcile")
    return IngestResult(accepted, quarantine, reconciliation)


def _quarantine_frame(
    rows: pd.DataFrame, reasons: pd.Series, file_index: np.ndarray, raws: list[pd.DataFrame]
) -> pd.DataFrame:
    """Rejected rows with their reason and the original raw values (one JSON object per row), for tracing back."""
    raw_json = np.empty(len(rows), dtype=object)
    positions = rows["source_row"].to_numpy()
    for number, raw in enumerate(raws):
        in_file = file_index == number
        if in_file.any():
            picked = raw.iloc[positions[in_file]].astype("object")
            picked = picked.where(picked.notna(), None)
            raw_json[in_file] = [
                json.dumps(dict(zip(map(str, picked.columns), values, strict=True)), sort_keys=True)
                for values in picked.itertuples(index=False, name=None)
            ]
    return pd.DataFrame(
        {
            "source_file": pd.array(rows["source_file"].tolist(), dtype="str"),
            "source_row": positions.astype("int64"),
            "source_format": pd.array(rows["source_format"].tolist(), dtype="str"),
            "reason": pd.array(reasons.tolist(), dtype="str"),
            "raw": pd.array(raw_json.tolist(), dtype="str"),
        }
    )
