"""Plain (unclustered) logistic regression of a lesion outcome, and the coefficient table of every fitter.

The numbers match R ``glm(y ~ ..., family = binomial)``: maximum-likelihood coefficients, model-based
(inverse Fisher information) standard errors, Wald 95% CIs and Wald p-values (``summary.glm``,
``confint.default``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm
from scipy import stats

from pofa.stats.factors import LesionDesign, estimability_problems

Z95 = float(stats.norm.ppf(0.975))

LOGISTIC_METHOD = "logistic regression, Wald 95% CI and Wald p (R glm, binomial)"


@dataclass(frozen=True, slots=True)
class CoefficientTable:
    """Log-odds coefficients of one fitted model, on the scale of the linear predictor.

    Parameters
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

    @classmethod
    def from_wald(
        cls,
        names: tuple[str, ...],
        coef: np.ndarray,
        se: np.ndarray,
        *,
        method: str,
        notes: tuple[str, ...] = (),
    ) -> CoefficientTable:
        """Table with Wald 95% CIs (coef +- 1.96 SE) and Wald p-values (normal reference)."""
        coef = np.asarray(coef, dtype=float)
        se = np.asarray(se, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = 2.0 * stats.norm.sf(np.abs(coef / se))
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
        )

    @classmethod
    def not_estimable(
        cls, names: tuple[str, ...], *, method: str, notes: tuple[str, ...]
    ) -> CoefficientTable:
        """Table of ``nan`` with the reasons in ``notes``."""
        nan = (math.nan,) * len(names)
        return cls(tuple(names), nan, nan, nan, nan, nan, False, tuple(notes), method)


def _floats(a: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(a, dtype=float))


def fit_logistic(design: LesionDesign) -> CoefficientTable:
    """Maximum-likelihood logistic regression (lesions treated as independent).

    Matches R ``glm(family = binomial)``: coefficients, model-based SEs (within 1e-6 relative in the tests),
    Wald CIs and p. Fitted with statsmodels ``GLM(Binomial)`` by IRLS. Separation is not checked here (see
    :func:`pofa.stats.separation.check_separation`); a fit that does not converge is reported as not
    estimable.

    Parameters
    ----------
    design : LesionDesign
        From :func:`pofa.stats.factors.build_design`.
    """
    problems = estimability_problems(design)
    if problems:
        return CoefficientTable.not_estimable(design.columns, method=LOGISTIC_METHOD, notes=problems)
    model = sm.GLM(np.asarray(design.y), np.asarray(design.X), family=sm.families.Binomial())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = model.fit(method="IRLS", maxiter=100, tol=1e-12)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
            return CoefficientTable.not_estimable(
                design.columns, method=LOGISTIC_METHOD, notes=(f"logistic fit failed: {exc}",)
            )
    converged = bool(res.converged) and bool(np.all(np.isfinite(res.bse)))
    if not converged:
        msgs = "; ".join(sorted({str(w.message) for w in caught}))
        return CoefficientTable.not_estimable(
            design.columns,
            method=LOGISTIC_METHOD,
            notes=("logistic fit did not converge in 100 IRLS iterations" + (f" ({msgs})" if msgs else ""),),
        )
    return CoefficientTable.from_wald(design.columns, res.params, res.bse, method=LOGISTIC_METHOD)
