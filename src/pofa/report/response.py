"""The report's response section: every scan by every rule, spider plot, waterfalls, swimmer plot, incidence.

Rendered from the analysis' typed results (:class:`pofa.stats.results.ResponseOverTime`, the part
``response`` of :class:`pofa.stats.results.StudyResults`), from which results.json's ``responses``,
``lesion_failure`` and ``lesion_cox`` are written (docs/response.md): nothing is estimated here. One HTML
``<section id="response">`` with its figures embedded (SVG, base64), inserted before the methods section by
:func:`insert_response_section`. Patients appear as study sequence numbers, as in results.json.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pofa.report.format import (
    DASH,
    fmt_count,
    fmt_months,
    fmt_number,
    fmt_p,
    fmt_prob,
    fmt_ratio,
    result_span,
)
from pofa.report.plots.base import BuiltFigure, FigureSpec, RenderedFigure, rc_context, render_figure
from pofa.report.style import GREY, OKABE_ITO
from pofa.stats.results import LesionFailureSummary, ResponseOverTime, ScanResponseRow, StudyResults

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

__all__ = ["BEST_ORDER", "CATEGORY_COLOURS", "RESPONSE_FIGURES", "RULES", "best_categories", "disagree",
           "incidence_png", "insert_response_section", "render_response_figures",
           "render_response_section_figures", "response_section", "spider_png", "swimmer_png",
           "waterfall_png", "write_response_figures"]

#: The family of each category, to mark scans where the rules disagree (CMR reads as CR, MR as SD...).
_FAMILY = {"CR": "CR", "CMR": "CR", "PR": "PR", "PMR": "PR", "MR": "SD", "SD": "SD", "NMR": "SD",
           "PD": "PD", "PMD": "PD", "IR1": "PD", "IR2": "PD", "IR3": "PD"}

#: The four rule sets: (attribute of :class:`ScanResponseRow`, label).
RULES: tuple[tuple[str, str], ...] = (("lugano_ct", "Lugano 2014 CT"), ("lugano_pet", "Lugano 2014 PET"),
                                      ("lyric", "LYRIC"), ("recil", "RECIL 2017"))

#: Best response first: the order in which a patient's best category by a rule is chosen (an indeterminate
#: response ranks above PD, which it may turn out not to be; NE last).
BEST_ORDER: tuple[str, ...] = ("CR", "CMR", "PR", "PMR", "MR", "SD", "NMR", "IR3", "IR2", "IR1", "PD", "PMD",
                               "NE")

#: Okabe-Ito colour of each category (one colour per family, MR and IR apart), in the report's palette.
CATEGORY_COLOURS: dict[str, str] = {
    "CR": OKABE_ITO["bluish green"], "CMR": OKABE_ITO["bluish green"],
    "PR": OKABE_ITO["sky blue"], "PMR": OKABE_ITO["sky blue"],
    "MR": OKABE_ITO["yellow"],
    "SD": OKABE_ITO["orange"], "NMR": OKABE_ITO["orange"],
    "IR1": OKABE_ITO["reddish purple"], "IR2": OKABE_ITO["reddish purple"],
    "IR3": OKABE_ITO["reddish purple"],
    "PD": OKABE_ITO["vermillion"], "PMD": OKABE_ITO["vermillion"],
    "NE": GREY,
}


_v = result_span


def _software() -> str:
    import matplotlib

    import pofa

    return f"pofa {pofa.__version__}, matplotlib {matplotlib.__version__}"


def disagree(row: ScanResponseRow) -> bool:
    """Whether the evaluable categories of one scan fall in different families (CR / PR / SD / PD).

    Parameters
    ----------
    row : ScanResponseRow
        One scan of one patient.

    Returns
    -------
    bool
        ``True`` when at least two rules' categories read as different families (CMR as CR, PMR as PR, MR and
        NMR as SD, PMD and IR1-IR3 as PD; NE is not compared).
    """
    fams = {_FAMILY[getattr(row, k)] for k, _ in RULES if getattr(row, k) in _FAMILY}
    return len(fams) > 1


def best_categories(rows: Sequence[ScanResponseRow], rule: str) -> dict[int, str]:
    """Each patient's best category by one rule over the follow-up scans (order :data:`BEST_ORDER`).

    Parameters
    ----------
    rows : sequence of ScanResponseRow
        The scans.
    rule : str
        ``lugano_ct``, ``lugano_pet``, ``lyric`` or ``recil``.

    Returns
    -------
    dict of int to str
        Patient sequence number -> best category (no confirmation of a response is required).
    """
    rank = {c: i for i, c in enumerate(BEST_ORDER)}
    best: dict[int, str] = {}
    for r in rows:
        if r.patient is None:
            continue
        cat = getattr(r, rule)
        if r.patient not in best or rank.get(cat, len(rank)) < rank.get(best[r.patient], len(rank)):
            best[r.patient] = cat
    return best


def _legend_groups(categories: set[str]) -> list[tuple[str, str]]:
    """(colour, label) per colour of the categories present, best first; categories sharing a colour (CR and
    CMR, IR1-IR3) share one entry labelled with each of them ("IR1/IR2")."""
    order = sorted(categories, key=lambda c: BEST_ORDER.index(c) if c in BEST_ORDER else len(BEST_ORDER))
    groups: dict[str, list[str]] = {}
    for c in order:
        groups.setdefault(CATEGORY_COLOURS.get(c, GREY), []).append(c)
    return [(colour, "/".join(cats)) for colour, cats in groups.items()]


def _png(fig: Figure | None) -> bytes | None:
    if fig is None:
        return None
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150, bbox_inches="tight")
    return buf.getvalue()


def spider_png(rows: Sequence[ScanResponseRow]) -> bytes | None:
    """Draw the spider plot (:data:`RESPONSE_FIGURES` ``response_spider``) as a 150-dpi PNG.

    Parameters
    ----------
    rows : sequence of ScanResponseRow
        The scans.

    Returns
    -------
    bytes or None
        PNG data, or None without a scan with an evaluable SPD change.
    """
    return _png(_spider_figure(rows))


def waterfall_png(rows: Sequence[ScanResponseRow]) -> bytes | None:
    """Draw the waterfalls of best response per rule (``response_waterfall``) as a 150-dpi PNG.

    Parameters
    ----------
    rows : sequence of ScanResponseRow
        The scans.

    Returns
    -------
    bytes or None
        PNG data, or None without an evaluable scan.
    """
    return _png(_waterfall_figure(rows))


def swimmer_png(rows: Sequence[ScanResponseRow]) -> bytes | None:
    """Draw the swimmer plot by response (``response_swimmer``) as a 150-dpi PNG.

    Parameters
    ----------
    rows : sequence of ScanResponseRow
        The scans.

    Returns
    -------
    bytes or None
        PNG data, or None without scans.
    """
    return _png(_swimmer_figure(rows))


def incidence_png(failure: LesionFailureSummary) -> bytes | None:
    """Draw the cumulative incidence of local failure per lesion (``lesion_failure_incidence``) as a PNG.

    Parameters
    ----------
    failure : LesionFailureSummary
        Lesion-level local failure.

    Returns
    -------
    bytes or None
        PNG data (150 dpi), or None without a curve.
    """
    return _png(_incidence_figure(failure))


def _new_figure(figsize: tuple[float, float]) -> Figure:
    """A figure of matplotlib's object API: no pyplot, no global figure list, the user's backend untouched."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def _spider_figure(rows: Sequence[ScanResponseRow]) -> Figure | None:
    """Spider plot: change of the target SPD from baseline (%) against days, one line per patient.

    Each line starts at 0 on day 0 and is coloured by the patient's best Lugano 2014 CT category.

    Parameters
    ----------
    rows : sequence of ScanResponseRow
        The scans.

    Returns
    -------
    matplotlib.figure.Figure or None
        The figure, or None without a scan with an evaluable SPD change.
    """
    lines: dict[int, list[tuple[float, float]]] = {}
    for r in rows:
        if r.patient is not None and math.isfinite(r.spd_change_baseline_pct):
            lines.setdefault(r.patient, [(0.0, 0.0)]).append((float(r.day), r.spd_change_baseline_pct))
    if not lines:
        return None
    best = best_categories(rows, "lugano_ct")
    fig = _new_figure((6.5, 4.0))
    ax = fig.subplots()
    for patient, pts in lines.items():
        xs, ys = zip(*sorted(pts), strict=True)
        ax.plot(xs, ys, marker="o", markersize=3, linewidth=1, alpha=0.8,
                color=CATEGORY_COLOURS.get(best.get(patient, "NE"), GREY))
    for colour, text in _legend_groups({best.get(p, "NE") for p in lines}):
        ax.plot([], [], color=colour, label=f"best Lugano CT: {text}")
    ax.axhline(-50, color="black", linestyle="--", linewidth=0.8)
    ax.axhline(50, color="black", linestyle=":", linewidth=0.8)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xlabel("Days from the index date")
    ax.set_ylabel("Change of SPD from baseline (%)")
    ax.legend(frameon=False, fontsize=7)
    built: Figure = fig
    return built


def _waterfall_figure(rows: Sequence[ScanResponseRow]) -> Figure | None:
    """Draw waterfalls of best response, one panel per rule, each bar coloured by that rule's best category.

    A patient's bar is the largest decrease (or smallest increase) from baseline over the follow-up scans: of
    the SPD for Lugano (CT and PET) and LYRIC, of RECIL's sum of longest diameters for RECIL. Its colour is
    the patient's best category by the panel's rule (:func:`best_categories`); the legend lists the
    categories present.

    Parameters
    ----------
    rows : sequence of ScanResponseRow
        The scans.

    Returns
    -------
    matplotlib.figure.Figure or None
        The figure, or None without an evaluable scan.
    """
    panels = []
    for rule, label in RULES:
        attr = "sld_change_baseline_pct" if rule == "recil" else "spd_change_baseline_pct"
        low: dict[int, float] = {}
        for r in rows:
            v = getattr(r, attr)
            if r.patient is not None and math.isfinite(v):
                low[r.patient] = min(low.get(r.patient, math.inf), v)
        panels.append((rule, label, low))
    if not any(low for *_, low in panels):
        return None
    fig = _new_figure((8.0, 5.6))
    axes = fig.subplots(2, 2, sharey=True)
    for ax, (rule, label, low) in zip(axes.flat, panels, strict=True):
        best = best_categories(rows, rule)
        order = sorted(low, key=lambda p: -low[p])
        cats = [best.get(p, "NE") for p in order]
        ax.bar(range(len(order)), [low[p] for p in order],
               color=[CATEGORY_COLOURS.get(c, GREY) for c in cats])
        for colour, text in _legend_groups(set(cats)):
            ax.bar([0], [0], color=colour, label=text, width=0)
        ref = -30 if rule == "recil" else -50
        ax.axhline(ref, color="black", linestyle="--", linewidth=0.8)
        ax.axhline(0, color="black", linewidth=0.5)
        ax.set_title(f"{label} ({'SLD' if rule == 'recil' else 'SPD'})", fontsize=9)
        ax.set_xticks([])
        ax.legend(frameon=False, fontsize=7, title="best response", title_fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("Best change from baseline (%)")
    for ax in axes[1, :]:
        ax.set_xlabel("Patients (ordered)")
    fig.tight_layout()
    built: Figure = fig
    return built


def _swimmer_figure(rows: Sequence[ScanResponseRow]) -> Figure | None:
    """Swimmer plot: one bar per patient to the last scan, a marker per scan coloured by its response.

    The marker is Lugano 2014's category of the scan (PET-based where PET was read, else CT-based); a
    LYRIC indeterminate response is drawn as a diamond, its confirmation as PD as a cross.

    Parameters
    ----------
    rows : sequence of ScanResponseRow
        The scans.

    Returns
    -------
    matplotlib.figure.Figure or None
        The figure, or None without scans.
    """
    scans: dict[int, list[ScanResponseRow]] = {}
    for r in rows:
        if r.patient is not None:
            scans.setdefault(r.patient, []).append(r)
    if not scans:
        return None
    order = sorted(scans, key=lambda p: max(r.day for r in scans[p]))
    fig = _new_figure((6.5, max(2.5, 0.12 * len(order) + 1.2)))
    ax = fig.subplots()
    seen: set[str] = set()
    for y, p in enumerate(order):
        ax.barh(y, max(r.day for r in scans[p]), color="#dddddd", height=0.6)
        for r in scans[p]:
            cat = r.lugano_pet if r.lugano_pet != "NE" else r.lugano_ct
            seen.add(cat)
            ax.plot(r.day, y, marker="o", markersize=3.5, color=CATEGORY_COLOURS.get(cat, GREY),
                    linestyle="none")
            if r.lyric.startswith("IR"):
                ax.plot(r.day, y + 0.35, marker="D", markersize=3, color=CATEGORY_COLOURS["IR1"],
                        linestyle="none")
            if r.lyric_ir_status == "confirmed":
                ax.plot(r.day, y + 0.35, marker="x", markersize=4, color="black", linestyle="none")
    for colour, text in _legend_groups(seen):
        ax.plot([], [], marker="o", linestyle="none", color=colour, label=text)
    if any(r.lyric.startswith("IR") for r in rows):
        ax.plot([], [], marker="D", linestyle="none", color=CATEGORY_COLOURS["IR1"], label="LYRIC IR")
    if any(r.lyric_ir_status == "confirmed" for r in rows):
        ax.plot([], [], marker="x", linestyle="none", color="black", label="IR confirmed as PD")
    ax.set_yticks([])
    ax.set_xlabel("Days from the index date")
    ax.set_ylabel("Patients")
    ax.legend(frameon=False, fontsize=7, ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    built: Figure = fig
    return built


def _incidence_figure(failure: LesionFailureSummary) -> Figure | None:
    """Cumulative incidence of local failure per lesion (death competing), a step curve in months.

    Parameters
    ----------
    failure : LesionFailureSummary
        Lesion-level local failure (its incidence curve's steps).

    Returns
    -------
    matplotlib.figure.Figure or None
        The figure, or None without a curve.
    """
    times, est = list(failure.curve_months), list(failure.curve_estimate)
    if not times:
        return None
    end = failure.curve_last_months if math.isfinite(failure.curve_last_months) else times[-1]
    fig = _new_figure((6.0, 3.5))
    ax = fig.subplots()
    ax.step([0.0, *times, max(end, times[-1])], [0.0, *est, est[-1]], where="post",
            color=OKABE_ITO["vermillion"])
    ax.set_xlabel("Months from the index date")
    ax.set_ylabel("Cumulative incidence of local failure")
    ax.set_ylim(0, 1)
    built: Figure = fig
    return built


#: File stems of the section's figures in the report's ``figures/`` folder, in the section's order.
RESPONSE_FIGURES: tuple[str, ...] = ("response_spider", "response_waterfall", "response_swimmer",
                                     "lesion_failure_incidence")


def _figure_specs(res: ResponseOverTime) -> list[tuple[FigureSpec, Callable[[], Figure | None]]]:
    """Each figure's texts (what it shows; how it was made) and the function that draws it."""
    rows, lf = res.responses, res.lesion_failure
    made = f"Drawn by {_software()} from the analysis' typed results (written to results.json as"
    return [
        (FigureSpec(
            "response_spider", "Change of the target SPD from baseline over time",
            "Change of the target SPD (sum of the products of the perpendicular diameters of up to six "
            "Lugano targets) from baseline over time, one line per patient, coloured by the patient's best "
            "Lugano 2014 CT category; dashed: -50% (Lugano PR), dotted: +50% (LYRIC IR1 within 12 weeks).",
            "Spider plot: change of the sum of the products of the diameters from baseline by day, one line "
            "per patient", f"{made} 'responses'). {_rules_text(res)}"),
         lambda: _spider_figure(rows)),
        (FigureSpec(
            "response_waterfall", "Best response per patient by each rule",
            "Best response per patient, one panel per rule: the bar is the largest decrease (or smallest "
            "increase) from baseline over the follow-up scans (SPD for Lugano and LYRIC, RECIL's sum of the "
            "longest diameters of up to three targets for RECIL), its colour the patient's best category by "
            "that rule (CR > PR > MR > SD > IR > PD, unconfirmed; Okabe-Ito palette); dashed: -50% (Lugano "
            "PR) or -30% (RECIL PR).",
            "Waterfall plots of each patient's best change from baseline, one panel per rule, bars coloured "
            "by the patient's best category by that rule", f"{made} 'responses'). {_rules_text(res)}"),
         lambda: _waterfall_figure(rows)),
        (FigureSpec(
            "response_swimmer", "Follow-up and response at each scan",
            "Follow-up per patient to the last scan; circles: Lugano 2014 category of each scan (PET-based "
            "where PET was read, else CT-based); diamonds: LYRIC indeterminate response; crosses: an IR "
            "confirmed as PD at the next scan.",
            "Swimmer plot: follow-up of each patient with the response at each scan",
            f"{made} 'responses'). {_rules_text(res)}"),
         lambda: _swimmer_figure(rows)),
        (FigureSpec(
            "lesion_failure_incidence", "Cumulative incidence of local failure per lesion",
            "Cumulative incidence of local failure per baseline lesion, death as the competing event; the "
            f"event is the first scan meeting lesion progression ({lf.rule} rule).",
            "Cumulative incidence of local failure per lesion against months from the index date",
            f"Aalen-Johansen estimator, equal to R cmprsk::cuminc. {made} 'lesion_failure')."),
         lambda: _incidence_figure(lf)),
    ]


def render_response_figures(res: ResponseOverTime, *, png: bool = False) -> list[RenderedFigure]:
    """Draw the section's figures in the report's style and render each (SVG, and a 300-dpi PNG with ``png``).

    Parameters
    ----------
    res : ResponseOverTime
        The analysis' typed response results.
    png : bool
        Also render the PNG.

    Returns
    -------
    list of RenderedFigure
        The figures that have something to show (:data:`RESPONSE_FIGURES` order), reproducible bytes.
    """
    out = []
    with rc_context():
        for spec, draw in _figure_specs(res):
            fig = draw()
            if fig is None:
                continue
            out.append(render_figure(BuiltFigure(spec, fig), png=png))
            fig.clear()
    return out


def render_response_section_figures(statistics: StudyResults | None, *,
                                    png: bool = False) -> list[RenderedFigure]:
    """The response section's figures, drawn once: what the report writes and the section embeds.

    Parameters
    ----------
    statistics : StudyResults or None
        The analysis' typed results (no figures without their ``response`` part).
    png : bool
        Also render the 300-dpi PNG of each.

    Returns
    -------
    list of RenderedFigure
        The figures (none without response results).
    """
    res = statistics.response if statistics is not None else None
    if res is None or not res.responses:
        return []
    return render_response_figures(res, png=png)


def write_response_figures(folder: str | os.PathLike[str], statistics: StudyResults | None, *,
                           png: bool = False, figures: Sequence[RenderedFigure] | None = None) -> list[Path]:
    """Write the response section's figures into a report's ``figures/`` folder (SVG; PNG with ``png``).

    Parameters
    ----------
    folder : path-like
        The report's figures folder.
    statistics : StudyResults or None
        The analysis' typed results (nothing is written without their ``response`` part).
    png : bool
        Also write the 300-dpi PNG files.
    figures : sequence of RenderedFigure, optional
        The figures already drawn (:func:`render_response_section_figures`); default: drawn here.

    Returns
    -------
    list of pathlib.Path
        The files written (none without response results).
    """
    from pofa.atomic import write_bytes

    rendered = figures if figures is not None else render_response_section_figures(statistics, png=png)
    paths = []
    for rf in rendered:
        for ext, data in (("svg", rf.svg), ("png", rf.png)):
            if data:
                path = Path(folder) / f"{rf.spec.name}.{ext}"
                write_bytes(path, data)
                paths.append(path)
    return paths


def _img(rf: RenderedFigure) -> str:
    src = "data:image/svg+xml;base64," + base64.b64encode(rf.svg).decode("ascii")
    spec = rf.spec
    return (f'<figure class="fig" id="fig-{spec.name}"><img src="{src}" alt="{html.escape(spec.alt)}">'
            f"<figcaption>{html.escape(spec.caption)} <span class=\"how\">{html.escape(spec.how)}</span>"
            "</figcaption></figure>")


def _rules_text(res: ResponseOverTime) -> str:
    return " ".join((
        "Lugano 2014 CT: PR = SPD of up to six targets down >= 50% from baseline, CR = target nodes LDi <=",
        "1.5 cm and no extranodal target left, PD = a lesion with LDi > 1.5 cm, PPD up >= 50% from its nadir",
        "and LDi or SDi up >= 0.5 cm (nadir LDi <= 2 cm) or >= 1.0 cm, or new lesions; Lugano 2014 PET:",
        "Deauville 1-3 = CMR, 4-5 = PMR / NMR / PMD by SUVmax against baseline (a change of at least",
        f"{res.uptake_margin_pct:g}%, a pofa setting); LYRIC: IR1 = SPD up >= 50% from nadir by day 84",
        "without clinical deterioration, IR2 = SPD up < 50% with new lesions or a lesion's PPD up >= 50%,",
        "IR3 = uptake up without growth; an IR is confirmed as PD at the next scan by SPD up >= 10% from the",
        "IR scan or new lesions (IR3: growth or new lesions), else resolved; RECIL 2017: sum of the longest",
        "diameters of up to three targets, PR = down >= 30%, MR = down 10-29%, PD = up > 20% from nadir or a",
        f"new lesion. Lesions too small to measure count as {res.too_small_mm:g} x {res.too_small_mm:g} mm."))


def _scan_cells(i: int, r: ScanResponseRow, *, spd: bool) -> list[str]:
    """The HTML cells of scan ``i``: patient, day, (SPD change,) the four categories, each number and category
    tied to its place in results.json ``responses``."""
    path = f"responses[{i}]"
    cells = [html.escape(str(r.patient)), _v(fmt_count(r.day), path + ".day", r.day)]
    if spd:
        cells.append(_v(fmt_number(r.spd_change_baseline_pct, 0), path + ".spd_change_baseline_pct",
                        r.spd_change_baseline_pct))
    for rule, _ in RULES:
        cell = _v(getattr(r, rule), f"{path}.{rule}", getattr(r, rule))
        if rule == "lyric" and r.lyric_ir_status:
            cell += " (" + _v(r.lyric_ir_status, path + ".lyric_ir_status", r.lyric_ir_status) + ")"
        cells.append(cell)
    return cells


def response_section(res: ResponseOverTime | None, *, figures: Sequence[RenderedFigure] | None = None) -> str:
    """The response section as HTML, or ``""`` without response results.

    Parameters
    ----------
    res : ResponseOverTime or None
        The analysis' typed response results.
    figures : sequence of RenderedFigure, optional
        The section's figures already drawn (:func:`render_response_section_figures`, as the report writes
        them to ``figures/``): their SVG is embedded. Default: drawn here.

    Returns
    -------
    str
        The section: the per-scan response table (all four rule sets side by side, disagreements marked),
        the spider plot, the waterfalls per rule, the swimmer plot, the lesion-level cumulative incidence and
        the clustered Cox model, each figure saying how it was made.
    """
    if res is None or not res.responses:
        return ""
    rows = res.responses
    parts = ['<section id="response">', "<h2>Response over time</h2>",
             "<p>Response of every follow-up scan by Lugano 2014 (CT and PET), LYRIC and RECIL 2017, side by "
             "side. Rows marked &#9888; are scans where the rules disagree (categories read as CR, PR, SD or "
             "PD; an indeterminate response reads as PD; NE is not compared).</p>",
             # every scan in a collapsed block (on screen one click away; a printed report leaves it out,
             # which keeps the demo's PDF short), the scans where the rules disagree shown open below it
             f"<details><summary>Every scan ({len(rows)} rows)</summary>",
             "<table><thead><tr><th>Patient</th><th>Day</th><th>SPD change from baseline (%)</th>"
             "<th>Lugano CT</th><th>Lugano PET</th><th>LYRIC</th><th>RECIL</th><th></th></tr></thead><tbody>"]
    for i, r in enumerate(rows):
        flag = "&#9888;" if disagree(r) else ""
        parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in _scan_cells(i, r, spd=True))
                     + f"<td>{flag}</td></tr>")
    parts.append("</tbody></table></details>")
    split = [r for r in rows if disagree(r)]
    parts.append(f"<p>The rules disagree at {len(split)} of {len(rows)} scans"
                 + (":</p>" if split else ".</p>"))
    if split:
        # a long list folds away like the full table (open on screen with a click; left out in print)
        parts.append("<details open>" if len(split) <= 12 else
                     f"<details><summary>The {len(split)} scans where the rules disagree</summary>")
        parts.append("<table><thead><tr><th>Patient</th><th>Day</th><th>Lugano CT</th><th>Lugano PET</th>"
                     "<th>LYRIC</th><th>RECIL</th></tr></thead><tbody>")
        for i, r in enumerate(rows):
            if disagree(r):
                cells = _scan_cells(i, r, spd=False)
                parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        parts.append("</tbody></table></details>")
    # the figures two by two (half a page each in print)
    parts.append('<style>#response .fig-grid{display:grid;grid-template-columns:1fr 1fr;gap:.5rem}'
                 "#response .fig-grid figure.fig img{width:100%;max-height:none}</style>"
                 '<div class="fig-grid">')
    parts.extend(_img(rf) for rf in (figures if figures is not None else render_response_figures(res)))
    lf = res.lesion_failure
    parts.append("</div>")
    n = {k: _v(fmt_count(getattr(lf, k)), f"lesion_failure.{k}", getattr(lf, k))
         for k in ("n_local_failures", "n_lesions", "n_patients", "n_deaths")}
    parts.append(f"<p>Lesion-level local failure ({html.escape(lf.rule)} rule): {n['n_local_failures']} "
                 f"of {n['n_lesions']} lesions in {n['n_patients']} patients; {n['n_deaths']} ended by death "
                 "(the competing event).</p>")
    for note in lf.notes:
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    if lf.cumulative_incidence:
        parts.append("<table><thead><tr><th>Months</th><th>Cumulative incidence of local failure "
                     "(95% CI)</th></tr></thead><tbody>")
        for k, (m, e) in enumerate(lf.cumulative_incidence):
            path = f"lesion_failure.cumulative_incidence[{k}]"
            if math.isfinite(e.estimate):
                value = (f"{_v(fmt_prob(e.estimate), path + '.estimate', e.estimate)} "
                         f"({_v(fmt_prob(e.ci_low), path + '.ci_low', e.ci_low)}{DASH}"
                         f"{_v(fmt_prob(e.ci_high), path + '.ci_high', e.ci_high)})")
            else:
                value = _v(fmt_prob(e.estimate), path + ".estimate", e.estimate) + (
                    f" ({html.escape(e.reason)})" if e.reason else "")
            parts.append(f"<tr><td>{_v(fmt_months(m), path + '.months', m)}</td><td>{value}</td></tr>")
        parts.append("</tbody></table>")
        parts.append('<p class="note">Intervals as R cmprsk::cuminc gives them, treating lesions as '
                     "independent; lesions of one patient are correlated, so they are narrower than they "
                     "should be (the Cox model below uses a variance clustered on the patient).</p>")
    if res.lesion_cox:
        parts.append("<h3>Lesion risk factors for local failure (Cox, patients as clusters)</h3>"
                     "<table><thead><tr><th>Term</th><th>HR (95% CI)</th><th>p</th></tr></thead><tbody>")
        for k, c in enumerate(res.lesion_cox):
            path = f"lesion_cox[{k}]"
            parts.append(f"<tr><td>{_v(c.term, path + '.term', c.term)}</td><td>"
                         f"{_v(fmt_ratio(c.hr), path + '.hr', c.hr)} ("
                         f"{_v(fmt_ratio(c.ci_low), path + '.ci_low', c.ci_low)}{DASH}"
                         f"{_v(fmt_ratio(c.ci_high), path + '.ci_high', c.ci_high)})</td>"
                         f"<td>{_v(fmt_p(c.p), path + '.p', c.p)}</td></tr>")
        parts.append("</tbody></table>")
    parts.append('<p class="methods">Lugano 2014 (Cheson et al., J Clin Oncol 2014), LYRIC (Cheson et al., '
                 "Blood 2016) and RECIL 2017 (Younes et al., Ann Oncol 2017) were applied lesion by lesion "
                 f"and scan by scan (docs/response.md). {html.escape(_rules_text(res))} Lesion-level time "
                 "to local failure ran from the index date to the first scan meeting lesion progression; the "
                 "Cox model used a robust variance clustered on the patient (Lin and Wei 1989; R coxph with "
                 "cluster()).</p>")
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def insert_response_section(page: str, statistics: StudyResults | None, *,
                            figures: Sequence[RenderedFigure] | None = None) -> str:
    """``page`` with the response section inserted before its methods section (or before ``</main>``).

    Parameters
    ----------
    page : str
        The report's HTML.
    statistics : StudyResults or None
        The analysis' typed results (their ``response`` part is rendered).
    figures : sequence of RenderedFigure, optional
        The section's figures already drawn, as for :func:`response_section`.

    Returns
    -------
    str
        The page, unchanged when there is nothing to add.
    """
    frag = response_section(statistics.response if statistics is not None else None, figures=figures)
    if not frag:
        return page
    for anchor in ('<section id="methods"', "</main>", "</body>"):
        i = page.find(anchor)
        if i >= 0:
            return page[:i] + frag + "\n" + page[i:]
    return page + frag
