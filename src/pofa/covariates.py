"""Declared covariates: what a study column holds, how it is labelled and how it is reported.

A study may declare each covariate in ``study.toml`` (``[covariates.age]``: type, label, unit, reporting
step).
The declaration decides how cells are checked (a non-conforming cell of a declared column is an error) and how
the column appears in Table 1, the forest plot and the methods text.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class CovariateType(StrEnum):
    """The kinds of value a covariate column holds; the values are the words written in ``study.toml``."""

    NUMBER = "number"
    WHOLE_NUMBER = "whole number"
    YES_NO = "yes/no"
    CATEGORY = "category"
    DATE = "date"


class Summary(StrEnum):
    """How a numeric covariate is summarised in Table 1."""

    MEDIAN_IQR = "median"
    MEAN_SD = "mean"


@dataclass(frozen=True, slots=True)
class Covariate:
    """One declared covariate.

    Attributes
    ----------
    column : str
        The column's name in the study table (after any ``[columns]`` renaming).
    table : str
        ``"patients"`` or ``"lesions"``.
    type : CovariateType
        What each cell must hold.
    label : str
        Text shown in tables and figures; empty means a readable form of the column name.
    unit : str
        Unit shown after the label (``"years"``); empty for none.
    levels : tuple of str
        Categories in display order (type ``category`` only); the first is the reference level.
    step : float
        Reporting step of a number: hazard and odds ratios are given per ``step`` units (HR per 10 years).
    summary : Summary
        Table 1 summary of a number: median [IQR] (default) or mean (SD).
    """

    column: str
    table: str = "patients"
    type: CovariateType = CovariateType.NUMBER
    label: str = ""
    unit: str = ""
    levels: tuple[str, ...] = ()
    step: float = 1.0
    summary: Summary = Summary.MEDIAN_IQR

    def display_label(self) -> str:
        """The label with its unit, as printed: ``"Age (years)"``; the column name when no label is given.

        Returns
        -------
        str
            The label shown in Table 1, figures and the methods text.
        """
        base = self.label or self.column.replace("_", " ").strip().capitalize()
        return f"{base} ({self.unit})" if self.unit else base


#: The keys of a ``[covariates.NAME]`` table.
DECLARATION_KEYS = ("type", "label", "unit", "levels", "step", "summary", "table")
#: Tables a covariate may belong to.
COVARIATE_TABLES = ("patients", "lesions")


@dataclass(frozen=True, slots=True)
class DeclarationProblem:
    """A bad entry of ``[covariates]`` or ``[columns]`` in ``study.toml``.

    Attributes
    ----------
    key : str
        The dotted key concerned (``"covariates.age.type"``, ``"columns"``).
    line : int or None
        Line of ``study.toml`` where the entry is written, when found.
    message : str
        What is wrong.
    hint : str
        What to do.
    """

    key: str
    line: int | None
    message: str
    hint: str


def _line_of(lines: list[str], section: str, key: str | None = None) -> int | None:
    """1-based line of ``[section]`` (or of ``key`` inside it) in the TOML text; ``None`` if not found."""
    import re

    head = r"\.".join(r"\s*(?:\"|')?" + re.escape(p) + r"(?:\"|')?\s*" for p in section.split("."))
    start = None
    for i, line in enumerate(lines):
        if re.match(r"^\s*\[" + head + r"\]\s*(#.*)?$", line):
            start = i
            break
    if start is None:
        return None
    if key is None:
        return start + 1
    for j in range(start + 1, len(lines)):
        if re.match(r"^\s*\[", lines[j]):
            break
        if re.match(r"^\s*(?:\"|')?" + re.escape(key) + r"(?:\"|')?\s*=", lines[j]):
            return j + 1
    return start + 1


def _norm(name: str) -> str:
    from pofa.schema import normalise_header

    return normalise_header(name)


def parse_declarations(covariates: object, columns: object, text: str = ""
                       ) -> tuple[tuple[Covariate, ...], tuple[tuple[str, str], ...],
                                  list[DeclarationProblem]]:
    """``[covariates.NAME]`` tables and the ``[columns]`` table of ``study.toml``, checked.

    Parameters
    ----------
    covariates : object
        The parsed value of ``covariates`` (a table of tables), or ``None`` when absent.
    columns : object
        The parsed value of ``columns`` (header as written -> the format's column name), or ``None``.
    text : str
        The TOML text, used only to give each problem its line.

    Returns
    -------
    tuple
        The declared covariates (in file order), the header mapping as (normalised header, normalised
        column name) pairs, and the problems found (a bad declaration is left out, not guessed at).
    """
    import difflib
    import math

    from pofa.schema import TABLES, TableName

    lines = text.splitlines()
    problems: list[DeclarationProblem] = []
    out: list[Covariate] = []
    format_columns = {c.name for t in TABLES.values() for c in t.columns}

    def problem(key: str, line: int | None, message: str, hint: str) -> None:
        problems.append(DeclarationProblem(key, line, message, hint))

    if covariates is not None and not isinstance(covariates, dict):
        problem("covariates", _line_of(lines, "covariates"), "'covariates' must be a table of tables",
                'write one table per covariate: [covariates.age] with type = "number"')
        covariates = None
    for name, decl in (covariates or {}).items():
        section = f"covariates.{name}"
        where = _line_of(lines, section)
        column = _norm(name)
        if not isinstance(decl, dict):
            problem(section, where, f"[{section}] must be a table", f'write [{section}] then type = "number"')
            continue
        if not column:
            problem(section, where, "a covariate without a name ([covariates.\"\"])",
                    "name the table after the column: [covariates.age]")
            continue
        if column in format_columns:
            problem(section, where, f"'{column}' is a column of the format, not a covariate",
                    "declare only further columns; the format's columns have fixed types")
            continue
        ok = True
        for key in decl:
            if key not in DECLARATION_KEYS:
                close = difflib.get_close_matches(key, DECLARATION_KEYS, n=1)
                problem(f"{section}.{key}", _line_of(lines, section, key), f"unknown key {section}.{key}",
                        f"did you mean {close[0]}?" if close
                        else f"known keys: {', '.join(DECLARATION_KEYS)}")
                ok = False

        def text_value(key: str, default: str, decl: dict[str, Any] = decl, section: str = section
                       ) -> str | None:
            v = decl.get(key, default)
            if not isinstance(v, str):
                problem(f"{section}.{key}", _line_of(lines, section, key),
                        f"{section}.{key} = {v!r} is not text in quotes", f'write {key} = "..."')
                return None
            return v

        type_text = text_value("type", "")
        label = text_value("label", "")
        unit = text_value("unit", "")
        table = text_value("table", "patients")
        summary_text = text_value("summary", Summary.MEDIAN_IQR.value)
        if None in (type_text, label, unit, table, summary_text):
            continue
        assert type_text is not None and table is not None and summary_text is not None
        types = [t.value for t in CovariateType]
        if type_text not in types:
            close = difflib.get_close_matches(type_text, types, n=1)
            problem(f"{section}.type", _line_of(lines, section, "type"),
                    f"{section}.type = {type_text!r} is not a type" if type_text
                    else f"[{section}] has no type",
                    (f'did you mean "{close[0]}"? ' if close else "") + "types: "
                    + ", ".join(f'"{t}"' for t in types))
            continue
        kind = CovariateType(type_text)
        if table not in COVARIATE_TABLES:
            problem(f"{section}.table", _line_of(lines, section, "table"),
                    f"{section}.table = {table!r} is not a table with covariates",
                    'write table = "patients" or table = "lesions"')
            ok = False
        if summary_text not in [s.value for s in Summary]:
            problem(f"{section}.summary", _line_of(lines, section, "summary"),
                    f"{section}.summary = {summary_text!r} is not known",
                    'write summary = "median" (median [IQR]) or summary = "mean" (mean (SD))')
            ok = False
        levels: tuple[str, ...] = ()
        raw_levels = decl.get("levels")
        if kind is CovariateType.CATEGORY:
            if (not isinstance(raw_levels, list) or not raw_levels
                    or not all(isinstance(v, str) and v.strip() for v in raw_levels)):
                problem(f"{section}.levels", _line_of(lines, section, "levels"),
                        f"a category needs its levels as a list of texts ({section}.levels)",
                        'e.g. levels = ["0", "1", "2-4"] (the first is the reference level)')
                ok = False
            else:
                levels = tuple(v.strip() for v in raw_levels)
                if len({v.lower() for v in levels}) != len(levels):
                    problem(f"{section}.levels", _line_of(lines, section, "levels"),
                            f"{section}.levels names a level twice", "list each level once")
                    ok = False
        elif raw_levels is not None:
            problem(f"{section}.levels", _line_of(lines, section, "levels"),
                    f"levels are given but {section} is of type {kind.value!r}",
                    'remove levels, or write type = "category"')
            ok = False
        step = 1.0
        if "step" in decl:
            v = decl["step"]
            if kind not in (CovariateType.NUMBER, CovariateType.WHOLE_NUMBER):
                problem(f"{section}.step", _line_of(lines, section, "step"),
                        f"a step is given but {section} is of type {kind.value!r}",
                        "remove step (it is the reporting unit of a number: HR per 10 years)")
                ok = False
            elif (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                  or v <= 0):
                problem(f"{section}.step", _line_of(lines, section, "step"),
                        f"{section}.step = {v!r} is not a positive number",
                        "e.g. step = 10 (hazard and odds ratios per 10 units)")
                ok = False
            else:
                step = float(v)
        if ok:
            out.append(Covariate(column=column, table=TableName(table).value, type=kind,
                                 label=(label or "").strip(),
                                 unit=(unit or "").strip(), levels=levels, step=step,
                                 summary=Summary(summary_text)))
    mapping: list[tuple[str, str]] = []
    if columns is not None and not isinstance(columns, dict):
        problem("columns", _line_of(lines, "columns"), "'columns' must be a table",
                '[columns] then one line per header: "SUV max" = "suvmax"')
        columns = None
    targets: dict[str, str] = {}
    for header, target in (columns or {}).items():
        line = _line_of(lines, "columns", header)
        if not isinstance(target, str) or not _norm(target):
            problem("columns", line, f"[columns] {header!r} = {target!r} does not name a column",
                    f'write "{header}" = "the column name of the format", e.g. "SUV max" = "suvmax"')
            continue
        src, dst = _norm(header), _norm(target)
        if not src:
            problem("columns", line, "[columns] maps a blank header", "remove the line")
            continue
        if dst in targets and targets[dst] != src:
            problem("columns", line, f"[columns] maps both {targets[dst]!r} and {header!r} to {dst!r}",
                    "map one header to each column")
            continue
        targets[dst] = src
        if src != dst:
            mapping.append((src, dst))
    return tuple(out), tuple(mapping), problems
