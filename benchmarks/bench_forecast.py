"""Benchmark `eta311 forecast`'s work on a full-size city: 1.75M historical rows with ~100k requests open at as-of.

What is timed (median over --repeats runs): reading the records Parquet, ``forecast_records`` (the view at
as-of, point-in-time workload features over the whole history, features and predictions for the ~250k rows the
forecast needs, per-request closing curves, sums per department and day, at-risk, accountability) and writing
the page and CSVs — everything the CLI does except loading the two bundles from MLflow. Also printed: the
stages of one run, the peak RSS, and the ratio to a reference measured in the same run on the same frame (a
pandas ``groupby([department, created day]).size()``, the cheapest pass over the same rows); compare ratios
across machines, seconds are this machine's. Target (issue 5): under 2 minutes.

The data: ``ingest.synth.synthesize(1.75M, seed)`` is one LA year; at its busiest (mid-August) about 35k
requests are open, so to reach the issue's ~100k the bench reopens a random sample of requests created in the
60 days before as-of (their closing is censored: open, no closed_at) — a scale test of the forecast, not a
realistic queue. The bundles are trained in the bench on a separate 150k-row synthetic year with few trees
(--rounds, default 40, for every booster) so the bench starts in minutes, not tens; prediction cost grows with
trees: `--rounds 300` is at least the production size (specs: 300 per quantile, 100 per horizon, 100 for the
department).

Run: `.venv/bin/python benchmarks/bench_forecast.py --rows 1750000 --open 100000 --repeats 3`
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

from features.schema import read_records, write_records  # noqa: E402
from forecast.departments import forecast_inputs, forecast_records, view_at  # noqa: E402
from ingest.synth import TIMEZONE, synthesize  # noqa: E402
from models.spec import load_specs  # noqa: E402
from training.train import train_models  # noqa: E402

log = logging.getLogger("bench_forecast")


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def reopen(records: pd.DataFrame, as_of: pd.Timestamp, target_open: int, seed: int) -> pd.DataFrame:
    """Censor the closing of random requests created in the 60 days before `as_of` until `target_open` are open."""
    view = view_at(records, as_of)
    open_now = int((view["status"] == "open").sum())
    candidates = np.flatnonzero(
        ((records["created_at"] > as_of - pd.Timedelta(days=60)) & (records["created_at"] <= as_of)).to_numpy()
        & (records["closed_at"].notna() & (records["closed_at"] <= as_of)).to_numpy()
    )
    wanted = max(0, min(target_open - open_now, len(candidates)))
    chosen = np.random.default_rng(seed).choice(candidates, wanted, replace=False)
    status = records["status"].to_numpy(copy=True)
    status[chosen] = "open"
    closed = records["closed_at"].copy()
    closed.iloc[chosen] = pd.NaT
    return records.assign(status=pd.Series(status, dtype="str"), closed_at=closed)


def small_bundles(rounds: int, seed: int) -> dict:
    specs = load_specs(None)
    for spec in specs.values():
        for key in ("params", "horizon_params"):
            if key in spec:
                spec[key]["n_estimators"] = rounds
    history = synthesize(rows=150_000, seed=seed + 1, start="2024-01-01", days=365)
    return train_models(history, specs).bundles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_750_000)
    parser.add_argument("--open", type=int, default=100_000, help="Requests open at as-of (reached by reopening).")
    parser.add_argument("--as-of", default="2024-08-15", help="Local date (LA midnight) to forecast from.")
    parser.add_argument("--horizon-days", type=int, default=14)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=40, help="Boosting rounds of the bench's bundles.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)

    as_of = pd.Timestamp(args.as_of).tz_localize(TIMEZONE).tz_convert("UTC")
    records = reopen(synthesize(rows=args.rows, seed=args.seed), as_of, args.open, args.seed)
    log.info("training the bench's bundles (%d rounds)", args.rounds)
    t0 = time.perf_counter()
    bundles = small_bundles(args.rounds, args.seed)
    train_s = time.perf_counter() - t0
    time_bundle, department_bundle = bundles["time_to_close"], bundles["department"]

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "records.parquet"
        write_records(records, data)
        runs, stages = [], {}
        report = None
        for i in range(args.repeats):
            started = time.perf_counter()
            frame = read_records(data)
            read_s = time.perf_counter() - started
            report = forecast_records(
                frame, time_bundle, department_bundle, as_of=as_of, horizon_days=args.horizon_days
            )
            forecast_s = time.perf_counter() - started - read_s
            report.write(Path(tmp) / f"out{i}")
            runs.append(time.perf_counter() - started)
            stages = {"read": read_s, "forecast": forecast_s, "write": runs[-1] - read_s - forecast_s}
            log.info("run %d: %.1f s", i + 1, runs[-1])
        assert report is not None
        t0 = time.perf_counter()
        inputs = forecast_inputs(records, as_of, None)
        inputs_s = time.perf_counter() - t0
        day = records["created_at"].dt.floor("D")
        reference = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            records.groupby([records["department"], day]).size()
            reference.append(time.perf_counter() - t0)

    median, ref = statistics.median(runs), statistics.median(reference)
    out = sys.stdout
    out.write(f"rows                       {len(records):,}\n")
    out.write(f"open at as-of              {report.summary['open_requests']:,} ({as_of.isoformat()})\n")
    out.write(f"rows scored                {len(inputs):,} (open + created or closed in the last 28 days)\n")
    out.write(f"forecast median            {median:.1f} s  (runs: {', '.join(f'{t:.1f}' for t in runs)})\n")
    out.write(
        f"  last run stages          read {stages['read']:.1f} s, forecast {stages['forecast']:.1f} s, "
        f"write {stages['write']:.1f} s\n"
    )
    out.write(f"  of which view + select   {inputs_s:.1f} s (without workload features)\n")
    out.write(f"reference groupby-size     {ref:.2f} s\n")
    out.write(f"ratio to reference         {median / ref:.0f}x\n")
    out.write(f"target                     < 120 s: {'met' if median < 120 else 'MISSED'}\n")
    out.write(f"bundles                    {args.rounds} rounds, trained in {train_s:.0f} s (not timed above)\n")
    out.write(f"peak RSS                   {_peak_rss_gib():.2f} GiB\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
