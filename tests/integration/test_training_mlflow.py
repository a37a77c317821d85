"""Train, register, promote, roll back and evaluate against a real MLflow store (sqlite in a temp folder,
and a real `mlflow server` subprocess), through the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from eta311.cli import app
from features.schema import write_records
from ingest.synth import synthesize
from tests.helpers import write_small_specs

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("data")
    first = synthesize(rows=30_000, seed=3, start="2024-01-01", days=75)
    later = synthesize(rows=12_000, seed=4, start="2024-03-16", days=30)
    paths = {"first": folder / "first.parquet", "later": folder / "later.parquet"}
    write_records(first, paths["first"])
    write_records(later, paths["later"])
    paths["spec"] = write_small_specs(folder / "spec")
    return paths


def run_cli(*args: str) -> dict | list | str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = result.stdout
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    return json.loads(text[start:]) if "--json" in args and start >= 0 else text


def test_train_promote_rollback_evaluate_on_sqlite_store(eta_home: Path, data_files: dict[str, Path]) -> None:
    import mlflow

    out = run_cli("train", str(data_files["first"]), "--spec", str(data_files["spec"]), "--json")
    assert out["versions"] == {"eta311-time-to-close": "1", "eta311-department": "1"}
    assert (eta_home / "mlflow.db").is_file()
    run = mlflow.get_run(out["run_id"])
    assert run.data.params["data_digest"] and run.data.params["split_test_start"]
    evaluation = out["evaluation"]  # the run's metrics are the evaluation `train` reported
    assert run.data.metrics["ttc_mae_hours"] == pytest.approx(evaluation["time_to_close"]["mae_hours"])
    assert run.data.metrics["dept_accuracy"] == pytest.approx(evaluation["department"]["accuracy"])
    artifacts = {a.path for a in mlflow.artifacts.list_artifacts(run_id=out["run_id"], artifact_path="plots")}
    assert {"plots/calibration.png", "plots/coverage_over_time.png", "plots/error_by_department.png"} <= artifacts
    assert str(eta_home) in run.info.artifact_uri  # artifacts live under ETA311_HOME

    first = run_cli("promote", "--json", "--no-compile")
    assert all(d["promoted"] and d["champion_after"] == "1" for d in first)

    # A deliberately worse challenger (one boosting round) must be refused, with the reason stated.
    weak = write_small_specs(data_files["spec"].parent / "weak", rounds=1)
    second = run_cli("train", str(data_files["first"]), "--spec", str(weak), "--json")
    assert second["versions"]["eta311-time-to-close"] == "2"
    refused = run_cli("promote", "--json", "--no-compile")
    time_decision = next(d for d in refused if d["model"] == "eta311-time-to-close")
    assert not time_decision["promoted"] and "mae_log" in time_decision["reason"]
    assert "loses to the reference" in time_decision["reason"]  # one round loses to the plain model too
    assert time_decision["challenger_metric"] > time_decision["champion_metric"]

    forced = run_cli("promote", "--force", "--json", "--no-compile")
    # Both are version 2 now: the time model by force; routing (the text router carries a one-round booster)
    # either by force or already by the rule.
    assert all(d["champion_after"] == "2" for d in forced)
    assert next(d for d in forced if d["model"] == "eta311-time-to-close")["promoted"]
    restored = run_cli("rollback", "--json")
    assert all(d["promoted"] and d["champion_after"] == "1" for d in restored)

    evaluation = run_cli("evaluate", str(data_files["later"]), "--alias", "champion", "--json")
    ttc, dept = evaluation["time_to_close"], evaluation["department"]
    for key in (
        "n",
        "mae_hours",
        "median_ae_hours",
        "coverage_p10_p90",
        "baseline_type_median_mae_hours",
        "baseline_type_median_median_ae_hours",
    ):
        assert key in ttc
    for key in ("n", "accuracy", "accuracy_without_type", "top3_accuracy", "baseline_type_majority_accuracy"):
        assert key in dept
    assert evaluation["model"]["time_to_close_version"] == "1"

    # The logged pyfunc loads from the registry and answers for a request with only some fields.
    model = mlflow.pyfunc.load_model("models:/eta311-time-to-close@champion")
    answer = model.predict(pd.DataFrame([{"request_type": "Bulky Items", "created_at": "2024-03-20T09:00:00-07:00"}]))
    assert answer["p10_hours"].iloc[0] <= answer["p50_hours"].iloc[0] <= answer["p90_hours"].iloc[0]


def test_promote_and_evaluate_without_models_say_what_to_do(eta_home: Path, data_files: dict[str, Path]) -> None:
    result = CliRunner().invoke(app, ["evaluate", str(data_files["later"]), "--json"])
    assert result.exit_code == 1 and "train and promote" in result.output
    decisions = run_cli("promote", "--json", "--no-compile")
    assert all(not d["promoted"] and "no challenger" in d["reason"] for d in decisions)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_train_against_a_real_mlflow_server(
    eta_home: Path, data_files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server_artifacts"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        cwd=tmp_path,  # anything the server writes relative to its directory stays in the test's folder
    )
    try:
        uri = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not start within 90 s")
        time.sleep(1.0)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        out = run_cli("train", str(data_files["first"]), "--spec", str(data_files["spec"]), "--json")
        assert out["versions"]["eta311-department"] == "1"
        assert not (eta_home / "mlflow.db").exists()  # everything went to the server
        assert any((tmp_path / "server_artifacts").rglob("bundle.json"))
        run_cli("promote", "--json", "--no-compile")
        evaluation = run_cli("evaluate", str(data_files["later"]), "--json")
        assert evaluation["time_to_close"]["n"] > 0
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.skipif(shutil.which("git") is None, reason="mlflow run needs git")
@pytest.mark.timeout(960)  # the subprocess's own 900 s limit (with its stderr) comes first
def test_mlflow_run_main_entry_point(eta_home: Path, tmp_path: Path, data_files: dict[str, Path]) -> None:
    """`mlflow run . -e main --env-manager local -P data=...` ingests, checks, trains, evaluates, promotes."""
    raw = tmp_path / "export.csv"
    from ingest.synth import write_la_csv

    write_la_csv(synthesize(rows=10_000, seed=9, start="2024-01-01", days=60), raw)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{eta_home / 'mlflow.db'}",
        "ETA311_HOME": str(eta_home),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GX_ANALYTICS_ENABLED": "false",
    }
    env.pop("MLFLOW_EXPERIMENT_ID", None)  # set by earlier in-process runs; the project run picks its own
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow",
            "run",
            str(ROOT),
            "-e",
            "main",
            "--env-manager",
            "local",
            "--experiment-name",
            "eta311",
            "-P",
            f"data={raw}",
            "-P",
            f"workdir={tmp_path / 'work'}",
            "-P",
            f"spec={data_files['spec']}",  # the small specs: this tests the workflow, not the models
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        # `mlflow run` creates the experiment in a new store with the artifact root ./mlruns: keep it here,
        # not in the repository
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert (tmp_path / "work" / "records.parquet").is_file()
    assert "promoted" in completed.stdout
