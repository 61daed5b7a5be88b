"""The report's figures check data, not pixels: what is drawn equals the numbers it stands for."""

from __future__ import annotations

import re
import zlib

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from pofa.examples import simulated_analysis
from pofa.report.figures import (
    KMSeries,
    build_figures,
    fit_cumulative_incidence,
    number_at_risk,
    plot_km,
    plot_patterns,
    rc_context,
    render_figure,
    time_ticks,
)
from pofa.report.model import ReportInput, as_report_input
from pofa.stats.survival import kaplan_meier

VERSIONS = {"pofa": "test", "python": "3", "matplotlib": "x"}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> ReportInput:
    """A simulated 80-patient study, analysed by pofa (classification and statistics)."""
    return as_report_input(simulated_analysis(tmp_path_factory.mktemp("figs") / "study", 80, seed=11))


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
    fit = kaplan_meier(time, event)
    fig = Figure()
    ax, rax = fig.subplots(2, 1)
    drawn = plot_km(ax, [KMSeries("all", fit)], risk_ax=rax, ticks=(0, 3, 6, 9, 12, 15, 18, 21))
    texts = _at_risk_texts(rax)
    expected = [int((time >= t).sum()) for t in (0, 3, 6, 9, 12, 15, 18, 21)]
    assert expected == [15, 14, 10, 7, 5, 1, 1, 0]
    assert [texts[(0, float(t))] for t in (0, 3, 6, 9, 12, 15, 18, 21)] == expected
    assert list(drawn.at_risk["all"]) == expected
    assert number_at_risk(time, (0, 3, 6, 9, 12, 15, 18, 21)) == tuple(expected)


def test_km_steps_equal_the_estimator() -> None:
    # closed form: S(1) = 4/5, S(2) = 4/5 * 3/4 = 0.6, S(3) = 0.6 * 1/2 = 0.3, S(4) = 0.3 (censored)
    time = np.array([1.0, 2, 2, 3, 4])
    event = np.array([1, 1, 0, 1, 0])
    fit = kaplan_meier(time, event)
    ax = Figure().subplots()
    plot_km(ax, [KMSeries("all", fit)], ticks=(0, 2, 4))
    line = next(ln for ln in ax.lines if ln.get_gid() == "km:all")
    assert line.get_drawstyle() == "steps-post"
    np.testing.assert_array_equal(line.get_xdata(), [0, 1, 2, 3, 4])
    np.testing.assert_allclose(line.get_ydata(), [1, 0.8, 0.6, 0.3, 0.3], rtol=0, atol=1e-15)
    marks = next(ln for ln in ax.lines if ln.get_gid() == "censor:all")
    np.testing.assert_array_equal(marks.get_xdata(), [2, 4])  # censoring marks at the censored times ...
    np.testing.assert_allclose(marks.get_ydata(), [0.6, 0.3], atol=1e-15)  # ... on the curve


def test_report_km_figures_match_fits_counts_and_results(cohort: ReportInput, figures: dict) -> None:
    res = cohort.results
    km = figures["km_overall"].drawn
    for e in ("pfs", "os"):
        df = cohort.survival_frame(e)
        t = df["time"].to_numpy(float)
        fit = km[e]["fit"]
        # the step function drawn is the estimator, and the printed median is the fitted curve's median
        ax = next(
            a
            for a in figures["km_overall"].figure.axes
            if any((ln.get_gid() or "").startswith("km:") for ln in a.lines)
            and a.get_title(loc="left").endswith(
                "Progression-free survival" if e == "pfs" else "Overall survival"
            )
        )
        line = next(ln for ln in ax.lines if (ln.get_gid() or "").startswith("km:"))
        np.testing.assert_array_equal(line.get_ydata()[1:], fit.survival)
        assert fit.median().estimate == pytest.approx(res["survival"][e]["median_months"], abs=0)
        assert fit.n == res["survival"][e]["n"] and fit.n_events_total == res["survival"][e]["events"]
        ticks = km[e]["drawn"].ticks
        assert list(km[e]["drawn"].at_risk.values())[0] == tuple(int((t >= x).sum()) for x in ticks)
    # by the patient risk factor: each group's numbers at risk from the raw times
    name = next(n for n in figures if n.startswith("km_by_"))
    for e, d in figures[name].drawn.items():
        df = cohort.survival_frame(e)
        g = d["group"]
        for s in d["series"]:
            flag = s.label.startswith("Any")
            times = df.loc[g == flag, "time"].to_numpy(float)
            assert d["drawn"].at_risk[s.label] == tuple(int((times >= x).sum()) for x in d["drawn"].ticks)
            assert s.fit.n == len(times)
        n_with = next(r["n_with"] for r in cohort.results["patient_models"] if r["endpoint"] == e)
        assert int(g.sum()) == n_with


def test_numbers_at_risk_drawn_in_the_report_figure(cohort: ReportInput, figures: dict) -> None:
    fig = figures["km_overall"].figure
    risk_axes = [a for a in fig.axes if any((t.get_gid() or "").startswith("n-at-risk") for t in a.texts)]
    assert len(risk_axes) == 2
    for rax, e in zip(risk_axes, ("pfs", "os"), strict=True):
        t = cohort.survival_frame(e)["time"].to_numpy(float)
        for (_, tick), n in _at_risk_texts(rax).items():
            assert n == int((t >= tick).sum())


def test_forest_points_equal_the_odds_ratios(cohort: ReportInput, figures: dict) -> None:
    rows = cohort.results["lesion_models"]
    fig = figures["forest_lesion_models"].figure
    labels = {"Logistic regression": "logistic", "GEE (patients as clusters)": "gee"}
    seen = 0
    for ax, model in zip(fig.axes, ("univariable", "multivariable"), strict=True):
        assert ax.get_xscale() == "log"
        for c in ax.containers:
            assert isinstance(c, ErrorbarContainer)
            method = labels[c.get_label()]
            expect = [r for r in rows if r["model"] == model and r["method"] == method]
            data_line, _, (bars,) = c.lines[0], c.lines[1], c.lines[2]
            np.testing.assert_array_equal(np.sort(data_line.get_xdata()), np.sort([r["or"] for r in expect]))
            # the bars run from ci_low to ci_high
            segs = sorted((s[0][0], s[1][0]) for s in bars.get_segments())
            want = sorted((r["ci_low"], r["ci_high"]) for r in expect)
            np.testing.assert_allclose(segs, want, rtol=1e-12)
            seen += len(expect)
    assert seen == len(rows)


def test_forest_marks_not_estimable_terms() -> None:
    from pofa.report.figures import plot_forest

    rows = [
        {"model": "univariable", "method": "logistic", "term": "a", "or": 2.0, "ci_low": 1.5, "ci_high": 3.0},
        {"model": "univariable", "method": "gee", "term": "a", "or": None, "ci_low": None, "ci_high": None},
    ]
    ax = Figure().subplots()
    drawn = plot_forest(ax, rows, "univariable")
    assert drawn == {"logistic": {"a": 2.0}}
    assert [t.get_text() for t in ax.texts if (t.get_gid() or "").startswith("ne:")] == ["NE"]


def test_pattern_bars_equal_the_counts() -> None:
    patterns = {
        "patients": 63,
        "recurred": 36,
        "strictly_local": 13,
        "mixed": 18,
        "strictly_de_novo": 5,
        "unknown": 0,
    }
    ax = Figure().subplots()
    heights = plot_patterns(ax, patterns)
    bars = [p for p in ax.patches if (p.get_gid() or "").startswith("pattern:")]
    assert [p.get_height() for p in bars] == [13, 18, 5, 0]
    assert heights == {"strictly local": 13, "mixed": 18, "strictly de novo": 5, "unknown": 0}
    # the paper's percentages of recurred patients: 36%, 50%, 14%
    assert [t.get_text() for t in ax.texts] == ["13 (36%)", "18 (50%)", "5 (14%)", "0 (0%)"]


def test_report_pattern_chart_reads_results(cohort: ReportInput, figures: dict) -> None:
    ax = figures["failure_patterns"].figure.axes[0]
    p = cohort.results["patterns"]
    assert [b.get_height() for b in ax.patches if (b.get_gid() or "").startswith("pattern:")] == [
        p["strictly_local"],
        p["mixed"],
        p["strictly_de_novo"],
        p["unknown"],
    ]


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
        bars = next(
            c for c in ax.collections if isinstance(c, PolyCollection) and c.get_gid() == "swimmer:bars"
        )
        widths = sorted(float(p.vertices[:, 0].max()) for p in bars.get_paths())
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


def test_lesion_scatter_points_and_thresholds(cohort: ReportInput, figures: dict) -> None:
    fig = figures["lesion_scatter"].figure
    ax = fig.axes[0]
    pts = figures["lesion_scatter"].drawn["points"]
    les = cohort.lesions
    assert sum(len(v) for v in pts.values()) == len(les)
    failed = les.loc[les["local_failure"].fillna(False).astype(bool), ["diameter_cm", "suvmax"]].to_numpy(
        float
    )
    np.testing.assert_array_equal(np.sort(pts["local failure"], axis=0), np.sort(failed, axis=0))
    for coll in ax.collections:
        if coll.get_gid() == "scatter:local failure":
            np.testing.assert_array_equal(np.sort(coll.get_offsets().data, axis=0), np.sort(failed, axis=0))
    vline = next(ln for ln in ax.lines if ln.get_gid() == "threshold:diameter_cm")
    hline = next(ln for ln in ax.lines if ln.get_gid() == "threshold:suvmax")
    assert list(vline.get_xdata()) == [5.0, 5.0] and list(hline.get_ydata()) == [10.0, 10.0]


def test_cumulative_incidence_is_aalen_johansen() -> None:
    # hand-computed Aalen-Johansen: n = 10; t=1 local -> 1/10; t=2 de novo (S = 0.9, 9 at risk) -> 0.1;
    # t=3 local with 7 at risk and S = 0.8 -> 0.1 + 0.8/7
    import pandas as pd

    t = [1, 2, 2, 3, 4, 5, 5, 6, 7, 8.0]
    cause = ["L", "D", "c", "L", "L", "c", "D", "L", "c", "death"]
    pattern = {"L": "strictly local", "D": "strictly de novo", "c": "none", "death": "none"}
    patients = pd.DataFrame(
        {
            "patient_id": [f"p{i}" for i in range(10)],
            "pfs_months": t,
            "pfs_event": [c != "c" for c in cause],
            "os_months": t,
            "os_event": [c == "death" for c in cause],
            "progression_months": [x if c in "LD" else np.nan for x, c in zip(t, cause, strict=True)],
            "pattern": [pattern[c] for c in cause],
        }
    )
    lesions = pd.DataFrame(
        {
            "patient_id": ["p0"],
            "site": ["x"],
            "extranodal": [False],
            "diameter_cm": [1.0],
            "suvmax": [2.0],
            "local_failure": [True],
        }
    )
    curves = {c.cause: c for c in fit_cumulative_incidence(ReportInput({}, patients, lesions))}
    local = curves["Local component (strictly local or mixed)"]
    denovo = curves["Strictly de novo"]
    assert local.at(1) == pytest.approx(0.1, abs=1e-15)
    assert local.at(3) == pytest.approx(0.1 + 0.8 / 7, abs=1e-15)
    assert denovo.at(2) == pytest.approx(0.1, abs=1e-15)
    assert local.at(0.5) == 0.0
    death = curves["Death without progression"]
    assert death.at(7.9) == 0.0 and death.at(8) > 0
    assert local.last_time == 8.0


def test_cumulative_incidence_figure_uses_the_analysis_causes(cohort: ReportInput, figures: dict) -> None:
    from pofa.report.figures import first_failure_causes
    from pofa.stats.competing import cumulative_incidence

    t, c = first_failure_causes(cohort)
    np.testing.assert_array_equal(t, cohort.patients["fp_months"].to_numpy(float))
    fit = cumulative_incidence(t, c).curve(1)
    x, y = figures["cumulative_incidence"].drawn["curves"]["Local component (strictly local or mixed)"]
    np.testing.assert_array_equal(y[1 : 1 + fit.estimate.size], fit.estimate)
    np.testing.assert_array_equal(x[1 : 1 + fit.times.size], fit.times)
    # the landmark numbers in results.json are those of the same estimator
    lm = cohort.results["competing_risks"]["patients"]["overall"]["causes"][0]["curves"][0]["landmarks"][0]
    assert fit.at(lm["months"]).estimate == lm["incidence"]


def test_rendering_is_reproducible_and_dateless(figures: dict) -> None:
    built = figures["km_overall"]
    a, b = render_figure(built), render_figure(built)
    assert a.png == b.png and a.svg == b.svg
    assert b"tIME" not in a.png  # no PNG timestamp chunk
    svg = a.svg.decode("utf-8")
    assert "<dc:date>" not in svg and not re.search(r"(19|20)\d\d-\d\d-\d\d", svg)
    # 300 dpi recorded in the PNG (pHYs: pixels per metre)
    i = a.png.index(b"pHYs")
    ppm = int.from_bytes(a.png[i + 4 : i + 8], "big")
    assert round(ppm * 0.0254) == 300
    assert zlib.crc32(a.png) == zlib.crc32(b.png)


def test_every_figure_has_caption_alt_text_and_method_note(figures: dict) -> None:
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


def test_time_ticks() -> None:
    assert time_ticks(13.9) == (0, 3, 6, 9, 12)
    assert time_ticks(24.0) == (0, 6, 12, 18, 24)
    assert time_ticks(100) == (0, 24, 48, 72, 96)
    assert time_ticks(0) == (0.0,)
