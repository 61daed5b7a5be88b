"""Figures: Kaplan-Meier estimates of PFS and OS, overall and by each yes/no patient term.

The numbers at risk are shown under the x ticks. The curves are the analysis' own
(:class:`pofa.stats.results.StepCurve`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from pofa.report.format import DASH, fmt_count, fmt_months, fmt_ratio, p_phrase
from pofa.report.model import ReportInput
from pofa.report.plots.base import (
    ENDPOINT_WORDS,
    BuiltFigure,
    FigureSpec,
    add_footer,
    band_changes,
    time_ticks,
)
from pofa.report.plots.marks import OnePathMarks
from pofa.report.style import GREY, OKABE_ITO
from pofa.stats.results import CoxRow, StepCurve

__all__ = ["KMDrawn", "KMSeries", "km_by_figure", "km_overall_figure", "plot_km", "plot_numbers_at_risk"]


@dataclass(frozen=True, slots=True)
class KMSeries:
    """One Kaplan-Meier curve to draw: its label, the curve and the line style.

    Attributes
    ----------
    label : str
        Legend label.
    curve : StepCurve
        The analysis' curve.
    colour, linestyle : str
        Line style.
    row_label : str
        Label of its row in the numbers-at-risk table (default: ``label``).
    """

    label: str
    curve: StepCurve
    colour: str = OKABE_ITO["black"]
    linestyle: str = "-"
    row_label: str = ""

    @property
    def risk_label(self) -> str:
        """Label of the series' row in the numbers-at-risk table.

        Returns
        -------
        str
            ``row_label``, or ``label`` when it is empty.
        """
        return self.row_label or self.label


@dataclass(frozen=True, slots=True)
class KMDrawn:
    """What :func:`plot_km` drew: the tick times and the numbers at risk under each tick per series.

    Attributes
    ----------
    ticks : tuple of float
        The x tick times (months).
    at_risk : dict
        ``{label: numbers at risk at the ticks}``.
    """

    ticks: tuple[float, ...]
    at_risk: dict[str, tuple[int, ...]]


def plot_km(
    ax: Axes,
    series: Sequence[KMSeries],
    *,
    ticks: Sequence[float] | None = None,
    ylabel: str = "Survival probability",
    title: str = "",
    annotation: str | None = None,
    show_ci: bool = True,
) -> tuple[float, ...]:
    """Kaplan-Meier curves with confidence bands and censoring marks; the legend above the axes.

    Parameters
    ----------
    ax : Axes
        Where to draw.
    series : sequence of KMSeries
        The curves.
    ticks : sequence of float, optional
        Tick times (months); by default :func:`time_ticks` of the longest follow-up.
    ylabel : str
        Label of the y axis.
    title : str
        Panel title (the first line of the legend's title).
    annotation : str, optional
        Further lines of the legend's title (the median, or the hazard ratio and p).
    show_ci : bool
        Draw the pointwise confidence band of each curve.

    Returns
    -------
    tuple of float
        The tick times.
    """
    max_t = max((s.curve.last_time for s in series), default=0.0)
    tks = tuple(float(t) for t in (ticks if ticks is not None else time_ticks(max_t)))
    for s in series:
        x, y = s.curve.steps()
        ax.step(x, y, where="post", color=s.colour, linestyle=s.linestyle, label=s.label, gid=f"km:{s.label}")
        if show_ci:
            bx, lo, hi = band_changes(*s.curve.band())
            if bx.size:
                ax.fill_between(
                    np.concatenate(([0.0], bx)),
                    np.concatenate(([1.0], lo)),
                    np.concatenate(([1.0], hi)),
                    step="post",
                    color=s.colour,
                    alpha=0.15,
                    linewidth=0,
                )
        ct, cy = s.curve.censored()
        if ct.size:
            # one path of ticks (thousands of censored patients are one SVG element, not thousands)
            ax.add_line(
                OnePathMarks(ct, cy, marker="|", markersize=5, markeredgewidth=0.9, color=s.colour,
                             gid=f"censor:{s.label}")
            )
    ax.axhline(0.5, color=GREY, linewidth=0.6, linestyle=":", zorder=0)
    ax.set_ylim(0, 1.03)
    ax.set_xlim(0, max(max_t, tks[-1] if tks else 0.0) * 1.02 or 1.0)
    ax.set_xticks(list(tks), [f"{t:g}" for t in tks])
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0], ["0", "0.25", "0.50", "0.75", "1.00"])
    ax.set_ylabel(ylabel)
    ax.set_xlabel("Months from CAR T infusion")
    head = "\n".join(x for x in (title, annotation or "") if x)
    # above the axes: a legend never hides a curve
    leg = ax.legend(
        loc="lower left",
        bbox_to_anchor=(0.0, 1.01),
        borderaxespad=0.0,
        handlelength=1.8,
        title=head or None,
        title_fontsize=7.5,
        fontsize=7,
        alignment="left",
        frameon=False,
    )
    if title:
        leg.get_title().set_fontweight("normal")
    return tks


def plot_numbers_at_risk(
    ax: Axes, series: Sequence[KMSeries], ticks: Sequence[float], *, row_labels: bool = True
) -> dict[str, tuple[int, ...]]:
    """The numbers at risk, #{T >= t} at each tick (R/SAS), centred under the ticks of the curves' axes.

    Parameters
    ----------
    ax : Axes
        An axes sharing the x axis of the curves' axes.
    series : sequence of KMSeries
        The curves, one row each, top to bottom.
    ticks : sequence of float
        The curves' tick times.
    row_labels : bool
        Label the rows (numbers are coloured like their curve either way).

    Returns
    -------
    dict
        ``{label: numbers at risk}``.
    """
    n_rows = len(series)
    ax.set_ylim(-0.5, n_rows - 0.5)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.xaxis.set_visible(False)  # no ticks under the table (the curves' axis has them): nothing to draw
    ax.set_yticks(
        [n_rows - 1 - i for i in range(n_rows)],
        [s.risk_label for s in series] if row_labels else [""] * n_rows,
    )
    for lab, s in zip(ax.get_yticklabels(), series, strict=True):
        lab.set_color(s.colour)
    ax.tick_params(axis="y", length=0, labelsize=7, pad=14)
    out: dict[str, tuple[int, ...]] = {}
    for i, s in enumerate(series):
        out[s.label] = s.curve.at_risk(ticks)
        for t, v in zip(ticks, out[s.label], strict=True):
            ax.text(
                t,
                n_rows - 1 - i,
                str(v),
                ha="center",
                va="center",
                fontsize=7,
                color=s.colour if n_rows > 1 else "black",
                gid=f"n-at-risk:{i}:{t:g}",
            )
    ax.set_title("Number at risk", loc="left", fontsize=7.5, pad=2, y=1.0)  # y given: see plot_patterns
    return out


def _panels(fig: Figure, n: int, risk_height: float) -> list[tuple[Axes, Axes]]:
    gs = fig.add_gridspec(2, n, height_ratios=[5, risk_height])
    out = []
    for j in range(n):
        ax = fig.add_subplot(gs[0, j])
        out.append((ax, fig.add_subplot(gs[1, j], sharex=ax)))
    return out


def km_overall_figure(inp: ReportInput, sw: str) -> BuiltFigure | None:
    """Kaplan-Meier estimates of PFS and OS with numbers at risk (``None`` without survival results).

    Parameters
    ----------
    inp : ReportInput
        The report input (survival results and the CI method of the settings).
    sw : str
        The software sentence of the note.

    Returns
    -------
    BuiltFigure or None
        One panel per endpoint with patients, or ``None`` without survival results.
    """
    surv = inp.statistics.survival if inp.statistics is not None else None
    if surv is None:
        return None
    endpoints = [e for e in ("pfs", "os") if surv.endpoint(e).n > 0]
    if not endpoints:
        return None
    ci_method = inp.settings.survival.ci_method
    fig = Figure(figsize=(3.6 * len(endpoints), 3.9), layout="constrained")
    drawn: dict[str, object] = {}
    alt, cap = [], []
    for j, ((ax, rax), e) in enumerate(zip(_panels(fig, len(endpoints), 0.7), endpoints, strict=True)):
        s = surv.endpoint(e)
        words = ENDPOINT_WORDS[e]
        median = f"{fmt_months(s.median)} months (95% CI {fmt_months(s.ci_low)}{DASH}{fmt_months(s.ci_high)})"
        series = [KMSeries(f"All patients (n = {fmt_count(s.n)})", s.curve, row_label="All patients")]
        ticks = plot_km(
            ax,
            series,
            ylabel=words[0],
            title=f"{'AB'[j]}  {words[0]}",
            annotation=f"Median {median.replace(' months', ' mo')}",
        )
        at_risk = plot_numbers_at_risk(rax, series, ticks, row_labels=(j == 0))
        drawn[e] = KMDrawn(ticks, at_risk)
        cap.append(
            f"({'AB'[j]}) {words[1]}: {fmt_count(s.events)} events in {fmt_count(s.n)} patients, "
            f"median {median}"
        )
        alt.append(
            f"{words[0]} curve for {fmt_count(s.n)} patients with {fmt_count(s.events)} events; median "
            f"{fmt_months(s.median)} months"
        )
    add_footer(fig, inp.simulated)
    caption = (
        "Kaplan-Meier estimates from CAR T infusion. " + "; ".join(cap) + ". Shaded: pointwise 95% "
        "confidence band; ticks: censored patients; the table gives the number at risk."
    )
    how = (
        f"Kaplan-Meier estimator with Greenwood variance; pointwise 95% CI by the {ci_method} transform "
        "(R survival::survfit conf.type); medians and their CIs as R quantile.survfit (midpoint on an "
        "exact 0.5 plateau), from results.json 'survival'. PFS event: progression or death; OS event: "
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
    return BuiltFigure(spec, fig, drawn)


def file_stem(term: str) -> str:
    """Make a file-name-safe form of a term: ``"any diameter_cm>=5"`` -> ``"any_diameter_cm_ge_5"``.

    Parameters
    ----------
    term : str
        The model term.

    Returns
    -------
    str
        The term with ``>=`` as ``ge``, ``.`` as ``p`` and other runs of non-alphanumerics as ``_``.
    """
    return re.sub(r"[^A-Za-z0-9]+", "_", term.replace(">=", " ge ").replace(".", "p")).strip("_")


def km_by_figure(inp: ReportInput, rows: Sequence[CoxRow], sw: str) -> BuiltFigure | None:
    """Kaplan-Meier estimates by one yes/no patient term, per endpoint, with its hazard ratio and log-rank p.

    Parameters
    ----------
    inp : ReportInput
        The report input (the CI method of the settings, the simulated mark).
    rows : sequence of CoxRow
        The term's rows (one per endpoint) with their group curves.
    sw : str
        The software sentence of the note.

    Returns
    -------
    BuiltFigure or None
        ``None`` when no endpoint has both groups.
    """
    rows = [r for r in rows if len(r.groups) == 2]
    if not rows:
        return None
    ci_method = inp.settings.survival.ci_method
    label = rows[0].label
    fig = Figure(figsize=(3.6 * len(rows), 4.3), layout="constrained")
    drawn: dict[str, object] = {}
    cap, alt = [], []
    styles = {False: (OKABE_ITO["blue"], "-"), True: (OKABE_ITO["vermillion"], "--")}
    for j, ((ax, rax), r) in enumerate(zip(_panels(fig, len(rows), 1.1), rows, strict=True)):
        words = ENDPOINT_WORDS[r.endpoint]
        groups = sorted(r.groups, key=lambda g: g.value)
        series = [
            KMSeries(f"{g.label} (n = {g.n})", g.curve, *styles[g.value], row_label=g.label) for g in groups
        ]
        hr = f"{fmt_ratio(r.hr)} (95% CI {fmt_ratio(r.ci_low)}{DASH}{fmt_ratio(r.ci_high)})"
        ann = f"HR {hr}\nCox {p_phrase(r.p)}; {p_phrase(r.logrank_p, 'log-rank p')}"
        ticks = plot_km(ax, series, ylabel=words[0], title=f"{'AB'[j]}  {words[0]}", annotation=ann)
        at_risk = plot_numbers_at_risk(rax, series, ticks, row_labels=(j == 0))
        drawn[r.endpoint] = KMDrawn(ticks, at_risk)
        cap.append(
            f"({'AB'[j]}) {words[1]}: hazard ratio {hr}, {p_phrase(r.p)}; "
            f"{p_phrase(r.logrank_p, 'log-rank p')} ("
            + "; ".join(f"{g.label.lower()}: {g.n} patients, {g.events} events" for g in groups)
            + ")"
        )
        alt.append(f"{words[0]} by {label.lower()}: {ann.replace(chr(10), '; ')}")
    add_footer(fig, inp.simulated)
    caption = (
        f"Kaplan-Meier estimates by {label.lower()} (dashed) or not (solid). "
        + "; ".join(cap)
        + ". Tick marks: censored patients; the table gives the number at risk."
    )
    how = (
        f"Kaplan-Meier estimator with Greenwood variance, {ci_method} 95% CI (R survival::survfit). Hazard "
        "ratio: Cox proportional hazards, Efron ties, Wald CI and p (R coxph); log-rank test as R "
        "survdiff; from results.json 'patient_models'. Numbers at risk are #{T >= t} at each tick. "
        f"{sw}"
    )
    spec = FigureSpec(
        f"km_by_{file_stem(rows[0].term)}",
        f"PFS and OS by {label.lower()}",
        caption,
        f"Kaplan-Meier plots by {label.lower()}. " + ". ".join(alt) + ".",
        how,
    )
    return BuiltFigure(spec, fig, drawn)
