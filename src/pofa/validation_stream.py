"""Checking a study with large CSV files block by block: memory for one block and the keys, not the files.

:func:`validate_study` gives the findings :meth:`pofa.study.Study.validate` gives (``pofa validate``), with
the same rows and messages, but reads a study folder of large CSV files (:data:`STREAM_BYTES` or more) one
block of rows at a time (:func:`pofa.io.csv_stream.iter_csv_chunks`). Each block is parsed and checked cell
by cell and row by row (:func:`pofa.validation.parse_table` and the per-row checks), then only what the checks
across rows and tables need is kept:

* patients: ``patient_id`` and the four dates (with whether each date cell had a finding);
* lesions: ``patient_id`` and ``lesion_id``;
* failures: ``patient_id``, ``failure_id``, ``scan_date``, ``baseline_lesion_id``, ``site`` and
  ``extranodal``;
* in every table, the columns the study's risk factors name (typed from the whole column, as the check of the
  settings needs them).

Any other extra column is not kept: a declared covariate is checked cell by cell, block by block; an
undeclared one is tallied block by block (:class:`~pofa.validation_infer.InferTally`: counts of the cells of
each type, the first few odd cells of each type, and the counts the privacy check by content needs,
:class:`~pofa.privacy.ContentTally`), and typed, checked and examined at the end from these tallies.

So the memory in use is one block of rows (:data:`~pofa.io.csv_stream.BLOCK_BYTES` of the file) plus these
columns, plus the findings kept (at most :data:`~pofa.findings.MAX_PER_KIND` of a kind one by one, the rest
counted), plus a bounded tally per other extra column. Any other study (Parquet, a workbook, a REDCap export,
small files), and any file Arrow cannot read exactly as the whole-file reader does (not UTF-8, a ragged row),
is checked by :func:`pofa.study.load_study`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from pofa.findings import Finding, ValidationReport
from pofa.io.csv_stream import BLOCK_BYTES, StreamFallback, iter_csv_chunks
from pofa.io.readers import TABLE_SUFFIXES, RawTable, read_csv_table, rename_columns
from pofa.privacy import ContentTally
from pofa.schema import TABLES, TableName
from pofa.settings import SETTINGS_FILE, Settings, load_settings
from pofa.template import example_row_findings
from pofa.validation import (
    TypedTable,
    _check_coordinates,
    _check_radiotherapy,
    _Commas,
    _parse_declared,
    check_failures,
    check_lesions,
    check_patients,
    parse_extras,
    parse_table,
)
from pofa.validation_collect import Collector
from pofa.validation_infer import InferTally

__all__ = ["STREAM_BYTES", "validate_study"]

#: A study folder with a CSV table of at least this many bytes is checked block by block.
STREAM_BYTES = 8 << 20

#: Columns kept from every block for the checks across rows and tables.
_KEYS = {
    TableName.PATIENTS: ("patient_id", "index_date", "last_followup_date", "progression_date", "death_date"),
    TableName.LESIONS: ("patient_id", "lesion_id"),
    TableName.FAILURES: ("patient_id", "failure_id", "scan_date", "baseline_lesion_id", "site", "extranodal"),
}


def _plan(path: Path, stream_bytes: int) -> dict[TableName, Path] | None:
    """The CSV file of each table when the study can be checked block by block, else ``None``."""
    try:
        if not path.is_dir():
            return None
        toml = path / SETTINGS_FILE
        if toml.is_file() and b"redcap" in toml.read_bytes():
            return None
        listing = {p.name.lower(): p for p in path.iterdir()}
    except OSError:
        return None
    plan: dict[TableName, Path] = {}
    for name in TableName:
        found = [listing[f"{name.value}{ext}"] for ext in TABLE_SUFFIXES if f"{name.value}{ext}" in listing]
        if not found:
            if TABLES[name].required:
                return None
            continue
        try:
            if len(found) > 1 or found[0].suffix.lower() != ".csv" or not found[0].is_file():
                return None
        except OSError:
            return None
        plan[name] = found[0]
    try:
        big = max(p.stat().st_size for p in plan.values())
    except (OSError, ValueError):
        return None
    return plan if big >= stream_bytes else None


def _named_columns(settings: Settings) -> set[str]:
    """Every word of the risk factors (a superset of the columns they name)."""
    texts = [*settings.risk_factors.lesion, *settings.risk_factors.patient]
    return {w for t in texts for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", t)}


def _placeholder(index: pd.Index) -> pd.Series:
    """An all-blank column of one byte per row (a column present but not kept, for the column checks)."""
    codes = np.full(len(index), -1, dtype=np.int8)
    return pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index([], dtype=object)), index=index)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The blocks' frames as one; category columns stay categories (their categories united)."""
    if len(frames) == 1:
        return frames[0]
    index = pd.Index(np.concatenate([f.index.to_numpy() for f in frames]), name="row")
    columns: dict[str, object] = {}
    for c in frames[0].columns:
        if isinstance(frames[0][c].dtype, pd.CategoricalDtype):
            columns[c] = pd.Series(union_categoricals([f[c] for f in frames]), index=index)
        else:
            columns[c] = pd.Series(pd.concat([f[c] for f in frames]).to_numpy(), index=index,
                                   dtype=frames[0][c].dtype)
    return pd.DataFrame(columns, index=index, columns=frames[0].columns)


class _Table:
    """One table checked block by block: the columns kept, the extra columns' tallies, the column order.

    An extra column a risk factor names is kept whole (the settings check needs its type and values); a
    declared covariate is checked block by block; any other extra column is tallied block by block
    (:class:`~pofa.validation_infer.InferTally`: its type, its odd cells, its content for the privacy check).
    """

    def __init__(self, name: TableName, keep: set[str], settings: Settings) -> None:
        self.name = name
        self.keep = keep
        self.settings = settings
        self.declared = {c.column: c for c in settings.covariates if c.table == name.value}
        self.frames: list[pd.DataFrame] = []
        self.unparsed: list[pd.DataFrame] = []
        self.extra_text: list[pd.DataFrame] = []
        self.columns: list[str] = []
        self.extras: list[str] = []
        self.whole: list[str] = []
        self.tallies: dict[str, InferTally] = {}
        self.raw: RawTable | None = None

    def _start(self, raw: RawTable, t: TypedTable) -> None:
        from pofa.privacy import category_of_name, kept_columns

        self.raw, self.extras = raw, list(t.covariates)
        self.columns = [*t.frame.columns, *t.covariates]
        self.whole = [c for c in self.extras if c in self.keep]
        private = kept_columns(self.settings).get(self.name.value, frozenset())
        for c in self.extras:
            if c not in self.keep and c not in self.declared:
                content = c not in private and category_of_name(c) is None
                self.tallies[c] = InferTally(raw.source, c, self.settings.study.decimal, content)

    def add(self, raw: RawTable, t: TypedTable, out: Collector, commas: _Commas) -> None:
        if self.raw is None:
            self._start(raw, t)
        cols = [c for c in t.frame.columns if c in self.keep]
        frame = t.frame[cols]
        # ids that repeat (a patient's in the lesions) as categories: a small integer a cell, each id once
        small = {c: frame[c].astype("category") for c in frame.columns
                 if c in _KEYS[self.name] and frame[c].dtype == object
                 and (self.name is not TableName.PATIENTS or c != "patient_id")}
        frame = frame.assign(**small) if small else frame
        self.frames.append(frame)
        self.unparsed.append(t.unparsed[[c for c in cols if c in t.unparsed]])
        if self.whole:
            self.extra_text.append(raw.frame[self.whole])
        for c in self.extras:
            if c in self.whole:
                continue
            if c in self.declared:  # parsed cell by cell: its findings, not its values, are kept
                _parse_declared(raw, self.declared[c], out, self.settings.study.decimal, commas)
            else:
                self.tallies[c].add(raw.frame[c])

    def typed(self, out: Collector, commas: _Commas) -> tuple[TypedTable, pd.DataFrame,
                                                              dict[str, ContentTally | None]]:
        """The key columns as one typed table (for the checks across rows and tables), a frame with every
        column (those not kept all blank) for the checks of the settings, and the content of the tallied
        extra columns for the privacy check."""
        assert self.raw is not None
        frame = _concat(self.frames)
        unparsed = pd.concat(self.unparsed) if len(self.unparsed) > 1 else self.unparsed[0]
        self.frames, self.unparsed = [], []
        if self.whole:
            text = pd.concat(self.extra_text) if len(self.extra_text) > 1 else self.extra_text[0]
            self.extra_text = []
            whole = RawTable(self.name, self.raw.source, self.raw.path, text, self.raw.headers)
            parsed = parse_extras(whole, self.whole, self.settings.covariates, out,
                                  self.settings.study.decimal, commas)
            frame = pd.concat([frame, pd.DataFrame(parsed, index=frame.index)], axis=1)
        content = {c: t.finish(out, commas) for c, t in self.tallies.items()}
        keys = [c for c in _KEYS[self.name] if c in frame]
        typed = TypedTable(self.name, self.raw.source, frame[keys], tuple(self.extras),
                           unparsed[[c for c in keys if c in unparsed]])
        every = pd.DataFrame({c: frame[c] if c in frame else _placeholder(frame.index) for c in self.columns},
                             index=frame.index, columns=self.columns)
        return typed, every, content


def _stream_table(path: Path, name: TableName, settings: Settings, out: Collector, read: list[Finding],
                  examples: list[Finding], keep: set[str],
                  block_bytes: int) -> tuple[TypedTable, pd.DataFrame, dict[str, ContentTally | None]]:
    table = _Table(name, keep, settings)
    commas = _Commas()
    seen: set[tuple[str, int | None, str | None, str]] = set()
    for raw in iter_csv_chunks(path, name, read, block_bytes):
        if settings.columns:
            renamed: list[Finding] = []
            raw = rename_columns(raw, settings.columns, renamed)
            for f in renamed:
                if (f.code, f.row, f.column, f.message) not in seen:
                    seen.add((f.code, f.row, f.column, f.message))
                    read.append(f)
        examples.extend(example_row_findings({name: raw}))
        t = parse_table(raw, out, settings.covariates, settings.study.decimal, commas=commas, extras=False)
        if name in (TableName.LESIONS, TableName.FAILURES):
            _check_coordinates(t, out)
            _check_radiotherapy(t, out)
        table.add(raw, t, out, commas)
        out.header_once = True
    out.header_once = False
    typed, every, content = table.typed(out, commas)
    commas.report(typed.source, out)
    return typed, every, content


def _validate_streaming(path: Path, plan: dict[TableName, Path],
                        block_bytes: int = BLOCK_BYTES) -> ValidationReport:
    settings, setting_findings = load_settings(path)
    out = Collector()
    read: list[Finding] = []
    examples: list[Finding] = []
    typed: dict[TableName, TypedTable] = {}
    every: dict[TableName, pd.DataFrame] = {}
    content: dict[str, dict[str, ContentTally | None]] = {}
    named = _named_columns(settings)
    for name, file in plan.items():
        if name in _KEYS:
            keep = set(_KEYS[name]) | named
            typed[name], every[name], content[name.value] = _stream_table(file, name, settings, out, read,
                                                                          examples, keep, block_bytes)
            continue
        raw = read_csv_table(file, name, read)  # a response table: read whole
        if raw is None:
            continue
        if settings.columns:
            raw = rename_columns(raw, settings.columns, read)
        examples.extend(example_row_findings({name: raw}))
        typed[name] = parse_table(raw, out, settings.covariates, settings.study.decimal)
        every[name] = typed[name].frame
    from pofa.response.validate import check_response_tables

    patients, lesions = typed.get(TableName.PATIENTS), typed.get(TableName.LESIONS)
    flags = check_patients(patients, out) if patients is not None else None
    if lesions is not None:
        check_lesions(lesions, patients, out)
    failures = typed.get(TableName.FAILURES)
    if failures is not None:
        check_failures(failures, patients, lesions, out, flags)
    out.extend(check_response_tables(typed))
    from pofa.privacy import identifying_columns, identifying_findings
    from pofa.settings_check import risk_factor_findings

    study = risk_factor_findings(settings, every)
    columns = identifying_columns({n.value: f for n, f in every.items()},
                                  {n.value: t.covariates for n, t in typed.items()}, settings, content)
    study.extend(identifying_findings(columns, {n.value: t.source for n, t in typed.items()}))
    return ValidationReport.of(str(path), (*read, *setting_findings, *out.items, *examples, *study))


def validate_study(path: str | Path, stream_bytes: int = STREAM_BYTES,
                   block_bytes: int = BLOCK_BYTES) -> ValidationReport:
    """Check a study as :meth:`pofa.study.Study.validate` does, reading large CSV files block by block.

    Parameters
    ----------
    path : str or pathlib.Path
        The study folder or workbook.
    stream_bytes : int
        A study folder of CSV files of which one has at least this many bytes is checked block by block.
    block_bytes : int
        Bytes of a file parsed at a time.

    Returns
    -------
    ValidationReport
        Every problem of the study at once (the same findings as ``load_study(path).validate()``).
    """
    p = Path(path)
    plan = _plan(p, stream_bytes)
    if plan is not None:
        try:
            return _validate_streaming(p, plan, block_bytes)
        except StreamFallback:
            pass
    from pofa.study import load_study

    return load_study(p).validate()
