"""The imaging manifest reader: every problem is a finding with file, row and column; content hashes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from pofa.batch.cache import folder_name, patient_key, sha256_path
from pofa.batch.manifest import (
    MANIFEST_CODES,
    ManifestCode,
    ManifestError,
    Role,
    canonical_threshold,
    load_manifest,
    read_manifest,
)
from pofa.findings import Severity

MANIFEST = """\
patient_id,role,scan_date,pet,ct,mask,organs,threshold,transform,comment
P1,baseline,2019-01-01,a.nii.gz,,,org.nii.gz,suv4,,
P1,failure,2019-06-01,missing.nii.gz,,,org.nii.gz,suv4,,
P2,baselin,2019-01-02,a.nii.gz,,,org.nii.gz,suv4,,
P3,baseline,2019-13-40,a.nii.gz,,,org.nii.gz,suv4,,
,baseline,2019-01-03,a.nii.gz,,,org.nii.gz,suv4,,
P4,baseline,2019-01-03,a.nii.gz,,m.nii.gz,org.nii.gz,suv4,,
P5,baseline,2019-01-03,a.nii.gz,,,,,,
P6,baseline,2019-01-03,a.nii.gz,,,org.nii.gz,suv99x,,
P7,failure,2019-05-03,a.nii.gz,,,org.nii.gz,suv4,,
P8,baseline,2019-01-03,a.nii.gz,,,org.nii.gz,suv4,,
P8,baseline,2019-01-04,a.nii.gz,,,org.nii.gz,suv4,,
P9,baseline,2019-02-03,a.nii.gz,,,org.nii.gz,suv4,t.tfm,
P10,baseline,2019-03-03,a.nii.gz,,,org.nii.gz,suv4,,
P10,failure,2019-02-03,a.nii.gz,,,org.nii.gz,suv4,,
X99,baseline,2019-03-03,a.nii.gz,,,org.nii.gz,suv4,,
P8,failure,2019-04-01,a.nii.gz,,,org.nii.gz,percist,,
P12,baseline,2019-01-03,a.nii.gz,,,,percist,,
P13,baseline,2019-01-03,a.nii.gz,,,org.nii.gz,suv4,,,surplus
P14,baseline,2019-01-03,a.nii.gz,,,org.nii.gz,suv4,,
P14,failure,2019-05-01,a.nii.gz,,,org.nii.gz,suv4,,
P14,failure,2019-05-01,a.nii.gz,,,org.nii.gz,suv4,,
P15,baseline,2019-01-03,a.nii.gz,,,org.nii.gz,suv4,,
P15,failure,2019-04-01,a.nii.gz,,,org.nii.gz,suv4,,
"""

PATIENTS = """\
patient_id,index_date,last_followup_date,progression_date,death_date
P1,2019-01-10,2019-12-01,2019-06-01,
P2,2019-01-10,2019-12-01,,
P3,2019-01-10,2019-12-01,,
P4,2019-01-10,2019-12-01,,
P5,2019-01-10,2019-12-01,,
P6,2019-01-10,2019-12-01,,
P7,2019-01-10,2019-12-01,2019-05-03,
P8,2019-01-10,2019-12-01,,
P9,2019-01-10,2019-12-01,,
P10,2019-03-10,2019-12-01,2019-02-01,
P11,2019-01-10,2019-12-1,,
P12,2019-01-10,2019-12-01,,
P13,2019-01-10,2019-12-01,,
P14,2019-01-10,2019-12-01,2019-05-01,
P15,2019-01-10,2019-12-01,2019-05-01,
"""

#: (code, file, row, column) of every finding the two files above must produce, and nothing else.
EXPECTED = {
    ("unknown-column", "manifest.csv", 1, "comment"),
    ("missing-image", "manifest.csv", 3, "pet"),
    ("bad-role", "manifest.csv", 4, "role"),
    ("bad-date", "manifest.csv", 5, "scan_date"),
    ("blank-cell", "manifest.csv", 6, "patient_id"),
    ("mask-and-threshold", "manifest.csv", 7, "threshold"),
    ("no-segmentation", "manifest.csv", 8, "mask"),
    ("no-organ-map", "manifest.csv", 8, "organs"),
    ("bad-threshold", "manifest.csv", 9, "threshold"),
    ("no-baseline", "manifest.csv", 10, "role"),
    ("duplicate-baseline", "manifest.csv", 12, "role"),
    ("transform-on-baseline", "manifest.csv", 13, "transform"),
    ("failure-before-baseline", "manifest.csv", 15, "scan_date"),
    ("unknown-patient", "manifest.csv", 16, "patient_id"),
    ("failure-without-progression", "manifest.csv", 17, "role"),
    ("percist-without-organs", "manifest.csv", 18, "organs"),
    ("no-organ-map", "manifest.csv", 18, "organs"),
    ("extra-cells", "manifest.csv", 19, None),
    ("duplicate-scan", "manifest.csv", 22, "scan_date"),
    ("failure-before-progression", "manifest.csv", 24, "scan_date"),
    # the patients table is checked with the study format's own rules
    ("before-index", "patients.csv", 11, "progression_date"),
    ("bad-date", "patients.csv", 12, "last_followup_date"),
    ("not-imaged", "patients.csv", 12, "patient_id"),
}


def _write(folder: Path, manifest: str = MANIFEST, patients: str | None = PATIENTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("a.nii.gz", "m.nii.gz", "org.nii.gz", "t.tfm"):
        (folder / name).write_bytes(b"x")
    (folder / "manifest.csv").write_text(manifest, encoding="utf-8")
    if patients is not None:
        (folder / "patients.csv").write_text(patients, encoding="utf-8")
    return folder / "manifest.csv"


def test_every_problem_is_a_finding_with_file_row_column(tmp_path: Path) -> None:
    m = read_manifest(_write(tmp_path))
    got = {(str(f.code), f.file, f.row, f.column) for f in m.report.findings}
    assert got == EXPECTED
    for f in m.report.findings:
        assert f.message and f.hint
        if f.file == "manifest.csv":
            assert f.severity is MANIFEST_CODES[ManifestCode(f.code)][0]
    assert not m.ok
    with pytest.raises(ManifestError) as err:
        load_manifest(tmp_path / "manifest.csv")
    assert err.value.report.findings == m.report.findings
    assert "manifest.csv" in str(err.value)
    with pytest.raises(ManifestError):
        m.patients()


def test_valid_manifest_groups_scans_by_patient(tmp_path: Path) -> None:
    text = ("patient_id;role;scan_date;pet;organs\n"  # semicolons (European Excel) are recognised
            "1.10;failure;2019-07-01;a.nii.gz;org.nii.gz\n"
            "1.10;baseline;2019-01-01;a.nii.gz;org.nii.gz\n"
            "1.10;failure;2019-06-01;a.nii.gz;org.nii.gz\n"
            "1.1;baseline;2019-01-02;a.nii.gz;org.nii.gz\n")
    patients = ("patient_id,index_date,last_followup_date,progression_date,death_date\n"
                "1.10,2019-01-10,2019-12-01,2019-06-01,\n1.1,2019-01-10,2019-12-01,,\n")
    m = load_manifest(_write(tmp_path, text, patients), threshold="41")
    assert m.report.findings == ()
    (p110, p11) = m.patients()
    assert (p110.patient_id, p11.patient_id) == ("1.10", "1.1")  # ids are text: 1.10 is not 1.1
    assert [s.scan_date for s in p110.failures] == ["2019-06-01", "2019-07-01"]  # ordered by date
    assert [s.row for s in p110.scans] == [3, 4, 2]
    assert p110.baseline.role is Role.BASELINE
    assert p110.baseline.threshold == "41pct"  # the default threshold ("41" is the alias of 41pct)
    assert p110.baseline.pet == str(tmp_path / "a.nii.gz")  # relative to the manifest's folder
    assert m.clinical["patient_id"].tolist() == ["1.10", "1.1"]


def test_missing_patients_table_and_missing_columns(tmp_path: Path) -> None:
    m = read_manifest(_write(tmp_path, "patient_id,role,pet\nP1,baseline,a.nii.gz\n", patients=None))
    got = {(str(f.code), f.file, f.row, f.column) for f in m.report.findings}
    assert got == {("missing-table", "patients.csv", None, None),
                   ("missing-column", "manifest.csv", 1, "scan_date")}
    m = read_manifest(tmp_path / "nowhere.csv")
    assert {(str(f.code), f.file) for f in m.report.errors} == {("unreadable-file", "nowhere.csv"),
                                                                ("missing-table", "patients.csv")}


def test_bad_default_threshold_and_empty_manifest(tmp_path: Path) -> None:
    path = _write(tmp_path, "patient_id,role,scan_date,pet\n", PATIENTS.splitlines()[0] + "\n")
    m = read_manifest(path, threshold="hot")
    assert {(str(f.code), f.file) for f in m.report.errors} == {("bad-threshold", "default threshold"),
                                                                ("empty-file", "manifest.csv")}


def test_canonical_threshold() -> None:
    assert canonical_threshold("SUV4") == "suv4"
    assert canonical_threshold("41%") == "41pct"
    assert canonical_threshold(3) == "3.0"
    assert canonical_threshold("3") == "3.0"
    assert canonical_threshold("41.0") == "41.0"  # a fixed SUV of 41, not the alias
    assert canonical_threshold(canonical_threshold("2.5")) == "2.5"


# ---------------------------------------------------------------------------------------------- hashing
def test_sha256_of_file_and_folder(tmp_path: Path) -> None:
    f = tmp_path / "a.bin"
    f.write_bytes(b"abc")
    assert sha256_path(f) == hashlib.sha256(b"abc").hexdigest()
    d = tmp_path / "series"
    (d / "sub").mkdir(parents=True)
    (d / "2.dcm").write_bytes(b"two")
    (d / "10.dcm").write_bytes(b"ten")
    (d / "sub" / "1.dcm").write_bytes(b"one")
    lines = "".join(sorted(f"{hashlib.sha256(data).hexdigest()}\n" for data in (b"two", b"ten", b"one")))
    assert sha256_path(d) == hashlib.sha256(lines.encode()).hexdigest()
    before = sha256_path(d)
    (d / "sub" / "1.dcm").rename(d / "renamed.dcm")  # names and folders do not matter: the content does
    assert sha256_path(d) == before
    os.utime(d / "2.dcm", (0, 0))  # times do not matter
    assert sha256_path(d) == before
    (d / "2.dcm").write_bytes(b"tw0")  # one byte does
    assert sha256_path(d) != before
    with pytest.raises(FileNotFoundError):
        sha256_path(tmp_path / "none")


def test_patient_key_depends_on_content_and_settings_not_on_paths(tmp_path: Path) -> None:
    text = "patient_id,role,scan_date,pet,organs,threshold\nP1,baseline,2019-01-01,a.nii.gz,org.nii.gz,suv4\n"
    patients = ("patient_id,index_date,last_followup_date,progression_date,death_date\n"
                "P1,2019-01-10,2019-12-01,,\n")
    p1 = load_manifest(_write(tmp_path / "one", text, patients)).patients()[0]
    p2 = load_manifest(_write(tmp_path / "two", text, patients)).patients()[0]
    assert p1.baseline.pet != p2.baseline.pet
    assert patient_key(p1, {"x": 1}) == patient_key(p2, {"x": 1})  # same bytes elsewhere: same key
    assert patient_key(p1, {"x": 1}) != patient_key(p1, {"x": 2})  # settings count
    (tmp_path / "two" / "org.nii.gz").write_bytes(b"y")
    assert patient_key(p1, {"x": 1}) != patient_key(p2, {"x": 1})  # content counts


def test_folder_names_are_safe_and_distinct() -> None:
    ids = ["P1", "p1", "a/b", "a_b", "..", "", "1.10", "1.1", "ä ö"]
    names = [folder_name(i) for i in ids]
    assert len(set(names)) == len(ids)
    for n in names:
        assert "/" not in n and not n.startswith(".") and n.isascii()


def test_finding_severities_are_fixed() -> None:
    assert MANIFEST_CODES[ManifestCode.NO_ORGAN_MAP][0] is Severity.WARNING
    assert all(code in MANIFEST_CODES for code in ManifestCode)


def test_docs_list_every_manifest_code_with_its_severity() -> None:
    import re

    text = (Path(__file__).resolve().parents[1] / "docs" / "batch.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| `([a-z-]+)` \| (error|warning) \|", text, flags=re.M))
    assert table == {str(c): sev.value for c, (sev, _) in MANIFEST_CODES.items()}


def test_scan_dates_are_checked_against_index_date(tmp_path: Path) -> None:
    """Day 0 of the built study is index_date: the baseline on or before it, every later scan after it."""
    text = ("patient_id,role,scan_date,pet,organs,threshold\n"
            "A,baseline,2019-01-10,a.nii.gz,org.nii.gz,suv4\n"    # on index_date: fine
            "A,followup,2019-02-10,a.nii.gz,org.nii.gz,suv4\n"
            "B,baseline,2019-01-11,a.nii.gz,org.nii.gz,suv4\n"    # one day after index_date
            "B,followup,2019-02-10,a.nii.gz,org.nii.gz,suv4\n"
            "C,baseline,2019-01-01,a.nii.gz,org.nii.gz,suv4\n"
            "C,followup,2019-01-10,a.nii.gz,org.nii.gz,suv4\n"    # on index_date: not after it
            "C,failure,2019-01-05,a.nii.gz,org.nii.gz,suv4\n"     # before index_date
            "D,baseline,2019-01-05,a.nii.gz,org.nii.gz,suv4\n"
            "D,followup,2019-01-01,a.nii.gz,org.nii.gz,suv4\n"    # before the baseline: reported once
            "E,baseline,2019-03-01,a.nii.gz,org.nii.gz,suv4\n"    # blank index_date: the patients table's
            "E,followup,2019-01-01,a.nii.gz,org.nii.gz,suv4\n")   # own finding, no date check here
    patients = ("patient_id,index_date,last_followup_date,progression_date,death_date\n"
                "A,2019-01-10,2019-12-01,,\nB,2019-01-10,2019-12-01,,\nC,2019-01-10,2019-12-01,2019-01-05,\n"
                "D,2019-01-10,2019-12-01,,\nE,,2019-12-01,,\n")
    m = read_manifest(_write(tmp_path, text, patients))
    got = {(str(f.code), f.file, f.row, f.column) for f in m.report.findings if f.file == "manifest.csv"}
    assert got == {("baseline-after-index", "manifest.csv", 4, "scan_date"),
                   ("failure-before-index", "manifest.csv", 7, "scan_date"),
                   ("failure-before-index", "manifest.csv", 8, "scan_date"),
                   ("failure-before-baseline", "manifest.csv", 10, "scan_date"),
                   ("failure-before-baseline", "manifest.csv", 12, "scan_date")}
    by_row = {f.row: f for f in m.report.findings if f.file == "manifest.csv"}
    assert "after index_date 2019-01-10 in patients.csv" in by_row[4].message
    assert "followup scan of 2019-01-10 is on or before index_date" in by_row[7].message
    assert all(f.severity is Severity.ERROR for f in by_row.values())
    assert not m.ok
