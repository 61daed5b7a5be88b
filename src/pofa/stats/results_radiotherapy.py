"""Typed results of the bridging-radiotherapy analysis (results.json ``radiotherapy``; docs/radiotherapy.md).

Computed by :func:`pofa.stats.radiotherapy.radiotherapy_statistics`; re-exported by :mod:`pofa.stats.results`,
from which the report reads them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["DoseCurve", "DoseLevel", "OddsRatio", "PfsByRt", "Proportion", "RadiotherapyResults"]


@dataclass(frozen=True, slots=True)
class OddsRatio:
    """One odds ratio of local failure.

    Attributes
    ----------
    term : str
        ``bridging_rt`` or ``eqd2_gy`` (per Gy).
    method : str
        ``logistic`` (R glm) or ``gee`` (R geeglm, exchangeable).
    adjusted_for : tuple of str
        The other terms of the model (empty: unadjusted).
    estimate, ci_low, ci_high, p : float
        Odds ratio, Wald 95% CI and Wald p (NaN when not estimable).
    n_lesions, n_patients : int
        Lesions and patients in the model.
    notes : tuple of str
        Why something is missing, or a caveat.
    """

    term: str
    method: str
    adjusted_for: tuple[str, ...]
    estimate: float
    ci_low: float
    ci_high: float
    p: float
    n_lesions: int
    n_patients: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Proportion:
    """A proportion with its exact (Clopper-Pearson) 95% CI, as R ``binom.test``.

    Attributes
    ----------
    events, n : int
        Count and denominator.
    estimate, ci_low, ci_high : float
        ``events / n`` and the exact limits (NaN when ``n`` is 0).
    definition : str
        What was counted.
    """

    events: int
    n: int
    estimate: float
    ci_low: float
    ci_high: float
    definition: str


@dataclass(frozen=True, slots=True)
class PfsByRt:
    """PFS of patients with and without bridging RT.

    Attributes
    ----------
    n_rt, n_no_rt, events_rt, events_no_rt : int
        Patients and progressions (or deaths) per group.
    median_rt_months, median_no_rt_months : float
        Kaplan-Meier medians (NaN when not reached).
    logrank_chisq, logrank_p : float
        Log-rank test (1 df).
    hr, hr_ci_low, hr_ci_high, hr_p : float
        Cox hazard ratio of bridging RT (Efron ties), Wald CI and p.
    notes : tuple of str
        Why something is missing.
    """

    n_rt: int
    n_no_rt: int
    events_rt: int
    events_no_rt: int
    median_rt_months: float
    median_no_rt_months: float
    logrank_chisq: float
    logrank_p: float
    hr: float
    hr_ci_low: float
    hr_ci_high: float
    hr_p: float
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DoseLevel:
    """Local failure of the irradiated lesions treated to one EQD2 (a point of the dose-response figure).

    Attributes
    ----------
    eqd2_gy : float
        The EQD2 (rounded to 1e-6 Gy to group equal courses).
    rate : Proportion
        Local failures among those lesions, with the exact Clopper-Pearson 95% CI (R ``binom.test``).
    """

    eqd2_gy: float
    rate: Proportion


@dataclass(frozen=True, slots=True)
class DoseCurve:
    """The fitted logistic dose-response curve, ``1 / (1 + exp(-(b0 + b1 * EQD2)))`` (R ``glm``).

    Attributes
    ----------
    eqd2_gy : tuple of float
        EQD2 values from the lowest to the highest recorded dose.
    probability : tuple of float
        The fitted probability of local failure at each.
    """

    eqd2_gy: tuple[float, ...]
    probability: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class RadiotherapyResults:
    """Everything the radiotherapy analysis computed (results.json key ``radiotherapy``).

    Attributes
    ----------
    alpha_beta_gy : float
        alpha/beta used for EQD2.
    n_lesions, n_irradiated : int
        Lesions with a known outcome, and those irradiated.
    local_failures_rt, local_failures_no_rt, n_no_rt : int
        Local failures among irradiated and unirradiated lesions, and the unirradiated count.
    odds_ratios : tuple of OddsRatio
        Local failure by bridging RT: logistic and GEE, unadjusted and adjusted.
    in_field : Proportion or None
        In-field failures among irradiated lesions.
    field_classes : tuple of tuple of (str, int)
        Failure rows by ``rt_field`` class (empty without the column).
    eqd2_median_gy, eqd2_min_gy, eqd2_max_gy : float
        EQD2 of irradiated lesions with a recorded course (NaN when none).
    dose_response : tuple of OddsRatio
        Odds ratio of local failure per Gy of EQD2 among irradiated lesions.
    pfs : PfsByRt or None
        PFS by bridging RT (None when one group is empty).
    notes : tuple of str
        Caveats.
    dose_levels : tuple of DoseLevel
        Observed local-failure rate at each recorded EQD2 (the points of the dose-response figure).
    dose_curve : DoseCurve or None
        The fitted logistic curve (None when the fit is not estimable).
    """

    alpha_beta_gy: float
    n_lesions: int
    n_irradiated: int
    local_failures_rt: int
    local_failures_no_rt: int
    n_no_rt: int
    odds_ratios: tuple[OddsRatio, ...]
    in_field: Proportion | None
    field_classes: tuple[tuple[str, int], ...]
    eqd2_median_gy: float
    eqd2_min_gy: float
    eqd2_max_gy: float
    dose_response: tuple[OddsRatio, ...]
    pfs: PfsByRt | None
    notes: tuple[str, ...] = ()
    dose_levels: tuple[DoseLevel, ...] = ()
    dose_curve: DoseCurve | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the results as plain JSON (non-finite numbers become null when results.json is written).

        Returns
        -------
        dict of str to Any
            Every field by name.
        """
        out = asdict(self)
        out["field_classes"] = dict(self.field_classes)
        return out

    def json_entries(self) -> dict[str, Any]:
        """Return the results.json entries of this step.

        Returns
        -------
        dict of str to Any
            ``{"radiotherapy": self.to_json()}``.
        """
        return {"radiotherapy": self.to_json()}
