"""Figure: swimmer plot of each patient's follow-up, labelled by study number, sorted by follow-up.

The plot is sized to fit: past :data:`ROWS_PER_PANEL` patients the patients are split into side-by-side
panels, and past :data:`MAX_LABELLED` they are drawn unlabelled in one panel. Past :data:`MAX_DRAWN` patients
an evenly spaced sample of them is drawn (every k-th in order of follow-up, the first and the last always),
and the caption says so: a bar per patient of 100,000 patients cannot be seen and makes a file of tens of MB.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.path import Path

from pofa.report.model import NO_FAILURE, PATTERNS, ReportInput
from pofa.report.plots.base import BuiltFigure, FigureSpec, add_footer, time_ticks
from pofa.report.plots.marks import OnePathMarks
from pofa.report.plots.patterns import pattern_label
from pofa.report.style import GREY, PATTERN_COLOURS, PATTERN_MARKERS

__all__ = ["MAX_DRAWN", "MAX_LABELLED", "ROWS_PER_PANEL", "plot_swimmer", "swimmer_figure", "swimmer_order",
           "swimmer_sample"]

#: Patients per labelled panel (one page of rows at a readable 6-point label).
ROWS_PER_PANEL = 70
#: Above this many patients the bars are drawn unlabelled in one panel.
MAX_LABELLED = 3 * ROWS_PER_PANEL
#: Above this many patients an evenly spaced sample of this many at most is drawn (the caption says so).
MAX_DRAWN = 2000

_RECT_CODES = np.array([Path.MOVETO, Path.LINETO, Path.LINETO, Path.LINETO, Path.CLOSEPOLY], dtype=np.uint8)


def swimmer_sample(df: pd.DataFrame, limit: int | None = None) -> tuple[pd.DataFrame, int]:
    """Every k-th patient of the sorted patients, so that at most ``limit`` are drawn.

    Parameters
    ----------
    df : DataFrame
        The patients in drawing order (:func:`swimmer_order`).
    limit : int, optional
        The most patients drawn (default :data:`MAX_DRAWN`).

    Returns
    -------
    tuple of (DataFrame, int)
        The patients drawn (in the same order, the first and the last always among them) and the step k (1:
        every patient is drawn).
    """
    n = len(df)
    limit = MAX_DRAWN if limit is None else limit
    if n <= limit:
        return df, 1
    step = math.ceil(n / limit)
    pick = np.unique(np.append(np.arange(0, n, step), n - 1))
    return df.iloc[pick].reset_index(drop=True), step


def swimmer_order(patients: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Sort the patients with a known follow-up by follow-up (longest last), ties by study number.

    Parameters
    ----------
    patients : DataFrame
        The report's patients.
    labels : Mapping
        Label of each patient id.

    Returns
    -------
    DataFrame
        The patients with a known ``os_months``, with their ``_label`` (and a ``_seq`` sort key).
    """
    df = patients.loc[patients["os_months"].notna()].copy()
    df["_label"] = [labels[str(pid)] for pid in df["patient_id"].to_numpy(dtype=object)]
    df["_seq"] = [int(x) if x.isdigit() else 0 for x in df["_label"].tolist()]
    return df.sort_values(["os_months", "_seq", "_label"], kind="mergesort").reset_index(drop=True)


def plot_swimmer(ax: Axes, df: pd.DataFrame, *, max_time: float, labelled: bool = True) -> list[str]:
    """Draw one bar per patient from the index date to last follow-up or death.

    The first progression is marked by its pattern (colour and marker), death by a cross, alive at last
    follow-up by an arrow.

    Parameters
    ----------
    ax : Axes
        Where to draw.
    df : DataFrame
        Patients in drawing order, bottom to top (:func:`swimmer_order`).
    max_time : float
        Common x range of all panels (months).
    labelled : bool
        Label each bar by ``_label``.

    Returns
    -------
    list of str
        The labels from top to bottom.
    """
    n = len(df)
    y = np.arange(n)
    height = 0.7 if n <= 100 else 0.9
    w = df["os_months"].to_numpy(float)
    pattern = np.array([v if isinstance(v, str) else "" for v in df["pattern"].tolist()], dtype=object)
    half = height / 2
    # the bars of one colour are one path of rectangles (they never overlap): one SVG element per colour
    for p in dict.fromkeys(pattern):
        sel = pattern == p
        k = int(sel.sum())
        rect = np.empty((k, 5, 2))
        rect[:, [0, 3, 4], 0] = 0.0
        rect[:, [1, 2], 0] = w[sel, None]
        rect[:, [0, 1, 4], 1] = y[sel, None] - half
        rect[:, [2, 3], 1] = y[sel, None] + half
        codes = np.tile(_RECT_CODES, k)
        bars = PathCollection([Path(rect.reshape(-1, 2), codes)], facecolors=PATTERN_COLOURS.get(p, GREY),
                              alpha=0.45, linewidths=0, gid=f"swimmer:bars:{p}")
        ax.add_collection(bars, autolim=False)  # the limits are set below
    msize = 4.0 if n <= 70 else 1.6
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
                label=f"Progression: {pattern_label(p)}",
                gid=f"swimmer:progression:{p}",
            )
    dead = df["os_event"].fillna(False).astype(bool).to_numpy()
    if dead.any():
        ax.add_line(OnePathMarks(w[dead], y[dead], marker="x", markersize=msize, color="black",
                                 markeredgewidth=0.9, label="Death", gid="swimmer:death"))
    if (~dead).any():
        ax.add_line(OnePathMarks(w[~dead], y[~dead], marker=">", markersize=msize * 0.8, color=GREY,
                                 label="Alive at last follow-up", gid="swimmer:alive"))
    labels = list(df["_label"])
    if labelled:
        ax.set_yticks(y, labels)
        ax.tick_params(axis="y", length=0, labelsize=6 if n > 30 else 7)
    else:
        ax.set_yticks([])
    ax.set_ylim(-0.8, max(n, 1) - 0.2)
    tks = time_ticks(max_time)
    ax.set_xticks(list(tks), [f"{t:g}" for t in tks])
    ax.set_xlim(0, max_time * 1.03 if max_time > 0 else 1.0)
    ax.set_xlabel("Months from CAR T infusion")
    ax.spines["left"].set_visible(False)
    return labels[::-1]


def _legend_handles(ax: Axes, df: pd.DataFrame) -> tuple[list[Artist], list[str]]:
    handles, labs = ax.get_legend_handles_labels()
    for p in (NO_FAILURE, *PATTERNS):
        if (df["pattern"] == p).any():
            handles.append(Patch(facecolor=PATTERN_COLOURS[p], alpha=0.45, linewidth=0))
            labs.append(f"Bar: {pattern_label(p).split(' (')[0].lower()}")
    return list(handles), labs


def swimmer_figure(inp: ReportInput, show_ids: bool, sw: str) -> BuiltFigure | None:
    """Build the swimmer plot.

    Parameters
    ----------
    inp : ReportInput
        The report input (patients with follow-up, progression time and pattern).
    show_ids : bool
        Label by patient identifiers instead of study numbers.
    sw : str
        The software sentence of the note.

    Returns
    -------
    BuiltFigure or None
        The figure, or ``None`` when no patient has a known follow-up.
    """
    everyone = swimmer_order(inp.patients, inp.patient_labels(show_ids))
    n_all = len(everyone)
    if n_all == 0:
        return None
    df, step = swimmer_sample(everyone)
    n = len(df)
    labelled = n <= MAX_LABELLED
    n_panels = max(1, math.ceil(n / ROWS_PER_PANEL)) if labelled else 1
    rows = math.ceil(n / n_panels)
    height = min(9.0, max(3.0, 1.2 + 0.1 * rows)) if labelled else 7.5
    fig = Figure(figsize=(7.0, height), layout="constrained")
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    max_t = float(df["os_months"].max())
    order: list[str] = []
    # panel k holds the k-th slice of the sorted patients (the longest follow-up in the last panel)
    for k, ax in enumerate(axes):
        part = df.iloc[k * rows : (k + 1) * rows]
        order = plot_swimmer(ax, part, max_time=max_t, labelled=labelled) + order
        if k == 0:
            ax.set_ylabel(
                "Patient (study number)"
                if labelled and not show_ids
                else "Patient"
                if labelled
                else f"Patients ({n_all}), sorted by follow-up"
            )
    handles, labs = _legend_handles(axes[0], everyone)
    fig.legend(handles, labs, loc="outside upper center", fontsize=7, ncols=3)
    add_footer(fig, inp.simulated)
    n_dead = int(everyone["os_event"].fillna(False).astype(bool).sum())
    n_prog = int(everyone["progression_months"].notna().sum())
    who = "patient identifiers" if show_ids else "study sequence numbers (not identifiers)"
    panels = f" in {n_panels} panels (shortest follow-up first)" if n_panels > 1 else ""
    lab = (
        f"Patients are labelled by {who}{panels}."
        if labelled
        else (f"With more than {MAX_LABELLED} patients the bars are not labelled.")
    )
    sampled = (
        f" Only {n:,} of the {n_all:,} patients are drawn (one in every {step} in order of follow-up, "
        "the first and the last included); the counts are of all patients."
        if step > 1
        else ""
    )
    caption = (
        f"Follow-up of each of {n_all:,} patients from CAR T infusion (bar), first progression marked by its "
        f"pattern ({n_prog} patients), death by a cross ({n_dead}); arrows: alive at last follow-up. "
        f"{lab}{sampled}"
    )
    alt = (
        f"Swimmer plot with one horizontal bar per patient for {n:,} patients"
        f"{f' (a sample of {n_all:,})' if step > 1 else ''}; {n_prog} progressions marked by pattern and "
        f"{n_dead} deaths."
    )
    how = (
        "Bars run from the index date (CAR T infusion, month 0) to death or last follow-up (os_months); the "
        "bar colour and the marker give the pattern at first progression. Patients sorted by follow-up, "
        f"ties by study number. No calendar dates are shown. {sw}"
    )
    return BuiltFigure(
        FigureSpec("swimmer", "Swimmer plot of follow-up", caption, alt, how),
        fig,
        {"order": order, "panels": n_panels, "drawn": n, "patients": n_all, "step": step},
    )
