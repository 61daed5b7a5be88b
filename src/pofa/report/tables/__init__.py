"""The report's tables, by concern.

The cohort (Table 1, :mod:`.cohort`), the analysis' results (:mod:`.results`), competing risks
(:mod:`.incidence`); cells, the table record and the CSV/XLSX writers in :mod:`.base`. Every number of a
results table is a field of a typed result, formatted, never recomputed.
"""

from __future__ import annotations

from pofa.report.model import ReportInput
from pofa.report.tables.base import (
    Cell,
    Frag,
    ReportTable,
    cell_text,
    num,
    table_csv_bytes,
    text,
    write_table,
)
from pofa.report.tables.cohort import cohort_table, lesion_table
from pofa.report.tables.incidence import competing_risks_table
from pofa.report.tables.results import (
    cutpoint_table,
    flow_table,
    lesion_model_table,
    paper_table,
    patient_model_table,
    pattern_table,
    survival_table,
)

__all__ = [
    "Cell",
    "Frag",
    "ReportTable",
    "build_tables",
    "cell_text",
    "cohort_table",
    "competing_risks_table",
    "cutpoint_table",
    "flow_table",
    "lesion_model_table",
    "lesion_table",
    "num",
    "paper_table",
    "patient_model_table",
    "pattern_table",
    "survival_table",
    "table_csv_bytes",
    "text",
    "write_table",
]


def build_tables(inp: ReportInput) -> tuple[ReportTable, ...]:
    """Build every table of the report, in report order (tables whose results are absent are left out).

    Parameters
    ----------
    inp : ReportInput
        The report input (patients, lesions, pattern counts and typed statistics).

    Returns
    -------
    tuple of ReportTable
        Table 1 and the lesion table first, then the flow, patterns, paper comparison (demo only), lesion
        models, survival, patient models, competing risks and cut-points that the results hold.
    """
    out = [cohort_table(inp, inp.table1_by), lesion_table(inp)]
    st = inp.statistics
    counts = inp.pattern_counts
    if counts is not None:
        out += [flow_table(counts, st.survival if st is not None else None), pattern_table(counts)]
    paper = paper_table(inp)
    if paper is not None:
        out.append(paper)
    if st is None:
        return tuple(out)
    if st.lesion_models is not None and st.lesion_models.rows:
        out.append(lesion_model_table(st.lesion_models, inp.settings.lesion_models.small_sample))
    if st.survival is not None:
        out.append(survival_table(st.survival))
    if st.patient_models is not None and st.patient_models.rows:
        out.append(patient_model_table(st.patient_models))
    if st.competing_risks is not None:
        pm = st.patient_models
        lm = st.lesion_models
        out.append(
            competing_risks_table(
                st.competing_risks,
                pm.rows[0].label if pm is not None and pm.rows else None,
                {r.term: r.label for r in lm.rows} if lm is not None else {},
            )
        )
    if st.cutpoints is not None:
        cp = cutpoint_table(st.cutpoints)
        if cp is not None:
            out.append(cp)
    return tuple(out)
