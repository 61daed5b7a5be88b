"""The same study in the ways real files come: encodings, separators, line endings, Excel and Parquet types.

Each variant of the bundled example study must read to the same typed tables as the plain CSV study, with no
finding (or only the one the variant deserves).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

import pofa
from pofa.data import bundled_study
from pofa.io.readers import StudyFormat

EXAMPLE = bundled_study("example")
TABLES = ("patients", "lesions", "failures")


def rows(table: str) -> list[list[str]]:
    with open(EXAMPLE / f"{table}.csv", newline="", encoding="utf-8") as fh:
        return [list(r) for r in csv.reader(fh)]


def csv_bytes(data: list[list[str]], delimiter: str = ",", newline: str = "\n",
              encoding: str = "utf-8") -> bytes:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator=newline).writerows(data)
    return buf.getvalue().encode(encoding)


@pytest.fixture(scope="module")
def reference() -> pofa.Study:
    return pofa.load_study(EXAMPLE)


def assert_same_tables(study: pofa.Study, reference: pofa.Study) -> None:
    for attr in TABLES:
        pd.testing.assert_frame_equal(getattr(study, attr), getattr(reference, attr), check_dtype=True)


def write_all(folder: Path, **kw: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for t in TABLES:
        (folder / f"{t}.csv").write_bytes(csv_bytes(rows(t), **kw))  # type: ignore[arg-type]
    return folder


@pytest.mark.parametrize(("delimiter", "newline", "encoding"), [
    (",", "\n", "utf-8"), (";", "\n", "utf-8"), ("\t", "\n", "utf-8"), (",", "\r\n", "utf-8"),
    (",", "\r", "utf-8"), (";", "\r\n", "utf-8-sig"), ("\t", "\r\n", "utf-16"),
])
def test_csv_dialects_read_the_same(tmp_path: Path, reference: pofa.Study, delimiter: str, newline: str,
                                    encoding: str) -> None:
    """Semicolon (European Excel), tab, Windows and old Mac line endings, BOMs, UTF-16 ('Unicode text')."""
    folder = write_all(tmp_path / "s", delimiter=delimiter, newline=newline, encoding=encoding)
    study = pofa.load_study(folder)
    assert study.validate().findings == ()
    assert_same_tables(study, reference)


def test_latin1_csv_is_read_with_a_warning(tmp_path: Path) -> None:
    folder = write_all(tmp_path / "s")
    data = rows("lesions")
    data[1][2] = "médiastin (€ 1½)"  # € is Windows-1252 only; é and ½ are Latin-1
    (folder / "lesions.csv").write_bytes(csv_bytes(data, encoding="cp1252"))
    study = pofa.load_study(folder)
    (f,) = study.validate().findings
    assert (f.code, f.file, f.severity.value) == ("encoding", "lesions.csv", "warning")
    assert study.lesions.loc[2, "site"] == "médiastin (€ 1½)"
    data[1][2] = "médiastin"
    (folder / "lesions.csv").write_bytes(csv_bytes(data, encoding="latin-1"))
    assert pofa.load_study(folder).lesions.loc[2, "site"] == "médiastin"


def test_blanks_around_cells_and_headers_in_other_case(tmp_path: Path, reference: pofa.Study) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    for t in TABLES:
        data = rows(t)
        header = [f"  {h.upper().replace('_', ' ')} " if i % 2 else f"{h.title()}\u00a0" for i, h in
                  enumerate(data[0])]
        body = [[f" {c}\t" if c else "  " for c in r] for r in data[1:]]
        (folder / f"{t.title()}.CSV").write_bytes(csv_bytes([header, *body]))
    study = pofa.load_study(folder)
    assert study.validate().findings == ()
    assert_same_tables(study, reference)


def test_multiline_cell_and_blank_rows_keep_spreadsheet_row_numbers(tmp_path: Path) -> None:
    """A quoted cell with a line break is one row; blank rows are skipped but counted."""
    folder = write_all(tmp_path / "s")
    data = rows("lesions")
    data[1][2] = "mediastinum,\nanterior"
    data[5][5] = "-1"  # row 6 of the spreadsheet
    text = csv_bytes(data[:3]) + b",,,,,,,,,\n" + csv_bytes(data[3:])  # a blank row 4
    (folder / "lesions.csv").write_bytes(text)
    study = pofa.load_study(folder)
    (f,) = study.validate().findings
    assert (f.code, f.row, f.column) == ("non-positive", 7, "suvmax")
    assert study.lesions.loc[2, "site"] == "mediastinum,\nanterior"
    assert 4 not in study.lesions.index


def write_workbook(path: Path, typed: bool = True, booleans: bool = False) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for t in TABLES:
        ws = wb.create_sheet(t.upper() if t == "lesions" else t)
        data = rows(t)
        ws.append(data[0])
        for r in data[1:]:
            cells: list[object] = []
            for h, v in zip(data[0], r, strict=True):
                if v == "":
                    cells.append(None)
                elif typed and h.endswith("_date"):
                    cells.append(dt.datetime.strptime(v, "%Y-%m-%d"))
                elif typed and h in ("diameter_cm", "suvmax", "x_mm", "y_mm", "z_mm", "age"):
                    cells.append(float(v) if "." in v else int(v))
                elif booleans and v in ("yes", "no"):
                    cells.append(v == "yes")
                else:
                    cells.append(v)
            ws.append(cells)
    wb.save(path)


@pytest.mark.parametrize("booleans", [False, True])
def test_excel_date_and_boolean_cells(tmp_path: Path, reference: pofa.Study, booleans: bool) -> None:
    """Dates as Excel dates, numbers as numbers, yes/no as TRUE/FALSE cells, a sheet name in capitals."""
    (tmp_path / "s").mkdir()
    write_workbook(tmp_path / "s" / "study.xlsx", booleans=booleans)
    study = pofa.load_study(tmp_path / "s")
    assert study.format is StudyFormat.EXCEL
    assert study.validate().findings == ()
    assert_same_tables(study, reference)
    assert study.source("lesions") == "study.xlsx[LESIONS]"


def test_excel_date_time_cell_keeps_the_date(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    path = tmp_path / "study.xlsx"
    write_workbook(path)
    wb = load_workbook(path)
    wb["patients"]["B2"] = dt.datetime(2018, 1, 10, 23, 59)  # index_date of P001, with a time
    wb.save(path)
    study = pofa.load_study(path)
    assert study.validate().findings == ()
    assert study.patients.loc[2, "index_date"] == pd.Timestamp("2018-01-10")


def test_excel_wrong_stored_dimension_reads_every_cell(tmp_path: Path, reference: pofa.Study) -> None:
    """Some writers store a sheet dimension of A1:A1; openpyxl's read-only mode would then cut the cells."""
    path = tmp_path / "study.xlsx"
    write_workbook(path)
    fixed = tmp_path / "fixed.xlsx"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(fixed, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.startswith("xl/worksheets/sheet"):
                data = re.sub(rb'<dimension ref="[^"]*"/>', b'<dimension ref="A1"/>', data)
            zout.writestr(info, data)
    study = pofa.load_study(fixed)
    assert study.validate().findings == ()
    assert_same_tables(study, reference)


def test_excel_workbook_path_reads_study_toml_beside_it(tmp_path: Path) -> None:
    write_workbook(tmp_path / "study.xlsx")
    (tmp_path / "study.toml").write_text("[classification]\nwindow_days = 45\n", encoding="utf-8")
    (tmp_path / "~$study.xlsx").write_bytes(b"lock")  # Excel's lock file is ignored
    for path in (tmp_path, tmp_path / "study.xlsx"):
        study = pofa.load_study(path)
        assert study.validate().findings == ()
        assert study.settings.classification.window_days == 45


def test_excel_integer_ids(tmp_path: Path) -> None:
    """A whole-number id cell reads as the number written (7), with no warning."""
    from openpyxl import load_workbook

    path = tmp_path / "study.xlsx"
    write_workbook(path)
    wb = load_workbook(path)
    wb["patients"]["A6"] = 7
    wb["LESIONS"]["A10"] = 7
    wb.save(path)
    study = pofa.load_study(path)
    assert study.validate().findings == ()
    assert "7" in set(study.patients["patient_id"])


def test_two_workbooks_and_unsupported_files(tmp_path: Path) -> None:
    write_workbook(tmp_path / "a.xlsx")
    write_workbook(tmp_path / "b.xlsx")
    assert [f.code for f in pofa.load_study(tmp_path).validate().findings] == ["ambiguous-table"]
    old = tmp_path / "old"
    old.mkdir()
    (old / "study.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    (f,) = pofa.load_study(old).validate().findings
    assert (f.code, f.file) == ("unsupported-format", "study.xls")
    (f,) = pofa.load_study(old / "study.xls").validate().findings
    assert f.code == "unsupported-format"
    (f,) = pofa.load_study(EXAMPLE / "patients.csv").validate().findings
    assert (f.code, f.file) == ("not-a-study", "patients.csv")


def test_two_sheets_for_one_table(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    path = tmp_path / "study.xlsx"
    write_workbook(path)
    wb = load_workbook(path)
    wb.copy_worksheet(wb["patients"]).title = " Patients "
    wb.save(path)
    (f,) = pofa.load_study(path).validate().findings
    assert (f.code, f.file) == ("ambiguous-table", "study.xlsx[ Patients ]")


def typed_frames() -> dict[str, pd.DataFrame]:
    out = {}
    for t in TABLES:
        data = rows(t)
        df = pd.DataFrame(data[1:], columns=data[0]).replace("", None)
        for c in df.columns:
            if c.endswith("_date"):
                df[c] = pd.to_datetime(df[c], format="%Y-%m-%d")
            elif c in ("diameter_cm", "suvmax", "x_mm", "y_mm", "z_mm"):
                df[c] = df[c].astype("float64")
            elif c == "age":
                df[c] = df[c].astype("int64")
        out[t] = df
    return out


@pytest.mark.parametrize("variant", ["typed", "tz-aware", "date32", "booleans", "with-index"])
def test_parquet_types_read_the_same(tmp_path: Path, reference: pofa.Study, variant: str) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    for t, df in typed_frames().items():
        for c in [c for c in df.columns if c.endswith("_date")]:
            if variant == "tz-aware":  # 00:30 in Berlin is the previous day in UTC: the written date counts
                df[c] = (df[c] + pd.Timedelta(minutes=30)).dt.tz_localize("Europe/Berlin")
            elif variant == "date32":
                df[c] = df[c].dt.date
        if variant == "booleans":
            for c in ("extranodal", "bridging_rt"):
                if c in df:
                    df[c] = df[c].map({"yes": True, "no": False, None: None})
        if variant == "with-index":
            df.index = df.index + 100
        df.to_parquet(folder / f"{t}.parquet", index=variant == "with-index")
    study = pofa.load_study(folder)
    assert study.format is StudyFormat.PARQUET
    assert study.validate().findings == ()
    if variant == "tz-aware":
        assert study.patients.loc[2, "index_date"] == pd.Timestamp("2018-01-10")
    assert_same_tables(study, reference)


def test_mixed_csv_and_parquet(tmp_path: Path, reference: pofa.Study) -> None:
    folder = tmp_path / "s"
    shutil.copytree(EXAMPLE, folder)
    (folder / "lesions.csv").unlink()
    typed_frames()["lesions"].to_parquet(folder / "lesions.parquet", index=False)
    study = pofa.load_study(folder)
    assert study.format is StudyFormat.MIXED
    assert study.validate().findings == ()
    assert_same_tables(study, reference)
