"""The tests of Table 1 that compare groups, from :mod:`scipy.special` alone.

Welch's t-test, one-way ANOVA, Kruskal-Wallis, Pearson's chi-square test of a contingency table and Fisher's
exact test of a 2 x 2 table, computed as :mod:`scipy.stats` computes them (``ttest_ind(equal_var=False)``,
``f_oneway``, ``kruskal``, ``chi2_contingency``, ``fisher_exact``; R: ``t.test``, ``oneway.test(var.equal =
TRUE)``, ``kruskal.test``, ``chisq.test``, ``fisher.test``), including their degenerate cases (constant
groups, a group of one), with the tails ``stdtr``, ``fdtrc`` and ``chdtrc`` that scipy.stats itself
evaluates. Importing :mod:`scipy.stats` costs about 0.4 s of CPU, more than the whole of Table 1 at 5,000
patients. They are descriptive tests of the report's tables (as tableone's were), not estimators of the
analysis: they live with the tables. ``tests/test_group_tests.py`` checks each function against scipy.stats
and Fisher's test against R's ``fisher.test`` (tests/reference/table1/fisher.R).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

__all__ = [
    "ChiSquareResult",
    "GroupTest",
    "chi2_contingency",
    "fisher_exact_2x2",
    "kruskal_wallis",
    "one_way_anova",
    "welch_t_test",
]

#: R's ``fisher.test``: probabilities within this relative distance of the observed table's count as equal.
FISHER_REL_ERR = 1e-7


@dataclass(frozen=True, slots=True)
class GroupTest:
    """The result of a test comparing groups.

    Attributes
    ----------
    statistic : float
        The test statistic (t, F, H, or the odds ratio for Fisher's test); ``nan`` when undefined.
    p_value : float
        Two-sided p-value (upper tail for F, H and chi-square); ``nan`` when undefined.
    df : float
        Degrees of freedom (Welch's df for the t-test; the numerator's for F); ``nan`` when none.
    """

    statistic: float
    p_value: float
    df: float = math.nan


@dataclass(frozen=True, slots=True)
class ChiSquareResult:
    """Pearson's chi-square test of independence of a contingency table.

    Attributes
    ----------
    statistic : float
        The chi-square statistic (with Yates' continuity correction for one degree of freedom, if asked).
    p_value : float
        Upper-tail p-value.
    df : int
        Degrees of freedom, ``(rows - 1) * (columns - 1)``.
    min_expected : float
        The smallest expected count under independence.
    """

    statistic: float
    p_value: float
    df: int
    min_expected: float


def _floats(samples: Sequence[Sequence[float] | np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(s, dtype=float).ravel() for s in samples]


def welch_t_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> GroupTest:
    """Compare two means by Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``; R ``t.test``).

    Parameters
    ----------
    a, b : array_like
        The two samples (no missing values).

    Returns
    -------
    GroupTest
        The statistic t, the two-sided p-value and Welch's degrees of freedom. Both samples constant: t is
        infinite (p = 0) when the means differ and undefined when they are equal, as scipy.
    """
    x, y = _floats([a, b])
    n1, n2 = x.size, y.size
    if n1 == 0 or n2 == 0:
        return GroupTest(math.nan, math.nan, math.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        # scipy's _var: the mean square about the mean, times n / (n - 1)
        v1 = np.mean((x - np.mean(x)) ** 2) * (np.float64(n1) / (n1 - 1))
        v2 = np.mean((y - np.mean(y)) ** 2) * (np.float64(n2) / (n2 - 1))
        vn1, vn2 = v1 / n1, v2 / n2
        df = (vn1 + vn2) ** 2 / (vn1**2 / (n1 - 1) + vn2**2 / (n2 - 1))
        df = np.float64(1.0) if np.isnan(df) else df  # zero variances: any df, as scipy
        t = np.divide(np.mean(x) - np.mean(y), np.sqrt(vn1 + vn2))
        p = 2 * special.stdtr(df, -np.abs(t))
    return GroupTest(float(t), float(p), float(df))


def one_way_anova(samples: Sequence[Sequence[float] | np.ndarray]) -> GroupTest:
    """Compare means by one-way ANOVA (``scipy.stats.f_oneway``; R ``oneway.test(var.equal = TRUE)``).

    Parameters
    ----------
    samples : sequence of array_like
        Two or more groups (no missing values).

    Returns
    -------
    GroupTest
        F, its upper-tail p-value and the numerator's degrees of freedom. As scipy: every group constant
        gives F = inf (p = 0), all values equal gives nan, and so do an empty group or groups of one value
        each.

    Raises
    ------
    ValueError
        With fewer than two groups.
    """
    groups = _floats(samples)
    k = len(groups)
    if k < 2:
        raise ValueError(f"one-way ANOVA needs at least two groups, got {k}")
    if any(g.size == 0 for g in groups) or all(g.size == 1 for g in groups):
        return GroupTest(math.nan, math.nan, float(k - 1))
    alldata = np.concatenate(groups)
    bign = alldata.size
    all_const = all(bool(np.all(np.diff(g) == 0)) for g in groups)
    all_same = bool(np.all(np.diff(alldata) == 0))
    offset = np.mean(alldata)
    centred = alldata - offset
    normalized_ss = np.sum(centred) ** 2.0 / bign
    sstot = _vecdot(centred, centred) - normalized_ss
    ssbn = np.float64(0.0)
    for g in groups:
        ssbn = ssbn + np.sum(g - offset) ** 2.0 / g.size
    ssbn = ssbn - normalized_ss
    sswn = sstot - ssbn
    dfbn, dfwn = k - 1, bign - k
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (ssbn / dfbn) / (sswn / dfwn)
    if all_const:
        f = np.float64(np.inf)
    if all_same:
        f = np.float64(np.nan)
    return GroupTest(float(f), float(special.fdtrc(dfbn, dfwn, f)), float(dfbn))


def _vecdot(a: np.ndarray, b: np.ndarray) -> np.float64:
    vecdot = getattr(np, "vecdot", None)  # numpy >= 2, as scipy's array API calls it
    return np.float64(vecdot(a, b) if vecdot is not None else np.dot(a, b))


def kruskal_wallis(samples: Sequence[Sequence[float] | np.ndarray]) -> GroupTest:
    """Compare groups by Kruskal-Wallis' test, ties corrected (``scipy.stats.kruskal``; R ``kruskal.test``).

    Parameters
    ----------
    samples : sequence of array_like
        Two or more groups (no missing values).

    Returns
    -------
    GroupTest
        H (divided by the tie correction), its chi-square upper-tail p-value on ``k - 1`` degrees of freedom.
        All values equal: H and p are undefined (``nan``), as scipy.

    Raises
    ------
    ValueError
        With fewer than two groups or an empty group.
    """
    groups = _floats(samples)
    k = len(groups)
    if k < 2:
        raise ValueError(f"Kruskal-Wallis needs at least two groups, got {k}")
    if any(g.size == 0 for g in groups):
        raise ValueError("Kruskal-Wallis: a group without values")
    n = [g.size for g in groups]
    totaln = sum(n)
    alldata = np.concatenate(groups)
    order = np.argsort(alldata, kind="stable")
    s = alldata[order]
    first = np.concatenate(([True], s[1:] != s[:-1]))
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, totaln))
    # scipy's tie counts: one entry per value, the count at the first of each run of ties and 0 elsewhere
    t = np.zeros(totaln)
    t[starts] = counts
    ties = 1 - np.sum(t**3 - t) / (totaln**3 - totaln)
    ranked = np.empty(totaln)
    ranked[order] = np.repeat(starts + 1 + (counts - 1) / 2.0, counts)  # average ranks of ties
    bounds = np.cumsum([0, *n])
    ssbn = sum(np.sum(ranked[bounds[i] : bounds[i + 1]]) ** 2 / n[i] for i in range(k))
    with np.errstate(divide="ignore", invalid="ignore"):
        h = (12.0 / (totaln * (totaln + 1)) * ssbn - 3 * (totaln + 1)) / ties
        p = special.chdtrc(k - 1, h)
    return GroupTest(float(h), float(p), float(k - 1))


def chi2_contingency(
    observed: Sequence[Sequence[int]] | np.ndarray, correction: bool = True
) -> ChiSquareResult:
    """Test a contingency table by Pearson's chi-square (``scipy.stats.chi2_contingency``; R ``chisq.test``).

    Parameters
    ----------
    observed : array_like of int
        The table of counts (rows x columns), every row and column with a count.
    correction : bool
        Yates' continuity correction when the table has one degree of freedom (2 x 2), as both scipy's and
        R's defaults (the size of the correction capped at the distance to the expected count, as scipy).

    Returns
    -------
    ChiSquareResult
        The statistic, p-value, degrees of freedom and smallest expected count. A table with one row or one
        column has no degree of freedom: statistic 0, p = 1, as scipy.

    Raises
    ------
    ValueError
        For an empty table, negative counts, or a row or column without any count.
    """
    obs = np.asarray(observed)
    if obs.size == 0 or obs.ndim != 2:
        raise ValueError("chi-square test: the table must be two-dimensional and not empty")
    if np.any(obs < 0):
        raise ValueError("chi-square test: counts must be nonnegative")
    expected = np.outer(obs.sum(axis=1), obs.sum(axis=0)) / obs.sum()
    if np.any(expected == 0):
        raise ValueError("chi-square test: a row or column of the table has no count")
    dof = expected.size - sum(expected.shape) + expected.ndim - 1
    if dof == 0:
        return ChiSquareResult(0.0, 1.0, 0, float(expected.min()))
    f_obs: np.ndarray = obs
    if dof == 1 and correction:
        diff = expected - obs
        f_obs = obs + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    stat = ((f_obs - expected) ** 2 / expected).sum()
    return ChiSquareResult(float(stat), float(special.chdtrc(dof, stat)), int(dof), float(expected.min()))


def fisher_exact_2x2(table: Sequence[Sequence[int]] | np.ndarray) -> GroupTest:
    """Test a 2 x 2 table by Fisher's exact test, two-sided (R ``fisher.test``; ``scipy.stats.fisher_exact``).

    The p-value is the sum of the hypergeometric probabilities (margins fixed) of every table no more probable
    than the observed one, "no more" with R's relative tolerance of 1e-7.

    Parameters
    ----------
    table : array_like of int, shape (2, 2)
        The counts.

    Returns
    -------
    GroupTest
        The sample odds ratio ``(a d) / (b c)`` (as scipy's; ``inf`` when ``b c = 0``, ``nan`` when a row or
        column is empty) and the p-value (1 when a row or column is empty).

    Raises
    ------
    ValueError
        When the table is not 2 x 2 of nonnegative counts.
    """
    c = np.asarray(table, dtype=np.int64)
    if c.shape != (2, 2) or np.any(c < 0):
        raise ValueError("Fisher's exact test: a 2 x 2 table of nonnegative counts is needed")
    if 0 in c.sum(axis=0) or 0 in c.sum(axis=1):
        return GroupTest(math.nan, 1.0)
    odds = float(c[0, 0] * c[1, 1] / (c[1, 0] * c[0, 1])) if c[1, 0] > 0 and c[0, 1] > 0 else math.inf
    m, n = int(c[:, 0].sum()), int(c[:, 1].sum())  # column sums (white, black balls)
    k = int(c[0, :].sum())  # first row's sum (balls drawn)
    lo, hi = max(0, k - n), min(k, m)
    support = np.arange(lo, hi + 1, dtype=float)
    # log of choose(m, x) * choose(n, k - x) up to a constant that the normalisation removes (R's dnhyper);
    # by betaln, as scipy's hypergeom: log choose(a, b) = -log(a + 1) - betaln(a - b + 1, b + 1)
    logd = -special.betaln(m - support + 1, support + 1)
    logd -= special.betaln(n - k + support + 1, k - support + 1)
    d = np.exp(logd - logd.max())
    d /= d.sum()
    observed = d[int(c[0, 0]) - lo]
    p = float(d[d <= observed * (1 + FISHER_REL_ERR)].sum())
    return GroupTest(odds, max(0.0, min(1.0, p)))
