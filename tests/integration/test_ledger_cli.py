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


def test_train_from_the_ledger_learns_what_the_ledger_holds(eta_home, tmp_path) -> None:
    """`eta311 train --from-ledger`: the synced records, read back as they went in, trained and logged with
    the ledger as the data source; --since narrows them; DATA and --from-ledger together are a usage error."""
    import mlflow

    from ledger.records import read_records
    from ledger.store import make_engine
    from tests.helpers import write_small_specs

    _json("db", "upgrade", "--json")
    records = synthesize(rows=3000, seed=4, start="2024-01-01", days=30)
    parquet = tmp_path / "records.parquet"
    write_records(records, parquet)
    synced = _json("sync", str(parquet), "--json")
    assert synced["inserted"] + synced["quarantined"] == len(records)  # the synthetic city has data traps

    back = read_records(make_engine(f"sqlite:///{eta_home / 'ledger.db'}"))
    assert len(back) == synced["inserted"]
    keys = ["city", "request_id"]
    once = records[~records.duplicated(keys, keep=False)]  # ids the synthetic export repeats are left aside
    expected = once[once["request_id"].isin(back["request_id"])].sort_values(keys, ignore_index=True)
    back_once = back[back["request_id"].isin(expected["request_id"])]
    pd.testing.assert_frame_equal(
        back_once.sort_values(keys, ignore_index=True).drop(columns=["source_file"]),
        expected.drop(columns=["source_file"]),
        check_dtype=False,
    )
    since = pd.Timestamp("2024-01-15", tz="UTC")
    assert len(read_records(make_engine(f"sqlite:///{eta_home / 'ledger.db'}"), since)) == int(
        (back["created_at"] >= since).sum()
    )

    specs = write_small_specs(tmp_path / "spec", rounds=5)
    out = _json("train", "--from-ledger", "--spec", str(specs), "--json")
    assert out["rows"] == len(back)
    run = mlflow.get_run(out["run_id"])
    assert run.data.params["data_path"].startswith("sqlite:///") and run.data.params["data_path"].endswith("ledger.db")

    both = _run("train", str(parquet), "--from-ledger")
    assert both.exit_code == 2 and "--from-ledger" in both.output
    stray = _run("train", str(parquet), "--since", "2024-01-01")
    assert stray.exit_code == 2 and "--since" in stray.output
