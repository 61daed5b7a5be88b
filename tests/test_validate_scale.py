"""Validation that scales: at most 20 findings of a kind with a count of the rest, and the Arrow reader of
large CSV files giving exactly the cells, rows and findings of the Python reader."""

from __future__ import annotations

import csv
import io
import random
import shutil
import string
from pathlib import Path

import pytest

import pofa
import pofa.io.readers as readers
from pofa.data import bundled_study
from pofa.findings import MAX_PER_KIND, Finding, Severity, cap_findings
from pofa.schema import TableName

CORPUS = Path(__file__).parent / "corpus"
EXAMPLE = bundled_study("example")


def _study_with_bad_dates(folder: Path, n: int) -> None:
    shutil.copytree(EXAMPLE, folder)
    rows = list(csv.reader(io.StringIO((folder / "patients.csv").read_text(encoding="utf-8"))))
    header, body = rows[0], rows[1:]
    for i in range(n):
        body.append([f"X{i:04d}", "14/03/2019", "2020-01-01", "", "", "50", "F"])
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *body])
    (folder / "patients.csv").write_text(buf.getvalue(), encoding="utf-8")


def test_at_most_20_of_a_kind_then_one_count(tmp_path: Path) -> None:
    _study_with_bad_dates(tmp_path / "s", 500)
    report = pofa.load_study(tmp_path / "s").validate()
    bad = [f for f in report.findings if f.code == "bad-date"]
    assert len(bad) == MAX_PER_KIND + 1
    listed, summary = bad[:-1], bad[-1]
    assert [f.row for f in listed] == list(range(7, 7 + MAX_PER_KIND))
    assert summary.row is None and summary.column == "index_date" and summary.more == 500 - MAX_PER_KIND
    assert f"{500 - MAX_PER_KIND:,} more finding(s)" in summary.message
    assert f"(rows {7 + MAX_PER_KIND}-506)" in summary.message
    # the patients without lesions: also capped, in their own kind
    assert sum(f.code == "no-lesions" for f in report.findings) == MAX_PER_KIND + 1
    assert report.to_json()["findings"][-1]["more"] >= 0


def test_cap_findings_merges_summaries() -> None:
    def f(row: int | None, more: int = 0) -> Finding:
        return Finding(Severity.ERROR, "bad-date", "p.csv", row, "index_date", "m", "h", more)

    capped = cap_findings([f(r) for r in range(2, 30)], limit=5)
    assert [x.row for x in capped[:5]] == [2, 3, 4, 5, 6]
    assert capped[5].more == 23 and "(rows 7-29)" in capped[5].message
    again = cap_findings([*capped, f(40)], limit=5)
    assert again[-1].more == 24 and len(again) == 6


def _read_both(path: Path, name: TableName, monkeypatch: pytest.MonkeyPatch) -> tuple[object, ...]:
    results = []
    for threshold in (1 << 60, 0):  # the Python reader, then Arrow
        monkeypatch.setattr(readers, "FAST_CSV_BYTES", threshold)
        found: list[Finding] = []
        table = readers.read_csv_table(path, name, found)
        results.append((table, found))
    (a, fa), (b, fb) = results
    return a, b, fa, fb


def _same(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is b
    return (a.frame.equals(b.frame) and list(a.frame.index) == list(b.frame.index)  # type: ignore[attr-defined]
            and a.headers == b.headers)  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*/*.csv")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_arrow_reader_reads_the_corpus_as_python_does(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = TableName(path.stem)
    a, b, fa, fb = _read_both(path, name, monkeypatch)
    assert fa == fb and _same(a, b)


TRICKY = [
    'patient_id,index_date\nP1,"2019-01-01"\n"P""2",2019-01-02\n',
    "patient_id,index_date\r\nP1,2019-01-01\r\nP2,2019-01-02\r\n",
    "patient_id,index_date\rP1,2019-01-01\rP2,2019-01-02\r",
    'patient_id,index_date\nP1,"multi\nline"\nP2,2019-01-02\n',
    "patient_id,index_date\nP1,2019-01-01\n\nP2,2019-01-02\n",
    "patient_id,index_date\nP1,2019-01-01,extra\nP2\n",
    "patient_id;index_date\n P1 ; NA \nnull;\n",
    "\ufeffpatient_id,index_date\nP1,2019-01-01\n",
    'patient_id,index_date\nP1,ab"c"d\n"P2"x,2019\n',
    "patient_id,index_date,\nP1,2019-01-01,\n",
]


@pytest.mark.parametrize("text", TRICKY)
def test_arrow_reader_agrees_on_tricky_csv(text: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "patients.csv"
    path.write_bytes(text.encode("utf-8"))
    a, b, fa, fb = _read_both(path, TableName.PATIENTS, monkeypatch)
    assert fa == fb and _same(a, b), (a.frame if a else None, b.frame if b else None)  # type: ignore[attr-defined]


def write_junk(folder: Path, rows: int, seed: int = 1) -> None:
    """A patients file of ``rows`` rows of random junk, and a small lesions file of junk."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + " ,.-/"

    def junk() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))

    patients = ["patient_id", "index_date", "last_followup_date", "progression_date", "death_date", "age"]
    for name, header, n in (("patients", patients, rows),
                            ("lesions", ["patient_id", "lesion_id", "site", "extranodal", "diameter_cm",
                                         "suvmax"], 1000)):
        with open(folder / f"{name}.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows([junk() for _ in header] for _ in range(n))


@pytest.mark.slow
def test_junk_file_gives_bounded_findings(tmp_path: Path) -> None:
    """200,000 rows of junk: a few hundred findings (20 per kind and a count), read by the Arrow reader."""
    write_junk(tmp_path / "junk", 200_000)
    report = pofa.load_study(tmp_path / "junk").validate()
    kinds = {(f.code, f.file, f.column) for f in report.findings}
    assert len(report.findings) <= len(kinds) * (MAX_PER_KIND + 1)
    assert sum(f.more for f in report.findings) > 100_000
