"""Settings checked against the study's tables, exactly as ``pofa analyze`` uses them.

``study.toml`` is parsed by :mod:`pofa.settings` (types, known keys). Whether a risk factor names a usable
column depends on the tables as well: ``[risk_factors] patient = ["nosuchcov"]`` is well-typed TOML but names
no column. :func:`risk_factor_findings` reads each term with the same parsers the analysis uses
(:func:`pofa.stats.factors.parse_factor`, :class:`pofa.stats.study_stats.PatientTerm`) and checks its column
against the table the analysis will look in, so that ``pofa validate`` reports, with file ``study.toml`` and
the key, what ``pofa analyze`` would otherwise refuse mid-run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from pofa.classify import PATIENT_COLUMNS
from pofa.errors import SettingsError
from pofa.findings import Finding, FindingCode, Severity
from pofa.schema import TABLES, TableName
from pofa.settings import SETTINGS_FILE, Settings
from pofa.validation import TypedTable

if TYPE_CHECKING:
    from pofa.privacy import IdentifyingColumn

__all__ = ["computed_patient_columns", "parse_patient_term", "risk_factor_findings", "study_findings"]

#: Patient columns the analysis adds whatever the settings (:func:`pofa.features.survival_endpoints`,
#: :func:`pofa.features.patient_features`).
_ALWAYS_COMPUTED = ("pfs_months", "pfs_event", "os_months", "os_event", "n_lesions", "max_diameter_cm",
                    "max_suvmax", "any_extranodal")


def computed_patient_columns(settings: Settings, lesion_columns: set[str]) -> set[str]:
    """Return the names of the patient columns the analysis computes for these settings and lesion columns.

    Parameters
    ----------
    settings : Settings
        The study's settings (feature thresholds).
    lesion_columns : set of str
        The columns of the lesions table.

    Returns
    -------
    set of str
        The computed patient columns (patterns, survival, features).
    """
    from pofa.features import threshold_column
    from pofa.schema import COORDINATES

    out = {*PATIENT_COLUMNS, *_ALWAYS_COMPUTED}
    out.update(threshold_column("diameter_cm", t) for t in settings.features.diameter_cm_thresholds)
    out.update(threshold_column("suvmax", t) for t in settings.features.suvmax_thresholds)
    if "mtv_ml" in lesion_columns:
        out.add("total_mtv_ml")
    if "tlg" in lesion_columns:
        out.add("total_tlg")
    if set(COORDINATES) <= lesion_columns:
        out.add("dmax_mm")
    return out


@dataclass(frozen=True, slots=True)
class _PatientTerm:
    text: str
    lesion_column: str | None


#: The forms :class:`pofa.stats.study_stats.PatientTerm` reads (that module imports the statistics
#: libraries, too slow for ``pofa validate``; tests/test_security.py checks that both agree).
_PATIENT_TERM = re.compile(r"^\s*any\s+([A-Za-z_][A-Za-z0-9_]*)\s*>=\s*([-+0-9.eE]+)\s*$")
_PATIENT_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_patient_term(text: str) -> _PatientTerm:
    """Read a patient risk factor as :meth:`pofa.stats.study_stats.PatientTerm.parse` does.

    Parameters
    ----------
    text : str
        ``"any COLUMN>=X"`` or a patient column name.

    Returns
    -------
    object
        With ``text`` (the normalised term) and ``lesion_column`` (``None`` for a patient column).

    Raises
    ------
    SettingsError
        When the text is neither form, or X is not a number.
    """
    m = _PATIENT_TERM.match(text)
    if m:
        try:
            threshold = float(m.group(2))
        except ValueError:
            raise SettingsError(f"patient risk factor {text!r}: {m.group(2)!r} is not a number") from None
        return _PatientTerm(f"any {m.group(1)}>={threshold:g}", m.group(1))
    if not _PATIENT_COLUMN.fullmatch(text.strip()):
        raise SettingsError(f"patient risk factor {text!r} is neither 'any COLUMN>=X' nor a patient column "
                            "name; e.g. 'any diameter_cm>=5' or 'age'")
    return _PatientTerm(text.strip(), None)


def _finding(key: str, message: str, hint: str) -> Finding:
    return Finding(Severity.ERROR, FindingCode.BAD_SETTING, SETTINGS_FILE, None, key, message, hint)


def _is_usable(values: pd.Series) -> bool:
    """A model term needs yes/no or numbers (a column that is entirely blank is left to the analysis)."""
    return bool(pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values)
                or values.dropna().empty)


def risk_factor_findings(settings: Settings, frames: Mapping[TableName, pd.DataFrame]) -> list[Finding]:
    """A ``bad-setting`` error for each risk factor the analysis could not use.

    Parameters
    ----------
    settings : Settings
        The study's settings.
    frames : mapping of TableName to pandas.DataFrame
        The typed tables that could be read (a table absent here is not checked against).

    Returns
    -------
    list of Finding
        File ``study.toml``, column ``risk_factors.lesion`` or ``risk_factors.patient``.
    """
    from pofa.stats.factors import parse_factor

    out: list[Finding] = []
    lesions = frames.get(TableName.LESIONS)
    patients = frames.get(TableName.PATIENTS)
    hint_lesion = ('write a lesion column ("extranodal"), a threshold ("diameter_cm>=5") or a scaled term '
                   '("suvmax/sd"); see docs/study-format.md')
    for text in settings.risk_factors.lesion:
        try:
            factor = parse_factor(text)
        except SettingsError as exc:
            out.append(_finding("risk_factors.lesion", str(exc).rstrip("."), hint_lesion))
            continue
        if lesions is None:
            continue
        if factor.column not in lesions.columns:
            if TABLES[TableName.LESIONS].column(factor.column) is not None:
                continue  # a column of the format: its absence is already a missing-column finding
            out.append(_finding("risk_factors.lesion",
                                f"the lesion risk factor {text!r} names {factor.column!r}, which is not a "
                                "column of the lesions table", hint_lesion))
        elif not _is_usable(lesions[factor.column]):
            out.append(_finding("risk_factors.lesion",
                                f"the lesion risk factor {text!r}: the column {factor.column!r} holds text; "
                                "a model term needs yes/no or numbers", hint_lesion))
    hint_patient = ('write "any COLUMN>=X" over the lesions (e.g. "any diameter_cm>=5") or a yes/no or '
                    'numeric patient column (e.g. "age"); see docs/study-format.md')
    computed = computed_patient_columns(settings, set(lesions.columns) if lesions is not None else set())
    for text in settings.risk_factors.patient:
        try:
            term = parse_patient_term(text)
        except SettingsError as exc:
            out.append(_finding("risk_factors.patient", str(exc), hint_patient))
            continue
        if term.lesion_column is not None:
            if lesions is None:
                continue
            if term.lesion_column not in lesions.columns:
                if TABLES[TableName.LESIONS].column(term.lesion_column) is not None:
                    continue
                out.append(_finding("risk_factors.patient",
                                    f"the patient risk factor {text!r} names {term.lesion_column!r}, which "
                                    "is not a column of the lesions table", hint_patient))
            elif not _is_usable(lesions[term.lesion_column]):
                out.append(_finding("risk_factors.patient",
                                    f"the patient risk factor {text!r}: the lesions column "
                                    f"{term.lesion_column!r} holds text, not numbers", hint_patient))
            continue
        if patients is None or term.text in computed:
            continue
        if term.text not in patients.columns:
            out.append(_finding("risk_factors.patient",
                                f"the patient risk factor {text!r} is not a column of the patients table nor "
                                "one pofa computes", hint_patient))
        elif not _is_usable(patients[term.text]):
            out.append(_finding("risk_factors.patient",
                                f"the patient risk factor {text!r}: the patients column holds text; a Cox "
                                "term needs yes/no or numbers (e.g. male = yes/no)", hint_patient))
    return out


def study_findings(settings: Settings, tables: Mapping[TableName, TypedTable]
                   ) -> tuple[list[Finding], tuple[IdentifyingColumn, ...]]:
    """Run the checks that need both the settings and the tables.

    These are risk factors (errors) and identifying columns (warnings, :mod:`pofa.privacy`).

    Parameters
    ----------
    settings : Settings
        The study's settings.
    tables : mapping of TableName to pofa.validation.TypedTable
        The tables that could be read.

    Returns
    -------
    findings : list of Finding
        The findings, risk factors first.
    identifying : tuple of pofa.privacy.IdentifyingColumn
        The columns withheld from every output (what the warnings say), kept by the study so that the
        analysis does not tally the same cells again.
    """
    from pofa.privacy import identifying_columns, identifying_findings

    out = risk_factor_findings(settings, {name: t.frame for name, t in tables.items()})
    columns = identifying_columns({name.value: t.frame for name, t in tables.items()},
                                  {name.value: t.covariates for name, t in tables.items()}, settings)
    out.extend(identifying_findings(columns, {name.value: t.source for name, t in tables.items()}))
    return out, columns
