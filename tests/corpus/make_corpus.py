"""Generate the corpus of broken studies from the bundled example study.

Run ``python3 tests/corpus/make_corpus.py`` to (re)write every case folder under tests/corpus/. Each
case is the valid example study (five invented patients) with ONE defect, stored as CSV files, one Excel
workbook or Parquet files, and an ``expected.json`` that lists exactly the findings the validator must report
for it (severity, code, file, row, column) and the exit codes of ``pofa validate`` with and without
``--strict``.

The expected findings are written here by hand from the defect, not copied from the validator's output:
tests/test_validate_corpus.py compares the two. The generated files are committed; the test also checks that
this script reproduces them.

Row numbers are spreadsheet rows (header = row 1). The example's rows:

patients: 2 P001, 3 P002 (died), 4 P003, 5 P004, 6 007.
lesions: 2-4 P001 L1-L3, 5-6 P002 L1-L2, 7 P003 L1, 8-9 P004 L1-L2, 10 007 L1.
failures: 2 P001 F1 (L1), 3 P001 F2 (new, lung), 4 P002 F1 (L1), 5 P004 F1 (new, bone).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import re
import shutil
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pofa.data import bundled_study

CORPUS = Path(__file__).resolve().parent
TABLES = ("patients", "lesions", "failures")
#: Fixed time stamps inside the generated workbooks so that regenerating gives the same bytes.
_FIXED = dt.datetime(2020, 1, 1, 0, 0, 0)

Rows = list[list[str]]


@dataclass
class Tables:
    """The example study as text rows (header first), to be broken and written in some format."""

    data: dict[str, Rows] = field(default_factory=dict)

    @classmethod
    def example(cls) -> Tables:
        folder = bundled_study("example")
        out = {}
        for t in TABLES:
            if not (folder / f"{t}.csv").is_file():  # optional tables the example does not have
                continue
            with open(folder / f"{t}.csv", newline="", encoding="utf-8") as fh:
                out[t] = [list(r) for r in csv.reader(fh)]
        return cls(out)

    def col(self, table: str, column: str) -> int:
        return self.data[table][0].index(column)

    def set(self, table: str, row: int, column: str, value: str) -> Tables:
        """Set the cell at spreadsheet ``row`` (header = 1)."""
        self.data[table][row - 1][self.col(table, column)] = value
        return self

    def get(self, table: str, row: int, column: str) -> str:
        return self.data[table][row - 1][self.col(table, column)]

    def append(self, table: str, **cells: str) -> Tables:
        header = self.data[table][0]
        self.data[table].append([cells.get(h, "") for h in header])
        return self

    def delete_row(self, table: str, row: int) -> Tables:
        del self.data[table][row - 1]
        return self

    def drop_column(self, table: str, column: str) -> Tables:
        j = self.col(table, column)
        self.data[table] = [r[:j] + r[j + 1:] for r in self.data[table]]
        return self


# ---------------------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------------------

def write_csv(folder: Path, tables: Tables, skip: tuple[str, ...] = (), delimiter: str = ",",
              encoding: str = "utf-8") -> None:
    for t, rows in tables.data.items():
        if t in skip:
            continue
        buf = io.StringIO()
        csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows(rows)
        (folder / f"{t}.csv").write_bytes(buf.getvalue().encode(encoding))


_DATE_COLUMNS = {"index_date", "last_followup_date", "progression_date", "death_date", "scan_date"}
_NUMBER_COLUMNS = {"diameter_cm", "suvmax", "x_mm", "y_mm", "z_mm", "age"}


def _typed(column: str, text: str) -> object:
    """A cell as a spreadsheet user would have entered it: dates as dates, numbers as numbers, else text."""
    if text == "":
        return None
    if column in _DATE_COLUMNS:
        try:
            return dt.datetime.strptime(text, "%Y-%m-%d")
        except ValueError:
            return text
    if column in _NUMBER_COLUMNS:
        try:
            return float(text) if "." in text or "e" in text.lower() else int(text)
        except ValueError:
            return text
    return text


def _normalise_zip(path: Path) -> None:
    """Rewrite a zip (an .xlsx) with fixed member time stamps, so that its bytes are reproducible."""
    with zipfile.ZipFile(path) as zin:
        members = [(i.filename, zin.read(i.filename)) for i in zin.infolist()]
    stamp = _FIXED.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    # openpyxl stamps the saving time into docProps/core.xml whatever the properties say.
    members = [(n, re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(<)", rb"\g<1>" + stamp + rb"\g<2>", d)
                if n == "docProps/core.xml" else d) for n, d in members]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=_FIXED.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(info, data)


def write_xlsx(path: Path, tables: Tables, skip: tuple[str, ...] = (),
               raw: dict[tuple[str, int, str], object] | None = None) -> None:
    """One workbook, one sheet per table; ``raw`` puts a value of any type into (sheet, row, column)."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    wb.properties.created = wb.properties.modified = _FIXED
    raw = raw or {}
    for t, rows in tables.data.items():
        if t in skip:
            continue
        ws = wb.create_sheet(t)
        if not rows:
            continue
        header = rows[0]
        ws.append(header)
        for i, r in enumerate(rows[1:], start=2):
            ws.append([raw[(t, i, h)] if (t, i, h) in raw else _typed(h, v)
                       for h, v in zip(header, r, strict=True)])
    wb.save(path)
    _normalise_zip(path)


def write_parquet(folder: Path, tables: Tables, skip: tuple[str, ...] = (),
                  change: Callable[[str, pd.DataFrame], pd.DataFrame] | None = None) -> None:
    """One Parquet file per table with typed columns (dates as timestamps, numbers as float, ids as text)."""
    for t, rows in tables.data.items():
        if t in skip:
            continue
        df = pd.DataFrame(rows[1:], columns=rows[0], dtype=object)
        for c in df.columns:
            if c in _DATE_COLUMNS:
                df[c] = pd.to_datetime(df[c].replace("", None), format="%Y-%m-%d", errors="coerce")
            elif c in _NUMBER_COLUMNS:
                df[c] = pd.to_numeric(df[c].replace("", None), errors="coerce").astype("float64")
            else:
                df[c] = df[c].replace("", None).astype(object)
        if change is not None:
            df = change(t, df)
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), folder / f"{t}.parquet")


# ---------------------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------------------

Finding = tuple[str, str, str, int | None, str | None]  # severity, code, file, row, column


def E(code: str, file: str, row: int | None = None, column: str | None = None) -> Finding:  # noqa: N802
    return ("error", code, file, row, column)


def W(code: str, file: str, row: int | None = None, column: str | None = None) -> Finding:  # noqa: N802
    return ("warning", code, file, row, column)


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    build: Callable[[Path], None]
    findings: tuple[Finding, ...]
    target: str = "."


def ex() -> Tables:
    return Tables.example()


CASES: list[Case] = []


def case(name: str, description: str, findings: list[Finding], target: str = "."
         ) -> Callable[[Callable[[Path], None]], Callable[[Path], None]]:
    def register(build: Callable[[Path], None]) -> Callable[[Path], None]:
        CASES.append(Case(name, description, build, tuple(findings), target))
        return build
    return register


P, L, F = "patients.csv", "lesions.csv", "failures.csv"

# --- CSV: files and columns -------------------------------------------------------------------------------


@case("csv_missing_patients_file", "patients.csv is missing",
      [E("missing-table", "csv_missing_patients_file")])
def _(d: Path) -> None:
    write_csv(d, ex(), skip=("patients",))


@case("csv_missing_lesions_file", "lesions.csv is missing", [E("missing-table", "csv_missing_lesions_file")])
def _(d: Path) -> None:
    write_csv(d, ex(), skip=("lesions",))


@case("csv_missing_column", "lesions.csv has no suvmax column", [E("missing-column", L, 1, "suvmax")])
def _(d: Path) -> None:
    write_csv(d, ex().drop_column("lesions", "suvmax"))


@case("csv_missing_scan_date_column", "failures.csv has no scan_date column",
      [E("missing-column", F, 1, "scan_date")])
def _(d: Path) -> None:
    write_csv(d, ex().drop_column("failures", "scan_date"))


@case("csv_missing_site_column_new_lesions", "failures.csv has no site column but has new lesions",
      [E("missing-column", F, 1, "site")])
def _(d: Path) -> None:
    write_csv(d, ex().drop_column("failures", "site"))


@case("csv_duplicate_column", "lesions.csv has a second column headed 'SUVmax '",
      [E("duplicate-column", L, 1, "suvmax")])
def _(d: Path) -> None:
    t = ex()
    t.data["lesions"] = [r + (["SUVmax "] if i == 0 else ["1.0"]) for i, r in enumerate(t.data["lesions"])]
    write_csv(d, t)


@case("csv_unnamed_column", "lesions.csv has values in a column without header",
      [W("unnamed-column", L, 1, None)])
def _(d: Path) -> None:
    t = ex()
    t.data["lesions"] = [r + ([""] if i == 0 else ["x"]) for i, r in enumerate(t.data["lesions"])]
    write_csv(d, t)


@case("csv_corrupt_file", "patients.csv holds binary data", [E("unreadable-file", P)])
def _(d: Path) -> None:
    write_csv(d, ex(), skip=("patients",))
    rng = random.Random(2)
    (d / P).write_bytes(b"PK\x03\x04" + bytes(rng.randrange(256) for _ in range(300)) + b"\x00")


@case("csv_empty_file", "lesions.csv is empty (0 bytes)", [E("empty-file", L)])
def _(d: Path) -> None:
    write_csv(d, ex(), skip=("lesions",))
    (d / L).write_bytes(b"")


@case("csv_no_header", "patients.csv starts with a blank row", [E("no-header", P, 1)])
def _(d: Path) -> None:
    write_csv(d, ex())
    (d / P).write_bytes(b"\n" + (d / P).read_bytes())


@case("csv_ambiguous_table", "patients given both as patients.csv and patients.parquet",
      [E("ambiguous-table", "patients.parquet")])
def _(d: Path) -> None:
    write_csv(d, ex())
    write_parquet(d, ex(), skip=("lesions", "failures"))


@case("csv_latin1", "lesions.csv saved in Latin-1 (an accented site name)", [W("encoding", L)])
def _(d: Path) -> None:
    write_csv(d, ex().set("lesions", 2, "site", "médiastin"), encoding="latin-1")


@case("csv_extra_cells", "an unquoted comma in a site name shifts the cells of lesions.csv row 4",
      [E("extra-cells", L, 4), E("bad-boolean", L, 4, "extranodal"), E("bad-number", L, 4, "diameter_cm"),
       E("bad-boolean", L, 4, "bridging_rt")])
def _(d: Path) -> None:
    write_csv(d, ex())
    text = (d / L).read_text(encoding="utf-8").replace("P001,L3,liver,", "P001,L3,liver, left lobe,")
    (d / L).write_text(text, encoding="utf-8")


# --- CSV: cells -------------------------------------------------------------------------------------------

@case("csv_bad_date", "a date written day/month/year", [E("bad-date", P, 6, "index_date")])
def _(d: Path) -> None:
    write_csv(d, ex().set("patients", 6, "index_date", "02/06/2018"))


@case("csv_impossible_date", "February 30th", [E("bad-date", P, 4, "last_followup_date")])
def _(d: Path) -> None:
    write_csv(d, ex().set("patients", 4, "last_followup_date", "2020-02-30"))


@case("csv_date_out_of_range", "the year 0219 (a typing error)", [E("bad-date", P, 4, "last_followup_date")])
def _(d: Path) -> None:
    write_csv(d, ex().set("patients", 4, "last_followup_date", "0219-03-01"))


@case("csv_na_date", "'NA' (as R writes) for no progression", [E("bad-date", P, 4, "progression_date")])
def _(d: Path) -> None:
    write_csv(d, ex().set("patients", 4, "progression_date", "NA"))


@case("csv_bad_number", "suvmax written as a word", [E("bad-number", L, 7, "suvmax")])
def _(d: Path) -> None:
    write_csv(d, ex().set("lesions", 7, "suvmax", "high"))


@case("csv_decimal_comma", "one diameter with a decimal comma (quoted)",
      [E("decimal-comma", L, 3, "diameter_cm")])
def _(d: Path) -> None:
    write_csv(d, ex().set("lesions", 3, "diameter_cm", "2,1"))


def _european_lesions(d: Path) -> None:
    t = ex()
    for r in range(2, 11):
        for c in ("diameter_cm", "suvmax"):
            t.set("lesions", r, c, t.get("lesions", r, c).replace(".", ","))
    write_csv(d, t, skip=("lesions",))
    lesions = Tables({"lesions": t.data["lesions"]})
    write_csv(d, lesions, delimiter=";")


@case("csv_semicolon_decimal_comma", "lesions.csv exported by a European Excel: ';' and decimal commas "
      "(one finding for the file, at its first such cell)",
      [E("decimal-comma", L, 2, "diameter_cm")])
def _(d: Path) -> None:
    _european_lesions(d)


@case("csv_decimal_comma_declared", "decimal commas with decimal = \",\" in study.toml: read as numbers", [])
def _(d: Path) -> None:
    _european_lesions(d)
    (d / "study.toml").write_text('[study]\ndecimal = ","\n', encoding="utf-8")


@case("csv_bad_boolean", "extranodal 'maybe'", [E("bad-boolean", L, 4, "extranodal")])
def _(d: Path) -> None:
    write_csv(d, ex().set("lesions", 4, "extranodal", "maybe"))


@case("csv_blank_required", "a lesion without site", [E("blank-cell", L, 7, "site")])
def _(d: Path) -> None:
    write_csv(d, ex().set("lesions", 7, "site", ""))


@case("csv_new_lesion_without_site", "a new failure lesion without site", [E("blank-cell", F, 3, "site")])
def _(d: Path) -> None:
    write_csv(d, ex().set("failures", 3, "site", ""))


@case("csv_zero_diameter", "diameter 0", [E("non-positive", L, 6, "diameter_cm")])
def _(d: Path) -> None:
    write_csv(d, ex().set("lesions", 6, "diameter_cm", "0"))


@case("csv_negative_suv", "suvmax -3", [E("non-positive", L, 9, "suvmax")])
def _(d: Path) -> None:
    write_csv(d, ex().set("lesions", 9, "suvmax", "-3"))


@case("csv_implausible_suv", "suvmax 150", [W("implausible", L, 8, "suvmax")])
def _(d: Path) -> None:
    write_csv(d, ex().set("lesions", 8, "suvmax", "150"))


@case("csv_implausible_diameter", "diameter 55 cm (mm typed as cm?)", [W("implausible", L, 5, "diameter_cm")])
def _(d: Path) -> None:
    write_csv(d, ex().set("lesions", 5, "diameter_cm", "55"))


@case("csv_implausible_followup", "22 years of follow-up", [W("implausible", P, 4, "last_followup_date")])
def _(d: Path) -> None:
    write_csv(d, ex().set("patients", 4, "last_followup_date", "2040-03-01"))


@case("csv_partial_coordinates", "a lesion centre without z_mm", [E("partial-coordinates", L, 7, "z_mm")])
def _(d: Path) -> None:
    write_csv(d, ex().set("lesions", 7, "z_mm", ""))


@case("csv_bad_radiotherapy", "a dose without fractions, half a fraction, and an unknown field class",
      [E("bad-radiotherapy", L, 2, "rt_fractions"), E("bad-radiotherapy", L, 3, "rt_fractions"),
       E("bad-radiotherapy", F, 2, "rt_field")])
def _(d: Path) -> None:
    t = ex()
    les, fail = t.data["lesions"], t.data["failures"]
    les[0] += ["rt_dose_gy", "rt_fractions"]
    for k, row in enumerate(les[1:], start=2):
        row += {2: ["30", ""], 3: ["20", "2.5"], 4: ["24", "12"]}.get(k, ["", ""])
    fail[0].append("rt_field")
    for k, row in enumerate(fail[1:], start=2):
        row.append("inside" if k == 2 else "in-field" if k == 3 else "")
    write_csv(d, t)


# --- CSV: response tables (docs/response.md) ---------------------------------------------------------------

M, S = "measurements.csv", "scans.csv"


def with_response() -> Tables:
    """The example with valid measurements (rows 2-4 baseline of P001, 5-7 and 8-10 its follow-ups) and scans
    (rows 2-3) tables."""
    t = ex()
    t.data["measurements"] = [
        ["patient_id", "lesion_id", "scan_date", "ldi_mm", "sdi_mm", "suvmax", "deauville", "target"],
        ["P001", "L1", "2018-01-05", "62", "40", "14.1", "5", "yes"],
        ["P001", "L2", "2018-01-05", "21", "15", "7.5", "4", "yes"],
        ["P001", "L3", "2018-01-05", "34", "30", "11.2", "5", "yes"],
        ["P001", "L1", "2018-02-10", "30", "20", "5.0", "3", "yes"],
        ["P001", "L2", "2018-02-10", "12", "8", "2.0", "2", "yes"],
        ["P001", "L3", "2018-02-10", "15", "12", "3.1", "X", "yes"],
        ["P001", "L1", "2018-04-02", "45", "35", "12.0", "5", "yes"],
        ["P001", "L2", "2018-04-02", "12", "8", "2.0", "2", ""],
        ["P001", "L3", "2018-04-02", "16", "12", "3.0", "3", "yes"],
    ]
    t.data["scans"] = [
        ["patient_id", "scan_date", "deauville", "bone_marrow", "new_lesions", "clinical_deterioration"],
        ["P001", "2018-02-10", "3", "no", "no", "no"],
        ["P001", "2018-04-02", "5", "no", "yes", ""],
    ]
    return t


@case("csv_response_valid", "valid measurements and scans tables", [])
def _(d: Path) -> None:
    write_csv(d, with_response())


@case("csv_response_bad_cells", "a Deauville score 6, a short diameter above the long one, lesion L9",
      [E("bad-deauville", M, 2, "deauville"), E("bad-diameters", M, 3, "sdi_mm"),
       E("unknown-lesion", M, 7, "lesion_id"), E("not-at-baseline", M, 7, "lesion_id")])
def _(d: Path) -> None:
    write_csv(d, with_response().set("measurements", 2, "deauville", "6")
              .set("measurements", 3, "sdi_mm", "22").set("measurements", 7, "lesion_id", "L9"))


@case("csv_response_no_baseline", "P003 measured only after its index date",
      [E("no-baseline-scan", M, 11, "scan_date")])
def _(d: Path) -> None:
    write_csv(d, with_response().append("measurements", patient_id="P003", lesion_id="L1",
                                        scan_date="2018-04-01", ldi_mm="20", sdi_mm="10", target="yes"))


@case("csv_response_two_baselines", "P001 has two scans before its index date, and no target at baseline",
      [E("several-baseline-scans", M, 2, "scan_date"), E("target-lesions", M, 2, "target")])
def _(d: Path) -> None:
    t = with_response()
    for row in (2, 3, 4):
        t.set("measurements", row, "target", "no")
    write_csv(d, t.append("measurements", patient_id="P001", lesion_id="L1", scan_date="2017-12-20",
                          ldi_mm="60", sdi_mm="40", target="yes"))


@case("csv_response_not_at_baseline", "P001's L3 is missing from the baseline scan",
      [E("not-at-baseline", M, 6, "lesion_id"), E("not-at-baseline", M, 9, "lesion_id")])
def _(d: Path) -> None:
    write_csv(d, with_response().delete_row("measurements", 4))


@case("csv_response_late_scans", "a scan after the last follow-up; a scans row without measurements",
      [W("scan-after-followup", M, 11, "scan_date"), W("unknown-scan", S, 4, "scan_date")])
def _(d: Path) -> None:
    t = with_response()
    for lid, ldi in (("L1", "50"), ("L2", "13"), ("L3", "18")):
        t.append("measurements", patient_id="P001", lesion_id=lid, scan_date="2019-07-01", ldi_mm=ldi,
                 sdi_mm="10", target="yes")
    write_csv(d, t.append("scans", patient_id="P001", scan_date="2018-03-01"))


# --- CSV: ids and links -----------------------------------------------------------------------------------

@case("csv_duplicate_patient", "P003 appears twice", [E("duplicate-id", P, 7, "patient_id")])
def _(d: Path) -> None:
    t = ex()
    t.data["patients"].append(list(t.data["patients"][3]))
    write_csv(d, t)


@case("csv_duplicate_lesion", "P001 has two lesions L1", [E("duplicate-id", L, 3, "lesion_id")])
def _(d: Path) -> None:
    write_csv(d, ex().set("lesions", 3, "lesion_id", "L1"))


@case("csv_duplicate_failure", "P001 has two failure lesions F1", [E("duplicate-id", F, 3, "failure_id")])
def _(d: Path) -> None:
    write_csv(d, ex().set("failures", 3, "failure_id", "F1"))


@case("csv_ids_look_alike", "patient '7' is not patient '007'",
      [E("unknown-patient", L, 10, "patient_id"), W("no-lesions", P, 6, "patient_id")])
def _(d: Path) -> None:
    write_csv(d, ex().set("lesions", 10, "patient_id", "7"))


@case("csv_unknown_patient_lesion", "a lesion of patient P999, who is not in patients.csv",
      [E("unknown-patient", L, 11, "patient_id")])
def _(d: Path) -> None:
    write_csv(d, ex().append("lesions", patient_id="P999", lesion_id="L1", site="liver", extranodal="yes",
                             diameter_cm="2", suvmax="5", x_mm="1", y_mm="2", z_mm="3", bridging_rt="no"))


@case("csv_unknown_patient_failure", "a failure row of patient P999",
      [E("unknown-patient", F, 6, "patient_id")])
def _(d: Path) -> None:
    write_csv(d, ex().append("failures", patient_id="P999", failure_id="F1", scan_date="2018-05-01",
                             site="lung", extranodal="yes"))


@case("csv_unknown_baseline_lesion", "P002's failure names lesion L7, which P002 does not have",
      [E("unknown-lesion", F, 4, "baseline_lesion_id")])
def _(d: Path) -> None:
    write_csv(d, ex().set("failures", 4, "baseline_lesion_id", "L7"))


# --- CSV: dates of a patient ------------------------------------------------------------------------------

@case("csv_before_index", "last follow-up before the infusion",
      [E("before-index", P, 4, "last_followup_date")])
def _(d: Path) -> None:
    write_csv(d, ex().set("patients", 4, "last_followup_date", "2017-12-01"))


@case("csv_progression_after_death", "P002 died before the recorded progression",
      [E("progression-after-death", P, 3, "progression_date"), E("followup-after-death", P, 3,
                                                                  "last_followup_date")])
def _(d: Path) -> None:
    write_csv(d, ex().set("patients", 3, "death_date", "2018-04-20"))


@case("csv_progression_after_followup", "P004's progression after the last follow-up",
      [E("progression-after-followup", P, 5, "progression_date")])  # not also its failure row (skipped)
def _(d: Path) -> None:
    write_csv(d, ex().set("patients", 5, "progression_date", "2019-02-01"))


@case("csv_death_after_followup", "P002's death after the last follow-up",
      [W("death-after-followup", P, 3, "death_date")])
def _(d: Path) -> None:
    write_csv(d, ex().set("patients", 3, "death_date", "2018-12-01"))


@case("csv_failure_without_progression", "a failure row for P003, who has no progression date",
      [E("failure-without-progression", F, 6, "patient_id")])
def _(d: Path) -> None:
    write_csv(d, ex().append("failures", patient_id="P003", failure_id="F1", scan_date="2018-09-01",
                             baseline_lesion_id="L1"))


@case("csv_failure_before_progression", "P004's failure scan before the progression date",
      [E("failure-before-progression", F, 5, "scan_date")])
def _(d: Path) -> None:
    write_csv(d, ex().set("failures", 5, "scan_date", "2018-08-01"))


@case("csv_failure_after_followup", "P004's failure scan after the last follow-up",
      [W("failure-after-followup", F, 5, "scan_date")])
def _(d: Path) -> None:
    write_csv(d, ex().set("failures", 5, "scan_date", "2019-02-01"))


@case("csv_progression_without_failures", "P004 progressed but has no failure row",
      [W("progression-without-failures", P, 5, "progression_date")])
def _(d: Path) -> None:
    write_csv(d, ex().delete_row("failures", 5))


@case("csv_bad_progression_year", "P001's progression typed 2081 for 2018: one finding, not one per "
      "failure row", [E("progression-after-followup", P, 2, "progression_date")])
def _(d: Path) -> None:
    write_csv(d, ex().set("patients", 2, "progression_date", "2081-04-02"))


# --- CSV: covariates and headers ---------------------------------------------------------------------------

def _with_column(t: Tables, table: str, name: str, values: list[str]) -> Tables:
    t.data[table] = [r + [v] for r, v in zip(t.data[table], [name, *values], strict=True)]
    return t


@case("csv_covariate_unknown", "age 'unknown' in an undeclared number column",
      [W("odd-cell", P, 4, "age")])
def _(d: Path) -> None:
    write_csv(d, ex().set("patients", 4, "age", "unknown"))


@case("csv_covariate_unit_in_cell", "age '67 y' in an undeclared number column",
      [W("odd-cell", P, 5, "age")])
def _(d: Path) -> None:
    write_csv(d, ex().set("patients", 5, "age", "67 y"))


@case("csv_covariate_ecog_word", "'ECOG 1' in an undeclared number column ecog",
      [W("odd-cell", P, 3, "ecog")])
def _(d: Path) -> None:
    write_csv(d, _with_column(ex(), "patients", "ecog", ["0", "ECOG 1", "1", "2", "0"]))


@case("csv_covariate_declared_number", "age declared a number in study.toml; one cell '67 y'",
      [E("bad-number", P, 5, "age")])
def _(d: Path) -> None:
    write_csv(d, ex().set("patients", 5, "age", "67 y"))
    (d / "study.toml").write_text('[covariates.age]\ntype = "number"\nlabel = "Age"\nunit = "years"\n'
                                  'step = 10\n\n[covariates.sex]\ntype = "category"\nlevels = ["F", "M"]\n',
                                  encoding="utf-8")


@case("csv_covariate_declared_category", "ecog declared a category 0/1/2; one cell '3'; a column not "
      "declared is listed", [E("bad-category", P, 6, "ecog"), W("unknown-column", P, 1)])
def _(d: Path) -> None:
    write_csv(d, _with_column(ex(), "patients", "ecog", ["0", "1", "1", "2", "3"]))
    (d / "study.toml").write_text('[covariates.ecog]\ntype = "category"\nlevels = ["0", "1", "2"]\n\n'
                                  '[covariates.age]\ntype = "whole number"\n', encoding="utf-8")


@case("csv_covariate_bad_declaration", "a covariate type misspelt in study.toml (located at its line)",
      [E("bad-setting", "study.toml", 3, "covariates.age.type")])
def _(d: Path) -> None:
    write_csv(d, ex())
    (d / "study.toml").write_text('# covariates\n[covariates.age]\ntype = "nmber"\n', encoding="utf-8")


def _headers(t: Tables, table: str, names: dict[str, str]) -> Tables:
    t.data[table][0] = [names.get(h, h) for h in t.data[table][0]]
    return t


_CLINICAL_HEADERS = {"suvmax": "SUV max", "diameter_cm": "Diameter (cm)", "lesion_id": "Lesion ID"}


@case("csv_header_suv_max", "lesions.csv headed 'SUVmax (g/ml)' and 'Diameter (cm)': the missing columns "
      "name the headers present",
      [E("missing-column", L, 1, "suvmax"), E("missing-column", L, 1, "diameter_cm"),
       W("unknown-column", L, 1)])
def _(d: Path) -> None:
    write_csv(d, _headers(ex(), "lesions", {"suvmax": "SUVmax (g/ml)", "diameter_cm": "Diameter (cm)"}))


@case("csv_header_mapped", "clinical headers ('SUV max', 'Diameter (cm)', 'Lesion ID') mapped by [columns]",
      [])
def _(d: Path) -> None:
    write_csv(d, _headers(ex(), "lesions", _CLINICAL_HEADERS))
    lines = "".join(f'"{v}" = "{k}"\n' for k, v in _CLINICAL_HEADERS.items())
    (d / "study.toml").write_text(f"[columns]\n{lines}", encoding="utf-8")


# --- study.toml -------------------------------------------------------------------------------------------

@case("toml_syntax_error", "study.toml is not valid TOML", [E("bad-setting", "study.toml")])
def _(d: Path) -> None:
    write_csv(d, ex())
    (d / "study.toml").write_text("[classification\nwindow_days = 30\n", encoding="utf-8")


@case("toml_unknown_setting", "study.toml has a misspelt key",
      [E("bad-setting", "study.toml", None, "window_dayz")])
def _(d: Path) -> None:
    write_csv(d, ex())
    (d / "study.toml").write_text("[classification]\nwindow_dayz = 10\n", encoding="utf-8")


@case("toml_bad_type", "study.toml has text where a number belongs",
      [E("bad-setting", "study.toml", None, "window_days")])
def _(d: Path) -> None:
    write_csv(d, ex())
    (d / "study.toml").write_text("[classification]\nwindow_days = \"thirty\"\n", encoding="utf-8")


@case("toml_unknown_risk_factor", "study.toml names a patient risk factor that is no column",
      [E("bad-setting", "study.toml", None, "risk_factors.patient")])
def _(d: Path) -> None:
    write_csv(d, ex())
    (d / "study.toml").write_text('[risk_factors]\npatient = ["nosuchcov"]\n', encoding="utf-8")


@case("csv_identifying_column", "patients.csv has a column of patient names (read, never written)",
      [W("identifying-column", P, None, "patient_name")])
def _(d: Path) -> None:
    t = ex()
    rows = t.data["patients"]
    names = ["Anna Alpha", "Bert Beta", "Carl Gamma", "Dora Delta", "Emil Epsilon", "Fritz Zeta"]
    t.data["patients"] = [rows[0] + ["patient_name"]] + [r + [names[i % len(names)]]
                                                         for i, r in enumerate(rows[1:])]
    write_csv(d, t)


# --- Excel ------------------------------------------------------------------------------------------------

X = "study.xlsx"


@case("xlsx_missing_sheet", "the workbook has no lesions sheet", [E("missing-table", X)])
def _(d: Path) -> None:
    write_xlsx(d / X, ex(), skip=("lesions",))


@case("xlsx_empty_sheet", "the failures sheet is empty", [E("empty-file", f"{X}[failures]")])
def _(d: Path) -> None:
    t = ex()
    t.data["failures"] = []
    write_xlsx(d / X, t)


@case("xlsx_corrupt", "study.xlsx is not a workbook", [E("unreadable-file", X)])
def _(d: Path) -> None:
    (d / X).write_bytes(b"this is not a zip file\n" * 10)


@case("xlsx_numeric_ids", "patient P003 typed as the number 3.5 in both sheets",
      [W("numeric-id", f"{X}[patients]", 4, "patient_id"), W("numeric-id", f"{X}[lesions]", 7, "patient_id")])
def _(d: Path) -> None:
    write_xlsx(d / X, ex(), raw={("patients", 4, "patient_id"): 3.5, ("lesions", 7, "patient_id"): 3.5})


@case("xlsx_date_as_number", "a date cell that lost its date format (Excel day number 43891)",
      [E("bad-date", f"{X}[patients]", 4, "last_followup_date")])
def _(d: Path) -> None:
    write_xlsx(d / X, ex(), raw={("patients", 4, "last_followup_date"): 43891})


@case("xlsx_date_as_text", "a date typed as text month/day/year",
      [E("bad-date", f"{X}[patients]", 6, "index_date")])
def _(d: Path) -> None:
    write_xlsx(d / X, ex(), raw={("patients", 6, "index_date"): "06/02/2018"})


@case("xlsx_negative_suv", "suvmax -3 in a number cell", [E("non-positive", f"{X}[lesions]", 9, "suvmax")])
def _(d: Path) -> None:
    write_xlsx(d / X, ex(), raw={("lesions", 9, "suvmax"): -3.0})


@case("xlsx_bad_boolean", "extranodal as the number 2", [E("bad-boolean", f"{X}[lesions]", 4, "extranodal")])
def _(d: Path) -> None:
    write_xlsx(d / X, ex(), raw={("lesions", 4, "extranodal"): 2})


@case("xlsx_duplicate_lesion", "P001 has two lesions L1",
      [E("duplicate-id", f"{X}[lesions]", 3, "lesion_id")])
def _(d: Path) -> None:
    write_xlsx(d / X, ex().set("lesions", 3, "lesion_id", "L1"))


@case("xlsx_workbook_path", "the workbook is given by its path; a failure row of an unknown patient",
      [E("unknown-patient", f"{X}[failures]", 6, "patient_id")], target=X)
def _(d: Path) -> None:
    write_xlsx(d / X, ex().append("failures", patient_id="P999", failure_id="F1", scan_date="2018-05-01",
                                  site="lung", extranodal="yes"))


# --- Parquet ----------------------------------------------------------------------------------------------

@case("parquet_corrupt", "patients.parquet is damaged", [E("unreadable-file", "patients.parquet")])
def _(d: Path) -> None:
    write_parquet(d, ex())
    data = (d / "patients.parquet").read_bytes()
    (d / "patients.parquet").write_bytes(data[: len(data) // 2])


@case("parquet_no_columns", "lesions.parquet has no columns", [E("empty-file", "lesions.parquet")])
def _(d: Path) -> None:
    write_parquet(d, ex(), skip=("lesions",))
    pq.write_table(pa.table({}), d / "lesions.parquet")


@case("parquet_float_ids", "lesions.parquet stores the (numeric) patient ids as floating point",
      [W("numeric-id", "lesions.parquet", None, "patient_id")])
def _(d: Path) -> None:
    t = ex()
    ids = {"P001": "1", "P002": "2", "P003": "3", "P004": "4", "007": "7"}
    for table, rows in t.data.items():
        j = t.col(table, "patient_id")
        for r in rows[1:]:
            r[j] = ids[r[j]]

    def as_float(table: str, df: pd.DataFrame) -> pd.DataFrame:
        if table == "lesions":
            df["patient_id"] = df["patient_id"].astype("float64")
        return df

    write_parquet(d, t, change=as_float)


@case("parquet_missing_column", "lesions.parquet has no extranodal column",
      [E("missing-column", "lesions.parquet", 1, "extranodal")])
def _(d: Path) -> None:
    write_parquet(d, ex().drop_column("lesions", "extranodal"))


@case("parquet_null_required", "a null suvmax", [E("blank-cell", "lesions.parquet", 5, "suvmax")])
def _(d: Path) -> None:
    write_parquet(d, ex().set("lesions", 5, "suvmax", ""))


@case("parquet_unknown_patient", "a failure row of patient P999",
      [E("unknown-patient", "failures.parquet", 6, "patient_id")])
def _(d: Path) -> None:
    write_parquet(d, ex().append("failures", patient_id="P999", failure_id="F1", scan_date="2018-05-01",
                                 site="lung", extranodal="yes"))


@case("parquet_before_index", "P004's progression (a timestamp) before the infusion",
      [E("before-index", "patients.parquet", 5, "progression_date")])
def _(d: Path) -> None:
    write_parquet(d, ex().set("patients", 5, "progression_date", "2017-08-30"))


@case("parquet_tz_dates", "dates stored as time-zone-aware timestamps; 22 years of follow-up",
      [W("implausible", "patients.parquet", 4, "last_followup_date")])
def _(d: Path) -> None:
    def tz(table: str, df: pd.DataFrame) -> pd.DataFrame:
        for c in df.columns:
            if c in _DATE_COLUMNS:
                df[c] = df[c].dt.tz_localize("Europe/Berlin")
        return df

    write_parquet(d, ex().set("patients", 4, "last_followup_date", "2040-03-01"), change=tz)


# ---------------------------------------------------------------------------------------------------------

def _finding_order(f: Finding) -> tuple[str, str, str, int, str]:
    return (f[0], f[1], f[2], f[3] or 0, f[4] or "")


def exit_codes(findings: tuple[Finding, ...]) -> tuple[int, int]:
    """Exit codes of pofa validate without and with --strict."""
    if any(f[0] == "error" for f in findings):
        return 2, 2
    return (1, 2) if findings else (0, 0)


def build(dest: Path = CORPUS) -> list[str]:
    """Write every case folder (with its expected.json) under ``dest``; returns the case names."""
    names = []
    for c in CASES:
        folder = dest / c.name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        c.build(folder)
        code, strict = exit_codes(c.findings)
        expected = {
            "description": c.description,
            "target": c.target,
            "exit_code": code,
            "exit_code_strict": strict,
            "findings": [dict(zip(("severity", "code", "file", "row", "column"), f, strict=True))
                         for f in sorted(c.findings, key=_finding_order)],
        }
        (folder / "expected.json").write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
        names.append(c.name)
    if len(set(names)) != len(names):
        raise SystemExit("two cases share a name")
    return names


if __name__ == "__main__":
    built = build(Path(sys.argv[1]) if len(sys.argv) > 1 else CORPUS)
    print(f"wrote {len(built)} cases under {CORPUS if len(sys.argv) == 1 else sys.argv[1]}")
