"""Vectorised generation of many replicate datasets of a planned study at once.

Each function draws ``n_replicates`` independent studies of ``n_patients`` patients from a numpy
``SeedSequence`` in a fixed order of draws (the same seed gives the same data), as flat arrays: the patients
of replicate ``r`` are ``r * n_patients ... (r + 1) * n_patients - 1`` and its lesions a contiguous block
(``lesion_start[r]:lesion_start[r + 1]``), so there is no Python loop over patients or lesions (only over
blocks of :data:`PATIENT_BLOCK` patients, which give common random numbers across sample sizes).
The models are described in :mod:`pofa.power.design` and docs/power.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from pofa.power.design import LesionDistribution, LesionOutcome, SimulatorOutcome, SurvivalOutcome
from pofa.power.marginal import LesionTruth
from pofa.units import DAYS_PER_MONTH

__all__ = [
    "LesionReplicates",
    "SimulatorReplicates",
    "SurvivalReplicates",
    "draw_lesion_replicates",
    "draw_simulator_replicates",
    "draw_survival_replicates",
    "lesions_per_patient",
    "PATIENT_BLOCK",
]

#: Patients per block of random draws (see :func:`draw_lesion_replicates`). Part of the seed's meaning:
#: never change it.
PATIENT_BLOCK = 16
#: Largest cohort drawn by one call of the simulator (its own limit on ``cohort.n_patients``).
_SIMULATOR_MAX_PATIENTS = 1_000_000


def _offsets(sizes: np.ndarray, n_replicates: int) -> np.ndarray:
    per_rep = sizes.reshape(n_replicates, -1).sum(axis=1)
    return np.concatenate(([0], np.cumsum(per_rep))).astype(np.int64)


def lesions_per_patient(outcome: LesionOutcome, n: int, rng: np.random.Generator) -> np.ndarray:
    """Number of lesions of ``n`` patients (``outcome.lesions_distribution``; at least 1 each).

    Parameters
    ----------
    outcome : LesionOutcome
        The lesion outcome model (its ``lesions_distribution``).
    n : int
        Number of patients.
    rng : numpy.random.Generator
        Random generator.

    Returns
    -------
    numpy.ndarray
        Lesions of each patient (integers >= 1).
    """
    m = outcome.lesions_mean
    if outcome.lesions_distribution is LesionDistribution.FIXED or m == 1.0:
        return np.full(n, int(round(m)), dtype=np.int64)
    if outcome.lesions_distribution is LesionDistribution.POISSON:
        return 1 + rng.poisson(m - 1.0, n).astype(np.int64)
    k = outcome.lesions_dispersion
    return 1 + rng.negative_binomial(k, k / (k + m - 1.0), n).astype(np.int64)


@dataclass(frozen=True, slots=True, eq=False)
class LesionReplicates:
    """Replicates of a lesion-level study (flat arrays over all lesions of all replicates).

    Attributes
    ----------
    y : ndarray of float (0/1)
        Outcome of each lesion.
    x : ndarray of float (0/1)
        Binary factor of each lesion.
    patient : ndarray of int
        Patient index (0 ... ``n_replicates * n_patients - 1``), non-decreasing.
    lesion_start : ndarray of int, shape (n_replicates + 1,)
        Lesions of replicate ``r`` are ``lesion_start[r]:lesion_start[r + 1]``.
    n_patients, n_replicates : int
        Patients per replicate and replicates.
    """

    y: np.ndarray
    x: np.ndarray
    patient: np.ndarray
    lesion_start: np.ndarray
    n_patients: int
    n_replicates: int

    def replicate(self, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(y, X, groups)`` of replicate ``r``: ``X`` has an intercept column and the factor.

        Parameters
        ----------
        r : int
            Replicate index.

        Returns
        -------
        tuple of (numpy.ndarray, numpy.ndarray, numpy.ndarray)
            ``(y, X, groups)`` of replicate ``r``: ``X`` has an intercept column and the factor.
        """
        a, b = int(self.lesion_start[r]), int(self.lesion_start[r + 1])
        X = np.column_stack([np.ones(b - a), self.x[a:b]])
        return self.y[a:b], X, self.patient[a:b]


def _block_rngs(seed: np.random.SeedSequence, n_patients: int) -> list[np.random.Generator]:
    """One generator per block of :data:`PATIENT_BLOCK` patients: ``seed``'s children keyed by block."""
    n_blocks = -(-n_patients // PATIENT_BLOCK)
    return [np.random.Generator(np.random.PCG64(np.random.SeedSequence(
        seed.entropy, spawn_key=(*seed.spawn_key, b)))) for b in range(n_blocks)]


def draw_lesion_replicates(outcome: LesionOutcome, truth: LesionTruth, n_patients: int, n_replicates: int,
                           seed: np.random.SeedSequence) -> LesionReplicates:
    """Draw ``n_replicates`` lesion-level studies of ``n_patients`` patients.

    Patients come in blocks of :data:`PATIENT_BLOCK`, each block from its own child of ``seed`` (order of
    draws in a block: lesions per patient, patient random intercepts, patient factor effects, then per lesion
    the factor term and the outcome uniform); the last block is cut to ``n_patients``. So the first N patients
    of every replicate are the same whatever ``n_patients >= N`` is (common random numbers across sample
    sizes), and the same for every odds ratio.

    Parameters
    ----------
    outcome : LesionOutcome
        The lesion outcome model.
    truth : LesionTruth
        Its conditional parameters (:func:`pofa.power.marginal.lesion_truth`).
    n_patients, n_replicates : int
        Patients per replicate and replicates drawn.
    seed : numpy.random.SeedSequence
        Seed of the draws.

    Returns
    -------
    LesionReplicates
        Outcome, factor and patient of every lesion of every replicate.
    """
    R, N, B = n_replicates, n_patients, PATIENT_BLOCK
    sizes_b, z_b, a_b, e_b, u_b, key_b = [], [], [], [], [], []
    for b, rng in enumerate(_block_rngs(seed, N)):
        sizes = lesions_per_patient(outcome, R * B, rng).reshape(R, B)
        z = rng.standard_normal((R, B))
        a = rng.standard_normal((R, B))
        n_les = int(sizes.sum())
        e = rng.standard_normal(n_les)
        u = rng.random(n_les)
        j = b * B + np.arange(B)  # patient number within its replicate
        keep = j < N
        les_rep = np.repeat(np.repeat(np.arange(R), B), sizes.ravel())
        les_j = np.repeat(np.tile(j, R), sizes.ravel())
        mask = les_j < N
        sizes_b.append(sizes[:, keep])
        z_b.append(z[:, keep])
        a_b.append(a[:, keep])
        e_b.append(e[mask])
        u_b.append(u[mask])
        key_b.append(les_rep[mask] * N + les_j[mask])
    sizes = np.hstack(sizes_b)
    z = np.hstack(z_b).ravel()
    a = np.hstack(a_b).ravel()
    key = np.concatenate(key_b)
    order = np.argsort(key, kind="stable")  # replicate, then patient; a patient's lesions keep their order
    patient = key[order]
    e = np.concatenate(e_b)[order]
    u = np.concatenate(u_b)[order]
    r = outcome.factor_icc
    threshold = -float(special.ndtri(outcome.prevalence))  # P(N(0,1) > threshold) = prevalence
    x = (math.sqrt(r) * a[patient] + math.sqrt(1.0 - r) * e) > threshold
    eta = truth.intercept + truth.log_or_conditional * x + outcome.patient_sd * z[patient]
    y = u < special.expit(eta)
    return LesionReplicates(y=y.astype(float), x=x.astype(float), patient=patient,
                            lesion_start=_offsets(sizes.ravel(), n_replicates), n_patients=n_patients,
                            n_replicates=n_replicates)


@dataclass(frozen=True, slots=True, eq=False)
class SurvivalReplicates:
    """Replicates of a patient-level survival study, arrays of shape ``(n_replicates, n_patients)``.

    Attributes
    ----------
    time : ndarray of float
        Follow-up time (months) to the event or censoring.
    event : ndarray of bool
        Event observed.
    x : ndarray of float (0/1)
        Binary patient factor.
    """

    time: np.ndarray
    event: np.ndarray
    x: np.ndarray

    @property
    def n_replicates(self) -> int:
        """Number of replicates.

        Returns
        -------
        int
            Rows of the time arrays.
        """
        return int(self.time.shape[0])


def draw_survival_replicates(outcome: SurvivalOutcome, n_patients: int, n_replicates: int,
                             seed: np.random.SeedSequence) -> SurvivalReplicates:
    """Draw ``n_replicates`` survival studies of ``n_patients`` patients.

    Blocks of patients as :func:`draw_lesion_replicates` (common random numbers across sample sizes); order
    of draws in a block: factor uniforms, event-time exponentials, entry uniforms, dropout exponentials.

    Parameters
    ----------
    outcome : SurvivalOutcome
        The survival outcome model.
    n_patients : int
        Patients per replicate.
    n_replicates : int
        Replicates drawn.
    seed : np.random.SeedSequence
        Seed of the draws.

    Returns
    -------
    SurvivalReplicates
        Follow-up times, event indicators and factors, one row per replicate.
    """
    R, B = n_replicates, PATIENT_BLOCK
    parts = []
    for rng in _block_rngs(seed, n_patients):
        parts.append((rng.random((R, B)), rng.standard_exponential((R, B)), rng.random((R, B)),
                      rng.standard_exponential((R, B))))
    u_x, e_event, u_entry, e_drop = (np.hstack([p[k] for p in parts])[:, :n_patients] for k in range(4))
    x = u_x < outcome.prevalence
    k = outcome.weibull_shape
    rate = math.log(2.0) ** (1.0 / k) / outcome.median_months  # S0(t) = exp(-(rate t)^k), S0(median) = 1/2
    hr = np.where(x, outcome.hazard_ratio, 1.0)
    t_event = (e_event / hr) ** (1.0 / k) / rate
    entry = u_entry * outcome.accrual_months
    admin = outcome.accrual_months + outcome.followup_months - entry  # inf when follow-up is inf
    monthly = outcome.dropout_per_year / 12.0
    dropout = e_drop / monthly if monthly > 0 else np.full(e_drop.shape, np.inf)
    censor = np.minimum(admin, dropout)
    event = t_event <= censor
    time = np.where(event, t_event, censor)
    return SurvivalReplicates(time=time, event=event, x=x.astype(float))


@dataclass(frozen=True, slots=True, eq=False)
class SimulatorReplicates:
    """Replicates drawn by the cohort simulator, reduced to what the tests of Figura et al. need.

    Lesion arrays are flat over all replicates (``lesion_start`` as :class:`LesionReplicates`); patient
    arrays have shape ``(n_replicates, n_patients)``.
    """

    local_failure: np.ndarray
    bulky: np.ndarray
    suv_high: np.ndarray
    extranodal: np.ndarray
    patient: np.ndarray
    lesion_start: np.ndarray
    pfs_months: np.ndarray
    pfs_event: np.ndarray
    patient_bulky: np.ndarray
    n_patients: int
    n_replicates: int
    bridging_rt: np.ndarray | None = None

    def lesions(self, r: int) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """Lesion data of replicate ``r``.

        Parameters
        ----------
        r : int
            Replicate index.

        Returns
        -------
        tuple of (numpy.ndarray, dict of {str: numpy.ndarray}, numpy.ndarray)
            ``(y, {factor: x}, groups)``: local failure, the binary factors by name and the patient of each
            lesion.
        """
        a, b = int(self.lesion_start[r]), int(self.lesion_start[r + 1])
        factors = {"bulky": self.bulky[a:b], "suv_high": self.suv_high[a:b],
                   "extranodal": self.extranodal[a:b]}
        if self.bridging_rt is not None:
            factors["bridging_rt"] = self.bridging_rt[a:b]
        return self.local_failure[a:b], factors, self.patient[a:b]


def draw_simulator_replicates(outcome: SimulatorOutcome, n_patients: int, n_replicates: int,
                              seed: np.random.SeedSequence) -> SimulatorReplicates:
    """Draw ``n_replicates`` cohorts of ``n_patients`` with the simulator.

    Patients of the simulator are independent and identically distributed, so one call of
    :func:`pofa.simulate.generator.draw_latent` with ``n_replicates * n_patients`` patients (its integer seed
    drawn from ``seed``) gives all replicates at once; cohorts above the simulator's 1,000,000-patient limit
    are drawn in several calls. The simulator lays out its draws by cohort size, so (unlike the planned-study
    generators) cohorts of different sizes share no random numbers.

    Parameters
    ----------
    outcome : SimulatorOutcome
        The simulator outcome (parameters and tests).
    n_patients : int
        Patients per cohort.
    n_replicates : int
        Cohorts drawn.
    seed : np.random.SeedSequence
        Seed of the draws.

    Returns
    -------
    SimulatorReplicates
        Lesion factors, local failure and PFS of every cohort.
    """
    from pofa.simulate.generator import draw_latent

    rng = np.random.Generator(np.random.PCG64(seed))
    fa = outcome.params.failure
    per_call = max(1, _SIMULATOR_MAX_PATIENTS // n_patients)
    parts = []
    done = 0
    while done < n_replicates:
        k = min(per_call, n_replicates - done)
        params = outcome.params.with_values({"cohort.n_patients": k * n_patients})
        parts.append(draw_latent(params, int(rng.integers(0, 2**63 - 1))))
        done += k
    n_lesions = np.concatenate([p.n_lesions for p in parts])
    diameter = np.concatenate([p.diameter_cm for p in parts])
    suvmax = np.concatenate([p.suvmax for p in parts])
    extranodal = np.concatenate([p.extranodal for p in parts])
    local = np.concatenate([p.local_failure for p in parts])
    progressed = np.concatenate([p.progressed for p in parts])
    died = np.concatenate([p.died for p in parts])
    prog_day = np.concatenate([p.progression_day for p in parts])
    last_day = np.concatenate([p.last_followup_day for p in parts])
    bulky_patient = np.concatenate([p.bulky for p in parts])
    pfs_day = np.where(progressed, prog_day, last_day)
    shape = (n_replicates, n_patients)
    return SimulatorReplicates(
        local_failure=local.astype(float),
        bulky=(diameter >= fa.bulky_cm).astype(float),
        suv_high=(suvmax >= fa.suv_cut).astype(float),
        extranodal=extranodal.astype(float),
        patient=np.repeat(np.arange(n_lesions.size, dtype=np.int64), n_lesions),
        lesion_start=_offsets(n_lesions, n_replicates),
        pfs_months=(pfs_day / DAYS_PER_MONTH).reshape(shape),
        pfs_event=(progressed | died).reshape(shape),
        patient_bulky=bulky_patient.astype(float).reshape(shape),
        n_patients=n_patients,
        n_replicates=n_replicates,
        bridging_rt=np.concatenate([p.bridging_rt for p in parts]).astype(float),
    )
