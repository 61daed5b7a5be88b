"""The cohort simulator: a documented generative model of lesion-level patterns of failure after CAR T.

:func:`simulate` draws a study in the study-folder format (patients, lesions, failures) together with the
truth behind it (true lesion failure probabilities, latent event times, patient random effects). The model
is described, with the reasons for each choice, in docs/simulation.md.

Determinism. Every random quantity comes from a numpy ``Generator`` (PCG64) seeded with
``SeedSequence([seed, stream])``; each part of the model has its own stream, so changing, say, the site
table does not move the survival times. Within a stream every draw is a uniform number turned into the
quantity by its inverse distribution function, in a fixed layout (one per patient, then one per lesion).
Changing a parameter therefore moves the outputs smoothly (common random numbers), which is what the
calibration (benchmarks/calibration.py --tune) relies on.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

from pofa.errors import SettingsError
from pofa.simulate.params import BODY_BOX_MM, SimulationParams
from pofa.units import DAYS_PER_MONTH, DAYS_PER_YEAR
from pofa.vocabulary import PatientPattern

__all__ = ["DAYS_PER_MONTH", "LatentCohort", "SimulatedStudy", "draw_latent", "simulate"]


#: Named random streams (the numbers are part of the format of a seed: never renumber them).
STREAMS = {"cohort": 1, "covariates": 2, "lesions": 3, "survival": 4, "dates": 5, "failure": 6,
           "bridging": 7, "positions": 8, "failure_rows": 9, "rt_field": 10}

#: The latent pattern of a patient who does not progress (the study tables then hold no failure rows).
NO_PROGRESSION = "none"

#: Patient pattern at first progression: :data:`NO_PROGRESSION` then the strings of the patient table.
PATTERNS = (NO_PROGRESSION, PatientPattern.STRICTLY_LOCAL.value, PatientPattern.STRICTLY_DE_NOVO.value,
            PatientPattern.MIXED.value, PatientPattern.UNKNOWN.value)

_TWO53 = float(2**53)


def _rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, STREAMS[stream]])))


def _uniform(rng: np.random.Generator, size: int) -> np.ndarray:
    """Uniform numbers strictly inside (0, 1): ``rng.random`` gives k / 2**53; we return (k + 1/2) / 2**53."""
    return (np.floor(rng.random(size) * _TWO53) + 0.5) / _TWO53


def _normal(rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
    n = int(np.prod(size))
    return special.ndtri(_uniform(rng, n)).reshape(size)


def _truncated_below(u: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Standard normal truncated to [lower, inf), by inversion: P(Z > z) = (1 - u) * P(Z > lower).

    Written with upper-tail probabilities so that it stays accurate when ``lower`` is far in the tail.
    """
    return -special.ndtri((1.0 - u) * special.ndtr(-lower))


def _poisson(u: np.ndarray, mean: float) -> np.ndarray:
    if mean <= 0:
        return np.zeros(u.shape, dtype=np.int64)
    counts: np.ndarray = stats.poisson.ppf(u, mean).astype(np.int64)
    return counts


def _round1(x: np.ndarray, minimum: float = 0.1) -> np.ndarray:
    """Round to one decimal (as written to the CSV files) and keep the result >= ``minimum``."""
    return np.maximum(np.round(x, 1), minimum)


@dataclass(frozen=True, slots=True, eq=False)
class LatentCohort:
    """Every latent and observed quantity of one simulated cohort, as numpy arrays (no tables yet).

    Patient arrays have length ``n``; lesion arrays have length ``n_lesions.sum()`` and are ordered by
    patient (``lesion_patient`` gives the patient index). Days count from each patient's index date.
    """

    params: SimulationParams
    seed: int
    # patients
    n_lesions: np.ndarray
    age: np.ndarray
    male: np.ndarray
    ldh_elevated: np.ndarray
    ecog: np.ndarray
    index_day: np.ndarray
    bulky: np.ndarray
    bridging: np.ndarray
    random_effect: np.ndarray
    progression_months: np.ndarray
    nrm_months: np.ndarray
    death_months: np.ndarray
    progresses: np.ndarray
    progression_day: np.ndarray
    death_day: np.ndarray
    censor_day: np.ndarray
    progressed: np.ndarray
    died: np.ndarray
    last_followup_day: np.ndarray
    unknown: np.ndarray
    n_local: np.ndarray
    n_de_novo: np.ndarray
    # lesions
    lesion_patient: np.ndarray
    lesion_index: np.ndarray
    diameter_cm: np.ndarray
    suvmax: np.ndarray
    site: np.ndarray
    side: np.ndarray
    extranodal: np.ndarray
    mtv_ml: np.ndarray
    tlg: np.ndarray
    bridging_rt: np.ndarray
    linear_predictor: np.ndarray
    p_local: np.ndarray
    local_failure: np.ndarray

    @property
    def n(self) -> int:
        """Number of patients.

        Returns
        -------
        int
            Patients in the cohort.
        """
        return int(self.n_lesions.size)

    @property
    def pattern(self) -> np.ndarray:
        """Pattern at first progression per patient (strings of :data:`PATTERNS`).

        Returns
        -------
        numpy.ndarray
            Pattern at first progression per patient (strings of :data:`PATTERNS`).
        """
        out = np.full(self.n, NO_PROGRESSION, dtype=object)
        out[self.progressed & self.unknown] = PatientPattern.UNKNOWN.value
        known = self.progressed & ~self.unknown
        loc, dn = self.n_local > 0, self.n_de_novo > 0
        out[known & loc & ~dn] = PatientPattern.STRICTLY_LOCAL.value
        out[known & ~loc & dn] = PatientPattern.STRICTLY_DE_NOVO.value
        out[known & loc & dn] = PatientPattern.MIXED.value
        return out


# Extreme settings (a tiny rate or shape) can give infinite latent times; they are capped (``big`` days) and
# mean "never", so numpy's overflow warnings are silenced here.
@np.errstate(over="ignore", divide="ignore")
def draw_latent(params: SimulationParams, seed: int) -> LatentCohort:
    """Draw the latent cohort: lesions, covariates, event times, censoring and lesion outcomes.

    Fully vectorised; positions and failure-scan rows are added by :func:`simulate`. Used directly by the
    calibration, which needs many large cohorts quickly.

    Parameters
    ----------
    params : SimulationParams
        Simulation parameters.
    seed : int
        Non-negative whole number.

    Returns
    -------
    LatentCohort
        Lesions, covariates, event times, censoring and lesion outcomes of every patient.
    """
    seed = _check_seed(seed)
    n = params.cohort.n_patients
    co, le, fa, su, fu, cv = (params.cohort, params.lesions, params.failure, params.survival, params.followup,
                              params.covariates)

    # Lesions per patient: 1 + NegativeBinomial(mean m, size k) (scipy: p = k / (k + m)).
    rng = _rng(seed, "cohort")
    u = _uniform(rng, n)
    if co.lesions_extra_mean > 0:
        k = co.lesions_dispersion
        extra = stats.nbinom.ppf(u, k, k / (k + co.lesions_extra_mean)).astype(np.int64)
    else:
        extra = np.zeros(n, dtype=np.int64)
    n_lesions = 1 + extra
    n_les_total = int(n_lesions.sum())
    lesion_patient = np.repeat(np.arange(n), n_lesions)
    first = np.concatenate(([0], np.cumsum(n_lesions)[:-1]))
    lesion_index = np.arange(n_les_total) - first[lesion_patient]

    # Covariates (no effect on outcomes).
    rng = _rng(seed, "covariates")
    age = np.clip(np.round(cv.age_mean + cv.age_sd * special.ndtri(_uniform(rng, n))), cv.age_min,
                  cv.age_max).astype(np.int64)
    male = _uniform(rng, n) < cv.male_prob
    ldh = _uniform(rng, n) < cv.ldh_elevated_prob
    ecog_cum = np.cumsum(cv.ecog_probs)
    ecog = np.minimum(np.searchsorted(ecog_cum / ecog_cum[-1], _uniform(rng, n), side="right"),
                      len(cv.ecog_probs) - 1).astype(np.int64)

    # Lesion size, uptake, site, volume.
    rng = _rng(seed, "lesions")
    zp_d = _normal(rng, n)
    zp_s = _normal(rng, n)
    u_d, u_s, u_site, u_side, u_mtv, u_ratio = (_uniform(rng, n_les_total) for _ in range(6))
    mu_d = math.log(le.diameter_median_cm) + le.diameter_patient_log_sd * zp_d[lesion_patient]
    z_d = _truncated_below(u_d, (math.log(le.diameter_min_cm) - mu_d) / le.diameter_log_sd)
    diameter = _round1(np.exp(mu_d + le.diameter_log_sd * z_d))
    rho = le.suv_diameter_correlation
    s_ind = le.suvmax_log_sd * math.sqrt(1.0 - rho * rho)
    mu_s = math.log(le.suvmax_median) + le.suvmax_patient_log_sd * zp_s[lesion_patient] \
        + le.suvmax_log_sd * rho * z_d
    w = _truncated_below(u_s, (math.log(le.suvmax_min) - mu_s) / s_ind)
    suvmax = _round1(np.exp(mu_s + s_ind * w))
    weights = np.array([s.weight for s in le.sites], dtype=float)
    cum = np.cumsum(weights) / weights.sum()
    site = np.minimum(np.searchsorted(cum, u_site, side="right"), len(le.sites) - 1)
    bilateral = np.array([s.bilateral for s in le.sites])[site]
    side = np.where(bilateral & (u_side < 0.5), -1, 1).astype(np.int64)
    extranodal = np.array([s.extranodal for s in le.sites])[site]
    fraction = np.minimum(1.0, np.exp(math.log(le.mtv_fraction_median)
                                      + le.mtv_fraction_log_sd * special.ndtri(u_mtv)))
    mtv = _round1(math.pi / 6.0 * diameter**3 * fraction)
    ratio = le.suvmean_ratio_min + (le.suvmean_ratio_max - le.suvmean_ratio_min) * u_ratio
    tlg = _round1(mtv * suvmax * ratio)

    bulky_lesion = diameter >= fa.bulky_cm
    bulky = np.bincount(lesion_patient, weights=bulky_lesion, minlength=n) > 0

    # Bridging radiotherapy: all bulky lesions of a treated patient, else its largest lesion.
    rng = _rng(seed, "bridging")
    bridging = _uniform(rng, n) < fa.bridging_rt_prob
    largest = np.zeros(n_les_total, dtype=bool)
    order = np.lexsort((-diameter, lesion_patient))  # by patient, largest first (stable: first of ties)
    firsts = order[np.concatenate(([True], np.diff(lesion_patient[order]) != 0))]
    largest[firsts] = True
    rt_target = np.where(bulky[lesion_patient], bulky_lesion, largest)
    bridging_rt = bridging[lesion_patient] & rt_target

    # Progression and death: illness-death model with Weibull progression (proportional hazards).
    rng = _rng(seed, "survival")
    e_prog, e_nrm, e_post, e_loss = (-np.log(_uniform(rng, n)) for _ in range(4))
    t_prog = su.progression_scale_months * (e_prog * np.exp(-su.log_hr_progression_bulky * bulky)) ** (
        1.0 / su.progression_weibull_shape)
    nrm_rate = su.nrm_rate_per_year / 12.0
    t_nrm = e_nrm / nrm_rate if nrm_rate > 0 else np.full(n, np.inf)
    shape_post = su.post_progression_weibull_shape
    scale_post = su.post_progression_median_months / math.log(2.0) ** (1.0 / shape_post)
    t_post = scale_post * (e_post * np.exp(-su.log_hr_post_progression_bulky * bulky)) ** (1.0 / shape_post)
    progresses = t_prog < t_nrm
    t_death = np.where(progresses, t_prog + t_post, t_nrm)
    big = np.iinfo(np.int64).max // 4
    prog_day = np.maximum(1, np.ceil(np.minimum(t_prog * DAYS_PER_MONTH, big))).astype(np.int64)
    death_day = np.maximum(1, np.ceil(np.minimum(t_death * DAYS_PER_MONTH, big))).astype(np.int64)
    death_day = np.where(progresses, np.maximum(death_day, prog_day), death_day)

    # Accrual and censoring.
    rng = _rng(seed, "dates")
    accrual_days = (fu.accrual_end - fu.accrual_start).days
    index_day = np.minimum(np.floor(_uniform(rng, n) * (accrual_days + 1)), accrual_days).astype(np.int64)
    admin = (fu.data_cutoff - fu.accrual_start).days - index_day
    loss_rate = fu.loss_rate_per_year / DAYS_PER_YEAR
    if loss_rate > 0:
        loss = np.maximum(1, np.ceil(np.minimum(e_loss / loss_rate, big))).astype(np.int64)
    else:
        loss = np.full(n, big, dtype=np.int64)
    censor_day = np.minimum(admin, loss)
    progressed = progresses & (prog_day <= censor_day)
    died = death_day <= censor_day
    last_fu = np.where(died, death_day, censor_day)

    # Lesion outcomes at first progression (conditional on an observed progression).
    rng = _rng(seed, "failure")
    z = _normal(rng, n)
    u_unknown, u_dn, u_dn_count = (_uniform(rng, n) for _ in range(3))
    u_fail = _uniform(rng, n_les_total)
    random_effect = fa.patient_sd * z
    lp = (fa.intercept + fa.log_or_bulky * bulky_lesion + fa.log_or_suv * (suvmax >= fa.suv_cut)
          + fa.log_or_extranodal * extranodal + fa.log_or_bridging_rt * bridging_rt
          + random_effect[lesion_patient])
    p_local = special.expit(lp)
    unknown = progressed & (u_unknown < fa.unknown_pattern_prob)
    eligible = progressed & ~unknown
    local = eligible[lesion_patient] & (u_fail < p_local)
    n_local = np.bincount(lesion_patient, weights=local, minlength=n).astype(np.int64)
    count = 1 + _poisson(u_dn_count, fa.de_novo_extra_mean)
    has_dn = eligible & ((n_local == 0) | (u_dn < fa.de_novo_prob))
    n_de_novo = np.where(has_dn, count, 0)

    return LatentCohort(
        params=params, seed=seed, n_lesions=n_lesions, age=age, male=male, ldh_elevated=ldh, ecog=ecog,
        index_day=index_day, bulky=bulky, bridging=bridging, random_effect=random_effect,
        progression_months=t_prog, nrm_months=t_nrm, death_months=t_death, progresses=progresses,
        progression_day=prog_day, death_day=death_day, censor_day=censor_day, progressed=progressed,
        died=died, last_followup_day=last_fu, unknown=unknown, n_local=n_local, n_de_novo=n_de_novo,
        lesion_patient=lesion_patient, lesion_index=lesion_index, diameter_cm=diameter, suvmax=suvmax,
        site=site, side=side, extranodal=extranodal, mtv_ml=mtv, tlg=tlg, bridging_rt=bridging_rt,
        linear_predictor=lp, p_local=p_local, local_failure=local,
    )


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SettingsError(f"seed = {seed!r} must be a whole number >= 0")
    return int(seed)


# --------------------------------------------------------------------------------------------------------
# Positions and failure-scan rows
# --------------------------------------------------------------------------------------------------------

_BOX_LO = np.array([b[0] for b in BODY_BOX_MM])
_BOX_HI = np.array([b[1] for b in BODY_BOX_MM])
_MAX_TRIES = 200


class _Sites:
    """Site table as arrays."""

    def __init__(self, params: SimulationParams) -> None:
        sites = params.lesions.sites
        self.centre = np.array([s.centre_mm for s in sites], dtype=float)
        self.spread = np.array([s.spread_mm for s in sites], dtype=float)
        self.bilateral = np.array([s.bilateral for s in sites])
        self.extranodal = np.array([s.extranodal for s in sites])
        self.names = [s.name for s in sites]
        w = np.array([s.weight for s in sites], dtype=float)
        self.cum = np.cumsum(w) / w.sum()

    def draw_site(self, rng: np.random.Generator) -> tuple[int, int]:
        u = _uniform(rng, 2)
        k = int(min(np.searchsorted(self.cum, u[0], side="right"), len(self.names) - 1))
        side = -1 if (self.bilateral[k] and u[1] < 0.5) else 1
        return k, side

    def draw_position(self, rng: np.random.Generator, k: int, side: int) -> np.ndarray:
        centre = self.centre[k].copy()
        centre[0] *= side
        position: np.ndarray = np.clip(centre + self.spread[k] * _normal(rng, 3), _BOX_LO, _BOX_HI)
        return position


def _place(rng: np.random.Generator, sites: _Sites, k: int, side: int, radius: float, others: np.ndarray,
           other_radii: np.ndarray, margin: float) -> np.ndarray:
    """A centre at site ``k`` whose sphere keeps ``margin`` mm from every other sphere.

    Tries the site's own distribution first, then anywhere in the body box; if both fail (a crowded body,
    practically never) the last draw is kept.
    """
    pos = sites.draw_position(rng, k, side)
    for attempt in range(2 * _MAX_TRIES):
        if attempt >= _MAX_TRIES:
            pos = _BOX_LO + (_BOX_HI - _BOX_LO) * _uniform(rng, 3)
        elif attempt > 0:
            pos = sites.draw_position(rng, k, side)
        if others.size == 0:
            return pos
        d = np.sqrt(((others - pos) ** 2).sum(axis=1))
        if np.all(d >= other_radii + radius + margin):
            return pos
    return pos


def _baseline_positions(latent: LatentCohort, sites: _Sites) -> np.ndarray:
    """Lesion centres (mm): non-overlapping spheres of diameter ``diameter_cm`` within each patient."""
    rng = _rng(latent.seed, "positions")
    pos = np.zeros((latent.lesion_patient.size, 3))
    radius = latent.diameter_cm * 5.0  # cm diameter -> mm radius
    start = 0
    for i in range(latent.n):
        stop = start + int(latent.n_lesions[i])
        for j in range(start, stop):
            pos[j] = _place(rng, sites, int(latent.site[j]), int(latent.side[j]), radius[j], pos[start:j],
                            radius[start:j], 0.0)
        start = stop
    return np.round(pos, 1)


@dataclass(slots=True)
class _Rows:
    patient: list[int] = field(default_factory=list)
    day: list[int] = field(default_factory=list)
    lesion: list[int] = field(default_factory=list)  # global lesion index, -1 for a new lesion
    site: list[int] = field(default_factory=list)
    pos: list[np.ndarray] = field(default_factory=list)
    diameter: list[float] = field(default_factory=list)


def _add_local_row(rows: _Rows, rng: np.random.Generator, latent: LatentCohort, positions: np.ndarray,
                   i: int, j: int, day: int) -> None:
    """A failure row for baseline lesion ``j`` of patient ``i``: at the lesion's centre (plus a small
    registration jitter), grown by a log-normal factor."""
    fa = latent.params.failure
    g = math.exp(fa.failure_growth_log_mean + fa.failure_growth_log_sd * float(_normal(rng, 1)[0]))
    moved = positions[j] + fa.local_jitter_mm * _normal(rng, 3)
    rows.patient.append(i)
    rows.day.append(day)
    rows.lesion.append(j)
    rows.site.append(int(latent.site[j]))
    rows.pos.append(np.round(np.clip(moved, _BOX_LO, _BOX_HI), 1))
    rows.diameter.append(float(_round1(np.array([latent.diameter_cm[j] * g]))[0]))


def _add_new_row(rows: _Rows, rng: np.random.Generator, latent: LatentCohort, sites: _Sites, i: int, day: int,
                 base_pos: np.ndarray, base_r: np.ndarray) -> None:
    """A new-lesion row for patient ``i``: a site from the site table, placed at least
    ``failure.de_novo_margin_mm`` away from every baseline lesion sphere."""
    fa = latent.params.failure
    k, side = sites.draw_site(rng)
    log_d = math.log(fa.de_novo_diameter_median_cm) + fa.de_novo_diameter_log_sd * float(_normal(rng, 1)[0])
    d = float(_round1(np.array([math.exp(log_d)]))[0])
    p = _place(rng, sites, k, side, d * 5.0, base_pos, base_r, fa.de_novo_margin_mm)
    rows.patient.append(i)
    rows.day.append(day)
    rows.lesion.append(-1)
    rows.site.append(k)
    rows.pos.append(np.round(p, 1))
    rows.diameter.append(d)


def _failure_rows(latent: LatentCohort, sites: _Sites, positions: np.ndarray) -> _Rows:
    """Rows of failures.csv: first progression (local + de novo, some at a confirmation scan within the
    window) and, for some patients, a later scan outside the window."""
    fa = latent.params.failure
    rng = _rng(latent.seed, "failure_rows")
    rows = _Rows()
    radius = latent.diameter_cm * 5.0
    first = np.concatenate(([0], np.cumsum(latent.n_lesions)[:-1]))
    for i in (int(x) for x in np.flatnonzero(latent.progressed & ~latent.unknown)):
        lo, hi = int(first[i]), int(first[i] + latent.n_lesions[i])
        base_pos, base_r = positions[lo:hi], radius[lo:hi]
        prog, last = int(latent.progression_day[i]), int(latent.last_followup_day[i])
        u = _uniform(rng, 5)

        # First progression: the first row is on the progression date; with a confirmation scan (within
        # the window and before the end of follow-up) each further row is seen there with probability
        # confirm_row_prob.
        failed = [j for j in range(lo, hi) if latent.local_failure[j]]
        n_rows = len(failed) + int(latent.n_de_novo[i])
        span = fa.confirm_scan_max_days - fa.confirm_scan_min_days + 1
        offset = fa.confirm_scan_min_days + int(u[1] * span)
        confirm = bool(u[0] < fa.confirm_scan_prob) and prog + offset <= last and n_rows >= 2
        days = [prog] + [prog + offset if confirm and v < fa.confirm_row_prob else prog
                         for v in _uniform(rng, n_rows - 1)]
        for r, j in enumerate(failed):
            _add_local_row(rows, rng, latent, positions, i, j, days[r])
        for r in range(int(latent.n_de_novo[i])):
            _add_new_row(rows, rng, latent, sites, i, days[len(failed) + r], base_pos, base_r)

        # A later scan, 31 to later_scan_max_days days after progression (outside the 30-day window of first
        # progression) and within follow-up: lesions that failed are seen again, others may fail, new ones.
        gap = min(last - prog, fa.later_scan_max_days)
        if u[2] < fa.later_scan_prob and gap >= 31:
            day = prog + 31 + int(u[3] * (gap - 31 + 1))
            failed_set = set(failed)
            v = _uniform(rng, hi - lo)
            for j in range(lo, hi):
                if v[j - lo] < (fa.later_reseen_prob if j in failed_set else fa.later_local_prob):
                    _add_local_row(rows, rng, latent, positions, i, j, day)
            for _ in range(int(_poisson(np.array([u[4]]), fa.later_de_novo_mean)[0])):
                _add_new_row(rows, rng, latent, sites, i, day, base_pos, base_r)
    return rows


# --------------------------------------------------------------------------------------------------------
# The study
# --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, eq=False)
class SimulatedStudy:
    """A simulated study: the three tables of the study-folder format and the truth behind them.

    Immutable: the table accessors return copies. Write it with :func:`pofa.simulate.write_study`.

    Attributes
    ----------
    params : SimulationParams
        The parameters used.
    seed : int
        The seed used.
    preset : str
        Name of the preset the parameters started from ("" when not known).
    method : str
        What made the data.
    """

    params: SimulationParams
    seed: int
    preset: str
    method: str
    _tables: dict[str, pd.DataFrame] = field(repr=False)

    @property
    def patients(self) -> pd.DataFrame:
        """The patients table.

        Returns
        -------
        pandas.DataFrame
            ``patient_id``, ``index_date``, ``last_followup_date``, ``progression_date``, ``death_date``
            (datetime64, NaT = blank), then the covariates ``age``, ``sex``, ``ldh_elevated``, ``ecog``.
        """
        return self._tables["patients"].copy()

    @property
    def lesions(self) -> pd.DataFrame:
        """One row per pretreatment lesion (booleans for yes/no columns).

        Returns
        -------
        pandas.DataFrame
            One row per pretreatment lesion (booleans for yes/no columns).
        """
        return self._tables["lesions"].copy()

    @property
    def failures(self) -> pd.DataFrame:
        """One row per lesion seen at a failure scan (``baseline_lesion_id`` missing = new lesion).

        Returns
        -------
        pandas.DataFrame
            One row per lesion seen at a failure scan (``baseline_lesion_id`` missing = new lesion).
        """
        return self._tables["failures"].copy()

    @property
    def patient_truth(self) -> pd.DataFrame:
        """Per patient: bulky, random effect, latent times (months), observed events, pattern, counts.

        Returns
        -------
        pandas.DataFrame
            Per patient: bulky, random effect, latent times (months), observed events, pattern, counts.
        """
        return self._tables["patient_truth"].copy()

    @property
    def lesion_truth(self) -> pd.DataFrame:
        """The true lesion-level quantities of the simulation.

        Returns
        -------
        pandas.DataFrame
            Per lesion: linear predictor, true P(local failure | progression), local failure at first
            progression, bulky / SUV / extranodal indicators used by the model.
        """
        return self._tables["lesion_truth"].copy()

    def summary(self) -> str:
        """One paragraph: counts of patients, lesions, progressions and patterns.

        Returns
        -------
        str
            One paragraph: counts of patients, lesions, progressions and patterns.
        """
        pt = self._tables["patient_truth"]
        counts = pt["pattern"].value_counts()
        prog = int(pt["progressed"].sum())
        parts = ", ".join(f"{p} {int(counts.get(p, 0))}" for p in PATTERNS[1:] if counts.get(p, 0))
        return (f"{len(pt)} patients, {len(self._tables['lesions'])} lesions, {prog} progressions "
                f"({parts or 'none'}), {int(pt['died'].sum())} deaths; {len(self._tables['failures'])} "
                f"failure rows (seed {self.seed}{', preset ' + self.preset if self.preset else ''}).")


def _rt_field(latent: LatentCohort, row_patient: np.ndarray, row_lesion: np.ndarray) -> np.ndarray:
    """The field class of each failure row (None in patients without bridging RT).

    Each irradiated lesion is in-field with probability ``failure.rt_in_field_prob`` (one uniform per lesion
    from its own stream, so every row of the lesion has the same class and no other stream moves), otherwise
    marginal; rows of unirradiated lesions and new lesions are out-of-field.
    """
    u = _uniform(_rng(latent.seed, "rt_field"), latent.lesion_patient.size)
    in_field = latent.bridging_rt & (u < latent.params.failure.rt_in_field_prob)
    out = np.full(row_patient.size, None, dtype=object)
    bridged = latent.bridging[row_patient] if row_patient.size else np.zeros(0, bool)
    j = np.maximum(row_lesion, 0)
    irradiated = (row_lesion >= 0) & latent.bridging_rt[j] if row_lesion.size else np.zeros(0, bool)
    out[bridged] = "out-of-field"
    out[bridged & irradiated] = np.where(in_field[j][bridged & irradiated], "in-field", "marginal")
    return out


def _dates(base: dt.date, index_day: np.ndarray, day: np.ndarray, present: np.ndarray) -> pd.Series:
    d = np.datetime64(base, "D") + (index_day + day).astype("timedelta64[D]")
    d = np.where(present, d, np.datetime64("NaT"))
    return pd.Series(d.astype("datetime64[ns]"))


def simulate(params: SimulationParams, seed: int, preset: str = "") -> SimulatedStudy:
    """Simulate one study.

    Parameters
    ----------
    params : SimulationParams
        Parameters (e.g. ``pofa.simulate.preset("figura2021")`` or :func:`pofa.simulate.load_params`).
    seed : int
        Non-negative whole number; the same (params, seed) always gives the same study.
    preset : str, optional
        Name of the preset ``params`` started from, recorded in the study (study.toml).

    Returns
    -------
    SimulatedStudy
        The three tables, the truth behind them, the parameters and the seed.

    Raises
    ------
    SettingsError
        For a negative or non-integer seed, or parameters whose values overflow (a combination of
        extreme settings within their separate bounds).
    """
    try:
        with np.errstate(over="ignore"):
            study = _simulate(params, seed, preset)
    except OverflowError:
        raise SettingsError("the simulation parameters produce numbers too large to represent (overflow): "
                            "bring the log-scale means and SDs, medians and rates back to a clinical scale "
                            "(docs/simulation.md)") from None
    for name, table in study._tables.items():
        values = table.select_dtypes("number").to_numpy(dtype=float, na_value=np.nan)
        if np.isinf(values).any():
            raise SettingsError(f"the simulation parameters produce infinite values in the {name} table "
                                "(overflow): bring the log-scale means and SDs, medians and rates back to a "
                                "clinical scale (docs/simulation.md)")
    return study


def _simulate(params: SimulationParams, seed: int, preset: str) -> SimulatedStudy:
    """:func:`simulate` without its overflow checks."""
    latent = draw_latent(params, seed)
    sites = _Sites(params)
    positions = _baseline_positions(latent, sites)
    rows = _failure_rows(latent, sites, positions)
    fu = params.followup
    n = latent.n

    width = max(3, len(str(n)))
    pid = np.array([f"{params.cohort.patient_id_prefix}{i + 1:0{width}d}" for i in range(n)], dtype=object)
    lwidth = max(2, len(str(int(latent.n_lesions.max()))))
    lid = np.array([f"L{j + 1:0{lwidth}d}" for j in latent.lesion_index], dtype=object)
    zero = np.zeros(n, dtype=np.int64)
    patients = pd.DataFrame({
        "patient_id": pid,
        "index_date": _dates(fu.accrual_start, latent.index_day, zero, np.ones(n, bool)),
        "last_followup_date": _dates(fu.accrual_start, latent.index_day, latent.last_followup_day,
                                     np.ones(n, bool)),
        "progression_date": _dates(fu.accrual_start, latent.index_day, latent.progression_day,
                                   latent.progressed),
        "death_date": _dates(fu.accrual_start, latent.index_day, latent.death_day, latent.died),
        "age": latent.age,
        "sex": np.where(latent.male, "M", "F").astype(object),
        "ldh_elevated": latent.ldh_elevated,
        "ecog": latent.ecog,
    })
    site_names = np.array(sites.names, dtype=object)
    lp = latent.lesion_patient
    lesions = pd.DataFrame({
        "patient_id": pid[lp],
        "lesion_id": lid,
        "site": site_names[latent.site],
        "extranodal": latent.extranodal,
        "diameter_cm": latent.diameter_cm,
        "suvmax": latent.suvmax,
        "x_mm": positions[:, 0],
        "y_mm": positions[:, 1],
        "z_mm": positions[:, 2],
        "mtv_ml": latent.mtv_ml,
        "tlg": latent.tlg,
        "bridging_rt": latent.bridging_rt,
    })

    rp = np.array(rows.patient, dtype=np.int64)
    rday = np.array(rows.day, dtype=np.int64)
    rles = np.array(rows.lesion, dtype=np.int64)
    order = np.lexsort((np.arange(rp.size), rday, rp))  # by patient, then scan date, then drawing order
    rp, rday, rles = rp[order], rday[order], rles[order]
    rpos = np.array(rows.pos, dtype=float).reshape(-1, 3)[order]
    rsite = np.array(rows.site, dtype=np.int64)[order]
    fid_num = np.arange(rp.size) - np.searchsorted(rp, rp, side="left") + 1
    fa = params.failure
    failures = pd.DataFrame({
        "patient_id": pid[rp] if rp.size else np.array([], dtype=object),
        "failure_id": np.array([f"F{k}" for k in fid_num], dtype=object),
        "scan_date": _dates(fu.accrual_start, latent.index_day[rp], rday, np.ones(rp.size, bool)),
        "baseline_lesion_id": np.where(rles >= 0, lid[np.maximum(rles, 0)] if lid.size else "",
                                       np.array(None, dtype=object)),
        "site": site_names[rsite] if rsite.size else np.array([], dtype=object),
        "extranodal": sites.extranodal[rsite] if rsite.size else np.array([], dtype=bool),
        "x_mm": rpos[:, 0],
        "y_mm": rpos[:, 1],
        "z_mm": rpos[:, 2],
        "diameter_cm": np.array(rows.diameter, dtype=float)[order],
    })
    if fa.bridging_rt_prob > 0:
        failures["rt_field"] = _rt_field(latent, rp, rles)
    patient_truth = pd.DataFrame({
        "patient_id": pid,
        "n_lesions": latent.n_lesions,
        "bulky": latent.bulky,
        "bridging": latent.bridging,
        "random_effect": latent.random_effect,
        "progression_latent_months": latent.progression_months,
        "death_latent_months": latent.death_months,
        "progresses": latent.progresses,
        "censoring_months": latent.censor_day / DAYS_PER_MONTH,
        "progressed": latent.progressed,
        "died": latent.died,
        "pattern": latent.pattern,
        "n_local_failures": latent.n_local,
        "n_de_novo": latent.n_de_novo,
    })
    lesion_truth = pd.DataFrame({
        "patient_id": pid[lp],
        "lesion_id": lid,
        "bulky": latent.diameter_cm >= fa.bulky_cm,
        "suv_high": latent.suvmax >= fa.suv_cut,
        "extranodal": latent.extranodal,
        "bridging_rt": latent.bridging_rt,
        "linear_predictor": latent.linear_predictor,
        "p_local_given_progression": latent.p_local,
        "local_failure": latent.local_failure,
    })
    tables = {"patients": patients, "lesions": lesions, "failures": failures, "patient_truth": patient_truth,
              "lesion_truth": lesion_truth}
    method = ("pofa.simulate generative model (random-intercept logistic lesion failure given progression, "
              "Weibull illness-death survival, uniform accrual with administrative and exponential "
              "censoring)")
    return SimulatedStudy(params=params, seed=int(seed), preset=preset, method=method, _tables=tables)
