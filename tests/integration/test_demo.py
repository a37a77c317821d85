"""The README's main command, `eta311 demo`, run as a newcomer runs it: every stage, then a live service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
DEMO_TIMEOUT_S = 600


@pytest.mark.timeout(DEMO_TIMEOUT_S + 120)  # its own deadline (with the demo's log) comes first
def test_demo_runs_every_stage_then_serves_estimates_and_the_dashboard(eta_home: Path, tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "demo.log"
    command = [sys.executable, "-m", "eta311", "demo", "--rows", "12000", "--port", str(port)]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + DEMO_TIMEOUT_S
        ready = False
        while time.monotonic() < deadline and not ready:
            if process.poll() is not None:
                pytest.fail(f"demo exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                time.sleep(1)
        output = log_path.read_text()
        assert ready, f"service not ready in {DEMO_TIMEOUT_S} s:\n{output[-4000:]}"
        for number in range(1, 8):
            assert f"[{number}/7]" in output, output[-4000:]
        assert "rows read 12000 = accepted" in output
        assert "per-type median (static SLA)" in output and "P10-P90 coverage" in output
        assert "eta311-time-to-close: promoted" in output
        assert f"curl -s -X POST http://127.0.0.1:{port}/estimate" in output
        assert (eta_home / "reports" / "forecast" / "index.html").is_file()
        assert (eta_home / "data_docs" / "index.html").is_file()

        body = {"request_type": "Bulky Items", "source": "mobile_app", "latitude": 34.05, "longitude": -118.25}
        answer = httpx.post(f"http://127.0.0.1:{port}/estimate", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        estimate = answer.json()
        assert estimate["hours"]["p10"] <= estimate["hours"]["p50"] <= estimate["hours"]["p90"]
        assert estimate["model"] == {"time_to_close_version": "1", "department_version": "1"}
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
