"""Figure: each baseline lesion by longest diameter and SUVmax, coloured and shaped by its outcome."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from pofa.report.model import NO_FAILURE, ReportInput
from pofa.report.plots.base import BuiltFigure, FigureSpec, add_footer
from pofa.report.style import OUTCOME_STYLE

if TYPE_CHECKING:
    from pandas.api.typing import NAType

__all__ = ["MARK_ALPHA", "RASTERIZE_ABOVE", "lesion_outcome_class", "plot_lesion_scatter", "scatter_figure",
           "stacked_points"]

#: Opacity of one lesion's mark.
MARK_ALPHA = 0.75

#: Above this many lesions the scatter's points are embedded in the SVG as a 300-dpi image (axes, text and
#: threshold lines stay vector): thousands of vector markers make a slow, multi-megabyte SVG. The caption
#: says so. (Identical points are drawn once first, :func:`stacked_points`, which is lossless and halves the
#: image's drawing at 5,000 patients; the image stays because the distinct points still number thousands.)
RASTERIZE_ABOVE = 3000


def stacked_points(pts: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Each distinct point once, with the opacity of all the identical marks drawn there stacked.

    ``k`` identical marks of one colour and opacity ``a`` drawn over each other composite (source over) to
    that colour with opacity ``1 - (1 - a)**k``: one mark with that opacity is the same picture (lesion sizes
    and SUVmax recorded to one decimal put many lesions on the same point).

    Parameters
    ----------
    pts : numpy.ndarray
        ``(n, 2)`` points.
    alpha : float
        Opacity of one mark.

    Returns
    -------
    tuple of numpy.ndarray
        The distinct points (sorted) and the opacity of each.
    """
    if not len(pts):
        return pts.reshape(0, 2), np.empty(0)
    srt = pts[np.lexsort((pts[:, 1], pts[:, 0]))]  # by x, then y (np.unique(axis=0) is ten times slower)
    first = np.ones(len(srt), dtype=bool)
    first[1:] = np.any(srt[1:] != srt[:-1], axis=1)
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, len(srt)))
    return srt[starts], 1.0 - (1.0 - alpha) ** counts


def lesion_outcome_class(lesions: pd.DataFrame, patients: pd.DataFrame) -> pd.Series:
    """Classify the outcome of each lesion at first progression.

    The outcomes are ``local failure``, ``controlled`` (the patient progressed, this lesion did not fail),
    ``no progression`` or ``unknown`` (progression without failure rows).

    Parameters
    ----------
    lesions, patients : DataFrame
        The report's tables (the analysis' ``lesion_outcome`` when present, else ``local_failure`` and the
        patient's pattern).

    Returns
    -------
    Series
        The outcome of each lesion, aligned with ``lesions``.
    """
    if "lesion_outcome" in lesions.columns:
        out = lesions["lesion_outcome"].astype(object)
        return out.where(out.isin(list(OUTCOME_STYLE)), "unknown").astype(object)
    pattern = dict(zip(patients["patient_id"], patients["pattern"], strict=True))
    lf: Iterable[bool | NAType] = lesions["local_failure"].astype("boolean")  # pd.NA where missing
    res = []
    for pid, v in zip(lesions["patient_id"], lf, strict=True):
        if v is pd.NA:
            res.append("unknown" if pattern.get(pid, NO_FAILURE) != NO_FAILURE else "no progression")
        elif bool(v):
            res.append("local failure")
        elif pattern.get(pid, NO_FAILURE) == NO_FAILURE:
            res.append("no progression")
        else:
            res.append("controlled")
    return pd.Series(res, index=lesions.index, dtype=object)


def plot_lesion_scatter(
    ax: Axes, lesions: pd.DataFrame, outcome: pd.Series, *, thresholds: Mapping[str, float]
) -> dict[str, np.ndarray]:
    """Scatter of lesion diameter (x) vs SUVmax (y) on log axes, by outcome, thresholds drawn; legend above.

    Parameters
    ----------
    ax : Axes
        Where to draw.
    lesions : DataFrame
        Lesions with ``diameter_cm`` and ``suvmax``.
    outcome : Series
        Class of each lesion (:func:`lesion_outcome_class`).
    thresholds : Mapping
        ``{"diameter_cm": 5.0, "suvmax": 10.0}``: lines drawn (only those given).

    Returns
    -------
    dict
        ``{class: array of (diameter, suvmax) points drawn}``.
    """
    drawn = {}
    xy_all = np.column_stack([lesions["diameter_cm"].to_numpy(float), lesions["suvmax"].to_numpy(float)])
    ok = ~np.isnan(xy_all).any(axis=1)
    n = int(ok.sum())
    size = 14 if n <= 300 else 7 if n <= 2000 else 3
    handles: list[Artist] = []
    classes = pd.Categorical(outcome, categories=list(OUTCOME_STYLE)).codes  # -1: no class (not drawn)
    for k, (cls, (colour, marker, label)) in enumerate(OUTCOME_STYLE.items()):
        pts = xy_all[ok & (classes == k)]
        drawn[cls] = pts
        if not len(pts):
            continue
        edge = None if marker == "x" else ("black" if n <= 300 else "none")
        if n > RASTERIZE_ABOVE:
            # drawn into the image: the points of one class and one stack opacity are a line's markers,
            # which matplotlib rasterises once and stamps at each point (a scatter's marker is rasterised
            # again at every point: five times the work for the same marks)
            xy, alpha = stacked_points(pts, MARK_ALPHA)
            for a in np.unique(alpha):
                sel = alpha == a
                ax.add_line(Line2D(xy[sel, 0], xy[sel, 1], linestyle="none", marker=marker,
                                   markersize=math.sqrt(size), color=colour, alpha=float(a),
                                   markeredgewidth=0.3 if marker == "x" else 0.0, rasterized=True, zorder=1,
                                   gid=f"scatter:{cls}"))
        elif n > 300:
            # lesions of one class at the same (diameter, SUVmax) drawn once, as opaque as their stack
            xy, alpha = stacked_points(pts, MARK_ALPHA)
            rgba = np.tile(to_rgba(colour), (len(xy), 1))
            rgba[:, 3] = alpha
            ax.scatter(xy[:, 0], xy[:, 1], s=size, c=rgba, marker=marker, linewidths=0.3, edgecolors=edge,
                       gid=f"scatter:{cls}")
        else:
            ax.scatter(pts[:, 0], pts[:, 1], s=size, c=colour, marker=marker, alpha=MARK_ALPHA,
                       linewidths=0.3, edgecolors=edge, gid=f"scatter:{cls}")
        handles.append(Line2D([], [], linestyle="none", marker=marker, markersize=math.sqrt(size),
                              color=colour, markerfacecolor=colour,
                              markeredgecolor=colour if edge in (None, "none") else edge,
                              markeredgewidth=0.3 if edge != "none" else 0.0, alpha=MARK_ALPHA,
                              label=f"{label} ({len(pts)})"))
    if "diameter_cm" in thresholds:
        ax.axvline(
            thresholds["diameter_cm"],
            color="black",
            linestyle="--",
            linewidth=0.8,
            gid="threshold:diameter_cm",
        )
        ax.annotate(
            f"{thresholds['diameter_cm']:g} cm",
            (thresholds["diameter_cm"], 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -2),
            textcoords="offset points",
            ha="left",
            va="top",
            fontsize=7,
        )
    if "suvmax" in thresholds:
        ax.axhline(thresholds["suvmax"], color="black", linestyle=":", linewidth=0.8, gid="threshold:suvmax")
        ax.annotate(
            f"SUVmax {thresholds['suvmax']:g}",
            (1.0, thresholds["suvmax"]),
            xycoords=("axes fraction", "data"),
            xytext=(-2, 2),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=7,
        )
    for axis, col in ((ax.xaxis, "diameter_cm"), (ax.yaxis, "suvmax")):
        vals = xy_all[ok, 0 if col == "diameter_cm" else 1]
        extra = [v for k, v in thresholds.items() if k == col]
        low, high = np.append(vals[vals > 0], extra), np.append(vals, extra)
        lo = float(low.min()) if low.size else 1.0
        hi = float(high.max()) if high.size else 10.0
        (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
        (ax.set_xlim if axis is ax.xaxis else ax.set_ylim)(lo / 1.15, hi * 1.15)
        ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 3, 5, 10, 20, 30, 50, 100) if lo / 1.15 <= t <= hi * 1.15]
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_minor_locator(NullLocator())
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.set_xlabel("Longest diameter (cm, log scale)")
    ax.set_ylabel("SUVmax (log scale)")
    ax.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.01),
        ncols=1,  # one entry per line: the outcome labels with their counts are too long for two columns
        fontsize=7,
        borderaxespad=0.0,
        markerscale=1.5 if n > 300 else 1.0,
    )
    return drawn


def scatter_figure(inp: ReportInput, sw: str) -> BuiltFigure | None:
    """Build the scatter plot of the lesions' diameter against SUVmax, coloured by outcome.

    Parameters
    ----------
    inp : ReportInput
        The report input (lesions, patients' patterns and the lesion thresholds drawn as lines).
    sw : str
        The software sentence of the note.

    Returns
    -------
    BuiltFigure or None
        The figure, or ``None`` without lesions.
    """
    les = inp.lesions
    if not len(les):
        return None
    fig = Figure(figsize=(5.2, 4.0), layout="constrained")
    th = inp.lesion_thresholds
    pts = plot_lesion_scatter(fig.add_subplot(), les, lesion_outcome_class(les, inp.patients), thresholds=th)
    add_footer(fig, inp.simulated)
    counts = ", ".join(f"{OUTCOME_STYLE[k][2].lower()} {len(v)}" for k, v in pts.items() if len(v))
    th_words = (
        " and ".join(
            ("diameter " if k == "diameter_cm" else "SUVmax ")
            + f"{v:g}"
            + (" cm" if k == "diameter_cm" else "")
            for k, v in th.items()
        )
        or "none"
    )
    n_drawn = sum(len(v) for v in pts.values())
    raster = (
        f" With more than {RASTERIZE_ABOVE:,} lesions the points are drawn as a 300-dpi image inside the SVG "
        "(axes, text and lines stay vector)."
        if n_drawn > RASTERIZE_ABOVE
        else ""
    )
    stacked = (
        " Lesions of one outcome at the same diameter and SUVmax are drawn as one point as opaque as that "
        "many points drawn over each other."
        if n_drawn > 300
        else ""
    )
    caption = (
        f"Each of {len(les)} baseline lesions by longest diameter and SUVmax: {counts}. Dashed and "
        f"dotted lines: risk-factor thresholds ({th_words}).{raster}"
    )
    alt = f"Scatter plot of lesion diameter against SUVmax: {counts}; threshold lines at {th_words}."
    how = (
        "Lesion outcome at first progression as classified by pofa: local failure; controlled (the patient "
        "progressed elsewhere); no progression; unknown (progression without recorded failure lesions). "
        "Thresholds are the lesion risk factors of the analysis settings ([risk_factors] lesion). Lesions "
        f"with a missing diameter or SUVmax are not drawn.{stacked} {sw}"
    )
    spec = FigureSpec("lesion_scatter", "Lesion diameter and SUVmax by outcome", caption, alt, how)
    return BuiltFigure(spec, fig, {"points": pts})
