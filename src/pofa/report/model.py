"""What the report is made from: one documented, immutable input shape.

The report needs three things, and nothing else:

1. ``statistics``: the analysis' typed results (:class:`pofa.stats.results.StudyResults`), from which
   results.json is written. **Every number and curve the report shows is read from them**: the report
   computes no estimate. ``results`` is the results.json document itself (checked against results.json on
   disk and summarised in the provenance section), and ``patterns`` the pattern counts.
2. ``patients``: one row per patient with the columns of :data:`PATIENT_COLUMNS` (times in months from the
   index date, events, the first-progression pattern), plus any covariates (Table 1, the swimmer plot).
3. ``lesions``: one row per baseline lesion with the columns of :data:`LESION_COLUMNS` (the study's columns
   plus the lesion outcome ``local_failure``), plus any covariates.

Build it with :class:`ReportInput` directly, or let :func:`as_report_input` adapt an analysis result object.
Patient identifiers are kept only to order patients and, with ``show_ids=True``, to label them; by default a
patient appears as a study sequence number (:func:`sequence_numbers`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pofa.classify import PatternCounts
from pofa.errors import PofaError
from pofa.privacy import sequence_numbers
from pofa.settings import Settings
from pofa.stats.results import StudyResults
from pofa.units import DAYS_PER_MONTH

if TYPE_CHECKING:
    from pandas.api.typing import NAType

    from pofa.report.paper import PaperRatio

__all__ = [
    "LESION_COLUMNS",
    "NO_FAILURE",
    "PATIENT_COLUMNS",
    "PATTERNS",
    "PATTERN_KEYS",
    "ReportError",
    "ReportInput",
    "as_report_input",
    "guess_covariates",
    "normalise_results",
    "sequence_numbers",
]


class ReportError(PofaError):
    """The report cannot be made from what it was given (says what is missing and what to do)."""


#: Patient patterns at first progression that count as failures, in the report's display order.
PATTERNS: tuple[str, ...] = ("strictly local", "mixed", "strictly de novo", "unknown")
#: The results.json ``patterns`` key of each pattern.
PATTERN_KEYS: dict[str, str] = {
    "strictly local": "strictly_local",
    "mixed": "mixed",
    "strictly de novo": "strictly_de_novo",
    "unknown": "unknown",
}
#: Pattern of a patient without progression.
NO_FAILURE = "none"

#: Required patient columns and what they hold.
PATIENT_COLUMNS: dict[str, str] = {
    "patient_id": "study identifier (text); shown only with show_ids=True",
    "pfs_months": "progression-free survival time from the index date, months (blank = not eligible)",
    "pfs_event": "1/True = progression or death, 0/False = censored",
    "os_months": "overall survival time from the index date, months (blank = not eligible)",
    "os_event": "1/True = death, 0/False = alive at last follow-up",
    "progression_months": "time of first progression from the index date, months (blank = no progression)",
    "pattern": "first-progression pattern: none, strictly local, strictly de novo, mixed or unknown",
}

#: Required lesion columns and what they hold.
LESION_COLUMNS: dict[str, str] = {
    "patient_id": "patient the lesion belongs to",
    "site": "anatomical site",
    "extranodal": "extranodal lesion (yes/no)",
    "diameter_cm": "longest diameter, cm",
    "suvmax": "maximum SUV",
    "local_failure": "the lesion failed locally at first progression (yes/no; blank = outcome unknown)",
}

_PATTERN_ALIASES = {
    "none": NO_FAILURE,
    "no failure": NO_FAILURE,
    "no progression": NO_FAILURE,
    "": NO_FAILURE,
    "strictly local": "strictly local",
    "strictly_local": "strictly local",
    "local": "strictly local",
    "mixed": "mixed",
    "strictly de novo": "strictly de novo",
    "strictly_de_novo": "strictly de novo",
    "de novo": "strictly de novo",
    "unknown": "unknown",
}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (tuple, set, frozenset)):
        return list(obj)
    raise TypeError(f"results hold a {type(obj).__name__}, which JSON cannot store")


def _clean(node: Any) -> Any:
    if isinstance(node, float) and not math.isfinite(node):
        return None
    if isinstance(node, dict):
        return {str(k): _clean(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def normalise_results(results: Mapping[str, Any]) -> dict[str, Any]:
    """Return a deep copy of the results document exactly as results.json stores it.

    The copy goes through JSON (numpy scalars become plain numbers, tuples lists, non-finite numbers
    ``null``), so what the report shows is what a reader of results.json gets back.

    Parameters
    ----------
    results : Mapping[str, Any]
        The results.json document.

    Returns
    -------
    dict[str, Any]
        The JSON round-tripped copy, with non-finite numbers replaced by ``None``.

    Raises
    ------
    ReportError
        When ``results`` is not a mapping or cannot be written as JSON.
    """
    if not isinstance(results, Mapping):
        raise ReportError(f"results must be the results.json document (a dict), not {type(results).__name__}")
    try:
        text = json.dumps(results, default=_json_default, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise ReportError(f"the results cannot be written as JSON: {exc}") from None
    document: dict[str, Any] = _clean(json.loads(text))
    return document


def _bool_column(s: pd.Series, what: str) -> pd.Series:
    """0/1, True/False or yes/no text as a nullable boolean Series (blank = missing)."""
    if s.dtype == bool or str(s.dtype) == "boolean" or pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("boolean")  # numpy, nullable and pyarrow booleans: no per-value check needed
    if pd.api.types.is_numeric_dtype(s.dtype):  # 0/1 events and outcomes: checked as one array
        num = s.astype("Float64")  # NaN and NA both become NA
        ok = num.isna() | num.isin([0.0, 1.0])
        if not bool(ok.all()):
            raise ReportError(f"{what} must be yes/no (or 1/0, True/False); found {s[~ok].tolist()[0]!r}")
        return (num == 1.0).astype("boolean")
    words = {
        "yes": True,
        "y": True,
        "true": True,
        "t": True,
        "1": True,
        "1.0": True,
        "no": False,
        "n": False,
        "false": False,
        "f": False,
        "0": False,
        "0.0": False,
    }
    out: list[bool | NAType] = []
    for v in s.tolist():
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            out.append(pd.NA)
        elif isinstance(v, (bool, np.bool_)):
            out.append(bool(v))
        elif isinstance(v, (int, float, np.integer, np.floating)) and float(v) in (0.0, 1.0):
            out.append(bool(v))
        elif isinstance(v, str) and v.strip().lower() in words:
            out.append(words[v.strip().lower()])
        elif isinstance(v, str) and v.strip() == "":
            out.append(pd.NA)
        else:
            raise ReportError(f"{what} must be yes/no (or 1/0, True/False); found {v!r}")
    return pd.Series(out, index=s.index, dtype="boolean")


def _float_column(s: pd.Series, what: str) -> pd.Series:
    out = pd.to_numeric(s, errors="coerce").astype("float64")
    lost = out.isna() & s.notna()  # cells that were not numbers: only these are looked at as text
    if lost.any():
        bad = s[lost].astype(str).str.strip() != ""
        if bad.any():
            raise ReportError(f"{what} must be numbers; found {s[lost][bad].iloc[0]!r}")
    return out


def _require(frame: pd.DataFrame, columns: Mapping[str, str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        lines = "; ".join(f"{c} ({columns[c]})" for c in missing)
        raise ReportError(f"the {what} table given to the report lacks column(s): {lines}")


@dataclass(frozen=True, slots=True)
class ReportInput:
    """Everything the report is made from (immutable; frames are private copies).

    Attributes
    ----------
    results : Mapping
        The results.json document (issue 3/4 keys: ``patterns``, ``lesion_models``, ``survival``,
        ``followup``, ``patient_models``, ``competing_risks``). Normalised through JSON on construction.
    patients : pandas.DataFrame
        One row per patient with :data:`PATIENT_COLUMNS`; a boolean column per patient risk factor, named as
        the term (``"any diameter_cm>=5"``) or, for ``any COL>=X`` terms, ``any_COL_ge_X``; when neither is
        present the factor is derived from the lesions (any lesion with COL >= X).
    lesions : pandas.DataFrame
        One row per baseline lesion with :data:`LESION_COLUMNS`; optional ``bridging_rt``, ``lesion_id``.
    settings : Settings
        The settings the analysis used (for the methods paragraph, thresholds and the manifest).
    input_hashes : Mapping[str, str]
        SHA-256 of each input file (:meth:`pofa.study.Study.input_hashes`).
    seeds : Mapping[str, int]
        Random seeds used by the analysis (empty when nothing random was done).
    patient_covariates, lesion_covariates : tuple of str
        Extra columns summarised in Table 1 (the study's covariates).
    study_name : str
        Shown in the title.
    statistics : StudyResults or None
        The analysis' typed results (``None``: only what needs no statistics is shown).
    patterns : PatternCounts or None
        The pattern counts (``None``: read from ``results["patterns"]`` when present).
    table1_by : str
        The patient column Table 1 is stratified by (default ``"pattern"``, the failure pattern at first
        progression; ``""``: not stratified).
    """

    results: Mapping[str, Any]
    patients: pd.DataFrame
    lesions: pd.DataFrame
    settings: Settings = field(default_factory=Settings)
    input_hashes: Mapping[str, str] = field(default_factory=dict)
    seeds: Mapping[str, int] = field(default_factory=dict)
    patient_covariates: tuple[str, ...] = ()
    lesion_covariates: tuple[str, ...] = ()
    study_name: str = ""
    statistics: StudyResults | None = None
    patterns: PatternCounts | None = None
    table1_by: str = "pattern"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "results", normalise_results(self.results))
        if not isinstance(self.patients, pd.DataFrame) or not isinstance(self.lesions, pd.DataFrame):
            raise ReportError("patients and lesions must be pandas DataFrames (one row per patient / lesion)")
        p = self.patients.copy(deep=True)
        les = self.lesions.copy(deep=True)
        _require(p, PATIENT_COLUMNS, "patients")
        _require(les, LESION_COLUMNS, "lesions")
        p["patient_id"] = p["patient_id"].astype(str)
        if p["patient_id"].duplicated().any():
            dup = p.loc[p["patient_id"].duplicated(), "patient_id"].iloc[0]
            raise ReportError(f"the patients table has patient {dup!r} more than once")
        for c in ("pfs_months", "os_months", "progression_months"):
            p[c] = _float_column(p[c], f"patients.{c}")
            if (p[c] < 0).any():
                raise ReportError(f"patients.{c} has negative times; times are counted from the index date")
        for c in ("pfs_event", "os_event"):
            p[c] = _bool_column(p[c], f"patients.{c}")
        pat = []
        for v in p["pattern"].tolist():
            key = "" if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else str(v)
            key = key.strip().lower().replace("-", " ")
            if key not in _PATTERN_ALIASES:
                raise ReportError(
                    f"patients.pattern {v!r} is not one of none, strictly local, strictly de novo, mixed, "
                    "unknown"
                )
            pat.append(_PATTERN_ALIASES[key])
        p["pattern"] = pat
        les["patient_id"] = les["patient_id"].astype(str)
        # tolist: iterating a text column cell by cell cost 17 ms for 20,000 lesions
        unknown = set(les["patient_id"].tolist()) - set(p["patient_id"].tolist())
        if unknown:
            raise ReportError(f"{len(unknown)} lesion(s) belong to no patient of the patients table")
        for c in ("diameter_cm", "suvmax"):
            les[c] = _float_column(les[c], f"lesions.{c}")
        for c in ("extranodal", "local_failure") + (("bridging_rt",) if "bridging_rt" in les.columns else ()):
            les[c] = _bool_column(les[c], f"lesions.{c}")
        les["site"] = les["site"].astype(object).where(les["site"].notna(), None)
        for name, frame, cols in (
            ("patients", p, self.patient_covariates),
            ("lesions", les, self.lesion_covariates),
        ):
            missing = [c for c in cols if c not in frame.columns]
            if missing:
                raise ReportError(f"covariate column(s) {missing} are not in the {name} table")
        set_(self, "patients", p)
        set_(self, "lesions", les)
        set_(self, "input_hashes", dict(self.input_hashes))
        set_(self, "seeds", {str(k): int(v) for k, v in dict(self.seeds).items()})
        set_(self, "patient_covariates", tuple(self.patient_covariates))
        set_(self, "lesion_covariates", tuple(self.lesion_covariates))
        if self.statistics is not None and not isinstance(self.statistics, StudyResults):
            raise ReportError("statistics must be a pofa.stats.results.StudyResults")
        if self.patterns is None and isinstance(self.results.get("patterns"), Mapping):
            try:
                set_(
                    self,
                    "patterns",
                    PatternCounts(**{k: int(v) for k, v in self.results["patterns"].items()}),
                )
            except (TypeError, ValueError) as exc:
                raise ReportError(f"results.json 'patterns' is not the pattern counts: {exc}") from None
        if not isinstance(self.settings, Settings):
            raise ReportError("settings must be a pofa.settings.Settings (study.settings)")

    # ------------------------------------------------------------------------------------------------
    @property
    def study_label(self) -> str:
        """The study's name for titles.

        Returns
        -------
        str
            ``study_name``, else the settings' study name, else ``"pofa study"``.
        """
        return self.study_name or self.settings.study.name or "pofa study"

    def patient_labels(self, show_ids: bool) -> dict[str, str]:
        """Label each patient id with its sequence number, or with the id itself.

        Parameters
        ----------
        show_ids : bool
            Label patients by their own id instead of their sequence number.

        Returns
        -------
        dict[str, str]
            ``{patient_id: label}`` for every patient.
        """
        seq = sequence_numbers(self.patients["patient_id"])
        return {pid: (pid if show_ids else str(k)) for pid, k in seq.items()}

    def survival_frame(self, endpoint: str) -> pd.DataFrame:
        """Select the patients eligible for an endpoint (time and event known).

        Parameters
        ----------
        endpoint : str
            ``"pfs"`` or ``"os"``.

        Returns
        -------
        pandas.DataFrame
            The eligible patients with added ``time`` (months, float) and ``event`` (0/1) columns.

        Raises
        ------
        ReportError
            When ``endpoint`` is neither ``"pfs"`` nor ``"os"``.
        """
        if endpoint not in ("pfs", "os"):
            raise ReportError(f"unknown endpoint {endpoint!r}; use 'pfs' or 'os'")
        p = self.patients
        ok = p[f"{endpoint}_months"].notna() & p[f"{endpoint}_event"].notna()
        out = p.loc[ok].copy()
        out["time"] = out[f"{endpoint}_months"].astype(float)
        out["event"] = out[f"{endpoint}_event"].astype(bool).astype(int)
        return out

    @property
    def pattern_counts(self) -> PatternCounts | None:
        """The pattern counts (results.json ``patterns``).

        Returns
        -------
        PatternCounts or None
            The counts, or ``None`` when the results hold none.
        """
        return self.patterns

    @property
    def simulated(self) -> bool:
        """Whether the study is simulated (``[study] simulated = true``).

        Every figure and the report's first screen then say so.

        Returns
        -------
        bool
            ``True`` only when the settings set ``simulated = true``.
        """
        return dict(self.settings.study.extra).get("simulated") is True

    @property
    def paper_demo(self) -> bool:
        """Whether the study is the simulation of the paper (the bundled demo).

        The report then sets the paper's headline figures beside its own.

        Returns
        -------
        bool
            ``True`` for the bundled demo study.
        """
        from pofa.report.paper import is_paper_demo

        return is_paper_demo(dict(self.settings.study.extra))

    @property
    def paper_odds_ratios(self) -> tuple[PaperRatio, ...]:
        """The paper's odds ratios to mark on the forest plot (the bundled demo only).

        Returns
        -------
        tuple of PaperRatio
            The paper's odds ratios for the demo, else an empty tuple.
        """
        from pofa.report.paper import PAPER_ODDS_RATIOS

        return PAPER_ODDS_RATIOS if self.paper_demo else ()

    @property
    def lesion_thresholds(self) -> dict[str, float]:
        """The thresholds of the thresholded lesion factors, from the results.

        Returns
        -------
        dict[str, float]
            ``{column: threshold}``, the first threshold of each column (empty without statistics).
        """
        lm = self.statistics.lesion_models if self.statistics is not None else None
        out: dict[str, float] = {}
        for col, x in lm.thresholds if lm is not None else ():
            out.setdefault(col, x)
        return out


def _get(obj: Any, names: Sequence[str]) -> Any:
    for n in names:
        if isinstance(obj, Mapping):
            if n in obj:
                return obj[n]
            continue
        if hasattr(obj, n):
            return getattr(obj, n)
    return None


#: Patient columns that pofa computes or the study format defines (never summarised as covariates).
_NOT_COVARIATES = re.compile(
    r"^(patient_id|lesion_id|index_date|last_followup_date|progression_date|death_date|site|extranodal|"
    r"diameter_cm|suvmax|x_mm|y_mm|z_mm|mtv_ml|tlg|bridging_rt|pfs_months|pfs_event|os_months|os_event|"
    r"progression_months|pattern|n_lesions|any_.*_ge_.*|max_diameter_cm|max_suvmax|any_extranodal|total_mtv_ml|"
    r"total_tlg|dmax_mm|local_failure)$"
)


def _computed_columns(table: str) -> set[str]:
    """Columns pofa's classification adds to a table (empty when that module is not available)."""
    try:
        from pofa import classify
    except ImportError:  # pragma: no cover - the classification module is part of pofa
        return set()
    return set(getattr(classify, "PATIENT_COLUMNS" if table == "patients" else "LESION_COLUMNS", ()))


def guess_covariates(frame: pd.DataFrame, table: str) -> tuple[str, ...]:
    """Find the study's own extra columns of an analysed table.

    These are the columns that are neither a column of the study format nor one pofa computes
    (classification, features, survival times).

    Parameters
    ----------
    frame : pandas.DataFrame
        The analysed patients or lesions table.
    table : str
        ``"patients"`` or ``"lesions"`` (which of pofa's computed columns to leave out).

    Returns
    -------
    tuple of str
        The covariate column names, in the table's order.
    """
    computed = _computed_columns(table)
    return tuple(c for c in frame.columns if c not in computed and not _NOT_COVARIATES.match(str(c)))


def _with_progression_months(patients: pd.DataFrame) -> pd.DataFrame:
    """Add ``progression_months`` from the analysis' columns when it is missing (``fp_months`` of recurred
    patients, else the progression and index dates)."""
    if "progression_months" in patients.columns:
        return patients
    out = patients.copy()
    if {"fp_months", "recurred"} <= set(out.columns):
        rec = out["recurred"].astype("boolean").fillna(False).astype(bool)
        out["progression_months"] = pd.to_numeric(out["fp_months"], errors="coerce").where(rec)
    elif {"progression_date", "index_date"} <= set(out.columns):
        days = (pd.to_datetime(out["progression_date"]) - pd.to_datetime(out["index_date"])).dt.days
        out["progression_months"] = days.astype("float64") / DAYS_PER_MONTH
    return out


def _provenance(result_like: Any) -> tuple[Settings, dict[str, str], Mapping[str, Any]]:
    """The settings, input hashes and seeds of a result, by the rules of :func:`as_report_input`."""
    study = _get(result_like, ("study",))
    settings = _get(result_like, ("settings",))
    if settings is None and study is not None:
        settings = getattr(study, "settings", None)
    hashes = _get(result_like, ("input_hashes", "inputs"))
    if callable(hashes):
        hashes = hashes()
    if hashes is None and study is not None and hasattr(study, "input_hashes"):
        hashes = study.input_hashes()
    seeds = {str(k): int(v) for k, v in dict(_get(result_like, ("seeds",)) or {}).items()}
    return (settings if settings is not None else Settings()), dict(hashes or {}), seeds


def run_provenance(result_like: Any) -> tuple[Settings, dict[str, str], Mapping[str, Any]]:
    """The settings, input hashes and seeds that :func:`as_report_input` would give, without building it.

    manifest.json needs only these; building the whole report input again (results.json's content and the
    patient tables) costs a tenth of a second at 5,000 patients.

    Parameters
    ----------
    result_like : Any
        What :func:`as_report_input` accepts.

    Returns
    -------
    tuple
        The settings, the SHA-256 of each input by name, and the seeds.

    Raises
    ------
    ReportError
        When ``result_like`` has a ``to_report_input()`` method that returns something else than a
        :class:`ReportInput`.
    """
    if isinstance(result_like, ReportInput) or hasattr(result_like, "to_report_input"):
        inp = as_report_input(result_like)
        return inp.settings, dict(inp.input_hashes), inp.seeds
    return _provenance(result_like)


def as_report_input(result_like: Any) -> ReportInput:
    """Adapt an analysis result to :class:`ReportInput`.

    Accepted, in this order: a :class:`ReportInput`; an object with a ``to_report_input()`` method; an object
    (or dict) with ``results`` (or a ``to_json()`` method, as :class:`pofa.analysis.AnalysisResult`),
    ``patients`` and ``lesions``, and optionally ``settings`` (or ``study.settings``), ``input_hashes`` /
    ``inputs`` (or ``study.input_hashes()``), ``seeds``, ``patient_covariates``, ``lesion_covariates``,
    ``study_name`` (or ``study.name``), ``statistics`` (the typed results) and ``patterns``. Without
    covariate lists, the tables'
    extra columns are used (:func:`guess_covariates`); ``progression_months`` is derived when missing
    (``fp_months`` of recurred patients).

    Parameters
    ----------
    result_like : Any
        The analysis result, a mapping of its parts, or a :class:`ReportInput`.

    Returns
    -------
    ReportInput
        The validated report input.

    Raises
    ------
    ReportError
        When the results, patients or lesions are missing or malformed, or ``to_report_input()`` returns
        something else than a :class:`ReportInput`.
    """
    if isinstance(result_like, ReportInput):
        return result_like
    if hasattr(result_like, "to_report_input"):
        out = result_like.to_report_input()
        if not isinstance(out, ReportInput):
            raise ReportError("to_report_input() must return a pofa.report.model.ReportInput")
        return out
    results = _get(result_like, ("results",))
    if results is None and callable(getattr(result_like, "to_json", None)):
        results = result_like.to_json()
    patients = _get(result_like, ("patients",))
    lesions = _get(result_like, ("lesions",))
    missing = [
        n for n, v in (("results", results), ("patients", patients), ("lesions", lesions)) if v is None
    ]
    if missing:
        raise ReportError(
            f"write_report needs the analysis' {', '.join(missing)} (got a {type(result_like).__name__}); "
            "pass a pofa.report.ReportInput"
        )
    if not isinstance(patients, pd.DataFrame) or not isinstance(lesions, pd.DataFrame):
        raise ReportError("the analysis' patients and lesions must be pandas DataFrames")
    patients = _with_progression_months(patients)
    study = _get(result_like, ("study",))
    settings, hashes, seeds = _provenance(result_like)
    pcov = _get(result_like, ("patient_covariates",))
    lcov = _get(result_like, ("lesion_covariates",))
    if study is not None and hasattr(study, "covariates"):
        pcov = pcov if pcov is not None else study.covariates("patients")
        lcov = lcov if lcov is not None else study.covariates("lesions")
    pcov = guess_covariates(patients, "patients") if pcov is None else pcov
    lcov = guess_covariates(lesions, "lesions") if lcov is None else lcov
    name = _get(result_like, ("study_name",))
    if name is None and study is not None:
        name = getattr(study, "name", "")
    return ReportInput(
        results=results,
        patients=patients,
        lesions=lesions,
        settings=settings,
        input_hashes=hashes,
        seeds=seeds,
        patient_covariates=tuple(c for c in pcov if c in patients.columns),
        lesion_covariates=tuple(c for c in lcov if c in lesions.columns),
        study_name=str(name or ""),
        statistics=_get(result_like, ("statistics",)),
        patterns=_get(result_like, ("patterns",)) if not isinstance(result_like, Mapping) else None,
    )
