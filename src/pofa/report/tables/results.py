"""Tables of the analysis' results.

Patient flow, failure patterns, lesion-level odds ratios, survival, hazard ratios, exploratory cut-points
and, for the bundled demo, the paper's headline figures beside the demo's own. Every number is a field of a
typed result (:mod:`pofa.stats.results`), formatted, never recomputed; each fragment carries its
results.json path.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from pofa.classify import PatternCounts
from pofa.report.format import DASH, NOT_ESTIMABLE, fmt_count, fmt_months, fmt_p, fmt_pct, fmt_prob, fmt_ratio
from pofa.report.model import PATTERN_KEYS, PATTERNS, ReportInput
from pofa.report.paper import CITATION, PAPER_HAZARD_RATIOS, PAPER_ODDS_RATIOS, PAPER_PATTERNS
from pofa.report.tables.base import Cell, Frag, ReportTable, num, ratio_ci, text
from pofa.stats.results import Cutpoints, Landmark, LesionModels, PatientModels, SurvivalResults

__all__ = [
    "cutpoint_table",
    "flow_table",
    "lesion_model_table",
    "paper_table",
    "patient_model_table",
    "pattern_table",
    "survival_table",
]


def flow_table(counts: PatternCounts, survival: SurvivalResults | None) -> ReportTable:
    """Patient flow: included, eligible for survival analysis, recurred, pattern known.

    Parameters
    ----------
    counts : PatternCounts
        The pattern counts (patients included, recurred, unknown pattern).
    survival : SurvivalResults or None
        The survival results (patients eligible per endpoint); ``None`` leaves those rows out.

    Returns
    -------
    ReportTable
        One row per step of the flow.
    """
    rows: list[tuple[Cell, ...]] = []
    recs: list[dict[str, Any]] = []

    def add(label: str, cell: Cell, n: Any) -> None:
        rows.append((text(label), cell))
        recs.append({"step": label, "patients": n})

    add("Patients included", (num(counts.patients, "patterns.patients", fmt_count),), counts.patients)
    if survival is not None:
        add(
            "Eligible for survival analysis (PFS)",
            (num(survival.pfs.n, "survival.pfs.n", fmt_count),),
            survival.pfs.n,
        )
        add(
            "Eligible for survival analysis (OS)",
            (num(survival.os.n, "survival.os.n", fmt_count),),
            survival.os.n,
        )
    add(
        "Recurred (first progression)",
        (num(counts.recurred, "patterns.recurred", fmt_count),),
        counts.recurred,
    )
    known = counts.recurred - counts.unknown
    add("Recurred with the pattern known", text(fmt_count(known)), known)
    add(
        "Recurred, pattern unknown (no failure lesions recorded)",
        (num(counts.unknown, "patterns.unknown", fmt_count),),
        counts.unknown,
    )
    return ReportTable(
        "patient_flow",
        "Patient flow",
        ("Step", "Patients"),
        tuple(rows),
        pd.DataFrame.from_records(recs),
        "Pattern known = recurred minus unknown. Survival eligibility as in results.json 'survival'.",
    )


_PATTERN_ROWS = {
    "strictly local": "Strictly local",
    "mixed": "Mixed (local and de novo)",
    "strictly de novo": "Strictly de novo",
    "unknown": "Unknown (no failure lesions recorded)",
}


def pattern_table(counts: PatternCounts) -> ReportTable:
    """Failure patterns at first progression: counts and % of recurred patients.

    Parameters
    ----------
    counts : PatternCounts
        The pattern counts of the analysis.

    Returns
    -------
    ReportTable
        One row per pattern and summary count, with its percentage of the stated denominator.
    """
    rows: list[tuple[Cell, ...]] = []
    recs: list[dict[str, Any]] = []
    entries = [(_PATTERN_ROWS[p], PATTERN_KEYS[p], "recurred") for p in PATTERNS] + [
        ("All recurred patients", "recurred", "patients"),
        ("Local component (strictly local or mixed)", "local_component", "recurred"),
        ("Maintained control of at least one baseline lesion", "maintained_control", "recurred"),
        ("Baseline lesions with local failure at first progression", "local_failure_lesions", "lesions"),
    ]
    for label, key, denom_key in entries:
        k, d = int(getattr(counts, key)), int(getattr(counts, denom_key))
        rows.append((text(label), (num(k, f"patterns.{key}", fmt_count),), text(fmt_pct(k, d))))
        recs.append(
            {
                "pattern": label,
                "key": key,
                "count": k,
                "denominator": denom_key,
                "percent": 100.0 * k / d if d else None,
            }
        )
    return ReportTable(
        "failure_patterns",
        "Pattern of failure at first progression",
        ("Pattern", "n", "%"),
        tuple(rows),
        pd.DataFrame.from_records(recs),
        "Percentages are of recurred patients, except all recurred (of all patients) and lesions "
        "with local failure (of all baseline lesions).",
    )


def lesion_model_table(lm: LesionModels, small_sample: bool) -> ReportTable:
    """Lesion-level odds ratios: univariable and multivariable, GEE, logistic (and Firth) side by side.

    Parameters
    ----------
    lm : LesionModels
        The lesion-level models (rows per model, term and method).
    small_sample : bool
        Whether the GEE used the Mancl-DeRouen sandwich (the note says so instead of suggesting it).

    Returns
    -------
    ReportTable
        One row per risk factor under univariable and multivariable headings, one column pair per method.
    """
    methods = [m for m in ("gee", "logistic", "firth") if any(r.method == m for r in lm.rows)]
    names = {"logistic": "Logistic", "gee": "GEE", "firth": "Firth"}
    header = ["Risk factor", "Lesions (events)"]
    for m in methods:
        header += [f"{names[m]} OR (95% CI)", f"{names[m]} p"]
    rows: list[tuple[Cell, ...]] = []
    headings: set[int] = set()
    for model in ("univariable", "multivariable"):
        idx = [(i, r) for i, r in enumerate(lm.rows) if r.model == model]
        if not idx:
            continue
        headings.add(len(rows))
        rows.append((text(model.capitalize()),) + tuple(text("") for _ in range(len(header) - 1)))
        for term in dict.fromkeys(r.term for _, r in idx):
            fits = {r.method: (i, r) for i, r in idx if r.term == term}
            i0, r0 = next(iter(fits.values()))
            cells: list[Cell] = [
                text(r0.label),
                (num(r0.n_lesions, f"lesion_models[{i0}].n_lesions", fmt_count), Frag(f" ({r0.n_events})")),
            ]
            for m in methods:
                if m in fits:
                    i, r = fits[m]
                    b = f"lesion_models[{i}]"
                    cells += [
                        ratio_ci(r.odds_ratio, r.ci_low, r.ci_high, b, "or", fmt_ratio),
                        (num(r.p, f"{b}.p", fmt_p),),
                    ]
                else:
                    cells += [text("\u2014"), text("\u2014")]
            rows.append(tuple(cells))
    data = pd.DataFrame.from_records(
        [{**r.to_json(), "label": r.label, "n_events": r.n_events} for r in lm.rows]
    )
    note = (
        "OR: odds ratio of local failure of a baseline lesion at first progression; CI: Wald 95% confidence "
        "interval (Firth: profile penalized likelihood). GEE: patients as clusters, exchangeable working "
        "correlation, robust sandwich SE"
        + (" with the Mancl-DeRouen small-sample correction" if small_sample else "")
        + " (R geepack::geeglm). Logistic: lesions treated as independent (R glm). Lesions (events): "
        "lesions in the model (with local failure). NE: not estimable (see results.json). \u2014: not "
        "fitted."
    )
    if lm.n_lesions_unknown_outcome:
        note += (
            f" {lm.n_lesions_unknown_outcome} lesion(s) of patients whose pattern is unknown have no "
            "outcome and are left out."
        )
    if lm.notes:
        note += " Notes: " + "; ".join(lm.notes) + "."
    return ReportTable(
        "lesion_models",
        "Lesion-level risk factors of local failure",
        tuple(header),
        tuple(rows),
        data,
        note,
        frozenset(headings),
    )


def _prob_ci(lm: Landmark, base: str, key: str) -> Cell:
    """``51.8% (37.6%–64.2%)`` (the interval left out when neither limit is estimable)."""
    est = num(lm.estimate, f"{base}.{key}", fmt_prob)
    lo, hi = num(lm.ci_low, f"{base}.ci_low", fmt_prob), num(lm.ci_high, f"{base}.ci_high", fmt_prob)
    if lo.value is None and hi.value is None:
        return (est,)
    return (est, Frag(" ("), lo, Frag(DASH), hi, Frag(")"))


def survival_table(surv: SurvivalResults) -> ReportTable:
    """PFS and OS: patients, events, median (95% CI), survival at the landmarks; median follow-up.

    Parameters
    ----------
    surv : SurvivalResults
        The PFS and OS Kaplan-Meier summaries and the follow-up.

    Returns
    -------
    ReportTable
        One row per endpoint.
    """
    months = list(dict.fromkeys(lm.months for e in (surv.pfs, surv.os) for lm in e.landmarks))
    rows: list[tuple[Cell, ...]] = []
    recs: list[dict[str, Any]] = []
    for e, label in (("pfs", "Progression-free survival"), ("os", "Overall survival")):
        s = surv.endpoint(e)
        b = f"survival.{e}"
        cells: list[Cell] = [
            text(label),
            (num(s.n, f"{b}.n", fmt_count),),
            (num(s.events, f"{b}.events", fmt_count),),
            ratio_ci(s.median, s.ci_low, s.ci_high, b, "median_months", fmt_months),
        ]
        for m in months:
            k = next((i for i, lm in enumerate(s.landmarks) if lm.months == m), None)
            cells.append(
                _prob_ci(s.landmarks[k], f"{b}.landmarks[{k}]", "survival")
                if k is not None
                else text("\u2014")
            )
        cells.append((Frag(s.ci_method, f"{b}.ci_method", s.ci_method),))
        rows.append(tuple(cells))
        rec: dict[str, Any] = {
            "endpoint": e,
            "n": s.n,
            "events": s.events,
            "median_months": s.median,
            "ci_low": s.ci_low,
            "ci_high": s.ci_high,
            "ci_method": s.ci_method,
        }
        for lm in s.landmarks:
            rec[f"survival_{lm.months:g}m"] = lm.estimate
            rec[f"survival_{lm.months:g}m_ci_low"] = lm.ci_low
            rec[f"survival_{lm.months:g}m_ci_high"] = lm.ci_high
        recs.append(rec)
    f = surv.followup
    rows.append(
        (
            text("Median follow-up (reverse Kaplan-Meier)"),
            text(""),
            text(""),
            ratio_ci(f.median, f.ci_low, f.ci_high, "followup", "median_months", fmt_months),
        )
        + tuple(text("") for _ in months)
        + (text(""),)
    )
    recs.append({"endpoint": "followup", "median_months": f.median, "ci_low": f.ci_low, "ci_high": f.ci_high})
    header = (
        "Endpoint",
        "Patients",
        "Events",
        "Median, months (95% CI)",
        *(f"At {m:g} months (95% CI)" for m in months),
        "CI method",
    )
    return ReportTable(
        "survival",
        "Survival from CAR T infusion",
        header,
        tuple(rows),
        pd.DataFrame.from_records(recs),
        "Kaplan-Meier estimates with pointwise 95% CI (R survival::survfit; medians as "
        "quantile.survfit; NE: not reached or not estimable, e.g. a landmark beyond the last "
        "follow-up). PFS event: progression or death; OS event: death. Months = days / 30.4375.",
    )


def patient_model_table(pm: PatientModels) -> ReportTable:
    """Patient-level hazard ratios (Cox, Efron ties) and log-rank p per endpoint and factor.

    Parameters
    ----------
    pm : PatientModels
        The patient-level Cox models, log-rank tests and proportional-hazards checks.

    Returns
    -------
    ReportTable
        One row per endpoint and factor.
    """
    rows: list[tuple[Cell, ...]] = []
    recs: list[dict[str, Any]] = []
    reasons = []
    checks = {(c.endpoint, c.term): (k, c) for k, c in enumerate(pm.ph_checks)}
    for i, r in enumerate(pm.rows):
        b = f"patient_models[{i}]"
        found = checks.get((r.endpoint, r.term))
        if found is None:
            ph: Cell = text("")
        elif found[1].reason:
            ph = (
                num(
                    found[1].p,
                    f"patient_models_info.ph_checks[{found[0]}].p",
                    lambda _v: "NE (not estimable)",
                ),
            )
        else:
            ph = (num(found[1].p, f"patient_models_info.ph_checks[{found[0]}].p", fmt_p),)
        rows.append(
            (
                text(r.endpoint.upper()),
                text(r.label),
                (num(r.n_with, f"{b}.n_with", fmt_count),)
                if r.binary
                else text(f"per {r.step:g} (n = {r.n})"),
                ratio_ci(r.hr, r.ci_low, r.ci_high, b, "hr", fmt_ratio),
                (num(r.p, f"{b}.p", fmt_p),),
                (num(r.logrank_p, f"{b}.logrank_p", fmt_p),) if r.binary else text("\u2014"),
                ph,
            )
        )
        recs.append({**r.to_json(), "label": r.label, "n": r.n, "step": r.step})
        if r.reason and r.binary:
            reasons.append(f"{r.endpoint.upper()} {r.label}: {r.reason}")
    ph_reasons = sorted({c.reason for c in pm.ph_checks if c.reason})
    note = (
        "HR: hazard ratio, Cox proportional hazards with Efron ties, Wald CI and p (R survival::coxph); a "
        "numeric factor's HR is per the step shown (its declared unit step). Log-rank test as R "
        "survival::survdiff (yes/no factors). PH check: global test of proportional hazards (R "
        "survival::cox.zph)."
    )
    if ph_reasons:
        note += " PH check " + "; ".join(ph_reasons) + "."
    if reasons:
        note += " Not estimable: " + "; ".join(reasons) + "."
    header = (
        "Endpoint",
        "Factor",
        "Patients with factor",
        "HR (95% CI)",
        "p (Wald)",
        "Log-rank p",
        "PH check p",
    )
    return ReportTable(
        "patient_models",
        "Patient-level risk factors of progression and death",
        header,
        tuple(rows),
        pd.DataFrame.from_records(recs),
        note,
    )


_FEATURE_LABELS = {"max_diameter_cm": "Largest lesion diameter, cm", "max_suvmax": "Highest SUVmax"}


def cutpoint_table(cps: Cutpoints) -> ReportTable | None:
    """Exploratory cut-points (maximally selected log-rank statistics) with corrected p-values.

    The exploratory caveat is written once, in the note.

    Parameters
    ----------
    cps : Cutpoints
        The exploratory cut-point results.

    Returns
    -------
    ReportTable or None
        One row per feature, or ``None`` when there are no cut-points.
    """
    if not cps.rows:
        return None
    rows: list[tuple[Cell, ...]] = []
    recs: list[dict[str, Any]] = []
    reasons: list[str] = []
    for i, c in enumerate(cps.rows):
        b = f"cutpoints[{i}]"
        rows.append(
            (
                text(_FEATURE_LABELS.get(c.feature, c.feature)),
                text(c.endpoint.upper()),
                (num(c.cutpoint, f"{b}.cutpoint", lambda v: NOT_ESTIMABLE if v is None else f"{v:g}"),),
                (num(c.n_low, f"{b}.n_low", fmt_count), Frag(" / "), num(c.n_high, f"{b}.n_high", fmt_count)),
                (num(c.statistic, f"{b}.statistic", fmt_ratio),),
                (num(c.p_lau92, f"{b}.p_lau92", fmt_p),),
                (num(c.p_lau94, f"{b}.p_lau94", fmt_p),),
            )
        )
        recs.append(c.to_json())
        if c.reason:
            reasons.append(f"{_FEATURE_LABELS.get(c.feature, c.feature)}: {c.reason}")
    note = (
        "EXPLORATORY. Maximally selected log-rank statistic over the observed values (R "
        "maxstat::maxstat.test); p-values corrected for choosing the cut-point on the same data (Lausen & "
        "Schumacher 1992, Lau92; Lausen, Sauerbrei & Schumacher 1994, Lau94). A cut-point chosen this way "
        "overstates its effect: confirm it in independent data."
    )
    if reasons:
        note += " " + "; ".join(reasons) + "."
    return ReportTable(
        "cutpoints",
        "Exploratory cut-points for progression-free survival",
        (
            "Feature",
            "Endpoint",
            "Cut-point",
            "Patients at or below / above the cut-point",
            "Statistic",
            "p (Lau92)",
            "p (Lau94)",
        ),
        tuple(rows),
        pd.DataFrame.from_records(recs),
        note,
    )


def paper_table(inp: ReportInput) -> ReportTable | None:
    """The paper's headline figures beside the demo's own (the bundled demo only).

    Parameters
    ----------
    inp : ReportInput
        The report input (pattern counts and typed statistics).

    Returns
    -------
    ReportTable or None
        The paper's and the demo's figures side by side, or ``None`` unless the study is the bundled demo
        with statistics.
    """
    counts, st = inp.pattern_counts, inp.statistics
    if not inp.paper_demo or counts is None or st is None:
        return None
    rows: list[tuple[Cell, ...]] = []
    recs: list[dict[str, Any]] = []
    for label, k, d, key, denom in PAPER_PATTERNS:
        own, own_d = int(getattr(counts, key)), int(getattr(counts, denom))
        paper = (
            f"{k}/{d} ({fmt_pct(k, d)})" if key != "maintained_control" else "84% (denominator not stated)"
        )
        rows.append(
            (
                text(label),
                text(paper),
                (num(own, f"patterns.{key}", fmt_count), Frag(f"/{own_d} ({fmt_pct(own, own_d)})")),
            )
        )
        recs.append({"figure": label, "paper": paper, "demo": own, "demo_denominator": own_d})
    lm = st.lesion_models
    for p in PAPER_ODDS_RATIOS:
        found = (
            [
                (i, r)
                for i, r in enumerate(lm.rows)
                if r.term == p.term and r.model == "univariable" and r.method == "gee"
            ]
            if lm is not None
            else []
        )
        own_cell: Cell = (
            ratio_ci(
                found[0][1].odds_ratio,
                found[0][1].ci_low,
                found[0][1].ci_high,
                f"lesion_models[{found[0][0]}]",
                "or",
                fmt_ratio,
            )
            if found
            else text("not in this analysis")
        )
        paper = f"{p.estimate:.2f} ({p.ci_low:.2f}{DASH}{p.ci_high:.2f})"
        rows.append((text(f"OR of local failure: {p.label}"), text(paper), own_cell))
        recs.append(
            {
                "figure": f"OR {p.label}",
                "paper": p.estimate,
                "demo": found[0][1].odds_ratio if found else None,
            }
        )
    pm = st.patient_models
    for p in PAPER_HAZARD_RATIOS:
        hr = (
            [(i, r) for i, r in enumerate(pm.rows) if r.term == p.term and r.endpoint == p.endpoint]
            if pm
            else []
        )
        own_cell = (
            ratio_ci(
                hr[0][1].hr, hr[0][1].ci_low, hr[0][1].ci_high, f"patient_models[{hr[0][0]}]", "hr", fmt_ratio
            )
            if hr
            else text("not in this analysis")
        )
        paper = f"{p.estimate:.2f} ({p.ci_low:.2f}{DASH}{p.ci_high:.2f})"
        rows.append((text(f"HR: {p.label}"), text(paper), own_cell))
        recs.append({"figure": f"HR {p.label}", "paper": p.estimate, "demo": hr[0][1].hr if hr else None})
    return ReportTable(
        "paper_comparison",
        "The paper's headline figures beside this simulated cohort's",
        ("Figure", "Paper (published)", "This simulated cohort"),
        tuple(rows),
        pd.DataFrame.from_records(recs),
        f"Paper: {CITATION} (abstract). The simulated cohort imitates the paper's design; its "
        "numbers are not patients' and vary with the simulation seed. Demo odds ratios: "
        "univariable GEE.",
    )
