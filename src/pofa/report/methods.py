"""The statistical-methods paragraph of the report, generated from the settings the analysis actually used.

The text is written to be pasted into a paper's Methods section and adapted: every option that changes the
numbers (first-progression window, geometry rule and margins, risk factors and thresholds, model types, small-
sample correction, Firth, CI transform, landmarks) is stated as it was set, with the R function each number
matches and the software versions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pofa.report.model import ReportInput

__all__ = ["methods_paragraphs", "methods_text"]


def _join(items: list[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _lower(lab: str) -> str:
    return lab[0].lower() + lab[1:] if lab and not lab.startswith("SUV") else lab


def methods_paragraphs(inp: ReportInput, versions: Mapping[str, str]) -> tuple[str, ...]:
    """Write the methods as paragraphs (plain text, no markup).

    Parameters
    ----------
    inp : ReportInput
        The report input (settings and typed statistics decide what is described).
    versions : Mapping[str, str]
        Software versions named in the text.

    Returns
    -------
    tuple of str
        The paragraphs, in reading order.
    """
    s = inp.settings
    c = s.classification
    st = inp.statistics
    out: list[str] = []

    # lesion outcomes and patterns
    geo = ""
    if c.use_geometry:
        counts_as = getattr(c, "marginal_counts_as", "de novo")
        geo = (
            " Failure lesions without a recorded baseline lesion were assigned by geometry: a failure "
            "lesion (a sphere of its longest diameter) overlapping a baseline lesion's sphere grown by "
            f"{c.local_margin_mm:g} mm was a local failure of that lesion; one within "
            f"{c.marginal_margin_mm:g} mm was marginal (counted as {counts_as}); any other was de novo. An "
            "explicit identifier always took precedence over geometry, and conflicts and ambiguous matches "
            "were reported."
        )
    out.append(
        "Each pretreatment (baseline) PET/CT lesion was classified at first progression. A baseline lesion "
        "had local failure when a lesion on a failure scan dated from the progression date to "
        f"{c.window_days} days after it was identified as that baseline lesion; a failure lesion overlapping "
        f"no baseline lesion was a de novo failure.{geo} Failure lesions seen after this window were later "
        "events. Each patient's pattern at first progression was classified as strictly local (local "
        "failures only), strictly de novo (de novo failures only), mixed (both) or unknown (progression "
        "recorded without failure lesions; counted separately, never as de novo). A local component means "
        "strictly local or mixed; maintained control means a recurred patient with at least one baseline "
        "lesion that did not fail."
    )

    # lesion-level models
    lmr = st.lesion_models if st is not None else None
    rows = lmr.rows if lmr is not None else ()
    methods = {x.method for x in rows}
    terms = list(dict.fromkeys(x.label for x in rows)) or list(s.risk_factors.lesion)
    n_pat = lmr.n_patients if lmr is not None else None
    lm = s.lesion_models
    parts = [
        f"Lesion-level risk factors of local failure ({_join([_lower(t) for t in terms])}) were analysed "
        "univariably and in one multivariable model by logistic regression treating lesions as independent "
        "(R glm, Wald confidence intervals), shown for comparison, and by generalized estimating equations "
        "(GEE) with patients as clusters, a logit link, an exchangeable working correlation and robust "
        "sandwich standard errors (as R geepack::geeglm)"
    ]
    if lm.small_sample:
        parts.append(
            ", using the Mancl-DeRouen bias-reduced sandwich estimator for small numbers of patients"
        )
    parts.append(". Complete and quasi-complete separation were checked for every model")
    if lm.firth or "firth" in methods:
        parts.append(
            "; Firth-penalized logistic regression with profile penalized-likelihood confidence intervals "
            "(as R logistf) was "
            + (
                "fitted for every model"
                if lm.firth
                else "used where separation made maximum-likelihood estimates infinite"
            )
        )
    parts.append(". Results are odds ratios (OR) with 95% confidence intervals.")
    if n_pat is not None and n_pat < 50 and not lm.small_sample:
        parts.append(
            f" With {n_pat} patients (fewer than 50), the plain sandwich may understate the GEE standard "
            "errors; the bias-reduced option ([lesion_models] small_sample = true) is advised."
        )
    out.append("".join(parts))

    # survival
    sv = s.survival
    pm = st.patient_models if st is not None else None
    pterms = list(dict.fromkeys(x.label for x in pm.rows)) if pm is not None else list(s.risk_factors.patient)
    landmarks = ", ".join(f"{t:g}" for t in sv.landmarks_months)
    out.append(
        "Progression-free survival (PFS; event: progression or death) and overall survival (OS; event: "
        "death) were measured from CAR T-cell infusion (the index date) in months (days / 30.4375) and "
        "estimated by the Kaplan-Meier method with Greenwood variance and 95% pointwise confidence "
        f"intervals on the {sv.ci_method} scale (as R survival::survfit). Medians and their confidence "
        "intervals follow R survival::quantile.survfit (the midpoint where the curve lies exactly at 0.5); "
        f"survival is also given at {landmarks} months. Median follow-up was estimated by the reverse "
        f"Kaplan-Meier method. The patient factors ({_join([_lower(t) for t in pterms])}) were analysed by "
        "Cox proportional-hazards regression with Efron's tie handling, reporting hazard ratios (HR) with "
        "Wald 95% confidence intervals and p-values (as R survival::coxph; a numeric factor per its "
        "declared unit step), and yes/no factors also by the log-rank test; proportional hazards were "
        "checked with the "
        "score test of survival 3.x (as R survival::cox.zph), reported as not estimable where the fit is "
        "singular."
    )

    # competing risks
    out.append(
        "The cumulative incidence of first failure with a local component and of strictly de novo failure "
        "was estimated with death without failure as a competing event (Aalen-Johansen estimator, as R "
        "cmprsk::cuminc) and compared between groups with Gray's test."
    )

    # software
    sw = _join(
        [
            f"{k} {versions[k]}"
            for k in ("numpy", "scipy", "statsmodels", "pandas", "matplotlib")
            if k in versions
        ]
    )
    out.append(
        "All tests were two-sided at the 5% level without adjustment for multiple comparisons. Analyses "
        f"used pofa {versions.get('pofa', '')} (Python {versions.get('python', '')}; {sw}); the settings, "
        "input-file checksums and software versions of this analysis are recorded in manifest.json."
    )
    return tuple(out)


def methods_text(inp: ReportInput, versions: Mapping[str, Any]) -> str:
    """Write the methods paragraphs joined by blank lines.

    Parameters
    ----------
    inp : ReportInput
        The report input.
    versions : Mapping[str, Any]
        Software versions named in the text (values are written as text).

    Returns
    -------
    str
        The paragraphs of :func:`methods_paragraphs`, separated by blank lines.
    """
    return "\n\n".join(methods_paragraphs(inp, {k: str(v) for k, v in versions.items()}))
