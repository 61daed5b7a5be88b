"""Firth-penalised logistic regression with profile penalised-likelihood CIs (R ``logistf``).

Firth's (1993) penalty ``log L(beta) + 0.5 log|I(beta)|`` gives finite estimates under separation and
reduces small-sample bias (Heinze & Schemper 2002). pofa fits it with ``firthmodels.FirthLogisticRegression``
and reports what ``logistf(y ~ ..., pl = TRUE)`` reports:

* coefficients: maximisers of the penalised likelihood (equal to brglm2's ``type = "AS_mean"`` for the logit
  link; 1e-7 relative in the tests);
* 95% CIs: profile penalised likelihood (the values of ``beta_j`` where twice the drop of the profiled
  penalised log-likelihood equals the 0.95 quantile of chi-square(1)); 1e-8 relative against a profile
  computed in R;
* p: penalised likelihood-ratio test of ``beta_j = 0``;
* SE: ``sqrt(diag((X' W X)^-1))`` at the estimate, the SE logistf and brglm2 print (firthmodels' own ``bse_``
  uses the augmented information and is 3-5% smaller, so it is not used).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import expit

from pofa.errors import EstimationError
from pofa.stats.factors import LesionDesign, estimability_problems
from pofa.stats.logistic import CoefficientTable

if TYPE_CHECKING:
    from firthmodels import FirthLogisticRegression

FIRTH_METHOD = (
    "Firth-penalized logistic regression, profile penalized-likelihood 95% CI and penalized "
    "likelihood-ratio p (R logistf)"
)


#: Tolerances tried in turn for the point estimates (largest gradient component and largest step): 1e-9
#: first; if step halving stalls at float precision there, 1e-6; then logistf's own defaults
#: (``logistf.control(xconv = 1e-5, gconv = 1e-5)``), so that a fit logistf calls converged is never reported
#: as failed.
FIRTH_TOLERANCES = (1e-9, 1e-6, 1e-5)
#: The convergence rule in words.
FIRTH_CONVERGENCE = (
    "modified-score Newton-Raphson with step halving (firthmodels), converged when the largest gradient "
    "component and the largest step are both < 1e-9 (else 1e-6, else logistf.control's xconv = gconv = 1e-5) "
    "within 200 iterations"
)


def _penalized_fit(X: np.ndarray, y: np.ndarray) -> FirthLogisticRegression:
    """The firthmodels fit of the point estimates (``X`` without the intercept column).

    The estimates are fitted with gradient and step tolerance 1e-9 (firthmodels' default 1e-4 leaves
    coefficients ~1e-5 off); if step halving stalls at float precision there, 1e-6 is used, then logistf's
    defaults 1e-5 (:data:`FIRTH_TOLERANCES`). The tolerance reached is the model's ``gtol``.

    Raises
    ------
    EstimationError
        When the fit fails or does not converge even at logistf's tolerance (the message says why).
    """
    from firthmodels import FirthLogisticRegression  # with scikit-learn: loaded only when a fit needs it

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            for tol in FIRTH_TOLERANCES:
                caught.clear()
                model = FirthLogisticRegression(backend="numpy", max_iter=200, gtol=tol, xtol=tol).fit(X, y)
                if model.converged_:
                    break
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise EstimationError(f"Firth fit failed: {exc}") from None
    if not model.converged_:
        msgs = "; ".join(sorted({str(w.message) for w in caught}))
        raise EstimationError(
            "Firth-penalized fit did not converge in 200 iterations even at logistf's tolerance (1e-5 on the "
            "gradient and the step)" + (f" ({msgs})" if msgs else "")
        )
    return model


def _information(design: LesionDesign, beta: np.ndarray) -> np.ndarray:
    """Unpenalized Fisher information ``X' W X`` at ``beta`` (intercept first)."""
    eta = design.X @ beta
    w = expit(eta) * expit(-eta)
    info: np.ndarray = (design.X * w[:, None]).T @ design.X
    return info


def firth_estimates(design: LesionDesign) -> tuple[np.ndarray, np.ndarray]:
    """Return Firth-penalized coefficients (intercept first) and ``(X'WX)^-1`` at the estimate.

    The point estimates of :func:`fit_firth` (R ``logistf::logistf``) without its profile-likelihood CIs
    and LR tests, which take ~100x longer (the risk model's cross-validation fits many models).

    Parameters
    ----------
    design : LesionDesign
        From :func:`pofa.stats.factors.build_design`.

    Returns
    -------
    tuple of numpy.ndarray
        The coefficients and their covariance matrix (symmetrised).

    Raises
    ------
    EstimationError
        When the penalized fit fails or does not converge, or the information matrix is singular.
    """
    model = _penalized_fit(np.asarray(design.X)[:, 1:], np.asarray(design.y))
    beta = np.r_[model.intercept_, model.coef_].astype(float)
    try:
        cov = np.linalg.inv(_information(design, beta))
    except np.linalg.LinAlgError:
        raise EstimationError(
            "the Fisher information of the Firth fit is singular (collinear terms?)"
        ) from None
    return beta, (cov + cov.T) / 2.0


def fit_firth(design: LesionDesign) -> CoefficientTable:
    """Firth-penalised logistic regression of a lesion outcome (lesions treated as independent).

    Parameters
    ----------
    design : LesionDesign
        From :func:`pofa.stats.factors.build_design`.

    Returns
    -------
    CoefficientTable
        Coefficients, SEs, profile penalised-likelihood 95% CIs and penalised LR p-values, as R
        ``logistf(pl = TRUE)``. Not estimable (all ``nan``, with the reason) when the outcome has no events or
        no non-events, a term is constant or collinear, or the penalised fit does not converge. A profile
        limit that cannot be found is ``nan`` with a note.
    """
    problems = estimability_problems(design)
    if problems:
        return CoefficientTable.not_estimable(design.columns, method=FIRTH_METHOD, notes=problems)
    X = np.asarray(design.X)[:, 1:]  # firthmodels adds the intercept (as its last coefficient)
    try:
        model = _penalized_fit(X, np.asarray(design.y))
    except EstimationError as exc:
        return CoefficientTable.not_estimable(design.columns, method=FIRTH_METHOD, notes=(str(exc),))
    # The constrained fits of the profile CIs and LR tests use 1e-6: tighter values make their step halving
    # fail at float precision, and the limits and p-values are stationary in the nuisance coefficients
    # (1e-12 relative in the tests).
    notes: list[str] = []
    reached = float(model.gtol)
    if reached > FIRTH_TOLERANCES[0]:
        notes.append(
            f"Firth estimates converged to {reached:g} (gradient and step), not {FIRTH_TOLERANCES[0]:g}: "
            "float rounding stalled the step halving"
        )
    n_iter = int(getattr(model, "n_iter_", 0))
    model.set_params(gtol=1e-6, xtol=1e-6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ci = model.conf_int(method="pl", max_iter=200, tol=1e-9)
            model.lrt()
        except (ValueError, np.linalg.LinAlgError) as exc:
            ci = np.full((X.shape[1] + 1, 2), np.nan)
            notes.append(f"profile-likelihood CI or LR test failed: {exc}")
        if any("not computed" in str(w.message) or "converge" in str(w.message).lower() for w in caught):
            notes.append("some profile-likelihood limits or LR tests did not converge (shown as missing)")
    # firthmodels orders (coefficients..., intercept); pofa puts the intercept first.
    order = np.r_[X.shape[1], np.arange(X.shape[1])]
    beta = np.r_[model.intercept_, model.coef_]
    try:
        se = np.sqrt(np.diag(np.linalg.inv(_information(design, beta))))
    except np.linalg.LinAlgError:
        se = np.full(beta.shape, math.nan)
    lo, hi = ci[order, 0], ci[order, 1]
    pval = np.asarray(model.lrt_pvalues_)[order]
    return CoefficientTable(
        names=design.columns,
        coef=tuple(float(v) for v in beta),
        se=tuple(float(v) for v in se),
        ci_low=tuple(float(v) for v in lo),
        ci_high=tuple(float(v) for v in hi),
        p=tuple(float(v) for v in pval),
        converged=True,
        notes=tuple(notes),
        method=FIRTH_METHOD,
        n_iter=n_iter,
        convergence=FIRTH_CONVERGENCE,
    )
