"""Typed results of the competing-risks and cut-point steps (re-exported by :mod:`pofa.stats.results`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pofa.stats.results_base import Landmark, StepCurve, _n


@dataclass(frozen=True, slots=True)
class GrayResult:
    """Gray's test between groups for one cause (R ``cmprsk::cuminc``).

    Attributes
    ----------
    statistic, p : float
        Statistic and p.
    df : int
        Degrees of freedom.
    by : str or None
        The grouping term.
    reason : str
        Why it is not estimable.
    """

    statistic: float
    df: int
    p: float
    by: str | None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the results.json ``gray`` object (non-finite numbers as ``None``).

        Returns
        -------
        dict of {str: object}
            The ``gray`` entry as results.json holds it.
        """
        out: dict[str, Any] = {"statistic": _n(self.statistic), "df": self.df, "p": _n(self.p), "by": self.by}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class IncidenceCurve:
    """The cumulative incidence of one cause in one group, with landmarks and the curve's step points.

    Attributes
    ----------
    group : str or None
        The group (``None``: everybody).
    n, events : int
        Subjects and events of the cause.
    ci_method : str
        Pointwise CI transform.
    landmarks : tuple of Landmark
        Incidence at the landmark times.
    curve : StepCurve
        The step function and its band.
    """

    group: str | None
    n: int
    events: int
    ci_method: str
    landmarks: tuple[Landmark, ...]
    curve: StepCurve

    def to_json(self) -> dict[str, Any]:
        """Return the results.json ``curves`` entry (group, counts, CI method and landmarks).

        Returns
        -------
        dict of {str: object}
            The ``curves`` entry as results.json holds it.
        """
        return {"group": self.group, "n": self.n, "events": self.events, "ci_method": self.ci_method,
                "landmarks": [lm.to_json("incidence") for lm in self.landmarks]}


@dataclass(frozen=True, slots=True)
class IncidenceCause:
    """One cause of a competing-risks fit: its curves (overall or per group) and Gray's test.

    Attributes
    ----------
    cause : str
        The cause in words.
    code : int
        Its status code.
    curves : tuple of IncidenceCurve
        Per group (one curve overall).
    gray : GrayResult or None
        Gray's test between the groups.
    """

    cause: str
    code: int
    curves: tuple[IncidenceCurve, ...]
    gray: GrayResult | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the results.json ``causes`` entry (cause, code, curves and Gray's test when run).

        Returns
        -------
        dict of {str: object}
            The ``causes`` entry as results.json holds it.
        """
        out: dict[str, Any] = {"cause": self.cause, "code": self.code,
                               "curves": [c.to_json() for c in self.curves]}
        if self.gray is not None:
            out["gray"] = self.gray.to_json()
        return out


@dataclass(frozen=True, slots=True)
class IncidenceBlock:
    """One cumulative-incidence fit (R ``cmprsk::cuminc``), or the reason it is not estimable.

    Attributes
    ----------
    n : int
        Subjects.
    method : str
        The estimator in words.
    causes : tuple of IncidenceCause
        The causes (empty when not estimable).
    reason : str
        Why it is not estimable.
    term : str or None
        The grouping term (lesion factors' blocks).
    """

    n: int
    method: str
    causes: tuple[IncidenceCause, ...]
    reason: str = ""
    term: str | None = None

    def cause(self, code: int) -> IncidenceCause | None:
        """Return the cause with status ``code``, if estimated.

        Parameters
        ----------
        code : int
            The status code of the cause (as coded in the fit).

        Returns
        -------
        IncidenceCause or None
            The cause, ``None`` when it was not estimated.
        """
        return next((c for c in self.causes if c.code == code), None)

    def to_json(self) -> dict[str, Any]:
        """Return the results.json block of this fit.

        Returns
        -------
        dict of str to Any
            Term (for a by-factor fit), n, method and causes (and the reason when not estimable).
        """
        out: dict[str, Any] = {} if self.term is None else {"term": self.term}
        out.update({"n": self.n, "method": self.method, "causes": [c.to_json() for c in self.causes]})
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class CompetingRisksResults:
    """Cumulative incidence of first failure by type (patients) and of local failure (lesions).

    Attributes
    ----------
    patients_overall : IncidenceBlock
        Patients, everybody.
    patients_by_group : IncidenceBlock or None
        Patients by the first yes/no patient term.
    lesions_overall : IncidenceBlock
        Lesions, everybody.
    lesions_note : str
        The caveat of the lesion-level analysis.
    lesions_by_factor : tuple of IncidenceBlock
        Lesions by each yes/no or thresholded lesion factor.
    lesions_later_local_failures : int
        Lesions whose local failure came only after first progression (a local-failure event here, but not
        a local failure at first progression in the patterns and the lesion models).
    """

    patients_overall: IncidenceBlock
    patients_by_group: IncidenceBlock | None
    lesions_overall: IncidenceBlock
    lesions_note: str
    lesions_by_factor: tuple[IncidenceBlock, ...]
    lesions_later_local_failures: int = 0

    def json_entries(self) -> dict[str, Any]:
        """Return the results.json entries of the competing-risks step.

        Returns
        -------
        dict of str to Any
            ``{"competing_risks": {"patients": {...}, "lesions": {...}}}``.
        """
        patients: dict[str, Any] = {"overall": self.patients_overall.to_json()}
        if self.patients_by_group is not None:
            patients["by_group"] = self.patients_by_group.to_json()
        return {"competing_risks": {
            "patients": patients,
            "lesions": {"overall": self.lesions_overall.to_json(), "note": self.lesions_note,
                        "by_factor": [b.to_json() for b in self.lesions_by_factor]}}}


@dataclass(frozen=True, slots=True)
class Cutpoint:
    """An exploratory cut-point (R ``maxstat::maxstat.test``) with corrected p-values.

    Attributes
    ----------
    feature, endpoint : str
        The patient feature and the endpoint.
    note : str
        The exploratory caveat.
    cutpoint, statistic, p_lau92, p_lau94 : float
        Estimates (``nan`` when not estimable).
    n : int
        Patients.
    n_low, n_high : int or None
        Patients at or below / above the cut-point.
    method : str
        The method (empty when not estimable).
    reason : str
        Why it is not estimable.
    """

    feature: str
    endpoint: str
    note: str
    cutpoint: float
    statistic: float
    p_lau92: float
    p_lau94: float
    n: int
    n_low: int | None
    n_high: int | None
    method: str = ""
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the results.json ``cutpoints`` entry (non-finite numbers as ``None``).

        Returns
        -------
        dict of {str: object}
            The ``cutpoints`` entry as results.json holds it.
        """
        out: dict[str, Any] = {"feature": self.feature, "endpoint": self.endpoint, "note": self.note,
                               "cutpoint": _n(self.cutpoint), "statistic": _n(self.statistic),
                               "p_lau92": _n(self.p_lau92), "p_lau94": _n(self.p_lau94), "n": self.n,
                               "n_low": self.n_low, "n_high": self.n_high}
        if self.method:
            out["method"] = self.method
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class Cutpoints:
    """The exploratory cut-points (results.json ``cutpoints``).

    Attributes
    ----------
    rows : tuple of Cutpoint
    """

    rows: tuple[Cutpoint, ...]

    def json_entries(self) -> dict[str, Any]:
        """Return the results.json entries of the cut-point step.

        Returns
        -------
        dict of str to Any
            ``{"cutpoints": [...]}``.
        """
        return {"cutpoints": [r.to_json() for r in self.rows]}
