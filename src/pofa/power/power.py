"""Power and sample size by simulation, with Monte Carlo error.

:func:`power` simulates ``replicates`` studies of a :class:`~pofa.power.design.PlannedStudy`, analyses each as
pofa would (GEE Wald test of a lesion factor, as ``geepack::geeglm``; Cox Wald test of a patient factor, as
``survival::coxph``) and reports the share of studies rejecting H0 at level alpha, with its Monte Carlo SE
and a Clopper-Pearson 95% interval (``binom.test`` in R). :func:`sample_size` searches the smallest number
of patients whose simulated power reaches a target.

Determinism. The replicates are cut into chunks of ``chunk_size``; chunk ``c`` draws from
``numpy.random.SeedSequence(seed).spawn(n_chunks)[c]``. The numbers therefore depend on (study, replicates,
seed, chunk_size) only, never on the number of workers or the order in which chunks finish. Within a chunk
the planned-study generators draw patients in blocks with their own seeds (:mod:`pofa.power.simulate`), so
the study with N patients is the first N patients of the study with N + 1 (common random numbers): the
simulated power curve is smooth in N and a sample-size search is stable.

Not estimable. A replicate whose model cannot be fitted (GEE not converging or separated, a factor absent in
a replicate, no events) counts as not rejecting H0, as the study would report no significant effect; the
number of such replicates is reported with every power.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from pofa.errors import EstimationError, SettingsError
from pofa.power.dask_runner import ChunkRunner
from pofa.power.design import LesionOutcome, PlannedStudy, SimulatorOutcome, SurvivalOutcome
from pofa.power.marginal import lesion_truth
from pofa.power.simulate import draw_lesion_replicates, draw_simulator_replicates, draw_survival_replicates

__all__ = [
    "ChunkResult",
    "PowerEstimate",
    "PowerResult",
    "SampleSizeResult",
    "analyses",
    "chunk_plan",
    "crossing",
    "power",
    "run_chunk",
    "sample_size",
    "search_smallest_n",
]

GEE_TEST = ("GEE (logit link, exchangeable working correlation, patients as clusters), robust sandwich SE "
            "(geepack::geeglm), two-sided Wald test")
GEE_MD_TEST = ("GEE (logit link, exchangeable working correlation, patients as clusters), Mancl-DeRouen "
               "bias-reduced sandwich SE, two-sided Wald test")
COX_TEST = "Cox proportional hazards, Efron ties (survival::coxph), two-sided Wald test"
POWER_METHOD = ("share of simulated studies rejecting H0 (not estimable = not rejected); Monte Carlo SE "
                "sqrt(p(1 - p)/R); Clopper-Pearson 95% CI (binom.test)")

#: Figura et al. 2021's tests of a simulator cohort: (label, lesion factor or None for the Cox model).
_SIMULATOR_TESTS = (
    ("local failure: diameter >= {bulky:g} cm (GEE)", "bulky"),
    ("local failure: SUVmax >= {suv:g} (GEE)", "suv_high"),
    ("local failure: extranodal (GEE)", "extranodal"),
    ("PFS: any lesion >= {bulky:g} cm (Cox)", None),
)


def analyses(study: PlannedStudy) -> tuple[str, ...]:
    """Name the tests run on each replicate of ``study`` (one per :class:`PowerEstimate`).

    Parameters
    ----------
    study : PlannedStudy
        The planned study.

    Returns
    -------
    tuple of str
        One label per test, in the order of the estimates.
    """
    o = study.outcome
    if isinstance(o, LesionOutcome):
        return ("lesion factor (GEE)",)
    if isinstance(o, SurvivalOutcome):
        return ("patient factor (Cox)",)
    fa = o.params.failure
    return tuple(label.format(bulky=fa.bulky_cm, suv=fa.suv_cut) for label, _ in _simulator_tests(o))


def _simulator_tests(o: SimulatorOutcome) -> tuple[tuple[str, str | None], ...]:
    tests = _SIMULATOR_TESTS if o.include_pfs else _SIMULATOR_TESTS[:3]
    if o.params.failure.bridging_rt_prob > 0:  # cohorts with bridging RT: its GEE comes last
        tests = (*tests, ("local failure: bridging RT (GEE)", "bridging_rt"))
    return tests


def _methods(study: PlannedStudy) -> tuple[str, ...]:
    o = study.outcome
    gee = GEE_MD_TEST if getattr(o, "small_sample", False) else GEE_TEST
    if isinstance(o, LesionOutcome):
        return (gee,)
    if isinstance(o, SurvivalOutcome):
        return (COX_TEST,)
    return tuple(COX_TEST if name is None else gee for _, name in _simulator_tests(o))


def _true_effects(study: PlannedStudy) -> tuple[float | None, ...]:
    o = study.outcome
    if isinstance(o, LesionOutcome):
        return (lesion_truth(o).log_or_marginal,)
    if isinstance(o, SurvivalOutcome):
        return (math.log(o.hazard_ratio),)
    return (None,) * len(_simulator_tests(o))


# --------------------------------------------------------------------------------------------------------
# One chunk of replicates (runs on a worker)
# --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, eq=False)
class ChunkResult:
    """Estimates of one chunk of replicates.
    """

    estimate: np.ndarray
    se: np.ndarray
    n_lesions: int


def _gee(y: np.ndarray, x: np.ndarray, groups: np.ndarray, small_sample: bool) -> tuple[float, float]:
    from pofa.stats.gee import gee_exchangeable_logit

    # A factor or outcome constant in the replicate has no estimable OR (the GEE information is singular or
    # the fit diverges); skip the fit.
    if x.min() == x.max() or y.min() == y.max():
        return math.nan, math.nan
    X = np.column_stack([np.ones(x.size), x])
    fit = gee_exchangeable_logit(y, X, groups, bias_reduced=small_sample)
    if not fit.converged:
        return math.nan, math.nan
    se = fit.bse_md if small_sample else fit.bse
    assert se is not None
    return float(fit.params[1]), float(se[1])


def _cox(time_: np.ndarray, event: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    import pandas as pd

    from pofa.stats.cox import cox_ph

    if not event.any() or x.min() == x.max():
        return math.nan, math.nan
    try:
        fit = cox_ph(time_, event.astype(float), pd.DataFrame({"x": x}))
    except EstimationError:  # monotone likelihood (e.g. no events in one group)
        return math.nan, math.nan
    return float(fit.coef[0]), float(fit.std_err[0])


def run_chunk(study: PlannedStudy, n_replicates: int, seed: np.random.SeedSequence) -> ChunkResult:
    """Simulate and analyse ``n_replicates`` studies from ``seed`` (a task of :func:`power`).

    Parameters
    ----------
    study : PlannedStudy
        The planned study.
    n_replicates : int
        Replicates in this chunk.
    seed : np.random.SeedSequence
        Seed of this chunk.

    Returns
    -------
    ChunkResult
        Estimates and standard errors (replicates x tests) and the number of lesions drawn.
    """
    o = study.outcome
    N = study.n_patients
    if isinstance(o, LesionOutcome):
        reps = draw_lesion_replicates(o, lesion_truth(o), N, n_replicates, seed)
        est = np.full((n_replicates, 1), np.nan)
        se = np.full((n_replicates, 1), np.nan)
        for r in range(n_replicates):
            a, b = int(reps.lesion_start[r]), int(reps.lesion_start[r + 1])
            est[r, 0], se[r, 0] = _gee(reps.y[a:b], reps.x[a:b], reps.patient[a:b], o.small_sample)
        return ChunkResult(est, se, int(reps.y.size))
    if isinstance(o, SurvivalOutcome):
        srv = draw_survival_replicates(o, N, n_replicates, seed)
        est = np.full((n_replicates, 1), np.nan)
        se = np.full((n_replicates, 1), np.nan)
        for r in range(n_replicates):
            est[r, 0], se[r, 0] = _cox(srv.time[r], srv.event[r], srv.x[r])
        return ChunkResult(est, se, 0)
    sim = draw_simulator_replicates(o, N, n_replicates, seed)
    tests = _simulator_tests(o)
    est = np.full((n_replicates, len(tests)), np.nan)
    se = np.full((n_replicates, len(tests)), np.nan)
    for r in range(n_replicates):
        y, factors, groups = sim.lesions(r)
        for j, (_, name) in enumerate(tests):
            if name is None:
                est[r, j], se[r, j] = _cox(sim.pfs_months[r], sim.pfs_event[r], sim.patient_bulky[r])
            else:
                est[r, j], se[r, j] = _gee(y, factors[name], groups, o.small_sample)
    return ChunkResult(est, se, int(sim.local_failure.size))


# --------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PowerEstimate:
    """Simulated power of one test.

    Attributes
    ----------
    test : str
        What is tested (e.g. ``"lesion factor (GEE)"``).
    method : str
        The test, in words (model, SE, Wald test).
    n_replicates, n_rejected, n_not_estimable : int
        Simulated studies, those rejecting H0 at ``alpha`` and those whose model was not estimable (counted as
        not rejecting).
    power : float
        ``n_rejected / n_replicates``.
    mc_se : float
        Monte Carlo SE of ``power``, ``sqrt(power (1 - power) / n_replicates)``.
    ci_low, ci_high : float
        Clopper-Pearson 95% interval of the power (``binom.test``).
    mean_estimate : float
        exp(mean log OR or log HR) over estimable replicates.
    sd_log_estimate, mean_se : float
        Empirical SD of the log estimates and mean of their SEs (estimable replicates).
    true_effect : float or None
        True marginal OR (lesion model) or HR (survival model); ``None`` for simulator cohorts.
    """

    test: str
    method: str
    n_replicates: int
    n_rejected: int
    n_not_estimable: int
    power: float
    mc_se: float
    ci_low: float
    ci_high: float
    mean_estimate: float
    sd_log_estimate: float
    mean_se: float
    true_effect: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (non-finite numbers as ``None``).

        Returns
        -------
        dict of {str: object}
            The fields by name.
        """
        from pofa.stats.results import json_number

        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = json_number(v) if isinstance(v, float) else v
        return out


def _rejections(est: np.ndarray, se: np.ndarray, alpha: float) -> np.ndarray:
    """Two-sided Wald test at level ``alpha``: ``|est / se| > z_(1 - alpha/2)``; not estimable = False."""
    ok = np.isfinite(est) & np.isfinite(se) & (se > 0)
    zcrit = float(stats.norm.ppf(1.0 - alpha / 2.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        rejected: np.ndarray = ok & (np.abs(est / np.where(ok, se, 1.0)) > zcrit)
    return rejected


def _test_power(label: str, method: str, est: np.ndarray, se: np.ndarray, reject: np.ndarray,
                true_log: float | None) -> PowerEstimate:
    R = int(est.size)
    ok = np.isfinite(est) & np.isfinite(se) & (se > 0)
    k = int(reject.sum())
    p = k / R
    ci = stats.binomtest(k, R).proportion_ci(confidence_level=0.95, method="exact")
    n_ok = int(ok.sum())
    return PowerEstimate(
        test=label,
        method=method,
        n_replicates=R,
        n_rejected=k,
        n_not_estimable=R - n_ok,
        power=p,
        mc_se=math.sqrt(p * (1.0 - p) / R),
        ci_low=float(ci.low),
        ci_high=float(ci.high),
        mean_estimate=float(np.exp(est[ok].mean())) if n_ok else math.nan,
        sd_log_estimate=float(est[ok].std(ddof=1)) if n_ok > 1 else math.nan,
        mean_se=float(se[ok].mean()) if n_ok else math.nan,
        true_effect=None if true_log is None else math.exp(true_log),
    )


@dataclass(frozen=True, slots=True, eq=False)
class PowerResult:
    """Simulated power of a planned study (immutable).

    Attributes
    ----------
    study : PlannedStudy
    tests : tuple of PowerEstimate
        One per test run on each replicate (one, or four for simulator cohorts).
    n_replicates, seed, chunk_size : int
        What determines the numbers (with the study).
    mean_lesions_per_patient : float or None
        Observed mean over all replicates (lesion models).
    runner : str
        Where the chunks ran (does not change the numbers).
    elapsed_s : float
    estimates, std_errors : ndarray, shape (n_replicates, tests)
        Log OR / log HR and its SE of every replicate (``nan`` = not estimable), read-only.
    rejected : ndarray of bool, shape (n_replicates, tests)
        Whether each replicate rejected H0.
    method : str
    """

    study: PlannedStudy
    tests: tuple[PowerEstimate, ...]
    n_replicates: int
    seed: int
    chunk_size: int
    mean_lesions_per_patient: float | None
    runner: str
    elapsed_s: float
    estimates: np.ndarray = dataclasses.field(repr=False)
    std_errors: np.ndarray = dataclasses.field(repr=False)
    rejected: np.ndarray = dataclasses.field(repr=False)
    method: str = POWER_METHOD

    @property
    def n_patients(self) -> int:
        """Number of patients per simulated study.

        Returns
        -------
        int
            ``study.n_patients``.
        """
        return self.study.n_patients

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (the study as :meth:`PlannedStudy.to_dict`).

        Returns
        -------
        dict of {str: object}
            The fields by name.
        """
        return {
            "n_patients": self.n_patients,
            "study": self.study.to_dict(),
            "tests": [t.to_dict() for t in self.tests],
            "n_replicates": self.n_replicates,
            "seed": self.seed,
            "chunk_size": self.chunk_size,
            "mean_lesions_per_patient": self.mean_lesions_per_patient,
            "runner": self.runner,
            "elapsed_s": round(self.elapsed_s, 3),
            "method": self.method,
        }


def _check_run(replicates: int, seed: int, chunk_size: int) -> None:
    if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 2:
        raise SettingsError(f"replicates = {replicates!r} must be a whole number >= 2 (1000 or more for a "
                            "Monte Carlo SE of power below 1.6 percentage points)")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SettingsError(f"seed = {seed!r} must be a whole number >= 0")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise SettingsError(f"chunk size = {chunk_size!r} must be a whole number >= 1")


def chunk_plan(replicates: int, seed: int, chunk_size: int) -> list[tuple[int, np.random.SeedSequence]]:
    """Split ``replicates`` into chunks, each with its own seed.

    Parameters
    ----------
    replicates : int
        Total replicates.
    seed : int
        Seed (>= 0).
    chunk_size : int
        Replicates per chunk.

    Returns
    -------
    list of tuple of (int, np.random.SeedSequence)
        ``(replicates, seed)`` of each chunk: ``SeedSequence(seed).spawn(n_chunks)[c]`` for chunk c.
    """
    sizes = [min(chunk_size, replicates - start) for start in range(0, replicates, chunk_size)]
    return list(zip(sizes, np.random.SeedSequence(seed).spawn(len(sizes)), strict=True))


def _power_with(runner: ChunkRunner, study: PlannedStudy, replicates: int, seed: int,
                chunk_size: int) -> PowerResult:
    t0 = time.perf_counter()
    plan = chunk_plan(replicates, seed, chunk_size)
    chunks: list[ChunkResult] = runner.map(run_chunk, [(study, n, ss) for n, ss in plan],
                                           [n for n, _ in plan], description=f"N = {study.n_patients}")
    est = np.concatenate([c.estimate for c in chunks], axis=0)
    se = np.concatenate([c.se for c in chunks], axis=0)
    labels, methods, truths = analyses(study), _methods(study), _true_effects(study)
    reject = _rejections(est, se, study.alpha)
    tests = tuple(_test_power(labels[j], methods[j], est[:, j], se[:, j], reject[:, j], truths[j])
                  for j in range(est.shape[1]))
    lesions = sum(c.n_lesions for c in chunks)
    mean_lesions = lesions / (replicates * study.n_patients) if lesions else None
    for a in (est, se, reject):
        a.setflags(write=False)
    return PowerResult(study=study, tests=tests, n_replicates=replicates, seed=seed, chunk_size=chunk_size,
                       mean_lesions_per_patient=mean_lesions, runner=runner.description,
                       elapsed_s=time.perf_counter() - t0, estimates=est, std_errors=se, rejected=reject)


def power(study: PlannedStudy, *, replicates: int = 1000, seed: int = 0, chunk_size: int = 50,
          workers: int = 0, scheduler: str | None = None, progress: bool = False,
          runner: ChunkRunner | None = None) -> PowerResult:
    """Power of ``study`` by simulation.

    Parameters
    ----------
    study : PlannedStudy
        The planned study (patients, outcome model and test level).
    replicates : int
        Simulated studies (the Monte Carlo SE of a power p is ``sqrt(p (1 - p) / replicates)``: 0.013 at
        p = 0.8 with 1000).
    seed : int
        Seed (>= 0). With ``replicates`` and ``chunk_size`` it fixes the result on any number of workers.
    chunk_size : int
        Replicates per task.
    workers : int
        0 = in this process; N = a local Dask cluster of N processes.
    scheduler : str, optional
        Address of a running Dask scheduler (instead of a local cluster).
    progress : bool
        Show a progress bar.
    runner : ChunkRunner, optional
        An open runner to reuse (``workers``, ``scheduler`` and ``progress`` are then ignored).

    Returns
    -------
    PowerResult
        Power of each test with its Monte Carlo SE, and the settings of the run.
    """
    _check_run(replicates, seed, chunk_size)
    _prepare(study)
    if runner is not None:
        return _power_with(runner, study, replicates, seed, chunk_size)
    with ChunkRunner(workers, scheduler, progress) as r:
        return _power_with(r, study, replicates, seed, chunk_size)


def _prepare(study: PlannedStudy) -> None:
    """Fail early (here, not on a worker) on settings the generator cannot use."""
    if isinstance(study.outcome, LesionOutcome):
        lesion_truth(study.outcome)
    elif isinstance(study.outcome, SimulatorOutcome):
        study.outcome.params.with_values({"cohort.n_patients": study.n_patients})


# --------------------------------------------------------------------------------------------------------
# Sample size
# --------------------------------------------------------------------------------------------------------

def search_smallest_n(power_at: Callable[[int], float], target: float, *, n_min: int, n_max: int,
                      n_start: int, step: int = 1) -> tuple[int | None, dict[int, float]]:
    """Smallest N in ``[n_min, n_max]`` with ``power_at(N) >= target``, for ``power_at`` increasing in N.

    Brackets the answer by doubling (or halving) from ``n_start``, then bisects on whole numbers until the
    bracket is at most ``step`` wide; every N is evaluated at most once.

    Parameters
    ----------
    power_at : callable
        Power at N patients, increasing in N.
    target : float
        Target power.
    n_min, n_max : int
        Range searched.
    n_start : int
        First N evaluated.
    step : int, optional
        Stop when the bracket is at most this many patients wide.

    Returns
    -------
    (N, evaluated)
        N is the smallest evaluated N reaching the target with the largest evaluated N below it within
        ``step`` (exactly the smallest such N when ``step`` is 1 and ``power_at`` is monotone), or ``None``
        when even ``n_max`` falls short; ``evaluated`` maps every evaluated N to its power.

    Raises
    ------
    SettingsError
        When the patient range is empty or the step is below 1.
    """
    if not (1 <= n_min <= n_max):
        raise SettingsError(f"the patient range {n_min}..{n_max} is empty; need 1 <= minimum <= maximum")
    if step < 1:
        raise SettingsError(f"the search step = {step!r} must be >= 1 patient")
    seen: dict[int, float] = {}

    def f(n: int) -> float:
        if n not in seen:
            seen[n] = float(power_at(n))
        return seen[n]

    n = min(max(int(n_start), n_min), n_max)
    lo: int | None = None
    hi: int | None = None
    if f(n) >= target:
        hi = n
        while hi > n_min:
            m = max(n_min, hi // 2)
            if f(m) >= target:
                hi = m
            else:
                lo = m
                break
        if lo is None:
            return hi, seen
    else:
        lo = n
        while hi is None:
            if lo >= n_max:
                return None, seen
            m = min(n_max, 2 * lo)
            if f(m) >= target:
                hi = m
            else:
                lo = m
    while hi - lo > step:
        mid = (lo + hi) // 2
        if f(mid) >= target:
            hi = mid
        else:
            lo = mid
    return hi, seen


@dataclass(frozen=True, slots=True, eq=False)
class SampleSizeResult:
    """Smallest number of patients reaching a target power (immutable).

    Attributes
    ----------
    target_power : float
    test : str
        The test whose power is targeted.
    n_patients : int or None
        Smallest evaluated N whose simulated power reaches the target, with the largest evaluated N below it
        at most ``step`` patients smaller; ``None`` when ``n_max`` does not reach it.
    at_n : PowerResult or None
        The power run at ``n_patients``.
    below : PowerResult or None
        The power run at the largest evaluated N whose power is below the target.
    points : tuple of PowerResult
        Every evaluated N, in increasing order.
    crossing_n : float or None
        N where the simulated power curve (straight lines between evaluated N) last crosses the target
        upwards.
    crossing_ci : tuple of float or None
        Its 95% bootstrap interval over replicates (2000 resamples of the replicates, the same resample at
        every N): the Monte Carlo uncertainty of the sample size. A limit equal to the smallest evaluated N
        means "at most"; ``inf`` means the target may not be reached by the largest evaluated N.
    step, n_min, n_max : int
    method : str
    """

    target_power: float
    test: str
    n_patients: int | None
    at_n: PowerResult | None
    below: PowerResult | None
    points: tuple[PowerResult, ...]
    crossing_n: float | None
    crossing_ci: tuple[float, float] | None
    step: int
    n_min: int
    n_max: int
    method: str = ("bracketing by doubling, then bisection on whole N, each N by simulation (common random "
                   "numbers across N); crossing of the interpolated power curve with a 95% bootstrap "
                   "interval over replicates")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (non-finite numbers as ``None``).

        Returns
        -------
        dict of {str: object}
            The fields by name.
        """
        from pofa.stats.results import json_number

        return {
            "target_power": self.target_power,
            "test": self.test,
            "n_patients": self.n_patients,
            "reached": self.n_patients is not None,
            "below_n_patients": None if self.below is None else self.below.n_patients,
            "crossing_n": None if self.crossing_n is None else json_number(self.crossing_n),
            "crossing_ci": None if self.crossing_ci is None else [json_number(v) for v in self.crossing_ci],
            "step": self.step,
            "n_min": self.n_min,
            "n_max": self.n_max,
            "method": self.method,
            "points": [p.to_dict() for p in self.points],
        }


#: Bootstrap resamples of the replicates for the interval of the sample size.
N_BOOTSTRAP = 2000


def crossing(n: np.ndarray, power_: np.ndarray, target: float) -> np.ndarray:
    """N where a power curve last crosses ``target`` upwards, by linear interpolation.

    Parameters
    ----------
    n : ndarray, shape (K,)
        Evaluated N, increasing.
    power_ : ndarray, shape (..., K)
        Power at each N (one curve per row).
    target : float
        Target power.

    Returns
    -------
    ndarray, shape (...)
        ``n[0]`` when every point reaches the target, ``inf`` when the last one does not.
    """
    p = np.atleast_2d(power_)
    below = p < target
    K = n.size
    any_below = below.any(axis=1)
    last = np.where(any_below, K - 1 - np.argmax(below[:, ::-1], axis=1), -1)
    out = np.full(p.shape[0], float(n[0]))
    out[last == K - 1] = np.inf
    mid = (last >= 0) & (last < K - 1)
    i = last[mid]
    rows = np.flatnonzero(mid)
    p0, p1 = p[rows, i], p[rows, i + 1]
    out[mid] = n[i] + (target - p0) / (p1 - p0) * (n[i + 1] - n[i])
    return out.reshape(np.shape(power_)[:-1])


def _crossing_ci(points: tuple[PowerResult, ...], j: int, target: float, seed: int
                 ) -> tuple[float, tuple[float, float]]:
    n = np.array([p.n_patients for p in points], dtype=float)
    rej = np.column_stack([p.rejected[:, j] for p in points]).astype(float)  # (R, K)
    R = rej.shape[0]
    point = float(crossing(n, rej.mean(axis=0), target))
    # The same resample of replicates at every N keeps the common random numbers paired.
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(2**31,))))
    boot = np.concatenate([crossing(n, rng.multinomial(R, np.full(R, 1.0 / R), size=100) @ rej / R, target)
                           for _ in range(N_BOOTSTRAP // 100)])  # 100 resamples at a time bounds the memory
    lo, hi = np.quantile(boot, [0.025, 0.975], method="inverted_cdf")
    return point, (float(lo), float(hi))


def sample_size(study: PlannedStudy, target_power: float = 0.8, *, test: int = 0, n_min: int = 4,
                n_max: int = 5000, n_start: int | None = None, step: int = 1, replicates: int = 1000,
                seed: int = 0, chunk_size: int = 50, workers: int = 0, scheduler: str | None = None,
                progress: bool = False, runner: ChunkRunner | None = None) -> SampleSizeResult:
    """Smallest number of patients whose simulated power reaches ``target_power``.

    Each evaluated N is a :func:`power` run with the same seed (so the point for N equals ``power`` of the
    study with N patients, and for planned studies the replicates at different N share their first
    patients). The search assumes power increases with N; ``crossing_ci`` gives the Monte Carlo uncertainty
    of the answer.

    Parameters
    ----------
    study : PlannedStudy
        Its ``n_patients`` is the starting point unless ``n_start`` is given.
    target_power : float
        In (0, 1).
    test : int
        Which test's power is targeted (index into :func:`analyses`).
    n_min, n_max : int
        Range searched.
    n_start : int, optional
        First N evaluated (default: ``study.n_patients``).
    step : int
        Stop when the bracket is at most this many patients wide.
    replicates : int, optional
        Simulated studies per evaluated N (default 1000).
    seed : int, optional
        Seed (>= 0); with ``replicates`` and ``chunk_size`` it fixes the result on any number of workers.
    chunk_size : int, optional
        Replicates per task.
    workers : int, optional
        0 = in this process; N = a local Dask cluster of N processes.
    scheduler : str, optional
        Address of a running Dask scheduler (instead of a local cluster).
    progress : bool, optional
        Show a progress bar.
    runner : ChunkRunner, optional
        A runner already set up (the other scheduling options are then ignored).

    Returns
    -------
    SampleSizeResult
        The smallest N, the powers evaluated and the crossing of the interpolated curve with its CI.

    Raises
    ------
    SettingsError
        When the target power is not strictly between 0 and 1, or ``test`` is not a test index.
    """
    if not (isinstance(target_power, (int, float)) and 0.0 < float(target_power) < 1.0):
        raise SettingsError(f"the target power = {target_power!r} must be strictly between 0 and 1")
    labels = analyses(study)
    if not (isinstance(test, int) and 0 <= test < len(labels)):
        raise SettingsError(f"test = {test!r} must be 0..{len(labels) - 1}: "
                            + "; ".join(f"{i} = {lab}" for i, lab in enumerate(labels)))
    n_min = max(2, int(n_min))
    _check_run(replicates, seed, chunk_size)
    _prepare(study)
    results: dict[int, PowerResult] = {}

    def run(r: ChunkRunner) -> SampleSizeResult:
        def power_at(n: int) -> float:
            res = _power_with(r, study.with_patients(n), replicates, seed, chunk_size)
            results[n] = res
            return res.tests[test].power

        start = study.n_patients if n_start is None else n_start
        n_req, _ = search_smallest_n(power_at, float(target_power), n_min=n_min, n_max=int(n_max),
                                     n_start=start, step=int(step))
        points = tuple(results[n] for n in sorted(results))
        under = [p for p in points if p.tests[test].power < target_power
                 and (n_req is None or p.n_patients < n_req)]
        cross, ci = _crossing_ci(points, test, float(target_power), seed)
        return SampleSizeResult(
            target_power=float(target_power), test=labels[test], n_patients=n_req,
            at_n=None if n_req is None else results[n_req], below=under[-1] if under else None,
            points=points, crossing_n=cross, crossing_ci=ci, step=int(step), n_min=n_min, n_max=int(n_max))

    if runner is not None:
        return run(runner)
    with ChunkRunner(workers, scheduler, progress) as r:
        return run(r)
