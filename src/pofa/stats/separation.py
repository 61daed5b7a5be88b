"""Detection of complete and quasi-complete separation in a binary logistic model.

Maximum-likelihood logistic (and GEE) estimates are infinite when a combination of the terms separates the
lesions with the outcome from those without, completely or with ties (quasi-complete). statsmodels only
warns on complete separation and misses quasi-complete separation, so pofa checks every model first with the
linear program of Konis (2007), as R ``detectseparation::detect_separation`` does (the LP of
``firthmodels.detect_separation``), and says which coefficients are infinite.

Cost: a design of n lesions has n LP constraints, one per row, but rows with the same terms and the same
outcome give the same constraint. The LP is solved on the distinct rows only, with the objective summed over
all rows (the same vector as over the full design), so it is the same linear program: with yes/no and
thresholded factors a design of 85,000 lesions has at most 2^k distinct rows per outcome, and the check takes
milliseconds instead of seconds (and no solver memory proportional to n).

Most designs of a real cohort need no linear program at all: when the rows that occur with both outcomes
span the design's column space, the only coefficient vector that meets every constraint is zero (each such
row ``x`` gives ``x'beta >= 0`` and ``-x'beta >= 0``), so no estimate is infinite. That overlap is checked
first, from the distinct rows (a rank test of a few rows); the LP solver (scipy.optimize, whose import alone
costs more than the check) is loaded only for the designs it does not settle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: |beta| above this in the LP solution marks an infinite estimate (detectseparation's and firthmodels' tol).
LP_TOL = 1e-4

SEPARATION_METHOD = "linear program of Konis (2007), as R detectseparation::detect_separation"


@dataclass(frozen=True, slots=True)
class SeparationCheck:
    """Result of :func:`check_separation`.

    Attributes
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
        """The kind of separation.

        Returns
        -------
        str
            ``"none"``, ``"complete"`` or ``"quasi-complete"``.
        """
        if not self.separated:
            return "none"
        return "complete" if self.complete else "quasi-complete"

    def note(self) -> str:
        """Return the sentence for the result notes (empty when there is no separation).

        Returns
        -------
        str
            The kind of separation and the terms whose estimate is infinite.
        """
        if not self.separated:
            return ""
        return (
            f"{self.kind} separation: maximum-likelihood estimate infinite for "
            f"{', '.join(self.infinite_terms)} ({self.method})"
        )


#: Smallest singular value, relative to the largest, for the overlapping rows to count as spanning the
#: column space (far above rounding error, so a nearly rank-deficient overlap goes to the LP instead).
_OVERLAP_RCOND = 1e-8


def _row_keys(Z: np.ndarray) -> np.ndarray:
    """One opaque key per row of a C-contiguous 2-D array (its bytes), for one-dimensional sorting."""
    return Z.view(np.dtype((np.void, Z.dtype.itemsize * Z.shape[1]))).ravel()


def overlap_rules_out_separation(X: np.ndarray, y: np.ndarray) -> bool:
    """Whether the rows observed with both outcomes alone show that no estimate is infinite.

    Parameters
    ----------
    X : ndarray, shape (n, p)
        Design matrix including the intercept column.
    y : ndarray of 0/1, shape (n,)
        Outcome.

    Returns
    -------
    bool
        True when the distinct rows of ``X`` that occur both with ``y = 1`` and with ``y = 0`` have full
        column rank ``p`` (well conditioned). Then every coefficient vector ``beta`` with
        ``(2y - 1) x'beta >= 0`` for all rows has ``x'beta = 0`` on those rows, hence ``beta = 0``: Konis'
        LP has the zero vector as its only feasible point, and there is no separation. False means only
        "not settled by this check".
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    p = X.shape[1]
    # distinct (x, y) rows, compared as raw bytes: a one-dimensional sort, about ten times quicker than
    # np.unique(axis=0) on 20,000 rows. Byte equality implies equal values, so a row split in two (0.0 and
    # -0.0) can only hide an overlap (the LP then decides), never invent one.
    Z = np.ascontiguousarray(np.column_stack([X, y]))
    _, first = np.unique(_row_keys(Z), return_index=True)
    distinct = Z[first]
    _, inverse, counts = np.unique(_row_keys(np.ascontiguousarray(distinct[:, :p])), return_inverse=True,
                                   return_counts=True)
    # each (x, y) is listed once, so an x listed twice was seen with both outcomes
    overlap = distinct[(counts[inverse] == 2) & (distinct[:, p] == 1), :p]
    if overlap.shape[0] < p:
        return False
    sv = np.linalg.svd(overlap, compute_uv=False)
    return bool(sv[-1] > _OVERLAP_RCOND * sv[0])


def _konis_lp(objective: np.ndarray, Xb: np.ndarray) -> np.ndarray:
    """Direction (+1, -1, 0) of each coefficient from Konis' bounded LP on the constraint rows ``Xb``."""
    from scipy.optimize import linprog  # loaded only when the overlap check leaves the question open

    n, p = Xb.shape
    lp = linprog(objective, A_ub=-Xb, b_ub=np.zeros(n), bounds=[(-1.0, 1.0)] * p, method="highs")
    if not lp.success:
        raise RuntimeError(f"separation check: LP solver failed: {lp.message}")
    beta = np.asarray(lp.x)
    return np.where(np.abs(beta) <= LP_TOL, 0, np.sign(beta)).astype(np.int8)


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

    Returns
    -------
    SeparationCheck
        Whether some estimate is infinite, whether the separation is complete, and the infinite terms.

    Notes
    -----
    When the rows seen with both outcomes span the column space (:func:`overlap_rules_out_separation`)
    there is no separation and no LP is solved. Otherwise the LP is solved on the distinct rows of ``Xb``
    (same constraints, objective summed over all rows); when it finds separation, the full LP is solved
    again so that the infinite terms are detect_separation's. Infinite coefficients are found with Konis'
    bounded LP (max ``sum(Xb' beta)`` subject to ``Xb beta >= 0``, ``-1 <= beta <= 1``, with
    ``Xb = (2y - 1) X``), as ``detect_separation``: a non-zero solution component means an infinite estimate
    (tolerance 1e-4). Complete separation is then told from
    quasi-complete by a second LP, max ``t`` subject to ``Xb beta >= t``, ``|beta| <= 1``, ``t <= 1``:
    ``t > 0`` only when a strict separating hyperplane exists.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if overlap_rules_out_separation(X, y):
        return SeparationCheck(separated=False, complete=False, infinite_terms=())
    Xb = X * (2.0 * y - 1.0)[:, None]
    objective = -np.sum(Xb, axis=0)  # over all rows, as detect_separation
    Xu = np.unique(Xb, axis=0)  # the distinct constraints
    directions = _konis_lp(objective, Xu)
    if np.any(directions != 0) and Xu.shape[0] < Xb.shape[0]:
        # Separated (rare at scale): the LP optimum need not be unique, and which optimal vertex the solver
        # returns can depend on repeated rows; solve the full LP, as detect_separation does, so that the
        # infinite terms named are exactly detect_separation's.
        directions = _konis_lp(objective, Xb)
    n, p = Xu.shape
    infinite = tuple(
        f"{names[j]} ({'+Inf' if d > 0 else '-Inf'})" for j, d in enumerate(directions) if d != 0
    )
    separated = bool(np.any(directions != 0))
    complete = False
    if separated:
        # variables: beta (p), t; minimise -t subject to t - Xb beta <= 0
        from scipy.optimize import linprog

        c = np.r_[np.zeros(p), -1.0]
        A = np.hstack([-Xu, np.ones((n, 1))])
        lp2 = linprog(c, A_ub=A, b_ub=np.zeros(n), bounds=[(-1.0, 1.0)] * p + [(None, 1.0)], method="highs")
        complete = bool(lp2.success and lp2.fun is not None and -lp2.fun > 1e-8)
    return SeparationCheck(separated=separated, complete=complete, infinite_terms=infinite)
