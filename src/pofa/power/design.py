"""The planned study of a power analysis: frozen, validated descriptions of what is simulated and tested.

A :class:`PlannedStudy` is a number of patients, an analysis plan (two-sided Wald test at level ``alpha``) and
one outcome model:

* :class:`LesionOutcome`: a binary lesion outcome (e.g. local failure) and a binary lesion factor (e.g.
  diameter >= 5 cm), lesions clustered within patients by a random intercept; tested by GEE (logit link,
  exchangeable working correlation, robust sandwich SE, as ``geepack::geeglm``), the model pofa reports.
* :class:`SurvivalOutcome`: a patient-level time to event (PFS, OS) and a binary patient factor; tested by
  Cox regression (Efron ties, Wald test, as ``survival::coxph``).
* :class:`SimulatorOutcome`: whole cohorts from the calibrated simulator (:mod:`pofa.simulate`, e.g. preset
  ``figura2021``), tested as the paper did: three univariable lesion GEEs and the Cox model of PFS by bulk.

Defaults of :class:`LesionOutcome` come from the ``figura2021`` simulator preset (lesions per patient, the
random-intercept SD, the within-patient correlation of "diameter >= 5 cm", its share of lesions and the
failure risk of the other lesions); see docs/power.md.

This module imports only the standard library (and pofa's parameter module, which does too).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

from pofa.errors import SettingsError
from pofa.simulate.params import FIGURA2021, SimulationParams

__all__ = [
    "EffectScale",
    "LesionDistribution",
    "LesionOutcome",
    "Outcome",
    "PlannedStudy",
    "SimulatorOutcome",
    "SurvivalOutcome",
    "icc_from_sd",
    "sd_from_icc",
]

#: Variance of the standard logistic distribution, pi^2 / 3: the level-1 variance of the latent-scale ICC.
LOGISTIC_VARIANCE = math.pi**2 / 3.0


def icc_from_sd(sd: float) -> float:
    """Latent-scale intra-patient correlation of a random-intercept logistic model.

    (Snijders & Bosker's latent-variable ICC; ``sd`` is the SD of the patient random intercept on the logit
    scale.)

    Parameters
    ----------
    sd : float
        SD of the patient random intercept on the logit scale (>= 0).

    Returns
    -------
    float
        ``sd^2 / (sd^2 + pi^2/3)`` (Snijders & Bosker's latent-variable ICC).
    """
    return sd * sd / (sd * sd + LOGISTIC_VARIANCE)


def sd_from_icc(icc: float) -> float:
    """Random-intercept SD (logit scale) giving the latent-scale ICC ``icc``.

    Parameters
    ----------
    icc : float
        Latent-scale intra-patient correlation, in [0, 1).

    Returns
    -------
    float
        The SD, the inverse of :func:`icc_from_sd`.

    Raises
    ------
    SettingsError
        When the ICC is not in [0, 1).
    """
    if not (0.0 <= icc < 1.0):
        raise SettingsError(f"the intra-patient correlation (ICC) = {icc!r} must be in [0, 1)")
    return math.sqrt(icc * LOGISTIC_VARIANCE / (1.0 - icc))


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise SettingsError(message)


def _number(name: str, value: Any) -> float:
    _check(isinstance(value, (int, float)) and not isinstance(value, bool),
           f"{name} = {value!r} must be a number")
    return float(value)


class LesionDistribution(StrEnum):
    """How many lesions a patient has (``mean`` = ``LesionOutcome.lesions_mean``)."""

    FIXED = "fixed"  #: every patient has exactly ``mean`` lesions (a whole number)
    POISSON = "poisson"  #: 1 + Poisson(mean - 1)
    NEGBIN = "negbin"  #: 1 + negative binomial(mean - 1, size ``lesions_dispersion``), as the simulator


class EffectScale(StrEnum):
    """What the odds ratio of a :class:`LesionOutcome` means."""

    #: Population-averaged (marginal) OR: lesions with vs without the factor across patients. This is what
    #: GEE and plain logistic regression estimate, and what papers report.
    MARGINAL = "marginal"
    #: Patient-specific (conditional) OR of the random-intercept model, as a mixed model (``lme4::glmer``)
    #: reports it; its marginal OR is smaller (attenuated towards 1).
    CONDITIONAL = "conditional"


_F = FIGURA2021
#: Defaults taken from the figura2021 preset of the simulator (docs/simulation.md).
_LESIONS_MEAN = 1.0 + _F.cohort.lesions_extra_mean
_FACTOR_ICC = _F.lesions.diameter_patient_log_sd**2 / (
    _F.lesions.diameter_patient_log_sd**2 + _F.lesions.diameter_log_sd**2)
#: P(local failure | lesion < 5 cm) over all lesions of the figura2021 preset (0.2446 in 200,000 simulated
#: patients, seed 7), and the share of lesions >= 5 cm there (0.2308).
_BASELINE_RISK = 0.245
_PREVALENCE = 0.23


@dataclass(frozen=True, slots=True)
class LesionOutcome:
    """A binary lesion outcome with a binary lesion factor, lesions clustered within patients.

    Generative model (docs/power.md): patient *i* has ``m_i`` lesions (``lesions_distribution``); lesion *j*
    has the factor ``x_ij = 1[sqrt(r) a_i + sqrt(1 - r) e_ij > Phi^-1(1 - prevalence)]`` with ``a_i``,
    ``e_ij`` standard normal and ``r = factor_icc`` (so ``P(x = 1) = prevalence`` and the factor's latent
    within-patient correlation is ``r``); the outcome is Bernoulli with
    ``logit P(y_ij = 1 | z_i) = b0 + b1 x_ij + patient_sd z_i``, ``z_i ~ N(0, 1)``.
    ``b0`` is chosen so that the population-averaged risk of lesions without the factor is
    ``baseline_risk``; ``b1`` so that the odds ratio on ``effect_scale`` is ``odds_ratio``.

    Attributes
    ----------
    odds_ratio : float
        Target odds ratio of the factor (> 0; 1 = no effect, for type I error).
    baseline_risk : float
        Population-averaged risk of the outcome in lesions without the factor, in (0, 1).
    prevalence : float
        Share of lesions with the factor, in (0, 1).
    lesions_mean : float
        Mean lesions per patient (>= 1).
    lesions_distribution : LesionDistribution
        ``fixed``, ``poisson`` or ``negbin`` (1 + negative binomial, as the simulator).
    lesions_dispersion : float
        Size parameter of the negative binomial (variance of the extra lesions ``m + m^2/size``).
    patient_sd : float
        SD of the patient random intercept on the logit scale (>= 0); 0 = lesions independent. The latent ICC
        is ``patient_sd^2 / (patient_sd^2 + pi^2/3)`` (:attr:`icc`).
    factor_icc : float
        Latent within-patient correlation of the factor, in [0, 1): 0 = lesions of a patient get the factor
        independently, near 1 = the factor is a patient trait.
    effect_scale : EffectScale
        Whether ``odds_ratio`` is marginal (population-averaged, default) or conditional.
    small_sample : bool
        Test with the Mancl-DeRouen bias-reduced sandwich SE instead of the plain sandwich.
    """

    odds_ratio: float
    baseline_risk: float = _BASELINE_RISK
    prevalence: float = _PREVALENCE
    lesions_mean: float = _LESIONS_MEAN
    lesions_distribution: LesionDistribution = LesionDistribution.NEGBIN
    lesions_dispersion: float = _F.cohort.lesions_dispersion
    patient_sd: float = _F.failure.patient_sd
    factor_icc: float = _FACTOR_ICC
    effect_scale: EffectScale = EffectScale.MARGINAL
    small_sample: bool = False

    def __post_init__(self) -> None:
        orr = _number("odds_ratio", self.odds_ratio)
        _check(math.isfinite(orr) and orr > 0, f"the odds ratio = {self.odds_ratio!r} must be > 0 and finite")
        risk = _number("baseline_risk", self.baseline_risk)
        _check(0.0 < risk < 1.0,
               f"the baseline risk = {self.baseline_risk!r} must be strictly between 0 and 1")
        prev = _number("prevalence", self.prevalence)
        _check(0.0 < prev < 1.0, f"the factor prevalence = {self.prevalence!r} must be strictly between 0 "
                                 "and 1")
        mean = _number("lesions_mean", self.lesions_mean)
        _check(math.isfinite(mean) and 1.0 <= mean <= 1000.0,
               f"lesions per patient (mean) = {self.lesions_mean!r} must be between 1 and 1000")
        try:
            dist = LesionDistribution(self.lesions_distribution)
        except ValueError:
            raise SettingsError(f"lesions distribution {self.lesions_distribution!r} is unknown; use one of "
                                f"{', '.join(d.value for d in LesionDistribution)}") from None
        _check(dist is not LesionDistribution.FIXED or mean == int(mean),
               f"with a fixed number of lesions per patient the mean must be a whole number, got {mean!r}")
        disp = _number("lesions_dispersion", self.lesions_dispersion)
        _check(math.isfinite(disp) and disp > 0,
               f"lesions dispersion = {self.lesions_dispersion!r} must be > 0")
        sd = _number("patient_sd", self.patient_sd)
        _check(math.isfinite(sd) and 0.0 <= sd <= 10.0,
               f"the patient random-intercept SD = {self.patient_sd!r} must be between 0 and 10")
        ficc = _number("factor_icc", self.factor_icc)
        _check(0.0 <= ficc < 1.0, f"the factor's intra-patient correlation = {self.factor_icc!r} must be in "
                                  "[0, 1)")
        try:
            scale = EffectScale(self.effect_scale)
        except ValueError:
            raise SettingsError(f"effect scale {self.effect_scale!r} is unknown; use 'marginal' or "
                                "'conditional'") from None
        for name, value in (("odds_ratio", orr), ("baseline_risk", risk), ("prevalence", prev),
                            ("lesions_mean", mean), ("lesions_dispersion", disp), ("patient_sd", sd),
                            ("factor_icc", ficc), ("lesions_distribution", dist), ("effect_scale", scale),
                            ("small_sample", bool(self.small_sample))):
            object.__setattr__(self, name, value)

    @property
    def icc(self) -> float:
        """Latent-scale intra-patient correlation of the outcome, ``sd^2 / (sd^2 + pi^2/3)``.

        Returns
        -------
        float
            ``sd^2 / (sd^2 + pi^2/3)`` of ``patient_sd``.
        """
        return icc_from_sd(self.patient_sd)

    @property
    def kind(self) -> str:
        """Kind of outcome: ``"lesion"``.

        Returns
        -------
        str
            ``"lesion"``.
        """
        return "lesion"

    def describe(self) -> str:
        """One line for tables and logs.

        Returns
        -------
        str
            The design in words, with its parameters.
        """
        return (f"lesion factor OR {self.odds_ratio:g} ({self.effect_scale.value}), baseline risk "
                f"{self.baseline_risk:g}, prevalence {self.prevalence:g}, {self.lesions_mean:g} "
                f"lesions/patient ({self.lesions_distribution.value}), random-intercept SD "
                f"{self.patient_sd:.3g} (ICC {self.icc:.3g}), factor ICC {self.factor_icc:.3g}")


@dataclass(frozen=True, slots=True)
class SurvivalOutcome:
    """A patient-level time to event (PFS, OS) and a binary patient factor, with accrual and censoring.

    Event times are Weibull with proportional hazards, ``S(t | x) = exp(-(t / scale)^shape * HR^x)``, the
    scale set by the median of patients without the factor. Patients enter uniformly over ``accrual_months``
    and are followed until ``followup_months`` after the end of accrual (administrative censoring) or until
    lost to follow-up (exponential, ``dropout_per_year``).

    Attributes
    ----------
    hazard_ratio : float
        Target hazard ratio of the factor (> 0).
    prevalence : float
        Share of patients with the factor, in (0, 1).
    median_months : float
        Median time to event without the factor (> 0).
    weibull_shape : float
        Weibull shape (1 = exponential; < 1 = hazard falling with time).
    accrual_months : float
        Length of accrual (>= 0).
    followup_months : float
        Follow-up after the end of accrual (> 0; ``inf`` = no administrative censoring).
    dropout_per_year : float
        Rate of loss to follow-up per year (>= 0).
    """

    hazard_ratio: float
    prevalence: float = 46 / 69
    median_months: float = 12.0
    weibull_shape: float = 1.0
    accrual_months: float = 24.0
    followup_months: float = 12.0
    dropout_per_year: float = 0.0

    def __post_init__(self) -> None:
        hr = _number("hazard_ratio", self.hazard_ratio)
        _check(math.isfinite(hr) and hr > 0,
               f"the hazard ratio = {self.hazard_ratio!r} must be > 0 and finite")
        prev = _number("prevalence", self.prevalence)
        _check(0.0 < prev < 1.0, f"the factor prevalence = {self.prevalence!r} must be strictly between 0 "
                                 "and 1")
        med = _number("median_months", self.median_months)
        _check(math.isfinite(med) and med > 0, f"the median time to event = {self.median_months!r} months "
                                               "must be > 0")
        shape = _number("weibull_shape", self.weibull_shape)
        _check(math.isfinite(shape) and 0.05 <= shape <= 20, f"the Weibull shape = {self.weibull_shape!r} "
                                                              "must be between 0.05 and 20")
        acc = _number("accrual_months", self.accrual_months)
        _check(math.isfinite(acc) and acc >= 0, f"accrual = {self.accrual_months!r} months must be >= 0")
        fu = _number("followup_months", self.followup_months)
        _check(fu > 0 and not math.isnan(fu), f"follow-up after accrual = {self.followup_months!r} months "
                                              "must be > 0 (inf for no administrative censoring)")
        drop = _number("dropout_per_year", self.dropout_per_year)
        _check(math.isfinite(drop) and drop >= 0, f"the dropout rate = {self.dropout_per_year!r} per year "
                                                  "must be >= 0")
        for name, value in (("hazard_ratio", hr), ("prevalence", prev), ("median_months", med),
                            ("weibull_shape", shape), ("accrual_months", acc), ("followup_months", fu),
                            ("dropout_per_year", drop)):
            object.__setattr__(self, name, value)

    @property
    def kind(self) -> str:
        """Kind of outcome: ``"survival"``.

        Returns
        -------
        str
            ``"survival"``.
        """
        return "survival"

    def describe(self) -> str:
        """One line for tables and logs.

        Returns
        -------
        str
            The design in words, with its parameters.
        """
        fu = "no administrative censoring" if math.isinf(self.followup_months) else (
            f"accrual {self.accrual_months:g} + follow-up {self.followup_months:g} months")
        return (f"patient factor HR {self.hazard_ratio:g}, prevalence {self.prevalence:.3g}, median "
                f"{self.median_months:g} months without it (Weibull shape {self.weibull_shape:g}), {fu}, "
                f"dropout {self.dropout_per_year:g}/year")


@dataclass(frozen=True, slots=True)
class SimulatorOutcome:
    """Whole cohorts from the calibrated simulator (:func:`pofa.simulate.generator.draw_latent`).

    Each replicate is tested as Figura et al. 2021: univariable GEEs of lesion local failure (all lesions;
    lesions of patients without progression did not fail) on diameter >= ``failure.bulky_cm``, SUVmax >=
    ``failure.suv_cut`` and extranodal, and the Cox model of PFS on "any lesion >= ``failure.bulky_cm``".

    Attributes
    ----------
    params : SimulationParams
        Simulator parameters (``cohort.n_patients`` is replaced by the study's number of patients).
    preset : str
        Name of the preset they started from (for the record).
    small_sample : bool
        Test the GEEs with the Mancl-DeRouen SE.
    include_pfs : bool
        Also fit the Cox model of PFS (False: the three lesion GEEs only).
    """

    params: SimulationParams = field(default_factory=lambda: FIGURA2021)
    preset: str = "figura2021"
    small_sample: bool = False
    include_pfs: bool = True

    def __post_init__(self) -> None:
        _check(isinstance(self.params, SimulationParams), "params must be SimulationParams "
                                                          "(pofa.simulate.load_params)")
        object.__setattr__(self, "small_sample", bool(self.small_sample))
        object.__setattr__(self, "include_pfs", bool(self.include_pfs))

    @property
    def kind(self) -> str:
        """Kind of outcome: ``"simulator"``.

        Returns
        -------
        str
            ``"simulator"``.
        """
        return "simulator"

    def describe(self) -> str:
        """One line for tables and logs.

        Returns
        -------
        str
            The preset and the tests, in words.
        """
        changed = self.params.differences(FIGURA2021)
        changed.pop("cohort.n_patients", None)
        extra = "" if not changed else f" with {len(changed)} changed parameter(s)"
        return f"simulator preset {self.preset or 'custom'}{extra}"


Outcome = LesionOutcome | SurvivalOutcome | SimulatorOutcome


@dataclass(frozen=True, slots=True)
class PlannedStudy:
    """A planned study: number of patients, outcome model and the level of the two-sided Wald test.

    Attributes
    ----------
    n_patients : int
        Patients (clusters of lesions; >= 2).
    outcome : LesionOutcome, SurvivalOutcome or SimulatorOutcome
        What is simulated and tested.
    alpha : float
        Two-sided significance level, in (0, 1).
    """

    n_patients: int
    outcome: Outcome
    alpha: float = 0.05

    def __post_init__(self) -> None:
        _check(isinstance(self.n_patients, int) and not isinstance(self.n_patients, bool)
               and 2 <= self.n_patients <= 1_000_000,
               f"the number of patients = {self.n_patients!r} must be a whole number between 2 and 1,000,000")
        _check(isinstance(self.outcome, (LesionOutcome, SurvivalOutcome, SimulatorOutcome)),
               "outcome must be a LesionOutcome, SurvivalOutcome or SimulatorOutcome")
        a = _number("alpha", self.alpha)
        _check(0.0 < a < 1.0, f"alpha = {self.alpha!r} must be strictly between 0 and 1")
        object.__setattr__(self, "alpha", a)

    @property
    def kind(self) -> str:
        """Kind of the outcome.

        Returns
        -------
        str
            ``"lesion"``, ``"survival"`` or ``"simulator"``.
        """
        return self.outcome.kind

    def with_patients(self, n_patients: int) -> PlannedStudy:
        """The same study with another number of patients.

        Parameters
        ----------
        n_patients : int
            The new number of patients (>= 2).

        Returns
        -------
        PlannedStudy
            A copy of this study with ``n_patients`` patients.
        """
        return dataclasses.replace(self, n_patients=int(n_patients))

    def describe(self) -> str:
        """One line for tables and logs.

        Returns
        -------
        str
            Patients, outcome and level in words.
        """
        return f"{self.n_patients} patients; {self.outcome.describe()}; two-sided alpha {self.alpha:g}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (enums as their strings; simulator parameters as nested dicts).

        Returns
        -------
        dict of {str: object}
            Plain JSON-ready dict (enums as their strings; simulator parameters as nested dicts).
        """
        out: dict[str, Any] = {"n_patients": self.n_patients, "alpha": self.alpha, "kind": self.kind}
        o = self.outcome
        if isinstance(o, SimulatorOutcome):
            out["outcome"] = {"preset": o.preset, "small_sample": o.small_sample,
                              "include_pfs": o.include_pfs, "params": o.params.to_dict()}
            return out
        d: dict[str, Any] = {}
        for f in dataclasses.fields(o):
            v = getattr(o, f.name)
            if isinstance(v, Enum):
                v = v.value
            elif isinstance(v, float) and not math.isfinite(v):
                v = str(v)
            d[f.name] = v
        if isinstance(o, LesionOutcome):
            d["icc"] = o.icc
        out["outcome"] = d
        return out
