"""Parameters of the cohort simulator: frozen dataclasses, the presets, overrides and TOML loading.

A :class:`SimulationParams` holds one frozen section per part of the generative model (see
docs/simulation.md). Every field can be changed with a dotted key (``"failure.log_or_bulky"``), from the
command line (``--set failure.log_or_bulky=1.2``) or from a TOML file whose tables are the sections::

    [cohort]
    n_patients = 200

    [failure]
    log_or_bulky = 1.2

This module imports only the standard library so that ``pofa simulate --help`` stays quick.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pofa.errors import SettingsError
from pofa.io.toml import parse_toml_value, read_toml

__all__ = [
    "PRESETS",
    "CohortParams",
    "CovariateParams",
    "FailureParams",
    "FollowupParams",
    "LesionParams",
    "SimulationParams",
    "SiteSpec",
    "SurvivalParams",
    "apply_overrides",
    "load_params",
    "parse_assignment",
    "preset",
]


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise SettingsError(message)


def _prob(name: str, value: float) -> None:
    _check(0.0 <= value <= 1.0, f"{name} = {value!r} must be a probability between 0 and 1")


def _positive(name: str, value: float) -> None:
    _check(math.isfinite(value) and value > 0, f"{name} = {value!r} must be a positive number")


def _finite(name: str, value: float) -> None:
    _check(math.isfinite(value), f"{name} = {value!r} must be a finite number")


# Plausibility bounds. The generator exponentiates log-scale parameters and draws Poisson/negative-binomial
# counts from means, so a value far outside any clinical scale (a log-mean of 710, a median of 1e308 cm, a
# mean of 1e20 extra lesions) would overflow or exhaust memory instead of simulating anything. The bounds
# are generous: each is orders of magnitude beyond the values of the paper's calibration.
#: Largest |log odds ratio|, |log hazard ratio| or |intercept| (an odds ratio of e^20 = 4.9e8).
MAX_ABS_LOG_RATIO = 20.0
#: Largest standard deviation on the log scale (a factor of e^5 = 148 per SD).
MAX_LOG_SD = 5.0
#: Largest |log-mean| of the failure growth factor (a growth of e^5 = 148 times).
MAX_ABS_LOG_GROWTH = 5.0
#: Largest diameter-like median or threshold (cm) and SUV-like median or threshold.
MAX_DIAMETER_CM = 100.0
MAX_SUV = 1000.0
#: Largest mean number of extra lesions (per patient) or of new lesions (per failure scan).
MAX_COUNT_MEAN = 100.0
#: Largest rate per year (non-relapse mortality, loss to follow-up) and time scale in months.
MAX_RATE_PER_YEAR = 100.0
MAX_MONTHS = 10_000.0
#: Weibull shapes outside this range make the times overflow or collapse to 0.
WEIBULL_SHAPE_RANGE = (0.05, 20.0)
#: Largest distance-like setting (mm).
MAX_MM = 1000.0


def _at_most(name: str, value: float, limit: float) -> None:
    _check(abs(value) <= limit, f"{name} = {value!r} is out of range: its magnitude must be at most "
           f"{limit:g} (docs/simulation.md)")


@dataclass(frozen=True, slots=True)
class SiteSpec:
    """One anatomical site of the site table.

    Attributes
    ----------
    name : str
        Site as written in the ``site`` column (e.g. ``"cervical lymph node"``).
    extranodal : bool
        Extranodal under Lugano 2014 (spleen and Waldeyer's ring are nodal).
    weight : float
        Relative frequency among pretreatment and new lesions (normalised over the table).
    centre_mm : tuple of 3 floats
        Typical lesion centre in patient LPS coordinates (mm; +x = patient's left, +y = posterior,
        +z = superior; origin near the carina). For a bilateral site, the centre of the left side.
    spread_mm : tuple of 3 floats
        Standard deviation of the centre around ``centre_mm`` along x, y, z (mm).
    bilateral : bool
        The site has a left and a right side (x mirrored with probability 1/2).
    """

    name: str
    extranodal: bool
    weight: float
    centre_mm: tuple[float, float, float]
    spread_mm: tuple[float, float, float]
    bilateral: bool = False

    def __post_init__(self) -> None:
        _check(bool(self.name.strip()), "a site needs a non-blank name")
        _check(math.isfinite(self.weight) and self.weight >= 0, f"site {self.name!r}: weight must be >= 0")
        _check(len(self.centre_mm) == 3 and len(self.spread_mm) == 3,
               f"site {self.name!r}: centre_mm and spread_mm need three numbers (x, y, z)")
        _check(all(math.isfinite(v) for v in self.centre_mm), f"site {self.name!r}: centre_mm must be finite")
        _check(all(math.isfinite(v) and v >= 0 for v in self.spread_mm),
               f"site {self.name!r}: spread_mm must be >= 0")
        # Store coordinates as floats whatever numbers were given (frozen: set through object).
        object.__setattr__(self, "centre_mm", tuple(float(v) for v in self.centre_mm))
        object.__setattr__(self, "spread_mm", tuple(float(v) for v in self.spread_mm))
        object.__setattr__(self, "weight", float(self.weight))


def _site(name: str, extranodal: bool, weight: float, centre: tuple[float, float, float],
          spread: tuple[float, float, float], bilateral: bool = False) -> SiteSpec:
    return SiteSpec(name, extranodal, weight, centre, spread, bilateral)


#: Sites of pretreatment lesions in relapsed/refractory LBCL: about 2/3 of lesions nodal, 1/3 extranodal.
#: Positions are rough anatomy for overlap and distance checks, not an atlas.
DEFAULT_SITES: tuple[SiteSpec, ...] = (
    _site("cervical lymph node", False, 0.10, (45, 0, 170), (15, 15, 30), True),
    _site("supraclavicular lymph node", False, 0.05, (60, 10, 110), (15, 15, 15), True),
    _site("axillary lymph node", False, 0.07, (130, 20, 40), (20, 25, 30), True),
    _site("mediastinum", False, 0.09, (0, -10, 20), (25, 25, 50)),
    _site("hilar lymph node", False, 0.03, (60, 20, 0), (10, 15, 15), True),
    _site("retroperitoneal lymph node", False, 0.09, (0, 40, -200), (25, 15, 60)),
    _site("mesenteric lymph node", False, 0.06, (10, -30, -230), (50, 30, 50)),
    _site("iliac lymph node", False, 0.06, (70, 20, -330), (20, 20, 40), True),
    _site("inguinal lymph node", False, 0.05, (90, -40, -420), (20, 15, 20), True),
    _site("spleen", False, 0.03, (110, 50, -110), (20, 25, 30)),
    _site("Waldeyer's ring", False, 0.02, (0, 10, 210), (20, 10, 10)),
    _site("liver", True, 0.05, (-90, 0, -120), (40, 40, 40)),
    _site("lung", True, 0.05, (100, 20, 20), (35, 40, 60), True),
    _site("bone", True, 0.08, (0, 60, -150), (100, 50, 200)),
    _site("soft tissue", True, 0.04, (0, 0, -100), (150, 100, 250)),
    _site("gastrointestinal tract", True, 0.03, (30, -40, -200), (60, 30, 80)),
    _site("kidney", True, 0.02, (75, 60, -180), (15, 15, 30), True),
    _site("adrenal", True, 0.02, (55, 50, -130), (8, 8, 10), True),
    _site("pleura", True, 0.02, (120, 30, 0), (20, 40, 60), True),
    _site("skin/subcutaneous", True, 0.02, (0, 0, -100), (180, 120, 250)),
    _site("pancreas", True, 0.01, (10, 10, -160), (30, 10, 10)),
)

#: Half-extents of the body box (mm, LPS): every simulated centre lies inside it.
BODY_BOX_MM: tuple[tuple[float, float], tuple[float, float], tuple[float, float]] = (
    (-250.0, 250.0), (-150.0, 150.0), (-550.0, 300.0))


@dataclass(frozen=True, slots=True)
class CohortParams:
    """Cohort size and lesions per patient (``[cohort]``).

    Lesions per patient = 1 + NegativeBinomial(mean ``lesions_extra_mean``, size ``lesions_dispersion``);
    the variance of the negative-binomial part is ``m + m**2 / size``.
    """

    n_patients: int = 63
    lesions_extra_mean: float = 6.44
    lesions_dispersion: float = 2.0
    patient_id_prefix: str = "P"

    def __post_init__(self) -> None:
        _check(isinstance(self.n_patients, int) and self.n_patients >= 1,
               f"cohort.n_patients = {self.n_patients!r} must be a whole number >= 1")
        _check(self.n_patients <= 1_000_000, "cohort.n_patients must be at most 1,000,000")
        _check(math.isfinite(self.lesions_extra_mean) and self.lesions_extra_mean >= 0,
               "cohort.lesions_extra_mean must be >= 0")
        _at_most("cohort.lesions_extra_mean", self.lesions_extra_mean, MAX_COUNT_MEAN)
        _positive("cohort.lesions_dispersion", self.lesions_dispersion)
        _at_most("cohort.lesions_dispersion", self.lesions_dispersion, 1e6)
        _check(self.patient_id_prefix.strip() == self.patient_id_prefix and "," not in self.patient_id_prefix,
               "cohort.patient_id_prefix must not contain commas or surrounding blanks")


@dataclass(frozen=True, slots=True)
class LesionParams:
    """Pretreatment lesions (``[lesions]``).

    log(diameter) = log(median) + patient effect (SD ``diameter_patient_log_sd``) + lesion term (SD
    ``diameter_log_sd``), truncated below at ``diameter_min_cm``. log(SUVmax) likewise, its lesion term
    correlated ``suv_diameter_correlation`` with the diameter's. MTV = pi/6 d^3 x a log-normal fraction
    (capped at 1); TLG = MTV x SUVmean with SUVmean = SUVmax x Uniform(``suvmean_ratio_min``,
    ``suvmean_ratio_max``).
    """

    diameter_median_cm: float = 3.0983
    diameter_log_sd: float = 0.55
    diameter_patient_log_sd: float = 0.30
    diameter_min_cm: float = 1.0
    suvmax_median: float = 8.0
    suvmax_log_sd: float = 0.50
    suvmax_patient_log_sd: float = 0.25
    suvmax_min: float = 2.5
    suv_diameter_correlation: float = 0.40
    mtv_fraction_median: float = 0.7575
    mtv_fraction_log_sd: float = 0.35
    suvmean_ratio_min: float = 0.45
    suvmean_ratio_max: float = 0.70
    sites: tuple[SiteSpec, ...] = DEFAULT_SITES

    def __post_init__(self) -> None:
        for name in ("diameter_median_cm", "diameter_min_cm", "suvmax_median", "suvmax_min",
                     "mtv_fraction_median", "suvmean_ratio_min", "suvmean_ratio_max"):
            _positive(f"lesions.{name}", getattr(self, name))
        for name in ("diameter_log_sd", "diameter_patient_log_sd", "suvmax_log_sd", "suvmax_patient_log_sd",
                     "mtv_fraction_log_sd"):
            v = getattr(self, name)
            _check(math.isfinite(v) and v >= 0, f"lesions.{name} = {v!r} must be >= 0")
            _at_most(f"lesions.{name}", v, MAX_LOG_SD)
        for name in ("diameter_median_cm", "diameter_min_cm"):
            _at_most(f"lesions.{name}", getattr(self, name), MAX_DIAMETER_CM)
        for name in ("suvmax_median", "suvmax_min"):
            _at_most(f"lesions.{name}", getattr(self, name), MAX_SUV)
        _check(self.diameter_log_sd > 0 and self.suvmax_log_sd > 0,
               "lesions.diameter_log_sd and lesions.suvmax_log_sd must be > 0")
        _check(-1.0 < self.suv_diameter_correlation < 1.0,
               "lesions.suv_diameter_correlation must lie strictly between -1 and 1")
        _check(self.suvmean_ratio_min <= self.suvmean_ratio_max <= 1.0,
               "lesions.suvmean_ratio_min <= lesions.suvmean_ratio_max <= 1 is required")
        _check(len(self.sites) >= 1, "lesions.sites needs at least one site")
        _check(sum(s.weight for s in self.sites) > 0, "lesions.sites: the weights must not all be 0")
        names = [s.name for s in self.sites]
        _check(len(set(names)) == len(names), "lesions.sites: site names must be unique")


@dataclass(frozen=True, slots=True)
class FailureParams:
    """What is seen at first progression, and later (``[failure]``).

    Given an observed first progression, baseline lesion j of patient i fails locally with probability
    ``expit(intercept + log_or_bulky*[d >= bulky_cm] + log_or_suv*[SUVmax >= suv_cut]
    + log_or_extranodal*[extranodal] + log_or_bridging_rt*[irradiated] + patient_sd*z_i)``, z_i ~ N(0, 1):
    these are *conditional* (patient-specific) log odds ratios. A progressing patient with no local failure
    has 1 + Poisson(``de_novo_extra_mean``) new lesions; one with local failure has them with probability
    ``de_novo_prob``. In a patient with bridging RT every failure row gets a field class (``rt_field``): each
    irradiated lesion is, once for all its rows, ``in-field`` with probability ``rt_in_field_prob`` and
    otherwise ``marginal``; failures of unirradiated lesions and new lesions are ``out-of-field``.
    """

    intercept: float = -1.2065
    log_or_bulky: float = 1.4050
    log_or_suv: float = 1.3271
    log_or_extranodal: float = 0.8912
    patient_sd: float = 1.6611
    bulky_cm: float = 5.0
    suv_cut: float = 10.0
    de_novo_prob: float = 0.5798
    de_novo_extra_mean: float = 1.0
    unknown_pattern_prob: float = 0.0
    bridging_rt_prob: float = 0.0
    log_or_bridging_rt: float = -1.5
    rt_in_field_prob: float = 1.0
    confirm_scan_prob: float = 0.10
    confirm_scan_min_days: int = 7
    confirm_scan_max_days: int = 28
    confirm_row_prob: float = 0.5
    later_scan_prob: float = 0.25
    later_scan_max_days: int = 365
    later_reseen_prob: float = 0.5
    later_local_prob: float = 0.15
    later_de_novo_mean: float = 1.0
    local_jitter_mm: float = 2.0
    failure_growth_log_mean: float = 0.20
    failure_growth_log_sd: float = 0.30
    de_novo_diameter_median_cm: float = 1.8
    de_novo_diameter_log_sd: float = 0.40
    de_novo_margin_mm: float = 15.0

    def __post_init__(self) -> None:
        for name in ("intercept", "log_or_bulky", "log_or_suv", "log_or_extranodal", "log_or_bridging_rt",
                     "failure_growth_log_mean"):
            _finite(f"failure.{name}", getattr(self, name))
            _at_most(f"failure.{name}", getattr(self, name),
                     MAX_ABS_LOG_GROWTH if name == "failure_growth_log_mean" else MAX_ABS_LOG_RATIO)
        for name, limit in (("patient_sd", MAX_LOG_SD), ("failure_growth_log_sd", MAX_LOG_SD),
                            ("de_novo_diameter_log_sd", MAX_LOG_SD), ("de_novo_extra_mean", MAX_COUNT_MEAN),
                            ("later_de_novo_mean", MAX_COUNT_MEAN), ("local_jitter_mm", MAX_MM),
                            ("de_novo_margin_mm", MAX_MM), ("bulky_cm", MAX_DIAMETER_CM),
                            ("de_novo_diameter_median_cm", MAX_DIAMETER_CM), ("suv_cut", MAX_SUV)):
            _at_most(f"failure.{name}", getattr(self, name), limit)
        for name in ("patient_sd", "de_novo_extra_mean", "later_de_novo_mean", "local_jitter_mm",
                     "failure_growth_log_sd", "de_novo_diameter_log_sd", "de_novo_margin_mm"):
            v = getattr(self, name)
            _check(math.isfinite(v) and v >= 0, f"failure.{name} = {v!r} must be >= 0")
        for name in ("bulky_cm", "suv_cut", "de_novo_diameter_median_cm"):
            _positive(f"failure.{name}", getattr(self, name))
        for name in ("de_novo_prob", "unknown_pattern_prob", "bridging_rt_prob", "rt_in_field_prob",
                     "confirm_scan_prob",
                     "confirm_row_prob", "later_scan_prob", "later_reseen_prob", "later_local_prob"):
            _prob(f"failure.{name}", getattr(self, name))
        _check(1 <= self.confirm_scan_min_days <= self.confirm_scan_max_days <= 30,
               "failure.confirm_scan_min_days and confirm_scan_max_days must satisfy 1 <= min <= max <= 30 "
               "(a confirmation scan belongs to first progression, whose window is 30 days)")
        _check(self.later_scan_max_days >= 31,
               "failure.later_scan_max_days must be >= 31 (a later scan falls after the 30-day window)")


@dataclass(frozen=True, slots=True)
class SurvivalParams:
    """Progression and death: an illness-death model (``[survival]``).

    Time to progression (months) is Weibull with proportional hazards: S(t) = exp(-(t/scale)^shape x
    exp(log_hr_progression_bulky x bulky)), where bulky = any lesion >= ``failure.bulky_cm``. Death without
    progression is exponential (``nrm_rate_per_year``); death after progression comes a Weibull time later
    (median ``post_progression_median_months`` when not bulky, hazard ratio
    exp(log_hr_post_progression_bulky)).
    """

    progression_weibull_shape: float = 0.6
    progression_scale_months: float = 37.6798
    log_hr_progression_bulky: float = 0.8883
    nrm_rate_per_year: float = 0.05
    post_progression_median_months: float = 9.5138
    post_progression_weibull_shape: float = 1.0
    log_hr_post_progression_bulky: float = 0.7815

    def __post_init__(self) -> None:
        for name in ("progression_weibull_shape", "progression_scale_months",
                     "post_progression_median_months", "post_progression_weibull_shape"):
            _positive(f"survival.{name}", getattr(self, name))
        _check(math.isfinite(self.nrm_rate_per_year) and self.nrm_rate_per_year >= 0,
               "survival.nrm_rate_per_year must be >= 0")
        _finite("survival.log_hr_progression_bulky", self.log_hr_progression_bulky)
        _finite("survival.log_hr_post_progression_bulky", self.log_hr_post_progression_bulky)
        for name in ("log_hr_progression_bulky", "log_hr_post_progression_bulky"):
            _at_most(f"survival.{name}", getattr(self, name), MAX_ABS_LOG_RATIO)
        for name in ("progression_weibull_shape", "post_progression_weibull_shape"):
            v = getattr(self, name)
            lo, hi = WEIBULL_SHAPE_RANGE
            _check(lo <= v <= hi, f"survival.{name} = {v!r} is out of range: it must lie between {lo:g} and "
                   f"{hi:g} (docs/simulation.md)")
        for name in ("progression_scale_months", "post_progression_median_months"):
            _at_most(f"survival.{name}", getattr(self, name), MAX_MONTHS)
        _at_most("survival.nrm_rate_per_year", self.nrm_rate_per_year, MAX_RATE_PER_YEAR)


@dataclass(frozen=True, slots=True)
class FollowupParams:
    """Accrual and censoring (``[followup]``).

    Index dates are uniform over [``accrual_start``, ``accrual_end``]; follow-up ends at ``data_cutoff``
    (administrative censoring) or at an exponential loss to follow-up (``loss_rate_per_year``), whichever
    comes first.
    """

    accrual_start: dt.date = dt.date(2015, 1, 1)
    accrual_end: dt.date = dt.date(2019, 12, 31)
    data_cutoff: dt.date = dt.date(2020, 3, 31)
    loss_rate_per_year: float = 0.5092

    def __post_init__(self) -> None:
        _check(self.accrual_start <= self.accrual_end < self.data_cutoff,
               "followup: accrual_start <= accrual_end < data_cutoff is required")
        _check(math.isfinite(self.loss_rate_per_year) and self.loss_rate_per_year >= 0,
               "followup.loss_rate_per_year must be >= 0")
        _at_most("followup.loss_rate_per_year", self.loss_rate_per_year, MAX_RATE_PER_YEAR)


@dataclass(frozen=True, slots=True)
class CovariateParams:
    """Patient covariates (``[covariates]``). They do not affect any outcome (negative controls)."""

    age_mean: float = 60.0
    age_sd: float = 11.0
    age_min: int = 19
    age_max: int = 85
    male_prob: float = 0.65
    ldh_elevated_prob: float = 0.60
    ecog_probs: tuple[float, ...] = (0.45, 0.45, 0.10)

    def __post_init__(self) -> None:
        _finite("covariates.age_mean", self.age_mean)
        _check(math.isfinite(self.age_sd) and self.age_sd >= 0, "covariates.age_sd must be >= 0")
        _check(0 <= self.age_min <= self.age_max <= 120, "covariates: 0 <= age_min <= age_max <= 120")
        _prob("covariates.male_prob", self.male_prob)
        _prob("covariates.ldh_elevated_prob", self.ldh_elevated_prob)
        _check(len(self.ecog_probs) >= 1 and all(math.isfinite(p) and p >= 0 for p in self.ecog_probs)
               and abs(sum(self.ecog_probs) - 1.0) < 1e-9,
               "covariates.ecog_probs must be probabilities of ECOG 0, 1, 2, ... summing to 1")


@dataclass(frozen=True, slots=True)
class SimulationParams:
    """All parameters of the generative model (docs/simulation.md).

    The defaults of every section are the values of the ``figura2021`` preset.
    """

    cohort: CohortParams = field(default_factory=CohortParams)
    lesions: LesionParams = field(default_factory=LesionParams)
    failure: FailureParams = field(default_factory=FailureParams)
    survival: SurvivalParams = field(default_factory=SurvivalParams)
    followup: FollowupParams = field(default_factory=FollowupParams)
    covariates: CovariateParams = field(default_factory=CovariateParams)

    def get(self, key: str) -> Any:
        """The value of a dotted key, e.g. ``params.get("failure.log_or_bulky")``.

        Parameters
        ----------
        key : str
            Dotted key, e.g. ``"failure.log_or_bulky"``.

        Returns
        -------
        object
            The value of the key.
        """
        section, name = _resolve_key(key)
        return getattr(getattr(self, section), name)

    def with_values(self, values: Mapping[str, Any]) -> SimulationParams:
        """A copy with some fields changed (dotted keys, values already of the right type).

        Parameters
        ----------
        values : mapping of {str: object}
            Dotted key -> new value.

        Returns
        -------
        SimulationParams
            A copy with some fields changed (dotted keys, values already of the right type).
        """
        return apply_overrides(self, values)

    def differences(self, other: SimulationParams) -> dict[str, tuple[Any, Any]]:
        """Dotted keys whose values differ from ``other``: ``{key: (self value, other value)}``.

        Parameters
        ----------
        other : SimulationParams
            The parameters compared with.

        Returns
        -------
        dict of {str: tuple of (object, object)}
            Dotted keys whose values differ from ``other``: ``{key: (self value, other value)}``.
        """
        out: dict[str, tuple[Any, Any]] = {}
        for sec in fields(self):
            a, b = getattr(self, sec.name), getattr(other, sec.name)
            for f in fields(a):
                va, vb = getattr(a, f.name), getattr(b, f.name)
                if va != vb:
                    out[f"{sec.name}.{f.name}"] = (va, vb)
        return out

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict (dates as ISO text, tuples as lists, sites as dicts).

        Returns
        -------
        dict of {str: dict of {str: object}}
            Plain nested dict (dates as ISO text, tuples as lists, sites as dicts).
        """
        def plain(v: Any) -> Any:
            if isinstance(v, dt.date):
                return v.isoformat()
            if isinstance(v, SiteSpec):
                return {f.name: plain(getattr(v, f.name)) for f in fields(v)}
            if isinstance(v, tuple):
                return [plain(x) for x in v]
            return v
        return {sec.name: {f.name: plain(getattr(getattr(self, sec.name), f.name))
                           for f in fields(getattr(self, sec.name))} for sec in fields(self)}


# --------------------------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------------------------

#: Figura et al. 2021 (IJROBP 111:1145): calibrated by ``python3 benchmarks/calibration.py --tune`` so that,
#: averaged over 63-patient studies, the figures of the paper come out (docs/simulation.md, calibration
#: table).
FIGURA2021 = SimulationParams()

#: In-field share of the irradiated lesions' failures in the bridging_rt preset (benchmarks/
#: calibration_bridging_rt.py --in-field).
RT_IN_FIELD_PROB = 0.7636

#: Bridging radiotherapy (docs/radiotherapy.md): figura2021 with half the patients bridged (each one's bulky
#: lesions, else its largest), the lesion intercept and the conditional log odds ratio of bridging RT
#: calibrated by ``benchmarks/calibration_bridging_rt.py`` so that the expected local failure is 21% in
#: irradiated lesions and 46% in the lesions RT would have treated in patients without it (Blood Adv
#: 2024;8:4877); and the share of irradiated lesions' failures that lie in-field so that 16.9% of irradiated
#: lesions fail in-field (9 of 53, Saifi et al. 2023).
BRIDGING_RT = replace(FIGURA2021, failure=replace(FIGURA2021.failure, bridging_rt_prob=0.5, intercept=-0.5166,
                                                  log_or_bridging_rt=-2.7648,
                                                  rt_in_field_prob=RT_IN_FIELD_PROB))

PRESETS: Mapping[str, SimulationParams] = types.MappingProxyType({"figura2021": FIGURA2021,
                                                                  "bridging_rt": BRIDGING_RT})


def preset(name: str) -> SimulationParams:
    """The preset called ``name``.

    Parameters
    ----------
    name : str
        Name of the preset (:data:`PRESETS`).

    Returns
    -------
    SimulationParams
        The preset called ``name``.

    Raises
    ------
    SettingsError
        When there is no such preset (the message lists the presets).
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise SettingsError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


# --------------------------------------------------------------------------------------------------------
# Keys, values and overrides
# --------------------------------------------------------------------------------------------------------

_SECTION_CLASSES: dict[str, type] = {
    "cohort": CohortParams, "lesions": LesionParams, "failure": FailureParams, "survival": SurvivalParams,
    "followup": FollowupParams, "covariates": CovariateParams,
}


def _section_fields(section: str) -> dict[str, Any]:
    cls = _SECTION_CLASSES[section]
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def all_keys() -> tuple[str, ...]:
    """Every dotted key, e.g. ``"cohort.n_patients"``.

    Returns
    -------
    tuple of str
        The keys, section by section.
    """
    return tuple(f"{s}.{n}" for s in _SECTION_CLASSES for n in _section_fields(s))


def _resolve_key(key: str) -> tuple[str, str]:
    """(section, field) of a dotted key; a bare field name is accepted when it is unique."""
    key = key.strip()
    keys = all_keys()
    if "." in key:
        section, name = key.split(".", 1)
        if section in _SECTION_CLASSES and name in _section_fields(section):
            return section, name
    else:
        matches = [k for k in keys if k.split(".", 1)[1] == key]
        if len(matches) == 1:
            s, n = matches[0].split(".", 1)
            return s, n
        if len(matches) > 1:
            raise SettingsError(f"the parameter name {key!r} is ambiguous; write one of: "
                                f"{', '.join(matches)}")
    close = difflib.get_close_matches(key, keys, n=3)
    hint = f"did you mean {' or '.join(close)}?" if close else "see docs/simulation.md for every parameter"
    raise SettingsError(f"unknown simulation parameter {key!r}; {hint}")


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """``value`` (as parsed from TOML) converted to the field's type, or a SettingsError."""
    origin = typing.get_origin(hint)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise SettingsError(f"{key} = {value!r} must be true or false")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or (isinstance(value, float) and not math.isfinite(value)) or float(value) != int(value):
            raise SettingsError(f"{key} = {value!r} must be a whole number")
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise SettingsError(f"{key} = {value!r} must be a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise SettingsError(f"{key} = {value!r} must be text")
        return value
    if hint is dt.date:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise SettingsError(f"{key} = {value!r} must be a date written YYYY-MM-DD")
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise SettingsError(f"{key} = {value!r} must be a list, e.g. [0.5, 0.5]")
        if args and args[0] is SiteSpec:
            return tuple(_site_from_toml(key, i, v) for i, v in enumerate(value))
        item = args[0] if args else float
        return tuple(_coerce(f"{key}[{i}]", v, item) for i, v in enumerate(value))
    raise SettingsError(f"{key} cannot be set")  # every field type is handled above


def _site_from_toml(key: str, i: int, value: Any) -> SiteSpec:
    if isinstance(value, SiteSpec):
        return value
    if not isinstance(value, Mapping):
        raise SettingsError(f"{key}[{i}] must be a table with name, extranodal, weight, centre_mm, spread_mm")
    hints = typing.get_type_hints(SiteSpec)
    known = {f.name for f in fields(SiteSpec)}
    unknown = set(value) - known
    if unknown:
        raise SettingsError(f"{key}[{i}]: unknown site field(s) {', '.join(sorted(unknown))}; "
                            f"known: {', '.join(sorted(known))}")
    missing = {"name", "extranodal", "weight", "centre_mm", "spread_mm"} - set(value)
    if missing:
        raise SettingsError(f"{key}[{i}]: missing site field(s) {', '.join(sorted(missing))}")
    kwargs: dict[str, Any] = {}
    for name, v in value.items():
        hint = hints[name]
        if typing.get_origin(hint) is tuple:
            if not isinstance(v, (list, tuple)) or len(v) != 3:
                raise SettingsError(f"{key}[{i}].{name} must be three numbers [x, y, z]")
            kwargs[name] = tuple(_coerce(f"{key}[{i}].{name}", x, float) for x in v)
        else:
            kwargs[name] = _coerce(f"{key}[{i}].{name}", v, hint)
    return SiteSpec(**kwargs)


def apply_overrides(params: SimulationParams, values: Mapping[str, Any]) -> SimulationParams:
    """A copy of ``params`` with the dotted keys of ``values`` changed.

    Values may be Python values of the field's type or anything TOML parses to (int for a float field,
    ISO text for a date, a list for a tuple). Every new section is checked.

    Parameters
    ----------
    params : SimulationParams
        The parameters changed.
    values : mapping of {str: object}
        Dotted key -> new value.

    Returns
    -------
    SimulationParams
        A copy of ``params`` with the dotted keys of ``values`` changed.

    Raises
    ------
    SettingsError
        Unknown key, value of the wrong type or out of range.
    """
    by_section: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        section, name = _resolve_key(key)
        hint = _section_fields(section)[name]
        by_section.setdefault(section, {})[name] = _coerce(f"{section}.{name}", value, hint)
    updates = {s: replace(getattr(params, s), **v) for s, v in by_section.items()}
    return replace(params, **updates)


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse ``"key=value"`` from the command line.

    Parameters
    ----------
    text : str
        The assignment.

    Returns
    -------
    tuple of (str, object)
        The key and the value, read as TOML (number, true/false, date, list), else taken as plain text.

    Raises
    ------
    SettingsError
        When there is no ``=`` or no key.
    """
    if "=" not in text:
        raise SettingsError(f"the assignment {text!r} needs the form key=value, e.g. "
                            "failure.log_or_bulky=1.2")
    key, raw = text.split("=", 1)
    key, raw = key.strip(), raw.strip()
    if not key:
        raise SettingsError(f"the assignment {text!r} has no parameter name before '='")
    return key, parse_toml_value(raw)


def _flatten_toml(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section, table in data.items():
        if section not in _SECTION_CLASSES:
            close = difflib.get_close_matches(section, _SECTION_CLASSES, n=1)
            hint = f"did you mean [{close[0]}]?" if close else f"known tables: {', '.join(_SECTION_CLASSES)}"
            raise SettingsError(f"{source}: unknown table [{section}]; {hint}")
        if not isinstance(table, Mapping):
            raise SettingsError(f"{source}: '{section}' must be a table [{section}]")
        for name, value in table.items():
            out[f"{section}.{name}"] = value
    return out


def load_params(preset_name: str = "figura2021", config: Path | None = None,
                assignments: Sequence[str] | None = None, n_patients: int | None = None) -> SimulationParams:
    """Build parameters from a preset, then a TOML file, then ``key=value`` assignments, then ``n_patients``.

    Parameters
    ----------
    preset_name : str
        Name of the starting preset (:data:`PRESETS`).
    config : pathlib.Path, optional
        TOML file whose tables are sections of :class:`SimulationParams`.
    assignments : sequence of str, optional
        ``"section.field=value"`` texts (``--set``), applied after the file.
    n_patients : int, optional
        Cohort size (``--patients``), applied last.

    Returns
    -------
    SimulationParams
        The parameters, every section checked.

    Raises
    ------
    SettingsError
        For an unknown preset, an unreadable or invalid file, or a bad assignment.
    """
    params = preset(preset_name)
    if config is not None:
        path = Path(config)
        data = read_toml(path)
        params = apply_overrides(params, _flatten_toml(data, str(path)))
    if assignments:
        params = apply_overrides(params, dict(parse_assignment(a) for a in assignments))
    if n_patients is not None:
        params = apply_overrides(params, {"cohort.n_patients": n_patients})
    return params


def format_value(value: Any) -> str:
    """Write a value as TOML (for the comment header of study.toml and for docs).

    Parameters
    ----------
    value : object
        The value.

    Returns
    -------
    str
        Its TOML text.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, SiteSpec):
        return "{" + ", ".join(f"{f.name} = {format_value(getattr(value, f.name))}"
                               for f in dataclasses.fields(value)) + "}"
    if isinstance(value, tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return repr(value)
