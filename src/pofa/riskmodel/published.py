"""The built-in model of the published lesion-level odds ratios (Figura et al. 2021).

For teams without a cohort of their own.

Figura NB et al., "Patterns and Predictors of Failure in Recurrent or Refractory Large B-Cell Lymphomas After
Chimeric Antigen Receptor T-Cell Therapy", Int J Radiat Oncol Biol Phys 2021;111(5):1145-1154
(469 pretreatment lesions in 63 patients), report the odds of local failure of a lesion:

=================  ====  ===========
term               OR    95% CI
=================  ====  ===========
diameter >= 5 cm   2.34  1.55-3.55
SUVmax >= 10       2.08  1.38-3.12
extranodal         1.49  1.10-2.04
=================  ====  ===========

How the model is built from them, and what that assumes (all written into the model's ``limitations``):

* **Coefficients** ``b_j = ln(OR_j)``. The odds ratios are univariable: using them together multiplies them
  as if the factors were independent (a bulky lesion is often also SUV-avid, so a lesion with several factors
  is probably given too high a risk).
* **Standard errors** back-computed from the CIs: ``SE_j = (ln upper_j - ln lower_j) / (2 x 1.959964)``.
* **Covariance** diagonal (the correlations between the estimates are not published).
* **Intercept**: the paper does not report the risk of a reference lesion (< 5 cm, SUVmax < 10, nodal), so
  the user states it: ``b_0 = logit(baseline_risk)``. Its variance is 0 (a stated assumption), or, when a
  range ``(low, high)`` for the baseline risk is given, ``((logit high - logit low) / (2 x 1.959964))^2``.
  Without a baseline risk the model has no intercept: it ranks lesions and gives odds ratios against the
  reference lesion, not probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pofa import __version__
from pofa.errors import SettingsError
from pofa.riskmodel.model import Feature, ModelKind, RiskModel, TermSummary, TrainingSummary
from pofa.stats.factors import RiskFactor

#: ``scipy.stats.norm.ppf(0.975)``.
Z95 = 1.959963984540054

CITATION = (
    "Figura NB et al. Int J Radiat Oncol Biol Phys 2021;111(5):1145-1154, doi:10.1016/j.ijrobp.2021.06.038"
)

#: The name that selects this model on the command line (``pofa predict published LESIONS ...``).
PUBLISHED_NAME = "published"


@dataclass(frozen=True, slots=True)
class PublishedOddsRatio:
    """One published odds ratio with its 95% CI."""

    factor: RiskFactor
    odds_ratio: float
    ci_low: float
    ci_high: float
    p: str

    @property
    def coef(self) -> float:
        """``ln(OR)``.

        Returns
        -------
        float
            ``ln(OR)``.
        """
        return math.log(self.odds_ratio)

    @property
    def se(self) -> float:
        """``(ln upper - ln lower) / (2 x 1.959964)``.

        Returns
        -------
        float
            ``(ln upper - ln lower) / (2 x 1.959964)``.
        """
        return (math.log(self.ci_high) - math.log(self.ci_low)) / (2.0 * Z95)


#: Figura et al. 2021, lesion-level risk of local failure (abstract; docs/domain notes).
FIGURA_2021: tuple[PublishedOddsRatio, ...] = (
    PublishedOddsRatio(RiskFactor("diameter_cm", threshold=5.0), 2.34, 1.55, 3.55, "< .001"),
    PublishedOddsRatio(RiskFactor("suvmax", threshold=10.0), 2.08, 1.38, 3.12, "< .001"),
    PublishedOddsRatio(RiskFactor("extranodal"), 1.49, 1.10, 2.04, ".01"),
)

PUBLISHED_METHOD = (
    "published univariable odds ratios (Figura et al. 2021) combined in one logistic model as if "
    "independent: coefficient = ln(OR), SE = (ln upper - ln lower) / (2 x 1.96); intercept = logit(stated "
    "baseline risk)"
)
PUBLISHED_COVARIANCE = (
    "assumed: diagonal, variances back-computed from the published 95% CIs (the covariances between the "
    "estimates are not published and are set to 0)"
)


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _check_risk(p: object, what: str) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float) or not (0.0 < float(p) < 1.0):
        raise SettingsError(
            f"The {what} must be a probability strictly between 0 and 1 (e.g. 0.2 for 20%), got {p!r}."
        )
    return float(p)


def published_model(
    baseline_risk: float | None = None,
    baseline_risk_range: Sequence[float] | None = None,
) -> RiskModel:
    """The model of the published odds ratios (Figura et al. 2021).

    Parameters
    ----------
    baseline_risk : float, optional
        Risk of local failure of a reference lesion (< 5 cm, SUVmax < 10, nodal) in your setting: the
        intercept is ``logit(baseline_risk)``. Not reported by the paper. Without it the model has no
        intercept: predictions give ranks and odds ratios against the reference lesion, not probabilities.
    baseline_risk_range : (low, high), optional
        A 95% range for ``baseline_risk``; its width on the logit scale sets the intercept's variance
        (otherwise 0: the baseline risk is then an assumption whose uncertainty the CIs leave out).

    Returns
    -------
    RiskModel
        ``kind`` is ``ModelKind.PUBLISHED``; ``validation`` is ``None``; the limitations say what is assumed.

    Raises
    ------
    SettingsError
        A baseline risk outside (0, 1), or a range that does not contain it.
    """
    features = tuple(Feature(o.factor) for o in FIGURA_2021)
    coefs = [o.coef for o in FIGURA_2021]
    variances = [o.se**2 for o in FIGURA_2021]
    limitations = [
        f"Not fitted to your data: odds ratios published by {CITATION}, from 469 pretreatment lesions in 63 "
        "patients with relapsed/refractory large B-cell lymphoma treated with anti-CD19 CAR T at one centre "
        "(2015-2019).",
        "The three odds ratios are univariable (each factor alone). Combining them multiplies them as if "
        "the factors were independent; bulky lesions are often also SUV-avid, so the risk of a lesion with "
        "several factors is probably overstated.",
        "Standard errors are back-computed from the published 95% CIs, SE = (ln upper - ln lower) / "
        "(2 x 1.96); the covariances between the estimates are not published and are assumed 0 (diagonal).",
        "Whether the published odds ratios account for the clustering of lesions within patients, and how "
        "the cut-points (5 cm, SUVmax 10) were chosen, is not stated; a cut-point chosen on the same data "
        "overstates its odds ratio.",
        "SUVmax depends on the scanner, reconstruction and uptake time; a threshold of 10 may not transfer "
        "between centres.",
    ]
    if baseline_risk is None:
        if baseline_risk_range is not None:
            raise SettingsError("A baseline-risk range needs the baseline risk itself",
                                advice="give {baseline_risk}")
        b0, v0, known = 0.0, 0.0, False
        basis = (
            "not stated: Figura et al. do not report the risk of a reference lesion (< 5 cm, SUVmax < 10, "
            "nodal), so this model ranks lesions and gives odds ratios against the reference lesion but "
            "no probabilities; state a baseline risk to get them"
        )
        label_tail = "no baseline risk stated: ranks and odds ratios only"
        limitations.append("No intercept: probabilities need a stated baseline risk.")
    else:
        p0 = _check_risk(baseline_risk, "baseline risk")
        b0, known = _logit(p0), True
        if baseline_risk_range is None:
            v0 = 0.0
            basis = (
                f"logit({p0:g}) = {b0:.6g}: the risk of local failure of a reference lesion (< 5 cm, "
                f"SUVmax < 10, nodal) stated by the user, not reported by Figura et al.; taken as exact "
                "(variance 0)"
            )
            limitations.append(
                f"Intercept from the stated baseline risk {p0:g} for a reference lesion, taken as exact: the "
                "95% CIs include the uncertainty of the odds ratios only, not of the baseline risk."
            )
        else:
            try:
                lo, hi = (float(x) for x in baseline_risk_range)
            except (TypeError, ValueError):
                raise SettingsError(
                    "The baseline-risk range must be two probabilities, low and high (e.g. 0.1,0.3)."
                ) from None
            lo = _check_risk(lo, "low end of the baseline-risk range")
            hi = _check_risk(hi, "high end of the baseline-risk range")
            if not lo < p0 < hi:
                raise SettingsError(
                    f"The baseline-risk range {lo:g}-{hi:g} must contain the baseline risk "
                    f"{p0:g}, with low < high."
                )
            v0 = ((_logit(hi) - _logit(lo)) / (2.0 * Z95)) ** 2
            basis = (
                f"logit({p0:g}) = {b0:.6g}: the risk of local failure of a reference lesion (< 5 cm, "
                f"SUVmax < 10, nodal) stated by the user, not reported by Figura et al.; its stated 95% "
                f"range {lo:g}-{hi:g} gives the intercept SE {math.sqrt(v0):.4g} (logit scale)"
            )
            limitations.append(
                f"Intercept from the stated baseline risk {p0:g} (95% range {lo:g}-{hi:g}) for a reference "
                "lesion: an assumption, not an estimate from the published data."
            )
        label_tail = f"baseline risk {p0:g} of a reference lesion stated by the user"
    p = 1 + len(features)
    var = [v0, *variances]
    cov = tuple(tuple(var[i] if i == j else 0.0 for j in range(p)) for i in range(p))
    training = TrainingSummary(
        data="Figura et al. 2021 (published odds ratios)",
        n_lesions=469,
        n_patients=63,
        n_events=None,
        n_left_out=None,
        outcome_definition=(
            "local failure: progression of a pretreatment lesion after CAR T (Figura et al. "
            "2021; a new lesion not overlapping any pretreatment lesion is de novo failure)"
        ),
        working_correlation=None,
        terms=tuple(TermSummary(f.term, None, None, None) for f in features),
        notes=tuple(
            f"{o.factor.name}: published OR {o.odds_ratio} (95% CI {o.ci_low}-{o.ci_high}), P {o.p}"
            for o in FIGURA_2021
        ),
    )
    return RiskModel(
        kind=ModelKind.PUBLISHED,
        label=(
            f"PUBLISHED model (Figura et al., IJROBP 2021: univariable lesion-level odds ratios), not "
            f"fitted to your data; {label_tail}"
        ),
        method=PUBLISHED_METHOD,
        covariance_type=PUBLISHED_COVARIANCE,
        outcome="local_failure",
        features=features,
        coefficients=(float(b0), *(float(c) for c in coefs)),
        covariance=cov,
        intercept_known=known,
        intercept_basis=basis,
        training=training,
        validation=None,
        limitations=tuple(limitations),
        pofa_version=__version__,
    )


__all__ = ["CITATION", "FIGURA_2021", "PUBLISHED_NAME", "PublishedOddsRatio", "published_model"]
