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
