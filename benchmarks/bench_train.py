"""Benchmark `eta311 train` on one synthetic LA year (1.75 M rows): wall time, time per stage (features,
time-to-close, department, evaluation, MLflow logging), peak memory of the training process, and the ratio
to a reference measured in the same run (one plain LightGBM L2 booster, 100 rounds, on a random matrix of
the same shape). Targets (issue 10): < 5 minutes and < 4 GiB on the 2-core machine.

    .venv/bin/python benchmarks/bench_train.py [--rows 1750000] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np

from features.schema import write_records
from ingest.synth import synthesize

REFERENCE_FEATURES = 70


def reference_seconds(rows: int) -> float:
    """One LightGBM L2 booster, 100 rounds, 2 threads, on random data of the training matrix's shape."""
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(rows, REFERENCE_FEATURES))
    target = matrix[:, 0] + rng.normal(size=rows)
    started = time.perf_counter()
    lgb.train({"objective": "l2", "verbose": -1, "num_threads": 2}, lgb.Dataset(matrix, target), 100)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_750_000)
    parser.add_argument("--repeats", type=int, default=1, help="train runs (each takes minutes at full size)")
    args = parser.parse_args()
    eta311 = Path(sys.executable).with_name("eta311")
    with tempfile.TemporaryDirectory(prefix="bench-train-") as folder:
        data = Path(folder) / "requests.parquet"
        write_records(synthesize(rows=args.rows, seed=0), data)
        reference = reference_seconds(args.rows)
        walls, stages = [], []
        for i in range(args.repeats):
            env = os.environ | {"ETA311_HOME": str(Path(folder) / f"home{i}")}
            env.pop("MLFLOW_TRACKING_URI", None)
            started = time.perf_counter()
            done = subprocess.run(
                [str(eta311), "train", str(data), "--json"], env=env, capture_output=True, text=True, check=False
            )
            walls.append(time.perf_counter() - started)
            if done.returncode != 0:
                sys.exit(f"eta311 train failed:\n{done.stderr[-3000:]}")
            result = json.loads(done.stdout)
            stages.append(result["stage_seconds"])
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    wall = statistics.median(walls)
    print(f"eta311 train on {args.rows:,} synthetic LA rows: median wall {wall:.1f}s over {args.repeats} run(s)")
    for name in stages[0]:
        print(f"  stage {name:<14} median {statistics.median(s[name] for s in stages):7.1f}s")
    print(f"peak RSS of the train process {peak:.2f} GiB (target < 4 GiB; wall target < 300 s)")
    print(
        f"reference (LightGBM L2, 100 rounds, same shape): {reference:.1f}s; "
        f"train / reference = {wall / reference:.1f}x"
    )
    t, d = result["evaluation"]["time_to_close"], result["evaluation"]["department"]
    print(
        f"quality on the temporal test: P50 MAE {t['mae_hours']:.1f} h (per-type median "
        f"{t['baseline_type_median_mae_hours']:.1f} h), median AE {t['median_ae_hours']:.1f} h "
        f"({t['baseline_type_median_median_ae_hours']:.1f} h), coverage {t['coverage_p10_p90']:.3f}; "
        f"department accuracy {d['accuracy']:.3f} (majority {d['baseline_type_majority_accuracy']:.3f}), "
        f"without type {d['accuracy_without_type']:.3f}"
    )


if __name__ == "__main__":
    main()
