"""The report's figures check data, not pixels: what is drawn equals the results it stands for, and the
results' curves are the estimators' (the report computes nothing)."""

from __future__ import annotations

import math
import re
import zlib

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from pofa.classify import PatternCounts
from pofa.examples import simulated_analysis
from pofa.report.model import ReportInput, as_report_input
from pofa.report.plots import (
    KMSeries,
    build_figures,
    plot_forest,
    plot_km,
    plot_numbers_at_risk,
    plot_patterns,
    rc_context,
    render_figure,
    time_ticks,
)
from pofa.report.plots.forest import forest_rows
from pofa.report.plots.swimmer import ROWS_PER_PANEL
from pofa.stats.competing import cumulative_incidence
from pofa.stats.results import LesionModelRow
from pofa.stats.study_stats import km_step_curve
from pofa.stats.survival import kaplan_meier

VERSIONS = {"pofa": "test", "python": "3", "matplotlib": "x"}


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory):
    """A simulated 80-patient study, analysed by pofa (classification and statistics)."""
    return simulated_analysis(tmp_path_factory.mktemp("figs") / "study", 80, seed=11)


@pytest.fixture(scope="module")
def cohort(analysed) -> ReportInput:
    return as_report_input(analysed)


@pytest.fixture(scope="module")
def figures(cohort: ReportInput) -> dict:
    with rc_context():
        return {b.spec.name: b for b in build_figures(cohort, versions=VERSIONS)}


def _at_risk_texts(risk_ax) -> dict[tuple[int, float], int]:
    out = {}
    for t in risk_ax.texts:
        gid = t.get_gid() or ""
        if gid.startswith("n-at-risk:"):
            _, row, tick = gid.split(":")
            assert float(tick) == pytest.approx(t.get_position()[0])  # drawn under its tick
            out[(int(row), float(tick))] = int(t.get_text())
    return out


def test_numbers_at_risk_are_count_at_or_after_each_tick() -> None:
    # ties and censoring exactly on the ticks: #{T >= t} counts a patient whose time equals the tick
    time = np.array([0.5, 3, 3, 3, 4, 6, 6, 7.5, 9, 9, 12, 12, 12, 14, 20])
    event = np.array([1, 1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0])
    curve = km_step_curve(kaplan_meier(time, event))
    fig = Figure()
    ax = fig.add_subplot(2, 1, 1)
    rax = fig.add_subplot(2, 1, 2, sharex=ax)
    series = [KMSeries("all", curve)]
    ticks = plot_km(ax, series, ticks=(0, 3, 6, 9, 12, 15, 18, 21))
    drawn = plot_numbers_at_risk(rax, series, ticks)
    texts = _at_risk_texts(rax)
    expected = [int((time >= t).sum()) for t in (0, 3, 6, 9, 12, 15, 18, 21)]
    assert expected == [15, 14, 10, 7, 5, 1, 1, 0]
    assert [texts[(0, float(t))] for t in (0, 3, 6, 9, 12, 15, 18, 21)] == expected
    assert list(drawn["all"]) == expected
    # the numbers sit exactly under the curves' ticks (shared x axis)
    assert list(ax.get_xticks()) == [0, 3, 6, 9, 12, 15, 18, 21] and rax.get_xlim() == ax.get_xlim()


def test_km_steps_equal_the_estimator() -> None:
    # closed form: S(1) = 4/5, S(2) = 4/5 * 3/4 = 0.6, S(3) = 0.6 * 1/2 = 0.3, S(4) = 0.3 (censored)
    time = np.array([1.0, 2, 2, 3, 4])
    event = np.array([1, 1, 0, 1, 0])
    ax = Figure().subplots()
    plot_km(ax, [KMSeries("all", km_step_curve(kaplan_meier(time, event)))], ticks=(0, 2, 4))
    line = next(ln for ln in ax.lines if ln.get_gid() == "km:all")
    assert line.get_drawstyle() == "steps-post"
    np.testing.assert_array_equal(line.get_xdata(), [0, 1, 2, 3, 4])
    np.testing.assert_allclose(line.get_ydata(), [1, 0.8, 0.6, 0.3, 0.3], rtol=0, atol=1e-15)
    marks = next(ln for ln in ax.lines if ln.get_gid() == "censor:all")
    np.testing.assert_array_equal(marks.get_xdata(), [2, 4])  # censoring marks at the censored times ...
    np.testing.assert_allclose(marks.get_ydata(), [0.6, 0.3], atol=1e-15)  # ... on the curve
    # the legend sits above the axes, never over the curves
    leg = ax.get_legend()
    assert leg.get_bbox_to_anchor().y0 >= ax.get_window_extent().y1 - 1e-6


def test_report_km_figures_are_the_results_curves(cohort: ReportInput, figures: dict) -> None:
    st = cohort.statistics
    fig = figures["km_overall"].figure
    curve_axes = [a for a in fig.axes if any((ln.get_gid() or "").startswith("km:") for ln in a.lines)]
    for ax, e in zip(curve_axes, ("pfs", "os"), strict=True):
        s = st.survival.endpoint(e)
        line = next(ln for ln in ax.lines if (ln.get_gid() or "").startswith("km:"))
        x, y = s.curve.steps()
        np.testing.assert_array_equal(line.get_xdata(), x)
        np.testing.assert_array_equal(line.get_ydata(), y)
        # and the results' curve is the estimator's on the analysed data
        df = cohort.survival_frame(e)
        fit = kaplan_meier(df["time"].to_numpy(float), df["event"].to_numpy(int))
        np.testing.assert_array_equal(s.curve.estimate, fit.survival)
        assert fit.median().estimate == pytest.approx(s.median, abs=0)
        drawn = figures["km_overall"].drawn[e]
        t = df["time"].to_numpy(float)
        assert list(drawn.at_risk.values())[0] == tuple(int((t >= x).sum()) for x in drawn.ticks)
    # by the patient risk factor: each group's curve and numbers at risk from the raw times
    name = next(n for n in figures if n.startswith("km_by_"))
    term = next(r for r in st.patient_models.rows if r.groups)
    group = cohort.patients[[c for c in cohort.patients.columns if c.startswith("any_diameter_cm_ge_")][0]]
    for e, d in figures[name].drawn.items():
        row = next(r for r in st.patient_models.rows if r.endpoint == e and r.term == term.term)
        df = cohort.survival_frame(e)
        g = group.reindex(df.index).astype(bool)
        for gc in row.groups:
            times = df.loc[g == gc.value, "time"].to_numpy(float)
            label = next(lab for lab in d.at_risk if lab.startswith(gc.label))
            assert d.at_risk[label] == tuple(int((times >= x).sum()) for x in d.ticks)
            assert gc.n == len(times)
        assert row.n_with == int(g.sum())


def test_forest_points_equal_the_odds_ratios(cohort: ReportInput, figures: dict) -> None:
    rows = cohort.statistics.lesion_models.rows
    fig = figures["forest_lesion_models"].figure
    ax = next(a for a in fig.axes if a.get_xscale() == "log")
    labels = {"Logistic regression": "logistic", "GEE (patients as clusters)": "gee"}
    seen = 0
    for c in ax.containers:
        assert isinstance(c, ErrorbarContainer)
        method = labels[c.get_label()]
        expect = [r for r in rows if r.method == method]
        data_line, (bars,) = c.lines[0], c.lines[2]
        np.testing.assert_array_equal(np.sort(data_line.get_xdata()), np.sort([r.odds_ratio for r in expect]))
        segs = sorted((s[0][0], s[1][0]) for s in bars.get_segments())
        np.testing.assert_allclose(segs, sorted((r.ci_low, r.ci_high) for r in expect), rtol=1e-12)
        seen += len(expect)
    assert seen == len(rows)
    # the table beside the plot: lesions (events) and the OR text of each term
    table = figures["forest_lesion_models"].drawn["table"]
    lm = cohort.statistics.lesion_models
    first = next(r for r in rows if r.model == "univariable" and r.method == "gee")
    line = next(t for t in table if t[0] == first.label)
    assert line[1] == f"{first.n_lesions} ({first.n_events})" and first.n_events == lm.n_events
    assert line[2].startswith(f"{first.odds_ratio:.2f} (")


def test_forest_marks_not_estimable_terms_and_published_values() -> None:
    from pofa.report.paper import PAPER_ODDS_RATIOS

    rows = [
        LesionModelRow("univariable", "logistic", "extranodal", "Extranodal", 2.0, 1.5, 3.0, 0.01, 10, 2, 5),
        LesionModelRow(
            "univariable", "gee", "extranodal", "Extranodal", math.nan, math.nan, math.nan, math.nan, 10, 2, 5
        ),
    ]
    ax = Figure().subplots()
    drawn = plot_forest(ax, forest_rows(rows), reference=PAPER_ODDS_RATIOS)
    assert drawn == {"univariable:logistic": {"extranodal": 2.0}}
    assert [t.get_text() for t in ax.texts if (t.get_gid() or "").startswith("ne:")] == ["NE"]
    ref = next(ln for ln in ax.lines if ln.get_gid() == "forest:published")
    assert list(ref.get_xdata()) == [1.49]  # the paper's extranodal OR, on its term's line


def test_pattern_bars_equal_the_counts() -> None:
    counts = PatternCounts(
        patients=63,
        lesions=469,
        recurred=36,
        local_component=31,
        strictly_local=13,
        strictly_de_novo=5,
        mixed=18,
        unknown=0,
        maintained_control=26,
        local_failure_lesions=100,
    )
    ax = Figure().subplots()
    heights = plot_patterns(ax, counts)
    bars = [p for p in ax.patches if (p.get_gid() or "").startswith("pattern:")]
    assert [p.get_height() for p in bars] == [13, 18, 5, 0]
    assert heights == {"strictly local": 13, "mixed": 18, "strictly de novo": 5, "unknown": 0}
    # the paper's percentages of recurred patients: 36%, 50%, 14%
    assert [t.get_text() for t in ax.texts] == ["13 (36%)", "18 (50%)", "5 (14%)", "0 (0%)"]


def bar_widths(ax) -> list[float]:
    """The swimmer's bar lengths, bottom to top: the rectangles of its bar paths (one path per colour)."""
    bars = []
    for c in ax.collections:
        if (c.get_gid() or "").startswith("swimmer:bars:"):
            (path,) = c.get_paths()
            rects = path.vertices.reshape(-1, 5, 2)  # each bar: 4 corners and the closing vertex
            bars += [(float(r[:, 1].mean()), float(r[:, 0].max())) for r in rects]
    return [w for _, w in sorted(bars)]


def test_swimmer_bars_are_follow_up_and_labels_are_sequence_numbers(tmp_path) -> None:
    def rename(folder) -> None:  # ids that must not leak: MRN-like
        for name in ("patients.csv", "lesions.csv", "failures.csv"):
            path = folder / name
            text = re.sub(r"(?m)^P(\d+),", r"MRN77\1,", path.read_text(encoding="utf-8"))
            path.write_text(text, encoding="utf-8")

    inp = as_report_input(simulated_analysis(tmp_path / "study", 25, seed=3, edit=rename))
    assert all(pid.startswith("MRN77") for pid in inp.patients["patient_id"])
    for show_ids in (False, True):
        with rc_context():
            figs = {b.spec.name: b for b in build_figures(inp, show_ids=show_ids, versions=VERSIONS)}
        ax = figs["swimmer"].figure.axes[0]
        widths = bar_widths(ax)
        assert widths == sorted(widths)  # sorted by follow-up
        np.testing.assert_allclose(widths, np.sort(inp.patients["os_months"].to_numpy(float)))
        labels = [t.get_text() for t in ax.get_yticklabels()]
        if show_ids:
            assert set(labels) == set(inp.patients["patient_id"])
        else:
            assert sorted(int(x) for x in labels) == list(range(1, 26))
            assert not any(x.startswith("MRN") for x in labels)
        deaths = next(ln for ln in ax.lines if ln.get_gid() == "swimmer:death")
        assert len(deaths.get_xdata()) == int(inp.patients["os_event"].sum())
        progressions = sum(
            len(ln.get_xdata()) for ln in ax.lines if (ln.get_gid() or "").startswith("swimmer:progression:")
        )
        assert progressions == int(inp.patients["progression_months"].notna().sum())


def test_swimmer_splits_into_labelled_panels(cohort: ReportInput) -> None:
    # 80 patients: two labelled panels of at most ROWS_PER_PANEL, every study number shown once
    with rc_context():
        from pofa.report.plots.swimmer import swimmer_figure

        built = swimmer_figure(cohort, False, "x")
    assert built.drawn["panels"] == 2 and len(built.figure.axes) == 2
    labels = [t.get_text() for ax in built.figure.axes for t in ax.get_yticklabels()]
    assert sorted(int(x) for x in labels) == list(range(1, 81))
    assert all(len(ax.get_yticklabels()) <= ROWS_PER_PANEL for ax in built.figure.axes)


def test_lesion_scatter_points_and_thresholds(cohort: ReportInput, figures: dict) -> None:
    ax = figures["lesion_scatter"].figure.axes[0]
    pts = figures["lesion_scatter"].drawn["points"]
    les = cohort.lesions
    assert sum(len(v) for v in pts.values()) == len(les)
    failed = les.loc[les["local_failure"].fillna(False).astype(bool), ["diameter_cm", "suvmax"]]
    failed = failed.to_numpy(float)
    np.testing.assert_array_equal(np.sort(pts["local failure"], axis=0), np.sort(failed, axis=0))
    vline = next(ln for ln in ax.lines if ln.get_gid() == "threshold:diameter_cm")
    hline = next(ln for ln in ax.lines if ln.get_gid() == "threshold:suvmax")
    assert list(vline.get_xdata()) == [5.0, 5.0] and list(hline.get_ydata()) == [10.0, 10.0]


def test_cumulative_incidence_figure_is_the_results_curve(cohort: ReportInput, figures: dict) -> None:
    block = cohort.statistics.competing_risks.patients_overall
    x, y = figures["cumulative_incidence"].drawn["curves"]["Local component (strictly local or mixed)"]
    curve = block.cause(1).curves[0].curve
    xr, yr = curve.steps()
    np.testing.assert_array_equal(x, xr)
    np.testing.assert_array_equal(y, yr)
    # and the results' curve is cmprsk's Aalen-Johansen on the analysis' causes of first failure
    p = cohort.patients
    fit = cumulative_incidence(p["fp_months"].to_numpy(float), p["fp_status"].to_numpy(int)).curve(1)
    np.testing.assert_array_equal(curve.estimate, fit.estimate)
    np.testing.assert_array_equal(curve.times, fit.times)


def test_rendering_is_reproducible_and_dateless(figures: dict) -> None:
    built = figures["km_overall"]
    a, b = render_figure(built, png=True), render_figure(built, png=True)
    assert a.png == b.png and a.svg == b.svg
    assert b"tIME" not in a.png  # no PNG timestamp chunk
    svg = a.svg.decode("utf-8")
    assert "<dc:date>" not in svg and not re.search(r"(19|20)\d\d-\d\d-\d\d", svg)
    i = a.png.index(b"pHYs")  # 300 dpi recorded in the PNG (pixels per metre)
    assert round(int.from_bytes(a.png[i + 4 : i + 8], "big") * 0.0254) == 300
    assert zlib.crc32(a.png) == zlib.crc32(b.png)
    assert render_figure(built, png=False).png == b""  # PNG only on demand


def test_every_figure_has_caption_alt_text_method_note_and_the_simulated_mark(figures: dict) -> None:
    assert {
        "failure_patterns",
        "forest_lesion_models",
        "km_overall",
        "cumulative_incidence",
        "swimmer",
        "lesion_scatter",
    } <= set(figures)
    assert any(n.startswith("km_by_") for n in figures)
    for b in figures.values():
        assert len(b.spec.caption) > 40 and len(b.spec.alt) > 40 and len(b.spec.how) > 40
        assert "matplotlib x" in b.spec.how  # the software versions are named
        # a simulated study: every figure's footer says so
        assert any(t.get_text() == "SIMULATED DATA, NOT PATIENTS" for t in b.figure.texts)


def test_palette_is_okabe_ito(figures: dict) -> None:
    from matplotlib.colors import to_hex

    from pofa.report.style import GREY, OKABE_ITO

    allowed = {c.lower() for c in OKABE_ITO.values()} | {GREY.lower(), "#ffffff", "#bfbfbf"}
    for b in figures.values():
        for ax in b.figure.axes:
            for ln in ax.lines:
                c = to_hex(ln.get_color()).lower()
                assert c in allowed, (b.spec.name, ln.get_gid(), c)


def test_time_ticks() -> None:
    assert time_ticks(13.9) == (0, 3, 6, 9, 12)
    assert time_ticks(24.0) == (0, 6, 12, 18, 24)
    assert time_ticks(100) == (0, 24, 48, 72, 96)
    assert time_ticks(0) == (0.0,)


def test_simulated_flag_comes_from_the_study(cohort: ReportInput) -> None:
    from dataclasses import replace

    from pofa.settings import StudyInfo

    plain = replace(cohort, settings=replace(cohort.settings, study=StudyInfo("x")))
    assert cohort.simulated and not plain.simulated
    assert not pd.isna(cohort.settings.study.name)
