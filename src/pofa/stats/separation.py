"""Detection of complete and quasi-complete separation in a binary logistic model.

Maximum-likelihood logistic (and GEE) estimates are infinite when a combination of the terms separates the
lesions with the outcome from those without, completely or with ties (quasi-complete). statsmodels only
warns on complete separation and misses quasi-complete separation, so pofa checks every model first with the
linear program of Konis (2007), as R ``detectseparation::detect_separation`` does (implemented by
``firthmodels.detect_separation``, which is used here), and says which coefficients are infinite.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from firthmodels import detect_separation
from scipy.optimize import linprog

SEPARATION_METHOD = "linear program of Konis (2007), as R detectseparation::detect_separation"


@dataclass(frozen=True, slots=True)
class SeparationCheck:
    """Result of :func:`check_separation`.

    Parameters
    ----------
    separated : bool
        Whether some maximum-likelihood estimate is infinite.
    complete : bool
        Complete separation (a combination of the terms splits events from non-events without ties); when
        ``separated`` and not ``complete`` the separation is quasi-complete.
    infinite_terms : tuple of str
        Coefficients whose estimate is infinite, each with its direction, e.g. ``"diameter_cm>=5 (+Inf)"``.
    method : str
        How it was checked.
    """

    separated: bool
    complete: bool
    infinite_terms: tuple[str, ...]
    method: str = SEPARATION_METHOD

    @property
    def kind(self) -> str:
        """``"none"``, ``"complete"`` or ``"quasi-complete"``."""
        if not self.separated:
            return "none"
        return "complete" if self.complete else "quasi-complete"

    def note(self) -> str:
        """Sentence for the result notes (empty when there is no separation)."""
        if not self.separated:
            return ""
        return (
            f"{self.kind} separation: maximum-likelihood estimate infinite for "
            f"{', '.join(self.infinite_terms)} ({self.method})"
        )


def check_separation(X: np.ndarray, y: np.ndarray, names: tuple[str, ...] | list[str]) -> SeparationCheck:
    """Check a logistic design for complete or quasi-complete separation.

    Parameters
    ----------
    X : ndarray, shape (n, p)
        Design matrix including the intercept column; full column rank (see
        :func:`pofa.stats.factors.estimability_problems`).
    y : ndarray of 0/1, shape (n,)
        Outcome with both values present.
    names : sequence of str
        Names of the columns of ``X``.

    Notes
    -----
    Infinite coefficients are found with Konis' bounded LP (max ``sum(Xb' beta)`` subject to
    ``Xb beta >= 0``, ``-1 <= beta <= 1``, with ``Xb = (2y - 1) X``), as ``detect_separation``: a non-zero
    solution component means an infinite estimate (tolerance 1e-4). Complete separation is then told from
    quasi-complete by a second LP, max ``t`` subject to ``Xb beta >= t``, ``|beta| <= 1``, ``t <= 1``:
    ``t > 0`` only when a strict separating hyperplane exists.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    res = detect_separation(X, y, fit_intercept=False)
    directions = np.asarray(res.directions)
    infinite = tuple(
        f"{names[j]} ({'+Inf' if d > 0 else '-Inf'})" for j, d in enumerate(directions) if d != 0
    )
    separated = bool(res.separation)
    complete = False
    if separated:
        Xb = X * (2.0 * y - 1.0)[:, None]
        n, p = Xb.shape
        # variables: beta (p), t; minimise -t subject to t - Xb beta <= 0
        c = np.r_[np.zeros(p), -1.0]
        A = np.hstack([-Xb, np.ones((n, 1))])
        lp = linprog(c, A_ub=A, b_ub=np.zeros(n), bounds=[(-1.0, 1.0)] * p + [(None, 1.0)], method="highs")
        complete = bool(lp.success and -lp.fun > 1e-8)
    return SeparationCheck(separated=separated, complete=complete, infinite_terms=infinite)
