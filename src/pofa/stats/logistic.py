"""Plain (unclustered) logistic regression of a lesion outcome, and the coefficient table of every fitter.

The numbers match R ``glm(y ~ ..., family = binomial)``: maximum-likelihood coefficients, model-based
(inverse Fisher information) standard errors, Wald 95% CIs and Wald p-values (``summary.glm``,
``confint.default``).

Convergence is decided as R's ``glm.fit`` decides it (``glm.control(epsilon = 1e-8, maxit = 25)``): IRLS
from R's starting values ``mu = (y + 0.5) / 2``, converged at the first iteration where
``|dev - dev_old| / (|dev| + 0.1) < 1e-8``. A fit that R calls converged is therefore never reported as
failed, whatever the cohort size (an absolute deviance tolerance, as before, is below the rounding of a
deviance of tens of thousands). Once R's rule holds, IRLS takes a few more steps (at most
:data:`POLISH_STEPS`, while the largest coefficient change exceeds 1e-10 (1 + |beta|)): IRLS converges
quadratically, so these make the estimates the exact root (equal to
``glm(..., control = glm.control(epsilon = 1e-14))`` to ~1e-12) instead of R's default stopping point, which
lies up to ~1e-7 away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from pofa.stats import distributions as _dist
from pofa.stats.factors import LesionDesign, estimability_problems

Z95 = float(_dist.norm_ppf(0.975))

LOGISTIC_METHOD = "logistic regression, Wald 95% CI and Wald p (R glm, binomial)"

#: R ``glm.control()`` defaults: relative deviance change and maximum number of IRLS iterations.
GLM_EPSILON = 1e-8
GLM_MAXIT = 25
#: Extra IRLS steps after R's rule holds, to reach the exact root (quadratic convergence: 1-2 suffice).
POLISH_STEPS = 5
#: The convergence rule in words (written with every logistic result).
GLM_CONVERGENCE = (
    "IRLS from mu = (y + 0.5) / 2, converged when |dev - dev_old| / (|dev| + 0.1) < 1e-8 within 25 "
    "iterations (R glm.control defaults), then polished to the exact root"
)


@dataclass(frozen=True, slots=True)
class CoefficientTable:
    """Log-odds coefficients of one fitted model, on the scale of the linear predictor.

    Attributes
    ----------
    names : tuple of str
        Coefficient names, ``"(Intercept)"`` first.
    coef, se, ci_low, ci_high, p : tuple of float
        Estimate, standard error, 95% confidence limits (log-odds scale) and two-sided p-value of each
        coefficient; ``nan`` where not estimable.
    converged : bool
        Whether the estimates exist and the algorithm converged. ``False`` means every value is ``nan``.
    notes : tuple of str
        Why something is missing, and any caveat (separation, few clusters ...).
    method : str
        The method in words, with the R function the numbers match.
    n_iter : int
        Iterations of the fitting algorithm until its convergence rule held (0 when not fitted or not
        iterative).
    convergence : str
        The convergence rule applied, with the R function it equals (empty when not fitted).
    """

    names: tuple[str, ...]
    coef: tuple[float, ...]
    se: tuple[float, ...]
    ci_low: tuple[float, ...]
    ci_high: tuple[float, ...]
    p: tuple[float, ...]
    converged: bool
    notes: tuple[str, ...]
    method: str
    n_iter: int = 0
    convergence: str = ""

    @classmethod
    def from_wald(
        cls,
        names: tuple[str, ...],
        coef: np.ndarray,
        se: np.ndarray,
        *,
        method: str,
        notes: tuple[str, ...] = (),
        n_iter: int = 0,
        convergence: str = "",
    ) -> CoefficientTable:
        """Table with Wald 95% CIs (coef +- 1.96 SE) and Wald p-values (normal reference).

        Parameters
        ----------
        names : tuple of str
            Coefficient names, intercept first.
        coef, se : ndarray
            Estimates and standard errors (log-odds scale).
        method : str
            The method in words.
        notes : tuple of str
            Caveats.
        n_iter : int
            Iterations the fit took.
        convergence : str
            The convergence rule applied.

        Returns
        -------
        CoefficientTable
            The coefficients with their Wald CIs and p-values.
        """
        coef = np.asarray(coef, dtype=float)
        se = np.asarray(se, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = 2.0 * _dist.norm_sf(np.abs(coef / se))
        return cls(
            names=tuple(names),
            coef=_floats(coef),
            se=_floats(se),
            ci_low=_floats(coef - Z95 * se),
            ci_high=_floats(coef + Z95 * se),
            p=_floats(p),
            converged=True,
            notes=tuple(notes),
            method=method,
            n_iter=int(n_iter),
            convergence=convergence,
        )

    @classmethod
    def not_estimable(
        cls,
        names: tuple[str, ...],
        *,
        method: str,
        notes: tuple[str, ...],
        n_iter: int = 0,
        convergence: str = "",
    ) -> CoefficientTable:
        """Table of ``nan`` with the reasons in ``notes``.

        Parameters
        ----------
        names : tuple of str
            Coefficient names.
        method : str
            The method in words.
        notes : tuple of str
            Why it is not estimable.
        n_iter : int
            Iterations run before the fit was given up (0 when not fitted).
        convergence : str
            The convergence rule that was not met (empty when not fitted).

        Returns
        -------
        CoefficientTable
            All ``nan``, not converged, with the notes.
        """
        nan = (math.nan,) * len(names)
        return cls(tuple(names), nan, nan, nan, nan, nan, False, tuple(notes), method, n_iter, convergence)


def _floats(a: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(a, dtype=float))


def _deviance(y: np.ndarray, mu: np.ndarray) -> float:
    """Binomial deviance of 0/1 outcomes (R ``binomial()$dev.resids`` summed)."""
    with np.errstate(divide="ignore"):
        return float(-2.0 * (np.sum(np.log(mu[y == 1])) + np.sum(np.log1p(-mu[y == 0]))))


@dataclass(frozen=True, slots=True)
class IrlsFit:
    """Result of :func:`irls_logit`.

    Attributes
    ----------
    coef : ndarray, shape (p,)
        Coefficients (log-odds scale).
    cov : ndarray, shape (p, p)
        Inverse Fisher information ``(X' W X)^-1`` at ``coef``.
    deviance : float
        Residual deviance at ``coef``.
    n_iter : int
        IRLS iterations until R's rule held (as ``glm()$iter``), or run before giving up.
    converged : bool
        Whether R's rule held within ``maxit`` iterations with finite estimates (as ``glm()$converged``).
    reason : str
        Why not converged (empty when converged).
    """

    coef: np.ndarray
    cov: np.ndarray
    deviance: float
    n_iter: int
    converged: bool
    reason: str


def irls_logit(
    X: np.ndarray,
    y: np.ndarray,
    *,
    epsilon: float = GLM_EPSILON,
    maxit: int = GLM_MAXIT,
    polish: int = POLISH_STEPS,
) -> IrlsFit:
    """Logistic regression by IRLS with R ``glm.fit``'s starting values and convergence rule.

    Parameters
    ----------
    X : ndarray, shape (n, p)
        Design matrix with the intercept column, full column rank.
    y : ndarray of 0/1, shape (n,)
        Outcome.
    epsilon, maxit : float, int
        R ``glm.control(epsilon, maxit)``: converged at the first iteration with
        ``|dev - dev_old| / (|dev| + 0.1) < epsilon``.
    polish : int
        At most this many further IRLS steps after convergence, stopped once the largest coefficient change
        is below ``1e-10 (1 + |beta|)`` or the deviance stops decreasing.

    Returns
    -------
    IrlsFit
        ``converged`` is ``False``, with the reason, when R's rule does not hold in ``maxit`` iterations or
        the iterations produce non-finite values (R: ``glm.fit: algorithm did not converge``).

    Notes
    -----
    Each step solves the weighted least-squares problem with a QR decomposition of ``sqrt(w) X``, as R's
    ``C_Cdqrls``. Memory is a few arrays of length n and one n x p matrix.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    mu = (y + 0.5) / 2.0  # R binomial()$initialize with unit weights
    eta = np.log(mu / (1.0 - mu))
    dev_old = _deviance(y, mu)
    beta = np.zeros(X.shape[1])
    converged = False
    it = 0
    dev = dev_old
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for it in range(1, maxit + 1):
            w = mu * (1.0 - mu)  # mu.eta^2 / variance for the logit link
            sw = np.sqrt(w)
            z = eta + (y - mu) / w
            q, r = np.linalg.qr(X * sw[:, None])
            new = np.linalg.solve(r, q.T @ (z * sw))
            if not np.all(np.isfinite(new)):
                return _irls_failed(X.shape[1], it, "IRLS produced non-finite coefficients")
            eta = X @ new
            mu = expit(eta)
            dev = _deviance(y, mu)
            if not math.isfinite(dev):
                return _irls_failed(
                    X.shape[1], it, "the deviance became infinite (fitted probabilities 0 or 1)"
                )
            beta = new
            if abs(dev - dev_old) / (abs(dev) + 0.1) < epsilon:
                converged = True
                break
            dev_old = dev
        if not converged:
            return _irls_failed(
                X.shape[1],
                it,
                f"IRLS did not converge in {maxit} iterations: relative deviance change "
                f"{abs(dev - dev_old) / (abs(dev) + 0.1):.3g} >= {epsilon:g} (as R glm.fit: 'algorithm did "
                "not converge')",
            )
        for _ in range(polish):
            w = mu * (1.0 - mu)
            sw = np.sqrt(w)
            q, r = np.linalg.qr(X * sw[:, None])
            new = beta + np.linalg.solve(r, q.T @ ((y - mu) / sw))
            new_mu = expit(X @ new)
            new_dev = _deviance(y, new_mu)
            if not (np.all(np.isfinite(new)) and math.isfinite(new_dev)) or new_dev > dev:
                break
            step = float(np.max(np.abs(new - beta) / (1.0 + np.abs(beta))))
            beta, mu, dev = new, new_mu, new_dev
            if step < 1e-10:
                break
        w = mu * (1.0 - mu)
        r_final = np.asarray(np.linalg.qr(X * np.sqrt(w)[:, None], mode="r"), dtype=float)
        rinv = np.linalg.solve(r_final, np.eye(r_final.shape[0]))
        cov = rinv @ rinv.T
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(cov))):
        return _irls_failed(X.shape[1], it, "estimates or information not finite")
    return IrlsFit(beta, (cov + cov.T) / 2.0, dev, it, True, "")


def _irls_failed(p: int, it: int, reason: str) -> IrlsFit:
    return IrlsFit(np.full(p, np.nan), np.full((p, p), np.nan), math.nan, it, False, reason)


def fit_logistic(design: LesionDesign) -> CoefficientTable:
    """Maximum-likelihood logistic regression (lesions treated as independent).

    Matches R ``glm(family = binomial)``: coefficients, model-based SEs (within 1e-8 relative of glm run to
    the exact root in the tests), Wald CIs and p. Fitted by :func:`irls_logit`, which decides convergence
    with R's rule (``glm.control()``: relative deviance change below 1e-8 within 25 iterations). Separation
    is not checked here (see :func:`pofa.stats.separation.check_separation`); a fit that does not converge
    is reported as not estimable, with the reason.

    Parameters
    ----------
    design : LesionDesign
        From :func:`pofa.stats.factors.build_design`.

    Returns
    -------
    CoefficientTable
        Coefficients, SEs, Wald CIs and p, the iterations and the convergence rule; all ``nan`` with the
        reason in ``notes`` when not estimable.
    """
    problems = estimability_problems(design)
    if problems:
        return CoefficientTable.not_estimable(design.columns, method=LOGISTIC_METHOD, notes=problems)
    try:
        fit = irls_logit(np.asarray(design.X), np.asarray(design.y))
    except np.linalg.LinAlgError as exc:
        return CoefficientTable.not_estimable(
            design.columns,
            method=LOGISTIC_METHOD,
            notes=(f"logistic fit failed: {exc}",),
            convergence=GLM_CONVERGENCE,
        )
    if not fit.converged:
        return CoefficientTable.not_estimable(
            design.columns,
            method=LOGISTIC_METHOD,
            notes=(f"logistic fit did not converge: {fit.reason}",),
            n_iter=fit.n_iter,
            convergence=GLM_CONVERGENCE,
        )
    return CoefficientTable.from_wald(
        design.columns,
        fit.coef,
        np.sqrt(np.diag(fit.cov)),
        method=LOGISTIC_METHOD,
        n_iter=fit.n_iter,
        convergence=GLM_CONVERGENCE,
    )
