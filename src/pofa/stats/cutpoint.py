"""Cut-point of a continuous marker for a survival outcome: maximally selected log-rank statistics.

Choosing the threshold that best separates the survival curves and then testing it on the same data
gives far too small p-values. Maximally selected rank statistics (Lausen & Schumacher 1992, Biometrics
48:73-85) correct for the search: the standardized log-rank statistic is maximised over candidate cuts
between the ``minprop`` and ``maxprop`` quantiles, and the p-value of the maximum comes from the
asymptotic bound of Lausen & Schumacher ("Lau92") or the improved Bonferroni bound of Lausen, Sauerbrei &
Schumacher 1994 ("Lau94"). The numbers are those of ``maxstat::maxstat.test(Surv(time, event) ~ x,
smethod = "LogRank", pmethod = "Lau92" / "Lau94")`` (maxstat 0.7-25), including its log-rank scores
(``exactRankTests::cscores``) and its handling of tied marker values. No maintained Python library offers
this, hence numpy here.

The cut-point itself is exploratory: a hazard ratio computed with it on the same data is optimistic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pofa.errors import EstimationError
from pofa.stats import distributions as _dist
from pofa.stats.survival import ArrayLike1D, _as_event, _as_time, _frozen

__all__ = ["EXPLORATORY_NOTE", "CutpointResult", "logrank_scores", "maxstat_cutpoint"]

#: Label every cut-point result carries.
EXPLORATORY_NOTE = "exploratory: cut-point chosen on the same data"


@dataclass(frozen=True, slots=True)
class CutpointResult:
    """A maximally selected log-rank statistic and its cut-point (immutable).

    Attributes
    ----------
    cutpoint : float
        Estimated cut-point c: the groups are x <= c and x > c.
    statistic : float
        The maximum M of the standardized log-rank statistics over the candidate cuts.
    p_lau92 : float
        Lausen & Schumacher (1992) approximation to P(max > M) (maxstat ``pmethod = "Lau92"``).
    p_lau94 : float
        Improved Bonferroni bound of Lausen, Sauerbrei & Schumacher (1994) (``pmethod = "Lau94"``).
    cuts, statistics : numpy.ndarray
        Candidate cut-points and the standardized statistic at each.
    n, n_low, n_high : int
        Patients in total, with x <= cutpoint and with x > cutpoint.
    minprop, maxprop : float
        Range of candidate cuts, as fractions of the sample (maxstat's defaults 0.1 and 0.9).
    method : str
        The method label.
    note : str
        Always :data:`EXPLORATORY_NOTE`.
    """

    cutpoint: float
    statistic: float
    p_lau92: float
    p_lau94: float
    cuts: np.ndarray
    statistics: np.ndarray
    n: int
    n_low: int
    n_high: int
    minprop: float
    maxprop: float
    method: str
    note: str = EXPLORATORY_NOTE


def logrank_scores(time: ArrayLike1D, event: ArrayLike1D) -> np.ndarray:
    """Compute log-rank (Savage) scores as ``exactRankTests::cscores(Surv(time, event), "LogRank")``.

    a_i = event_i - sum_{j: t_j <= t_i} event_j / (N - r_j + 1), with r_j the *largest* rank among the
    ties of t_j (exactRankTests' ``irank``), so tied times share one cumulative sum.

    Parameters
    ----------
    time : array-like of float
        Follow-up times (>= 0).
    event : array-like of 0/1 or bool
        Event indicators.

    Returns
    -------
    numpy.ndarray
        The score of each observation, in input order.
    """
    t = _as_time(time)
    e = _as_event(event, t.size).astype(float)
    n = t.size
    rank_max = _dist.rank_max(t)
    fact = e / (n - rank_max + 1)
    order = np.argsort(t, kind="stable")
    csum = np.cumsum(fact[order])
    return np.asarray(e - csum[rank_max - 1], dtype=float)


def _p_lau92(b: float, minprop: float, maxprop: float) -> float:
    if b < 1:
        return 1.0
    db = float(_dist.norm_pdf(b))
    p = 4 * db / b + db * (b - 1 / b) * math.log((maxprop * (1 - minprop)) / ((1 - maxprop) * minprop))
    return max(p, 0.0)


def _p_lau94(b: float, n: int, m: np.ndarray) -> float:
    if m.size <= 1:
        d = 0.0
    else:
        m1 = m[:-1].astype(float)
        m2 = m[1:].astype(float)
        t = np.sqrt(1 - m1 * (n - m2) / ((n - m1) * m2))
        d = float(np.sum(1 / math.pi * math.exp(-(b**2) / 2) * (t - (b**2 / 4 - 1) * (t**3) / 6)))
    return 1 - (float(_dist.norm_cdf(b)) - float(_dist.norm_cdf(-b))) + d


def maxstat_cutpoint(
    time: ArrayLike1D,
    event: ArrayLike1D,
    x: ArrayLike1D,
    *,
    minprop: float = 0.1,
    maxprop: float = 0.9,
) -> CutpointResult:
    """Maximally selected log-rank statistic for a continuous marker, as ``maxstat::maxstat.test``.

    Parameters
    ----------
    time, event : array-like
        Follow-up time (>= 0) and 0/1 event indicator.
    x : array-like of float
        The marker (e.g. largest lesion diameter or SUVmax per patient).
    minprop, maxprop : float
        Candidate cuts leave at least ``floor(n * minprop)`` patients at or below the cut and at most
        ``floor(n * maxprop)`` (maxstat's rule; defaults 0.1 and 0.9).

    Returns
    -------
    CutpointResult
        Cut-point, M, the Lau92 and Lau94 p-values, all candidate statistics; labelled exploratory.

    Raises
    ------
    EstimationError
        When ``x`` is not numeric, of another length or not finite, the proportions are invalid, there are no
        events, or no candidate cut-point exists.
    """
    t = _as_time(time)
    e = _as_event(event, t.size)
    try:
        xv = np.array(x, dtype=float, copy=True).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise EstimationError(f"x must be numbers (a continuous marker): {exc}") from None
    if xv.size != t.size:
        raise EstimationError(f"x has {xv.size} values but time has {t.size}: give one per patient.")
    if not np.isfinite(xv).all():
        raise EstimationError("x has missing or infinite values: drop those patients first.")
    if not (0.0 <= minprop < maxprop <= 1.0):
        raise EstimationError(f"need 0 <= minprop < maxprop <= 1, got minprop={minprop}, maxprop={maxprop}.")
    if e.sum() == 0:
        raise EstimationError("no events: the log-rank statistic is not defined.")
    n = t.size
    y = logrank_scores(t, e)
    order = np.argsort(xv, kind="stable")
    y = y[order]
    xs = xv[order]
    first = np.ones(n, dtype=bool)
    first[1:] = xs[1:] != xs[:-1]
    m = np.flatnonzero(first)  # = (R's which(!ties)) - 1: patients strictly below each distinct value
    if minprop == 0 and maxprop == 1:
        m = m[1:-1]
    else:
        lo = math.floor(n * minprop)
        hi = math.floor(n * maxprop)
        if (m < lo).all():
            raise EstimationError(
                "minprop is too large: no candidate cut leaves that many patients below it."
            )
        if (m > hi).all():
            raise EstimationError("maxprop is too small: no candidate cut leaves that few patients below it.")
        m = m[(m >= max(1, lo)) & (m <= hi)]
    if m.size < 1:
        raise EstimationError(
            "no candidate cut-point between minprop and maxprop: the marker has too few distinct values."
        )
    ss = y.sum()
    expected = m / n * ss
    var = m * (n - m) / (n**2 * (n - 1)) * (n * np.sum(y**2) - ss**2)
    if not (var > 0).all():
        raise EstimationError("the log-rank scores do not vary: the statistic is not defined.")
    stats = np.abs((np.cumsum(y)[m - 1] - expected) / np.sqrt(var))
    best = int(np.argmax(stats))
    stat = float(stats[best])
    cut = float(xs[m[best] - 1])
    cuts = xs[m - 1]
    return CutpointResult(
        cutpoint=cut,
        statistic=stat,
        p_lau92=_p_lau92(stat, minprop, maxprop),
        p_lau94=_p_lau94(stat, n, m),
        cuts=_frozen(cuts),
        statistics=_frozen(stats),
        n=n,
        n_low=int((xv <= cut).sum()),
        n_high=int((xv > cut).sum()),
        minprop=float(minprop),
        maxprop=float(maxprop),
        method=(
            "Maximally selected log-rank statistic, Lausen-Schumacher corrected p (maxstat::maxstat.test, "
            "smethod = 'LogRank', pmethod = 'Lau92'/'Lau94')"
        ),
    )
