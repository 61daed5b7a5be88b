"""Figure: cumulative incidence of first failure by type, the analysis' own curves (R ``cmprsk::cuminc``).

The causes are local component vs strictly de novo, with death and progression of unknown pattern
competing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from pofa.report.format import p_phrase
from pofa.report.model import ReportInput
from pofa.report.plots.base import BuiltFigure, FigureSpec, add_footer, band_changes, time_ticks
from pofa.report.style import GREY, OKABE_ITO
from pofa.stats.results import IncidenceBlock, StepCurve

__all__ = ["CAUSE_LABELS", "gray_annotation", "incidence_figure", "plot_cumulative_incidence"]

#: Labels of the patient-level causes in the figure, by status code (``fp_status`` of pofa.classify).
CAUSE_LABELS: dict[int, str] = {
    1: "Local component (strictly local or mixed)",
    2: "Strictly de novo",
    3: "Death without progression",
    4: "Progression, pattern unknown",
}


def plot_cumulative_incidence(
    ax: Axes, curves: Sequence[tuple[str, StepCurve]], *, annotation: str | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Draw the cumulative incidence of each cause as step functions from 0, flat to the last follow-up.

    The first two causes are drawn with their pointwise confidence bands; the legend goes above the axes.

    Parameters
    ----------
    ax : Axes
        Where to draw.
    curves : sequence of (str, StepCurve)
        Label and curve of each cause.
    annotation : str, optional
        Legend title (Gray's test).

    Returns
    -------
    dict
        ``{label: (x, y)}`` of the steps drawn.
    """
    styles = {
        0: (OKABE_ITO["vermillion"], "-"),
        1: (OKABE_ITO["blue"], "--"),
        2: (OKABE_ITO["black"], ":"),
        3: (GREY, "-."),
    }
    drawn = {}
    max_t = 0.0
    for k, (label, c) in enumerate(curves):
        colour, ls = styles.get(k, (OKABE_ITO["reddish purple"], "-"))
        x, y = c.steps()
        ax.step(x, y, where="post", color=colour, linestyle=ls, label=label, gid=f"cif:{label}")
        bx, lo, hi = band_changes(*c.band())
        if k < 2 and bx.size:
            end = [c.last_time] if c.last_time > bx[-1] else []
            ax.fill_between(
                np.concatenate(([0.0], bx, end)),
                np.concatenate(([0.0], lo, lo[-1:] if end else [])),
                np.concatenate(([0.0], hi, hi[-1:] if end else [])),
                step="post",
                color=colour,
                alpha=0.12,
                linewidth=0,
            )
        drawn[label] = (x, y)
        max_t = max(max_t, float(x[-1]))
    tks = time_ticks(max_t)
    ax.set_xticks(list(tks), [f"{t:g}" for t in tks])
    ax.set_xlim(0, max(max_t, 1.0) * 1.02)
    top = max((float(np.nanmax(c.estimate)) for _, c in curves if c.estimate.size), default=0.0)
    ax.set_ylim(0, min(1.0, max(0.2, top * 1.15 + 0.05)))
    ax.set_ylabel("Cumulative incidence")
    ax.set_xlabel("Months from CAR T infusion")
    ax.legend(
        loc="lower left",
        bbox_to_anchor=(0.0, 1.01),
        borderaxespad=0.0,
        handlelength=2.2,
        title=annotation,
        title_fontsize=7,
        fontsize=7,
        alignment="left",
        frameon=False,
        ncols=2,
    )
    return drawn


def gray_annotation(block: IncidenceBlock | None, label: str) -> str | None:
    """Write the Gray's test sentence of the figure's legend title.

    The sentence reads "Gray's test by <term>:" and, on a second line (one line is wider than the figure),
    "local component p = ..; strictly de novo p = ..".

    Parameters
    ----------
    block : IncidenceBlock or None
        The patients' by-group fit.
    label : str
        The grouping term as a reader reads it.

    Returns
    -------
    str or None
        The sentence, or ``None`` without a by-group fit or a Gray's test of the first two causes.
    """
    if block is None:
        return None
    parts = [
        f"{c.cause} {p_phrase(c.gray.p)}" for c in block.causes if c.code in (1, 2) and c.gray is not None
    ]
    if not parts:
        return None
    return f"Gray's test by {label[:1].lower() + label[1:]}:\n" + "; ".join(parts)


def incidence_figure(inp: ReportInput, sw: str) -> BuiltFigure | None:
    """Build the cumulative-incidence figure.

    Parameters
    ----------
    inp : ReportInput
        The report input (competing-risks results and the patient models' first term for Gray's test).
    sw : str
        The software sentence of the note.

    Returns
    -------
    BuiltFigure or None
        The figure, or ``None`` when the cumulative incidence is not estimable.
    """
    cr = inp.statistics.competing_risks if inp.statistics is not None else None
    if cr is None or not cr.patients_overall.causes:
        return None
    curves = [
        (CAUSE_LABELS.get(c.code, c.cause), c.curves[0].curve) for c in cr.patients_overall.causes if c.curves
    ]
    pm = inp.statistics.patient_models if inp.statistics is not None else None
    by_label = pm.rows[0].label if pm is not None and pm.rows else "group"
    ann = gray_annotation(cr.patients_by_group, by_label)
    fig = Figure(figsize=(4.8, 3.7), layout="constrained")
    drawn = plot_cumulative_incidence(fig.add_subplot(), curves, annotation=ann)
    add_footer(fig, inp.simulated)
    lm = list(inp.settings.survival.landmarks_months)
    at = "; ".join(
        f"{c.cause}: "
        + ", ".join(
            f"{100 * x.estimate:.0f}% at {x.months:g} mo"
            for x in c.curves[0].landmarks
            if x.estimate == x.estimate
        )
        for c in cr.patients_overall.causes[:2]
        if c.curves
    )
    caption = (
        "Cumulative incidence of first failure by type from CAR T infusion: with a local component "
        "(strictly local or mixed) or strictly de novo, with death without progression (and progression "
        "of unknown pattern) as competing events. Shaded: pointwise 95% confidence bands. Landmark "
        "estimates with confidence intervals are in the competing-risks table." + (f" {ann}." if ann else "")
    )
    how = (
        f"{cr.patients_overall.method}. The cause of each patient's first failure follows its "
        "first-progression pattern (local component = strictly local or mixed); the curves run to the last "
        f"follow-up; landmarks at {', '.join(f'{t:g}' for t in lm)} months. From results.json "
        f"'competing_risks'. {sw}"
    )
    spec = FigureSpec(
        "cumulative_incidence",
        "Cumulative incidence of local and de novo failure",
        caption,
        f"Cumulative incidence curves: {at}.",
        how,
    )
    return BuiltFigure(spec, fig, {"curves": drawn})
