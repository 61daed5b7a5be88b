"""The few distribution functions the estimators need, from :mod:`scipy.special` alone.

Importing :mod:`scipy.stats` costs about a second of CPU (it loads every distribution, optimisers and more);
these functions are the very ones :mod:`scipy.stats` evaluates (``norm.sf(x)`` is ``ndtr(-x)``,
``norm.ppf`` is ``ndtri``, ``chi2.sf(x, df)`` is ``chdtrc(df, x)``, ``beta.ppf(q, a, b)`` is
``betaincinv(a, b, q)``), so results are the same to the last bit, at a fraction of the import cost.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

__all__ = ["beta_ppf", "chi2_sf", "norm_cdf", "norm_pdf", "norm_ppf", "norm_sf", "rank_average", "rank_max"]

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def norm_sf(x: Any) -> Any:
    """Upper tail of the standard normal (``scipy.stats.norm.sf``; R ``pnorm(x, lower = FALSE)``).

    Parameters
    ----------
    x : float or array_like
        Quantiles.

    Returns
    -------
    float or numpy.ndarray
        ``P(Z > x)``.
    """
    return special.ndtr(-np.asarray(x, dtype=float)) if np.ndim(x) else float(special.ndtr(-float(x)))


def norm_cdf(x: Any) -> Any:
    """Distribution function of the standard normal (``scipy.stats.norm.cdf``; R ``pnorm``).

    Parameters
    ----------
    x : float or array_like
        Quantiles.

    Returns
    -------
    float or numpy.ndarray
        ``P(Z <= x)``.
    """
    return special.ndtr(np.asarray(x, dtype=float)) if np.ndim(x) else float(special.ndtr(float(x)))


def norm_ppf(q: float) -> float:
    """Quantile of the standard normal (``scipy.stats.norm.ppf``; R ``qnorm``).

    Parameters
    ----------
    q : float
        Probability.

    Returns
    -------
    float
        The ``q`` quantile.
    """
    return float(special.ndtri(q))


def norm_pdf(x: float) -> float:
    """Density of the standard normal (``scipy.stats.norm.pdf``; R ``dnorm``).

    Parameters
    ----------
    x : float
        Where.

    Returns
    -------
    float
        The density.
    """
    return math.exp(-x * x / 2.0) / _SQRT_2PI


def chi2_sf(x: float, df: float) -> float:
    """Upper tail of the chi-squared distribution (``scipy.stats.chi2.sf``; R ``pchisq(lower = FALSE)``).

    Parameters
    ----------
    x : float
        The statistic.
    df : float
        Degrees of freedom.

    Returns
    -------
    float
        ``P(X > x)`` (1 for ``x <= 0``).
    """
    return 1.0 if x <= 0 else float(special.chdtrc(df, x))


def beta_ppf(q: float, a: float, b: float) -> float:
    """Quantile of the beta distribution (``scipy.stats.beta.ppf``; R ``qbeta``).

    Parameters
    ----------
    q : float
        Probability.
    a, b : float
        Shape parameters.

    Returns
    -------
    float
        The ``q`` quantile.
    """
    return float(special.betaincinv(a, b, q))


def rank_max(x: np.ndarray) -> np.ndarray:
    """Rank 1..n, ties given their largest rank (``scipy.stats.rankdata(x, method="max")``).

    R: ``rank(x, ties.method = "max")``.

    Parameters
    ----------
    x : numpy.ndarray
        Values without NaN.

    Returns
    -------
    numpy.ndarray
        Integer ranks.
    """
    s = np.sort(x, kind="stable")
    return np.searchsorted(s, x, side="right").astype(np.int64)


def rank_average(x: np.ndarray) -> np.ndarray:
    """Rank 1..n, ties given their mean rank (``scipy.stats.rankdata(x)``; R ``rank``).

    Parameters
    ----------
    x : numpy.ndarray
        Values without NaN.

    Returns
    -------
    numpy.ndarray
        Ranks as floats.
    """
    s = np.sort(x, kind="stable")
    below = np.searchsorted(s, x, side="left")
    upto = np.searchsorted(s, x, side="right")
    return (below + 1 + upto) / 2.0
