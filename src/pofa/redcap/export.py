"""REDCap's flat records export as the format's three tables.

The export (the web page's "CSV (raw)" or "CSV (labels)", or the API's flat CSV) is one table: the record id
first, ``redcap_event_name`` in longitudinal projects, ``redcap_repeat_instrument`` and
``redcap_repeat_instance`` for repeating instruments (blank on the record's own row), checkbox fields as one
``field___code`` column per choice, and ``<form>_complete`` (0 incomplete, 1 unverified, 2 complete). A raw
export holds choice codes, a labels export their labels; "CSV (labels)" also writes field labels as headers
(resolved against the dictionary, in its order). Dates are Y-M-D whatever their display format.

The record becomes a ``patients`` row (its non-repeating fields; over all events of a longitudinal project);
each instance of the repeating lesions and failures instruments becomes a ``lesions`` or ``failures`` row.
Fields of non-repeating forms that the format does not name become patient covariates, further fields of the
lesions form lesion covariates (fields marked as identifiers never). The tables keep the export's line as row
number, so every finding points at the export's line, the REDCap field and the record, instrument and
instance. The export is only read.
"""

from __future__ import annotations

import csv
import enum
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from pofa.errors import PofaError
from pofa.findings import Finding, Severity
from pofa.io.readers import TEXT_DTYPE, RawTable
from pofa.redcap.config import RedcapSettings
from pofa.redcap.dictionary import REDCAP_TABLES, DataDictionary, Field, RedcapError, checkbox_code
from pofa.schema import TABLES, Kind, TableName


class RedcapCode(enum.StrEnum):
    """Codes of the findings met while reading an export (besides the study checks' own codes)."""

    BAD_EXPORT = "redcap-bad-export"
    UNKNOWN_COLUMN = "redcap-unknown-column"
    MISSING_FIELD = "redcap-missing-field"
    MISSING_RECORD = "redcap-missing-record"
    ORPHAN_INSTANCE = "redcap-orphan-instance"
    DUPLICATE_INSTANCE = "redcap-duplicate-instance"
    NOT_REPEATING = "redcap-not-repeating"
    UNUSED_INSTRUMENT = "redcap-unused-instrument"
    UNKNOWN_CHOICE = "redcap-unknown-choice"
    CONFLICT = "redcap-conflict"
    INCOMPLETE_FORM = "redcap-incomplete-form"


_E, _W = Severity.ERROR, Severity.WARNING

#: Every REDCap finding code with its severity and meaning (docs/data-entry.md lists the same table).
REDCAP_CODES: dict[RedcapCode, tuple[Severity, str]] = {
    RedcapCode.BAD_EXPORT: (_E, "The export has no record id column, or a row is not a CSV row."),
    RedcapCode.UNKNOWN_COLUMN: (
        _W, "A column of the export is not a field of the dictionary; it is ignored."),
    RedcapCode.MISSING_FIELD: (
        _E, "A field the format needs is not in the dictionary, not on the right form, or not exported."),
    RedcapCode.MISSING_RECORD: (
        _E, "A row has no record id, or a record has instances but no data on its own (patients) row."),
    RedcapCode.ORPHAN_INSTANCE: (
        _E, "A repeating row names no form of the dictionary, or its instance is not a whole number >= 1."),
    RedcapCode.DUPLICATE_INSTANCE: (_E, "The same record, event, instrument and instance appear twice."),
    RedcapCode.NOT_REPEATING: (
        _W, "Lesions or failures data on the record's own row: the instrument is not marked as repeating."),
    RedcapCode.UNUSED_INSTRUMENT: (
        _W, "A repeating instrument that is neither lesions nor failures: ignored."),
    RedcapCode.UNKNOWN_CHOICE: (_E, "A coded field holds a value that is neither a code nor a label."),
    RedcapCode.CONFLICT: (_E, "A patient field has different values in two events of the same record."),
    RedcapCode.INCOMPLETE_FORM: (_W, "A form is marked Incomplete (0); it is read as it is."),
}

_SPECIAL = {
    "redcap_event_name": "Event Name",
    "redcap_repeat_instrument": "Repeat Instrument",
    "redcap_repeat_instance": "Repeat Instance",
    "redcap_data_access_group": "Data Access Group",
    "redcap_survey_identifier": "Survey Identifier",
}
_COMPLETE = {"0": 0, "incomplete": 0, "1": 1, "unverified": 1, "2": 2, "complete": 2}
_CHECKED = {"1", "checked"}
_UNCHECKED = {"0", "unchecked"}


def _rf(code: RedcapCode, file: str, row: int | None, column: str | None, message: str,
        hint: str) -> Finding:
    return Finding(REDCAP_CODES[code][0], str(code), file, row, column, message, hint)


def _norm_label(text: str) -> str:
    """A field label as compared with a labels header: tags removed, blanks collapsed, case ignored."""
    return " ".join(re.sub(r"<[^>]*>", "", text).split()).casefold()


def _form_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")


@dataclass(frozen=True, slots=True)
class _Col:
    """What one column of the export holds."""

    kind: str  # record, special, field, checkbox, complete, timestamp
    name: str  # raw name (field name, special name, <form>_complete)
    field: Field | None = None
    code: str = ""
    form: str = ""


def _expected_columns(d: DataDictionary) -> list[tuple[_Col, str]]:
    """The columns a full export has, in REDCap's order, each with its header in a labels export."""
    rec = d.fields[0]
    out: list[tuple[_Col, str]] = [(_Col("record", rec.name, rec, form=rec.form), rec.label)]
    out += [(_Col("special", n), lab) for n, lab in _SPECIAL.items()]
    for form in d.forms:
        for f in d.form_fields(form):
            if f is rec or f.type == "descriptive":
                continue
            if f.type == "checkbox":
                out += [(_Col("checkbox", f"{f.name}___{checkbox_code(c)}", f, c, f.form),
                         f"{f.label} (choice={lab})") for c, lab in f.choices]
            else:
                out.append((_Col("field", f.name, f, form=f.form), f.label))
        out.append((_Col("complete", f"{form}_complete", form=form), "Complete?"))
    return out


def _resolve_header(header: list[str], d: DataDictionary) -> tuple[list[_Col | None], bool]:
    """Each header's column, and whether the header holds labels (the web page's "CSV (labels)")."""
    expected = _expected_columns(d)
    by_name = {c.name: c for c, _ in expected}
    forms = set(d.forms)

    def raw(h: str) -> _Col | None:
        key = h.strip().lower()
        if key in by_name:
            return by_name[key]
        if key.endswith("_timestamp") and key[: -len("_timestamp")] in forms:
            return _Col("timestamp", key, form=key[: -len("_timestamp")])
        return None

    resolved = [raw(h) for h in header]
    if all(c is not None for c in resolved) or (resolved and resolved[0] is not None
                                                and sum(c is None for c in resolved) * 2 < len(resolved)):
        return resolved, False
    # Labels: walk the dictionary's order, so that repeated labels ("Complete?") find their own column.
    out: list[_Col | None] = []
    used: set[int] = set()
    pos = 0
    for h in header:
        want = _norm_label(h)
        hit = next((i for i in range(pos, len(expected))
                    if i not in used and _norm_label(expected[i][1]) == want), None)
        if hit is None:
            hit = next((i for i in range(len(expected))
                        if i not in used and _norm_label(expected[i][1]) == want), None)
        if hit is None:
            c = raw(h)
            out.append(c)
            continue
        used.add(hit)
        pos = hit + 1
        out.append(expected[hit][0])
    if out and out[0] is None:
        out[0] = expected[0][0]  # REDCap always writes the record id first
    return out, True


@dataclass(slots=True)
class _Target:
    """A column of an output table and the export column(s) it is read from."""

    column: str
    kind: Kind | None  # the format's kind; None for a covariate
    field: Field
    index: int  # position in the export
    code: str = ""  # checkbox choice


@dataclass(frozen=True, slots=True)
class RedcapImport:
    """An export read into the format's tables, with what was met on the way.

    Attributes
    ----------
    tables : dict
        The tables (text cells, indexed by the export's line) for :func:`pofa.validation.validate_tables`.
    findings : tuple of Finding
        Problems of the export itself (each at the export's line, the REDCap field, and with the record,
        event, instrument and instance in the message).
    source : str
        The export's file name.
    files : tuple of pathlib.Path
        The files read (export and dictionary), for checksums.
    """

    tables: dict[TableName, RawTable]
    findings: tuple[Finding, ...]
    source: str
    files: tuple[Path, ...] = ()
    _where: dict[TableName, dict[int, str]] = field(default_factory=dict)
    _fields: dict[TableName, dict[str, str]] = field(default_factory=dict)
    _cell_lines: dict[tuple[int, str], int] = field(default_factory=dict)
    _missing_records: frozenset[str] = frozenset()
    _missing_fields: frozenset[tuple[TableName, str]] = frozenset()

    def locate(self, findings: Iterable[Finding]) -> list[Finding]:
        """Point the study checks' findings at the export: its line, the REDCap field, the record.

        Parameters
        ----------
        findings : iterable of Finding
            Findings of :func:`pofa.validation.validate_tables` on :attr:`tables`.

        Returns
        -------
        list of Finding
            The same findings with ``file`` the export, ``column`` the REDCap field and the record,
            instrument and instance leading the message. An unknown-patient finding for a record already
            reported as missing is left out (one root cause, one finding).
        """
        by_source = {t.source: name for name, t in self.tables.items()}
        out: list[Finding] = []
        for f in findings:
            table = by_source.get(f.file)
            if table is None:
                out.append(f)
                continue
            if f.code == "unknown-patient" and f.row is not None:
                rec = self.tables[table].frame.at[f.row, "patient_id"] if f.row in self.tables[
                    table].frame.index else None
                if rec in self._missing_records:
                    continue
            if f.code == "missing-column" and (table, f.column or "") in self._missing_fields:
                continue  # already reported against the dictionary or the export's header
            column = self._fields.get(table, {}).get(f.column or "", f.column)
            row = f.row
            if row is not None and f.column is not None and table is TableName.PATIENTS:
                row = self._cell_lines.get((row, f.column), row)
            where = self._where.get(table, {}).get(f.row) if f.row is not None else None
            message = f"{where}: {f.message}" if where else f.message
            if f.code == "missing-column" and column:
                message = (f"the {table.value} table needs the REDCap field '{column}' "
                           f"({table.value}.{f.column}), which the export lacks")
            out.append(replace(f, file=self.source, row=row, column=column, message=message))
        return out


class _Reader:
    """One pass over an export's rows."""

    def __init__(self, header: list[str], d: DataDictionary, settings: RedcapSettings, source: str) -> None:
        self.d, self.settings, self.source = d, settings, source
        self.findings: list[Finding] = []
        self.missing_fields: set[tuple[TableName, str]] = set()
        self.cols, self.labels = _resolve_header(header, d)
        self.header = header
        for i, c in enumerate(self.cols):
            if c is None and header[i].strip():
                self.findings.append(_rf(RedcapCode.UNKNOWN_COLUMN, source, 1, header[i],
                                         f"the column '{header[i]}' is not a field of the dictionary "
                                         f"{d.source}; it is ignored",
                                         "export with the same project's dictionary, or ignore this"))
        self.index = {c.name: i for i, c in enumerate(self.cols) if c is not None}
        if d.record_id not in self.index:
            raise RedcapError(f"{source} has no record id column '{d.record_id}' (the dictionary's first "
                              "field); is it an export of this project?")
        self.rec_col = self.index[d.record_id]
        self.event_col = self.index.get("redcap_event_name")
        self.instr_col = self.index.get("redcap_repeat_instrument")
        self.inst_col = self.index.get("redcap_repeat_instance")
        mapping = settings.fields
        self.form_of: dict[TableName, str | None] = {}
        for t, key in ((TableName.LESIONS, "lesion_id"), (TableName.FAILURES, "failure_id")):
            f = d.field(mapping[t][key])
            self.form_of[t] = f.form if f is not None else None
            if f is None and TABLES[t].required:
                self.findings.append(_rf(
                    RedcapCode.MISSING_FIELD, d.source, None, mapping[t][key],
                    f"the dictionary has no field '{mapping[t][key]}' for {t.value}.{key}",
                    f"add the {t.value} instrument of 'pofa template --redcap', or map {key} in study.toml "
                    f"[redcap.{t.value}]"))
        self.repeating_forms = {self.form_of[t] for t in self.form_of if self.form_of[t]}
        self.targets = {t: self._targets(t) for t in REDCAP_TABLES}

    def _located_field(self, table: TableName, col: str, fname: str) -> Field | None:
        f = self.d.field(fname)
        spec = TABLES[table].column(col)
        required = spec is not None and spec.required and not spec.blank_ok
        form = self.form_of.get(table) if table is not TableName.PATIENTS else None
        if f is None:
            self.missing_fields.add((table, col))
            if required and (table is TableName.PATIENTS or form is not None):
                self.findings.append(_rf(
                    RedcapCode.MISSING_FIELD, self.d.source, None, fname,
                    f"the dictionary has no field '{fname}' for {table.value}.{col}",
                    f"add the field (see 'pofa template --redcap'), or map {col} to your field in study.toml "
                    f"[redcap.{table.value}]"))
            return None
        wrong = ((table is TableName.PATIENTS and f.form in self.repeating_forms)
                 or (table is not TableName.PATIENTS and f.form != form))
        if wrong:
            self.missing_fields.add((table, col))
            where = "a non-repeating form" if table is TableName.PATIENTS else f"the form '{form}'"
            self.findings.append(_rf(
                RedcapCode.MISSING_FIELD, self.d.source, f.line, fname,
                f"the field '{fname}' ({table.value}.{col}) is on the form '{f.form}', not on {where}",
                "move the field to that form, or map the column to another field in study.toml"))
            return None
        if f.name not in self.index and f.type != "checkbox":
            self.missing_fields.add((table, col))
            if required:
                self.findings.append(_rf(
                    RedcapCode.MISSING_FIELD, self.source, 1, fname,
                    f"the export has no column for the field '{fname}' ({table.value}.{col})",
                    "export all fields of the patients, lesions and failures instruments"))
            return None
        return f

    def _targets(self, table: TableName) -> list[_Target]:
        if table is not TableName.PATIENTS and self.form_of.get(table) is None:
            return []
        mapping = self.settings.fields[table]
        out: list[_Target] = []
        used = {self.d.record_id}
        for col in TABLES[table].columns:
            if col.name == "patient_id":
                continue
            f = self._located_field(table, col.name, mapping[col.name])
            if f is None:
                continue
            used.add(f.name)
            out.append(_Target(col.name, col.kind, f, self.index[f.name]))
        if table is TableName.FAILURES:
            return out  # further fields of the failures form are not read
        mapped = {fn for t in REDCAP_TABLES for fn in self.settings.fields[t].values()}
        if table is TableName.PATIENTS:
            forms = [fm for fm in self.d.forms if fm not in self.repeating_forms]
        else:
            forms = [self.form_of[table] or ""]
        taken = {t.column for t in out} | {"patient_id"}
        for form in forms:
            for f in self.d.form_fields(form):
                if (f.name in used or f.name in mapped or f.identifier or f.name in self.settings.ignore
                        or f.type == "descriptive"):
                    continue
                if f.type == "checkbox":
                    for code, _ in f.choices:
                        name = f"{f.name}___{checkbox_code(code)}"
                        if name in self.index and name not in taken:
                            out.append(_Target(name, None, f, self.index[name], code))
                            taken.add(name)
                elif f.name in self.index and f.name not in taken:
                    out.append(_Target(f.name, None, f, self.index[f.name]))
                    taken.add(f.name)
        return out

    # -- cells ----------------------------------------------------------------------------------------

    def decode(self, t: _Target, text: str, line: int, where: str) -> str:
        """One cell as the format's text (choice labels, yes/no, dates without time)."""
        text = text.strip()
        if not text:
            return ""
        f = t.field
        if f.type == "checkbox":
            low = text.casefold()
            label = dict(f.choices).get(t.code, "").casefold()
            if low in _CHECKED or (label and low == label):
                return "yes"
            if low in _UNCHECKED:
                return "no"
            self._unknown_choice(t, text, line, where, "1 (checked) or 0 (unchecked)")
            return text
        if f.coded:
            codes = {c: lab for c, lab in f.choices}
            labels = {lab.casefold(): c for c, lab in f.choices}
            code = None
            for attempt in (("label", "code") if self.labels else ("code", "label")):
                if attempt == "code" and text in codes:
                    code = text
                    break
                if attempt == "label" and text.casefold() in labels:
                    code = labels[text.casefold()]
                    break
            if code is None:
                shown = " | ".join(f"{c}, {lab}" for c, lab in f.choices)
                self._unknown_choice(t, text, line, where, shown)
                return text
            if f.is_yes_no:
                return "yes" if code == "1" else "no"
            return codes[code]
        if t.kind is Kind.DATE and f.validation.startswith("datetime") and len(text) > 10:
            return text[:10]
        return text

    def _unknown_choice(self, t: _Target, text: str, line: int, where: str, choices: str) -> None:
        self.findings.append(_rf(
            RedcapCode.UNKNOWN_CHOICE, self.source, line, self.header[t.index],
            f"{where}: '{text}' is not a choice of the field '{t.field.name}' ({choices})",
            "correct the value in REDCap, or export with the project's current data dictionary"))

    def form_of_row(self, cells: list[str]) -> str | None:
        """The one form whose fields (or completion status) hold values on a row, else ``None``."""
        forms = {c.form for i, c in enumerate(self.cols)
                 if c is not None and c.kind in ("field", "checkbox", "complete") and i < len(cells)
                 and cells[i].strip() and cells[i].strip().casefold() not in ("0", "unchecked")}
        return forms.pop() if len(forms) == 1 else None

    def complete(self, cells: list[str], form: str, line: int, where: str) -> None:
        i = self.index.get(f"{form}_complete")
        if i is None or i >= len(cells):
            return
        if _COMPLETE.get(cells[i].strip().casefold()) == 0:
            self.findings.append(_rf(
                RedcapCode.INCOMPLETE_FORM, self.source, line, f"{form}_complete",
                f"{where}: the form '{form}' is marked Incomplete",
                "finish the form in REDCap and mark it Complete (or Unverified); pofa reads it as it is"))


def _where(record: str, event: str, form: str | None = None, instance: str | None = None) -> str:
    text = f"record {record}"
    if event:
        text += f", event {event}"
    if form:
        text += f", {form}" + (f" instance {instance}" if instance else "")
    return text


def _rows(text: str, source: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise RedcapError(f"{source} is empty; export the records again from REDCap") from None
    except csv.Error as exc:
        raise RedcapError(f"{source} is not a CSV file ({exc})") from None
    rows: list[tuple[int, list[str]]] = []
    start = reader.line_num + 1
    try:
        for cells in reader:
            rows.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise RedcapError(f"{source}, line {start}: not a CSV row ({exc}); export the records "
                          "again") from None
    return header, rows


def parse_export(text: str, source: str, dictionary: DataDictionary,
                 settings: RedcapSettings | None = None) -> RedcapImport:
    """Read a records export (CSV text) into the format's tables.

    Parameters
    ----------
    text : str
        The export's CSV text.
    source : str
        The export's file name (findings name it).
    dictionary : DataDictionary
        The project's data dictionary.
    settings : RedcapSettings, optional
        Field mapping (``[redcap]`` of study.toml); the defaults of ``pofa template --redcap`` when omitted.

    Returns
    -------
    RedcapImport
        The format's tables and the findings of the import.

    Raises
    ------
    RedcapError
        When the text is not a CSV export of the project (empty, not CSV, no record id column).
    """
    settings = settings or RedcapSettings()
    header, rows = _rows(text.lstrip("\ufeff"), source)
    r = _Reader(header, dictionary, settings, source)
    lesion_form, failure_form = r.form_of[TableName.LESIONS], r.form_of[TableName.FAILURES]
    patient_forms = {f for f in dictionary.forms if f not in r.repeating_forms}
    records: dict[str, dict[str, tuple[str, int]]] = {}
    first_line: dict[str, int] = {}
    instances: dict[TableName, list[tuple[int, str, dict[str, str], str]]] = {
        TableName.LESIONS: [], TableName.FAILURES: []}
    seen: dict[tuple[str, str, str, str], int] = {}
    unused: set[str] = set()
    not_repeating: set[tuple[str, str]] = set()

    def cell(cells: list[str], i: int | None) -> str:
        return cells[i].strip() if i is not None and i < len(cells) else ""

    def instance_row(table: TableName, cells: list[str], line: int, rec: str, where: str) -> None:
        values = {t.column: r.decode(t, cell(cells, t.index), line, where) for t in r.targets[table]}
        instances[table].append((line, rec, values, where))

    for line, cells in rows:
        if not any(c.strip() for c in cells):
            continue
        rec, event = cell(cells, r.rec_col), cell(cells, r.event_col)
        instr_text, inst = cell(cells, r.instr_col), cell(cells, r.inst_col)
        if not rec:
            r.findings.append(_rf(RedcapCode.MISSING_RECORD, source, line, header[r.rec_col],
                                  "the row has no record id; it is ignored",
                                  "export the records again; the record id is never blank in REDCap"))
            continue
        first_line.setdefault(rec, line)
        if instr_text:
            form = next((fm for fm in dictionary.forms
                         if instr_text.lower() == fm or _form_key(instr_text) == fm), None)
            if form is None and r.labels:
                form = r.form_of_row(cells)  # a custom instrument label: the form whose fields hold data
            where = _where(rec, event, form or instr_text, inst)
            if form is None:
                r.findings.append(_rf(
                    RedcapCode.ORPHAN_INSTANCE, source, line, header[r.instr_col or 0],
                    f"{where}: the repeating instrument '{instr_text}' is not a form of the dictionary",
                    "export the records and the data dictionary of the same project"))
                continue
            if not inst.isdigit() or int(inst) < 1:
                r.findings.append(_rf(
                    RedcapCode.ORPHAN_INSTANCE, source, line, "redcap_repeat_instance",
                    f"{where}: the repeat instance '{inst}' is not a whole number of 1 or more",
                    "export the records again; REDCap numbers instances 1, 2, 3..."))
                continue
            key = (rec, event, form, str(int(inst)))
            if key in seen:
                r.findings.append(_rf(
                    RedcapCode.DUPLICATE_INSTANCE, source, line, "redcap_repeat_instance",
                    f"{where}: the same instance is already on line {seen[key]}",
                    "remove the repeated row (was the export edited or concatenated?)"))
                continue
            seen[key] = line
            if form == lesion_form:
                instance_row(TableName.LESIONS, cells, line, rec, where)
            elif form == failure_form:
                instance_row(TableName.FAILURES, cells, line, rec, where)
            elif form not in unused:
                unused.add(form)
                r.findings.append(_rf(
                    RedcapCode.UNUSED_INSTRUMENT, source, line, header[r.instr_col or 0],
                    f"the repeating instrument '{form}' is neither the lesions nor the failures form; "
                    "its rows are ignored",
                    "nothing to do if it is not needed; otherwise map its fields in study.toml [redcap]"))
            r.complete(cells, form, line, where)
            continue
        # The record's own row (one per event in a longitudinal project).
        store = records.setdefault(rec, {})
        forms_with_data: set[str] = set()
        for t in r.targets[TableName.PATIENTS]:
            where = _where(rec, event, t.field.form)
            value = r.decode(t, cell(cells, t.index), line, where)
            if not value:
                continue
            if t.field.type == "checkbox":
                if value == "yes" or t.column not in store:
                    store[t.column] = (value, line)
                if value == "yes":
                    forms_with_data.add(t.field.form)
                continue
            forms_with_data.add(t.field.form)
            old = store.get(t.column)
            if old is not None and old[0] != value:
                r.findings.append(_rf(
                    RedcapCode.CONFLICT, source, line, header[t.index],
                    f"{where}: '{value}' differs from '{old[0]}' on line {old[1]} of the same record",
                    "keep the field in one event only, or make the values agree"))
                continue
            if old is None:
                store[t.column] = (value, line)
        store.setdefault("\0line", ("", line))
        for form in sorted(forms_with_data & patient_forms):
            r.complete(cells, form, line, _where(rec, event, form))
        for table, form in ((TableName.LESIONS, lesion_form), (TableName.FAILURES, failure_form)):
            if form is None or not r.targets[table]:
                continue
            if any(cell(cells, t.index) for t in r.targets[table] if t.field.type != "checkbox"):
                where = _where(rec, event, f"{form} (not repeating)")
                if (rec, form) not in not_repeating:
                    not_repeating.add((rec, form))
                    r.findings.append(_rf(
                        RedcapCode.NOT_REPEATING, source, line, header[r.targets[table][0].index],
                        f"{where}: {form} data on the record's own row; only one {form} row per record "
                        "and event is possible",
                        f"make '{form}' a repeating instrument (Project Setup > Enable optional modules and "
                        "customizations > Repeating instruments), see docs/data-entry.md"))
                instance_row(table, cells, line, rec, where)
                r.complete(cells, form, line, where)

    # Records with instances but no data of their own.
    missing: set[str] = set()
    for table in (TableName.LESIONS, TableName.FAILURES):
        for line, rec, _, where in instances[table]:
            own = {k for k in records.get(rec, {}) if k != "\0line"}
            if not own and rec not in missing:
                missing.add(rec)
                r.findings.append(_rf(
                    RedcapCode.MISSING_RECORD, source, line, header[r.rec_col],
                    f"{where}: the record has {table.value} but no patients data (no row of its own, or "
                    "an empty one)",
                    "fill in the patients form of the record in REDCap, or delete the record's instances"))

    tables: dict[TableName, RawTable] = {}
    where_of: dict[TableName, dict[int, str]] = {}
    fields_of: dict[TableName, dict[str, str]] = {}
    cell_lines: dict[tuple[int, str], int] = {}
    path = Path(source)
    # Patients
    pcols = ["patient_id"] + [t.column for t in r.targets[TableName.PATIENTS]]
    prow: dict[int, list[str]] = {}
    where_of[TableName.PATIENTS] = {}
    for rec, store in records.items():
        data = {k: v for k, v in store.items() if k != "\0line"}
        if not data:
            if rec not in missing:
                missing.add(rec)
                r.findings.append(_rf(
                    RedcapCode.MISSING_RECORD, source, store["\0line"][1], header[r.rec_col],
                    f"record {rec}: no data in the patients form; the record is left out",
                    "fill in the patients form in REDCap, or delete the empty record"))
            continue
        line = min(v[1] for v in data.values())
        prow[line] = [rec] + [data.get(c, ("", line))[0] for c in pcols[1:]]
        for c, (_, ln) in data.items():
            cell_lines[(line, c)] = ln
        cell_lines[(line, "patient_id")] = first_line[rec]
        where_of[TableName.PATIENTS][line] = f"record {rec}"
    tables[TableName.PATIENTS] = _raw(TableName.PATIENTS, source, path, pcols, prow)
    fields_of[TableName.PATIENTS] = {"patient_id": dictionary.record_id} | {
        t.column: t.field.name for t in r.targets[TableName.PATIENTS] if t.kind is not None}
    for table in (TableName.LESIONS, TableName.FAILURES):
        if not r.targets[table] and table is TableName.FAILURES:
            continue
        cols = ["patient_id"] + [t.column for t in r.targets[table]]
        trow = {line: [rec] + [values[c] for c in cols[1:]] for line, rec, values, _ in instances[table]}
        tables[table] = _raw(table, source, path, cols, trow)
        where_of[table] = {line: where for line, _, _, where in instances[table]}
        fields_of[table] = {"patient_id": dictionary.record_id} | {
            t.column: t.field.name for t in r.targets[table] if t.kind is not None}
    return RedcapImport(tables, tuple(r.findings), source, (), where_of, fields_of, cell_lines,
                        frozenset(missing), frozenset(r.missing_fields))


def _raw(table: TableName, source: str, path: Path, cols: list[str],
         rows: dict[int, list[str]]) -> RawTable:
    lines = sorted(rows)
    # An optional format column that no record fills (a project made from the full dictionary, say the
    # radiotherapy fields, used without them) is left out: the study then equals the CSV folder without it.
    keep = [j for j, c in enumerate(cols)
            if not ((spec := TABLES[table].column(c)) is not None and not spec.required
                    and all(not rows[ln][j].strip() for ln in lines))]
    cols = [cols[j] for j in keep]
    rows = {ln: [rows[ln][j] for j in keep] for ln in lines}
    data = {c: pd.Series([rows[ln][j] for ln in lines], dtype=TEXT_DTYPE) for j, c in enumerate(cols)}
    frame = pd.DataFrame(data, columns=pd.Index(cols, dtype=object))
    frame.index = pd.Index(lines, name="row", dtype="int64")
    return RawTable(table, f"{source}[{table.value}]", path, frame, {c: c for c in cols})


def read_export(export: Path, dictionary: DataDictionary,
                settings: RedcapSettings | None = None) -> RedcapImport:
    """Read a records export file (UTF-8 with or without BOM; else Windows-1252) into the format's tables.

    Parameters
    ----------
    export : pathlib.Path
        The CSV export. It is only read.
    dictionary : DataDictionary
        The project's data dictionary.
    settings : RedcapSettings, optional
        Field mapping; the defaults of ``pofa template --redcap`` when omitted.

    Returns
    -------
    RedcapImport
        The format's tables and the findings of the import.

    Raises
    ------
    RedcapError
        When the file cannot be read or is not an export of the project.
    """
    export = Path(export)
    from pofa.atomic import read_regular_bytes

    try:  # a pipe or device is refused, never read (it could block or never end)
        raw = read_regular_bytes(export, "the export")
    except PofaError as exc:
        raise RedcapError(str(exc)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    return parse_export(text, export.name, dictionary, settings)
