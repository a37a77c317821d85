"""Model quality on every shared real split: the product beside the per-type median (a static SLA), the global
median, the reference (training/reference.py: a plain LightGBM on the intake fields, TF-IDF + logistic
regression for routing) and the city's own target (Boston), with n. The README's quality table comes from it.

    .venv/bin/python benchmarks/bench_quality.py [--splits la,boston6,...] [--variant NAME ...] [--json OUT]

`--variant` trains the product again with one change to the specs (an ablation; see VARIANTS) and prints it
beside the default. Needs ../shared/data/real (exits 0 with a note when it is absent).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ingest.files import ingest_files  # noqa: E402
from models.spec import load_specs  # noqa: E402
from training.train import train_models  # noqa: E402

log = logging.getLogger("bench_quality")
REAL = ROOT.parent / "shared" / "data" / "real"

# name -> (files under REAL, test start; None = the default temporal split)
SPLITS: dict[str, tuple[list[str], str | None]] = {
    "la": (
        [
            "los_angeles/myla311_2017-12-27_to_31.csv",
            "los_angeles/myla311_2018-01-01_to_04.csv",
            "los_angeles/myla311_2020-01-01_to_03_lowercase.csv",
        ],
        "2020-01-01",
    ),
    "boston6": (["boston/boston311_2011-07_to_12.csv"], "2011-11-01"),
    "boston_closed": (["boston/boston311_2015-2024_closed_sample.csv"], "2023-01-01"),
    "nyc": (
        [
            "nyc/nyc311_2012-11_socrata.json",
            "nyc/nyc311_2013-12-25.csv",
            "nyc/nyc311_2022-05-01.csv",
            "nyc/nyc311_2023-12-07.csv",
        ],
        "2022-01-01",
    ),
    "nyc_all": (
        [
            "nyc/nyc311_2012-11_socrata.json",
            "nyc/nyc311_2013-12-25.csv",
            "nyc/nyc311_2022-05-01.csv",
            "nyc/nyc311_2023-12-07.csv",
        ],
        None,
    ),
}


def _set(path: str, value: Any) -> Callable[[dict], None]:
    kind, *keys = path.split(".")

    def change(specs: dict) -> None:
        node = specs[kind]
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value

    return change


def _extend(path: str, values: list[Any]) -> Callable[[dict], None]:
    kind, *keys = path.split(".")

    def change(specs: dict) -> None:
        node = specs[kind]
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = [*node.get(keys[-1], []), *values]

    return change


def _drop(path: str) -> Callable[[dict], None]:
    kind, *keys = path.split(".")

    def change(specs: dict) -> None:
        node = specs[kind]
        for key in keys[:-1]:
            node = node[key]
        node.pop(keys[-1], None)

    return change


# Ablations: one change each to the repository's specs.
VARIANTS: dict[str, list[Callable[[dict], None]]] = {
    "no_workload": [_extend("time_to_close.exclude_features", ["wl_"])],
    "no_text": [_extend("time_to_close.exclude_features", ["text_"])],
    "with_open": [_set("time_to_close.include_open", True)],
    "intake_only": [_extend("time_to_close.exclude_features", ["wl_", "text_"])],
    "with_workload": [
        _set("time_to_close.exclude_features", ["day_of_year", "grid_cell", "type_department", "route_"]),
        _set("time_to_close.monotone_rounds", 100),
    ],
    "wl_second_stage": [_set("time_to_close.first_stage_exclude_features", ["wl_"])],
    "wl_second_stage_200": [
        _set("time_to_close.first_stage_exclude_features", ["wl_"]),
        _set("time_to_close.monotone_rounds", 200),
    ],
    "no_refit": [_set("time_to_close.refit_with_calibration", False)],
    "no_router": [_set("time_to_close.features.route_text", False)],
    "pinball": [_set("time_to_close.quantile_objective", "pinball")],
    "monotone_0": [_set("time_to_close.monotone_rounds", 0)],
    "monotone_100": [_set("time_to_close.monotone_rounds", 100)],
    "leaves_31": [_set("time_to_close.params.num_leaves", 31), _set("time_to_close.params.n_estimators", 400)],
    "no_conformal": [_set("time_to_close.calibration.method", "none")],
    "no_cap": [_set("time_to_close.max_train_rows", None)],
    "follow_up_7": [_set("time_to_close.follow_up_days", 7)],
    "cohort_30": [_set("time_to_close.follow_up_days", 30)],
}


def load_split(name: str) -> tuple[pd.DataFrame, pd.Timestamp | None]:
    files, test_start = SPLITS[name]
    result = ingest_files([REAL / f for f in files])
    start = pd.Timestamp(test_start, tz="UTC") if test_start else None
    return result.records, start


def row(split: str, variant: str, summary: dict[str, Any], seconds: float) -> dict[str, Any]:
    t, d = summary["time_to_close"], summary["department"]
    return {
        "split": split,
        "variant": variant,
        "n": t.get("n"),
        "mae": t.get("mae_hours"),
        "mae_ref": t.get("baseline_reference_mae_hours"),
        "mae_type": t.get("baseline_type_median_mae_hours"),
        "mae_global": t.get("baseline_global_median_mae_hours"),
        "medae": t.get("median_ae_hours"),
        "medae_ref": t.get("baseline_reference_median_ae_hours"),
        "medae_type": t.get("baseline_type_median_median_ae_hours"),
        "medae_global": t.get("baseline_global_median_median_ae_hours"),
        "cov": t.get("coverage_p10_p90"),
        "cov_ref": t.get("baseline_reference_coverage_p10_p90"),
        "mae_city_target": t.get("baseline_city_target_mae_hours"),
        "mae_on_target_rows": t.get("model_on_city_target_rows_mae_hours"),
        "dept_n": d.get("n"),
        "acc": d.get("accuracy"),
        "acc_ref": d.get("baseline_reference_accuracy"),
        "acc_major": d.get("baseline_type_majority_accuracy"),
        "acc_nt": d.get("accuracy_without_type"),
        "acc_nt_ref": d.get("baseline_reference_accuracy_without_type"),
        "seconds": round(seconds, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splits", default=",".join(SPLITS), help="comma-separated split names")
    parser.add_argument("--variant", action="append", default=[], choices=sorted(VARIANTS), help="an ablation")
    parser.add_argument("--no-default", action="store_true", help="only the variants")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    if not REAL.is_dir():
        log.warning("%s not found: nothing to measure", REAL)
        return 0
    base = load_specs()
    variants = ([] if args.no_default else ["default"]) + args.variant
    rows = []
    for split in args.splits.split(","):
        records, test_start = load_split(split)
        for variant in variants:
            specs = copy.deepcopy(base)
            for change in VARIANTS.get(variant, []):
                change(specs)
            started = time.perf_counter()
            result = train_models(records, specs, test_start=test_start)
            rows.append(row(split, variant, result.evaluation.summary, time.perf_counter() - started))
            log.info("%s", json.dumps(rows[-1], default=float))
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 250, "display.max_columns", 40, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))  # noqa: T201 - the benchmark's report
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
