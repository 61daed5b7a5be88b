"""The report's radiotherapy section: irradiated lesions and doses, failures by field class, dose-response.

Rendered from the analysis' typed results (:class:`pofa.stats.results.RadiotherapyResults`, the part
``radiotherapy`` of :class:`pofa.stats.results.StudyResults`), from which results.json's ``radiotherapy``
entry is written: nothing is estimated here. One HTML ``<section id="radiotherapy">`` with its dose-response
figure embedded (SVG, base64), inserted before the methods section by :func:`insert_radiotherapy_section`.
Every text taken from the study is escaped. The report draws the figure once
(:func:`render_dose_response_figure`), writes it into its ``figures/`` folder as ``dose_response.svg`` (and,
with ``png``, ``dose_response.png`` at 300 dpi), like the report's other figures, and embeds the same SVG.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

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
from pofa.report.style import OKABE_ITO
from pofa.settings import Settings
from pofa.stats.results import OddsRatio, RadiotherapyResults, StudyResults

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

    from pofa.report.plots.base import RenderedFigure

__all__ = ["DOSE_RESPONSE_FIGURE", "dose_response_png", "insert_radiotherapy_section", "radiotherapy_section",
           "render_dose_response_figure", "write_dose_response_figure"]

#: File stem of the dose-response figure in the report's ``figures/`` folder.
DOSE_RESPONSE_FIGURE = "dose_response"

_DOSE_RESPONSE_ALT = ("Local failure of irradiated lesions against EQD2: lesions, observed rate per dose "
                      "level with exact 95% CI, and the fitted logistic curve")


def _v(x: Any, key: str, fmt: Callable[[Any], str]) -> str:
    """A number of ``radiotherapy`` (``key`` below it) shown with ``fmt``, tied to its results.json path."""
    return result_span(fmt(x), f"radiotherapy.{key}", x)


def _pct(num: int, den: int, num_key: str, den_key: str) -> str:
    share = f" ({100.0 * num / den:.1f}%)" if den else ""
    return f"{_v(num, num_key, fmt_count)}/{_v(den, den_key, fmt_count)}{share}"


def dose_response_png(rt: RadiotherapyResults, lesions: pd.DataFrame | None,
                      alpha_beta_gy: float) -> bytes | None:
    """The dose-response figure: local failure of irradiated lesions against EQD2, as a 300-dpi PNG.

    Each lesion is a tick at 0 (controlled) or 1 (failed); the observed failure rate at each EQD2 with its
    exact 95% CI and the fitted logistic curve (R ``glm``) are drawn as the statistics computed them
    (``dose_levels`` and ``dose_curve`` of the ``radiotherapy`` results): nothing is estimated here. The
    PNG of the drawing the report's SVG is made of (:func:`render_dose_response_figure`).

    Parameters
    ----------
    rt : RadiotherapyResults
        The analysis' radiotherapy results.
    lesions : pandas.DataFrame or None
        Lesions with ``bridging_rt``, ``rt_dose_gy``, ``rt_fractions`` and ``local_failure`` (the ticks).
    alpha_beta_gy : float
        The alpha/beta ratio (Gy) of the EQD2 conversion.

    Returns
    -------
    bytes or None
        PNG data, or None when fewer than two distinct EQD2 values are known.
    """
    rendered = _render_dose_response(rt, lesions, alpha_beta_gy, png=True)
    return None if rendered is None else rendered.png


def render_dose_response_figure(
    statistics: StudyResults | None, lesions: pd.DataFrame | None, settings: Settings | None = None, *,
    png: bool = False,
) -> RenderedFigure | None:
    """Draw the dose-response figure once and render it: SVG, and with ``png`` the 300-dpi PNG of it.

    Rendered like the report's other figures (:func:`pofa.report.plots.render_figure`: the report's style,
    reproducible bytes). The report writes it to ``figures/`` and embeds its SVG in the radiotherapy section
    (:func:`insert_radiotherapy_section` with ``figure``).

    Parameters
    ----------
    statistics : StudyResults or None
        The analysis' typed results (no figure without their ``radiotherapy`` part).
    lesions : pandas.DataFrame or None
        Classified lesions (as for :func:`dose_response_png`).
    settings : Settings, optional
        For alpha/beta.
    png : bool
        Also render the PNG.

    Returns
    -------
    RenderedFigure or None
        The rendered figure, or None when there is no figure (fewer than two EQD2 levels).
    """
    rt = statistics.radiotherapy if statistics is not None else None
    if rt is None:
        return None
    return _render_dose_response(rt, lesions, (settings or Settings()).radiotherapy.alpha_beta_gy, png=png)


def _render_dose_response(rt: RadiotherapyResults, lesions: pd.DataFrame | None, ab: float, *,
                          png: bool) -> RenderedFigure | None:
    """The one drawing of the dose-response figure, rendered as the report's figures are."""
    from pofa.report.plots import BuiltFigure, FigureSpec, rc_context, render_figure

    with rc_context():
        fig = _dose_response_figure(rt, lesions, ab)
        if fig is None:
            return None
        spec = FigureSpec(
            DOSE_RESPONSE_FIGURE, "Local failure of irradiated lesions by EQD2",
            "Local failure of irradiated lesions by EQD2: each lesion (0 controlled, 1 failed), the observed "
            "rate per dose level with its exact 95% CI, and the fitted logistic curve.",
            _DOSE_RESPONSE_ALT,
            f"EQD2 by the linear-quadratic model with alpha/beta {ab:g} Gy; Clopper-Pearson intervals "
            "(binom.test); logistic regression (glm, binomial).")
        rendered = render_figure(BuiltFigure(spec, fig), png=png)
        fig.clear()
        return rendered


def write_dose_response_figure(folder: str | os.PathLike[str], statistics: StudyResults | None,
                               lesions: pd.DataFrame | None, settings: Settings | None = None, *,
                               png: bool = False) -> list[Path]:
    """Write the dose-response figure into a report's ``figures/`` folder (SVG; with ``png`` a 300-dpi PNG).

    Drawn once (:func:`render_dose_response_figure`) and written atomically.

    Parameters
    ----------
    folder : path-like
        The report's figures folder.
    statistics : StudyResults or None
        The analysis' typed results (nothing is written without their ``radiotherapy`` part).
    lesions : pandas.DataFrame or None
        Classified lesions (as for :func:`dose_response_png`).
    settings : Settings, optional
        For alpha/beta.
    png : bool
        Also write the PNG.

    Returns
    -------
    list of pathlib.Path
        The files written (SVG, then PNG), or none when there is no figure (fewer than two EQD2 levels).
    """
    from pofa.atomic import write_bytes

    rendered = render_dose_response_figure(statistics, lesions, settings, png=png)
    if rendered is None:
        return []
    paths = []
    for ext, data in (("svg", rendered.svg), ("png", rendered.png)):
        if data:
            path = Path(folder) / f"{DOSE_RESPONSE_FIGURE}.{ext}"
            write_bytes(path, data)
            paths.append(path)
    return paths


def _dose_response_figure(rt: RadiotherapyResults, lesions: pd.DataFrame | None,
                          alpha_beta_gy: float) -> Figure | None:
    """The dose-response figure (a matplotlib Figure), or None with fewer than two EQD2 levels.

    The rates and the curve are the statistics' (``dose_levels``, ``dose_curve``); the lesions give the ticks.
    """
    levels = list(rt.dose_levels)
    if len(levels) < 2:
        return None
    from matplotlib.figure import Figure  # the object API: no pyplot state, the user's backend untouched

    from pofa.rt.fractionation import eqd2

    fig = Figure(figsize=(5.0, 3.4), dpi=150)
    ax = fig.subplots()
    need = {"bridging_rt", "rt_dose_gy", "rt_fractions", "local_failure"}
    if lesions is not None and need <= set(lesions.columns):
        df = lesions[lesions["bridging_rt"].fillna(False).astype(bool) & lesions["local_failure"].notna()
                     & lesions["rt_dose_gy"].notna() & lesions["rt_fractions"].notna()]
        x = eqd2(df["rt_dose_gy"].to_numpy(float), df["rt_fractions"].to_numpy(float), alpha_beta_gy)
        y = df["local_failure"].astype(int).to_numpy(float)
        rng = np.random.default_rng(0)
        ax.scatter(x, y + rng.uniform(-0.03, 0.03, y.size), s=8, color="0.55", lw=0,
                   label="lesions (0 controlled, 1 failed)")
    for lvl in levels:
        r = lvl.rate
        ax.errorbar([lvl.eqd2_gy], [r.estimate], yerr=[[r.estimate - r.ci_low], [r.ci_high - r.estimate]],
                    fmt="o", color=OKABE_ITO["blue"], ms=4, capsize=2, lw=1)
    curve = rt.dose_curve
    if curve is not None:
        ax.plot(curve.eqd2_gy, curve.probability, color=OKABE_ITO["vermillion"], lw=1.5,
                label="logistic fit")
    ax.set_xlabel(f"EQD2 (Gy, alpha/beta {alpha_beta_gy:g} Gy)")
    ax.set_ylabel("local failure")
    ax.set_ylim(-0.08, 1.08)
    ax.legend(fontsize=7, frameon=False, loc="upper right")
    fig.tight_layout()
    return fig


def _or_rows(rows: Sequence[OddsRatio], key: str) -> str:
    out = []
    for k, r in enumerate(rows):
        adj = ", ".join(r.adjusted_for) or "none"
        at = f"{key}[{k}]."
        cells = [html.escape(c) for c in (r.term, "GEE (geepack)" if r.method == "gee" else "logistic (glm)",
                                          adj)]
        cells += [_v(r.estimate, at + "estimate", fmt_ratio),
                  f"{_v(r.ci_low, at + 'ci_low', fmt_ratio)}{DASH}{_v(r.ci_high, at + 'ci_high', fmt_ratio)}",
                  _v(r.p, at + "p", fmt_p), _v(r.n_lesions, at + "n_lesions", fmt_count),
                  html.escape("; ".join(r.notes))]
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("term", "method", "adjusted for", "OR", "95% CI", "p",
                                               "lesions", "notes"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(out)}</tbody></table>"


def radiotherapy_section(rt: RadiotherapyResults | None, lesions: pd.DataFrame | None = None,
                         failures: pd.DataFrame | None = None, settings: Settings | None = None, *,
                         figure: RenderedFigure | None = None) -> str:
    """The radiotherapy section as an HTML fragment ("" without radiotherapy results).

    Parameters
    ----------
    rt : RadiotherapyResults or None
        The analysis' typed radiotherapy results.
    lesions : pandas.DataFrame, optional
        Lesions for the dose-response figure.
    failures : pandas.DataFrame, optional
        Failure rows; where they carry ``class_volume`` and ``class_centroid`` (from ``pofa dose``), the
        lesions whose two classes disagree are listed.
    settings : Settings, optional
        For alpha/beta and the thresholds quoted in the methods text.
    figure : RenderedFigure, optional
        The dose-response figure already drawn (:func:`render_dose_response_figure`): its SVG is embedded.
        Without it the figure is drawn here, the same way (SVG).

    Returns
    -------
    str
        ``<section id="radiotherapy">...</section>`` or "".
    """
    if rt is None:
        return ""
    s = (settings or Settings()).radiotherapy
    parts = ['<section id="radiotherapy">', "<h2>Bridging radiotherapy</h2>"]
    n_irr, n_no = rt.n_irradiated, rt.n_no_rt
    lf_rt, lf_no = rt.local_failures_rt, rt.local_failures_no_rt
    eq = ""
    if math.isfinite(rt.eqd2_median_gy):
        gy = partial(fmt_number, decimals=1)
        eq = (f" Median EQD2 of irradiated lesions {_v(rt.eqd2_median_gy, 'eqd2_median_gy', gy)} Gy (range "
              f"{_v(rt.eqd2_min_gy, 'eqd2_min_gy', gy)}{DASH}{_v(rt.eqd2_max_gy, 'eqd2_max_gy', gy)} Gy).")
    parts.append(f"<p>{_v(n_irr, 'n_irradiated', fmt_count)} of {n_irr + n_no} lesions with a known outcome "
                 "were irradiated before CAR T. Local failure: "
                 f"{_pct(lf_rt, n_irr, 'local_failures_rt', 'n_irradiated')} of irradiated and "
                 f"{_pct(lf_no, n_no, 'local_failures_no_rt', 'n_no_rt')} of unirradiated lesions.{eq}</p>")
    inf = rt.in_field
    if inf is not None and inf.n:
        parts.append(f"<p>In-field failures: {_pct(inf.events, inf.n, 'in_field.events', 'in_field.n')} of "
                     f"irradiated lesions, exact 95% CI {_v(inf.ci_low, 'in_field.ci_low', fmt_prob)}{DASH}"
                     f"{_v(inf.ci_high, 'in_field.ci_high', fmt_prob)} ({html.escape(inf.definition)}).</p>")
    if rt.field_classes:
        cells = "".join(f"<tr><td>{html.escape(k)}</td><td>{_v(v, 'field_classes.' + k, fmt_count)}</td></tr>"
                        for k, v in rt.field_classes)
        parts.append("<h3>Failures by field class (rt_field)</h3><table><thead><tr><th>class</th>"
                     f"<th>failure lesions</th></tr></thead><tbody>{cells}</tbody></table>")
    if failures is not None and {"class_volume", "class_centroid"} <= set(failures.columns):
        both = failures[failures["class_volume"].notna() & failures["class_centroid"].notna()]
        dis = both[both["class_volume"] != both["class_centroid"]]
        parts.append(f"<p>Field class by volume and by centroid agree for {len(both) - len(dis)} of "
                     f"{len(both)} failure lesions.</p>")
        if len(dis):
            rows = "".join(f"<tr><td>{k}</td><td>{html.escape(str(r.class_volume))}</td>"
                           f"<td>{html.escape(str(r.class_centroid))}</td></tr>"
                           for k, r in enumerate(dis.itertuples(), start=1))
            parts.append("<table><thead><tr><th>#</th><th>by volume</th><th>by centroid</th></tr></thead>"
                         f"<tbody>{rows}</tbody></table>")
    if rt.odds_ratios:
        parts.append("<h3>Local failure, irradiated vs unirradiated lesions</h3>"
                     + _or_rows(rt.odds_ratios, "odds_ratios"))
    if rt.dose_response:
        parts.append("<h3>Dose-response (odds ratio per Gy EQD2)</h3>"
                     + _or_rows(rt.dose_response, "dose_response"))
    if figure is None:  # a section drawn on its own; in the report, the figure written to figures/
        figure = _render_dose_response(rt, lesions, s.alpha_beta_gy, png=False)
    if figure is not None:
        src = "data:image/svg+xml;base64," + base64.b64encode(figure.svg).decode("ascii")
        parts.append(f'<figure class="fig" id="fig-dose-response"><img src="{src}" '
                     f'alt="{_DOSE_RESPONSE_ALT}"><figcaption>'
                     "Local failure of irradiated lesions by EQD2.</figcaption></figure>")
    pfs = rt.pfs
    if pfs is not None:
        def f(key: str, fmt: Callable[[Any], str]) -> str:
            return _v(getattr(pfs, key), "pfs." + key, fmt)

        parts.append(
            f"<p>PFS with bridging RT ({f('n_rt', fmt_count)} patients, {f('events_rt', fmt_count)} events; "
            f"median {f('median_rt_months', fmt_months)} months) vs without ({f('n_no_rt', fmt_count)} "
            f"patients, {f('events_no_rt', fmt_count)} events; median {f('median_no_rt_months', fmt_months)} "
            f"months): log-rank p {f('logrank_p', fmt_p)}; Cox HR {f('hr', fmt_ratio)} (95% CI "
            f"{f('hr_ci_low', fmt_ratio)}{DASH}{f('hr_ci_high', fmt_ratio)}).</p>")
    for note in rt.notes:
        parts.append(f"<p class=\"note\">{html.escape(str(note))}</p>")
    parts.append(
        "<p class=\"methods\">EQD2 was computed with the linear-quadratic model, "
        f"EQD2 = D (d + a/b) / (2 + a/b), with a/b = {s.alpha_beta_gy:g} Gy. Failures were classified "
        f"relative to the {s.isodose_pct:g}% isodose by volume (in-field when at least "
        f"{s.in_field_volume_pct:g}% of the failure volume lay inside, "
        f"marginal from {s.marginal_volume_pct:g}%, otherwise out-of-field; Dawson et al. 2000) and by "
        f"the dose at the failure's centroid (marginal within {s.centroid_margin_mm:g} mm of the isodose "
        "surface). "
        "Local failure of irradiated vs unirradiated lesions was compared by logistic regression and GEE "
        "with patients as clusters (exchangeable correlation), unadjusted and adjusted for the lesion risk "
        "factors; the in-field failure rate has an exact Clopper-Pearson 95% CI; PFS was compared by the "
        "log-rank test and Cox regression.</p>")
    parts.append("</section>")
    return "\n".join(parts)


def insert_radiotherapy_section(page: str, statistics: StudyResults | None,
                                lesions: pd.DataFrame | None = None, failures: pd.DataFrame | None = None,
                                settings: Settings | None = None, *,
                                figure: RenderedFigure | None = None) -> str:
    """Insert the radiotherapy section into ``page`` before its methods section (or before ``</main>``).

    Parameters
    ----------
    page : str
        The report's HTML.
    statistics : StudyResults or None
        The analysis' typed results (their ``radiotherapy`` part is rendered).
    lesions : pandas.DataFrame, optional
        Lesions for the dose-response figure, as for :func:`radiotherapy_section`.
    failures : pandas.DataFrame, optional
        Failure rows, as for :func:`radiotherapy_section`.
    settings : Settings, optional
        The settings, as for :func:`radiotherapy_section`.
    figure : RenderedFigure, optional
        The dose-response figure already drawn, as for :func:`radiotherapy_section`.

    Returns
    -------
    str
        The page, unchanged when there is nothing to add.
    """
    frag = radiotherapy_section(statistics.radiotherapy if statistics is not None else None, lesions,
                                failures, settings, figure=figure)
    if not frag:
        return page
    for anchor in ('<section id="methods"', "</main>", "</body>"):
        i = page.find(anchor)
        if i >= 0:
            return page[:i] + frag + "\n" + page[i:]
    return page + frag
