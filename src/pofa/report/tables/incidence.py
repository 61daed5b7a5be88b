"""The competing-risks table: cumulative incidence (with CI) at the landmarks per cause.

Given overall and by group, with Gray's p, for patients (first failure by type) and lesions (local failure).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from pofa.report.format import fmt_count, fmt_p
from pofa.report.tables.base import Cell, ReportTable, num, text
from pofa.report.tables.results import _prob_ci
from pofa.stats.results import CompetingRisksResults, IncidenceBlock

__all__ = ["competing_risks_table"]

_CAUSE_LABELS = {
    "local component": "Local component (strictly local or mixed)",
    "strictly de novo": "Strictly de novo",
    "death without progression": "Death without progression",
    "progression, pattern unknown": "Progression, pattern unknown",
    "local failure": "Local failure (at any time)",
    "death without local failure": "Death without local failure",
}


def _group_label(group: str | None, factor: str | None) -> str:
    if group is None:
        return "all"
    if factor and group in ("0", "1"):
        return f"{factor}: {'yes' if group == '1' else 'no'}"
    return group


def _block(
    block: IncidenceBlock,
    base: str,
    population: str,
    months: list[float],
    factor: str | None,
    rows: list[tuple[Cell, ...]],
    recs: list[dict[str, Any]],
) -> None:
    for i, cause in enumerate(block.causes):
        cb = f"{base}.causes[{i}]"
        for j, curve in enumerate(cause.curves):
            vb = f"{cb}.curves[{j}]"
            cells: list[Cell] = [
                text(population),
                text(_CAUSE_LABELS.get(cause.cause, cause.cause)),
                text(_group_label(curve.group, factor)),
                (num(curve.n, f"{vb}.n", fmt_count),),
                (num(curve.events, f"{vb}.events", fmt_count),),
            ]
            for m in months:
                k = next((x for x, lm in enumerate(curve.landmarks) if lm.months == m), None)
                cells.append(
                    _prob_ci(curve.landmarks[k], f"{vb}.landmarks[{k}]", "incidence")
                    if k is not None
                    else text("")
                )
            cells.append(
                (num(cause.gray.p, f"{cb}.gray.p", fmt_p),) if cause.gray is not None and j == 0 else text("")
            )
            rows.append(tuple(cells))
            rec: dict[str, Any] = {
                "population": population,
                "cause": cause.cause,
                "group": curve.group,
                "n": curve.n,
                "events": curve.events,
                "gray_p": cause.gray.p if cause.gray is not None else None,
            }
            for lm in curve.landmarks:
                rec[f"incidence_{lm.months:g}m"] = lm.estimate
                rec[f"ci_low_{lm.months:g}m"] = lm.ci_low
                rec[f"ci_high_{lm.months:g}m"] = lm.ci_high
            recs.append(rec)


def competing_risks_table(
    cr: CompetingRisksResults, patient_label: str | None, lesion_labels: dict[str, str]
) -> ReportTable:
    """Tabulate the cumulative incidence at the landmarks per cause, overall and by group, with Gray's p.

    Parameters
    ----------
    cr : CompetingRisksResults
        The competing-risks results of patients and lesions.
    patient_label : str or None
        Label of the patients' grouping term.
    lesion_labels : dict
        Label of each lesion factor's term.

    Returns
    -------
    ReportTable
        One row per population (patients or lesions), cause and group, one column per landmark, and
        Gray's p.
    """
    blocks = [
        cr.patients_overall,
        *([cr.patients_by_group] if cr.patients_by_group else []),
        cr.lesions_overall,
        *cr.lesions_by_factor,
    ]
    months = list(
        dict.fromkeys(lm.months for b in blocks for c in b.causes for v in c.curves for lm in v.landmarks)
    )
    rows: list[tuple[Cell, ...]] = []
    recs: list[dict[str, Any]] = []
    _block(cr.patients_overall, "competing_risks.patients.overall", "Patients", months, None, rows, recs)
    if cr.patients_by_group is not None:
        _block(
            cr.patients_by_group,
            "competing_risks.patients.by_group",
            "Patients",
            months,
            patient_label,
            rows,
            recs,
        )
    _block(cr.lesions_overall, "competing_risks.lesions.overall", "Lesions", months, None, rows, recs)
    for i, b in enumerate(cr.lesions_by_factor):
        _block(
            b,
            f"competing_risks.lesions.by_factor[{i}]",
            "Lesions",
            months,
            lesion_labels.get(b.term or "", b.term),
            rows,
            recs,
        )
    note = (
        "Cumulative incidence (Aalen-Johansen) with pointwise 95% CI at each landmark, death without "
        "progression (or without local failure) competing; Gray's test between the groups (R "
        f"cmprsk::cuminc). Lesions: {cr.lesions_note}. A lesion's local failure here counts at any time "
        "(first progression or later), so the lesions with a local-failure event can outnumber the "
        "lesions that failed locally at first progression (the patterns and the lesion-level odds "
        "ratios)"
    )
    note += (
        f": {cr.lesions_later_local_failures} lesion(s) failed locally only after first progression."
        if cr.lesions_later_local_failures
        else "."
    )
    header = (
        "Population",
        "Cause",
        "Group",
        "n",
        "Events",
        *(f"At {m:g} months, % (95% CI)" for m in months),
        "Gray p",
    )
    return ReportTable(
        "competing_risks",
        "Competing risks: cumulative incidence of local and de novo failure",
        header,
        tuple(rows),
        pd.DataFrame.from_records(recs),
        note,
    )
