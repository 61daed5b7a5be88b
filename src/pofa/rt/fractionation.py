"""Fractionation: EQD2 and BED of a course from the linear-quadratic model.

With ``D`` the total dose, ``n`` the number of fractions, ``d = D / n`` the dose per fraction and ``a/b`` the
alpha/beta ratio (Gy):

- BED  = D (1 + d / (a/b))                  (Fowler, Br J Radiol 1989;62:679)
- EQD2 = D (d + a/b) / (2 + a/b) = BED / (1 + 2 / (a/b))   (Withers et al. 1983; Joiner and Bentzen)

Lymphoma is commonly given a/b = 10 Gy (setting ``radiotherapy.alpha_beta_gy``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pofa.errors import SettingsError

__all__ = ["bed", "eqd2"]


def _check(total_gy: ArrayLike, fractions: ArrayLike, alpha_beta_gy: float) -> tuple[
        NDArray[np.float64], NDArray[np.float64]]:
    if not (np.isfinite(alpha_beta_gy) and alpha_beta_gy > 0):
        raise SettingsError(f"alpha/beta must be a positive number of Gy; got {alpha_beta_gy!r}.")
    d_total = np.asarray(total_gy, dtype=np.float64)
    n = np.asarray(fractions, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        if np.any((d_total < 0) | (n <= 0)):
            raise SettingsError("doses must be >= 0 Gy and fractions > 0.")
    return d_total, n


def bed(total_gy: ArrayLike, fractions: ArrayLike, alpha_beta_gy: float = 10.0) -> NDArray[np.float64]:
    """Biologically effective dose, ``D (1 + d / (a/b))``.

    Parameters
    ----------
    total_gy : array_like
        Total physical dose in Gy (NaN passes through).
    fractions : array_like
        Number of fractions (> 0; NaN passes through).
    alpha_beta_gy : float
        The alpha/beta ratio in Gy (> 0).

    Returns
    -------
    numpy.ndarray
        BED in Gy, same shape as the broadcast inputs.

    Raises
    ------
    pofa.errors.SettingsError
        When alpha/beta is not positive, a dose is negative or a fraction count is not positive.
    """
    d_total, n = _check(total_gy, fractions, alpha_beta_gy)
    return np.asarray(d_total * (1.0 + (d_total / n) / alpha_beta_gy), dtype=np.float64)


def eqd2(total_gy: ArrayLike, fractions: ArrayLike, alpha_beta_gy: float = 10.0) -> NDArray[np.float64]:
    """Equivalent dose in 2-Gy fractions, ``D (d + a/b) / (2 + a/b)``.

    Parameters
    ----------
    total_gy : array_like
        Total physical dose in Gy (NaN passes through).
    fractions : array_like
        Number of fractions (> 0; NaN passes through).
    alpha_beta_gy : float
        The alpha/beta ratio in Gy (> 0).

    Returns
    -------
    numpy.ndarray
        EQD2 in Gy.

    Raises
    ------
    pofa.errors.SettingsError
        As :func:`bed`.
    """
    d_total, n = _check(total_gy, fractions, alpha_beta_gy)
    return np.asarray(d_total * (d_total / n + alpha_beta_gy) / (2.0 + alpha_beta_gy), dtype=np.float64)
