"""No identifiers and no live formulas in what any command writes (docs/security.md, "No identifiers").

Each command that reads patient data runs on a study whose ids, names, MRNs, birth dates, notes and cells
hold identifiers and formula payloads; every file it writes (CSV, XLSX unzipped, JSON, HTML, SVG, PNG) and
what it prints are searched for each identifier, and every spreadsheet cell for a live formula.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from pofa.io.writers import is_live_formula
from test_security import BIRTHS, MRNS, NAMES, NOTES, _all_text, _spreadsheet_cells, hostile_study  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
#: Patient ids that identify (a name, an MRN) or attack (a formula), for the study given to each command.
HOSTILE_IDS = ("Mustermann-Erika", "MRN-99004711", "=HYPERLINK(\"http://evil.example\")", "Schmidt-Hans",
               "MRN-99004712")
_ISO_DATE = re.compile(r"(?<!\d)(19|20)\d\d-\d\d-\d\d(?!\d)")


def pofa_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pofa ARGS`` from this checkout; stdout and stderr are captured."""
    full = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "pofa", *args], capture_output=True, text=True, env=full,
                          timeout=900, cwd=cwd)


def rename_ids(study: Path, ids: tuple[str, ...] = HOSTILE_IDS) -> dict[str, str]:
    """Give the study's patients the hostile ids (in every table); returns old id -> new id."""
    patients = pd.read_csv(study / "patients.csv", dtype=str, keep_default_na=False)
    mapping = dict(zip(patients["patient_id"], ids, strict=False))
    for name in ("patients", "lesions", "failures"):
        path = study / f"{name}.csv"
        if path.is_file():
            t = pd.read_csv(path, dtype=str, keep_default_na=False)
            t["patient_id"] = t["patient_id"].map(lambda v: mapping.get(v, v))
            t.to_csv(path, index=False)
    return mapping


def study_dates(study: Path) -> set[str]:
    """Every calendar date (ISO) in the study's tables."""
    out: set[str] = set()
    for p in study.glob("*.csv"):
        out |= {m.group(0) for m in _ISO_DATE.finditer(p.read_text(encoding="utf-8"))}
    return out


def assert_clean(folder_or_files: Path | list[Path], log: str, identifiers: list[str]) -> None:
    """No identifier in any file or in ``log``; no live formula in any CSV or XLSX cell."""
    if isinstance(folder_or_files, Path):
        texts = _all_text(folder_or_files)
        sheets = [p for p in folder_or_files.rglob("*") if p.suffix in (".csv", ".xlsx")]
    else:
        texts = {}
        for p in folder_or_files:
            if p.suffix == ".xlsx":
                with zipfile.ZipFile(p) as z:
                    texts[p.name] = "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
            else:
                raw = p.read_bytes()
                texts[p.name] = raw.decode("latin-1") if p.suffix == ".png" else raw.decode("utf-8")
        sheets = [p for p in folder_or_files if p.suffix in (".csv", ".xlsx")]
    assert texts, "nothing written"
    for what in identifiers:
        assert what not in log, f"the command's output shows {what!r}"
        for name, text in texts.items():
            assert what not in text, f"{name} holds {what!r}"
    for path in sheets:
        live = [c for c in _spreadsheet_cells(path) if is_live_formula(c)]
        assert not live, f"{path.name}: {live[:3]}"


def hostile_identifiers(study: Path) -> list[str]:
    return [*HOSTILE_IDS, *NAMES, *MRNS, *BIRTHS, *NOTES, "hospital.example", *sorted(study_dates(study))]


# ------------------------------------------------------------------------------------------------------------
# pofa analyze MANIFEST.csv: the built study stays out of the results


@pytest.mark.slow
def test_analyze_manifest_output_holds_no_identifier(tmp_path: Path) -> None:
    from batch_data import make_study

    files = make_study(tmp_path / "images", 3, ids=HOSTILE_IDS[:3])
    patients = pd.read_csv(files.patients, dtype=str, keep_default_na=False)
    patients["patient_name"] = NAMES[:3]
    patients["mrn"] = MRNS[:3]
    patients["notes"] = NOTES[:3]
    patients.to_csv(files.patients, index=False)
    dates: set[str] = set()
    for p in (files.manifest, files.patients):
        dates |= {m.group(0) for m in _ISO_DATE.finditer(p.read_text(encoding="utf-8"))}
    assert len(dates) > 5
    out = tmp_path / "out"
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    run = pofa_cli("analyze", str(files.manifest), "--out", str(out), env={"TMPDIR": str(private_tmp)})
    assert run.returncode == 0, run.stderr
    assert (out / "report.html").is_file() and not (out / "study").exists()
    assert_clean(out, run.stdout + run.stderr, [*HOSTILE_IDS[:3], *NAMES[:3], *MRNS[:3], *NOTES[:3],
                                                *sorted(dates)])
    # the study was built in a private temporary folder, removed afterwards; nothing else was written
    assert list(private_tmp.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "out", "tmp"]
    with (out / "patients.csv").open(encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert "patient_seq" in header and "patient_id" not in header


# ------------------------------------------------------------------------------------------------------------
# pofa model fit and pofa predict on a study with hostile identifiers


@pytest.fixture(scope="module")
def hostile_cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A simulated cohort of 40 patients whose ids are names, MRNs and a formula, with identifying columns
    (name, MRN, birth date, notes, e-mail) and formula payloads; returns the folder and its identifiers."""
    root = tmp_path_factory.mktemp("hostile")
    study = root / "study"
    run = pofa_cli("simulate", "--out", str(study), "--patients", "40", "--seed", "5")
    assert run.returncode == 0, run.stderr
    (study / ".pofa-written.json").unlink()  # now the user's study, edited below
    n = len(pd.read_csv(study / "patients.csv", dtype=str))
    ids = tuple([*HOSTILE_IDS, *(f"Erika-Mustermann-{i:02d}" for i in range(n - len(HOSTILE_IDS)))])
    rename_ids(study, ids)
    p = pd.read_csv(study / "patients.csv", dtype=str, keep_default_na=False)
    p["patient_name"] = [NAMES[i % len(NAMES)] + f" {i}" for i in range(n)]
    p["mrn"] = [f"99{i:06d}" for i in range(n)]
    p["birth_date"] = [BIRTHS[i % len(BIRTHS)] for i in range(n)]
    p["notes"] = [NOTES[i % len(NOTES)] for i in range(n)]
    p["contact"] = [f"person{i}@hospital.example" for i in range(n)]
    p.to_csv(study / "patients.csv", index=False)
    les = pd.read_csv(study / "lesions.csv", dtype=str, keep_default_na=False)
    les.loc[0, "site"] = "=2+5"
    les.loc[1, "site"] = "@SUM(1+1)"
    les.to_csv(study / "lesions.csv", index=False)
    identifiers = [*ids, *(f"99{i:06d}" for i in range(n)), *NAMES, *BIRTHS, *NOTES, "hospital.example",
                   *sorted(study_dates(study))]
    return study, identifiers


@pytest.mark.slow
def test_model_fit_and_predict_write_no_identifier(hostile_cohort: tuple[Path, list[str]],
                                                   tmp_path: Path) -> None:
    study, identifiers = hostile_cohort
    out = tmp_path / "model"
    out.mkdir()
    logs = []
    run = pofa_cli("model", "fit", str(study), "--out", str(out / "model.json"), "--folds", "3")
    assert run.returncode == 0, run.stderr
    logs.append(run.stdout + run.stderr)
    for model, name in ((str(out / "model.json"), "scores.csv"), ("published", "published.csv")):
        run = pofa_cli("predict", model, str(study), "--out", str(out / name))
        assert run.returncode == 0, run.stderr
        logs.append(run.stdout + run.stderr)
    written = sorted(p.name for p in out.iterdir())
    assert written == ["model.calibration.png", "model.cv.csv", "model.json", "published.csv",
                       "published.manifest.json", "scores.csv", "scores.manifest.json"], written
    assert_clean(out, "\n".join(logs), identifiers)
    for name in ("model.cv.csv", "scores.csv", "published.csv"):
        header = next(csv.reader((out / name).open(encoding="utf-8")))
        assert header[0] == "patient_seq" and "patient_id" not in header, name
    # the formula payload of a site is there, neutralised
    assert "'@SUM(1+1)" in (out / "scores.csv").read_text(encoding="utf-8")


@pytest.mark.slow
def test_study_free_commands_write_no_formula(tmp_path: Path) -> None:
    """pofa template and pofa power read no patient data; what they write holds no live formula."""
    for args in (["template", "--out", str(tmp_path / "study.xlsx")],
                 ["template", "--csv", str(tmp_path / "csv")],
                 ["template", "--redcap", "--out", str(tmp_path / "dictionary.csv")],
                 ["power", "--or", "2", "--patients", "20", "--replicates", "20", "--no-progress",
                  "--out", str(tmp_path / "power.json")]):
        run = pofa_cli(*args)
        assert run.returncode == 0, (args, run.stderr)
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != ".pofa-written.json"]
    assert {"study.xlsx", "patients.csv", "dictionary.csv", "power.json"} <= {p.name for p in files}
    assert_clean(files, "", [])


# ------------------------------------------------------------------------------------------------------------
# Study folders pofa writes (build-study, batch, import redcap, match): formulas inert, read back as typed


def test_study_tables_pofa_writes_hold_no_live_formula_and_read_back(tmp_path: Path) -> None:
    from pofa.batch.study import csv_text
    from pofa.io.readers import read_csv_table, unquote_formula
    from pofa.schema import TableName

    typed = [["=HYPERLINK(\"http://evil.example\")", "2020-01-01", "@SUM(1+1)", "-1.5"],
             ["P2", "2020-01-02", "-cmd", "+3"], ["P3", "2020-01-03", "plain", "'quoted"]]
    text = csv_text(["patient_id", "index_date", "=header", "value"], typed)
    (tmp_path / "patients.csv").write_text(text, encoding="utf-8")
    cells = _spreadsheet_cells(tmp_path / "patients.csv")
    assert not [c for c in cells if is_live_formula(c)]
    assert "-1.5" in cells and "+3" in cells  # numbers stay numbers
    findings: list[object] = []
    table = read_csv_table(tmp_path / "patients.csv", TableName.PATIENTS, findings)  # type: ignore[arg-type]
    assert not findings and table is not None
    assert list(table.frame.columns) == ["patient_id", "index_date", "=header", "value"]
    assert table.frame.astype(str).to_numpy().tolist() == typed
    assert unquote_formula("'=1") == "=1" and unquote_formula("'x") == "'x"
    assert unquote_formula("'-2") == "'-2"  # a number is never quoted by pofa: the quote is the user's


@pytest.mark.slow
def test_killed_analyze_manifest_leaves_no_built_study_after_the_next_run(tmp_path: Path) -> None:
    """The study built from the images lives in a hidden folder beside --out, marked with the process; a run
    killed while building leaves it there until the next run into --out removes it."""
    import signal
    import time

    from batch_data import make_study

    files = make_study(tmp_path / "images", 3, ids=HOSTILE_IDS[:3])
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "pofa", "analyze", str(files.manifest), "--out", str(out)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if [p for p in tmp_path.glob(".out.build-*.partial/*") if p.name != ".pofa-partial"]:
            break  # the study is being built
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists() and list(tmp_path.glob(".out.build-*.partial"))
    run = pofa_cli("analyze", str(files.manifest), "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "out"], "the killed run's study is left"
