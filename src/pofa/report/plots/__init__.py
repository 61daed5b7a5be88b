"""The report's figures: one module per figure.

Each plot function draws on a matplotlib ``Axes`` it is given (never ``plt.show()``; pyplot is not used).

Every figure is drawn from the analysis' typed results (:mod:`pofa.stats.results`): the curves drawn are the
curves the analysis estimated, the numbers printed are the numbers of results.json. :func:`build_figures`
makes every figure of the report with its caption, alt text and "how it was made" note;
:func:`render_figure` renders one drawing to SVG (embedded in the report) and, on demand, from the same
drawing, PNG.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from pofa.report.model import ReportInput
from pofa.report.plots.base import (
    BuiltFigure,
    FigureSpec,
    RenderedFigure,
    add_footer,
    rc_context,
    release_figure,
    render_figure,
    settled_heap,
    software_line,
    time_ticks,
)
from pofa.report.plots.forest import forest_figure, plot_forest, plot_forest_table
from pofa.report.plots.incidence import incidence_figure, plot_cumulative_incidence
from pofa.report.plots.km import (
    KMDrawn,
    KMSeries,
    km_by_figure,
    km_overall_figure,
    plot_km,
    plot_numbers_at_risk,
)
from pofa.report.plots.patterns import patterns_figure, plot_patterns
from pofa.report.plots.scans import build_scan_figures, scan_figure_data
from pofa.report.plots.scatter import lesion_outcome_class, plot_lesion_scatter, scatter_figure
from pofa.report.plots.swimmer import plot_swimmer, swimmer_figure

__all__ = [
    "BuiltFigure",
    "FigureSpec",
    "KMDrawn",
    "KMSeries",
    "RenderedFigure",
    "add_footer",
    "build_figures",
    "build_scan_figures",
    "iter_figures",
    "lesion_outcome_class",
    "plot_cumulative_incidence",
    "plot_forest",
    "plot_forest_table",
    "plot_km",
    "plot_lesion_scatter",
    "plot_numbers_at_risk",
    "plot_patterns",
    "plot_swimmer",
    "rc_context",
    "release_figure",
    "render_figure",
    "scan_figure_data",
    "settled_heap",
    "time_ticks",
]


def build_figures(
    inp: ReportInput, *, show_ids: bool = False, versions: Mapping[str, str] | None = None
) -> tuple[BuiltFigure, ...]:
    """Draw every figure of the report (not yet rendered), with caption, alt text and how-made note.

    Figures whose results are absent are left out. Call it inside :func:`rc_context` (as
    :func:`pofa.report.html.write_report` does) for the report's style.

    Parameters
    ----------
    inp : ReportInput
        The report input (its typed statistics decide which figures are drawn).
    show_ids : bool
        Label patients by identifiers (default: study numbers).
    versions : Mapping, optional
        Software versions for the notes (default: those installed).

    Returns
    -------
    tuple of BuiltFigure
        In report order: patterns, forest plot, overall Kaplan-Meier curves, Kaplan-Meier curves per patient
        term, cumulative incidence, swimmer and scatter plot (those whose results are present).
    """
    return tuple(iter_figures(inp, show_ids=show_ids, versions=versions))


def iter_figures(
    inp: ReportInput, *, show_ids: bool = False, versions: Mapping[str, str] | None = None
) -> Iterator[BuiltFigure]:
    """Draw the figures of :func:`build_figures` one at a time (each when the previous one is done with).

    A caller that renders and clears each figure before asking for the next holds one drawing at a time
    (with 100,000 patients a drawing holds hundreds of thousands of points).

    Parameters
    ----------
    inp : ReportInput
        The report input.
    show_ids : bool
        Label patients by identifiers (default: study numbers).
    versions : Mapping, optional
        Software versions for the notes (default: those installed).

    Yields
    ------
    BuiltFigure
        The figures in report order (those whose results are present).
    """
    from pofa.report.manifest import dependency_versions

    v = dict(versions) if versions is not None else dependency_versions()
    sw = f"Drawn with {software_line(v)}."
    makers = [patterns_figure, forest_figure, km_overall_figure]
    for make in makers:
        fig = make(inp, sw)
        if fig is not None:
            yield fig
    pm = inp.statistics.patient_models if inp.statistics is not None else None
    if pm is not None:
        for term in dict.fromkeys(r.term for r in pm.rows):
            fig = km_by_figure(inp, [r for r in pm.rows if r.term == term], sw)
            if fig is not None:
                yield fig
    later: list[Callable[[], BuiltFigure | None]] = [
        lambda: incidence_figure(inp, sw), lambda: swimmer_figure(inp, show_ids, sw),
        lambda: scatter_figure(inp, sw)]
    for make_later in later:
        fig = make_later()
        if fig is not None:
            yield fig
