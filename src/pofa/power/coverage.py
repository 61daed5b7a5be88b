"""A simulation study of the lesion-level statistics: do their 95% confidence intervals cover the truth.

Lesions of a patient are correlated, so a confidence interval that treats them as independent is too narrow.
:func:`coverage` simulates replicates of a :class:`~pofa.power.design.LesionOutcome` (a random-intercept
model), fits each by every method pofa offers and counts the replicates whose Wald 95% CI of the log odds
ratio contains the **true population-averaged (marginal) log odds ratio**
(:func:`pofa.power.marginal.lesion_truth`). That is the right target: GEE and logistic regression both
estimate the marginal OR (for a binary factor the marginal model is saturated, so exact), not the conditional
OR of the generating model, which is larger.

Methods compared (same replicates):

* ``GEE exchangeable, robust SE``: :func:`pofa.stats.gee.gee_exchangeable_logit` (``geepack::geeglm``);
* ``GEE exchangeable, Mancl-DeRouen SE``: the same fit, bias-reduced sandwich;
* ``logistic, model-based SE``: plain ML logistic regression (R ``glm``), lesions independent;
* ``logistic, cluster-robust SE``: the same estimates with the cluster sandwich, i.e. GEE with independence
  working correlation (``geeglm(corstr = "independence")``), no small-sample factor.

For one binary factor the logistic fit is closed form (written here, vectorised over replicates, because a
statsmodels fit per replicate would cost more than the whole GEE): the ML estimates are the logits of the
two observed risks, the model-based SE of the log OR is Woolf's ``sqrt(1/a + 1/b + 1/c + 1/d)`` (the inverse
Fisher information of the saturated model), and the cluster-robust variance is
``sum_i (T_i / (n1 v1) - S_i / (n0 v0))^2`` with ``T_i``, ``S_i`` patient i's sums of residuals
``y - p_x`` over lesions with and without the factor. The tests check all three against statsmodels
``GLM`` and ``GEE``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from pofa.errors import SettingsError
from pofa.power.dask_runner import ChunkRunner
from pofa.power.design import LesionOutcome
from pofa.power.marginal import LesionTruth, lesion_truth
from pofa.power.simulate import LesionReplicates, draw_lesion_replicates
from pofa.stats.results import json_number

__all__ = [
    "METHODS",
    "CoverageResult",
    "MethodCoverage",
    "coverage",
    "logistic_2x2",
    "run_coverage_chunk",
]

#: Methods compared, in the order of the estimate columns.
METHODS = (
    "GEE exchangeable, robust SE",
    "GEE exchangeable, Mancl-DeRouen SE",
    "logistic, model-based SE",
    "logistic, cluster-robust SE",
)


def logistic_2x2(reps: LesionReplicates) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logistic regression of ``y`` on the binary factor in every replicate at once.

    Parameters
    ----------
    reps : LesionReplicates
        Lesion-level replicates (outcome, binary factor and patient of every lesion).

    Returns
    -------
    (log_or, se_model, se_robust)
        Arrays of length ``n_replicates``: the ML log odds ratio (R ``glm``), its model-based SE and its
        cluster-robust sandwich SE (patients as clusters, ``geeglm(corstr = "independence")``); ``nan``
        where a cell of the 2x2 table is empty (the ML estimate is infinite).
    """
    starts = reps.lesion_start[:-1]
    y, x = reps.y, reps.x
    n1 = np.add.reduceat(x, starts)
    a = np.add.reduceat(y * x, starts)  # events with the factor
    n = np.diff(reps.lesion_start).astype(float)
    n0 = n - n1
    c = np.add.reduceat(y, starts) - a  # events without it
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (a > 0) & (a < n1) & (c > 0) & (c < n0)
        p1 = np.where(ok, a / n1, 0.5)
        p0 = np.where(ok, c / n0, 0.5)
        log_or = np.log(p1 / (1 - p1)) - np.log(p0 / (1 - p0))
        se_model = np.sqrt(1 / a + 1 / (n1 - a) + 1 / c + 1 / (n0 - c))
        rep = np.repeat(np.arange(reps.n_replicates), np.diff(reps.lesion_start))
        resid = y - np.where(x > 0, p1[rep], p0[rep])
        P = reps.n_patients * reps.n_replicates
        T = np.bincount(reps.patient, weights=resid * x, minlength=P)
        S = np.bincount(reps.patient, weights=resid * (1 - x), minlength=P)
        prep = np.arange(P) // reps.n_patients
        v1, v0 = n1 * p1 * (1 - p1), n0 * p0 * (1 - p0)
        contrib = (T / v1[prep] - S / v0[prep]) ** 2
        se_robust = np.sqrt(np.bincount(prep, weights=contrib, minlength=reps.n_replicates))
    nan = np.full(reps.n_replicates, np.nan)
    return np.where(ok, log_or, nan), np.where(ok, se_model, nan), np.where(ok, se_robust, nan)


def run_coverage_chunk(outcome: LesionOutcome, truth: LesionTruth, n_patients: int, n_replicates: int,
                       seed: np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
    """Simulate ``n_replicates`` studies and fit them by every method of :data:`METHODS`.

    Returns ``(estimate, se)`` of shape (replicates, methods), log odds ratio scale, ``nan`` where not
    estimable.

    Parameters
    ----------
    outcome : LesionOutcome
        The generative model.
    truth : LesionTruth
        Its conditional parameters and true marginal log odds ratio.
    n_patients : int
        Patients per replicate.
    n_replicates : int
        Replicates in this chunk.
    seed : np.random.SeedSequence
        Seed of this chunk.

    Returns
    -------
    tuple of (numpy.ndarray, numpy.ndarray)
        ``(estimate, se)`` of shape (replicates, methods), log odds ratio scale, ``nan`` where not
        estimable.
    """
    from pofa.stats.gee import gee_exchangeable_logit

    reps = draw_lesion_replicates(outcome, truth, n_patients, n_replicates, seed)
    est = np.full((n_replicates, len(METHODS)), np.nan)
    se = np.full((n_replicates, len(METHODS)), np.nan)
    log_or, se_model, se_robust = logistic_2x2(reps)
    est[:, 2], se[:, 2] = log_or, se_model
    est[:, 3], se[:, 3] = log_or, se_robust
    for r in range(n_replicates):
        if not np.isfinite(log_or[r]):  # an empty cell: GEE is not estimable either (separation)
            continue
        y, X, g = reps.replicate(r)
        fit = gee_exchangeable_logit(y, X, g, bias_reduced=True)
        if fit.converged and fit.bse_md is not None:
            est[r, 0:2] = fit.params[1]
            se[r, 0], se[r, 1] = fit.bse[1], fit.bse_md[1]
    return est, se


@dataclass(frozen=True, slots=True)
class MethodCoverage:
    """Coverage of one method's Wald 95% CI of the log odds ratio.

    Attributes
    ----------
    method : str
    n_replicates, n_estimable, n_covered : int
    coverage : float
        ``n_covered / n_estimable``.
    mc_se : float
        ``sqrt(coverage (1 - coverage) / n_estimable)``.
    ci_low, ci_high : float
        Clopper-Pearson 95% interval of the coverage.
    bias : float
        Mean log OR minus the true marginal log OR.
    empirical_sd, mean_se : float
        SD of the log ORs over replicates and the mean reported SE (their ratio shows whether the SE is
        right).
    """

    method: str
    n_replicates: int
    n_estimable: int
    n_covered: int
    coverage: float
    mc_se: float
    ci_low: float
    ci_high: float
    bias: float
    empirical_sd: float
    mean_se: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (non-finite numbers as ``None``).

        Returns
        -------
        dict of {str: object}
            The fields by name.
        """
        return {f.name: (json_number(getattr(self, f.name)) if isinstance(getattr(self, f.name), float)
                         else getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass(frozen=True, slots=True)
class CoverageResult:
    """Coverage of every method on one scenario (immutable).

    Attributes
    ----------
    outcome : LesionOutcome
    n_patients, n_replicates, seed, chunk_size : int
    truth : LesionTruth
        Conditional parameters and the true marginal log OR (the target).
    methods : tuple of MethodCoverage
        In the order of :data:`METHODS`.
    level : float
        Nominal level of the intervals (0.95).
    elapsed_s : float
    """

    outcome: LesionOutcome
    n_patients: int
    n_replicates: int
    seed: int
    chunk_size: int
    truth: LesionTruth
    methods: tuple[MethodCoverage, ...]
    level: float
    elapsed_s: float

    def method(self, name: str) -> MethodCoverage:
        """The row of method ``name`` (one of :data:`METHODS`).

        Parameters
        ----------
        name : str
            One of :data:`METHODS`.

        Returns
        -------
        MethodCoverage
            The row of that method.

        Raises
        ------
        KeyError
            When ``name`` is not a method of the result.
        """
        for m in self.methods:
            if m.method == name:
                return m
        raise KeyError(name)


def _summarise(name: str, est: np.ndarray, se: np.ndarray, target: float, level: float) -> MethodCoverage:
    ok = np.isfinite(est) & np.isfinite(se)
    n_ok = int(ok.sum())
    q = float(stats.norm.ppf(0.5 + level / 2.0))
    covered = int(np.sum(np.abs(est[ok] - target) <= q * se[ok]))
    c = covered / n_ok if n_ok else math.nan
    ci = stats.binomtest(covered, n_ok).proportion_ci(0.95, method="exact") if n_ok else None
    return MethodCoverage(
        method=name, n_replicates=int(est.size), n_estimable=n_ok, n_covered=covered, coverage=c,
        mc_se=math.sqrt(c * (1 - c) / n_ok) if n_ok else math.nan,
        ci_low=float(ci.low) if ci else math.nan, ci_high=float(ci.high) if ci else math.nan,
        bias=float(est[ok].mean() - target) if n_ok else math.nan,
        empirical_sd=float(est[ok].std(ddof=1)) if n_ok > 1 else math.nan,
        mean_se=float(se[ok].mean()) if n_ok else math.nan)


def coverage(outcome: LesionOutcome, n_patients: int, *, replicates: int = 1000, seed: int = 0,
             chunk_size: int = 50, workers: int = 0, scheduler: str | None = None, progress: bool = False,
             runner: ChunkRunner | None = None) -> CoverageResult:
    """Coverage of the 95% Wald CIs of GEE and logistic regression for the true marginal log odds ratio.

    Chunk ``c`` draws from ``SeedSequence(seed).spawn(n_chunks)[c]``, so the result depends on the scenario,
    ``replicates``, ``seed`` and ``chunk_size`` only.

    Parameters
    ----------
    outcome : LesionOutcome
        The generative model (its ``effect_scale`` says whether ``odds_ratio`` is marginal or conditional).
    n_patients : int
        Patients per replicate.
    replicates : int, optional
        Simulated studies (default 1000).
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
    CoverageResult
        Coverage, bias and SE ratio per method, with the Monte Carlo SE of each.

    Raises
    ------
    SettingsError
        When the number of patients is not a whole number >= 2.
    """
    from pofa.power.power import _check_run, chunk_plan

    _check_run(replicates, seed, chunk_size)
    if isinstance(n_patients, bool) or not isinstance(n_patients, int) or n_patients < 2:
        raise SettingsError(f"the number of patients = {n_patients!r} must be a whole number >= 2")
    truth = lesion_truth(outcome)
    t0 = time.perf_counter()
    plan = chunk_plan(replicates, seed, chunk_size)
    args = [(outcome, truth, n_patients, n, ss) for n, ss in plan]

    def go(r: ChunkRunner) -> list[tuple[np.ndarray, np.ndarray]]:
        return r.map(run_coverage_chunk, args, [n for n, _ in plan],
                     description=f"coverage, N = {n_patients}")

    if runner is not None:
        parts = go(runner)
    else:
        with ChunkRunner(workers, scheduler, progress) as r:
            parts = go(r)
    est = np.concatenate([p[0] for p in parts], axis=0)
    se = np.concatenate([p[1] for p in parts], axis=0)
    level = 0.95
    rows = tuple(_summarise(m, est[:, j], se[:, j], truth.log_or_marginal, level)
                 for j, m in enumerate(METHODS))
    return CoverageResult(outcome=outcome, n_patients=n_patients, n_replicates=replicates, seed=seed,
                          chunk_size=chunk_size, truth=truth, methods=rows, level=level,
                          elapsed_s=time.perf_counter() - t0)
