"""Benchmark `eta311 check`: Great Expectations suites on a full-size canonical frame (default 1.75M rows).

Prints the median seconds of `run_checks` over --repeats runs, the peak RSS of the process, and the ratio
against a reference measured in the same run on the same frame: the pure-pandas `rules.violations`, which
computes the same row-level rules without Great Expectations. The ratio is what to compare across
machines; the absolute seconds are for this machine only.

Run: `.venv/bin/python benchmarks/bench_check.py --rows 1750000 --repeats 3 [--docs DIR]`
"""

from __future__ import annotations

import argparse
import logging
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from data_checks.rules import violations  # noqa: E402
from data_checks.suite import run_checks  # noqa: E402
from features.schema import CITIES, SOURCE_VALUES, conform  # noqa: E402

log = logging.getLogger("bench_check")

REQUEST_TYPES = (
    "Bulky Items",
    "Graffiti Removal",
    "Metal/Household Appliances",
    "Illegal Dumping Pickup",
    "Electronic Waste",
    "Dead Animal Removal",
    "Homeless Encampment",
    "Single Streetlight Issue",
    "Multiple Streetlight Issue",
    "Feedback",
    "Other",
    "Report Water Waste",
)
DEPARTMENTS = ("BOS", "OCB", "BSL", "LADBS", "LAPD", "LADWP")


def synthetic_records(rows: int, seed: int = 0, now: pd.Timestamp | None = None) -> pd.DataFrame:
    """A vectorised LA-like canonical frame with a sprinkle of every data trap the suites look for.

    Stands in for `ingest.synth.synthesize` (written concurrently by another helper) so the benchmark
    does not depend on it; the shape (19 columns, string ids, 1.75M rows) is what matters for speed.
    About 0.1% of rows break a warning rule and 0.01% a blocking one, so the failure paths (unexpected
    counts, examples) are timed too, not only the happy path.
    """
    rng = np.random.default_rng(seed)
    now = now if now is not None else pd.Timestamp.now(tz="UTC").floor("s")
    min_lat, max_lat, min_lon, max_lon = CITIES["la"].bounds
    start = now - pd.Timedelta(days=365)
    created = start + pd.to_timedelta(rng.integers(0, 365 * 86_400, rows), unit="s")
    duration = pd.to_timedelta(rng.lognormal(np.log(2 * 86_400), 1.0, rows).astype("int64"), unit="s")
    closed = created + duration
    status = np.where(closed <= now, "closed", "open").astype(object)
    cancelled = (rng.random(rows) < 0.02) & (closed <= now)
    status[cancelled] = "cancelled"
    closed_values = pd.Series(closed).where(status != "open")
    ids = np.char.add("1-", np.arange(1, rows + 1).astype(str))
    frame = pd.DataFrame(
        {
            "request_id": ids,
            "city": "la",
            "created_at": created,
            "request_type": rng.choice(REQUEST_TYPES, rows),
            "source": rng.choice(SOURCE_VALUES[:5], rows),
            "description": rng.choice(["", "couch on sidewalk", "tagging on wall", "streetlight out"], rows),
            "latitude": rng.uniform(min_lat + 0.05, max_lat - 0.05, rows),
            "longitude": rng.uniform(min_lon + 0.05, max_lon - 0.05, rows),
            "zip_code": rng.integers(90001, 91610, rows).astype(str),
            "council_district": rng.integers(1, 16, rows).astype(str),
            "neighborhood": rng.choice([f"NC {i}" for i in range(99)], rows),
            "closed_at": closed_values,
            "status": status,
            "department": rng.choice(DEPARTMENTS, rows),
            "sla_target_at": created + pd.Timedelta(days=5),
            "source_format": "synthetic",
            "source_file": "synthetic.csv",
            "source_row": np.arange(rows, dtype="int64"),
        }
    )
    _sprinkle_traps(frame, rng, now)
    return conform(frame)


def _sprinkle_traps(frame: pd.DataFrame, rng: np.random.Generator, now: pd.Timestamp) -> None:
    """Break a few rows in place: warnings at ~0.1%, blocking at ~0.01%."""
    rows = len(frame)

    def pick(share: float) -> np.ndarray:
        return rng.choice(rows, max(1, int(rows * share)), replace=False)

    crew = pick(0.001)
    frame.loc[crew, "source"] = "crew"
    frame.loc[crew, "status"] = "closed"
    frame.loc[crew, "closed_at"] = frame.loc[crew, "created_at"] + pd.Timedelta(minutes=1)
    frame.loc[pick(0.001), "latitude"] = 0.0
    frame.loc[pick(0.0001), "status"] = "Closed?"
    backwards = pick(0.0001)
    frame.loc[backwards, "closed_at"] = frame.loc[backwards, "created_at"] - pd.Timedelta(hours=1)
    frame.loc[pick(0.0001), "request_id"] = "1-1"


def _peak_rss_gib() -> float:
    # ru_maxrss is KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _median_seconds(fn, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_750_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--docs", type=Path, default=None, help="Data Docs folder (default: a temp dir).")
    parser.add_argument("--no-docs", action="store_true", help="Skip Data Docs rendering.")
    parser.add_argument("--synth", action="store_true", help="Use ingest.synth.synthesize when it exists.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    now = pd.Timestamp.now(tz="UTC").floor("s")
    t0 = time.perf_counter()
    records = None
    if args.synth:
        try:
            from ingest.synth import synthesize

            records = conform(synthesize(rows=args.rows, seed=args.seed))
        except Exception:  # noqa: BLE001 - synth is optional here; fall back to the local generator
            log.warning("ingest.synth unavailable; using the benchmark's own generator", exc_info=True)
    if records is None:
        records = synthetic_records(args.rows, args.seed, now)
    log.info("built %d rows in %.1f s (peak RSS %.2f GiB)", len(records), time.perf_counter() - t0, _peak_rss_gib())

    reference, _ = _median_seconds(lambda: violations(records, now), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        docs = None if args.no_docs else (args.docs or Path(tmp) / "docs")
        report = None

        def once() -> None:
            nonlocal report
            report = run_checks(records, docs, now=now)

        median, times = _median_seconds(once, args.repeats)
    assert report is not None
    failed = [r for r in report.results if not r.success]
    print(f"rows                  {len(records):,}")
    print(f"run_checks median     {median:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times)})")
    print(f"rules.violations      {reference:.2f} s  (pure pandas reference)")
    print(f"ratio                 {median / reference:.1f}x the pandas reference")
    print(f"peak RSS              {_peak_rss_gib():.2f} GiB")
    print(f"expectations          {len(report.results)} ({len(failed)} failed, passed={report.passed})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
