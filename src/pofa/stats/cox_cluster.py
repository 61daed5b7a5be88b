"""Cox model with clustered observations: robust (sandwich) variance of Lin & Wei (1989), as R ``cluster()``.

``survival::coxph(Surv(t, e) ~ x + cluster(id))`` keeps the ordinary Cox estimate and replaces its variance
by ``D' D``, where ``D`` holds the per-cluster sums of the dfbeta residuals (score residuals times the inverse
information; R ``residuals(fit, "dfbeta")`` collapsed with ``rowsum(., id)``). Lesions of one patient are
such clusters. The estimate comes from :func:`pofa.stats.cox.cox_ph`; this module adds the score residuals
(Efron or Breslow ties, as R's ``coxscore``) and the sandwich.

Reference: Lin DY, Wei LJ. The robust inference for the Cox proportional hazards model. J Am Stat Assoc
1989;84:1074-1078. Therneau TM, Grambsch PM. Modeling Survival Data. Springer 2000, section 7.2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pofa.errors import EstimationError
from pofa.stats import distributions as _dist
from pofa.stats.cox import CoxResult, Ties, cox_ph
from pofa.stats.results import Estimate

CLUSTER_METHOD = "Cox PH, Efron ties, robust (cluster) Wald CI (survival::coxph + cluster())"


@dataclass(frozen=True, slots=True)
class ClusteredCoxResult:
    """A Cox model with a cluster-robust variance (``summary(coxph(... + cluster(id)))``).

    Attributes
    ----------
    fit : CoxResult
        The ordinary fit (coefficients, naive variance, likelihood tests).
    coef_names : tuple of str
        Coefficient names.
    robust_covariance : numpy.ndarray
        ``coxph()$var`` with ``cluster()``: the sandwich ``D' D``.
    robust_se : numpy.ndarray
        The "robust se" column.
    z, p : numpy.ndarray
        Wald z and two-sided p with the robust SE.
    hazard_ratios : tuple of Estimate
        exp(coef) with robust Wald CI and p.
    n_clusters : int
        Number of clusters (patients).
    method : str
        The method label.
    """

    fit: CoxResult
    coef_names: tuple[str, ...]
    robust_covariance: np.ndarray
    robust_se: np.ndarray
    z: np.ndarray
    p: np.ndarray
    hazard_ratios: tuple[Estimate, ...]
    n_clusters: int
    method: str

    def summary(self) -> pd.DataFrame:
        """Return the coefficient table: coef, hazard ratio, naive se, robust se, z, p, CI limits.

        Returns
        -------
        pandas.DataFrame
            One row per coefficient, indexed by term.
        """
        return pd.DataFrame(
            {
                "coef": self.fit.coef,
                "hazard_ratio": [h.estimate for h in self.hazard_ratios],
                "std_err": self.fit.std_err,
                "robust_se": self.robust_se,
                "z": self.z,
                "p": self.p,
                "ci_low": [h.ci_low for h in self.hazard_ratios],
                "ci_high": [h.ci_high for h in self.hazard_ratios],
            },
            index=pd.Index(self.coef_names, name="term"),
        )


def score_residuals(fit: CoxResult) -> np.ndarray:
    """Score residuals of a Cox fit, one row per observation (R ``residuals(fit, type = "score")``).

    With Efron ties a set of ``d`` tied events at time ``t`` contributes ``d`` terms ``k = 0..d-1`` with
    denominators ``D_k = S0 - (k/d) S0_D`` and means ``xbar_k``; an observation at risk with weight
    ``w_jk`` (1, or ``1 - k/d`` for one of the tied events) gets ``- w_jk r_j (x_j - xbar_k) / D_k``, and each
    event adds ``x_j - mean_k(xbar_k)``. With Breslow ties all ``k/d`` are 0. The residuals sum to the score
    (zero at the estimate).

    Parameters
    ----------
    fit : CoxResult
        A fit from :func:`pofa.stats.cox.cox_ph`.

    Returns
    -------
    numpy.ndarray
        ``n x p`` matrix, rows in the order of the data the model was fitted on.
    """
    t = np.asarray(fit.time, dtype=float)
    e = np.asarray(fit.event).astype(bool)
    x = np.asarray(fit.design, dtype=float)
    beta = np.asarray(fit.coef, dtype=float)
    xc = x - x.mean(axis=0)  # centring, as R: the residuals do not depend on it, the exponentials do
    r = np.exp(xc @ beta)
    efron = fit.ties == "efron"
    resid = np.zeros_like(x)
    for time in np.unique(t[e]):
        at_risk = t >= time
        dead = at_risk & e & (t == time)
        d = int(dead.sum())
        s0 = r[at_risk].sum()
        s1 = r[at_risk] @ xc[at_risk]
        s0d = r[dead].sum()
        s1d = r[dead] @ xc[dead]
        xbar_sum = np.zeros(x.shape[1])
        for k in range(d):
            c = k / d if efron else 0.0
            dk = s0 - c * s0d
            xbar = (s1 - c * s1d) / dk
            xbar_sum += xbar
            w = np.where(dead, 1.0 - c, 1.0)[at_risk]
            resid[at_risk] -= (w * r[at_risk] / dk)[:, None] * (xc[at_risk] - xbar)
        resid[dead] += xc[dead] - xbar_sum / d
    return resid


def cox_ph_clustered(
    time: np.ndarray | pd.Series,
    event: np.ndarray | pd.Series,
    covariates: pd.DataFrame | pd.Series,
    cluster: np.ndarray | pd.Series,
    *,
    ties: Ties = "efron",
    conf_level: float = 0.95,
) -> ClusteredCoxResult:
    """Cox model with a cluster-robust variance, equal to ``coxph(Surv(time, event) ~ x + cluster(id))``.

    Parameters
    ----------
    time, event : array-like
        Follow-up time and 0/1 event, one per observation (lesion).
    covariates : pandas.DataFrame or Series
        The model terms (as :func:`pofa.stats.cox.cox_ph`).
    cluster : array-like
        Cluster label of each observation (patient id; compared as text).
    ties : {"efron", "breslow"}
        Tie handling (R's default Efron).
    conf_level : float
        Level of the robust Wald intervals.

    Returns
    -------
    ClusteredCoxResult
        The fit with robust (sandwich) standard errors, Wald z, p and CIs, and the number of clusters.

    Raises
    ------
    EstimationError
        Lengths that differ, a missing cluster label, or any error of the Cox fit.
    """
    fit = cox_ph(time, event, covariates, ties=ties, conf_level=conf_level)
    labels = pd.Series(np.asarray(cluster, dtype=object))
    if labels.size != fit.n:
        raise EstimationError(f"cluster has {labels.size} labels but the model has {fit.n} observations")
    if labels.isna().any():
        raise EstimationError("a cluster label is missing: every observation needs its patient")
    dfbeta = score_residuals(fit) @ np.asarray(fit.covariance)
    codes, uniques = pd.factorize(labels.astype(str))
    sums = np.zeros((len(uniques), dfbeta.shape[1]))
    np.add.at(sums, codes, dfbeta)
    robust = sums.T @ sums
    se = np.sqrt(np.diag(robust))
    beta = np.asarray(fit.coef)
    z = beta / se
    p = 2.0 * _dist.norm_sf(np.abs(z))
    q = float(_dist.norm_ppf(1.0 - (1.0 - conf_level) / 2.0))
    label = CLUSTER_METHOD if ties == "efron" else CLUSTER_METHOD.replace("Efron", "Breslow")
    hrs = tuple(
        Estimate(float(np.exp(beta[j])), float(np.exp(beta[j] - q * se[j])),
                 float(np.exp(beta[j] + q * se[j])), float(p[j]), fit.n, label)
        for j in range(beta.size)
    )
    ro = robust.copy()
    ro.setflags(write=False)
    return ClusteredCoxResult(fit, fit.coef_names, ro, _ro(se), _ro(z), _ro(p), hrs, len(uniques), label)


def _ro(a: np.ndarray) -> np.ndarray:
    b = np.array(a, dtype=float)
    b.setflags(write=False)
    return b
