"""The report's response section: responses scan by scan by every rule, spider plot and waterfall.

Rendered from results.json's ``responses``, ``lesion_failure`` and ``lesion_cox`` entries (docs/response.md)
as one HTML ``<section id="response">`` with its figures embedded (PNG, base64), inserted before the methods
section by :func:`insert_response_section`. Patients appear as study sequence numbers, as in results.json.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from pofa.report.style import GREY, OKABE_ITO

__all__ = ["incidence_png", "insert_response_section", "response_section", "spider_png", "swimmer_png",
           "waterfall_png"]

#: The family of each category, to mark scans where the rules disagree (CMR reads as CR, MR as SD...).
_FAMILY = {"CR": "CR", "CMR": "CR", "PR": "PR", "PMR": "PR", "MR": "SD", "SD": "SD", "NMR": "SD",
           "PD": "PD", "PMD": "PD", "IR1": "PD", "IR2": "PD", "IR3": "PD"}


def _num(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{float(x):.{digits}f}"


def _p(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return "< 0.001" if float(x) < 0.001 else f"{float(x):.3f}"


def disagree(entry: Mapping[str, Any]) -> bool:
    """Whether the evaluable categories of one scan fall in different families (CR / PR / SD / PD).

    Parameters
    ----------
    entry : mapping
        One ``responses`` entry.

    Returns
    -------
    bool
        ``True`` when at least two rules' categories read as different families.
    """
    fams = {_FAMILY[str(entry[k])] for k in ("lugano_ct", "lugano_pet", "lyric", "recil")
            if str(entry.get(k)) in _FAMILY}
    return len(fams) > 1


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _spd_changes(responses: Sequence[Mapping[str, Any]]) -> list[tuple[int, float, float]]:
    """(patient, day, % change of SPD from baseline) of every scan with a finite change."""
    out = []
    for e in responses:
        ch = e.get("spd_change_baseline_pct")
        if ch is not None and math.isfinite(float(ch)):
            out.append((int(e["patient"]), float(e["day"]), float(ch)))
    return out


def spider_png(responses: Sequence[Mapping[str, Any]]) -> bytes | None:
    """Spider plot: change of the target SPD from baseline (%) against days, one line per patient.

    Parameters
    ----------
    responses : sequence of mapping
        The ``responses`` entries of results.json (one per patient and follow-up scan).

    Returns
    -------
    bytes or None
        PNG data, or None without an evaluable scan.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines: dict[int, list[tuple[float, float]]] = {}
    for patient, day, ch in _spd_changes(responses):
        lines.setdefault(patient, [(0.0, 0.0)]).append((day, ch))
    if not lines:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    for pts in lines.values():
        xs, ys = zip(*sorted(pts), strict=True)
        ax.plot(xs, ys, marker="o", markersize=3, linewidth=1, color=OKABE_ITO["blue"], alpha=0.7)
    ax.axhline(-50, color=OKABE_ITO["bluish green"], linestyle="--", linewidth=0.8, label="PR (SPD -50%)")
    ax.axhline(50, color=OKABE_ITO["vermillion"], linestyle="--", linewidth=0.8,
               label="SPD +50% (LYRIC IR1)")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xlabel("Days from CAR T infusion")
    ax.set_ylabel("Change of SPD from baseline (%)")
    ax.legend(frameon=False, fontsize=8)
    return _png(fig)


def waterfall_png(responses: Sequence[Mapping[str, Any]]) -> bytes | None:
    """Waterfall of best response: each patient's largest decrease (or smallest increase) of the SPD.

    Parameters
    ----------
    responses : sequence of mapping
        The ``responses`` entries of results.json (one per patient and follow-up scan).

    Returns
    -------
    bytes or None
        PNG data, or None without an evaluable scan.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best: dict[int, float] = {}
    for patient, _, ch in _spd_changes(responses):
        best[patient] = min(best.get(patient, math.inf), ch)
    if not best:
        return None
    vals = sorted(best.values(), reverse=True)
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    colours = [OKABE_ITO["vermillion"] if v >= 0 else
               (OKABE_ITO["bluish green"] if v <= -50 else OKABE_ITO["orange"])
               for v in vals]
    ax.bar(range(len(vals)), vals, color=colours)
    ax.axhline(-50, color="black", linestyle="--", linewidth=0.8)
    ax.set_xticks([])
    ax.set_xlabel("Patients (ordered)")
    ax.set_ylabel("Best change of SPD (%)")
    return _png(fig)


#: Marker colours of the swimmer plot, by the family of Lugano's overall category.
_COLOURS = {"CR": OKABE_ITO["bluish green"], "PR": OKABE_ITO["sky blue"], "SD": OKABE_ITO["orange"],
            "PD": OKABE_ITO["vermillion"]}


def swimmer_png(responses: Sequence[Mapping[str, Any]]) -> bytes | None:
    """Swimmer plot: one bar per patient to the last scan, a marker per scan coloured by Lugano's response.

    The colour is the family of the PET-based category where PET was read, else the CT-based one.

    Parameters
    ----------
    responses : sequence of mapping
        The ``responses`` entries of results.json (one per patient and follow-up scan).

    Returns
    -------
    bytes or None
        PNG data, or None without responses.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scans: dict[int, list[tuple[float, str]]] = {}
    for e in responses:
        cat = str(e.get("lugano_pet")) if str(e.get("lugano_pet")) in _FAMILY else str(e.get("lugano_ct"))
        scans.setdefault(int(e["patient"]), []).append((float(e["day"]), _FAMILY.get(cat, "")))
    if not scans:
        return None
    order = sorted(scans, key=lambda p: max(d for d, _ in scans[p]))
    fig, ax = plt.subplots(figsize=(6.5, max(2.5, 0.12 * len(order) + 1.0)))
    for y, p in enumerate(order):
        last = max(d for d, _ in scans[p])
        ax.barh(y, last, color="#dddddd", height=0.6)
        for d, fam in scans[p]:
            ax.plot(d, y, marker="o", markersize=3.5, color=_COLOURS.get(fam, GREY), linestyle="none")
    for fam, colour in _COLOURS.items():
        ax.plot([], [], marker="o", linestyle="none", color=colour, label=fam)
    ax.set_yticks([])
    ax.set_xlabel("Days from CAR T infusion")
    ax.set_ylabel("Patients")
    ax.legend(frameon=False, fontsize=8, ncol=4, loc="lower right")
    return _png(fig)


def incidence_png(lesion_failure: Mapping[str, Any]) -> bytes | None:
    """Cumulative incidence of local failure per lesion (death competing), a step curve in months.

    Parameters
    ----------
    lesion_failure : mapping
        The ``lesion_failure`` object of results.json (its ``cumulative_incidence_curve``).

    Returns
    -------
    bytes or None
        PNG data, or None without a curve.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = lesion_failure.get("cumulative_incidence_curve") or {}
    times = [float(t) for t in curve.get("months") or []]
    est = [float(e) for e in curve.get("estimate") or []]
    if not times:
        return None
    end = float(curve.get("last_months") or times[-1])
    fig, ax = plt.subplots(figsize=(6.0, 3.5))
    ax.step([0.0, *times, max(end, times[-1])], [0.0, *est, est[-1]], where="post",
            color=OKABE_ITO["vermillion"])
    ax.set_xlabel("Months from CAR T infusion")
    ax.set_ylabel("Cumulative incidence of local failure")
    ax.set_ylim(0, 1)
    return _png(fig)


def _img(png: bytes | None, ident: str, alt: str, caption: str) -> str:
    if png is None:
        return ""
    src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return (f'<figure class="fig" id="{ident}"><img src="{src}" alt="{html.escape(alt)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def response_section(results: Mapping[str, Any]) -> str:
    """The response section as HTML, or ``""`` when results.json has no ``responses``.

    Parameters
    ----------
    results : mapping
        The content of results.json.

    Returns
    -------
    str
        The section: the per-scan response table and the spider, waterfall, swimmer and incidence plots.
    """
    responses = results.get("responses")
    if not responses:
        return ""
    parts = ['<section id="response">', "<h2>Response over time</h2>",
             "<p>Response of every follow-up scan by Lugano 2014 (CT and PET), LYRIC and RECIL 2017. "
             "Rows marked &#9888; are scans where the rules disagree (categories read as CR, PR, SD or PD; "
             "an indeterminate response reads as PD).</p>",
             # every scan in a collapsed block (on screen one click away; a printed report leaves it out,
             # which keeps the demo's PDF short), the scans where the rules disagree shown open below it
             f"<details><summary>Every scan ({len(responses)} rows)</summary>",
             "<table><thead><tr><th>Patient</th><th>Day</th><th>SPD change from baseline (%)</th>"
             "<th>Lugano CT</th><th>Lugano PET</th><th>LYRIC</th><th>RECIL</th><th></th></tr></thead><tbody>"]
    for e in responses:
        lyric = str(e.get("lyric"))
        if e.get("lyric_ir_status"):
            lyric += f" ({e['lyric_ir_status']})"
        flag = "&#9888;" if disagree(e) else ""
        cells = [str(e.get("patient")), str(e.get("day")), _num(e.get("spd_change_baseline_pct"), 0),
                 str(e.get("lugano_ct")), str(e.get("lugano_pet")), lyric, str(e.get("recil"))]
        parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + f"<td>{flag}</td></tr>")
    parts.append("</tbody></table></details>")
    split = [e for e in responses if disagree(e)]
    parts.append(f"<p>The rules disagree at {len(split)} of {len(responses)} scans"
                 + (":</p>" if split else ".</p>"))
    if split:
        # a long list folds away like the full table (open on screen with a click; left out in print)
        parts.append("<details open>" if len(split) <= 12 else
                     f"<details><summary>The {len(split)} scans where the rules disagree</summary>")
        parts.append("<table><thead><tr><th>Patient</th><th>Day</th><th>Lugano CT</th><th>Lugano PET</th>"
                     "<th>LYRIC</th><th>RECIL</th></tr></thead><tbody>")
        for e in split:
            cells = [str(e.get("patient")), str(e.get("day")), str(e.get("lugano_ct")),
                     str(e.get("lugano_pet")), str(e.get("lyric")), str(e.get("recil"))]
            parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        parts.append("</tbody></table></details>")
    # the four figures two by two (half a page each in print)
    parts.append('<style>#response .fig-grid{display:grid;grid-template-columns:1fr 1fr;gap:.5rem}'
                 "#response .fig-grid figure.fig img{width:100%;max-height:none}</style>"
                 '<div class="fig-grid">')
    parts.append(_img(spider_png(responses), "fig-spider",
                      "Spider plot: change of the sum of the products of the diameters from baseline by day",
                      "Change of the target SPD from baseline over time, one line per patient."))
    parts.append(_img(waterfall_png(responses), "fig-waterfall",
                      "Waterfall plot of each patient's best change of SPD",
                      "Best change of the target SPD from baseline per patient (bluish green: >= 50% "
                      "decrease; vermillion: growth)."))
    parts.append(_img(swimmer_png(responses), "fig-response-swimmer",
                      "Swimmer plot: follow-up of each patient with the response at each scan",
                      "Follow-up per patient; markers: Lugano response at each scan (PET-based where read)."))
    lf = results.get("lesion_failure") or {}
    parts.append(_img(incidence_png(lf), "fig-lesion-cif",
                      "Cumulative incidence of local failure per lesion",
                      "Cumulative incidence of local failure per lesion, death as a competing event."))
    parts.append("</div>")
    if lf:
        parts.append(f"<p>Lesion-level local failure ({html.escape(str(lf.get('rule')))} rule): "
                     f"{lf.get('n_local_failures')} of {lf.get('n_lesions')} lesions in "
                     f"{lf.get('n_patients')} patients; {lf.get('n_deaths')} ended by death (the "
                     "competing event).</p>")
        rows = lf.get("cumulative_incidence") or []
        if rows:
            parts.append("<table><thead><tr><th>Months</th><th>Cumulative incidence of local failure "
                         "(95% CI)</th></tr></thead><tbody>")
            for r in rows:
                parts.append(f"<tr><td>{_num(r['months'], 0)}</td><td>{_num(r.get('estimate'))} "
                             f"({_num(r.get('ci_low'))}-{_num(r.get('ci_high'))})</td></tr>")
            parts.append("</tbody></table>")
    cox = results.get("lesion_cox") or []
    if cox:
        parts.append("<h3>Lesion risk factors for local failure (Cox, patients as clusters)</h3>"
                     "<table><thead><tr><th>Term</th><th>HR (95% CI)</th><th>p</th></tr></thead><tbody>")
        for c in cox:
            parts.append(f"<tr><td>{html.escape(str(c['term']))}</td><td>{_num(c.get('hr'))} "
                         f"({_num(c.get('ci_low'))}-{_num(c.get('ci_high'))})</td><td>{html.escape(_p(c.get('p')))}</td></tr>")
        parts.append("</tbody></table>")
    parts.append('<p class="methods">Lugano 2014 (Cheson et al., J Clin Oncol 2014), LYRIC (Cheson et al., '
                 "Blood 2016) and RECIL 2017 (Younes et al., Ann Oncol 2017) were applied lesion by lesion "
                 "and scan by scan (docs/response.md). Lesion-level time to local failure ran from the "
                 "infusion to the first scan meeting lesion progression; the Cox model used a robust "
                 "variance clustered on the patient (Lin and Wei 1989; R coxph with cluster()).</p>")
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def insert_response_section(page: str, results: Mapping[str, Any]) -> str:
    """``page`` with the response section inserted before its methods section (or before ``</main>``).

    Parameters
    ----------
    page : str
        The report's HTML.
    results : mapping
        The content of results.json.

    Returns
    -------
    str
        The page, unchanged when there is nothing to add.
    """
    frag = response_section(results)
    if not frag:
        return page
    for anchor in ('<section id="methods"', "</main>", "</body>"):
        i = page.find(anchor)
        if i >= 0:
            return page[:i] + frag + "\n" + page[i:]
    return page + frag
