"""Benchmark `ingest.synth`: one LA year (default 1.75M rows) generated, then written as a MyLA311 CSV.

Prints the median seconds of `synthesize` over --repeats runs, rows per second, the MyLA311 CSV write time,
the peak RSS of the process, and ratios against references measured in the same run on the same machine:
drawing as many uniform numbers as the frame has cells (numpy), and a pandas sort of the generated frame
by (request_type, created_at). The ratios are what to compare across machines; the seconds are this
machine's. Budget on the 2-core dev box: under 60 s and 4 GiB for 1.75M rows.

Run: `.venv/bin/python benchmarks/bench_synth.py --rows 1750000 --repeats 3 [--csv PATH]`
"""

from __future__ import annotations

import argparse
import logging
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ingest.synth import synthesize, write_la_csv  # noqa: E402

log = logging.getLogger("bench_synth")


def _peak_rss_gib() -> float:
    # ru_maxrss is KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _median_seconds(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
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
    parser.add_argument("--csv", type=Path, default=None, help="Where to write the MyLA311 CSV (default: temp).")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    records = None

    def generate() -> None:
        nonlocal records
        records = synthesize(rows=args.rows, seed=args.seed)

    synth_median, synth_times = _median_seconds(generate, args.repeats)
    assert records is not None
    cells = records.shape[0] * records.shape[1]
    random_median, _ = _median_seconds(lambda: np.random.default_rng(args.seed).random(cells), args.repeats)
    sort_median, _ = _median_seconds(lambda: records.sort_values(["request_type", "created_at"]), args.repeats)
    log.info("generated %d rows; writing the MyLA311 CSV", len(records))

    with tempfile.TemporaryDirectory() as tmp:
        path = args.csv or Path(tmp) / "myla311_synth.csv"
        t0 = time.perf_counter()
        write_la_csv(records, path)
        csv_seconds = time.perf_counter() - t0
        csv_mib = path.stat().st_size / 2**20

    out = sys.stdout
    out.write(f"rows                  {len(records):,}\n")
    out.write(f"synthesize median     {synth_median:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in synth_times)})\n")
    out.write(f"rows per second       {len(records) / synth_median:,.0f}\n")
    out.write(
        f"write_la_csv          {csv_seconds:.2f} s  ({csv_mib:,.0f} MiB, {len(records) / csv_seconds:,.0f} rows/s)\n"
    )
    out.write(f"numpy random ref      {random_median:.3f} s  ({cells:,} uniforms, one per cell)\n")
    out.write(f"pandas sort ref       {sort_median:.2f} s  (sort_values by request_type, created_at)\n")
    out.write(f"ratio vs random       {synth_median / random_median:.1f}x\n")
    out.write(f"ratio vs sort         {synth_median / sort_median:.1f}x\n")
    out.write(f"peak RSS              {_peak_rss_gib():.2f} GiB\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
