"""`eta311 db upgrade` and `eta311 sync` through the CLI on a real SQLite ledger in a throwaway ETA311_HOME:
a city's export and canonical Parquet upserted, counts that reconcile (quarantine included), the same export
twice unchanged, a later export's closures as updates, and a clear error before `db upgrade`."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from eta311.cli import app
from features.schema import write_records
from ingest.synth import synthesize, write_la_csv


def _run(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _json(*args: str) -> dict:
    result = _run(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.find("{") :])


def test_sync_before_upgrade_names_the_command(eta_home, tmp_path) -> None:
    data = tmp_path / "records.parquet"
    write_records(synthesize(rows=200, seed=1, start="2024-01-01", days=5), data)
    result = _run("sync", str(data))
    assert result.exit_code == 1
    assert "eta311 db upgrade" in result.output


def test_sync_export_then_parquet_reconciles_and_is_idempotent(eta_home, tmp_path) -> None:
    upgraded = _json("db", "upgrade", "--json")
    assert upgraded["revision_before"] is None and upgraded["revision"]
    assert (eta_home / "ledger.db").is_file()

    full = synthesize(rows=4000, seed=2, start="2024-01-01", days=30)
    as_of = pd.Timestamp("2024-01-20", tz="UTC")
    early = full[full["created_at"] < as_of].copy()
    late = early["closed_at"] > as_of
    early.loc[late, "status"], early.loc[late, "closed_at"] = "open", pd.NaT
    export = tmp_path / "export.csv"
    write_la_csv(early, export)

    first = _json("sync", str(export), "--json")
    assert first["read"] == len(early)
    assert first["read"] == first["inserted"] + first["updated"] + first["unchanged"] + first["quarantined"]
    assert first["quarantined"] == sum(first["by_reason"].values()) > 0  # the synthetic city has data traps
    assert first["updated"] == 0 and first["unchanged"] == 0

    again = _json("sync", str(export), "--json")
    assert (again["inserted"], again["updated"], again["events"]) == (0, 0, 0)
    assert again["unchanged"] == first["inserted"]

    # Later the city's canonical records know the outcomes: the closures after as_of are updates.
    parquet = tmp_path / "records.parquet"
    write_records(full, parquet)
    later = _json("sync", str(parquet), "--json")
    assert later["read"] == len(full)
    assert later["read"] == later["inserted"] + later["updated"] + later["unchanged"] + later["quarantined"]
    assert later["updated"] > 0 and later["events"] == later["updated"]
    assert later["inserted"] > 0  # the requests created after as_of

    text = _run("sync", str(parquet))
    assert text.exit_code == 0 and "= inserted 0 + updated 0 + unchanged" in text.output


def test_a_missing_input_is_a_clear_error(eta_home, tmp_path) -> None:
    _json("db", "upgrade", "--json")
    result = _run("sync", str(tmp_path / "nope.csv"))
    assert result.exit_code == 1 and "nope.csv: no such file" in result.output


def test_a_read_only_ledger_is_a_clear_error_and_nothing_is_written(eta_home, tmp_path, monkeypatch) -> None:
    _json("db", "upgrade", "--json")
    data = tmp_path / "records.parquet"
    write_records(synthesize(rows=300, seed=4, start="2024-01-01", days=5), data)
    monkeypatch.setenv("ETA311_DATABASE_URL", f"sqlite:///file:{eta_home / 'ledger.db'}?mode=ro&uri=true")
    result = _run("sync", str(data))
    assert result.exit_code == 1 and "nothing was written" in result.output and "readonly" in result.output
    monkeypatch.delenv("ETA311_DATABASE_URL")
    assert _json("sync", str(data), "--json")["unchanged"] == 0  # the refused sync left nothing behind
