"""The analysis of a study: one typed entry point, and the outputs it writes.

>>> import pofa
>>> from pofa.analysis import AnalysisOptions, run_analysis, write_outputs
>>> study = pofa.load_study("my_study/")                    # doctest: +SKIP
>>> result = run_analysis(study, AnalysisOptions())         # doctest: +SKIP
>>> write_outputs(result, "results/", force=False)          # doctest: +SKIP

:func:`run_analysis` classifies the study (:mod:`pofa.classify`), adds the derived patient features
(:mod:`pofa.features`), then runs each :class:`AnalysisStep` in order; a step returns the JSON-ready object
stored under its key of results.json (``lesion_models``, ``survival``, ...) and sees the results of the steps
before it in ``result.stats``. :func:`write_outputs` builds the output folder atomically: each writer
(``WRITERS``; e.g. the HTML report) writes its files into it, then ``results.json`` lists them.

Outputs carry no calendar dates unless ``show_dates``: each date column becomes ``<name>_days`` (days from
the patient's index date) and text covariates that look like dates are left out (docs/patterns.md). They carry
no patient ids unless ``show_ids``: ``patient_id`` becomes ``patient_seq``, the study sequence number. Extra
columns that look identifying (:mod:`pofa.privacy`) are read but dropped before the analysis, so no output
holds them; every CSV cell goes through :mod:`pofa.io.writers` (no spreadsheet formulas). docs/security.md.
"""

from __future__ import annotations

import copy
import enum
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from pofa import __version__
from pofa.atomic import is_pofa_output, output_dir
from pofa.classify import (
    FAILURE_COLUMNS,
    LESION_COLUMNS,
    PATIENT_COLUMNS,
    Classification,
    PatternCounts,
    classify_tables,
)
from pofa.errors import PofaError, StudyError
from pofa.features import patient_features, survival_endpoints
from pofa.io.writers import write_csv as _write_safe_csv
from pofa.privacy import IdentifyingColumn
from pofa.schema import TABLES, TableName
from pofa.settings import Settings
from pofa.stats.results import StudyResults
from pofa.study import Study

RESULTS_JSON = "results.json"

#: Keys of results.json that the analysis itself writes; a step may not use them.
CORE_KEYS = frozenset({"pofa_version", "study", "settings", "options", "inputs", "patterns", "classification",
                       "privacy", "files"})

#: A text cell shaped like a calendar date (2019-03-14, 14/03/2019, 3.14.19, 2019/3/14 ...).
_DATE_LIKE = re.compile(r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})(\s|T|$)")


@dataclass(frozen=True, slots=True)
class AnalysisOptions:
    """Options of one run.

    Attributes
    ----------
    show_dates : bool
        Keep calendar dates in the output tables (default: dates become days from the index date).
    settings : Settings or None
        Settings to use instead of the study's own ``study.toml`` (``None``: the study's).
    show_ids : bool or None
        Show the study's patient ids in the report (default ``None``: the ``[report] show_ids`` setting, which
        is false: patients appear as sequence numbers).
    """

    show_dates: bool = False
    settings: Settings | None = None
    show_ids: bool | None = None

    def to_json(self) -> dict[str, object]:
        """Return the options as recorded in results.json ``options``.

        Returns
        -------
        dict of str to object
            ``show_dates``, ``show_ids`` and ``settings_from`` (``"study"`` or ``"caller"``).
        """
        return {"show_dates": self.show_dates, "show_ids": self.show_ids,
                "settings_from": "study" if self.settings is None else "caller"}


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """Everything one analysis computed. Immutable; the table accessors return copies.

    Attributes
    ----------
    pofa_version, study_name : str
        Provenance for results.json.
    settings : Settings
        The settings used.
    options : AnalysisOptions
        The run's options.
    inputs : Mapping[str, str]
        SHA-256 of each input file, by file name.
    study_path : pathlib.Path
        The study read (not written to the outputs; used to refuse an output folder that would replace it).
    classification : Classification
        Failure rows, lesion outcomes, patient patterns and notes.
    stats : Mapping[str, Any]
        JSON-ready results of the analysis steps, by results.json key (for the statistics of
        :mod:`pofa.stats.study_stats`, written from :attr:`statistics`).
    statistics : StudyResults
        The typed results of the statistics steps (what the report renders; results.json is written from
        them).
    withheld : tuple of IdentifyingColumn
        Extra columns that look identifying: read, dropped before the analysis, never written.
    """

    pofa_version: str
    study_name: str
    settings: Settings
    options: AnalysisOptions
    inputs: Mapping[str, str]
    study_path: Path
    classification: Classification
    _patients: pd.DataFrame = field(repr=False)
    stats: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    statistics: StudyResults = field(default_factory=StudyResults)
    withheld: tuple[IdentifyingColumn, ...] = ()
    #: What to_json and the patient sequence numbers computed once (both are asked for again by the writers:
    #: the report, the tables and results.json); a copy made by ``replace`` starts empty.
    _memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def show_ids(self) -> bool:
        """Whether outputs carry the study's patient ids (else study sequence numbers).

        Returns
        -------
        bool
            The run's ``show_ids`` option when given, else the ``[report] show_ids`` setting.
        """
        if self.options.show_ids is not None:
            return bool(self.options.show_ids)
        return bool(self.settings.report.show_ids)
    #: The optional measurements and scans tables (docs/response.md), or None.
    response_tables: tuple[pd.DataFrame | None, pd.DataFrame | None] = field(default=(None, None), repr=False)

    @property
    def patients(self) -> pd.DataFrame:
        """Input patient columns, pattern columns, competing-risk times, features, PFS and OS (with dates).

        Returns
        -------
        pandas.DataFrame
            A copy: one row per patient.
        """
        return self._patients.copy()

    @property
    def lesions(self) -> pd.DataFrame:
        """Input lesion columns plus outcome columns (see :attr:`Classification.lesions`).

        Returns
        -------
        pandas.DataFrame
            One row per lesion.
        """
        return self.classification.lesions

    @property
    def failures(self) -> pd.DataFrame:
        """Input failure rows plus their classification (see :attr:`Classification.failures`).

        Returns
        -------
        pandas.DataFrame
            One row per failure.
        """
        return self.classification.failures

    @property
    def patterns(self) -> PatternCounts:
        """Failure-pattern counts of the study (results.json ``patterns``).

        Returns
        -------
        PatternCounts
            The counts of the classification, read from the patient and lesion tables.
        """
        return self.classification.counts()

    def with_stats(self, key: str, value: Mapping[str, Any]) -> AnalysisResult:
        """Return a copy with ``value`` stored under ``stats[key]``.

        Parameters
        ----------
        key : str
            The results.json key; a core key or one already used is refused.
        value : Mapping of str to Any
            The JSON-ready value stored under ``key``.

        Returns
        -------
        AnalysisResult
            A new result; this one is unchanged.

        Raises
        ------
        PofaError
            When ``key`` is a core results.json key or already used.
        """
        if key in CORE_KEYS or key in self.stats:
            raise PofaError(f"the results.json key {key!r} is already used; give the analysis step another "
                            "key")
        return replace(self, stats=MappingProxyType({**self.stats, key: value}))

    def with_statistics(self, part: Any) -> AnalysisResult:
        """Return a copy holding a typed step result (:mod:`pofa.stats.results`) and its results.json entries.

        Parameters
        ----------
        part : pofa.stats.results.StepResult
            A typed result with ``json_entries()``.

        Returns
        -------
        AnalysisResult
            A new result with ``part`` in ``statistics`` and each of its entries in ``stats``.
        """
        result = replace(self, statistics=self.statistics.with_part(part))
        for k, v in part.json_entries().items():
            result = result.with_stats(k, v)
        return result

    def _classification_json(self) -> dict[str, Any]:
        """classification of results.json; without ``show_ids`` its notes name patients by sequence number."""
        out = self.classification.to_json()
        if not self.show_ids:
            seq = self._patient_seq()
            notes = []
            listed = out.get("notes", [])
            assert isinstance(listed, list)  # Classification.to_json writes the notes as a list
            for n in listed:
                n = dict(n)
                pid = n.pop("patient_id", None)
                n["patient_seq"] = seq.get(str(pid)) if pid is not None else None
                notes.append(n)
            out["notes"] = notes
        return out

    def _patient_seq(self) -> dict[str, int]:
        """Return the study sequence numbers of the patients (see :func:`patient_sequence`).

        Returns
        -------
        dict of str to int
            Sequence number of each patient id (computed once; do not modify).
        """
        if "seq" not in self._memo:
            self._memo["seq"] = patient_sequence(self._patients["patient_id"])
        seq: dict[str, int] = self._memo["seq"]
        return seq

    def to_json(self, files: Sequence[str] = ()) -> dict[str, Any]:
        """Return the content of results.json.

        The document is built once (the report and results.json both ask for it); each call returns a copy.

        Parameters
        ----------
        files : sequence of str, optional
            The files written beside results.json (listed under ``files``).

        Returns
        -------
        dict of str to Any
            Provenance, settings, options, inputs, patterns, classification, privacy, files and every step's
            entries, JSON-ready (see :func:`json_ready`).
        """
        if "json" not in self._memo:
            self._memo["json"] = self._document()
        document: dict[str, Any] = copy.deepcopy(self._memo["json"])  # under a millisecond
        document["files"] = list(files)
        return document

    def _document(self) -> dict[str, Any]:
        """results.json without its files."""
        out: dict[str, Any] = {
            "pofa_version": self.pofa_version,
            "study": self.study_name,
            "settings": self.settings.to_json(),
            "options": self.options.to_json(),
            "inputs": dict(self.inputs),
            "patterns": self.patterns.to_json(),
            "classification": self._classification_json(),
            "privacy": privacy_summary(self),
            "files": [],
        }
        out.update(self.stats)
        document: dict[str, Any] = json_ready(out)
        return document


@dataclass(frozen=True, slots=True)
class AnalysisStep:
    """One further analysis (e.g. lesion-level models): its results.json key and the function that makes it.

    ``run`` receives the result so far and returns a JSON-ready value (numbers, text, lists, mappings;
    non-finite numbers become ``null``; objects with ``to_json()`` are converted), stored under ``key``.
    A step whose ``key`` is ``"*"`` returns either a typed result of :mod:`pofa.stats.results` (kept in
    ``statistics``; its ``json_entries()`` go to results.json) or a mapping of several results.json keys to
    their values (one fit feeding several entries, e.g. ``lesion_models`` and ``lesion_models_info``).
    """

    key: str
    run: Callable[[AnalysisResult], Any]
    #: What the step computes, for progress reports (e.g. ``"survival"``); the key when empty.
    label: str = ""

    def apply(self, result: AnalysisResult) -> AnalysisResult:
        """Run this step and store its value(s) in ``result``.

        Parameters
        ----------
        result : AnalysisResult
            The result so far (not modified).

        Returns
        -------
        AnalysisResult
            A copy with the value under :attr:`key`, or, for key ``"*"``, the typed result or each entry of
            the returned mapping.
        """
        value = self.run(result)
        if self.key != "*":
            return result.with_stats(self.key, value)
        if callable(getattr(value, "json_entries", None)):
            return result.with_statistics(value)
        for k, v in value.items():
            result = result.with_stats(k, v)
        return result


def _statistics_steps() -> tuple[AnalysisStep, ...]:
    from pofa.stats import study_stats as ss

    return (
        AnalysisStep("*", lambda r: ss.lesion_level_results(r.lesions, r.settings), "lesion-level models"),
        AnalysisStep("*", lambda r: ss.survival_results(r.patients, r.settings), "survival"),
        AnalysisStep("*", lambda r: ss.patient_level_results(r.patients, r.lesions, r.settings),
                     "patient-level models"),
        AnalysisStep("*", lambda r: ss.competing_risks_results(r.patients, r.lesions, r.settings),
                     "competing risks"),
        AnalysisStep("*", lambda r: ss.cutpoints_results(r.patients, r.settings), "cut-points"),
        AnalysisStep("*", _radiotherapy_step, "radiotherapy"),
        AnalysisStep("*", _response_step, "response"),
    )


def _radiotherapy_step(r: AnalysisResult) -> Any:
    """Typed ``radiotherapy`` results when lesions carry ``bridging_rt`` (docs/radiotherapy.md), or ``{}``."""
    from pofa.stats.radiotherapy import radiotherapy_statistics

    res = radiotherapy_statistics(r.lesions, r.failures, r.patients, r.settings)
    return {} if res is None else res


def _response_step(r: AnalysisResult) -> Any:
    """Typed ``responses``, ``lesion_failure``, ``lesion_cox`` (docs/response.md), or ``{}``."""
    measurements, _ = r.response_tables
    if measurements is None or measurements.empty:
        return {}  # no measurements table: pofa.response.study is not imported
    from pofa.response.study import response_results

    res = response_results(r)
    return {} if res is None else res


#: The analysis steps run by default, in order: the statistics of :mod:`pofa.stats.study_stats`.
STEPS: tuple[AnalysisStep, ...] = _statistics_steps()

Writer = Callable[[AnalysisResult, Path], Sequence[str]]
"""Writes files into the (temporary) output folder and returns their names relative to it."""

Progress = Callable[[str], None]
"""Told the name of each step as it starts (``"classify"``, ``"statistics: survival"``, ``"tables"``, ...).

The library never prints: a caller that wants a progress display (the command-line program draws one on
stderr) passes a function; it must not raise.
"""


def _no_progress(step: str) -> None:
    """The default :data:`Progress`: report nothing."""


def _merge(base: pd.DataFrame, extra: pd.DataFrame, table: str) -> pd.DataFrame:
    clash = [c for c in extra.columns if c in base.columns]
    if clash:
        raise StudyError(f"the {table} table has column(s) {', '.join(map(repr, clash))} that pofa computes; "
                         "rename them in the study (e.g. add '_recorded') and analyse again")
    return pd.concat([base, extra], axis=1)


def run_analysis(study: Study, options: AnalysisOptions | None = None,
                 steps: Sequence[AnalysisStep] | None = None,
                 progress: Progress | None = None) -> AnalysisResult:
    """Classify a study, derive the patient features, and run the analysis steps.

    Parameters
    ----------
    study : Study
        A study as :func:`pofa.load_study` reads it. Not modified.
    options : AnalysisOptions, optional
        Defaults to ``AnalysisOptions()``.
    steps : sequence of AnalysisStep, optional
        Defaults to :data:`STEPS`.
    progress : Progress, optional
        Called with ``"validate"``, ``"classify"`` and ``"statistics: <label>"`` as each step starts.

    Returns
    -------
    AnalysisResult
        The classification, derived features and every step's results (typed and as results.json entries).

    Raises
    ------
    StudyError
        When the study has validation errors, or a table has a column named like one pofa computes.
    """
    options = options if options is not None else AnalysisOptions()
    progress = progress if progress is not None else _no_progress
    progress("validate")
    report = study.validate()
    if not report.ok:
        first = report.errors[0]
        raise StudyError(f"the study {study.path} has {len(report.errors)} validation error(s), e.g. "
                         f"{first.location()}: {first.message}; run 'pofa validate {study.path}' to see them "
                         "all")
    settings = options.settings if options.settings is not None else study.settings
    patients, lesions, failures = study.patients, study.lesions, study.failures
    frames = {"patients": patients, "lesions": lesions, "failures": failures}
    # found while the study was checked (the same tally under the study's own settings)
    withheld = tuple(c for c in study.identifying_columns(settings) if c.table in frames)
    if withheld:
        def keep(frame: pd.DataFrame, table: str) -> pd.DataFrame:
            return frame.drop(columns=[c.column for c in withheld if c.table == table])

        patients, lesions, failures = keep(patients, "patients"), keep(lesions, "lesions"), keep(failures,
                                                                                             "failures")
    progress("classify")
    classification = classify_tables(
        patients, lesions, failures, settings.classification,
        sources={"patients": study.source(TableName.PATIENTS), "failures": study.source(TableName.FAILURES)},
    )
    derived = pd.concat([classification.patients.drop(columns="patient_id"),
                         patient_features(patients, lesions, settings.features),
                         survival_endpoints(patients)], axis=1)
    result = AnalysisResult(
        pofa_version=__version__,
        study_name=study.name,
        settings=settings,
        options=options,
        inputs=MappingProxyType(study.input_hashes()),
        study_path=Path(study.path),
        classification=classification,
        _patients=_merge(patients, derived, "patients"),
        withheld=withheld,
        response_tables=(study.measurements, study.scans),
    )
    for step in (STEPS if steps is None else steps):
        progress(f"statistics: {step.label or step.key}")
        result = step.apply(result)
    return result


# ----------------------------------------------------------------------------------------------------------
# Outputs


@dataclass(frozen=True, slots=True)
class DatePlan:
    """What de-identification does to one output table: date columns converted to days, columns left out."""

    converted: tuple[str, ...]
    dropped: tuple[str, ...]


_COMPUTED = {TableName.LESIONS: frozenset(LESION_COLUMNS), TableName.FAILURES: frozenset(FAILURE_COLUMNS),
             TableName.PATIENTS: frozenset(PATIENT_COLUMNS)}


def _is_text(values: pd.Series) -> bool:
    return values.dtype == object or isinstance(values.dtype, pd.StringDtype)


def date_plan(frame: pd.DataFrame, table: TableName, show_dates: bool) -> DatePlan:
    """Plan the date handling of one output table.

    Date columns all become days from the index date; date-like text covariates are left out unless
    ``show_dates``.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table as analysed.
    table : TableName
        Which table ``frame`` is (its known columns are never dropped).
    show_dates : bool
        Keep calendar dates (then no text column is left out).

    Returns
    -------
    DatePlan
        The date columns converted to days and the date-like text columns left out.
    """
    spec = TABLES[table]
    converted = tuple(c for c in frame.columns
                      if pd.api.types.is_datetime64_any_dtype(frame[c]) and c != "index_date")
    dropped: list[str] = []
    if not show_dates:
        for c in frame.columns:
            if spec.column(c) is None and c not in _COMPUTED[table] and _is_text(frame[c]):
                # each distinct cell once (a text column of 20,000 cells holds few distinct ones)
                text = pd.Series(frame[c].dropna().unique(), dtype=object).astype(str)
                if len(text) and text.str.match(_DATE_LIKE).any():
                    dropped.append(c)
    return DatePlan(converted, tuple(dropped))


def _days_name(column: str, taken: pd.Index) -> str:
    name = f"{column.removesuffix('_date')}_days"
    return name if name not in taken else f"{column}_days"


def deidentify(frame: pd.DataFrame, index_date: pd.Series, table: TableName,
               show_dates: bool) -> pd.DataFrame:
    """Return a copy of ``frame`` as written.

    Each date column is followed by ``<name>_days`` (days from the index date, Int64); then, unless
    ``show_dates``, date columns and date-like text covariates are left out. With ``show_dates`` dates are
    kept as ``YYYY-MM-DD`` text.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table as analysed (not modified).
    index_date : pandas.Series
        Each row's index date (aligned with ``frame``).
    table : TableName
        Which table ``frame`` is.
    show_dates : bool
        Keep calendar dates as text.

    Returns
    -------
    pandas.DataFrame
        The de-identified copy.
    """
    plan = date_plan(frame, table, show_dates)
    out = frame.copy()
    for column in plan.converted:
        elapsed: pd.Series[pd.Timedelta] = out[column] - index_date
        days = (elapsed / pd.Timedelta(days=1)).round().astype("Int64")
        pos = out.columns.get_loc(column)
        assert isinstance(pos, int)  # the position of a unique column name
        out.insert(pos + 1, _days_name(column, out.columns), days)
    dates = []
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            if show_dates:
                out[column] = out[column].dt.strftime("%Y-%m-%d").astype(object)
            else:
                dates.append(column)
    return out.drop(columns=[*dates, *plan.dropped])


def _index_dates(result: AnalysisResult, frame: pd.DataFrame) -> pd.Series:
    patients = result._patients  # read only: the patients property copies the whole table
    by_id = pd.Series(patients["index_date"].array, index=patients["patient_id"].to_numpy())
    s = by_id.reindex(frame["patient_id"].to_numpy())
    s.index = frame.index
    return s


def patient_sequence(patient_ids: pd.Series) -> dict[str, int]:
    """Return the study sequence numbers 1..n of the patient ids.

    These are the numbers the report shows; they follow the natural order of the ids, so the same study
    always gets the same numbers.

    Parameters
    ----------
    patient_ids : pandas.Series
        The patient ids of the study.

    Returns
    -------
    dict of str to int
        Sequence number of each patient id.
    """
    from pofa.report.model import sequence_numbers

    return sequence_numbers(patient_ids)


def _sequence_column(frame: pd.DataFrame, seq: Mapping[str, int]) -> pd.DataFrame:
    """``patient_id`` replaced, in place, by ``patient_seq`` (the study sequence number, Int64)."""
    pos = frame.columns.get_loc("patient_id")
    assert isinstance(pos, int)  # the position of a unique column name
    # looked up through an index (a hash table in C): Series.map with the dict cost three times as much
    where = pd.Index(list(seq)).get_indexer(pd.Index(frame["patient_id"].astype(str)))
    values = np.fromiter(seq.values(), dtype=np.int64, count=len(seq))
    numbers = pd.array(values[where] if len(values) else np.zeros(len(where), dtype=np.int64), dtype="Int64")
    numbers[where < 0] = pd.NA  # an id without a number (none in an analysed study)
    out = frame.drop(columns="patient_id")
    out.insert(pos, "patient_seq", pd.Series(numbers, index=frame.index))
    return out


def output_tables(result: AnalysisResult) -> dict[str, pd.DataFrame]:
    """Return the tables as written (keys ``lesions``, ``patients``, ``failures`` are the file stems).

    Dates become days from the index date (unless ``show_dates``); ``patient_id`` becomes ``patient_seq``
    (unless ``show_ids``). Identifying columns were dropped before the analysis (``result.withheld``).

    Parameters
    ----------
    result : AnalysisResult
        The analysis whose tables are written.

    Returns
    -------
    dict of str to pandas.DataFrame
        The de-identified tables by file stem.
    """
    show = result.options.show_dates
    patients, lesions, failures = result.patients, result.lesions, result.failures
    out = {
        "lesions": deidentify(lesions, _index_dates(result, lesions), TableName.LESIONS, show),
        "patients": deidentify(patients, patients["index_date"], TableName.PATIENTS, show),
        "failures": deidentify(failures, _index_dates(result, failures), TableName.FAILURES, show),
    }
    if not result.show_ids:
        seq = result._patient_seq()
        out = {k: _sequence_column(v, seq) for k, v in out.items()}
    return out


def privacy_summary(result: AnalysisResult) -> dict[str, Any]:
    """Summarise what the output tables did with dates and ids (results.json ``privacy``).

    Parameters
    ----------
    result : AnalysisResult
        The analysis whose tables are written.

    Returns
    -------
    dict of str to Any
        The date and id options, the columns converted to days, the date-like columns left out and the
        withheld identifying columns.
    """
    show = result.options.show_dates
    plans = {"lesions": date_plan(result.lesions, TableName.LESIONS, show),
             "patients": date_plan(result.patients, TableName.PATIENTS, show),
             "failures": date_plan(result.failures, TableName.FAILURES, show)}
    return {
        "show_dates": show,
        "show_ids": result.show_ids,
        "patients_as": "patient_id" if result.show_ids else "patient_seq (study sequence number)",
        "index_date_kept": show,
        "dates_as_days_from_index": {k: list(v.converted) for k, v in plans.items()},
        "date_like_columns_left_out": {k: list(v.dropped) for k, v in plans.items()},
        "withheld_columns": [c.to_json() for c in result.withheld],
    }


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as a CSV file safe to open in a spreadsheet.

    UTF-8, header first, blank = missing, yes/no as true/false, text quoted, no cell a spreadsheet would
    run as a formula (:func:`pofa.io.writers.write_csv`).

    Parameters
    ----------
    frame : pandas.DataFrame
        The table to write.
    path : pathlib.Path
        The file to write (atomically).
    """
    _write_safe_csv(frame, path)


def write_tables(result: AnalysisResult, folder: Path) -> tuple[str, ...]:
    """Write lesions.csv, patients.csv and failures.csv (see :func:`output_tables`).

    Parameters
    ----------
    result : AnalysisResult
        The analysis whose tables are written.
    folder : pathlib.Path
        The folder to write them in.

    Returns
    -------
    tuple of str
        The names of the files written.
    """
    names = []
    for stem, frame in output_tables(result).items():
        name = f"{stem}.csv"
        write_csv(frame, folder / name)
        names.append(name)
    return tuple(names)


def _report_writer(result: AnalysisResult, folder: Path) -> Sequence[str]:
    from pofa.report import report_writer

    return report_writer(result, folder)


#: The writers run by :func:`write_outputs`, in order: the tables, then the HTML report (figures/, tables/).
WRITERS: tuple[Writer, ...] = (write_tables, _report_writer)

#: What :func:`write_outputs` reports to its ``progress`` for each default writer.
_WRITER_STEPS: Mapping[Writer, str] = {write_tables: "tables", _report_writer: "figures and report"}


def json_ready(obj: Any) -> Any:
    """Return ``obj`` as plain JSON.

    Non-finite numbers become None, numpy scalars Python ones, enums their value, objects with
    ``to_json()`` their JSON; mappings and sequences are converted recursively.

    Parameters
    ----------
    obj : Any
        The value to convert.

    Returns
    -------
    Any
        Mappings with text keys, lists, text, numbers, booleans and ``None`` only.

    Raises
    ------
    PofaError
        For a value of another type.
    """
    if isinstance(obj, Mapping):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if hasattr(obj, "to_json") and callable(obj.to_json):
        return json_ready(obj.to_json())
    if isinstance(obj, enum.Enum):
        return json_ready(obj.value)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if obj is pd.NA or obj is pd.NaT:
        return None
    raise PofaError(f"results.json cannot hold a value of type {type(obj).__name__}; an analysis step must "
                    "return numbers, text, lists and mappings")


def write_outputs(result: AnalysisResult, out_dir: str | Path, force: bool = False,
                  writers: Sequence[Writer] | None = None, progress: Progress | None = None) -> Path:
    """Write the output folder atomically: the writers' files, then results.json listing them.

    Parameters
    ----------
    result : AnalysisResult
        The analysis to write.
    out_dir : str or pathlib.Path
        The output folder. An existing non-empty folder is replaced only with ``force``.
    force : bool
        Replace a non-empty ``out_dir``: only a folder pofa wrote (:func:`pofa.atomic.is_pofa_output`).
    writers : sequence of Writer, optional
        Defaults to :data:`WRITERS`.
    progress : Progress, optional
        Called with each writer's step (``"tables"``, ``"figures and report"``, else ``"writing <name>"``)
        as it starts.

    Returns
    -------
    pathlib.Path
        The output folder (absolute).

    Raises
    ------
    PofaError
        When the output folder holds the study, or two writers wrote the same file (or results.json).
    """
    target = Path(out_dir).absolute()
    study = result.study_path.resolve()
    if target.resolve() == study or target.resolve() in study.parents:
        raise PofaError(f"the output folder {target} holds the study itself (replacing it would delete the "
                        "study)", advice="choose another {out}")
    with output_dir(target, force, recognise=is_pofa_output) as tmp:
        files: list[str] = []
        report = progress if progress is not None else _no_progress
        for writer in (WRITERS if writers is None else writers):
            report(_WRITER_STEPS.get(writer) or f"writing {getattr(writer, '__name__', 'files')}")
            files.extend(writer(result, tmp))
        if RESULTS_JSON in files or len(set(files)) != len(files):
            raise PofaError(f"two writers wrote the same file, or a writer wrote {RESULTS_JSON}: {files}")
        files.append(RESULTS_JSON)
        text = json.dumps(result.to_json(files), indent=2, ensure_ascii=False, allow_nan=False)
        (tmp / RESULTS_JSON).write_text(text + "\n", encoding="utf-8")
        if writers is None or _report_writer in writers:
            from pofa.report import write_run_manifest

            write_run_manifest(result, tmp)
        else:  # every output folder holds pofa's manifest: it is what lets --force replace the folder later
            from pofa.report.manifest import write_manifest

            write_manifest(tmp, settings=result.settings.to_json(), input_hashes=dict(result.inputs),
                           seeds={}, report_options={"show_ids": result.show_ids})
    return target
