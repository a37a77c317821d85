"""Benchmark `ingest` on a 1.75 M-row LA-format CSV written by synth: median rows/s, peak memory, and the
ratio to a reference measured in the same run (pyarrow reading the same CSV as strings)."""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow.csv as pacsv

from ingest.files import ingest_files
from ingest.synth import synthesize, write_la_csv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_750_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "la.csv"
        write_la_csv(synthesize(rows=args.rows, seed=0), path)
        ingest_seconds, reference_seconds = [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types={}, strings_can_be_null=True))
            reference_seconds.append(time.perf_counter() - started)
            started = time.perf_counter()
            result = ingest_files([path], "la")
            ingest_seconds.append(time.perf_counter() - started)
        rows = result.reconciliation.rows_read
        median = statistics.median(ingest_seconds)
        reference = statistics.median(reference_seconds)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        print(f"ingest {rows:,} LA rows: median {median:.2f}s over {args.repeats} runs = {rows / median:,.0f} rows/s")
        print(
            f"reference (pyarrow CSV read only): median {reference:.2f}s; "
            f"ingest / reference = {median / reference:.1f}x"
        )
        print(
            f"accepted {result.reconciliation.accepted:,}, quarantined {result.reconciliation.quarantined:,} "
            f"{result.reconciliation.by_reason}"
        )
        print(f"peak RSS {peak:.2f} GiB (includes synth and the CSV write)")


if __name__ == "__main__":
    main()
