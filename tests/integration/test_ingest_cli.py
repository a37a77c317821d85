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


def _synthetic_records(path: Path, rows: int = 1500) -> pd.DataFrame:
    from features.schema import write_records
    from ingest.synth import synthesize

    records = synthesize(rows=rows, seed=3, start="2024-01-01", days=20)
    write_records(records, path)
    return read_records(path)


def test_ingest_accepts_canonical_parquet_by_the_same_rules(tmp_path: Path, eta_home: Path) -> None:
    """What `eta311 synth` (or an earlier ingest) wrote goes back through ingest: same checks, same quarantine."""
    source = tmp_path / "synth.parquet"
    original = _synthetic_records(source)
    original.loc[0, "closed_at"] = original.loc[0, "created_at"] - pd.Timedelta(hours=1)
    from features.schema import write_records

    write_records(original, source)
    before = digest(source)
    out = tmp_path / "records.parquet"
    result = invoke("ingest", str(source), "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["files"][0]["format"] == "canonical"
    assert summary["rows_read"] == len(original) == summary["accepted"] + summary["quarantined"]
    assert summary["by_reason"]["closed_before_created"] >= 1
    quarantine = pd.read_parquet(summary["quarantine"])
    assert 0 in quarantine["source_row"].tolist()
    assert json.loads(quarantine["raw"].iloc[0])["source_format"] == "synth"  # the earlier provenance is kept

    records = read_records(out)
    kept = original.drop(index=quarantine["source_row"].tolist()).reset_index(drop=True)
    values = [c for c in records.columns if c not in ("source_format", "source_file", "source_row")]
    pd.testing.assert_frame_equal(records[values], kept[values])  # every value read back exactly
    assert set(records["source_format"]) == {"canonical"} and set(records["source_file"]) == {"synth.parquet"}
    assert digest(source) == before

    again = tmp_path / "again.parquet"
    result = invoke("ingest", str(out), "--out", str(again), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout[result.stdout.index("{") :])["quarantined"] == 0
    pd.testing.assert_frame_equal(read_records(again)[values], records[values])


def test_a_city_export_saved_as_parquet_reads_like_its_csv(tmp_path: Path, eta_home: Path) -> None:
    csv_path = FIXTURES / "nyc" / "nyc311_2013-12-25.csv"
    parquet_path = tmp_path / "nyc311_2013-12-25.parquet"
    pd.read_csv(csv_path, dtype=str, keep_default_na=False, na_values=[""]).to_parquet(parquet_path)
    outs = []
    for number, path in enumerate((csv_path, parquet_path)):
        out = tmp_path / f"out{number}.parquet"
        result = invoke("ingest", str(path), "--out", str(out))
        assert result.exit_code == 0, result.output
        outs.append(read_records(out).drop(columns=["source_file"]))
    pd.testing.assert_frame_equal(*outs)


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    """Files a user might hand over by mistake."""
    (tmp_path / "folder").mkdir()
    files = {
        "records": tmp_path / "records.parquet",
        "empty_records": tmp_path / "empty.parquet",
        "no_status": tmp_path / "no_status.parquet",
        "fake_parquet": tmp_path / "fake.parquet",
        "numbers_json": tmp_path / "numbers.json",
        "targets_list": tmp_path / "targets.json",
        "folder": tmp_path / "folder",
    }
    from features.schema import write_records

    records = _synthetic_records(files["records"], rows=400)
    write_records(records.iloc[:0], files["empty_records"])
    records.drop(columns=["status"]).to_parquet(files["no_status"])
    files["fake_parquet"].write_text("request_id,city\n1,la\n")
    files["numbers_json"].write_text("[1, 2, 3]")
    files["targets_list"].write_text('["Graffiti Removal", 3]')
    return files


# (arguments, with {name} standing for a file of _bad_inputs; exit code; words the one-line message holds)
BAD_INPUTS = [
    (["snapshot", "{records}", "--as-of", "2000-01-01", "--out", "{folder}/s.parquet"], 1, "no requests created"),
    (["snapshot", "{records}", "--as-of", "yesterday-ish"], 2, "--as-of"),
    (["snapshot", "{empty_records}"], 1, "no records (0 rows)"),
    (["train", "{empty_records}"], 1, "no records (0 rows)"),
    (["train", "{no_status}"], 1, "missing column(s) status"),
    (["train", "{records}", "--test-start", "2030-01-01"], 1, "--test-start 2030-01-01"),
    (["evaluate", "{no_status}"], 1, "missing column(s) status"),
    (["forecast", "{records}", "--out", "{folder}/f", "--targets", "{targets_list}"], 2, "--targets"),
    (["forecast", "{empty_records}", "--out", "{folder}/f"], 1, "no records (0 rows)"),
    (["ingest", "{fake_parquet}", "--out", "{folder}/o.parquet"], 1, "cannot be read as parquet"),
    (["ingest", "{numbers_json}", "--out", "{folder}/o.parquet"], 1, "list of request objects"),
    (["ingest", "{records}", "--out", "{folder}"], 2, "cannot write"),
    (["synth", "--rows", "20", "--days", "2", "--out", "{folder}"], 2, "cannot write"),
]


def test_bad_input_gets_one_line_and_an_exit_code_never_a_traceback(tmp_path: Path, eta_home: Path) -> None:
    files = {name: str(path) for name, path in _bad_inputs(tmp_path).items()}
    for arguments, code, words in BAD_INPUTS:
        args = [a.format(**files) for a in arguments]
        result = invoke(*args)
        assert isinstance(result.exception, SystemExit | None), (args, repr(result.exception))
        assert result.exit_code == code, (args, result.output)
        errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and words in errors[0], (args, result.output)
        assert "Traceback" not in result.output
