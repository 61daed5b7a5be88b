"""Figure: patterns of failure at first progression (bar chart)."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from pofa.classify import PatternCounts
from pofa.report.format import fmt_count, fmt_pct
from pofa.report.model import NO_FAILURE, PATTERN_KEYS, PATTERNS, ReportInput
from pofa.report.plots.base import BuiltFigure, FigureSpec, add_footer
from pofa.report.style import PATTERN_COLOURS

__all__ = ["pattern_label", "patterns_figure", "plot_patterns"]


def pattern_label(p: str) -> str:
    """Name a pattern as a legend shows it.

    Parameters
    ----------
    p : str
        One of :data:`pofa.report.model.PATTERNS` or ``"none"``.

    Returns
    -------
    str
        The legend label (``"Mixed (local + de novo)"``, ``"No progression"``, ...).

    Raises
    ------
    KeyError
        For any other pattern.
    """
    return {
        "strictly local": "Strictly local",
        "mixed": "Mixed (local + de novo)",
        "strictly de novo": "Strictly de novo",
        "unknown": "Unknown (no failure lesions recorded)",
        NO_FAILURE: "No progression",
    }[p]


def plot_patterns(ax: Axes, counts: PatternCounts) -> dict[str, int]:
    """Bar chart of first-progression patterns among recurred patients: counts and % of recurred.

    Parameters
    ----------
    ax : Axes
        Where to draw.
    counts : PatternCounts
        The analysis' pattern counts (results.json ``patterns``).

    Returns
    -------
    dict
        The bar heights drawn, by pattern.
    """
    heights = {p: int(getattr(counts, PATTERN_KEYS[p])) for p in PATTERNS}
    xs = np.arange(len(PATTERNS))
    vals = [heights[p] for p in PATTERNS]
    bars = ax.bar(
        xs,
        vals,
        color=[PATTERN_COLOURS[p] for p in PATTERNS],
        edgecolor="black",
        linewidth=0.6,
        width=0.65,
        label="patients",
    )
    for patch, p in zip(bars.patches, PATTERNS, strict=True):
        patch.set_gid(f"pattern:{p}")
        patch.set_hatch({"strictly local": "", "mixed": "//", "strictly de novo": "..", "unknown": "xx"}[p])
    for x, v in zip(xs, vals, strict=True):
        ax.annotate(
            f"{v} ({fmt_pct(v, counts.recurred)})",
            (x, v),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xticks(xs, ["Strictly\nlocal", "Mixed", "Strictly\nde novo", "Unknown"])
    ax.set_ylabel("Patients")
    top = max(vals) if vals else 0
    ax.set_ylim(0, max(1.0, top * 1.18 + 0.5))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    # y given: an automatic title is moved up above any x tick labels on top of the axes (none here: it sits
    # at y = 1 either way), and finding that out measures every y tick label again at each layout pass and
    # in the drawing
    ax.set_title(f"Pattern at first progression ({fmt_count(counts.recurred)} recurred patients)", loc="left",
                 y=1.0)
    return heights


def patterns_figure(inp: ReportInput, sw: str) -> BuiltFigure | None:
    """Build the patterns figure with its caption.

    Parameters
    ----------
    inp : ReportInput
        The report input (the pattern counts and the simulated mark).
    sw : str
        The software sentence of the note.

    Returns
    -------
    BuiltFigure or None
        The figure, or ``None`` without pattern counts.
    """
    counts = inp.pattern_counts
    if counts is None:
        return None
    fig = Figure(figsize=(4.6, 3.2), layout="constrained")
    heights = plot_patterns(fig.add_subplot(), counts)
    add_footer(fig, inp.simulated)
    rec = counts.recurred
    parts = [
        f"{pattern_label(p).split(' (')[0].lower()} {heights[p]} ({fmt_pct(heights[p], rec)})"
        for p in PATTERNS
    ]
    w = inp.settings.classification.window_days
    caption = (
        f"Pattern of failure at first progression among {fmt_count(rec)} of "
        f"{fmt_count(counts.patients)} patients who recurred: {', '.join(parts)}. Percentages are of "
        "recurred patients."
    )
    alt = f"Bar chart of failure patterns among {fmt_count(rec)} recurred patients: {'; '.join(parts)}."
    how = (
        "Counts from results.json 'patterns'. A baseline lesion failed locally when a failure lesion seen "
        f"within {w} days after the progression date was linked to it; 'unknown' = progression recorded "
        f"without failure lesions (never counted as de novo). {sw}"
    )
    spec = FigureSpec("failure_patterns", "Pattern of failure at first progression", caption, alt, how)
    return BuiltFigure(spec, fig, {"heights": heights})
