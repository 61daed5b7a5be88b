"""The report's figures: one function per figure, each drawing on a matplotlib ``Axes`` it is given.

The ``plot_*`` functions never create windows or call ``plt.show()`` (pyplot is not used at all: figures are
``matplotlib.figure.Figure`` objects rendered by the Agg and SVG backends). Each returns a small record of
what it drew, so tests check data, not pixels. :func:`build_figures` makes every figure of the report from a
:class:`~pofa.report.model.ReportInput`, with a caption, alt text and a "how it was made" note;
:func:`render_figure` turns one into PNG (300 dpi) and SVG bytes, both reproducible byte for byte.

Numbers printed on figures (medians, p-values, hazard ratios, counts) are read from the results.json document;
curves are drawn from fitted estimator objects (:class:`pofa.stats.survival.KaplanMeier`).
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
import pandas as pd
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from pofa.report.format import DASH, fmt_count, fmt_months, fmt_pct, fmt_ratio, p_phrase, term_label
from pofa.report.model import NO_FAILURE, PATTERN_KEYS, PATTERNS, CumulativeIncidenceCurve, ReportInput
from pofa.report.style import (
    DPI,
    GREY,
    METHOD_STYLE,
    OKABE_ITO,
    OUTCOME_STYLE,
    PATTERN_COLOURS,
    PATTERN_MARKERS,
    RC,
)
from pofa.stats.survival import KaplanMeier, kaplan_meier

if TYPE_CHECKING:
    from pofa.imaging.mip import MatchMip

__all__ = [
    "BuiltFigure",
    "FigureSpec",
    "KMSeries",
    "RenderedFigure",
    "build_figures",
    "build_scan_figures",
    "scan_figure_data",
    "first_failure_causes",
    "fit_cumulative_incidence",
    "number_at_risk",
    "plot_cumulative_incidence",
    "plot_forest",
    "plot_km",
    "plot_lesion_scatter",
    "plot_patterns",
    "plot_swimmer",
    "rc_context",
    "render_figure",
    "time_ticks",
]

#: Above this many lesions the scatter's points are embedded in the SVG as a 300-dpi image (axes, text and
#: threshold lines stay vector): thousands of vector markers make a slow, multi-megabyte SVG.
RASTERIZE_ABOVE = 3000

_CYCLE = [
    OKABE_ITO[k]
    for k in ("black", "vermillion", "blue", "orange", "bluish green", "reddish purple", "sky blue", "yellow")
]


def rc_context() -> Any:
    """``matplotlib.rc_context`` with the report's settings (the global settings are left alone)."""
    rc = dict(RC)
    rc["axes.prop_cycle"] = cycler(color=_CYCLE)
    return matplotlib.rc_context(rc)


# ------------------------------------------------------------------------------------------------------
# records of what a plot drew (for tests and alt text)
# ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KMSeries:
    """One Kaplan-Meier curve to draw: its label, the fitted estimator and the line style."""

    label: str
    fit: KaplanMeier
    colour: str = OKABE_ITO["black"]
    linestyle: str = "-"
    row_label: str = ""

    @property
    def risk_label(self) -> str:
        """Label of the series' row in the numbers-at-risk table."""
        return self.row_label or self.label


@dataclass(frozen=True, slots=True)
class KMDrawn:
    """What :func:`plot_km` drew: the tick times and the numbers at risk under each tick per series."""

    ticks: tuple[float, ...]
    at_risk: dict[str, tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class FigureSpec:
    """Texts that go with a figure.

    Parameters
    ----------
    name : str
        File stem (``figures/<name>.png`` and ``.svg``) and HTML anchor.
    title : str
        Short title (first words of the caption).
    caption : str
        Caption under the figure: what it shows, with the key numbers.
    alt : str
        Alternative text for readers who cannot see the image.
    how : str
        How it was made: estimator, CI type, tie handling, thresholds, software versions.
    """

    name: str
    title: str
    caption: str
    alt: str
    how: str


@dataclass(frozen=True, slots=True)
class BuiltFigure:
    """A figure and its texts, before rendering."""

    spec: FigureSpec
    figure: Figure
    drawn: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RenderedFigure:
    """A rendered figure: PNG (300 dpi) and SVG bytes with the pixel size of the PNG."""

    spec: FigureSpec
    png: bytes
    svg: bytes
    width_px: int
    height_px: int


# ------------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------------


def number_at_risk(time: Sequence[float] | np.ndarray, ticks: Sequence[float]) -> tuple[int, ...]:
    """#{T >= t} at each tick: the R ``summary.survfit`` / SAS convention for the table under a KM plot."""
    t = np.asarray(time, dtype=float)
    return tuple(int(np.count_nonzero(t >= x)) for x in ticks)


def time_ticks(max_time: float) -> tuple[float, ...]:
    """Tick times from 0 to at most ``max_time``: every 3, 6, 12 or 24 months depending on the follow-up."""
    if not math.isfinite(max_time) or max_time <= 0:
        return (0.0,)
    step = 3.0 if max_time <= 15 else 6.0 if max_time <= 42 else 12.0 if max_time <= 96 else 24.0
    n = int(math.floor(max_time / step + 1e-9))
    return tuple(step * i for i in range(n + 1))


def _step_xy(fit: KaplanMeier) -> tuple[np.ndarray, np.ndarray]:
    """The KM step function from time 0: x = (0, t1, t2, ...), y = (1, S(t1), S(t2), ...)."""
    x = np.concatenate(([0.0], np.asarray(fit.times, dtype=float)))
    y = np.concatenate(([1.0], np.asarray(fit.survival, dtype=float)))
    return x, y


def _software_line(versions: Mapping[str, str]) -> str:
    keys = ("pofa", "python", "numpy", "scipy", "statsmodels", "pandas", "matplotlib")
    return ", ".join(f"{k} {versions[k]}" for k in keys if k in versions)


def _pattern_label(p: str) -> str:
    return {
        "strictly local": "Strictly local",
        "mixed": "Mixed (local + de novo)",
        "strictly de novo": "Strictly de novo",
        "unknown": "Unknown (no failure lesions recorded)",
        NO_FAILURE: "No progression",
    }[p]


# ------------------------------------------------------------------------------------------------------
# the plot functions (each draws on the Axes it is given)
# ------------------------------------------------------------------------------------------------------


def plot_patterns(ax: Axes, patterns: Mapping[str, Any]) -> dict[str, int]:
    """Bar chart of first-progression patterns among recurred patients: counts and % of recurred.

    Parameters
    ----------
    ax : Axes
        Where to draw.
    patterns : Mapping
        The results.json ``patterns`` object (keys ``recurred``, ``strictly_local``, ``mixed``,
        ``strictly_de_novo``, ``unknown``).

    Returns
    -------
    dict
        The bar heights drawn, by pattern.
    """
    recurred = patterns.get("recurred")
    heights: dict[str, int] = {}
    xs = np.arange(len(PATTERNS))
    vals = []
    for p in PATTERNS:
        v = patterns.get(PATTERN_KEYS[p])
        heights[p] = int(v) if v is not None else 0
        vals.append(heights[p])
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
            f"{v} ({fmt_pct(v, recurred)})",
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
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"Pattern at first progression ({fmt_count(recurred)} recurred patients)", loc="left")
    return heights


def plot_forest(
    ax: Axes,
    rows: Sequence[Mapping[str, Any]],
    model: str,
    *,
    terms: Sequence[str] | None = None,
    show_labels: bool = True,
) -> dict[str, dict[str, float]]:
    """Forest plot of lesion-level odds ratios (log scale) for one model type, methods side by side.

    Parameters
    ----------
    ax : Axes
        Where to draw.
    rows : sequence of Mapping
        results.json ``lesion_models`` rows (``model``, ``method``, ``term``, ``or``, ``ci_low``,
        ``ci_high``).
    model : {"univariable", "multivariable"}
        Which rows to draw.
    terms : sequence of str, optional
        Term order (top to bottom); by default the order of first appearance.
    show_labels : bool
        Label the rows with the terms.

    Returns
    -------
    dict
        ``{method: {term: or}}`` of the points drawn (not-estimable terms are left out and marked "NE").
    """
    sel = [r for r in rows if r.get("model") == model]
    if terms is None:
        terms = list(dict.fromkeys(str(r.get("term")) for r in rows))
    methods = [m for m in METHOD_STYLE if any(r.get("method") == m for r in sel)]
    ypos = {t: len(terms) - 1 - i for i, t in enumerate(terms)}
    width = 0.5
    offsets = {
        m: (width / 2 - width * k / max(1, len(methods) - 1)) if len(methods) > 1 else 0.0
        for k, m in enumerate(methods)
    }
    drawn: dict[str, dict[str, float]] = {}
    lo_all, hi_all = [1.0], [1.0]
    for m in methods:
        colour, marker, label = METHOD_STYLE[m]
        xs, ys, el, eh = [], [], [], []
        for r in sel:
            if r.get("method") != m or str(r.get("term")) not in ypos:
                continue
            y = ypos[str(r.get("term"))] + offsets[m]
            o, lo, hi = r.get("or"), r.get("ci_low"), r.get("ci_high")
            if o is None or not math.isfinite(float(o)) or float(o) <= 0:
                ax.text(1.0, y, "NE", ha="center", va="center", fontsize=7, color=colour, gid=f"ne:{m}")
                continue
            o = float(o)
            lo_v = float(lo) if lo is not None and float(lo) > 0 else o
            hi_v = float(hi) if hi is not None and math.isfinite(float(hi)) else o
            xs.append(o)
            ys.append(y)
            el.append(o - lo_v)
            eh.append(hi_v - o)
            lo_all.append(lo_v)
            hi_all.append(hi_v)
            drawn.setdefault(m, {})[str(r.get("term"))] = o
        if xs:
            ax.errorbar(
                xs,
                ys,
                xerr=[el, eh],
                fmt=marker,
                color=colour,
                ecolor=colour,
                markersize=5,
                capsize=2,
                elinewidth=1.1,
                label=label,
                gid=f"forest:{model}:{m}",
            )
    ax.axvline(1.0, color=GREY, linewidth=0.8, linestyle="--", zorder=0)
    ax.set_xscale("log")
    lo, hi = min(lo_all), max(hi_all)
    ax.set_xlim(min(0.5, lo / 1.25), max(2.0, hi * 1.25))
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    cand = [0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 4, 5, 10, 20, 50, 100]
    xlo, xhi = ax.get_xlim()
    tk = [c for c in cand if xlo <= c <= xhi]
    if len(tk) > 7:
        tk = [c for c in tk if c in (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 50, 100)]
    ax.xaxis.set_major_locator(FixedLocator(tk))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.set_yticks([ypos[t] for t in terms], [term_label(t) for t in terms] if show_labels else [])
    ax.set_ylim(-0.7, len(terms) - 0.3)
    ax.set_xlabel("Odds ratio of local failure (95% CI, log scale)")
    ax.set_title(model.capitalize(), loc="left")
    ax.spines["left"].set_visible(False)
    ax.tick_params(axis="y", length=0)
    return drawn


def plot_km(
    ax: Axes,
    series: Sequence[KMSeries],
    *,
    risk_ax: Axes | None = None,
    ticks: Sequence[float] | None = None,
    ylabel: str = "Survival probability",
    annotation: str | None = None,
    show_ci: bool = True,
    row_labels: bool = True,
) -> KMDrawn:
    """Kaplan-Meier curves with confidence bands, censoring marks and (optionally) numbers at risk.

    Parameters
    ----------
    ax : Axes
        Axes for the curves.
    series : sequence of KMSeries
        Fitted curves (:func:`pofa.stats.survival.kaplan_meier`) with labels and colours.
    risk_ax : Axes, optional
        Axes below ``ax`` for the numbers at risk, #{T >= t} at each tick (R/SAS convention), one row per
        series, read from :meth:`KaplanMeier.n_at_risk`.
    ticks : sequence of float, optional
        Tick times (months); by default :func:`time_ticks` of the longest follow-up.
    ylabel : str
        Label of the y axis.
    annotation : str, optional
        Text shown as the legend's title (e.g. the median, or the hazard ratio and log-rank p).
    show_ci : bool
        Draw the pointwise confidence band of each curve (the fit's ``ci_method``).
    row_labels : bool
        Label the rows of the numbers-at-risk table (numbers are coloured like their curve either way).

    Returns
    -------
    KMDrawn
        The ticks and the numbers at risk written under them.
    """
    max_t = max((float(s.fit.times[-1]) for s in series if len(s.fit.times)), default=0.0)
    tks = tuple(float(t) for t in (ticks if ticks is not None else time_ticks(max_t)))
    at_risk: dict[str, tuple[int, ...]] = {}
    for s in series:
        x, y = _step_xy(s.fit)
        ax.step(x, y, where="post", color=s.colour, linestyle=s.linestyle, label=s.label, gid=f"km:{s.label}")
        if show_ci:
            lo = np.concatenate(([1.0], np.asarray(s.fit.ci_low, dtype=float)))
            hi = np.concatenate(([1.0], np.asarray(s.fit.ci_high, dtype=float)))
            # log-log limits are undefined where S = 1 (R gives NA): the band is the point 1 there
            lo = np.where(np.isnan(lo) & (y == 1.0), 1.0, lo)
            hi = np.where(np.isnan(hi) & (y == 1.0), 1.0, hi)
            ax.fill_between(x, lo, hi, step="post", color=s.colour, alpha=0.15, linewidth=0)
        cens = np.asarray(s.fit.n_censor) > 0
        if cens.any():
            ax.plot(
                np.asarray(s.fit.times)[cens],
                np.asarray(s.fit.survival)[cens],
                linestyle="none",
                marker="|",
                markersize=5,
                markeredgewidth=0.9,
                color=s.colour,
                gid=f"censor:{s.label}",
            )
        at_risk[s.label] = tuple(int(v) for v in s.fit.n_at_risk(list(tks))) if tks else ()
    ax.axhline(0.5, color=GREY, linewidth=0.6, linestyle=":", zorder=0)
    ax.set_ylim(0, 1.03)
    ax.set_xlim(0, max(max_t, tks[-1] if tks else 0.0) * 1.02 or 1.0)
    ax.set_xticks(list(tks))
    ax.set_xticklabels([f"{t:g}" for t in tks])
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0], ["0", "0.25", "0.50", "0.75", "1.00"])
    ax.set_ylabel(ylabel)
    ax.set_xlabel("Months from CAR T infusion")
    # the annotation (median, HR, p) is the legend's title, placed where it hides the least of the curves
    ax.legend(
        loc="best",
        handlelength=1.8,
        title=annotation,
        title_fontsize=7,
        fontsize=7,
        alignment="left",
        frameon=True,
        framealpha=0.85,
        edgecolor="none",
        facecolor="white",
    )
    if risk_ax is not None:
        risk_ax.set_xlim(ax.get_xlim())
        n_rows = len(series)
        risk_ax.set_ylim(-0.5, n_rows - 0.5)
        for spine in risk_ax.spines.values():
            spine.set_visible(False)
        risk_ax.set_xticks([])
        # row labels as tick labels, so that the constrained layout makes room for them; the padding keeps
        # them clear of the numbers centred on the first tick
        risk_ax.set_yticks(
            [n_rows - 1 - i for i in range(n_rows)],
            [s.risk_label for s in series] if row_labels else [""] * n_rows,
        )
        for lab, s in zip(risk_ax.get_yticklabels(), series, strict=True):
            lab.set_color(s.colour)
        risk_ax.tick_params(axis="y", length=0, labelsize=7, pad=14)
        for i, s in enumerate(series):
            yrow = n_rows - 1 - i
            for t, v in zip(tks, at_risk[s.label], strict=True):
                risk_ax.text(
                    t,
                    yrow,
                    str(v),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color=s.colour if n_rows > 1 else "black",
                    gid=f"n-at-risk:{i}:{t:g}",
                )
        risk_ax.set_title("Number at risk", loc="left", fontsize=7.5, pad=2)
    return KMDrawn(tks, at_risk)


def plot_cumulative_incidence(
    ax: Axes, curves: Sequence[CumulativeIncidenceCurve], *, annotation: str | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Cumulative incidence of each cause (step functions from 0, flat to the last follow-up), e.g. local vs
    de novo failure; the first two causes with their pointwise confidence bands.

    Returns
    -------
    dict
        ``{cause: (x, y)}`` of the steps drawn.
    """
    styles = {
        0: (OKABE_ITO["vermillion"], "-"),
        1: (OKABE_ITO["blue"], "--"),
        2: (OKABE_ITO["black"], ":"),
        3: (GREY, "-."),
    }
    drawn = {}
    max_t = 0.0
    for k, c in enumerate(curves):
        colour, ls = styles.get(k, (OKABE_ITO["reddish purple"], "-"))
        end = (
            [c.last_time] if c.last_time is not None and (not c.time.size or c.last_time > c.time[-1]) else []
        )
        x = np.concatenate(([0.0], c.time, end))
        y = np.concatenate(
            ([0.0], c.estimate, c.estimate[-1:] if end and c.estimate.size else [0.0] * len(end))
        )
        ax.step(x, y, where="post", color=colour, linestyle=ls, label=c.cause, gid=f"cif:{c.cause}")
        if k < 2 and c.ci_low is not None and c.ci_high is not None and c.time.size:
            lo = np.concatenate(([0.0], c.ci_low, c.ci_low[-1:] if end else []))
            hi = np.concatenate(([0.0], c.ci_high, c.ci_high[-1:] if end else []))
            ax.fill_between(x, lo, hi, step="post", color=colour, alpha=0.12, linewidth=0)
        drawn[c.cause] = (x, y)
        if x.size:
            max_t = max(max_t, float(x[-1]))
    tks = time_ticks(max_t)
    ax.set_xticks(list(tks))
    ax.set_xticklabels([f"{t:g}" for t in tks])
    ax.set_xlim(0, max(max_t, 1.0) * 1.02)
    top = max((float(np.nanmax(c.estimate)) for c in curves if c.estimate.size), default=0.0)
    ax.set_ylim(0, min(1.0, max(0.2, top * 1.15 + 0.05)))
    ax.set_ylabel("Cumulative incidence")
    ax.set_xlabel("Months from CAR T infusion")
    ax.legend(
        loc="upper left",
        handlelength=2.2,
        title=annotation,
        title_fontsize=7,
        alignment="left",
        frameon=True,
        framealpha=0.85,
        edgecolor="none",
        facecolor="white",
    )
    return drawn


def plot_swimmer(
    ax: Axes, patients: pd.DataFrame, labels: Mapping[str, str], *, max_labels: int = 60
) -> list[str]:
    """Swimmer plot: one bar per patient from the index date to last follow-up or death.

    The first progression is marked with its pattern (colour and marker), death with a black cross, patients
    alive at last follow-up with an arrow. Patients are sorted by follow-up (longest at the top) and labelled
    by ``labels`` (study sequence numbers unless ids were asked for) when there are at most ``max_labels``.

    Returns
    -------
    list of str
        The patient labels from top to bottom.
    """
    df = patients.loc[patients["os_months"].notna()].copy()
    df["_label"] = [labels[str(pid)] for pid in df["patient_id"]]
    df["_seq"] = [int(labels[str(pid)]) if str(labels[str(pid)]).isdigit() else 0 for pid in df["patient_id"]]
    df = df.sort_values(["os_months", "_seq", "_label"], ascending=[True, True, True], kind="mergesort")
    n = len(df)
    y = np.arange(n)
    height = 0.7 if n <= 100 else 0.9
    colours = [PATTERN_COLOURS[p] if p in PATTERN_COLOURS else GREY for p in df["pattern"]]
    # one PolyCollection of rectangles: a bar per patient without one Patch per patient (fast for 1,000s)
    w = df["os_months"].to_numpy(float)
    half = height / 2
    verts = [
        ((0.0, yy - half), (ww, yy - half), (ww, yy + half), (0.0, yy + half))
        for yy, ww in zip(y, w, strict=True)
    ]
    bars = PolyCollection(verts, facecolors=colours, alpha=0.45, linewidths=0, gid="swimmer:bars")
    ax.add_collection(bars, autolim=True)
    msize = 4.5 if n <= 60 else 3.0 if n <= 200 else 1.6
    prog = df["progression_months"].notna().to_numpy()
    for p in PATTERNS:
        sel = prog & (df["pattern"] == p).to_numpy()
        if sel.any():
            ax.plot(
                df["progression_months"].to_numpy(float)[sel],
                y[sel],
                linestyle="none",
                marker=PATTERN_MARKERS[p],
                markersize=msize,
                color=PATTERN_COLOURS[p],
                markeredgecolor="black",
                markeredgewidth=0.4,
                label=f"Progression: {_pattern_label(p)}",
                gid=f"swimmer:progression:{p}",
            )
    dead = df["os_event"].fillna(False).astype(bool).to_numpy()
    if dead.any():
        ax.plot(
            df["os_months"].to_numpy(float)[dead],
            y[dead],
            linestyle="none",
            marker="x",
            markersize=msize,
            color="black",
            markeredgewidth=0.9,
            label="Death",
            gid="swimmer:death",
        )
    if (~dead).any():
        ax.plot(
            df["os_months"].to_numpy(float)[~dead],
            y[~dead],
            linestyle="none",
            marker=">",
            markersize=msize * 0.8,
            color=GREY,
            label="Alive at last follow-up",
            gid="swimmer:alive",
        )
    from matplotlib.patches import Patch

    handles, labs = ax.get_legend_handles_labels()
    for p in (NO_FAILURE, *PATTERNS):
        if (df["pattern"] == p).any():
            handles.append(Patch(facecolor=PATTERN_COLOURS[p], alpha=0.45, linewidth=0))
            labs.append(f"Bar: {_pattern_label(p).split(' (')[0].lower()}")
    order = list(df["_label"])
    if n <= max_labels:
        ax.set_yticks(y, order)
        ax.tick_params(axis="y", length=0, labelsize=6 if n > 30 else 7)
        ax.set_ylabel("Patient")
    else:
        ax.set_yticks([])
        ax.set_ylabel(f"Patients ({n}), sorted by follow-up")
    ax.set_ylim(-0.8, n - 0.2)
    max_t = float(df["os_months"].max()) if n else 1.0
    tks = time_ticks(max_t)
    ax.set_xticks(list(tks))
    ax.set_xticklabels([f"{t:g}" for t in tks])
    ax.set_xlim(0, max_t * 1.03 if max_t > 0 else 1.0)
    ax.set_xlabel("Months from CAR T infusion")
    ax.legend(handles, labs, loc="lower right", fontsize=7, markerscale=1.0 if n <= 60 else 2.0, ncols=2)
    ax.spines["left"].set_visible(False)
    return order[::-1]


def lesion_outcome_class(lesions: pd.DataFrame, patients: pd.DataFrame) -> pd.Series:
    """Outcome of each lesion at first progression: ``local failure``, ``controlled`` (the patient progressed,
    this lesion did not fail), ``no progression`` or ``unknown`` (progression without failure rows).

    Read from the analysis' ``lesion_outcome`` column when present; otherwise from ``local_failure`` (blank =
    unknown) and the patient's pattern.
    """
    if "lesion_outcome" in lesions.columns:
        out = lesions["lesion_outcome"].astype(object).where(lesions["lesion_outcome"].notna(), "unknown")
        return out.map(lambda v: v if v in OUTCOME_STYLE else "unknown").astype(object)
    pattern = dict(zip(patients["patient_id"], patients["pattern"], strict=True))
    lf = lesions["local_failure"].astype("boolean")
    out = []
    for pid, v in zip(lesions["patient_id"], lf, strict=True):
        if v is pd.NA:
            out.append("unknown" if pattern.get(pid, NO_FAILURE) != NO_FAILURE else "no progression")
        elif bool(v):
            out.append("local failure")
        elif pattern.get(pid, NO_FAILURE) == NO_FAILURE:
            out.append("no progression")
        else:
            out.append("controlled")
    return pd.Series(out, index=lesions.index, dtype=object)


def plot_lesion_scatter(
    ax: Axes, lesions: pd.DataFrame, outcome: pd.Series, *, thresholds: Mapping[str, float]
) -> dict[str, np.ndarray]:
    """Scatter of lesion diameter (x) vs SUVmax (y), coloured and shaped by outcome, thresholds drawn.

    Parameters
    ----------
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
    ok = lesions["diameter_cm"].notna() & lesions["suvmax"].notna()
    n = int(ok.sum())
    size = 14 if n <= 300 else 7 if n <= 2000 else 3
    for cls, (colour, marker, label) in OUTCOME_STYLE.items():
        sel = ok & (outcome == cls)
        pts = np.column_stack(
            [lesions.loc[sel, "diameter_cm"].to_numpy(float), lesions.loc[sel, "suvmax"].to_numpy(float)]
        )
        drawn[cls] = pts
        if len(pts):
            ax.scatter(
                pts[:, 0],
                pts[:, 1],
                s=size,
                c=colour,
                marker=marker,
                alpha=0.75,
                linewidths=0.3,
                edgecolors="black" if n <= 300 else "none",
                rasterized=n > RASTERIZE_ABOVE,
                label=f"{label} ({len(pts)})",
                gid=f"scatter:{cls}",
            )
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
    # log scales: lesion sizes and SUVmax are right-skewed (a few very large lesions)
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    for axis, col in ((ax.xaxis, "diameter_cm"), (ax.yaxis, "suvmax")):
        vals = lesions.loc[ok, col].to_numpy(float)
        lo = min([*vals[vals > 0], *[v for k, v in thresholds.items() if k == col]], default=1.0)
        hi = max([*vals, *[v for k, v in thresholds.items() if k == col]], default=10.0)
        (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
        (ax.set_xlim if axis is ax.xaxis else ax.set_ylim)(lo / 1.15, hi * 1.15)
        ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 3, 5, 10, 20, 30, 50, 100) if lo / 1.15 <= t <= hi * 1.15]
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_minor_locator(NullLocator())
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.set_xlabel("Longest diameter (cm, log scale)")
    ax.set_ylabel("SUVmax (log scale)")
    # legend above the axes: the points fill the plot
    ax.legend(
        loc="lower left",
        bbox_to_anchor=(0.0, 1.01),
        ncols=1,
        fontsize=7,
        borderaxespad=0.0,
        markerscale=1.5 if n > 300 else 1.0,
    )
    return drawn


# ------------------------------------------------------------------------------------------------------
# fitting what the figures draw
# ------------------------------------------------------------------------------------------------------


#: Causes of first failure (pofa.classify's ``fp_status`` codes) and their labels in the figure.
FIRST_FAILURE_CAUSES: dict[int, str] = {
    1: "Local component (strictly local or mixed)",
    2: "Strictly de novo",
    3: "Death without progression",
    4: "Progression, pattern unknown",
}


def first_failure_causes(inp: ReportInput) -> tuple[np.ndarray, np.ndarray]:
    """Time (months) and cause code of each patient's first failure (codes of :data:`FIRST_FAILURE_CAUSES`,
    0 = censored), for patients with a known time.

    Read from the analysis' ``fp_months`` and ``fp_status`` when the patients table has them; otherwise built
    the same way from the PFS time and event and the first-progression pattern.
    """
    p = inp.patients
    if {"fp_months", "fp_status"} <= set(p.columns):
        t = pd.to_numeric(p["fp_months"], errors="coerce").to_numpy(float)
        c = pd.to_numeric(p["fp_status"], errors="coerce").to_numpy(float)
        ok = np.isfinite(t) & np.isfinite(c)
        return t[ok], c[ok].astype(int)
    df = inp.survival_frame("pfs")
    ev = df["event"].to_numpy(int) == 1
    prog = df["progression_months"].notna().to_numpy() & ev
    pat = df["pattern"].to_numpy(object)
    code = np.zeros(len(df), dtype=int)
    code[prog & np.isin(pat, ["strictly local", "mixed"])] = 1
    code[prog & (pat == "strictly de novo")] = 2
    code[ev & ~prog] = 3
    code[prog & np.isin(pat, ["unknown", NO_FAILURE])] = 4  # never silently called de novo
    return df["time"].to_numpy(float), code


def fit_cumulative_incidence(inp: ReportInput) -> tuple[CumulativeIncidenceCurve, ...]:
    """Cumulative incidence of first failure by type, death without progression competing.

    The estimator is pofa's :func:`pofa.stats.competing.cumulative_incidence` (Aalen-Johansen with cmprsk's
    variance and log-log pointwise bands, matching ``cmprsk::cuminc``), on the causes of
    :func:`first_failure_causes`.
    """
    from pofa.stats.competing import cumulative_incidence

    time, code = first_failure_causes(inp)
    if time.size == 0 or not (code > 0).any():
        return ()
    cr = cumulative_incidence(time, code)
    out = []
    for k in sorted(cr.causes):
        c = cr.curve(k)
        out.append(
            CumulativeIncidenceCurve(
                FIRST_FAILURE_CAUSES.get(k, f"cause {k}"),
                np.asarray(c.times),
                np.asarray(c.estimate),
                c.method,
                np.asarray(c.ci_low),
                np.asarray(c.ci_high),
                float(c.last_time),
            )
        )
    return tuple(out)


def _km(df: pd.DataFrame, ci_method: str) -> KaplanMeier:
    return kaplan_meier(df["time"].to_numpy(float), df["event"].to_numpy(int), ci_method=ci_method)


def _group_labels(term: str) -> tuple[str, str]:
    lab = term_label(term)
    if lab.startswith("Any lesion "):
        return lab, "No lesion " + lab[len("Any lesion ") :]
    return f"{lab}: yes", f"{lab}: no"


def _find_model(results: Mapping[str, Any], endpoint: str, term: str) -> tuple[int, Mapping[str, Any]] | None:
    for i, r in enumerate(results.get("patient_models") or []):
        if isinstance(r, Mapping) and r.get("endpoint") == endpoint and r.get("term") == term:
            return i, r
    return None


def _gray_annotation(results: Mapping[str, Any]) -> str | None:
    """ "Gray's test by <factor>: local component p = ..; strictly de novo p = .." from results.json."""
    cr = results.get("competing_risks")
    by = (
        cr.get("patients", {}).get("by_group")
        if isinstance(cr, Mapping) and isinstance(cr.get("patients"), Mapping)
        else None
    )
    if not isinstance(by, Mapping):
        return None
    parts, factor = [], None
    for cause in by.get("causes") or []:
        if not isinstance(cause, Mapping) or cause.get("code") not in (1, 2):
            continue
        g = cause.get("gray")
        if isinstance(g, Mapping):
            factor = factor or g.get("by")
            parts.append(f"{cause.get('cause')} {p_phrase(g.get('p'))}")
    if not parts:
        return None
    return f"Gray's test by {term_label(str(factor)).lower() if factor else 'group'}:\n" + "; ".join(parts)


# ------------------------------------------------------------------------------------------------------
# the report's figures
# ------------------------------------------------------------------------------------------------------

_ENDPOINT_WORDS = {
    "pfs": ("Progression-free survival", "PFS", "progression or death"),
    "os": ("Overall survival", "OS", "death from any cause"),
}


def _lesion_thresholds(inp: ReportInput) -> dict[str, float]:
    out: dict[str, float] = {}
    for term in inp.settings.risk_factors.lesion:
        m = re.match(r"^\s*(diameter_cm|suvmax)\s*>=\s*([-+0-9.eE]+)\s*$", term)
        if m and m.group(1) not in out:
            out[m.group(1)] = float(m.group(2))
    return out


def _fig_patterns(inp: ReportInput, sw: str) -> BuiltFigure | None:
    pats = inp.results.get("patterns")
    if not isinstance(pats, Mapping):
        return None
    fig = Figure(figsize=(4.6, 3.2), layout="constrained")
    heights = plot_patterns(fig.add_subplot(), pats)
    rec = pats.get("recurred")
    parts = [
        f"{_pattern_label(p).split(' (')[0].lower()} {heights[p]} ({fmt_pct(heights[p], rec)})"
        for p in PATTERNS
    ]
    w = inp.settings.classification.window_days
    caption = (
        f"Pattern of failure at first progression among {fmt_count(rec)} of "
        f"{fmt_count(pats.get('patients'))} patients who recurred: {', '.join(parts)}. Percentages are of "
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


def _fig_forest(inp: ReportInput, sw: str) -> BuiltFigure | None:
    rows = [r for r in inp.results.get("lesion_models") or [] if isinstance(r, Mapping)]
    if not rows:
        return None
    terms = list(dict.fromkeys(str(r.get("term")) for r in rows))
    models = [m for m in ("univariable", "multivariable") if any(r.get("model") == m for r in rows)]
    fig = Figure(figsize=(7.0, 1.2 + 0.55 * len(terms)), layout="constrained")
    axes = fig.subplots(1, len(models), sharex=False, squeeze=False)[0]
    drawn = {
        m: plot_forest(ax, rows, m, terms=terms, show_labels=(k == 0))
        for k, (ax, m) in enumerate(zip(axes, models, strict=True))
    }
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=max(1, len(labels)), fontsize=7)
    methods = sorted({str(r.get("method")) for r in rows})
    n_les = max((int(r["n_lesions"]) for r in rows if r.get("n_lesions") is not None), default=0)
    n_pat = max((int(r["n_patients"]) for r in rows if r.get("n_patients") is not None), default=0)
    alt_bits = [
        f"{r.get('model')} {r.get('method')} {term_label(str(r.get('term')))}: OR {fmt_ratio(r.get('or'))} "
        f"({fmt_ratio(r.get('ci_low'))}{DASH}{fmt_ratio(r.get('ci_high'))})"
        for r in rows
        if r.get("method") in ("logistic", "gee")
    ]
    ss = " with the Mancl-DeRouen bias-reduced sandwich" if inp.settings.lesion_models.small_sample else ""
    caption = (
        f"Odds ratios of local failure of a baseline lesion ({n_les} lesions in {n_pat} patients), "
        "univariable (left) and multivariable (right), by plain logistic regression (lesions treated as "
        "independent) and GEE with patients as clusters. Points are odds ratios, bars 95% confidence "
        "intervals, on a log scale; NE = not estimable."
    )
    how = (
        "Odds ratios and Wald 95% CIs from results.json 'lesion_models'. Logistic: maximum likelihood (R "
        "glm, binomial). GEE: logit link, exchangeable working correlation, robust sandwich standard "
        f"errors{ss} (R geepack::geeglm). Firth: penalized likelihood with profile-likelihood CIs (R "
        f"logistf), shown when fitted. Methods in this figure: {', '.join(methods)}. {sw}"
    )
    spec = FigureSpec(
        "forest_lesion_models",
        "Lesion-level odds ratios of local failure",
        caption,
        "Forest plot of lesion-level odds ratios: " + "; ".join(alt_bits) + ".",
        how,
    )
    return BuiltFigure(spec, fig, {"points": drawn})


def _fig_km_overall(inp: ReportInput, endpoints: Sequence[str], sw: str) -> BuiltFigure:
    ci_method = inp.settings.survival.ci_method
    surv = inp.results.get("survival") if isinstance(inp.results.get("survival"), Mapping) else {}
    fig = Figure(figsize=(3.6 * len(endpoints), 3.6), layout="constrained")
    gs = fig.add_gridspec(2, len(endpoints), height_ratios=[5, 0.7])
    drawn_km: dict[str, Any] = {}
    alt, cap = [], []
    for j, e in enumerate(endpoints):
        df = inp.survival_frame(e)
        fit = _km(df, ci_method)
        s = surv.get(e) if isinstance(surv.get(e), Mapping) else {}
        words = _ENDPOINT_WORDS[e]
        median = (
            f"{fmt_months(s.get('median_months'))} months (95% CI "
            f"{fmt_months(s.get('ci_low'))}{DASH}{fmt_months(s.get('ci_high'))})"
        )
        ax, rax = fig.add_subplot(gs[0, j]), fig.add_subplot(gs[1, j])
        series = [
            KMSeries(f"All patients (n = {fmt_count(s.get('n', fit.n))})", fit, row_label="All patients")
        ]
        drawn = plot_km(
            ax,
            series,
            risk_ax=rax,
            ylabel=words[0],
            annotation=f"Median {median.replace(' months', ' mo')}",
            row_labels=(j == 0),
        )
        ax.set_title(f"{'AB'[j]}  {words[0]}", loc="left")
        drawn_km[e] = {"drawn": drawn, "fit": fit, "time": df["time"].to_numpy(float)}
        cap.append(
            f"({'AB'[j]}) {words[1]}: {fmt_count(s.get('events'))} events in {fmt_count(s.get('n'))} "
            f"patients, median {median}"
        )
        alt.append(
            f"{words[0]} curve for {fmt_count(s.get('n'))} patients with {fmt_count(s.get('events'))} "
            f"events; median {fmt_months(s.get('median_months'))} months"
        )
    caption = (
        "Kaplan-Meier estimates from CAR T infusion. " + "; ".join(cap) + ". Shaded: pointwise 95% "
        "confidence band; ticks: censored patients; the table gives the number at risk."
    )
    how = (
        f"Kaplan-Meier estimator with Greenwood variance; pointwise 95% CI by the {ci_method} transform "
        "(R survival::survfit conf.type); medians and their CIs as R quantile.survfit (midpoint on an exact "
        "0.5 plateau), printed from results.json 'survival'. PFS event: progression or death; OS event: "
        "death. Numbers at risk are #{T >= t} at each tick (R/SAS convention). Months = days / 30.4375. "
        f"{sw}"
    )
    spec = FigureSpec(
        "km_overall",
        "Kaplan-Meier estimates of PFS and OS",
        caption,
        "Kaplan-Meier plots. " + "; ".join(alt) + ".",
        how,
    )
    return BuiltFigure(spec, fig, drawn_km)


def _fig_km_by(inp: ReportInput, term: str, endpoints: Sequence[str], sw: str) -> BuiltFigure:
    ci_method = inp.settings.survival.ci_method
    group = inp.patient_group(term)
    fig = Figure(figsize=(3.6 * len(endpoints), 4.0), layout="constrained")
    gs = fig.add_gridspec(2, len(endpoints), height_ratios=[5, 1.1])
    yes_label, no_label = _group_labels(term)
    drawn_g: dict[str, Any] = {}
    cap, alt = [], []
    for j, e in enumerate(endpoints):
        df = inp.survival_frame(e)
        g = group.reindex(df.index).fillna(False).astype(bool)
        series = [
            KMSeries(label, _km(df.loc[g == flag], ci_method), colour, ls, label)
            for flag, label, colour, ls in (
                (False, no_label, OKABE_ITO["blue"], "-"),
                (True, yes_label, OKABE_ITO["vermillion"], "--"),
            )
            if (g == flag).any()
        ]
        words = _ENDPOINT_WORDS[e]
        found = _find_model(inp.results, e, term)
        ann = None
        if found is not None:
            r = found[1]
            hr = (
                f"{fmt_ratio(r.get('hr'))} (95% CI "
                f"{fmt_ratio(r.get('ci_low'))}{DASH}{fmt_ratio(r.get('ci_high'))})"
            )
            ann = f"HR {hr}\nCox {p_phrase(r.get('p'))}; {p_phrase(r.get('logrank_p'), 'log-rank p')}"
            cap.append(
                f"({'AB'[j]}) {words[1]}: hazard ratio {hr}, {p_phrase(r.get('p'))}; "
                f"{p_phrase(r.get('logrank_p'), 'log-rank p')}"
            )
        else:
            cap.append(f"({'AB'[j]}) {words[1]}: no model for this factor in results.json")
        ax, rax = fig.add_subplot(gs[0, j]), fig.add_subplot(gs[1, j])
        medians = {s.label: s.fit.median() for s in series}
        drawn = plot_km(ax, series, risk_ax=rax, ylabel=words[0], annotation=ann, row_labels=(j == 0))
        ax.set_title(f"{'AB'[j]}  {words[0]}", loc="left")
        drawn_g[e] = {
            "drawn": drawn,
            "series": series,
            "group": g,
            "time": df["time"].to_numpy(float),
            "medians": medians,
        }
        med_words = "; ".join(
            f"{lab.lower()}: median {fmt_months(m.estimate)} months" for lab, m in medians.items()
        )
        cap[-1] += f" ({med_words})"
        alt.append(f"{words[0]}: {med_words}" + (f"; {ann.replace(chr(10), '; ')}" if ann else ""))
    label = term_label(term).lower()
    safe = re.sub(r"[^A-Za-z0-9]+", "_", term.replace(">=", " ge ").replace(".", "p")).strip("_")
    caption = (
        f"Kaplan-Meier estimates by {label} (dashed) or not (solid). "
        + "; ".join(cap)
        + ". Tick marks: censored patients; the table gives the number at risk."
    )
    how = (
        f"Kaplan-Meier estimator with Greenwood variance, {ci_method} 95% CI (R survival::survfit). Hazard "
        "ratio: Cox proportional hazards, Efron ties, Wald CI and p (R coxph); log-rank test as R survdiff; "
        "both printed from results.json 'patient_models'. Group medians from the curves drawn (R "
        f"quantile.survfit). Numbers at risk are #{{T >= t}} at each tick. {sw}"
    )
    spec = FigureSpec(
        f"km_by_{safe}",
        f"PFS and OS by {label}",
        caption,
        f"Kaplan-Meier plots by {label}. " + ". ".join(alt) + ".",
        how,
    )
    return BuiltFigure(spec, fig, drawn_g)


def _fig_cumulative_incidence(inp: ReportInput, sw: str) -> BuiltFigure | None:
    curves = (
        inp.cumulative_incidence if inp.cumulative_incidence is not None else fit_cumulative_incidence(inp)
    )
    if not curves:
        return None
    ann = _gray_annotation(inp.results)
    fig = Figure(figsize=(4.8, 3.4), layout="constrained")
    drawn = plot_cumulative_incidence(fig.add_subplot(), curves, annotation=ann)
    lm = list(inp.settings.survival.landmarks_months)
    at = "; ".join(
        f"{c.cause.lower()}: "
        + ", ".join(
            f"{100 * c.at(t):.0f}% at {t:g} mo" for t in lm if c.last_time is None or t <= c.last_time
        )
        for c in curves[:2]
    )
    caption = (
        "Cumulative incidence of first failure by type from CAR T infusion: with a local component "
        "(strictly local or mixed) or strictly de novo, with death without progression (and progression of "
        "unknown pattern) as competing events. Shaded: pointwise 95% confidence bands. Landmark estimates "
        "with confidence intervals are in the competing-risks table."
        + (f" {ann.replace(chr(10), ' ')}." if ann else "")
    )
    how = (
        f"{curves[0].method}. The cause of each patient's first failure follows its first-progression "
        "pattern (local component = strictly local or mixed); the curves run to the last follow-up. Gray's "
        f"test, when shown, is read from results.json 'competing_risks'. {sw}"
    )
    spec = FigureSpec(
        "cumulative_incidence",
        "Cumulative incidence of local and de novo failure",
        caption,
        f"Cumulative incidence curves: {at}.",
        how,
    )
    return BuiltFigure(spec, fig, {"curves": drawn})


def _fig_swimmer(inp: ReportInput, show_ids: bool, sw: str) -> BuiltFigure | None:
    p = inp.patients
    known = p["os_months"].notna()
    if not known.any():
        return None
    n = int(known.sum())
    fig = Figure(figsize=(6.5, min(9.0, max(3.0, 0.9 + 0.13 * n))), layout="constrained")
    order = plot_swimmer(fig.add_subplot(), p, inp.patient_labels(show_ids))
    n_dead = int(p.loc[known, "os_event"].fillna(False).astype(bool).sum())
    n_prog = int(p.loc[known, "progression_months"].notna().sum())
    who = "patient identifiers" if show_ids else "study sequence numbers (not identifiers)"
    caption = (
        f"Follow-up of each of {n} patients from CAR T infusion (bar), first progression marked by its "
        f"pattern ({n_prog} patients), death by a cross ({n_dead}); arrows: alive at last follow-up. "
        f"Patients are labelled by {who}."
    )
    alt = (
        f"Swimmer plot with one horizontal bar per patient for {n} patients; {n_prog} progressions marked by "
        f"pattern and {n_dead} deaths."
    )
    how = (
        "Bars run from the index date (CAR T infusion, month 0) to death or last follow-up (os_months); the "
        "bar colour and the marker give the pattern at first progression. Patients sorted by follow-up. No "
        f"calendar dates are shown. {sw}"
    )
    return BuiltFigure(
        FigureSpec("swimmer", "Swimmer plot of follow-up", caption, alt, how), fig, {"order": order}
    )


def _fig_lesion_scatter(inp: ReportInput, sw: str) -> BuiltFigure | None:
    les = inp.lesions
    if not len(les):
        return None
    fig = Figure(figsize=(4.8, 3.6), layout="constrained")
    th = _lesion_thresholds(inp)
    pts = plot_lesion_scatter(fig.add_subplot(), les, lesion_outcome_class(les, inp.patients), thresholds=th)
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
    raster = (
        f" With more than {RASTERIZE_ABOVE} lesions the points of the SVG are a 300-dpi image."
        if len(les) > RASTERIZE_ABOVE
        else ""
    )
    caption = (
        f"Each of {len(les)} baseline lesions by longest diameter and SUVmax: {counts}. Dashed and dotted "
        f"lines: risk-factor thresholds ({th_words})."
    )
    alt = f"Scatter plot of lesion diameter against SUVmax: {counts}; threshold lines at {th_words}."
    how = (
        "Lesion outcome at first progression as classified by pofa: local failure; controlled (the patient "
        "progressed elsewhere); no progression; unknown (progression without recorded failure lesions). "
        "Thresholds are the lesion risk factors of the analysis settings ([risk_factors] lesion). Lesions "
        f"with a missing diameter or SUVmax are not drawn.{raster} {sw}"
    )
    spec = FigureSpec("lesion_scatter", "Lesion diameter and SUVmax by outcome", caption, alt, how)
    return BuiltFigure(spec, fig, {"points": pts})


#: The file of a study folder built from images (``pofa build-study``, ``pofa analyze MANIFEST.csv``) that
#: holds each patient's baseline-and-failure figure data (:mod:`pofa.batch.study`).
IMAGING_JSON = "imaging.json"


def scan_figure_data(study_folder: str | Path | None) -> dict[str, tuple[MatchMip, int]]:
    """Patient id -> (baseline-and-failure figure data, number of failure scans), from
    ``study_folder/imaging.json``.

    Empty when there is no such file (a study not built from images) or it holds no figure data. A damaged
    file is a :class:`~pofa.report.model.ReportError` (never a silent gap in the report).
    """
    from pofa.errors import ImagingError
    from pofa.imaging.mip import MatchMip
    from pofa.report.model import ReportError

    if study_folder is None:
        return {}
    path = Path(study_folder) / IMAGING_JSON
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path} cannot be read ({exc}); build the study from the manifest again") from None
    entries = info.get("patients") if isinstance(info, Mapping) else None
    out: dict[str, tuple[MatchMip, int]] = {}
    for entry in entries if isinstance(entries, list) else []:
        data = entry.get("figure") if isinstance(entry, Mapping) else None
        if not data:
            continue
        try:
            n_scans = sum(1 for sc in entry.get("scans") or [] if sc.get("role") == "failure")
            out[str(entry["patient_id"])] = (MatchMip.from_json(data), n_scans)
        except (ImagingError, KeyError, AttributeError) as exc:
            raise ReportError(f"{path}: the figure data of a patient cannot be read ({exc})") from None
    return out


def _counted(counts: Mapping[str, int], keys: Sequence[str]) -> str:
    """``"2 local, 1 de novo"``: the non-zero counts (or ``"none"``)."""
    parts = [f"{counts[k]} {k}" for k in keys if counts.get(k)]
    return ", ".join(parts) or "none"


def build_scan_figures(
    inp: ReportInput,
    study_folder: str | Path | None,
    *,
    show_ids: bool = False,
    versions: Mapping[str, str] | None = None,
) -> tuple[BuiltFigure, ...]:
    """One figure per patient with a failure scan: coronal MIPs of the baseline and first failure PET, lesions
    outlined by outcome (baseline) and class (failure), drawn from the study's imaging.json.

    Only patients of the analysed patients table are drawn, in study-sequence order; they are labelled by
    sequence number (``show_ids``: by identifier, and the scan dates are given). A study without imaging
    figure data gives no figure. ``drawn`` of each figure holds ``patient_id``, ``baseline`` (label ->
    outcome) and ``failure`` (label -> class) as drawn.
    """
    from pofa.imaging.matching import MatchClass
    from pofa.imaging.mip import BASELINE_COLOURS, draw_match_mip
    from pofa.report.manifest import dependency_versions
    from pofa.report.model import sequence_numbers

    data = scan_figure_data(study_folder)
    if not data:
        return ()
    v = dict(versions) if versions is not None else dependency_versions()
    sw = f"Drawn with {_software_line(v)}."
    labels = inp.patient_labels(show_ids)
    seq = sequence_numbers(inp.patients["patient_id"])
    out = []
    for pid in sorted((p for p in data if p in seq), key=lambda p: seq[p]):
        mip, n_scans = data[pid]
        label = labels[pid]
        # panels of about 2.6 inches across, as tall as the projections are (head to feet), plus room for the
        # title, axis labels and legends
        aspect = max(
            (p.extent[3] - p.extent[2]) / (p.extent[1] - p.extent[0]) for p in (mip.baseline, mip.failure)
        )
        fig = Figure(figsize=(6.5, min(9.5, max(3.5, 2.6 * aspect + 1.8))), layout="constrained")
        axes = fig.subplots(1, 2)
        draw_match_mip(mip, axes, title=f"Patient {label}")
        if show_ids:
            for ax, date in zip(axes, (mip.baseline_date, mip.failure_date), strict=True):
                if date:
                    ax.set_title(f"{ax.get_title()}, {date}")
        counts = mip.counts()
        b_keys = list(BASELINE_COLOURS)
        f_keys = [c.value for c in MatchClass]
        n_b, n_f = len(mip.baseline.outlines), len(mip.failure.outlines)
        which = "the failure PET" if n_scans <= 1 else f"the first of {n_scans} failure PETs"
        dates = (
            f" (baseline {mip.baseline_date}, failure {mip.failure_date})"
            if show_ids and (mip.baseline_date or mip.failure_date)
            else ""
        )
        caption = (
            "Coronal maximum-intensity projections of the baseline PET and "
            f"{which} of patient {label}{dates}. Baseline lesions ({n_b}) are outlined by outcome: "
            f"{_counted(counts['baseline'], b_keys)}; failure lesions ({n_f}) by class: "
            f"{_counted(counts['failure'], f_keys)}."
        )
        alt = (
            f"Two grey-scale PET projections of patient {label}, baseline on the left and failure on the "
            f"right, with {n_b} baseline lesion outlines ({_counted(counts['baseline'], b_keys)}) and {n_f} "
            f"failure lesion outlines ({_counted(counts['failure'], f_keys)})."
        )
        no_dates = " except the scan dates (--show-ids)" if show_ids else ""
        how = (
            "Maximum-intensity projections of the SUV images along the anterior-posterior axis (anterior "
            "view: head at the top, the patient's right on the left), one grey scale for both panels from 0 "
            f"to SUV {mip.baseline.vmax:.3g} (the 99.5th percentile of the baseline projection). Each "
            "lesion's projection is outlined in Okabe-Ito colours; a baseline lesion is a local failure when "
            "a failure lesion is local to it. Registration of the failure scan to the baseline: "
            f"{mip.registration} Lesion matching: local = overlap with a baseline lesion grown by "
            f"{mip.tolerance_mm:g} mm, marginal = within {mip.margin_mm:g} mm, de novo = farther "
            f"(match_class of failures.csv). No calendar dates are shown{no_dates}. {sw}"
        )
        spec = FigureSpec(
            f"scans_{seq[pid]:03d}", f"Baseline and failure scans of patient {label}", caption, alt, how
        )
        drawn = {
            "patient_id": pid,
            "baseline": mip.baseline.outcomes(),
            "failure": mip.failure.outcomes(),
        }
        out.append(BuiltFigure(spec, fig, drawn))
    return tuple(out)


def build_figures(
    inp: ReportInput, *, show_ids: bool = False, versions: Mapping[str, str] | None = None
) -> tuple[BuiltFigure, ...]:
    """Every figure of the report, drawn (not yet rendered), with caption, alt text and how-made note.

    Figures whose results are absent are left out. Call it inside :func:`rc_context` (as
    :func:`pofa.report.html.write_report` does) for the report's style.
    """
    from pofa.report.manifest import dependency_versions

    v = dict(versions) if versions is not None else dependency_versions()
    sw = f"Drawn with {_software_line(v)}."
    endpoints = [e for e in ("pfs", "os") if not inp.survival_frame(e).empty]
    figs = [_fig_patterns(inp, sw), _fig_forest(inp, sw)]
    if endpoints:
        figs.append(_fig_km_overall(inp, endpoints, sw))
        figs += [_fig_km_by(inp, term, endpoints, sw) for term in inp.patient_terms()]
    figs += [
        _fig_cumulative_incidence(inp, sw),
        _fig_swimmer(inp, show_ids, sw),
        _fig_lesion_scatter(inp, sw),
    ]
    return tuple(f for f in figs if f is not None)


def render_figure(built: BuiltFigure) -> RenderedFigure:
    """PNG (300 dpi) and SVG bytes of a figure, reproducible byte for byte (no dates in the metadata)."""
    fig = built.figure
    from pofa import __version__

    software = f"pofa {__version__} (matplotlib {matplotlib.__version__})"
    with rc_context():
        buf = io.BytesIO()
        fig.savefig(
            buf,
            format="png",
            dpi=DPI,
            metadata={"Software": software, "Title": built.spec.title},
            pil_kwargs={"compress_level": 6},
        )
        png = buf.getvalue()
        # the constrained layout was computed while saving the PNG (it does not depend on the resolution):
        # keep it for the SVG instead of computing it again
        engine = fig.get_layout_engine()
        fig.set_layout_engine("none")
        buf = io.BytesIO()
        fig.savefig(
            buf, format="svg", metadata={"Date": None, "Creator": software, "Title": built.spec.title}
        )
        svg = buf.getvalue()
        if engine is not None:
            fig.set_layout_engine(engine)
    w, h = _png_size(png)
    return RenderedFigure(built.spec, png, svg, w, h)


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height of a PNG from its IHDR chunk."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
