"""Checking large CSV files block by block (pofa.validation_stream): the same findings as the whole-file
check, with only the keys kept; files Arrow cannot read exactly as the whole-file reader fall back to it."""

from __future__ import annotations

import csv
import random
import shutil
from pathlib import Path

import pytest

import pofa
from pofa.data import bundled_study
from pofa.findings import MAX_PER_KIND
from pofa.io.csv_stream import StreamFallback, iter_csv_chunks
from pofa.io.readers import read_csv_table
from pofa.schema import TableName
from pofa.validation_stream import _plan, _validate_streaming, validate_study
from test_validate_scale import write_junk

CORPUS = Path(__file__).parent / "corpus"
#: Blocks of 1 KB: every file of more than a few rows is checked in several blocks.
BLOCK = 1 << 10


def _streamable(root: Path) -> list[Path]:
    return [d for d in sorted([root, *root.rglob("*")]) if d.is_dir() and _plan(d, 0) is not None]


@pytest.mark.parametrize("folder", _streamable(CORPUS) + [bundled_study("example")],
                         ids=lambda p: p.name)
def test_block_by_block_gives_the_findings_of_the_whole_file_check(folder: Path) -> None:
    plan = _plan(folder, 0)
    assert plan is not None
    whole = pofa.load_study(folder).validate().findings
    try:
        streamed = _validate_streaming(folder, plan, BLOCK)
    except StreamFallback:  # a file the block reader leaves to the whole-file reader
        assert validate_study(folder, stream_bytes=0, block_bytes=BLOCK).findings == whole
        return
    assert streamed.findings == whole


def test_many_kinds_of_problems_over_many_blocks(tmp_path: Path) -> None:
    """Dates, numbers, duplicates across blocks, extra columns (typed from the whole column), decimal commas,
    risk factors naming an extra column: the findings, rows and counts of the whole-file check."""
    folder = tmp_path / "s"
    shutil.copytree(bundled_study("example"), folder)
    rng = random.Random(3)
    for name in ("patients", "lesions", "failures"):
        rows = list(csv.reader((folder / f"{name}.csv").open(encoding="utf-8", newline="")))
        header, body = rows[0] + ["ecog", "note"], []
        for _ in range(12):  # the example many times over: ids repeat across blocks
            for r in rows[1:]:
                ecog = rng.choice(["0", "1", "2", "1", "0", "2", "1", "x", ""])
                r = r + [ecog, rng.choice(["a", "b", "1,5", ""])]
                if rng.random() < 0.05:
                    r[rng.randrange(len(r) - 2)] = rng.choice(["", "junk", "12/03/2019", "-1", "1,5"])
                body.append(r)
        with (folder / f"{name}.csv").open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows([header, *body])
    (folder / "study.toml").write_text('[risk_factors]\nlesion = ["diameter_cm>=5", "ecog"]\n'
                                       'patient = ["any diameter_cm>=5", "ecog"]\n', encoding="utf-8")
    plan = _plan(folder, 0)
    assert plan is not None
    assert len(list(iter_csv_chunks(plan[TableName.LESIONS], TableName.LESIONS, [], BLOCK))) > 3
    streamed = _validate_streaming(folder, plan, BLOCK)
    whole = pofa.load_study(folder).validate()
    assert streamed.findings == whole.findings
    assert {str(f.code) for f in whole.findings} >= {"duplicate-id", "bad-number", "odd-cell", "blank-cell"}


def test_blocks_hold_the_rows_of_the_whole_file(tmp_path: Path) -> None:
    write_junk(tmp_path / "j", 3000)
    path = tmp_path / "j" / "patients.csv"
    whole = read_csv_table(path, TableName.PATIENTS, [])
    assert whole is not None
    blocks = list(iter_csv_chunks(path, TableName.PATIENTS, [], 1 << 14))
    assert len(blocks) > 3
    joined = [r for b in blocks for r in b.frame.itertuples(name=None)]
    assert joined == list(whole.frame.itertuples(name=None))


@pytest.mark.parametrize("text", [
    b"patient_id,index_date\nP1,2019-01-01,extra\n",
    "patient_id,index_date\nP\xe9,2019-01-01\n".encode("cp1252"),
    b"\xff\xfep\x00",
])
def test_files_the_block_reader_leaves_to_the_whole_file_reader(tmp_path: Path, text: bytes) -> None:
    path = tmp_path / "patients.csv"
    path.write_bytes(text)
    with pytest.raises(StreamFallback):
        list(iter_csv_chunks(path, TableName.PATIENTS, []))


def test_validate_study_falls_back_with_the_same_findings(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    shutil.copytree(bundled_study("example"), folder)
    with (folder / "lesions.csv").open("a", encoding="utf-8") as fh:
        fh.write("\nP999,L1,liver,yes,2.0,3.0,extra,cells,here\n")
    assert validate_study(folder, stream_bytes=0).findings == pofa.load_study(folder).validate().findings


@pytest.mark.slow
def test_junk_file_block_by_block(tmp_path: Path) -> None:
    """200,000 rows of junk checked in blocks: a few hundred findings, as the whole-file check."""
    write_junk(tmp_path / "junk", 200_000)
    report = validate_study(tmp_path / "junk", stream_bytes=0)
    kinds = {(f.code, f.file, f.column) for f in report.findings}
    assert len(report.findings) <= len(kinds) * (MAX_PER_KIND + 1)
    assert report.findings == pofa.load_study(tmp_path / "junk").validate().findings


def _extra_cells(rng: random.Random, i: int) -> list[str]:
    """Cells of extra columns: identifying content, columns mostly of one type with odd cells, a declared
    covariate with bad levels."""
    first = rng.choice(["Anna", "Ben", "Carla", "Dirk", "Eva", "Farid"])
    return [
        f"{first.lower()}{i}@clinic.example.org",                                     # contact: e-mail
        f"{rng.choice(['Smith', 'Meyer', 'Novak'])}, {first} Q{''.join(chr(97 + int(d)) for d in str(i))}",
        str(1_000_000 + 7 * i),                                                       # chart_ref: record no.
        " ".join(rng.choice(["pain", "since", "march", "worse", "at", "night"]) for _ in range(7)),  # story
        rng.choice(["1", "2", "3", "4"] * 6 + ["n/a", "unknown", "4,5"]),            # score: mostly numbers
        rng.choice(["yes", "no"] * 8 + ["maybe", "t"]),                               # flag: mostly yes/no
        rng.choice(["2019-03-04", "2020-11-30"] * 8 + ["03/04/2019"]),                # seen: mostly dates
        rng.choice(["low", "high", "mid", ""]),                                       # grade: declared
        rng.choice(["a", "b", "c", "1", "2"]),                                        # code: text
    ]


def test_extra_columns_tallied_block_by_block(tmp_path: Path) -> None:
    """Extra columns are not kept but tallied block by block: their type, odd cells (beyond the limit: the
    count and rows of the rest), decimal commas, declared covariates and the privacy check by content give
    the findings of the whole-file check."""
    folder = tmp_path / "s"
    shutil.copytree(bundled_study("example"), folder)
    rng = random.Random(5)
    rows = list(csv.reader((folder / "patients.csv").open(encoding="utf-8", newline="")))
    header = rows[0] + ["contact", "who", "chart_ref", "story", "score", "flag", "seen", "grade", "code"]
    body = []
    for k in range(200):  # 1,000 rows: more odd cells of a column than are shown one by one
        for r in rows[1:]:
            body.append([f"{r[0]}_{k}", *r[1:], *_extra_cells(rng, len(body))])
    with (folder / "patients.csv").open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([header, *body])
    (folder / "study.toml").write_text('[covariates.grade]\ntable = "patients"\ntype = "category"\n'
                                       'levels = ["low", "high"]\n', encoding="utf-8")
    plan = _plan(folder, 0)
    assert plan is not None
    assert len(list(iter_csv_chunks(plan[TableName.PATIENTS], TableName.PATIENTS, [], 8 * BLOCK))) > 10
    streamed = _validate_streaming(folder, plan, 8 * BLOCK)
    whole = pofa.load_study(folder).validate()
    assert streamed.findings == whole.findings
    codes = {(str(f.code), f.column) for f in whole.findings}
    for column in ("contact", "who", "chart_ref", "story"):
        assert ("identifying-column", column) in codes
    for column in ("score", "flag", "seen"):
        assert ("odd-cell", column) in codes
    assert ("bad-category", "grade") in codes
    assert any(f.more for f in whole.findings if f.column == "score" and str(f.code) == "odd-cell")


def test_content_tally_is_the_same_in_any_blocks_and_bounded() -> None:
    """The privacy rule's tally: the same decision whatever the blocks; distinct cells counted exactly up to
    DISTINCT_EXACT, then estimated (k minimum values: relative error about 1/sqrt(65536) = 0.4%) in bounded
    memory."""
    import pandas as pd

    from pofa.privacy import DISTINCT_EXACT, ContentTally, category_of_content

    cells = [f"Meyer, Anna Q{''.join(chr(97 + int(d)) for d in str(i))}" for i in range(3000)]
    whole = ContentTally()
    whole.add(cells)
    blocks = ContentTally()
    for k in range(0, len(cells), 700):
        blocks.add(cells[k:k + 700])
    assert whole.category() == blocks.category() == category_of_content(pd.Series(cells)) == "name"
    assert whole.distinct() == blocks.distinct() == 1.0
    many = ContentTally(integer=True)
    n = 4 * DISTINCT_EXACT
    for k in range(0, n, 50_000):  # every value twice: half the cells distinct
        many.add([str(1_000_000 + (i % (n // 2))) for i in range(k, min(k + 50_000, n))])
    assert len(many._hashes) == DISTINCT_EXACT
    # The estimate's relative standard error is 1/sqrt(65,536) = 0.4%; the hash is deterministic, so these
    # cells give 0.5020 on every run: within 1% (2.5 standard errors) of the true share.
    assert many.distinct() == pytest.approx(0.5, rel=0.01)
    assert many.category() is None  # a record number is distinct: 0.5 < 0.9
