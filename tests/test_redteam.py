"""The red-team corpus (tests/redteam/cases.json): every hostile or careless input with its expected outcome.

One parametrised test drives every case: formula payloads in cells and headers must come out neutralised in
the output tables; identifying columns must be warned about by ``pofa validate`` (and withheld); hostile
model.json files must be refused with a clear :class:`~pofa.errors.ModelFileError`; hostile study.toml files
must give a located ``bad-setting`` finding; hostile CSV bytes must be read with every record in its place or
give located findings; hostile imaging manifests must give a located error with nothing processed; a folder
given to ``--force`` must be replaced only when pofa wrote it and nobody changed it.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

import pofa
from pofa.analysis import run_analysis, write_outputs, write_tables
from pofa.cli import app
from pofa.data import bundled_study
from pofa.errors import ModelFileError
from pofa.io.writers import is_live_formula

CORPUS = json.loads((Path(__file__).parent / "redteam" / "cases.json").read_text(encoding="utf-8"))
CASES = {c["id"]: c for c in CORPUS["cases"]}


def _study(tmp_path: Path) -> Path:
    folder = tmp_path / "study"
    shutil.copytree(bundled_study("example"), folder)
    return folder


def _edit(folder: Path, table: str, fn: Any) -> None:
    frame = pd.read_csv(folder / f"{table}.csv", dtype=str, keep_default_na=False)
    frame = fn(frame)
    frame.to_csv(folder / f"{table}.csv", index=False)


def _cells(path: Path) -> list[str]:
    return [c for row in csv.reader(io.StringIO(path.read_text(encoding="utf-8"))) for c in row]


def _tables_only(folder: Path, out: Path) -> Path:
    report = pofa.load_study(folder).validate()
    assert not report.errors, [f"{f.location()}: {f.message}" for f in report.errors]
    return write_outputs(run_analysis(pofa.load_study(folder)), out, writers=(write_tables,))


def _model_text(case: dict[str, Any]) -> str:
    from pofa.riskmodel import published_model
    from pofa.riskmodel.fileio import dumps_model

    if "raw" in case:
        return str(case["raw"])
    if "nest" in case:
        n, b = int(case["nest"]), case["bracket"]
        return '{"a":' * n + "1" + "}" * n if b == "{" else "[" * n + "]" * n
    doc = json.loads(dumps_model(published_model()))
    *path, last = case["set"]
    node = doc
    for key in path:
        node = node[key]
    node[last] = 10 ** (int(case["int_digits"]) - 1) if "int_digits" in case else case["value"]
    return json.dumps(doc)


@pytest.mark.parametrize("case_id", list(CASES))
def test_redteam_case(case_id: str, tmp_path: Path) -> None:
    case = CASES[case_id]
    kind = case["kind"]
    if kind == "cell":
        folder = _study(tmp_path)

        def put(frame: pd.DataFrame) -> pd.DataFrame:
            frame.loc[case["row"], case["column"]] = case["value"]
            return frame

        _edit(folder, case["table"], put)
        out = _tables_only(folder, tmp_path / "out")
        cells = _cells(out / case["output"])
        written = case.get("written", "'" + case["value"])
        assert written in cells, "the payload is kept, neutralised"
        assert case["value"] not in cells and case["value"].strip() not in cells
        assert not [c for c in cells if is_live_formula(c)]
    elif kind == "header":
        folder = _study(tmp_path)
        _edit(folder, "patients", lambda f: f.assign(**{case["header"]: ["yes", "no"] * (len(f) // 2)
                                                        + ["yes"] * (len(f) % 2)}))
        out = _tables_only(folder, tmp_path / "out")
        header = next(csv.reader(io.StringIO((out / case["output"]).read_text(encoding="utf-8"))))
        assert "'" + case["header"] in header
        assert not [c for c in header if is_live_formula(c)]
    elif kind == "identifying":
        folder = _study(tmp_path)
        _edit(folder, "patients", lambda f: f.assign(**{case["column"]: case["values"][:len(f)]}))
        report = pofa.load_study(folder).validate()
        found = [f for f in report.findings if f.code == "identifying-column"]
        if case["category"] is None:
            assert not found, [f.message for f in found]
            return
        [f] = found
        column = case["column"].lower()
        assert (f.file, f.column, f.severity.value) == ("patients.csv", column, "warning")
        assert case["category"] in f.message and f"[covariates.{column}]" in f.hint
        out = _tables_only(folder, tmp_path / "out")
        text = (out / "patients.csv").read_text(encoding="utf-8")
        assert column not in next(csv.reader(io.StringIO(text)))
        for v in case["values"]:
            assert v not in _cells(out / "patients.csv")
        withheld = json.loads((out / "results.json").read_text("utf-8"))["privacy"]["withheld_columns"]
        assert [w["column"] for w in withheld] == [column]
    elif kind == "model_json":
        from pofa.riskmodel.fileio import load_model

        path = tmp_path / "model.json"
        path.write_text(_model_text(case), encoding="utf-8")
        with pytest.raises(ModelFileError, match=case["match"]):
            load_model(path)
        # the command: a clear error and exit code 2, nothing written
        lesions = tmp_path / "lesions.csv"
        lesions.write_text("patient_id,lesion_id,diameter_cm,suvmax,extranodal\nP1,L1,3,4,no\n", "utf-8")
        res = CliRunner().invoke(app, ["predict", str(path), str(lesions), "--out", str(tmp_path / "s.csv")])
        assert res.exit_code == 2 and not isinstance(res.exception, ModelFileError), res.output
        assert not (tmp_path / "s.csv").exists()
    elif kind == "study_toml":
        folder = _study(tmp_path)
        if "bytes_hex" in case:
            (folder / "study.toml").write_bytes(bytes.fromhex(case["bytes_hex"]))
        elif "nest" in case:
            n = int(case["nest"])
            (folder / "study.toml").write_text("[study]\nx = " + "[" * n + "]" * n + "\n", encoding="utf-8")
        else:
            (folder / "study.toml").write_text(case["text"], encoding="utf-8")
        report = pofa.load_study(folder).validate()
        bad = [f for f in report.findings if f.code == "bad-setting"]
        if case.get("ok"):
            assert not bad
            return
        assert bad and all(f.file == "study.toml" and f.message and f.hint for f in bad)
        assert case["column"] in {f.column for f in bad}
        res = CliRunner().invoke(app, ["analyze", str(folder), "--out", str(tmp_path / "out")])
        assert res.exit_code == 2 and "study.toml" in res.output and not (tmp_path / "out").exists()
    elif kind == "csv_bytes":
        _csv_case(case, tmp_path)
    elif kind == "imaging_manifest":
        _manifest_case(case, tmp_path)
    elif kind == "output_folder":
        _folder_case(case, tmp_path)
    else:  # pragma: no cover - a case of an unknown kind is an error of the corpus
        pytest.fail(f"unknown kind {kind!r}")


def _csv_case(case: dict[str, Any], tmp_path: Path) -> None:
    """patients.csv of these bytes: read by both CSV readers to those columns, or to those findings."""
    from pofa.io import readers
    from pofa.schema import TableName

    path = tmp_path / "patients.csv"
    path.write_bytes(case["text"].encode("utf-8"))
    old = readers.FAST_CSV_BYTES
    try:
        for fast in (False, True):
            readers.FAST_CSV_BYTES = 0 if fast else 1 << 40
            findings: list[Any] = []
            table = readers.read_csv_table(path, TableName.PATIENTS, findings)
            located = [[str(f.code), f.row, f.column] for f in findings]
            if "columns" in case:
                assert not located and table is not None, located
                assert table.frame.to_dict("list") == case["columns"]
                assert list(table.frame.index) == list(range(2, 2 + len(table.frame)))
            else:
                assert located == case["findings"], (fast, located)
    finally:
        readers.FAST_CSV_BYTES = old


def _manifest_case(case: dict[str, Any], tmp_path: Path) -> None:
    """An imaging manifest: read_manifest gives the located error; build-study processes nothing (exit 2)."""
    import os

    from typer.testing import CliRunner

    from pofa.batch.manifest import read_manifest
    from pofa.cli import app

    (tmp_path / "patients.csv").write_text(
        "patient_id,index_date,last_followup_date,progression_date,death_date\nP1,2020-01-01,2020-06-01,,\n",
        encoding="utf-8")
    if "fifo" in case:
        if not hasattr(os, "mkfifo"):
            pytest.skip("needs FIFOs")
        os.mkfifo(tmp_path / case["fifo"])
    manifest = tmp_path / "manifest.csv"
    manifest.write_bytes(case["text"].encode("utf-8"))
    m = read_manifest(manifest)
    assert not m.ok
    assert case["finding"] in [[str(f.code), f.row, f.column] for f in m.report.errors]
    pytest.importorskip("SimpleITK")
    res = CliRunner().invoke(app, ["build-study", str(manifest), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and not (tmp_path / "out").exists(), res.output


def _folder_case(case: dict[str, Any], tmp_path: Path) -> None:
    """A folder given to --force: replaced only when pofa wrote it, unchanged; else refused, untouched."""
    from pofa.atomic import output_dir
    from pofa.errors import PofaError

    target = tmp_path / "out"
    if case.get("record"):
        with output_dir(target) as tmp:
            for name, text in case["files"].items():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_text(text, encoding="utf-8")
    else:
        for name, text in case["files"].items():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_text(text, encoding="utf-8")
    for name, text in case.get("edit", {}).items():
        (target / name).write_text(text, encoding="utf-8")
    if "symlink" in case:
        (target / case["symlink"]).symlink_to(tmp_path)
    before = {p.relative_to(target).as_posix(): p.read_bytes() for p in target.rglob("*")
              if p.is_file() and not p.is_symlink()}
    if case["replaced"]:
        with output_dir(target, force=True) as tmp:
            (tmp / "new.csv").write_text("new", encoding="utf-8")
        assert (target / "new.csv").is_file() and not (target / "a.csv").exists()
    else:
        with pytest.raises(PofaError, match="not written by pofa"), output_dir(target, force=True):
            pass
        after = {p.relative_to(target).as_posix(): p.read_bytes() for p in target.rglob("*")
                 if p.is_file() and not p.is_symlink()}
        assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_corpus_covers_every_kind() -> None:
    kinds = {c["kind"] for c in CORPUS["cases"]}
    assert kinds == {"cell", "header", "identifying", "model_json", "study_toml", "csv_bytes",
                     "imaging_manifest", "output_folder"}
    assert len(CASES) == len(CORPUS["cases"]), "case ids are unique"
