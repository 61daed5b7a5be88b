"""Kaplan-Meier curves, medians, landmarks, reverse-KM follow-up, numbers at risk and log-rank tests.

All numbers follow R's survival package (3.5-3), which clinicians and reviewers check against:

* the survival curve, its Greenwood standard error and the pointwise confidence intervals are those of
  ``survival::survfit`` (``conf.type`` = ``"log-log"`` (pofa's default, as SAS PROC LIFETEST), ``"log"``
  (R's default) or ``"plain"``);
* medians and their confidence intervals are those of ``survival::quantile.survfit`` (a median on an exact
  0.5 plateau is the midpoint of the plateau; the CI is the set of times whose pointwise interval contains
  0.5);
* survival at a landmark is that of ``summary(survfit, times = ...)``;
* numbers at risk are #{T >= t} (R's ``summary.survfit`` ``n.risk``, SAS);
* the log-rank test is ``survival::survdiff`` (rho = 0), for k groups, optionally stratified.

The estimator is written here in numpy rather than taken from statsmodels' ``SurvfuncRight``, whose
numbers differ from R's: its ``quantile`` takes the first time with S(t) < 1 - p (no midpoint on an exact
0.5 plateau), its ``quantile_ci`` inverts Z-tests (SAS's Brookmeyer-Crowley form) instead of R's
"pointwise band contains 0.5" rule, and it has no pointwise log/log-log band for the curve.
``statsmodels.duration.survdiff`` agrees with R for the log-rank test but is not used, so that the
stratified test and the observed/expected/variance it returns come from one place.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

import numpy as np
import pandas as pd

from pofa.errors import EstimationError
from pofa.stats import distributions as _dist
from pofa.stats.results import Estimate
from pofa.units import DAYS_PER_MONTH

__all__ = [
    "DAYS_PER_MONTH",
    "LANDMARK_MONTHS",
    "CIMethod",
    "ChiSquareTest",
    "KaplanMeier",
    "LogRankResult",
    "days_to_months",
    "kaplan_meier",
    "log_rank_test",
    "log_rank_test_two_groups",
    "median_follow_up",
    "reverse_kaplan_meier",
]

#: Default landmark times (months) for survival at a time point.
LANDMARK_MONTHS: tuple[float, ...] = (6.0, 12.0, 24.0)
# R's quantile.survfit tolerance for "S(t) equals the probability" (sqrt(.Machine$double.eps)).
_R_TOL = math.sqrt(np.finfo(float).eps)


class CIMethod(StrEnum):
    """Transform used for pointwise confidence intervals of a survival curve (R ``conf.type``)."""

    LOG_LOG = "log-log"
    LOG = "log"
    PLAIN = "plain"


ArrayLike1D: TypeAlias = np.ndarray | pd.Series | Sequence[float] | Sequence[int]


def _as_time(time: ArrayLike1D, name: str = "time") -> np.ndarray:
    """Return a float copy of a follow-up time vector, checked to be finite and >= 0."""
    try:
        t = np.array(time, dtype=float, copy=True).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise EstimationError(f"{name} must be numbers (months of follow-up): {exc}") from None
    if t.size == 0:
        raise EstimationError(f"{name} is empty: give at least one patient's follow-up time.")
    bad = ~np.isfinite(t)
    if bad.any():
        raise EstimationError(
            f"{name} has {int(bad.sum())} missing or infinite value(s) (first at position "
            f"{int(np.flatnonzero(bad)[0])}): drop those patients or fill in their follow-up."
        )
    if (t < 0).any():
        raise EstimationError(
            f"{name} has negative values (first at position {int(np.flatnonzero(t < 0)[0])}): "
            "follow-up is counted from the index date and cannot be negative; check the dates."
        )
    return t


def _as_event(event: ArrayLike1D, n: int, name: str = "event") -> np.ndarray:
    """Return a 0/1 int copy of an event indicator (bool or 0/1 numbers) of length ``n``."""
    try:
        e = np.array(event, dtype=float, copy=True).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise EstimationError(f"{name} must be 0/1 or True/False: {exc}") from None
    if e.size != n:
        raise EstimationError(f"{name} has {e.size} values but time has {n}: give one per patient.")
    if not np.isin(e, (0.0, 1.0)).all():
        bad = np.flatnonzero(~np.isin(e, (0.0, 1.0)))[0]
        raise EstimationError(
            f"{name} must be 0 (censored) or 1 (event); position {int(bad)} is {e[bad]!r}. "
            "Recode the status column (e.g. R's lung status 1/2 -> status == 2)."
        )
    return e.astype(np.int64)


def _as_cause(cause: ArrayLike1D, n: int, name: str = "cause") -> np.ndarray:
    """Return an int copy of a competing-risks cause code: 0 = censored, 1..k = causes."""
    try:
        c = np.array(cause, dtype=float, copy=True).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise EstimationError(f"{name} must be integer codes 0 (censored), 1, 2, ...: {exc}") from None
    if c.size != n:
        raise EstimationError(f"{name} has {c.size} values but time has {n}: give one per patient.")
    if not np.isfinite(c).all() or (c < 0).any() or (c != np.round(c)).any():
        raise EstimationError(
            f"{name} must hold integer codes 0 (censored), 1, 2, ... (one per cause of failure); "
            "found missing, negative or fractional values."
        )
    return c.astype(np.int64)


def _as_labels(labels: ArrayLike1D, n: int, name: str = "group") -> np.ndarray:
    """Return a copy of group labels as a 1-D object/number array of length ``n`` without missing values."""
    g = np.array(pd.Series(labels).to_numpy(), copy=True).reshape(-1)
    if g.size != n:
        raise EstimationError(f"{name} has {g.size} values but time has {n}: give one per patient.")
    if pd.isna(pd.Series(g)).any():
        raise EstimationError(f"{name} has missing values: drop those patients or give them a label.")
    return g


def _sorted_levels(labels: np.ndarray) -> list[object]:
    """Distinct labels in sorted order (R's ``factor`` default), numbers before text if mixed."""
    uniq = pd.unique(pd.Series(labels))
    try:
        return sorted(uniq.tolist())
    except TypeError:
        return sorted(uniq.tolist(), key=lambda v: (not isinstance(v, int | float), str(v)))


def _check_conf_level(conf_level: float) -> float:
    """Return ``conf_level`` checked to lie strictly between 0 and 1."""
    c = float(conf_level)
    if not 0.0 < c < 1.0:
        raise EstimationError(f"conf_level must be between 0 and 1 (e.g. 0.95), got {conf_level!r}.")
    return c


def _frozen(a: np.ndarray) -> np.ndarray:
    """Return a read-only copy of ``a`` (result objects must not be changed after the fact)."""
    out = np.array(a, copy=True)
    out.setflags(write=False)
    return out


def days_to_months(days: float | ArrayLike1D) -> float | np.ndarray:
    """Convert days to months (days / 30.4375, i.e. 365.25 / 12 days per month).

    Parameters
    ----------
    days : float or array-like
        Durations in days. The input is not modified.

    Returns
    -------
    float or numpy.ndarray
        Months: a float for a scalar input, otherwise a new float array.
    """
    if np.isscalar(days):
        return float(days) / DAYS_PER_MONTH  # type: ignore[arg-type]
    return np.array(days, dtype=float, copy=True) / DAYS_PER_MONTH


# --------------------------------------------------------------------------------------------------
# confidence intervals and quantiles, as survival::survfit_confint and survival:::findq
# --------------------------------------------------------------------------------------------------


def _z(conf_level: float) -> float:
    return float(_dist.norm_ppf(1.0 - (1.0 - conf_level) / 2.0))


def _pointwise_ci(
    surv: np.ndarray, se_log: np.ndarray, method: CIMethod, z: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise CI of S(t) from the SE of log S(t), exactly as ``survival:::survfit_confint``.

    R leaves the interval undefined (NA) where S = 0 (all methods but plain, which gives NaN there
    because the Greenwood SE is infinite) and, for log-log, also where S = 1.
    """
    s = np.asarray(surv, dtype=float)
    se = np.asarray(se_log, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if method is CIMethod.PLAIN:
            half = se * s * z
            low = np.maximum(s - half, 0.0)
            high = np.minimum(s + half, 1.0)
            # R: pmax(NaN, 0) is NaN; numpy's maximum propagates NaN the same way.
        elif method is CIMethod.LOG:
            xx = np.where(s == 0, np.nan, s)
            low = np.exp(np.log(xx) - z * se)
            high = np.minimum(np.exp(np.log(xx) + z * se), 1.0)
            high = np.where(np.isnan(xx), np.nan, high)
        else:
            xx = np.where((s == 0) | (s == 1), np.nan, s)
            se2 = z * se / np.log(xx)
            low = np.exp(-np.exp(np.log(-np.log(xx)) - se2))
            high = np.exp(-np.exp(np.log(-np.log(xx)) + se2))
    return low, high


def _dedup_first(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop repeated y values (R ``duplicated``: NaN equals NaN), keeping the first occurrence."""
    keep = ~pd.Series(y).duplicated(keep="first").to_numpy()
    return x[keep], y[keep]


def _approx_right(knots: np.ndarray, values: np.ndarray, p: float) -> float:
    """R ``approx(knots, values, p, method = "constant", f = 1)`` (rule 1: NA outside the knots)."""
    ok = ~np.isnan(knots)
    k = knots[ok]
    v = values[ok]
    if k.size == 0 or p < k.min() or p > k.max():
        return math.nan
    above = np.where(k >= p, k, np.inf)
    return float(v[int(np.argmin(above))])


def _findq(x: np.ndarray, y: np.ndarray, p: float, tol: float = _R_TOL) -> float:
    """Quantile of a step function, exactly as ``survival:::findq`` (used by ``quantile.survfit``).

    ``x`` are the times (first element the start time 0) and ``y`` the cumulative failure 1 - S
    (or 1 - a confidence band) at those times. Where ``y`` equals ``p`` on a flat stretch (within R's
    tolerance sqrt(machine epsilon)) the result is the midpoint of the stretch; where the curve ends on
    that stretch, the midpoint between its start and the last follow-up time.
    """
    if np.all(np.isnan(y)) or np.nanmax(y) < p:
        return math.nan
    xmax = float(x[-1])
    xd, yd = _dedup_first(x, y)
    idx = np.arange(yd.size, dtype=float)
    i1 = _approx_right(yd + tol, idx, p)
    i2 = _approx_right(yd - tol, idx, p)
    x1 = xd[int(i1)] if not math.isnan(i1) else math.nan
    x2 = xd[int(i2)] if not math.isnan(i2) else math.nan
    quant = (x1 + x2) / 2.0
    if p == 0:
        return float(xd[0])
    if not math.isnan(yd[-1]) and abs(p - yd[-1]) < tol:
        quant = (x1 + xmax) / 2.0
    return float(quant)


# --------------------------------------------------------------------------------------------------
# Kaplan-Meier
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KaplanMeier:
    """A Kaplan-Meier survival curve (immutable), as ``survival::survfit(Surv(time, event) ~ 1)``.

    One row per distinct observed time (event or censoring), in increasing order. Arrays are read-only.

    Attributes
    ----------
    times : numpy.ndarray
        Distinct follow-up times (months when the caller gives months).
    n_risk : numpy.ndarray
        Number at risk just before each time, #{T >= t}.
    n_event, n_censor : numpy.ndarray
        Events and censorings at each time.
    survival : numpy.ndarray
        S(t), right-continuous (the value after the drop at t).
    std_err : numpy.ndarray
        Greenwood standard error of S(t) (``summary(survfit)$std.err``); NaN where S(t) = 0.
    std_err_log : numpy.ndarray
        Standard error of log S(t) (``survfit()$std.err``), the basis of the log and log-log intervals.
    ci_low, ci_high : numpy.ndarray
        Pointwise confidence limits by ``ci_method``; NaN where R gives NA (S = 0; also S = 1 for log-log).
    ci_method : str
        ``"log-log"``, ``"log"`` or ``"plain"`` (R ``conf.type``).
    conf_level : float
        Confidence level of the intervals (0.95 by default).
    n : int
        Number of patients.
    method : str
        Description of the estimator and interval, for reports.
    """

    times: np.ndarray
    n_risk: np.ndarray
    n_event: np.ndarray
    n_censor: np.ndarray
    survival: np.ndarray
    std_err: np.ndarray
    std_err_log: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    ci_method: str
    conf_level: float
    n: int
    method: str

    @property
    def n_events_total(self) -> int:
        """Total number of events.

        Returns
        -------
        int
            The sum of :attr:`n_event`.
        """
        return int(self.n_event.sum())

    def quantile(self, prob: float = 0.5) -> Estimate:
        """Time by which a fraction ``prob`` has failed, with its CI (``survival::quantile.survfit``).

        Parameters
        ----------
        prob : float
            Fraction failed (0.5 for the median; 0.25 for the time at which S(t) = 0.75).

        Returns
        -------
        Estimate
            ``estimate`` is NaN when S(t) never reaches 1 - prob ("not reached"); ``ci_high`` is NaN when
            the upper confidence band never reaches it (upper limit not reached). ``reason`` says so.

        Raises
        ------
        EstimationError
            When ``prob`` is not between 0 and 1.
        """
        p = float(prob)
        if not 0.0 < p < 1.0:
            raise EstimationError(f"prob must be between 0 and 1 (0.5 for the median), got {prob!r}.")
        x = np.concatenate(([0.0], self.times))
        q = _findq(x, np.concatenate(([0.0], 1.0 - self.survival)), p)
        # the lower band gives the lower time limit (it crosses 1 - p first)
        lo = _findq(x, np.concatenate(([0.0], 1.0 - self.ci_low)), p)
        hi = _findq(x, np.concatenate(([0.0], 1.0 - self.ci_high)), p)
        what = "median" if p == 0.5 else f"{100 * p:g}th percentile of time to event"
        reasons = []
        if math.isnan(q):
            reasons.append(f"{what} not reached (S(t) stays above {1 - p:g})")
        if math.isnan(lo):
            reasons.append("lower confidence limit not reached")
        if math.isnan(hi):
            reasons.append("upper confidence limit not reached")
        return Estimate(
            estimate=q,
            ci_low=lo,
            ci_high=hi,
            p=math.nan,
            n=self.n,
            method=f"Kaplan-Meier {what}, {self._ci_words()} (survival::quantile.survfit)",
            reason="; ".join(reasons),
        )

    def median(self) -> Estimate:
        """Return the median time to event with its CI, as ``survival::quantile.survfit(fit, 0.5)``.

        On an exact 0.5 plateau from t_j to t_j+1 the median is (t_j + t_j+1) / 2 (R, SAS). Note that
        ``print.survfit`` differs from ``quantile.survfit`` only when the curve *ends* on a 0.5 plateau:
        print shows t_j, quantile (and pofa) the midpoint between t_j and the last follow-up time.

        Returns
        -------
        Estimate
            The median (months) with its CI; ``nan`` with a reason when not reached.
        """
        return self.quantile(0.5)

    def at(self, t: float) -> Estimate:
        """Return the survival probability at time ``t`` with its pointwise CI (``summary(fit, times = t)``).

        Parameters
        ----------
        t : float
            The landmark time (months, >= 0).

        Returns
        -------
        Estimate
            Survival with its CI; NaN (with a reason) beyond the last follow-up time, where the curve
            is not estimated.

        Raises
        ------
        EstimationError
            When ``t`` is not a finite number >= 0.
        """
        tt = float(t)
        if not math.isfinite(tt) or tt < 0:
            raise EstimationError(f"landmark time must be a number >= 0 (months), got {t!r}.")
        method = f"Kaplan-Meier survival at {tt:g}, {self._ci_words()} (survival::summary.survfit)"
        if tt > self.times[-1]:
            return Estimate(
                math.nan,
                math.nan,
                math.nan,
                math.nan,
                self.n,
                method,
                reason=f"{tt:g} is beyond the last follow-up time ({self.times[-1]:g}): not estimable",
            )
        i = int(np.searchsorted(self.times, tt, side="right")) - 1
        if i < 0:  # before the first observed time: R's summary.survfit gives S = 1 with interval [1, 1]
            s, lo, hi = 1.0, 1.0, 1.0
        else:
            s = float(self.survival[i])
            lo, hi = float(self.ci_low[i]), float(self.ci_high[i])
        reason = ""
        if math.isnan(lo) or math.isnan(hi):
            reason = (
                "no event yet (S = 1): the log-log interval is not defined"
                if s == 1.0
                else "S(t) = 0: the interval is not defined"
            )
        return Estimate(s, lo, hi, math.nan, self.n, method, reason)

    def landmarks(self, times: Iterable[float] = LANDMARK_MONTHS) -> dict[float, Estimate]:
        """Return survival at several landmark times (default 6, 12 and 24 months), keyed by time.

        Parameters
        ----------
        times : iterable of float
            The landmark times (months).

        Returns
        -------
        dict of float to Estimate
            :meth:`at` of each time.
        """
        return {float(t): self.at(float(t)) for t in times}

    def n_at_risk(self, times: Iterable[float] | float) -> np.ndarray:
        """Return the numbers at risk #{T >= t} at the given times (R ``summary.survfit``'s n.risk, SAS).

        This is the convention for the table under a Kaplan-Meier plot.

        Parameters
        ----------
        times : iterable of float or float
            The times (months).

        Returns
        -------
        numpy.ndarray
            Int array the length of ``times``; 0 beyond the last follow-up time.

        Raises
        ------
        EstimationError
            When a time is not finite.
        """
        t = np.atleast_1d(np.array(times, dtype=float, copy=True))
        if not np.isfinite(t).all():
            raise EstimationError("times for numbers at risk must be finite numbers.")
        idx = np.searchsorted(self.times, t, side="left")
        nr = np.concatenate((self.n_risk, [0]))
        return nr[idx].astype(np.int64)

    def summary(self) -> pd.DataFrame:
        """Return the curve as a table: one row per distinct time (as ``summary(fit, censored = TRUE)``).

        Returns
        -------
        pandas.DataFrame
            Columns ``time``, ``n_risk``, ``n_event``, ``n_censor``, ``survival``, ``std_err``, ``ci_low``,
            ``ci_high``.
        """
        return pd.DataFrame(
            {
                "time": self.times,
                "n_risk": self.n_risk,
                "n_event": self.n_event,
                "n_censor": self.n_censor,
                "survival": self.survival,
                "std_err": self.std_err,
                "ci_low": self.ci_low,
                "ci_high": self.ci_high,
            }
        )

    def _ci_words(self) -> str:
        return f"{100 * self.conf_level:g}% CI {self.ci_method}"


def _km_core(t: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, ...]:
    """Distinct times, n at risk, events, censorings, S(t) and var(log S) (Greenwood) for sorted input."""
    ut, inv = np.unique(t, return_inverse=True)
    n_total = np.bincount(inv, minlength=ut.size)
    n_event = np.bincount(inv, weights=e, minlength=ut.size).astype(np.int64)
    n_censor = n_total - n_event
    n_risk = t.size - np.concatenate(([0], np.cumsum(n_total)[:-1]))
    surv = np.cumprod(1.0 - n_event / n_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Greenwood: sum d / (n (n - d)); infinite once everyone at risk dies (S = 0), as in R
        term = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event).astype(float)), 0.0)
    var_log = np.cumsum(term)
    return ut, n_risk.astype(np.int64), n_event, n_censor.astype(np.int64), surv, var_log


def kaplan_meier(
    time: ArrayLike1D,
    event: ArrayLike1D,
    *,
    ci_method: CIMethod | str = CIMethod.LOG_LOG,
    conf_level: float = 0.95,
) -> KaplanMeier:
    """Kaplan-Meier estimate with Greenwood SE and pointwise CIs, matching ``survival::survfit``.

    Parameters
    ----------
    time : array-like of float
        Follow-up time per patient (months; see :func:`days_to_months`), >= 0.
    event : array-like of 0/1 or bool
        1 = event observed, 0 = censored.
    ci_method : {"log-log", "log", "plain"}
        Pointwise CI transform. ``"log-log"`` (default) matches SAS PROC LIFETEST and
        ``survfit(conf.type = "log-log")``; ``"log"`` is R's survfit default.
    conf_level : float
        Confidence level (default 0.95).

    Returns
    -------
    KaplanMeier
        Immutable curve with ``median()``, ``at(t)``, ``landmarks()``, ``n_at_risk(times)``.
    """
    t = _as_time(time)
    e = _as_event(event, t.size)
    cm = _ci_method(ci_method)
    cl = _check_conf_level(conf_level)
    ut, n_risk, n_event, n_censor, surv, var_log = _km_core(t, e)
    se_log = np.sqrt(var_log)
    with np.errstate(invalid="ignore"):
        std_err = surv * se_log  # 0 * inf = NaN where S = 0, as summary.survfit
    low, high = _pointwise_ci(surv, se_log, cm, _z(cl))
    return KaplanMeier(
        times=_frozen(ut),
        n_risk=_frozen(n_risk),
        n_event=_frozen(n_event),
        n_censor=_frozen(n_censor),
        survival=_frozen(surv),
        std_err=_frozen(std_err),
        std_err_log=_frozen(se_log),
        ci_low=_frozen(low),
        ci_high=_frozen(high),
        ci_method=cm.value,
        conf_level=cl,
        n=int(t.size),
        method=f"Kaplan-Meier, Greenwood SE, {100 * cl:g}% pointwise CI {cm.value} (survival::survfit)",
    )


def _ci_method(ci_method: CIMethod | str) -> CIMethod:
    try:
        return CIMethod(ci_method)
    except ValueError:
        raise EstimationError(
            f"ci_method must be one of {[m.value for m in CIMethod]}, got {ci_method!r}."
        ) from None


def reverse_kaplan_meier(
    time: ArrayLike1D,
    event: ArrayLike1D,
    *,
    ci_method: CIMethod | str = CIMethod.LOG_LOG,
    conf_level: float = 0.95,
) -> KaplanMeier:
    """Estimate the reverse Kaplan-Meier curve: censoring is the event and events are censorings.

    This is the potential follow-up curve of Schemper & Smith (1996); equals R
    ``survival::survfit(Surv(time, 1 - event) ~ 1)``.

    Parameters
    ----------
    time : array-like of float
        Follow-up time per patient (months), >= 0.
    event : array-like of 0/1 or bool
        1 = event observed (e.g. death), 0 = censored.
    ci_method : {"log-log", "log", "plain"}
        Pointwise CI transform (as :func:`kaplan_meier`).
    conf_level : float
        Confidence level (default 0.95).

    Returns
    -------
    KaplanMeier
        The curve of the censoring times.
    """
    t = _as_time(time)
    e = _as_event(event, t.size)
    return kaplan_meier(t, 1 - e, ci_method=ci_method, conf_level=conf_level)


def median_follow_up(
    time: ArrayLike1D,
    event: ArrayLike1D,
    *,
    ci_method: CIMethod | str = CIMethod.LOG_LOG,
    conf_level: float = 0.95,
) -> Estimate:
    """Estimate the median follow-up by the reverse Kaplan-Meier method, with its CI.

    Give the overall-survival time and death indicator. Equals R
    ``quantile(survfit(Surv(time, 1 - event) ~ 1, conf.type = ...), 0.5)``.

    Parameters
    ----------
    time : array-like of float
        Overall-survival time per patient (months), >= 0.
    event : array-like of 0/1 or bool
        1 = death, 0 = censored.
    ci_method : {"log-log", "log", "plain"}
        Pointwise CI transform (as :func:`kaplan_meier`).
    conf_level : float
        Confidence level (default 0.95).

    Returns
    -------
    Estimate
        The median follow-up (months) with its CI (no p-value); ``nan`` with a reason when not reached.
    """
    km = reverse_kaplan_meier(time, event, ci_method=ci_method, conf_level=conf_level)
    m = km.median()
    return Estimate(
        m.estimate,
        m.ci_low,
        m.ci_high,
        math.nan,
        m.n,
        f"Median follow-up, reverse Kaplan-Meier (Schemper & Smith 1996), {km._ci_words()} "
        "(survival::quantile.survfit on Surv(time, 1 - event))",
        m.reason.replace("median not reached", "median follow-up not reached"),
    )


@dataclass(frozen=True, slots=True)
class ChiSquareTest:
    """A chi-square test (immutable): statistic, degrees of freedom, p-value and the method's name."""

    statistic: float
    df: int
    p: float
    method: str


# --------------------------------------------------------------------------------------------------
# log-rank test
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogRankResult:
    """Result of a k-group log-rank test (immutable), as ``survival::survdiff(rho = 0)``.

    Attributes
    ----------
    chisq : float
        Chi-square statistic (O - E)' V^- (O - E) on all groups but the first.
    df : int
        Degrees of freedom: groups with a positive expected count, minus 1.
    p : float
        Upper-tail chi-square p-value.
    n : int
        Number of patients.
    groups : tuple
        Group labels, sorted (the order of ``observed``/``expected``/``variance``).
    n_per_group : tuple of int
        Patients per group.
    observed, expected : numpy.ndarray
        Observed and expected events per group (summed over strata).
    variance : numpy.ndarray
        Covariance matrix of O - E (``survdiff()$var``).
    method : str
        Description of the test.
    """

    chisq: float
    df: int
    p: float
    n: int
    groups: tuple[object, ...]
    n_per_group: tuple[int, ...]
    observed: np.ndarray
    expected: np.ndarray
    variance: np.ndarray
    method: str


def _logrank_stratum(t: np.ndarray, e: np.ndarray, g: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """O, E and V of the log-rank test in one stratum; ``g`` holds group indices 0..k-1."""
    ut, inv = np.unique(t, return_inverse=True)
    m = ut.size
    count = np.zeros((m, k))
    deaths = np.zeros((m, k))
    np.add.at(count, (inv, g), 1.0)
    np.add.at(deaths, (inv, g), e.astype(float))
    at_risk = np.cumsum(count[::-1], axis=0)[::-1]  # #{T >= t} per group
    n = at_risk.sum(axis=1)
    d = deaths.sum(axis=1)
    keep = d > 0
    at_risk, n, d, deaths = at_risk[keep], n[keep], d[keep], deaths[keep]
    frac = at_risk / n[:, None]
    expected = (d[:, None] * frac).sum(axis=0)
    observed = deaths.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(n > 1, d * (n - d) / (n - 1), 0.0)
    var = np.einsum("t,tj->j", w, frac)
    var = np.diag(var) - np.einsum("t,tj,tk->jk", w, frac, frac)
    return observed, expected, var


def log_rank_test(
    time: ArrayLike1D,
    event: ArrayLike1D,
    group: ArrayLike1D,
    *,
    strata: ArrayLike1D | None = None,
) -> LogRankResult:
    """Log-rank test of equal survival in k groups, as ``survival::survdiff(Surv(time, event) ~ group)``.

    Parameters
    ----------
    time, event : array-like
        Follow-up times (>= 0) and 0/1 event indicators.
    group : array-like
        Group label per patient (any hashable; sorted as R's factor levels).
    strata : array-like, optional
        Stratum per patient: the stratified test (``~ group + strata(s)``) sums O, E and V over strata.

    Returns
    -------
    LogRankResult
        Chi-square, df, p and the observed/expected/variance behind them.

    Raises
    ------
    EstimationError
        With fewer than two groups, no events, or a singular variance matrix.
    """
    t = _as_time(time)
    e = _as_event(event, t.size)
    g = _as_labels(group, t.size)
    levels = _sorted_levels(g)
    if len(levels) < 2:
        raise EstimationError(f"the log-rank test needs at least 2 groups; group has only {levels!r}.")
    code = pd.Categorical(g, categories=levels).codes.astype(np.int64)
    k = len(levels)
    if strata is None:
        s_code = np.zeros(t.size, dtype=np.int64)
    else:
        s = _as_labels(strata, t.size, "strata")
        s_code = pd.Categorical(s, categories=_sorted_levels(s)).codes.astype(np.int64)
    obs = np.zeros(k)
    exp = np.zeros(k)
    var = np.zeros((k, k))
    for sc in np.unique(s_code):
        sel = s_code == sc
        o1, e1, v1 = _logrank_stratum(t[sel], e[sel], code[sel], k)
        obs += o1
        exp += e1
        var += v1
    if e.sum() == 0:
        raise EstimationError("no events: the log-rank test needs at least one event.")
    # as survdiff: drop groups with zero expected, then the first remaining group
    use = exp > 0
    df = int(use.sum()) - 1
    if df < 1:
        chisq = 0.0
    else:
        diff = (obs - exp)[use][1:]
        vv = var[np.ix_(use, use)][1:, 1:]
        try:
            chisq = float(diff @ np.linalg.solve(vv, diff))
        except np.linalg.LinAlgError:
            raise EstimationError(
                "the log-rank variance matrix is singular (a group has no one at risk at any event "
                "time): merge or drop that group."
            ) from None
    p = float(_dist.chi2_sf(chisq, df)) if df >= 1 else math.nan
    n_per = tuple(int((code == i).sum()) for i in range(k))
    strat_words = ", stratified" if strata is not None else ""
    return LogRankResult(
        chisq=chisq,
        df=df,
        p=p,
        n=int(t.size),
        groups=tuple(levels),
        n_per_group=n_per,
        observed=_frozen(obs),
        expected=_frozen(exp),
        variance=_frozen(var),
        method=f"Log-rank test{strat_words}, chi-square on {df} df (survival::survdiff, rho = 0)",
    )


def log_rank_test_two_groups(
    time: ArrayLike1D,
    event: ArrayLike1D,
    group: ArrayLike1D,
    *,
    strata: ArrayLike1D | None = None,
) -> LogRankResult:
    """Run the two-group log-rank test: :func:`log_rank_test` after checking there are exactly two groups.

    Equals R ``survival::survdiff(Surv(time, event) ~ group)`` (``rho = 0``).

    Parameters
    ----------
    time : array-like of float
        Follow-up times (>= 0).
    event : array-like of 0/1 or bool
        Event indicators.
    group : array-like
        Group label per patient; exactly two distinct labels.
    strata : array-like, optional
        Stratum per patient (the stratified test, ``~ group + strata(s)``).

    Returns
    -------
    LogRankResult
        The chi-square statistic, degrees of freedom and p-value.

    Raises
    ------
    EstimationError
        When there are not exactly two groups.
    """
    t = _as_time(time)
    g = _as_labels(group, t.size)
    levels = _sorted_levels(g)
    if len(levels) != 2:
        raise EstimationError(
            f"log_rank_test_two_groups needs exactly 2 groups, got {len(levels)}: {levels!r}. "
            "Use log_rank_test for k groups."
        )
    return log_rank_test(t, event, g, strata=strata)
