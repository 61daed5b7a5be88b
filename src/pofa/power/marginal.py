"""Population-averaged (marginal) and patient-specific (conditional) odds ratios of a random-intercept model.

For ``logit P(y = 1 | x, z) = b0 + b1 x + s z`` with ``z ~ N(0, 1)`` independent of ``x``, the
population-averaged risk is ``P(y = 1 | x) = E_z[expit(b0 + b1 x + s z)]`` and, for a binary ``x``, the
population-averaged model ``logit P(y = 1 | x) = beta0 + beta1 x`` is saturated, so it holds exactly with
``beta1 = logit P(y | x = 1) - logit P(y | x = 0)``: the **marginal log odds ratio**, which GEE and plain
logistic regression estimate (consistently, whatever the working correlation). It is smaller in absolute
value than ``b1`` when ``s > 0`` (Zeger, Liang & Albert 1988 give the approximation
``b1 / sqrt(1 + c^2 s^2)``, ``c = 16 sqrt(3) / (15 pi)``; the numbers here are exact).

The integral over ``z`` is computed by adaptive quadrature (``scipy.integrate.quad`` on the whole real line,
absolute error below 1e-13); the tests check it against Gauss-Hermite quadrature and a Monte Carlo
average of 10 million draws.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize, special

from pofa.errors import SettingsError
from pofa.power.design import EffectScale, LesionOutcome

__all__ = [
    "LesionTruth",
    "conditional_intercept",
    "lesion_truth",
    "marginal_risk",
]

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def marginal_risk(intercept: float, sd: float) -> float:
    """Population-averaged risk of a random-intercept logistic model, ``E[expit(intercept + sd Z)]``.

    Parameters
    ----------
    intercept : float
        Linear predictor on the logit scale (conditional on ``z = 0``).
    sd : float
        Random-intercept SD (>= 0).

    Returns
    -------
    float
        The risk, in (0, 1), with ``Z ~ N(0, 1)``.
    """
    if sd == 0.0:
        return float(special.expit(intercept))

    def f(z: float) -> float:
        return float(special.expit(intercept + sd * z)) * math.exp(-0.5 * z * z) / _SQRT_2PI

    # Split at the point where the integrand's logistic factor changes fastest, so quad sees both halves.
    z0 = min(max(-intercept / sd, -30.0), 30.0)
    lo, _ = integrate.quad(f, -np.inf, z0, epsabs=1e-14, epsrel=1e-13, limit=200)
    hi, _ = integrate.quad(f, z0, np.inf, epsabs=1e-14, epsrel=1e-13, limit=200)
    return lo + hi


def conditional_intercept(risk: float, sd: float) -> float:
    """Conditional linear predictor whose population-averaged risk is ``risk``.

    Parameters
    ----------
    risk : float
        Target population-averaged risk, in (0, 1).
    sd : float
        Random-intercept SD (>= 0).

    Returns
    -------
    float
        The intercept (inverse of :func:`marginal_risk` in its first argument; the map is strictly
        increasing).

    Raises
    ------
    SettingsError
        When the risk is not strictly between 0 and 1.
    """
    if not (0.0 < risk < 1.0):
        raise SettingsError(f"a risk of {risk!r} has no logit; it must be strictly between 0 and 1")
    if sd == 0.0:
        return float(special.logit(risk))
    target = float(special.logit(risk))
    # The marginal logit is about b / sqrt(1 + 0.346 s^2) (Zeger et al.): bracket generously around it.
    guess = target * math.sqrt(1.0 + 0.346 * sd * sd)
    width = 5.0 + 2.0 * sd

    def g(b: float) -> float:
        return float(special.logit(marginal_risk(b, sd))) - target

    lo, hi = guess - width, guess + width
    while g(lo) > 0:
        lo -= width
    while g(hi) < 0:
        hi += width
    return float(optimize.brentq(g, lo, hi, xtol=1e-13, rtol=4 * np.finfo(float).eps, maxiter=200))


@dataclass(frozen=True, slots=True)
class LesionTruth:
    """Generative parameters of a :class:`~pofa.power.design.LesionOutcome` and its true marginal effect.

    Attributes
    ----------
    intercept, log_or_conditional : float
        ``b0`` and ``b1`` of ``logit P(y | x, z) = b0 + b1 x + sd z`` (the simulation uses these).
    log_or_marginal : float
        True population-averaged log odds ratio (what GEE estimates; the target of coverage).
    risk_without, risk_with : float
        Population-averaged risks of lesions without and with the factor.
    method : str
        How the truth was computed.
    """

    intercept: float
    log_or_conditional: float
    log_or_marginal: float
    risk_without: float
    risk_with: float
    method: str = "population-averaged risks by adaptive quadrature over the normal random intercept"


@functools.lru_cache(maxsize=256)  # a few ms each, asked for by every chunk; LesionTruth is immutable
def lesion_truth(outcome: LesionOutcome) -> LesionTruth:
    """Solve for the conditional parameters of ``outcome`` and compute its true marginal log odds ratio.

    ``b0`` gives the population-averaged risk ``baseline_risk`` without the factor. With a marginal
    ``effect_scale``, ``b1`` gives the population-averaged risk ``expit(logit(baseline_risk) + log(OR))`` with
    it; with a conditional one, ``b1 = log(OR)`` and the marginal OR is computed.

    Parameters
    ----------
    outcome : LesionOutcome
        The lesion outcome model.

    Returns
    -------
    LesionTruth
        Conditional intercept and log odds ratio, the true marginal log odds ratio and the two marginal risks.

    Raises
    ------
    SettingsError
        When the odds ratio gives a risk of 0 or 1 in lesions with the factor.
    """
    sd = outcome.patient_sd
    b0 = conditional_intercept(outcome.baseline_risk, sd)
    p0 = marginal_risk(b0, sd)
    if outcome.effect_scale is EffectScale.MARGINAL:
        beta1 = math.log(outcome.odds_ratio)
        p1 = float(special.expit(special.logit(outcome.baseline_risk) + beta1))
        if not (0.0 < p1 < 1.0):
            raise SettingsError(f"odds ratio {outcome.odds_ratio:g} with baseline risk "
                                f"{outcome.baseline_risk:g} gives a risk of 0 or 1 in lesions with the "
                                "factor; choose a smaller effect")
        b1 = conditional_intercept(p1, sd) - b0
        p1 = marginal_risk(b0 + b1, sd)
    else:
        b1 = math.log(outcome.odds_ratio)
        p1 = marginal_risk(b0 + b1, sd)
        if not (0.0 < p1 < 1.0):
            raise SettingsError(f"conditional odds ratio {outcome.odds_ratio:g} gives a marginal risk of 0 "
                                "or 1 in lesions with the factor; choose a smaller effect")
    beta1 = float(special.logit(p1) - special.logit(p0))
    return LesionTruth(intercept=b0, log_or_conditional=b1, log_or_marginal=beta1, risk_without=p0,
                       risk_with=p1)
