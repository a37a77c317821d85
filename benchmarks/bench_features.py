"""Benchmark the feature pipeline on a full-size frame (default 1.75M rows, one year, several cities).

Prints medians over --repeats runs of:
- the point-in-time workload features (``workload_features``), rows/s;
- the whole ``FeaturePipeline.transform`` (workload included), rows/s;
- ``workload_snapshot`` (today's table), seconds;
- ``transform_rows`` per row for a batch of 1 and of 32 requests, microseconds;
- the peak RSS of the process;
- the ratio of the workload time to a reference measured in the same run on the same frame: a pandas
  ``groupby([city, request_type, day]).size()`` (the cheapest thing that touches the same keys and days).
  The ratio is what to compare across machines; the absolute numbers are for this machine only.

Run: `.venv/bin/python benchmarks/bench_features.py --rows 1750000 --repeats 3 [--synth]`
(`--synth` uses ``ingest.synth.synthesize`` for the frame instead of the built-in generator.)
"""

from __future__ import annotations

import argparse
import logging
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from features.pipeline import FeaturePipeline  # noqa: E402
from features.schema import CITIES, SOURCE_VALUES, conform  # noqa: E402
from features.workload import WorkloadSpec, workload_features  # noqa: E402

log = logging.getLogger("bench_features")

WORDS = np.array(
    [
        "pothole",
        "couch",
        "mattress",
        "graffiti",
        "wall",
        "alley",
        "sidewalk",
        "dumping",
        "tree",
        "branch",
        "streetlight",
        "out",
        "dark",
        "water",
        "leak",
        "hydrant",
        "car",
        "abandoned",
        "noise",
        "loud",
        "party",
        "dead",
        "animal",
        "cat",
        "dog",
        "trash",
        "bin",
        "missed",
        "pickup",
        "sign",
        "broken",
        "fence",
        "encampment",
        "tent",
        "blocked",
        "driveway",
        "smell",
        "sewer",
        "flooding",
    ],
    dtype=object,
)


def synthetic_records(rows: int, seed: int = 0, days: int = 365) -> pd.DataFrame:
    """A vectorised multi-city canonical frame: ~60% LA, 100+ types, skewed volumes, real-ish durations.

    Descriptions (70% of rows) are one-to-six-word phrases from a pool of 3,000 (Zipf-distributed), a third
    of them with a house number in front, so about a quarter of the rows carry a distinct text (311 free
    text repeats a lot, but not entirely).
    """
    rng = np.random.default_rng(seed)
    city_codes = np.array(list(CITIES))
    city = city_codes[rng.choice(len(city_codes), rows, p=[0.6, 0.2, 0.08, 0.07, 0.05])]
    start = pd.Timestamp("2024-01-01", tz="UTC").value // 1000
    created_us = np.sort(start + rng.integers(0, days * 86_400_000_000, rows))
    n_types = 25
    type_index = np.minimum(rng.zipf(1.6, rows) - 1, n_types - 1)
    request_type = np.char.add(np.char.add(city.astype("<U8"), " type "), type_index.astype("<U3")).astype(object)
    department = np.char.add(np.char.add(city.astype("<U8"), " dept "), (type_index % 6).astype("<U3")).astype(object)
    # Lognormal hours to close whose median depends on the type; some never close, a few are cancelled.
    hours = np.exp(rng.normal(1.0 + 0.15 * type_index, 1.3, rows))
    status = rng.choice(np.array(["closed", "open", "cancelled", "referred"]), rows, p=[0.9, 0.05, 0.04, 0.01])
    closed_us = np.where(status == "open", np.nan, created_us + hours * 3.6e9)
    lat = np.empty(rows)
    lon = np.empty(rows)
    for code, info in CITIES.items():
        mask = city == code
        lat[mask] = rng.uniform(info.bounds[0], info.bounds[1], mask.sum())
        lon[mask] = rng.uniform(info.bounds[2], info.bounds[3], mask.sum())
    lat[rng.random(rows) < 0.08] = np.nan
    phrases = pd.Series(WORDS[rng.integers(0, len(WORDS), 3000)])
    for k in range(1, 6):
        more = pd.Series(WORDS[rng.integers(0, len(WORDS), 3000)])
        phrases = phrases.where(rng.random(3000) < k / 6, phrases + " " + more)
    description = pd.Series(phrases.to_numpy()[rng.zipf(1.3, rows) % 3000])
    number = pd.Series(rng.integers(1, 20_000, rows).astype(str))
    description = description.where(rng.random(rows) > 0.33, number + " " + description)
    description = description.where(rng.random(rows) > 0.3)
    district = pd.Series(rng.integers(1, 16, rows).astype(str)).where(rng.random(rows) > 0.1)
    frame = pd.DataFrame(
        {
            "request_id": pd.Series(np.arange(rows)).astype(str),
            "city": city,
            "created_at": pd.to_datetime(created_us, unit="us", utc=True),
            "request_type": request_type,
            "source": rng.choice(np.array(SOURCE_VALUES), rows),
            "description": description,
            "latitude": lat,
            "longitude": lon,
            "zip_code": pd.Series(rng.integers(90001, 90300, rows).astype(str)),
            "council_district": district,
            "neighborhood": pd.Series(rng.integers(0, 99, rows).astype(str)).radd("nc "),
            "closed_at": pd.to_datetime(closed_us, unit="us", utc=True),
            "status": status,
            "department": department,
            "source_row": np.arange(rows),
        }
    )
    return conform(frame)


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_750_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--synth", action="store_true", help="use ingest.synth.synthesize for the frame")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    t0 = time.perf_counter()
    if args.synth:
        from ingest.synth import synthesize

        records = synthesize(args.rows, 0)
        source = "ingest.synth.synthesize"
    else:
        records = synthetic_records(args.rows)
        source = "bench_features.synthetic_records"
    print(f"frame: {len(records):,} rows from {source} in {time.perf_counter() - t0:.1f} s")

    pipeline = FeaturePipeline()
    fit_s = median_seconds(lambda: pipeline.fit(records), 1)
    spec = WorkloadSpec()

    def reference() -> None:
        day = records["created_at"].dt.floor("D")
        records.assign(day=day).groupby(["city", "request_type", "day"], observed=True).size()

    ref_s = median_seconds(reference, args.repeats)
    wl_s = median_seconds(lambda: workload_features(records, pipeline.type_department_, spec), args.repeats)
    tr_s = median_seconds(lambda: pipeline.transform(records), args.repeats)
    as_of = records["created_at"].max()
    snap_s = median_seconds(lambda: pipeline.workload_snapshot(records, as_of), args.repeats)

    snapshot = pipeline.load_snapshot(pipeline.workload_snapshot(records, as_of))
    sample = records.tail(1024)
    dict_rows = [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in sample.drop(columns=["closed_at", "status", "department"]).to_dict("records")
    ]
    per_row = {}
    for batch in (1, 32):
        batches = [dict_rows[i : i + batch] for i in range(0, len(dict_rows) - batch + 1, batch)]
        loops = max(1, 2000 // len(batches))

        def run(batches: list[list[dict]] = batches, loops: int = loops) -> None:
            for _ in range(loops):
                for rows in batches:
                    pipeline.transform_rows(rows, snapshot)

        seconds = median_seconds(run, args.repeats)
        per_row[batch] = seconds / (loops * len(batches) * batch) * 1e6

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = len(records)
    print(f"fit:                      {fit_s:8.2f} s")
    print(f"reference groupby-size:   {ref_s:8.2f} s   {n / ref_s:12,.0f} rows/s")
    print(f"workload_features:        {wl_s:8.2f} s   {n / wl_s:12,.0f} rows/s   ratio to reference {wl_s / ref_s:.2f}")
    print(f"transform (all features): {tr_s:8.2f} s   {n / tr_s:12,.0f} rows/s   ratio to reference {tr_s / ref_s:.2f}")
    print(f"workload_snapshot:        {snap_s:8.2f} s")
    print(f"transform_rows, 1 row:    {per_row[1]:8.1f} us/row")
    print(f"transform_rows, 32 rows:  {per_row[32]:8.1f} us/row")
    print(f"features: {len(pipeline.feature_names_)}; peak RSS {peak_mib:,.0f} MiB")


if __name__ == "__main__":
    main()
