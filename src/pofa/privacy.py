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

The content rule is one: :class:`ContentTally` counts what it needs (cells of each shape, histograms of
lengths and word counts, distinct cells) block by block and decides at the end; :func:`category_of_content`
applies it to a whole column, :mod:`pofa.validation_stream` to a large file's blocks. Distinct cells are
counted exactly up to :data:`DISTINCT_EXACT` (65,536) of them; beyond, their share is estimated (k minimum
values of a 64-bit hash, relative error about 0.4%), in both cases, so that memory stays bounded.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pofa.findings import Finding, FindingCode, Severity
from pofa.schema import TABLES, TableName

__all__ = [
    "ContentTally",
    "category_of_content",
    "content_tally",
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


#: Distinct cells of a column counted exactly up to this many; beyond, estimated from the smallest hashes.
DISTINCT_EXACT = 1 << 16
_HASH_SPACE = float(2**64)


def _is_phone(v: str) -> bool:
    return (_PHONE.fullmatch(v) is not None and len(_DIGITS.findall(v)) >= 7 and not v.isdigit()
            and _DATE.fullmatch(v) is None)


def _median(histogram: Counter[int], n: int) -> float:
    """The median of ``n`` values given as a histogram (of two middle values, their mean; as pandas)."""
    lo, hi = (n - 1) // 2, n // 2
    seen, at_lo = 0, -1
    for value in sorted(histogram):
        seen += histogram[value]
        if at_lo < 0 and seen > lo:
            at_lo = value
        if seen > hi:
            return (at_lo + value) / 2
    raise ValueError("empty histogram")


class ContentTally:
    """What :func:`category_of_content` needs of a column's cells, added block by block.

    The counts of the cells of each shape (e-mail address, phone number ...), the histograms of their
    lengths and word counts (for the medians) and the distinct cells: counted exactly up to
    :data:`DISTINCT_EXACT` distinct cells, beyond that estimated from the :data:`DISTINCT_EXACT` smallest
    64-bit hashes of the cells (a k-minimum-values sketch, relative error about 0.4%), so that the memory is
    bounded whatever the number of rows. The same cells give the same decision in whatever blocks they come.

    Parameters
    ----------
    integer : bool
        The column holds whole numbers (their text is examined only as a record number).
    """

    def __init__(self, integer: bool = False) -> None:
        self.integer = integer
        self.n = 0
        self.shapes: Counter[str] = Counter()
        self.words: Counter[int] = Counter()
        self.lengths: Counter[int] = Counter()
        self._hashes = np.empty(0, dtype=np.uint64)
        self._saturated = False

    def add(self, text: Iterable[str]) -> None:
        """Add cells (their text, stripped, none blank).

        Parameters
        ----------
        text : iterable of str
            The cells.
        """
        # each distinct cell is examined once and counted as often as it occurs (a covariate column of
        # 20,000 cells holds few distinct ones: the regular expressions per cell cost 0.03 s per run)
        counts = Counter(text)
        if not counts:
            return
        self.n += counts.total()
        shapes = self.shapes
        for v, k in counts.items():
            if _EMAIL.fullmatch(v) is not None:
                shapes["email"] += k
            if _SSN.fullmatch(v) is not None:
                shapes["ssn"] += k
            if _URL.fullmatch(v) is not None:
                shapes["url"] += k
            if len(v.lstrip("-")) >= 6:
                shapes["long"] += k
            if self.integer:
                continue
            if _is_phone(v):
                shapes["phone"] += k
            if _LONG_NUMBER.fullmatch(v) is not None:
                shapes["long_number"] += k
            if _PERSON.fullmatch(v) is not None:
                shapes["person"] += k
            self.words[len(v.split())] += k
            self.lengths[len(v)] += k
        hashes = np.unique(pd.util.hash_array(np.asarray(list(counts), dtype=object)))
        merged = np.union1d(self._hashes, hashes)
        if len(merged) > DISTINCT_EXACT:
            merged, self._saturated = merged[:DISTINCT_EXACT], True
        self._hashes = merged

    def distinct(self) -> float:
        """The share of distinct cells (exact up to :data:`DISTINCT_EXACT` distinct cells, else estimated).

        Returns
        -------
        float
            Distinct cells over cells (0 without cells).
        """
        if self.n == 0:
            return 0.0
        if not self._saturated:
            return len(self._hashes) / self.n
        kth = (float(self._hashes[-1]) + 1.0) / _HASH_SPACE
        return min((DISTINCT_EXACT - 1) / kth, float(self.n)) / self.n

    def category(self) -> str | None:
        """Return the identifier category the cells added look like (the rule of :func:`category_of_content`).

        Returns
        -------
        str or None
            The category, ``None`` when the cells look like none.
        """
        n = self.n
        if n == 0:
            return None
        distinct = self.distinct()
        share = {k: v / n for k, v in self.shapes.items()}
        if share.get("email", 0.0) >= 0.5:
            return "e-mail address"
        if share.get("ssn", 0.0) >= 0.5:
            return "record number"
        if share.get("url", 0.0) >= 0.5:
            return "web or IP address"
        if self.integer:
            return "record number" if share.get("long", 0.0) >= 0.9 and distinct >= 0.9 else None
        if share.get("phone", 0.0) >= 0.5:
            return "phone number"
        if distinct >= 0.8 and n >= 2:
            if share.get("long_number", 0.0) >= 0.9:
                return "record number"
            if share.get("person", 0.0) >= 0.5:
                return "name"
            if _median(self.words, n) >= 5 or _median(self.lengths, n) >= 40:
                return "free text"
        return None


def content_tally(values: pd.Series) -> ContentTally | None:
    """Return the tally of a typed column's cells, or ``None`` for a type never identifying by content.

    Parameters
    ----------
    values : pandas.Series
        One column of a study table (any type; numbers are examined as their text).

    Returns
    -------
    ContentTally or None
        ``None`` for floats, booleans and dates.
    """
    given = values.dropna()
    if pd.api.types.is_bool_dtype(given) or pd.api.types.is_datetime64_any_dtype(given):
        return None
    if pd.api.types.is_float_dtype(given):
        return None  # measurements; whole numbers arrive as Int64
    tally = ContentTally(integer=bool(pd.api.types.is_integer_dtype(given)))
    text = given.astype(str).str.strip()
    tally.add(text[text != ""].tolist())
    return tally


def category_of_content(values: pd.Series) -> str | None:
    """Return the identifier category the cells of a column look like, or ``None``.

    A category is given when at least half of the non-blank cells have its shape (e-mail address, phone
    number, social security number, web or IP address), or, for person names, long record numbers and free
    text, when the cells are also mostly distinct (one per person). The rule is :meth:`ContentTally.category`
    (which :mod:`pofa.validation_stream` applies block by block).

    Parameters
    ----------
    values : pandas.Series
        One column of a study table (any type; numbers are examined as their text).

    Returns
    -------
    str or None
        The category, ``None`` when the cells look like none (always for floats, booleans and dates).
    """
    tally = content_tally(values)
    return tally.category() if tally is not None else None


def detect_identifying(frame: pd.DataFrame, table: TableName | str, candidates: Iterable[str],
                       keep: Collection[str] = (), tallies: Mapping[str, ContentTally | None] | None = None
                       ) -> tuple[IdentifyingColumn, ...]:
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
    tallies : mapping of str to ContentTally or None, optional
        The content of columns tallied block by block (:mod:`pofa.validation_stream`), examined instead of
        the column of ``frame``.

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
            if tallies is not None and column in tallies:
                tally = tallies[column]
                category = tally.category() if tally is not None else None
            else:
                category = category_of_content(frame[column])
            reason = "content"
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
                        settings: object,
                        tallies: Mapping[str, Mapping[str, ContentTally | None]] | None = None
                        ) -> tuple[IdentifyingColumn, ...]:
    """Return the withheld columns of a study's tables.

    Parameters
    ----------
    frames : mapping of str to pandas.DataFrame
        The typed tables by table name (``"patients"``, ``"lesions"``, ``"failures"``).
    covariates : mapping of str to iterable of str
        The extra columns of each table.
    settings : pofa.settings.Settings
        For the columns kept (:func:`kept_columns`).
    tallies : mapping of str to mapping, optional
        By table, the content of columns tallied block by block (see :func:`detect_identifying`).

    Returns
    -------
    tuple of IdentifyingColumn
        The identifying columns of every table, in table order.
    """
    keep = kept_columns(settings)
    out: list[IdentifyingColumn] = []
    for table, frame in frames.items():
        out.extend(detect_identifying(frame, table, covariates.get(table, ()), keep.get(table, frozenset()),
                                      (tallies or {}).get(table)))
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
    if isinstance(patient_ids, (pd.Series, pd.Index)):  # not element by element from pyarrow (slow)
        patient_ids = patient_ids.to_numpy(dtype=object)
    distinct = sorted({str(i) for i in patient_ids})
    ids = _simple_natural_order(distinct)
    if ids is None:
        ids = sorted(distinct, key=lambda s: (_natural_key(s), s))
    return {pid: k for k, pid in enumerate(ids, start=1)}


def _simple_natural_order(ids: list[str]) -> list[str] | None:
    """``ids`` in the order of ``(_natural_key(s), s)`` when each is a prefix and a number, else None.

    For ``"P12"`` or ``"S00001"`` the natural key is ``((0, 0, prefix.lower()), (1, number, digits))``, or
    ``((1, number, digits),)`` without a prefix, which orders as ``(0 or 1, prefix.lower(), number,
    digits)``, ties by the id: sorted by those columns in C, not by a Python key per id.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not ids:
        return ids
    arr = pa.array(ids, type=pa.string())
    if not pc.all(pc.match_substring_regex(arr, f"^{_SIMPLE_ID.pattern}$")).as_py():
        return None
    parts = pc.extract_regex(arr, r"^(?P<prefix>[^0-9]*)(?P<digits>[0-9]+)$")
    prefix = pc.struct_field(parts, "prefix")
    digits = pc.struct_field(parts, "digits")
    order = np.lexsort((
        np.asarray(ids, dtype=str),
        np.asarray(digits.to_pylist(), dtype=str),
        pc.cast(digits, pa.int64()).to_numpy(),
        np.asarray(pc.utf8_lower(prefix).to_pylist(), dtype=str),
        pc.equal(prefix, "").to_numpy(zero_copy_only=False),
    ))
    return [ids[i] for i in order]


#: An id that is a prefix of ASCII letters and punctuation followed by at most 18 ASCII digits.
_SIMPLE_ID = re.compile(r"([A-Za-z_\-. /#:]*)([0-9]{1,18})")


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


_DIGIT_RUNS = re.compile(r"(\d+)")


def _natural_key(s: str) -> tuple[tuple[int, int, str], ...]:
    parts = _DIGIT_RUNS.split(s)
    return tuple((1, int(p), p) if p.isdigit() else (0, 0, p.lower()) for p in parts if p != "")
