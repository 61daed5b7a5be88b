"""Identifying columns: which extra columns of a study look like they identify a person.

pofa reads every column of a study but writes only what an analysis needs. An extra (covariate) column whose
name or content looks identifying is *withheld*: it is read, never written to any output (tables, report,
results.json), and ``pofa validate`` warns about it with how to keep it (declare it a covariate in study.toml,
``[covariates.NAME]``). The categories follow the HIPAA Safe Harbor list of identifiers (45 CFR
164.514(b)(2)): names, geographic subdivisions smaller than a state (addresses, ZIP codes), dates directly
related to a person (birth dates), telephone and fax numbers, e-mail addresses, social security, medical
record, health-plan and account numbers, certificate and licence numbers, vehicle and device identifiers, web
addresses and IP addresses, biometric identifiers and photographs, plus free text (notes, comments), which
may hold any of them.

Detection is conservative about the study format: a column of docs/study-format.md (``patient_id``,
``index_date``, ``site`` ...) is never withheld; only the extra columns are examined, by name first, then by
content (e-mail addresses, phone numbers, social security numbers, person names, long numeric record numbers,
free text). It is a safeguard, not a de-identification tool: it cannot find an identifier hidden in a column
whose name and content look harmless.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pofa.findings import Finding, FindingCode, Severity
from pofa.schema import TABLES, TableName

__all__ = [
    "IdentifyingColumn",
    "detect_identifying",
    "identifying_columns",
    "identifying_findings",
    "kept_columns",
    "pseudonymise_ids",
    "sequence_numbers",
]


@dataclass(frozen=True, slots=True)
class IdentifyingColumn:
    """One extra column that looks identifying and is withheld from the outputs.

    Attributes
    ----------
    table : str
        ``"patients"``, ``"lesions"`` or ``"failures"``.
    column : str
        The column's name (as the study tables hold it, lower case).
    category : str
        What it looks like: ``"name"``, ``"record number"``, ``"birth date"``, ``"address"``,
        ``"phone number"``, ``"e-mail address"``, ``"free text"`` ...
    reason : str
        ``"name"`` (the header) or ``"content"`` (the cells).
    """

    table: str
    column: str
    category: str
    reason: str

    def to_json(self) -> dict[str, str]:
        """Return the column as plain JSON (for results.json and manifest.json).

        Returns
        -------
        dict of str to str
            ``table``, ``column``, ``category`` and ``reason``.
        """
        return {"table": self.table, "column": self.column, "category": self.category, "reason": self.reason}


# Header words, by category (Safe Harbor list). A header is split into lower-case words at blanks,
# underscores, hyphens, dots and camelCase; a category matches when one of its words is a word of the header,
# or one of its phrases (words joined by "_") is part of the joined header.
_NAME_WORDS: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "name": (frozenset({"name", "names", "firstname", "lastname", "surname", "forename", "givenname",
                        "fullname", "familyname", "maiden", "initials", "nachname", "vorname", "nom",
                        "prenom"}),
             ("first_name", "last_name", "given_name", "family_name", "full_name", "middle_name")),
    "record number": (frozenset({"mrn", "mrns", "ssn", "nhs", "medicaid", "medicare", "insurance",
                                 "beneficiary", "chart", "hospitalnumber", "kis", "fallnummer", "pid",
                                 "patid", "passport", "accession"}),
                      ("medical_record", "record_number", "record_no", "hospital_number", "hospital_no",
                       "social_security", "health_plan", "account_number", "account_no", "case_number",
                       "patient_number", "member_id", "subscriber_id", "national_id", "id_number")),
    "birth date": (frozenset({"dob", "birth", "birthdate", "birthday", "born", "geburtsdatum"}),
                   ("date_of_birth",)),
    "address": (frozenset({"address", "addr", "street", "city", "town", "zip", "zipcode", "postcode",
                           "postal", "county", "residence", "adresse"}),
                ("home_address", "post_code")),
    "phone number": (frozenset({"phone", "telephone", "tel", "mobile", "cellphone", "fax", "pager"}),
                     ("cell_phone",)),
    "e-mail address": (frozenset({"email", "mail", "emails"}), ("e_mail",)),
    "web or IP address": (frozenset({"url", "ip", "website", "homepage"}), ("ip_address", "web_address")),
    "licence, vehicle or device number": (frozenset({"licence", "license", "vehicle", "plate", "serial",
                                                     "certificate", "imei"}),
                                          ("device_id", "serial_number", "licence_number")),
    "photograph or biometric": (frozenset({"photo", "photograph", "fingerprint", "biometric", "face",
                                           "portrait", "voiceprint"}), ()),
    "free text": (frozenset({"note", "notes", "comment", "comments", "remark", "remarks", "narrative",
                             "freetext", "memo", "annotation", "annotations", "bemerkung", "kommentar"}),
                  ("free_text", "clinical_text")),
}

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?\(?\d[\d\s().\-/]{5,}\d")
_SSN = re.compile(r"\d{3}-\d{2}-\d{4}")
_PERSON = re.compile(r"[A-Z][a-z'\-]+,? [A-Z][a-z'.\-]+( [A-Z][a-z'.\-]+)?")
_URL = re.compile(r"(https?://|www\.)\S+|\d{1,3}(\.\d{1,3}){3}", re.IGNORECASE)
_DIGITS = re.compile(r"\d")
#: A calendar date (handled by the date rules of :mod:`pofa.analysis`, not a phone number).
_DATE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
_LONG_NUMBER = re.compile(r"\d{6,}")


def _words(header: str) -> list[str]:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", header)
    return [w for w in re.split(r"[^0-9a-zA-Z]+", spaced.lower()) if w]


def category_of_name(header: str) -> str | None:
    """Return the identifier category a column header names, or ``None``.

    Parameters
    ----------
    header : str
        A column header.

    Returns
    -------
    str or None
        The category (e.g. ``"name"``, ``"record number"``), ``None`` when the header names none.
    """
    words = _words(header)
    joined = "_".join(words)
    for category, (_, phrases) in _NAME_WORDS.items():  # phrases first: "ip_address" is not a postal one
        if any(p in joined for p in phrases):
            return category
    for category, (single, _) in _NAME_WORDS.items():
        if any(w in single for w in words) or joined.replace("_", "") in single:
            return category
    return None


def _share(text: pd.Series, pattern: re.Pattern[str]) -> float:
    return float(text.map(lambda v: pattern.fullmatch(v) is not None).mean())


def category_of_content(values: pd.Series) -> str | None:
    """Return the identifier category the cells of a column look like, or ``None``.

    A category is given when at least half of the non-blank cells have its shape (e-mail address, phone
    number, social security number, web or IP address), or, for person names, long record numbers and free
    text, when the cells are also mostly distinct (one per person).

    Parameters
    ----------
    values : pandas.Series
        One column of a study table (any type; numbers are examined as their text).

    Returns
    -------
    str or None
        The category, ``None`` when the cells look like none (always for floats, booleans and dates).
    """
    given = values.dropna()
    if given.empty:
        return None
    if pd.api.types.is_bool_dtype(given) or pd.api.types.is_datetime64_any_dtype(given):
        return None
    if pd.api.types.is_float_dtype(given):
        return None  # measurements; whole numbers arrive as Int64
    text = given.astype(str).str.strip()
    text = text[text != ""]
    if text.empty:
        return None
    distinct = text.nunique() / len(text)
    if _share(text, _EMAIL) >= 0.5:
        return "e-mail address"
    if _share(text, _SSN) >= 0.5:
        return "record number"
    if _share(text, _URL) >= 0.5:
        return "web or IP address"
    if pd.api.types.is_integer_dtype(given):
        long = text.str.lstrip("-").str.len() >= 6
        return "record number" if long.mean() >= 0.9 and distinct >= 0.9 else None
    phone = text.map(lambda v: _PHONE.fullmatch(v) is not None and len(_DIGITS.findall(v)) >= 7
                     and not v.isdigit() and _DATE.fullmatch(v) is None)
    if phone.mean() >= 0.5:
        return "phone number"
    if distinct >= 0.8 and len(text) >= 2:
        if text.map(lambda v: _LONG_NUMBER.fullmatch(v) is not None).mean() >= 0.9:
            return "record number"
        if _share(text, _PERSON) >= 0.5:
            return "name"
        # pandas-stubs allow .str.len() on strings only; pandas documents it for lists too
        words = text.str.split().str.len()  # type: ignore[misc]
        if float(words.median()) >= 5 or float(text.str.len().median()) >= 40:
            return "free text"
    return None


def detect_identifying(frame: pd.DataFrame, table: TableName | str, candidates: Iterable[str],
                       keep: Collection[str] = ()) -> tuple[IdentifyingColumn, ...]:
    """Return the columns among ``candidates`` that look identifying (by name, then by content).

    Parameters
    ----------
    frame : pandas.DataFrame
        A study table (typed, as :class:`pofa.study.Study` holds it).
    table : TableName or str
        Which table it is.
    candidates : iterable of str
        The extra (covariate) columns to examine; a column of the study format is never examined.
    keep : collection of str
        Columns the study declares (``[covariates.NAME]``) or uses: never withheld.

    Returns
    -------
    tuple of IdentifyingColumn
        One entry per identifying column, with its category and whether its name or content gave it away.
    """
    name = TableName(table)
    spec = TABLES[name]
    out: list[IdentifyingColumn] = []
    for column in candidates:
        if column in keep or spec.column(column) is not None or column not in frame.columns:
            continue
        category = category_of_name(column)
        reason = "name"
        if category is None:
            category, reason = category_of_content(frame[column]), "content"
        if category is not None:
            out.append(IdentifyingColumn(name.value, column, category, reason))
    return tuple(out)


def kept_columns(settings: object) -> dict[str, frozenset[str]]:
    """Return the columns a study keeps although they may look identifying, by table.

    These are its declared covariates and the columns its risk factors name.

    Parameters
    ----------
    settings : pofa.settings.Settings
        The study's settings (``covariates`` and ``risk_factors``).

    Returns
    -------
    dict
        ``{"patients": {...}, "lesions": {...}, "failures": {...}}``.
    """
    keep: dict[str, set[str]] = {t.value: set() for t in TableName}
    for cov in getattr(settings, "covariates", ()):
        keep.setdefault(str(cov.table), set()).add(str(cov.column))
    factors = getattr(settings, "risk_factors", None)
    for text in getattr(factors, "patient", ()):
        m = re.fullmatch(r"\s*any\s+([A-Za-z_][A-Za-z0-9_]*)\s*>=.*", str(text))
        if m:
            keep["lesions"].add(m.group(1))
        else:
            keep["patients"].add(str(text).strip())
    for text in getattr(factors, "lesion", ()):
        m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", str(text))
        if m:
            keep["lesions"].add(m.group(1))
    return {k: frozenset(v) for k, v in keep.items()}


def identifying_columns(frames: Mapping[str, pd.DataFrame], covariates: Mapping[str, Iterable[str]],
                        settings: object) -> tuple[IdentifyingColumn, ...]:
    """Return the withheld columns of a study's tables.

    Parameters
    ----------
    frames : mapping of str to pandas.DataFrame
        The typed tables by table name (``"patients"``, ``"lesions"``, ``"failures"``).
    covariates : mapping of str to iterable of str
        The extra columns of each table.
    settings : pofa.settings.Settings
        For the columns kept (:func:`kept_columns`).

    Returns
    -------
    tuple of IdentifyingColumn
        The identifying columns of every table, in table order.
    """
    keep = kept_columns(settings)
    out: list[IdentifyingColumn] = []
    for table, frame in frames.items():
        out.extend(detect_identifying(frame, table, covariates.get(table, ()), keep.get(table, frozenset())))
    return tuple(out)


def identifying_findings(columns: Iterable[IdentifyingColumn], sources: Mapping[str, str]) -> list[Finding]:
    """Return one ``identifying-column`` warning per withheld column, saying how to keep it.

    Parameters
    ----------
    columns : iterable of IdentifyingColumn
        The withheld columns.
    sources : mapping of str to str
        The file (or ``workbook[sheet]``) of each table.

    Returns
    -------
    list of Finding
        One warning per column.
    """
    out = []
    for c in columns:
        out.append(Finding(
            Severity.WARNING, FindingCode.IDENTIFYING_COLUMN, sources.get(c.table, c.table), None, c.column,
            f"the column looks identifying ({c.category}, by its {c.reason}): it is read but never written "
            "to the outputs",
            f"to keep it, declare it a covariate in study.toml: [covariates.{c.column}] (or remove it from "
            "the study)"))
    return out


def sequence_numbers(patient_ids: Iterable[Any]) -> dict[str, int]:
    """Return sequence numbers 1..n for patient ids, in a stable order that does not depend on row order.

    Ids are compared as text, in "natural" order (``P2`` before ``P10``), ties broken by plain text order.

    Parameters
    ----------
    patient_ids : iterable of Any
        The patient ids (repeats allowed).

    Returns
    -------
    dict of str to int
        The sequence number of each distinct id (as text).
    """
    ids = sorted({str(i) for i in patient_ids}, key=lambda s: (_natural_key(s), s))
    return {pid: k for k, pid in enumerate(ids, start=1)}


def pseudonymise_ids(frame: pd.DataFrame, numbers: Mapping[str, int] | None = None,
                     column: str = "patient_id") -> pd.DataFrame:
    """Return ``frame`` with its patient ids replaced by study sequence numbers (column ``patient_seq``).

    Parameters
    ----------
    frame : pandas.DataFrame
        A table with a patient-id column (not modified).
    numbers : mapping of str to int, optional
        The sequence number of each id (:func:`sequence_numbers` of the study's patients, so that the
        numbers equal those of the analysis' outputs); default: numbered from the ids of ``frame``.
    column : str
        The id column.

    Returns
    -------
    pandas.DataFrame
        A copy whose ``column`` is replaced, in place, by ``patient_seq`` (an integer column; an id
        ``numbers`` lacks gets no number). A frame without ``column`` is returned as a copy.
    """
    out = frame.copy()
    if column not in out.columns:
        return out
    ids = out[column].map(lambda v: None if v is None or (isinstance(v, float) and v != v) else str(v))
    seq = numbers if numbers is not None else sequence_numbers(i for i in ids if i is not None)
    values = pd.Series([seq.get(i) if i is not None else None for i in ids], index=out.index, dtype="Int64")
    at = list(out.columns).index(column)
    out = out.drop(columns=[column])
    out.insert(at, "patient_seq", values)
    return out


def _natural_key(s: str) -> tuple[tuple[int, int, str], ...]:
    parts = re.split(r"(\d+)", s)
    return tuple((1, int(p), p) if p.isdigit() else (0, 0, p.lower()) for p in parts if p != "")
