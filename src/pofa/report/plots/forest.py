"""Figure: forest plot of the lesion-level odds ratios with its table, on a log axis.

The table gives term, lesions (events), OR (95% CI) and p, GEE and plain logistic side by side; for the
demo, the paper's odds ratios are drawn as marks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from pofa.report.format import DASH, fmt_p, fmt_ratio
from pofa.report.model import ReportInput
from pofa.report.paper import CITATION, PaperRatio
from pofa.report.plots.base import BuiltFigure, FigureSpec, add_footer
from pofa.report.style import GREY, METHOD_STYLE, OKABE_ITO
from pofa.stats.results import LesionModelRow

__all__ = ["ForestRow", "forest_figure", "forest_rows", "plot_forest", "plot_forest_table"]

#: Methods in the table, left to right.
TABLE_METHODS = ("gee", "logistic")


class ForestRow:
    """One line of the forest plot: a section heading (``term`` empty) or a term with its fits.

    Parameters
    ----------
    model : str
        ``"univariable"`` or ``"multivariable"``.
    term, label : str
        The term and its label (empty for a heading).
    fits : dict
        ``{method: LesionModelRow}``.
    """

    __slots__ = ("fits", "label", "model", "term")

    def __init__(self, model: str, term: str, label: str, fits: dict[str, LesionModelRow]) -> None:
        self.model, self.term, self.label, self.fits = model, term, label, fits


def forest_rows(rows: Sequence[LesionModelRow]) -> list[ForestRow]:
    """Arrange the lines of the forest plot: per model a heading and one line per term, in results' order.

    Parameters
    ----------
    rows : sequence of LesionModelRow
        The lesion-level model rows (one per model, term and method).

    Returns
    -------
    list of ForestRow
        A heading line per model (empty ``term``), then one line per term with its fits by method.
    """
    out: list[ForestRow] = []
    for model in ("univariable", "multivariable"):
        sel = [r for r in rows if r.model == model]
        if not sel:
            continue
        out.append(ForestRow(model, "", model.capitalize(), {}))
        for term in dict.fromkeys(r.term for r in sel):
            fits = {r.method: r for r in sel if r.term == term}
            out.append(ForestRow(model, term, next(iter(fits.values())).label, fits))
    return out


def _finite_pos(x: float) -> bool:
    return math.isfinite(x) and x > 0


def plot_forest(
    ax: Axes, lines: Sequence[ForestRow], *, reference: Sequence[PaperRatio] = ()
) -> dict[str, dict[str, float]]:
    """Draw odds ratios (points) and 95% CIs (bars) on a log axis, one line per term.

    The methods of a term are offset vertically.

    Parameters
    ----------
    ax : Axes
        Where to draw (y: line index from the top).
    lines : sequence of ForestRow
        From :func:`forest_rows`.
    reference : sequence of PaperRatio
        Published odds ratios drawn as open diamonds on the univariable line of their term.

    Returns
    -------
    dict
        ``{"model:method": {term: or}}`` of the points drawn (not-estimable fits are marked "NE").
    """
    n = len(lines)
    methods = [m for m in METHOD_STYLE if any(m in ln.fits for ln in lines)]
    offsets = {
        m: (0.18 - 0.36 * k / max(1, len(methods) - 1)) if len(methods) > 1 else 0.0
        for k, m in enumerate(methods)
    }
    drawn: dict[str, dict[str, float]] = {}
    lo_all, hi_all = [1.0], [1.0]
    for m in methods:
        colour, marker, label = METHOD_STYLE[m]
        xs, ys, el, eh = [], [], [], []
        for i, ln in enumerate(lines):
            r = ln.fits.get(m)
            if r is None:
                continue
            y = n - 1 - i + offsets[m]
            if not _finite_pos(r.odds_ratio):
                ax.text(1.0, y, "NE", ha="center", va="center", fontsize=7, color=colour, gid=f"ne:{m}")
                continue
            lo = r.ci_low if _finite_pos(r.ci_low) else r.odds_ratio
            hi = r.ci_high if math.isfinite(r.ci_high) else r.odds_ratio
            xs.append(r.odds_ratio)
            ys.append(y)
            el.append(r.odds_ratio - lo)
            eh.append(hi - r.odds_ratio)
            lo_all.append(lo)
            hi_all.append(hi)
            drawn.setdefault(f"{ln.model}:{m}", {})[ln.term] = r.odds_ratio
        if xs:
            ax.errorbar(
                xs,
                ys,
                xerr=[el, eh],
                fmt=marker,
                color=colour,
                ecolor=colour,
                markersize=4.5,
                capsize=2,
                elinewidth=1.1,
                label=label,
                gid=f"forest:{m}",
            )
    ref_x, ref_y = [], []
    for i, ln in enumerate(lines):
        if ln.model != "univariable":
            continue
        for p in reference:
            if p.term == ln.term:
                ref_x.append(p.estimate)
                ref_y.append(n - 1 - i)
                hi_all.append(p.estimate)
    if ref_x:
        ax.plot(
            ref_x,
            ref_y,
            linestyle="none",
            marker="D",
            markersize=6,
            markerfacecolor="none",
            markeredgecolor=OKABE_ITO["black"],
            markeredgewidth=1.1,
            label="Published OR (paper)",
            gid="forest:published",
        )
    ax.axvline(1.0, color=GREY, linewidth=0.8, linestyle="--", zorder=0)
    ax.set_xscale("log")
    ax.set_xlim(min(0.5, min(lo_all) / 1.25), max(2.0, max(hi_all) * 1.25))
    xlo, xhi = ax.get_xlim()
    ticks = [c for c in (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if xlo <= c <= xhi]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.set_xlabel("Odds ratio (95% CI), log scale")
    return drawn


def _or_text(r: LesionModelRow | None) -> tuple[str, str]:
    if r is None:
        return "\u2014", ""
    if not math.isfinite(r.odds_ratio):
        return "NE", ""
    return f"{fmt_ratio(r.odds_ratio)} ({fmt_ratio(r.ci_low)}{DASH}{fmt_ratio(r.ci_high)})", fmt_p(r.p)


def plot_forest_table(ax: Axes, lines: Sequence[ForestRow]) -> list[tuple[str, ...]]:
    """The forest plot's text columns: term, lesions (events), and OR (95% CI) and p of GEE and logistic.

    Parameters
    ----------
    ax : Axes
        A text-only axes sharing the forest plot's y axis.
    lines : sequence of ForestRow
        From :func:`forest_rows`.

    Returns
    -------
    list of tuple of str
        The text written, line by line (header first).
    """
    n = len(lines)
    cols = [
        (0.0, "left", "Term"),
        (0.35, "right", "Lesions (events)"),
        (0.60, "right", "GEE OR (95% CI)"),
        (0.68, "right", "p"),
        (0.91, "right", "Logistic OR (95% CI)"),
        (0.995, "right", "p"),
    ]
    ax.set_axis_off()
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_xlim(0, 1)
    written: list[tuple[str, ...]] = [tuple(c[2] for c in cols)]
    for x, ha, text in cols:
        ax.text(x, n - 0.4, text, ha=ha, va="bottom", fontsize=7, fontweight="bold")
    for i, ln in enumerate(lines):
        y = n - 1 - i
        if not ln.term:
            ax.text(0.0, y, ln.label, ha="left", va="center", fontsize=7.5, fontstyle="italic")
            written.append((ln.label,))
            continue
        any_fit = next(iter(ln.fits.values()))
        gee, gee_p = _or_text(ln.fits.get("gee"))
        lgt, lgt_p = _or_text(ln.fits.get("logistic"))
        cells = (ln.label, f"{any_fit.n_lesions} ({any_fit.n_events})", gee, gee_p, lgt, lgt_p)
        for (x, ha, _), text in zip(cols, cells, strict=True):
            ax.text(x, y, text, ha=ha, va="center", fontsize=7)
        written.append(cells)
    return written


def forest_figure(inp: ReportInput, sw: str) -> BuiltFigure | None:
    """Build the forest plot with its table.

    Parameters
    ----------
    inp : ReportInput
        The report input (lesion models, the small-sample setting, the paper's odds ratios for the demo).
    sw : str
        The software sentence of the note.

    Returns
    -------
    BuiltFigure or None
        The figure, or ``None`` without lesion models.
    """
    lm = inp.statistics.lesion_models if inp.statistics is not None else None
    if lm is None or not lm.rows:
        return None
    lines = forest_rows(lm.rows)
    reference = inp.paper_odds_ratios
    fig = Figure(figsize=(7.5, 1.2 + 0.24 * len(lines)), layout="constrained")
    ax_t, ax_f = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.7, 1.0]})
    table = plot_forest_table(ax_t, lines)
    drawn = plot_forest(ax_f, lines, reference=reference)
    handles, labels = ax_f.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=max(1, len(labels)), fontsize=7)
    add_footer(fig, inp.simulated)
    ss = " with the Mancl-DeRouen bias-reduced sandwich" if inp.settings.lesion_models.small_sample else ""
    ref = f" Open diamonds: the paper's published univariable odds ratios ({CITATION})." if reference else ""
    caption = (
        f"Odds ratios of local failure of a baseline lesion ({lm.n_lesions} lesions with a known outcome, "
        f"{lm.n_events} with local failure, in {lm.n_patients} patients), univariable and multivariable, "
        "by GEE with patients as clusters and by plain logistic regression (lesions treated as "
        "independent). Points are odds ratios, bars 95% confidence intervals, on a log scale; NE = not "
        f"estimable.{ref}"
    )
    alt = (
        "Forest plot of lesion-level odds ratios: "
        + "; ".join(
            f"{ln.model} {ln.label}: GEE {_or_text(ln.fits.get('gee'))[0]}, logistic "
            f"{_or_text(ln.fits.get('logistic'))[0]}"
            for ln in lines
            if ln.term
        )
        + "."
    )
    how = (
        "Odds ratios and Wald 95% CIs from the analysis' lesion models (results.json 'lesion_models'). "
        "Logistic: maximum likelihood (R glm, binomial). GEE: logit link, exchangeable working correlation, "
        f"robust sandwich standard errors{ss} (R geepack::geeglm). Firth (R logistf), when fitted, is drawn "
        f"and listed in the lesion-model table. Lesions (events): lesions in the model (with local failure). "
        f"{sw}"
    )
    spec = FigureSpec("forest_lesion_models", "Lesion-level odds ratios of local failure", caption, alt, how)
    return BuiltFigure(spec, fig, {"points": drawn, "table": table})
