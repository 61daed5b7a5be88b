"""Patterns of failure: each failure row's class, each baseline lesion's outcome, each patient's pattern.

The rules (docs/patterns.md):

1. **First-progression window.** A failure row belongs to first progression when its ``scan_date`` lies from
   the patient's ``progression_date`` to ``progression_date + window_days`` (both days included; 30 by
   default). Later rows are *later events*: used for the times to failure, never for the pattern.
2. **Failure class.** A row naming a ``baseline_lesion_id`` is a *local* failure of that lesion. A row with a
   blank id is a new lesion: *de novo*, unless ``use_geometry`` is on and both the row and the patient's
   baseline lesions have a centre and a diameter. Then each lesion is a sphere (radius = diameter / 2) and the
   surface gap is ``distance between centres - radius_failure - radius_baseline`` (negative = overlap):
   gap <= ``local_margin_mm`` is local (to the baseline lesion with the smallest gap), gap <=
   ``marginal_margin_mm`` is *marginal*, else de novo. An explicit id always wins; with geometry on, a named
   row whose named lesion is not within the local margin is reported as an id/geometry conflict. A row that
   geometry could match to more than one baseline lesion is reported as ambiguous.
3. **Lesion outcome at first progression** (:class:`LesionOutcome`) from the rows in the window.
4. **Patient pattern** (:class:`PatientPattern`) built from the lesion outcomes (local component) and the
   window's rows that count as de novo; a marginal row counts as de novo unless ``marginal_counts_as =
   "local"``.
5. **Times**, from the index date, in months of 30.4375 days: per lesion ``lf_months`` / ``lf_status``
   (0 censored, 1 local failure, 2 death without local failure), per patient the cause of first progression
   (``fp_*``) and the first local / first de novo failure (``first_lf_*``, ``first_dn_*``).

The competing-risk codes are those of R ``cmprsk::cuminc(ftime, fstatus, cencode = 0)`` and
``survival::survfit(Surv(time, factor(status)) ~ 1)`` (status 0 = censored).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd

from pofa.errors import SettingsError, StudyError
from pofa.schema import COORDINATES, TableName
from pofa.settings import MARGINAL_COUNTS_AS, ClassificationSettings
from pofa.units import DAYS_PER_MONTH
from pofa.vocabulary import (
    AssignmentBasis,
    FailureClass,
    FailureTiming,
    LesionOutcome,
    PatientPattern,
    PatternComponent,
)

if TYPE_CHECKING:
    from pofa.study import Study

#: Geometric comparisons allow this slack (mm) so that spheres given in decimals that touch count as touching.
GEOMETRY_TOLERANCE_MM = 1e-9

_GEOMETRY_COLUMNS = (*COORDINATES, "diameter_cm")

#: Columns added to the lesion table, the failure table and (:func:`patient_patterns`) the patient table.
LESION_COLUMNS = ("lesion_outcome", "local_failure", "marginal_failure", "failure_ids", "lf_months",
                  "lf_status")
FAILURE_COLUMNS = ("days_after_progression", "timing", "failure_class", "assigned_by", "assigned_lesion_id",
                   "gap_mm", "pattern_component")
PATIENT_COLUMNS = ("recurred", "pattern", "local_component", "maintained_control", "n_local_failure_lesions",
                   "n_de_novo_failures", "n_marginal_failures", "fp_months", "fp_status", "fp_cause",
                   "first_lf_months", "first_lf_status", "first_dn_months", "first_dn_status")


class LocalFailureStatus(enum.IntEnum):
    """``lf_status`` / ``first_lf_status`` / ``first_dn_status``: 0 censored, 1 the failure, 2 death first."""

    CENSORED = 0
    FAILURE = 1
    DEATH = 2


class FirstProgressionStatus(enum.IntEnum):
    """``fp_status``: the cause of first progression, for the cumulative incidence of local vs de novo."""

    CENSORED = 0
    LOCAL_COMPONENT = 1
    STRICTLY_DE_NOVO = 2
    DEATH_WITHOUT_PROGRESSION = 3
    UNKNOWN_PATTERN = 4


FP_CAUSE_LABELS: Mapping[FirstProgressionStatus, str] = {
    FirstProgressionStatus.CENSORED: "censored",
    FirstProgressionStatus.LOCAL_COMPONENT: "local component",
    FirstProgressionStatus.STRICTLY_DE_NOVO: "strictly de novo",
    FirstProgressionStatus.DEATH_WITHOUT_PROGRESSION: "death without progression",
    FirstProgressionStatus.UNKNOWN_PATTERN: "progression, pattern unknown",
}


class NoteKind(enum.Enum):
    """Kinds of classification note (results.json ``classification.notes[].kind``)."""

    AMBIGUOUS = "ambiguous-match"
    CONFLICT = "id-geometry-conflict"
    INCOMPLETE_GEOMETRY = "incomplete-geometry"
    NO_COORDINATES = "no-coordinates"
    NO_FAILURES_IN_WINDOW = "no-failures-in-window"


@dataclass(frozen=True, slots=True)
class ClassificationNote:
    """Something to review: where (file and spreadsheet row), which patient and failure row, and what."""

    kind: NoteKind
    file: str
    row: int | None
    patient_id: str
    failure_id: str | None
    message: str

    def to_json(self) -> dict[str, object]:
        """The note as plain JSON types.

        Returns
        -------
        dict of {str: object}
            The fields by name (the kind as its string).
        """
        return {"kind": self.kind.value, "file": self.file, "row": self.row, "patient_id": self.patient_id,
                "failure_id": self.failure_id, "message": self.message}


@dataclass(frozen=True, slots=True)
class PatternCounts:
    """The counts of results.json ``patterns`` (patients unless named lesions).

    ``recurred = local_component + strictly_de_novo + unknown`` and ``local_component = strictly_local +
    mixed``.
    """

    patients: int
    lesions: int
    recurred: int
    local_component: int
    strictly_local: int
    strictly_de_novo: int
    mixed: int
    unknown: int
    maintained_control: int
    local_failure_lesions: int

    def to_json(self) -> dict[str, int]:
        """The counts as plain JSON types.

        Returns
        -------
        dict of {str: int}
            Count per pattern and lesion outcome.
        """
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Classification:
    """Failure rows, lesions and patients with their classification. Accessors return copies.

    Attributes
    ----------
    settings : ClassificationSettings
        The rules used.
    notes : tuple of ClassificationNote
        Ambiguous matches, id/geometry conflicts and other points to review.
    method : str
        The rules in one sentence (written to results.json).
    """

    settings: ClassificationSettings
    notes: tuple[ClassificationNote, ...]
    method: str
    _lesions: pd.DataFrame = field(repr=False)
    _failures: pd.DataFrame = field(repr=False)
    _patients: pd.DataFrame = field(repr=False)

    @property
    def lesions(self) -> pd.DataFrame:
        """Input lesion columns plus the lesion outcome columns.

        Returns
        -------
        pandas.DataFrame
            The lesions with ``lesion_outcome``, ``local_failure`` (1/0, NA when unknown),
            ``marginal_failure``, ``failure_ids``, ``lf_months``, ``lf_status`` (a copy).
        """
        return self._lesions.copy()

    @property
    def failures(self) -> pd.DataFrame:
        """Input failure columns plus the failure classification columns.

        Returns
        -------
        pandas.DataFrame
            The failures with ``days_after_progression``, ``timing``, ``failure_class``, ``assigned_by``,
            ``assigned_lesion_id``, ``gap_mm``, ``pattern_component`` (a copy).
        """
        return self._failures.copy()

    @property
    def patients(self) -> pd.DataFrame:
        """``patient_id`` plus the pattern columns and the competing-risk times (same index as the input).

        Returns
        -------
        pandas.DataFrame
            ``patient_id`` plus the pattern columns and the competing-risk times (same index as the input; a
            copy).
        """
        return self._patients.copy()

    def counts(self) -> PatternCounts:
        """Pattern counts, all read from the patient and lesion tables.

        Returns
        -------
        PatternCounts
            Pattern counts, all read from the patient and lesion tables.
        """
        p, les = self._patients, self._lesions
        pattern = p["pattern"]
        return PatternCounts(
            patients=len(p),
            lesions=len(les),
            recurred=int(p["recurred"].sum()),
            local_component=int(p["local_component"].sum()),
            strictly_local=int((pattern == PatientPattern.STRICTLY_LOCAL.value).sum()),
            strictly_de_novo=int((pattern == PatientPattern.STRICTLY_DE_NOVO.value).sum()),
            mixed=int((pattern == PatientPattern.MIXED.value).sum()),
            unknown=int((pattern == PatientPattern.UNKNOWN.value).sum()),
            maintained_control=int(p["maintained_control"].sum()),
            local_failure_lesions=int((les["lesion_outcome"] == LesionOutcome.LOCAL_FAILURE.value).sum()),
        )

    def to_json(self) -> dict[str, object]:
        """Method, failure-row counts by timing and class, and the notes.

        Returns
        -------
        dict of {str: object}
            Method, failure-row counts by timing and class, and the notes.
        """
        f = self._failures
        rows: dict[str, dict[str, int]] = {}
        for timing in FailureTiming:
            sub = f[f["timing"] == timing.value]
            rows[timing.value] = {c.value: int((sub["failure_class"] == c.value).sum()) for c in FailureClass}
        return {
            "method": self.method,
            "failure_rows": rows,
            "notes": [n.to_json() for n in self.notes],
        }


def check_settings(settings: ClassificationSettings) -> None:
    """Check classification settings as ``study.toml`` would.

    Parameters
    ----------
    settings : ClassificationSettings
        The settings checked.

    Raises
    ------
    pofa.errors.SettingsError
        For settings that ``study.toml`` would refuse.
    """
    if settings.window_days < 0:
        raise SettingsError("classification.window_days must be 0 or more (e.g. 30)")
    if not 0 <= settings.local_margin_mm <= settings.marginal_margin_mm:
        raise SettingsError("margins must satisfy 0 <= local_margin_mm <= marginal_margin_mm "
                            "(e.g. local_margin_mm = 0, marginal_margin_mm = 10)")
    if settings.marginal_counts_as not in MARGINAL_COUNTS_AS:
        raise SettingsError(f"classification.marginal_counts_as = {settings.marginal_counts_as!r} is not "
                            'known; use "de novo" or "local"')


def describe(settings: ClassificationSettings) -> str:
    """The classification rules as one sentence (results.json ``classification.method``).

    Parameters
    ----------
    settings : ClassificationSettings
        The classification settings.

    Returns
    -------
    str
        The classification rules as one sentence (results.json ``classification.method``).
    """
    s = settings
    text = (f"First progression = failure rows from progression_date to progression_date + {s.window_days} "
            "days (inclusive); rows naming a baseline_lesion_id are local failures of that lesion; ")
    if s.use_geometry:
        text += ("rows without an id are assigned by geometry (spheres of the recorded diameter; surface gap "
                 f"<= {s.local_margin_mm:g} mm local, <= {s.marginal_margin_mm:g} mm marginal, else "
                 "de novo), an explicit id wins; ")
    else:
        text += "rows without an id are de novo (geometry off); "
    text += f"marginal failures count as {s.marginal_counts_as} for lesion outcomes and patient patterns."
    return text


def months(start: pd.Series, end: pd.Series) -> pd.Series:
    """Compute the months from ``start`` to ``end`` (days / 30.4375).

    Parameters
    ----------
    start : pandas.Series
        Start dates.
    end : pandas.Series
        End dates.

    Returns
    -------
    pandas.Series
        Months, NaN where either date is missing.
    """
    elapsed: pd.Series[pd.Timedelta] = end - start
    out: pd.Series = (elapsed / pd.Timedelta(days=1) / DAYS_PER_MONTH).astype("float64")
    return out


def end_of_followup(patients: pd.DataFrame) -> pd.Series:
    """The death date where there is one, else the last follow-up date.

    A death dated after ``last_followup_date`` (a validation warning) ends follow-up at the death date.

    Parameters
    ----------
    patients : pandas.DataFrame
        The typed patients table.

    Returns
    -------
    pandas.Series
        End of follow-up of each patient (same index).
    """
    return patients["death_date"].where(patients["death_date"].notna(), patients["last_followup_date"])


# ----------------------------------------------------------------------------------------------------------
# Failure rows


def _align(values: pd.Series, ids: pd.Series) -> pd.Series:
    """``values`` (indexed by id) looked up for each of ``ids``, aligned on ``ids`` (dtype kept: unlike
    ``Series.map``, which turns an empty datetime mapper into floats)."""
    out = values.reindex(ids.to_numpy())
    out.index = ids.index
    return out


def _lookup(patients: pd.DataFrame, ids: pd.Series, column: str) -> pd.Series:
    """``column`` of the patient of each id, aligned on ``ids``."""
    return _align(patients.set_index("patient_id")[column], ids)


def _has_geometry(frame: pd.DataFrame) -> pd.Series:
    if not set(_GEOMETRY_COLUMNS) <= set(frame.columns):
        return pd.Series(False, index=frame.index)
    return frame[list(_GEOMETRY_COLUMNS)].notna().all(axis=1)


def _geometry_pairs(failures: pd.DataFrame, lesions: pd.DataFrame) -> pd.DataFrame:
    """Every (failure row, baseline lesion of the same patient) pair with both spheres known, and its gap.

    Columns: ``frow`` (failure row label), ``lesion_id``, ``lrow`` (lesion row label) and ``gap`` (mm), sorted
    by failure row, gap and lesion row (so the first pair of each failure row is its nearest lesion).
    """
    cols = list(_GEOMETRY_COLUMNS)
    f_ok, b_ok = _has_geometry(failures), _has_geometry(lesions)  # all False when the columns are absent
    if not f_ok.any() or not b_ok.any():
        return pd.DataFrame({"frow": pd.Series(dtype="int64"), "lesion_id": pd.Series(dtype=object),
                             "lrow": pd.Series(dtype="int64"), "gap": pd.Series(dtype="float64")})
    f = failures.loc[f_ok, ["patient_id", *cols]].rename_axis("frow").reset_index()
    b = lesions.loc[b_ok, ["patient_id", "lesion_id", *cols]].rename_axis("lrow").reset_index()
    pairs = f.merge(b, on="patient_id", suffixes=("_f", "_b"))
    d2 = np.zeros(len(pairs))
    for c in COORDINATES:
        d2 += (pairs[f"{c}_f"].to_numpy() - pairs[f"{c}_b"].to_numpy()) ** 2
    # Radius in mm = diameter in cm * 10 / 2.
    gap = np.sqrt(d2) - 5.0 * (pairs["diameter_cm_f"].to_numpy() + pairs["diameter_cm_b"].to_numpy())
    out = pd.DataFrame({"frow": pairs["frow"].to_numpy(), "lesion_id": pairs["lesion_id"].to_numpy(),
                        "lrow": pairs["lrow"].to_numpy(), "gap": gap})
    return out.sort_values(["frow", "gap", "lrow"], kind="mergesort").reset_index(drop=True)


def _candidates(pairs: pd.DataFrame) -> str:
    pairs_ = zip(pairs["lesion_id"], pairs["gap"], strict=True)
    return ", ".join(f"{lid!r} (gap {g:.1f} mm)" for lid, g in pairs_)


def assign_failures(
    patients: pd.DataFrame,
    lesions: pd.DataFrame,
    failures: pd.DataFrame,
    settings: ClassificationSettings,
    *,
    source: str = "failures",
) -> tuple[pd.DataFrame, tuple[ClassificationNote, ...]]:
    """Timing, class and assigned baseline lesion of every failure row.

    Parameters
    ----------
    patients, lesions, failures : pandas.DataFrame
        Tables as :class:`pofa.Study` gives them (of a study without validation errors). Not modified.
    settings : ClassificationSettings
        Window, geometry switch and margins.
    source : str
        File name of the failures table, for the notes.

    Returns
    -------
    (pandas.DataFrame, tuple of ClassificationNote)
        A copy of ``failures`` with ``days_after_progression`` (Int64), ``timing``, ``failure_class``,
        ``assigned_by``, ``assigned_lesion_id`` (the failed lesion; for a marginal row the nearest lesion),
        ``gap_mm`` (surface gap to that lesion, or for a de novo row to the nearest lesion; NaN when geometry
        was not used) and ``pattern_component``; and the notes.

    Raises
    ------
    StudyError
        When a failure's ``baseline_lesion_id`` is not a lesion of its patient (an unvalidated study).
    """
    f = failures.copy()
    pid = f["patient_id"]
    prog = _lookup(patients, pid, "progression_date")
    elapsed: pd.Series[pd.Timedelta] = f["scan_date"] - prog
    days = elapsed / pd.Timedelta(days=1)
    in_window = (days >= 0) & (days <= settings.window_days)
    f["days_after_progression"] = days.round().astype("Int64")
    f["timing"] = np.where(in_window, FailureTiming.FIRST_PROGRESSION.value, FailureTiming.LATER.value)

    named = f["baseline_lesion_id"].notna()
    if named.any():
        known = pd.MultiIndex.from_frame(lesions[["patient_id", "lesion_id"]])
        mine = pd.MultiIndex.from_arrays([pid[named], f.loc[named, "baseline_lesion_id"]])
        bad = ~mine.isin(known)
        if bad.any():
            row = f.index[named][bad][0]
            lid, pid_ = f.at[row, "baseline_lesion_id"], f.at[row, "patient_id"]
            raise StudyError(f"{source}, row {row}: baseline_lesion_id {lid!r} is not a lesion of patient "
                             f"{pid_!r}; run pofa validate and fix the study")
    cls = pd.Series(np.where(named, FailureClass.LOCAL.value, FailureClass.DE_NOVO.value), index=f.index,
                    dtype=object)
    basis = pd.Series(np.where(named, AssignmentBasis.ID.value, AssignmentBasis.NEW_LESION.value),
                      index=f.index, dtype=object)
    assigned = f["baseline_lesion_id"].astype(object).copy()
    gap_mm = pd.Series(np.nan, index=f.index)
    notes: tuple[ClassificationNote, ...] = ()
    if settings.use_geometry and len(f):
        cls, basis, assigned, gap_mm, notes = _apply_geometry(f, lesions, settings, source, named, cls, basis,
                                                              assigned, gap_mm)

    f["failure_class"] = cls
    f["assigned_by"] = basis
    f["assigned_lesion_id"] = assigned.where(assigned.notna(), None)
    f["gap_mm"] = gap_mm
    local_like = {FailureClass.LOCAL.value}
    if settings.marginal_counts_as == PatternComponent.LOCAL.value:
        local_like.add(FailureClass.MARGINAL.value)
    f["pattern_component"] = np.where(f["failure_class"].isin(local_like), PatternComponent.LOCAL.value,
                                      PatternComponent.DE_NOVO.value)
    return f, notes


def _apply_geometry(f: pd.DataFrame, lesions: pd.DataFrame, settings: ClassificationSettings, source: str,
                    named: pd.Series, cls: pd.Series, basis: pd.Series, assigned: pd.Series,
                    gap_mm: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series,
                                                tuple[ClassificationNote, ...]]:
    """``cls``, ``basis``, ``assigned`` and ``gap_mm`` updated from the lesion spheres, and the notes.

    Vectorised; only the rows that get a note are looped over.
    """
    cls, basis, assigned, gap_mm = cls.copy(), basis.copy(), assigned.copy(), gap_mm.copy()
    eps = GEOMETRY_TOLERANCE_MM
    lm, mm = settings.local_margin_mm + eps, settings.marginal_margin_mm + eps
    idx = f.index
    pairs = _geometry_pairs(f, lesions)
    pairs["named"] = f["baseline_lesion_id"].reindex(pairs["frow"].to_numpy()).to_numpy()
    is_local = pairs["gap"] <= lm
    is_marg = ~is_local & (pairs["gap"] <= mm)
    nearest = pairs.drop_duplicates("frow").set_index("frow")
    first_local = pairs[is_local].drop_duplicates("frow").set_index("frow")
    first_marg = pairs[is_marg].drop_duplicates("frow").set_index("frow")
    n_local = is_local.groupby(pairs["frow"]).sum().reindex(idx, fill_value=0)
    n_marg = is_marg.groupby(pairs["frow"]).sum().reindex(idx, fill_value=0)
    own_gap = pairs[pairs["lesion_id"] == pairs["named"]].drop_duplicates("frow").set_index("frow")["gap"]

    f_has = _has_geometry(f)
    compared = pd.Series(idx.isin(nearest.index), index=idx)
    free = ~named & compared  # rows whose class geometry decides
    loc = free & (n_local > 0)
    marg = free & (n_local == 0) & (n_marg > 0)
    basis[~named & f_has] = AssignmentBasis.GEOMETRY.value
    cls[loc] = FailureClass.LOCAL.value
    cls[marg] = FailureClass.MARGINAL.value
    assigned[loc] = first_local["lesion_id"].reindex(idx[loc]).to_numpy()
    assigned[marg] = first_marg["lesion_id"].reindex(idx[marg]).to_numpy()
    gap_mm[loc] = first_local["gap"].reindex(idx[loc]).to_numpy()
    gap_mm[marg] = first_marg["gap"].reindex(idx[marg]).to_numpy()
    dn = free & ~loc & ~marg
    gap_mm[dn] = nearest["gap"].reindex(idx[dn]).to_numpy()
    gap_mm[named] = own_gap.reindex(idx[named]).to_numpy()

    notes: list[ClassificationNote] = []

    def note(kind: NoteKind, row: int, message: str) -> None:
        notes.append(ClassificationNote(kind, source, int(row), str(f.at[row, "patient_id"]),
                                        str(f.at[row, "failure_id"]), message))

    for row in idx[~named & ~f_has]:
        note(NoteKind.NO_COORDINATES, row, "geometry is on but this new lesion has no centre and diameter; "
             "it counts as de novo by its blank baseline_lesion_id")
    for row in idx[named & (gap_mm > lm)]:
        if row in first_local.index:
            says = f"local to {_candidates(first_local.loc[[row]])}"
        elif row in first_marg.index:
            says = f"marginal to {_candidates(first_marg.loc[[row]])}"
        else:
            says = f"de novo (nearest {_candidates(nearest.loc[[row]])})"
        note(NoteKind.CONFLICT, row, f"baseline_lesion_id names {f.at[row, 'baseline_lesion_id']!r} (gap "
             f"{gap_mm[row]:.1f} mm) but geometry says {says}; the id is used")
    amb_local = loc & (n_local > 1)
    amb_marg = marg & (n_marg > 1) & (settings.marginal_counts_as == PatternComponent.LOCAL.value)
    if amb_local.any() or amb_marg.any():
        cand = pairs[(is_local & pairs["frow"].isin(idx[amb_local]))
                     | (is_marg & pairs["frow"].isin(idx[amb_marg]))]
        for row, g in cand.groupby("frow", sort=True):
            what = "overlaps" if amb_local[row] else "is marginal to"
            note(NoteKind.AMBIGUOUS, cast(int, row),
                 f"{what} {len(g)} baseline lesions: {_candidates(g)}; assigned to "
                 f"{assigned[row]!r} (smallest gap)")
    unlocated = (~_has_geometry(lesions)).groupby(lesions["patient_id"]).sum()
    n_unlocated = f["patient_id"].map(unlocated).fillna(0).astype("int64")
    for row in idx[~named & f_has & (cls != FailureClass.LOCAL.value) & (n_unlocated > 0)]:
        if compared[row]:
            msg = (f"classed {cls[row]} by geometry, but {n_unlocated[row]} baseline lesion(s) of this "
                   "patient have no centre or diameter and were not compared")
        else:
            msg = "no baseline lesion of this patient has a centre and diameter; it counts as de novo"
        note(NoteKind.INCOMPLETE_GEOMETRY, row, msg)
    return cls, basis, assigned, gap_mm, tuple(sorted(notes, key=lambda n: (n.row or 0, n.kind.value)))


# ----------------------------------------------------------------------------------------------------------
# Lesions and patients


def _per_lesion(values: pd.Series, keys: pd.MultiIndex) -> np.ndarray:
    """Values indexed by (patient_id, lesion_id), looked up for each lesion key (NaN/None when absent)."""
    return values.reindex(keys).to_numpy()


def _joined_ids(rows: pd.DataFrame, keys: list[str]) -> pd.Series:
    """``failure_id`` of the rows joined with "; " per key, in row order (a Python join only for keys with
    several rows)."""
    rows = rows.sort_index()
    ids = rows["failure_id"].astype(str)
    grouped = ids.groupby([rows[k] for k in keys], sort=False)
    out = grouped.first()
    n = grouped.size()
    if (n > 1).any():
        many = pd.MultiIndex.from_frame(rows[keys]).isin(n.index[n > 1])
        out.update(ids[many].groupby([rows.loc[many, k] for k in keys], sort=False).agg("; ".join))
    return out


def _patient_columns(patients: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    """The patient dates for each row of a child table, aligned on it."""
    cols = ["index_date", "last_followup_date", "progression_date", "death_date"]
    out = patients.set_index("patient_id")[cols].reindex(ids.to_numpy())
    out.index = ids.index
    return out


def _time_to(index_date: pd.Series, event_date: pd.Series, patient: pd.DataFrame, unknown: np.ndarray
             ) -> tuple[pd.Series, pd.Series]:
    """(months, status) from the index date to ``event_date`` with death competing.

    Status 1 at ``event_date`` when there is one; otherwise 2 at death, or 0 at the last follow-up. Where
    ``unknown`` (progression with an unknown pattern), 0 at the progression date.
    """
    event = event_date.notna().to_numpy() & ~unknown
    dead = patient["death_date"].notna().to_numpy()
    when = end_of_followup(patient).where(~event, event_date).where(~unknown, patient["progression_date"])
    status = np.select([unknown, event, dead],
                       [LocalFailureStatus.CENSORED, LocalFailureStatus.FAILURE, LocalFailureStatus.DEATH],
                       LocalFailureStatus.CENSORED)
    return months(index_date, when), pd.Series(status, index=index_date.index, dtype="int64")


def lesion_outcomes(patients: pd.DataFrame, lesions: pd.DataFrame, failures: pd.DataFrame) -> pd.DataFrame:
    """Outcome of each baseline lesion at first progression and its time to local failure.

    Parameters
    ----------
    patients, lesions : pandas.DataFrame
        As :class:`pofa.Study` gives them. Not modified.
    failures : pandas.DataFrame
        Failure rows as returned by :func:`assign_failures`.

    Returns
    -------
    pandas.DataFrame
        A copy of ``lesions`` plus ``lesion_outcome``, ``local_failure`` (Int64: 1, 0, NA when unknown),
        ``marginal_failure`` (a marginal row in the window has this lesion as its nearest),
        ``failure_ids`` (in-window rows that failed the lesion, ``"; "``-joined), ``lf_months`` and
        ``lf_status``.

    Notes
    -----
    ``lf_months`` runs from the index date to the scan of the lesion's first local failure at any time
    (first progression or a later event): ``lf_status`` 1. Without one, to the death date (``lf_status`` 2,
    death without local failure of this lesion is a competing event) or to the last follow-up (0, censored).
    A lesion of a patient whose first progression was strictly de novo stays at risk. A lesion of a patient
    with an *unknown* pattern is censored (0) at the progression date: whether it failed then is not
    recorded.
    """
    les = lesions.copy()
    keys = pd.MultiIndex.from_frame(les[["patient_id", "lesion_id"]])
    fkey = ["patient_id", "assigned_lesion_id"]
    window = failures["timing"] == FailureTiming.FIRST_PROGRESSION.value
    is_local = failures["pattern_component"] == PatternComponent.LOCAL.value
    ids = _joined_ids(failures[window & is_local], fkey)
    first_local = failures[is_local].groupby(fkey, sort=False)["scan_date"].min()
    marginal_n = failures[window & (failures["failure_class"] == FailureClass.MARGINAL.value)].groupby(
        fkey, sort=False).size()

    patient = _patient_columns(patients, les["patient_id"])
    failed_ids = _per_lesion(ids, keys)
    failed = pd.notna(failed_ids)
    progressed = patient["progression_date"].notna().to_numpy()
    has_window = les["patient_id"].isin(failures.loc[window, "patient_id"]).to_numpy()
    outcome = np.select(
        [failed, ~progressed, ~has_window],
        [LesionOutcome.LOCAL_FAILURE.value, LesionOutcome.NO_PROGRESSION.value, LesionOutcome.UNKNOWN.value],
        LesionOutcome.CONTROLLED.value,
    )
    unknown = outcome == LesionOutcome.UNKNOWN.value
    les["lesion_outcome"] = outcome
    les["local_failure"] = pd.Series(failed.astype("int64"), index=les.index, dtype="Int64").mask(unknown)
    les["marginal_failure"] = pd.notna(_per_lesion(marginal_n, keys))
    les["failure_ids"] = pd.Series(failed_ids, index=les.index, dtype=object).where(failed, None)
    lf_date = pd.Series(_per_lesion(first_local, keys), index=les.index).astype("datetime64[ns]")
    les["lf_months"], les["lf_status"] = _time_to(patient["index_date"], lf_date, patient, unknown)
    return les


def patient_patterns(patients: pd.DataFrame, lesions: pd.DataFrame, failures: pd.DataFrame) -> pd.DataFrame:
    """Each patient's pattern at first progression, built from the lesion outcomes, and patient-level times.

    Parameters
    ----------
    patients : pandas.DataFrame
        As :class:`pofa.Study` gives it. Not modified.
    lesions : pandas.DataFrame
        As returned by :func:`lesion_outcomes`.
    failures : pandas.DataFrame
        As returned by :func:`assign_failures`.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``patients``: ``patient_id``, ``recurred``, ``pattern``, ``local_component``,
        ``maintained_control``, ``n_local_failure_lesions``, ``n_de_novo_failures`` and
        ``n_marginal_failures`` (rows in the window), ``fp_months``, ``fp_status``, ``fp_cause``,
        ``first_lf_months``, ``first_lf_status``, ``first_dn_months``, ``first_dn_status``.

    Raises
    ------
    StudyError
        When a patient's failure rows could not be classified (an unvalidated study).

    Notes
    -----
    The local component is "some baseline lesion has the outcome local failure"; maintained control is "some
    baseline lesion has the outcome controlled" (so a recurrent patient, with failure rows in the window).
    ``fp_*`` is the cause of first progression (:class:`FirstProgressionStatus`) at the progression date, or
    death without progression, or censoring at the last follow-up. ``first_lf_*`` / ``first_dn_*`` run to the
    first local / de novo failure scan at any time with death competing; for an unknown pattern both are
    censored at the progression date.
    """
    pid = patients["patient_id"]
    out = pd.DataFrame({"patient_id": pid}, index=patients.index)
    outcome = lesions["lesion_outcome"]
    n_local = (outcome == LesionOutcome.LOCAL_FAILURE.value).groupby(lesions["patient_id"]).sum()
    n_controlled = (outcome == LesionOutcome.CONTROLLED.value).groupby(lesions["patient_id"]).sum()
    window = failures[failures["timing"] == FailureTiming.FIRST_PROGRESSION.value]
    is_dn = window["pattern_component"] == PatternComponent.DE_NOVO.value
    n_dn = window[is_dn].groupby("patient_id").size()
    n_marg = window[window["failure_class"] == FailureClass.MARGINAL.value].groupby("patient_id").size()

    recurred = patients["progression_date"].notna()
    has_window = pid.isin(window["patient_id"])
    local = pid.map(n_local).fillna(0).astype("int64")
    de_novo = pid.map(n_dn).fillna(0).astype("int64")
    conditions = [~recurred, ~has_window, (local > 0) & (de_novo > 0), local > 0, de_novo > 0]
    choices = [p.value for p in (PatientPattern.NO_PROGRESSION, PatientPattern.UNKNOWN, PatientPattern.MIXED,
                                 PatientPattern.STRICTLY_LOCAL, PatientPattern.STRICTLY_DE_NOVO)]
    pattern = np.select([c.to_numpy() for c in conditions], choices, "")
    if (pattern == "").any():  # cannot happen: every in-window row is local (to a lesion) or de novo
        raise StudyError("a patient's failure rows could not be classified; run pofa validate and fix the "
                         "study")
    out["recurred"] = recurred
    out["pattern"] = pattern
    out["local_component"] = local > 0
    out["maintained_control"] = pid.map(n_controlled).fillna(0).to_numpy() > 0
    out["n_local_failure_lesions"] = local
    out["n_de_novo_failures"] = de_novo
    out["n_marginal_failures"] = pid.map(n_marg).fillna(0).astype("int64")

    unknown = pattern == PatientPattern.UNKNOWN.value
    status = np.select(
        [np.isin(pattern, [PatientPattern.STRICTLY_LOCAL.value, PatientPattern.MIXED.value]),
         pattern == PatientPattern.STRICTLY_DE_NOVO.value, unknown,
         patients["death_date"].notna().to_numpy()],
        [FirstProgressionStatus.LOCAL_COMPONENT, FirstProgressionStatus.STRICTLY_DE_NOVO,
         FirstProgressionStatus.UNKNOWN_PATTERN, FirstProgressionStatus.DEATH_WITHOUT_PROGRESSION],
        FirstProgressionStatus.CENSORED,
    )
    index_date = patients["index_date"]
    fp_date = patients["progression_date"].where(recurred, end_of_followup(patients))
    out["fp_months"] = months(index_date, fp_date)
    out["fp_status"] = status.astype("int64")
    out["fp_cause"] = [FP_CAUSE_LABELS[FirstProgressionStatus(s)] for s in status]

    is_local = failures["pattern_component"] == PatternComponent.LOCAL.value
    first_lf = _align(failures[is_local].groupby("patient_id")["scan_date"].min(), pid)
    first_dn = _align(failures[~is_local].groupby("patient_id")["scan_date"].min(), pid)
    out["first_lf_months"], out["first_lf_status"] = _time_to(index_date, first_lf, patients, unknown)
    out["first_dn_months"], out["first_dn_status"] = _time_to(index_date, first_dn, patients, unknown)
    return out


def classify_tables(
    patients: pd.DataFrame,
    lesions: pd.DataFrame,
    failures: pd.DataFrame,
    settings: ClassificationSettings | None = None,
    *,
    sources: Mapping[str, str] | None = None,
) -> Classification:
    """Classify a study given as tables (the typed tables of :class:`pofa.Study`, of a valid study).

    Parameters
    ----------
    patients, lesions, failures : pandas.DataFrame
        Typed tables, indexed by spreadsheet row. They are not modified.
    settings : ClassificationSettings, optional
        Defaults to ``ClassificationSettings()`` (30-day window, geometry off).
    sources : mapping, optional
        File name of each table (keys ``"patients"``, ``"failures"``) for the notes.

    Returns
    -------
    Classification
        Lesion outcomes, failure classes, patient patterns and the notes.

    Raises
    ------
    StudyError
        When a table has a column named like one pofa computes.
    """
    settings = settings if settings is not None else ClassificationSettings()
    check_settings(settings)
    sources = dict(sources or {})
    for table, frame, computed in (("lesions", lesions, LESION_COLUMNS),
                                   ("failures", failures, FAILURE_COLUMNS)):
        clash = [c for c in computed if c in frame.columns]
        if clash:
            raise StudyError(f"the {table} table has column(s) {', '.join(map(repr, clash))} that pofa "
                             "computes; rename them in the study (e.g. add '_recorded') and analyse again")
    f, notes = assign_failures(patients, lesions, failures, settings,
                               source=sources.get("failures", "failures"))
    les = lesion_outcomes(patients, lesions, f)
    pat = patient_patterns(patients, les, f)
    src = sources.get("patients", "patients")
    unknown_notes = tuple(
        ClassificationNote(NoteKind.NO_FAILURES_IN_WINDOW, src, int(cast(int, row)), str(pid), None,
                           "progression is recorded but no failure row lies within "
                           f"{settings.window_days} days of it: the pattern is unknown (counted apart, not "
                           "as de novo)")
        for row, pid in pat.loc[pat["pattern"] == PatientPattern.UNKNOWN.value, "patient_id"].items()
    )
    return Classification(settings, (*notes, *unknown_notes), describe(settings), les, f, pat)


def classify(study: Study, settings: ClassificationSettings | None = None) -> Classification:
    """Classify a :class:`pofa.Study` (with ``study.settings.classification`` unless ``settings`` is given).

    Parameters
    ----------
    study : Study
        A study without validation errors.
    settings : ClassificationSettings or None, optional
        Classification settings (default: ``study.settings.classification``).

    Returns
    -------
    Classification
        Lesion outcomes, failure classes, patient patterns and the notes.

    Raises
    ------
    StudyError
        When the study has validation errors (run ``pofa validate`` to see them).
    """
    report = study.validate()
    if not report.ok:
        raise StudyError(f"the study {study.path} has {len(report.errors)} validation error(s); run "
                         f"'pofa validate {study.path}' to see them, fix them, then analyse again")
    return classify_tables(
        study.patients, study.lesions, study.failures,
        settings if settings is not None else study.settings.classification,
        sources={"patients": study.source(TableName.PATIENTS), "failures": study.source(TableName.FAILURES)},
    )
