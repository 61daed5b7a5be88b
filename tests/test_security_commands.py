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
        texts = {p.name: (p.read_bytes().decode("latin-1") if p.suffix == ".png" else p.read_text("utf-8"))
                 for p in folder_or_files}
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
