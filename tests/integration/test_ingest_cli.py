"""`eta311 ingest`, `check` and `synth` through the real CLI: reconciliation, quarantine, exit codes, inputs
untouched, determinism. The demo has its own test (tests/integration/test_demo.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from eta311.cli import app
from features.schema import read_records

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_ingest_reconciles_quarantines_and_never_touches_inputs(tmp_path: Path, eta_home: Path) -> None:
    inputs = sorted((FIXTURES / "la").glob("*.csv")) + sorted((FIXTURES / "nyc").glob("*.csv"))
    before = {p: digest(p) for p in inputs}
    out = tmp_path / "records.parquet"
    result = invoke("ingest", *map(str, inputs), "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["rows_read"] == summary["accepted"] + summary["quarantined"]
    assert summary["quarantined"] == sum(summary["by_reason"].values())
    assert sum(f["rows"] for f in summary["files"]) == summary["rows_read"]
    quarantine = pd.read_parquet(summary["quarantine"])
    assert len(read_records(out)) == summary["accepted"] and len(quarantine) == summary["quarantined"]
    assert quarantine["reason"].notna().all() and quarantine["raw"].str.startswith("{").all()
    assert {p: digest(p) for p in inputs} == before  # inputs are only read

    again = tmp_path / "again.parquet"
    assert invoke("ingest", *map(str, inputs), "--out", str(again)).exit_code == 0
    assert digest(out) == digest(again)  # same input, same bytes


def test_ingest_fails_clearly_on_unknown_format_and_missing_columns(tmp_path: Path) -> None:
    unknown = tmp_path / "weird.csv"
    unknown.write_text("a,b,c\n1,2,3\n")
    result = invoke("ingest", str(unknown), "--out", str(tmp_path / "o.parquet"))
    assert result.exit_code == 1 and "weird.csv" in result.output and "matches no known format" in result.output

    source = FIXTURES / "nyc" / next(p.name for p in (FIXTURES / "nyc").glob("*.csv"))
    frame = pd.read_csv(source, dtype=str)
    created = next(c for c in frame.columns if c.lower().replace(" ", "_") == "created_date")
    broken = tmp_path / "no_created.csv"
    frame.drop(columns=[created]).to_csv(broken, index=False)
    result = invoke("ingest", str(broken), "--out", str(tmp_path / "o.parquet"), "--format", "nyc")
    assert result.exit_code == 1 and "no_created.csv" in result.output and "missing required column" in result.output
