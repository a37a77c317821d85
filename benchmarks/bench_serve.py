"""Benchmark the real HTTP service on loopback against the same requests scored in-process.

Trains a synthetic city into a throwaway ETA311_HOME (or uses --home with champions already promoted),
starts `eta311 serve` on 127.0.0.1 and prints medians over --repeats runs of:
- startup to ready: from launching `eta311 serve` to the first 200 from /readyz (registry import included);
- `/estimate` latency p50/p99 at concurrency 1, 8 and 32 (aiohttp, a fixed request count and a time limit
  per run), throughput and the error count (anything but a 200);
- `/estimate_batch` predictions per second (1,000 requests per call, sequential calls from one client, and
  from two clients at once: one per worker);
- the same requests scored in-process (`Estimator.estimate`, one row and 1,000 rows) and the ratios
  HTTP / in-process — the figure to compare across machines (the load runs ask `?explain=false`, as the
  in-process figure has no explanation);
- in-process, the cost of the resident's language (1,000-row batches per language, with the sentence caches
  warm and cold, against English in the same run) and of `explanation` (one row and 1,000 rows, with and
  without); `--in-process-only` prints just these and the in-process figures, without a server (a short run);
- resident memory (RSS) of each BentoML worker process;
- how long after ready the background dashboard forecast took (the load runs start after it), and the
  machine's load averages at the start and the end (the machine is shared: compare figures with them).
The load client runs on the same cores as the server, so absolute numbers are pessimistic on small machines.

Run: `.venv/bin/python benchmarks/bench_serve.py [--rows 30000] [--rounds 100] [--requests 1000] [--repeats 3]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

log = logging.getLogger("bench_serve")
CONCURRENCY = (1, 8, 32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_home(home: Path, rows: int, rounds: int) -> None:
    """Synthesize, train (specs with `rounds` trees), promote: champions and a snapshot under `home`."""
    import yaml

    from features.schema import write_records
    from ingest.synth import synthesize

    spec_dir = home / "spec"
    spec_dir.mkdir(parents=True, exist_ok=True)
    for name in ("time_to_close.yaml", "department.yaml"):
        spec = yaml.safe_load((ROOT / "models" / "specs" / name).read_text())
        for key in ("params", "horizon_params"):
            if key in spec:
                spec[key]["n_estimators"] = rounds
        (spec_dir / name).write_text(yaml.safe_dump(spec))
    data = home / "records.parquet"
    write_records(synthesize(rows=rows, seed=11, start="2024-01-01", days=90), data)
    env = {**os.environ, "ETA311_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    for args in (["train", str(data), "--spec", str(spec_dir)], ["promote"]):
        subprocess.run([sys.executable, "-m", "eta311", *args], env=env, check=True, capture_output=True)


def request_bodies(home: Path, n: int) -> list[dict[str, Any]]:
    """The last n requests (by creation) as JSON bodies (what a client would send)."""
    import pandas as pd

    from features.schema import read_records

    source = home / "records.parquet"
    if not source.is_file():  # a home made by `eta311 demo`
        source = home / "data" / "requests.parquet"
    records = read_records(source)
    records = records[records["created_at"].notna()].sort_values("created_at", kind="stable").tail(n)
    out = []
    for record in records.to_dict("records"):
        body = {
            k: record[k]
            for k in ("request_type", "source", "description", "latitude", "longitude", "zip_code", "neighborhood")
            if not pd.isna(record[k])
        }
        body["created_at"] = record["created_at"].tz_convert("America/Los_Angeles").isoformat()
        out.append(body)
    return out


def in_process(home: Path, bodies: list[dict[str, Any]], repeats: int, compiled: bool) -> dict[str, float]:
    """Per-request and per-1,000 in-process times of the service's own estimator on the same champions."""
    import pandas as pd

    from models.registry import CHAMPION, DEPARTMENT, TIME_TO_CLOSE, configure_tracking, load_model
    from serving.estimator import Estimator, Versions
    from serving.schemas import EstimateRequest

    configure_tracking(f"sqlite:///{home / 'mlflow.db'}", home / "mlartifacts")
    time_model, department_model = load_model(TIME_TO_CLOSE, CHAMPION), load_model(DEPARTMENT, CHAMPION)
    if compiled:  # as the service's workers do: the boosters `eta311 promote`/`serve` compiled for this CPU
        from models.compiled import attach_loaded, ensure_compiled
        from models.files import bundle_folder

        ensure_compiled([bundle_folder(model.path) for model in (time_model, department_model)], home / "compiled")
        if not attach_loaded([time_model, department_model], home / "compiled"):
            raise RuntimeError("compiled boosters could not be attached")
    estimator = Estimator(
        time_model.bundle,
        department_model.bundle,
        pd.read_parquet(home / "snapshots" / "latest.parquet"),
        Versions(time_model.version, department_model.version),
    )
    rows = [EstimateRequest.model_validate(b).model_dump() for b in bodies]
    estimator.estimate(rows[:10])
    singles, batches = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for row in rows:
            estimator.estimate([row])
        singles.append((time.perf_counter() - t0) / len(rows))
        t0 = time.perf_counter()
        estimator.estimate(rows[:1000])
        batches.append(min(len(rows), 1000) / (time.perf_counter() - t0))
    return {
        "single_ms": statistics.median(singles) * 1e3,
        "batch_per_s": statistics.median(batches),
        **languages_and_explanations(estimator, rows, repeats),
    }


def languages_and_explanations(estimator: Any, rows: list[dict[str, Any]], repeats: int) -> dict[str, float]:
    """Milliseconds per 1,000-row batch in each language (sentence caches warm, and cleared before the call:
    cold), and per row or batch with and without `explanation`."""
    from serving import i18n

    batch = rows[:1000]
    out: dict[str, float] = {}

    def timed(call: Any, clear: bool = False) -> float:
        runs = []
        for _ in range(repeats):
            if clear:
                i18n._sentence.cache_clear()  # noqa: SLF001 - time the uncached sentence
                i18n.reason_text.cache_clear()
            t0 = time.perf_counter()
            call()
            runs.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(runs)

    for language in i18n.LANGUAGES:
        localised = [row | {"language": language} for row in batch]
        estimator.estimate(localised)  # catalog compiled, caches filled
        out[f"batch_ms_{language}"] = timed(lambda rows=localised: estimator.estimate(rows))
        out[f"batch_cold_ms_{language}"] = timed(lambda rows=localised: estimator.estimate(rows), clear=True)
    single = batch[: min(200, len(batch))]
    for explain in (False, True):
        estimator.estimate(single[:5], explain=explain)
        per_row = timed(lambda e=explain: [estimator.estimate([row], explain=e) for row in single]) / len(single)
        out[f"single_ms_explain_{explain}"] = per_row
        out[f"batch_ms_explain_{explain}"] = timed(lambda e=explain: estimator.estimate(batch, explain=e))
    return out


def print_languages_and_explanations(reference: dict[str, float], rows: int) -> None:
    from serving.i18n import LANGUAGES

    english = reference["batch_ms_en"]
    print(f"in-process, {rows:,}-row batch by language (ms, warm caches / cold caches; ratio to English warm):")
    for language in LANGUAGES:
        warm, cold = reference[f"batch_ms_{language}"], reference[f"batch_cold_ms_{language}"]
        print(f"  {language:<8} {warm:8.2f} / {cold:8.2f}   x{warm / english:.2f} / x{cold / english:.2f}")
    single_off, single_on = reference["single_ms_explain_False"], reference["single_ms_explain_True"]
    batch_off, batch_on = reference["batch_ms_explain_False"], reference["batch_ms_explain_True"]
    print(
        f"in-process explanation: one row {single_off:.3f} -> {single_on:.3f} ms (+{single_on - single_off:.3f} ms); "
        f"{rows:,} rows {batch_off:.1f} -> {batch_on:.1f} ms (+{(batch_on - batch_off) / rows * 1e3:.1f} us per row)"
    )


async def load(url: str, bodies: list[dict[str, Any]], concurrency: int, n: int, limit_s: float) -> dict[str, float]:
    """n POSTs to /estimate with `concurrency` in flight; stops early at limit_s. Latencies in ms."""
    import aiohttp

    payloads = [json.dumps(b).encode() for b in bodies]
    latencies: list[float] = []
    errors = 0
    issued = 0
    deadline = time.perf_counter() + limit_s
    headers = {"content-type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal issued, errors
            while issued < n and time.perf_counter() < deadline:
                body = payloads[issued % len(payloads)]
                issued += 1
                t0 = time.perf_counter()
                try:
                    async with session.post(f"{url}/estimate?explain=false", data=body, headers=headers) as response:
                        await response.read()
                        ok = response.status == 200
                except aiohttp.ClientError:
                    ok = False
                latencies.append((time.perf_counter() - t0) * 1e3)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    values = np.asarray(latencies)
    return {
        "p50_ms": float(np.percentile(values, 50)),
        "p99_ms": float(np.percentile(values, 99)),
        "rps": len(values) / elapsed,
        "errors": errors,
        "n": len(values),
    }


def batch_rate(url: str, bodies: list[dict[str, Any]], calls: int, clients: int = 1) -> tuple[float, int]:
    """Predictions/s of /estimate_batch with 1,000 requests per call: `clients` concurrent clients (aiohttp,
    kept-alive connections as a client pool keeps them), each posting `calls` calls one after another. The
    body is encoded once, as a load generator does; every answer is read in full and its status checked,
    and each client's first answer is parsed and its length checked."""
    import aiohttp

    requests = bodies[:1000]
    payload = json.dumps({"requests": requests}).encode()
    headers = {"content-type": "application/json"}

    async def run() -> tuple[float, int]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:

            async def client() -> int:
                errors = 0
                for call in range(calls):
                    async with session.post(f"{url}/estimate_batch", data=payload, headers=headers) as response:
                        body = await response.read()
                        errors += response.status != 200
                        if call == 0 and response.status == 200:
                            errors += len(json.loads(body)["estimates"]) != len(requests)
                return errors

            await client()  # warm-up
            started = time.perf_counter()
            errors = sum(await asyncio.gather(*(client() for _ in range(clients))))
            return clients * calls * len(requests) / (time.perf_counter() - started), errors

    return asyncio.run(run())


def worker_rss_mib(root_pid: int) -> list[float]:
    import psutil

    processes = psutil.Process(root_pid).children(recursive=True)
    return [p.memory_info().rss / 2**20 for p in processes if "_bentoml_impl.worker" in " ".join(p.cmdline())]


def start_server(home: Path, port: int, workers: int, compiled: bool) -> tuple[subprocess.Popen, float]:
    import httpx

    env = {**os.environ, "ETA311_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [sys.executable, "-m", "eta311", "serve", "--host", "127.0.0.1", "--port", str(port)]
    log_file = (home / "server.log").open("w")
    t0 = time.perf_counter()
    process = subprocess.Popen(
        [*command, "--workers", str(workers), "--compile" if compiled else "--no-compile"],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    while time.perf_counter() - t0 < 120:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {(home / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process, time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    stop_server(process)
    raise RuntimeError("server not ready in 120 s")


def wait_dashboard(url: str, limit_s: float = 300.0) -> tuple[float, str]:
    """Seconds from ready until the dashboard forecast is no longer being computed, and its final status.

    The service computes it in the background right after /readyz turns 200; the latency runs wait for it,
    so they measure the steady state rather than estimates sharing the GIL with the forecast.
    """
    import httpx

    t0 = time.perf_counter()
    status = "unknown"
    while time.perf_counter() - t0 < limit_s:
        status = httpx.get(f"{url}/readyz", timeout=5).json().get("dashboard", "none")
        if status not in ("waiting", "computing"):
            break
        time.sleep(0.1)
    return time.perf_counter() - t0, status


def load_averages() -> str:
    """1/5/15-minute load averages: the machine is shared, so every figure is printed with them."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # never leave a server behind on a shared machine
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--home", type=Path, help="ETA311_HOME to reuse (trained into when it has no mlflow.db; default: a temp folder)"
    )
    parser.add_argument("--rows", type=int, default=30_000, help="synthetic rows to train on (without --home)")
    parser.add_argument("--rounds", type=int, default=100, help="boosting rounds per model (without --home)")
    parser.add_argument("--requests", type=int, default=1000, help="/estimate requests per load run")
    parser.add_argument("--limit-s", type=float, default=30.0, help="time limit per load run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve and score in-process with compiled boosters (the default of `eta311 serve`)",
    )
    parser.add_argument(
        "--in-process-only", action="store_true", help="no server: the in-process, language and explanation figures"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        home = args.home or Path(tmp) / "home"
        if not (home / "mlflow.db").is_file():
            t0 = time.perf_counter()
            train_home(home, args.rows, args.rounds)
            print(f"trained {args.rows:,} rows x {args.rounds} rounds in {time.perf_counter() - t0:.1f} s")
        # One LightGBM thread in-process, as in each server worker (set before lightgbm is first imported).
        os.environ["OMP_NUM_THREADS"] = "1"
        bodies = request_bodies(home, 1000)
        load_before = load_averages()
        reference = in_process(home, bodies, args.repeats, args.compile)
        if args.in_process_only:
            print(
                f"in-process Estimator: {reference['single_ms']:.3f} ms per single request, "
                f"{reference['batch_per_s']:,.0f} predictions/s in 1,000-row batches"
            )
            print_languages_and_explanations(reference, min(len(bodies), 1000))
            return
        port = free_port()
        process, ready_s = start_server(home, port, args.workers, args.compile)
        url = f"http://127.0.0.1:{port}"
        try:
            rss = worker_rss_mib(process.pid)
            dashboard_s, dashboard_status = wait_dashboard(url)
            results: dict[int, list[dict[str, float]]] = {c: [] for c in CONCURRENCY}
            asyncio.run(load(url, bodies, 8, 200, 10))  # warm-up
            for _ in range(args.repeats):
                for c in CONCURRENCY:
                    results[c].append(asyncio.run(load(url, bodies, c, args.requests, args.limit_s)))
            batch = [batch_rate(url, bodies, 10) for _ in range(args.repeats)]
            batch2 = [batch_rate(url, bodies, 10, clients=2) for _ in range(args.repeats)]
            rss_after = worker_rss_mib(process.pid)
        finally:
            stop_server(process)

    print(f"load averages (1/5/15 min): at start {load_before}; at end {load_averages()}; {os.cpu_count()} CPUs")
    engine = "compiled boosters" if args.compile else "LightGBM"
    print(f"startup to ready (eta311 serve -> /readyz 200): {ready_s:.1f} s, {args.workers} worker(s), {engine}")
    print(f"dashboard forecast after ready (background): {dashboard_s:.1f} s, status {dashboard_status}")
    print(
        f"worker RSS MiB: at ready {', '.join(f'{r:.0f}' for r in rss)}; after load "
        f"{', '.join(f'{r:.0f}' for r in rss_after)}"
    )
    print(
        f"in-process Estimator: {reference['single_ms']:.3f} ms per single request, "
        f"{reference['batch_per_s']:,.0f} predictions/s in 1,000-row batches"
    )
    print_languages_and_explanations(reference, min(len(bodies), 1000))
    print("/estimate over HTTP (medians of runs)      p50 ms   p99 ms    req/s  errors  requests")
    for c in CONCURRENCY:
        runs = results[c]
        p50 = statistics.median(r["p50_ms"] for r in runs)
        p99 = statistics.median(r["p99_ms"] for r in runs)
        rps = statistics.median(r["rps"] for r in runs)
        errors = sum(int(r["errors"]) for r in runs)
        n = sum(int(r["n"]) for r in runs)
        print(f"  concurrency {c:>2}                          {p50:7.2f}  {p99:7.2f}  {rps:7.0f}  {errors:6d}  {n:8d}")
    batch_per_s = statistics.median(b[0] for b in batch)
    batch_errors = sum(b[1] for b in batch)
    print(f"/estimate_batch: {batch_per_s:,.0f} predictions/s (1,000 per call, one client), errors {batch_errors}")
    print(
        f"/estimate_batch: {statistics.median(b[0] for b in batch2):,.0f} predictions/s (1,000 per call, two "
        f"clients), errors {sum(b[1] for b in batch2)}"
    )
    single_http = statistics.median(r["p50_ms"] for r in results[1])
    print(
        f"ratio HTTP / in-process: single request p50 {single_http / reference['single_ms']:.1f}x; "
        f"batch throughput in-process / HTTP {reference['batch_per_s'] / batch_per_s:.1f}x"
    )


if __name__ == "__main__":
    main()
