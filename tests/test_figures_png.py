"""Figures drawn once, SVG by default and the PNG on demand; the cheaper drawings keep every mark.

* ``pofa analyze`` writes SVG only; ``--png`` (or ``[report] png = true``) adds the 300-dpi PNG of the same
  drawing, and results.json / manifest.json list exactly the files written.
* Censoring ticks and death crosses are one path (:class:`pofa.report.plots.marks.OnePathMarks`): every
  distinct mark is in it, at its place, a repeated one once.
* Identical scatter points are drawn once with the opacity of their stack: the same pixels.
"""

from __future__ import annotations

import io
import json
import math
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from typer.testing import CliRunner

from pofa.cli import app
from pofa.report.model import ReportInput
from pofa.report.plots import rc_context
from pofa.report.plots.marks import OnePathMarks, mark_positions
from pofa.report.plots.scatter import stacked_points
from pofa.settings import parse_settings

runner = CliRunner(env={"COLUMNS": "250"})


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def _svg_size_pt(svg: str) -> tuple[float, float]:
    m = re.search(r'<svg[^>]* width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    assert m is not None
    return float(m[1]), float(m[2])


def test_analyze_writes_svg_only_and_lists_only_what_it_wrote(example_analysis: tuple[Path, str]) -> None:
    out, _ = example_analysis
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert figures and all(n.endswith(".svg") for n in figures)
    listed = json.loads((out / "results.json").read_text(encoding="utf-8"))["files"]
    assert sorted(f for f in listed if f.startswith("figures/")) == [f"figures/{n}" for n in figures]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert ".png" not in json.dumps(manifest)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert ".png (300 dpi)" not in html  # the method notes name only the files written


@pytest.mark.slow
def test_png_option_writes_the_300_dpi_png_of_the_same_drawing(example_study: Path, tmp_path: Path,
                                                               example_analysis: tuple[Path, str]) -> None:
    svg_only, _ = example_analysis
    out = tmp_path / "out"
    res = runner.invoke(app, ["analyze", str(example_study), "--out", str(out), "--png"])
    assert res.exit_code == 0, res.output
    svgs = sorted(p.stem for p in (out / "figures").glob("*.svg"))
    assert svgs == sorted(p.stem for p in (out / "figures").glob("*.png")) and len(svgs) >= 7
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert {f"figures/{n}.png" for n in svgs} <= set(results["files"])
    assert results["settings"]["report"]["png"] is True  # the run's settings say what was written
    manifest = (out / "manifest.json").read_text(encoding="utf-8")
    for name in svgs:
        svg = (out / "figures" / f"{name}.svg").read_bytes()
        # one drawing: the SVG is the same bytes with or without its PNG
        assert svg == (svg_only / "figures" / f"{name}.svg").read_bytes(), name
        png = (out / "figures" / f"{name}.png").read_bytes()
        w_pt, h_pt = _svg_size_pt(svg.decode("utf-8"))
        # the PNG is the SVG's page at 300 dpi
        px_w, px_h = _png_size(png)
        assert abs(px_w - w_pt / 72 * 300) < 1 and abs(px_h - h_pt / 72 * 300) < 1, name
        assert f"figures/{name}.png" in manifest
        from PIL import Image

        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
        assert (pixels < 128).mean() > 0.001  # a drawing, not a blank page
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "figures/km_overall.png (300 dpi)" in html


@pytest.mark.slow
def test_report_png_setting_writes_the_pngs(example_study: Path, tmp_path: Path) -> None:
    toml = example_study / "study.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + "\n[report]\npng = true\n", encoding="utf-8")
    out = tmp_path / "out"
    res = runner.invoke(app, ["analyze", str(example_study), "--out", str(out)])
    assert res.exit_code == 0, res.output
    figures = out / "figures"
    assert {p.stem for p in figures.glob("*.png")} == {p.stem for p in figures.glob("*.svg")}


def test_report_png_setting_is_known_to_the_settings_check() -> None:
    settings, findings = parse_settings({"report": {"png": True}})
    assert settings.report.png is True and not findings
    assert parse_settings({})[0].report.png is False  # SVG only by default
    _, findings = parse_settings({"report": {"pgn": True}})
    assert [f.hint for f in findings] == ["did you mean report.png?"]
    _, findings = parse_settings({"report": {"png": "yes"}})
    assert len(findings) == 1
    assert "report.png" in findings[0].message and "true or false" in findings[0].message


def _svg_of(fig: Figure) -> str:
    buf = io.BytesIO()
    with rc_context():
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue().decode("utf-8")


def _group_paths(svg: str, gid: str) -> list[str]:
    """The ``d`` of each path in the SVG group ``gid``."""
    start = svg.index(f'<g id="{gid}">')
    end = svg.index("</g>", start)
    return re.findall(r'<path d="([^"]*)"', svg[start:end])


def test_censor_ticks_are_one_path_with_every_distinct_mark_once() -> None:
    x = np.array([1.0, 2.0, 2.0, 3.5, 3.5, 7.0, 7.0])  # two repeats: the same tick twice
    y = np.array([0.9, 0.8, 0.8, 0.6, 0.5, 0.5, 0.5])
    fig = Figure(figsize=(4, 3), dpi=72)
    ax = fig.add_subplot()
    ax.set_xlim(0, 8)
    ax.set_ylim(0, 1)
    marks = OnePathMarks(x, y, marker="|", markersize=5, markeredgewidth=0.9, color="black", gid="censor:all")
    ax.add_line(marks)
    np.testing.assert_array_equal(marks.get_xdata(), x)  # the line keeps its data
    svg = _svg_of(fig)
    (d,) = _group_paths(svg, "censor:all")  # one path element
    moves = [tuple(map(float, m)) for m in re.findall(r"M ([-\d.]+) ([-\d.]+)", d)]
    lines = [tuple(map(float, m)) for m in re.findall(r"L ([-\d.]+) ([-\d.]+)", d)]
    assert len(moves) == len(lines) == 5  # the 5 distinct (time, survival) pairs, each once
    # each tick is vertical, 5 points long, centred on its point (the SVG's y axis points down)
    height = fig.get_figheight() * 72
    expected = mark_positions(marks)  # display positions, at 72 dpi = points
    centres = sorted(((mx + lx) / 2, height - (my + ly) / 2)
                     for (mx, my), (lx, ly) in zip(moves, lines, strict=True))
    np.testing.assert_allclose(centres, expected, atol=1e-5)
    for (mx, my), (lx, ly) in zip(moves, lines, strict=True):
        assert mx == lx and abs(abs(my - ly) - 5.0) < 1e-5
    assert 'stroke-width: 0.9' in svg[svg.index('<g id="censor:all">'):]
    assert "<use" not in svg[svg.index('<g id="censor:all">'):]  # no per-mark elements


def test_crosses_are_one_path_and_one_line_in_the_legend() -> None:
    fig = Figure(figsize=(4, 3), dpi=72)
    ax = fig.add_subplot()
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    ax.add_line(OnePathMarks([1, 5, 9], [1, 5, 9], marker="x", markersize=4, color="black",
                             markeredgewidth=0.9, label="Death", gid="swimmer:death"))
    leg = ax.legend()
    assert [t.get_text() for t in leg.get_texts()] == ["Death"]
    (d,) = _group_paths(_svg_of(fig), "swimmer:death")
    assert d.count("M") == 6 and d.count("L") == 6  # two strokes per cross, three crosses
    with pytest.raises(ValueError, match="not 'o'"):
        OnePathMarks([1], [1], marker="o")


def test_arrows_are_one_filled_path_with_matplotlibs_marks() -> None:
    # the swimmer's "alive" arrows: matplotlib's ">" marker (its unit shape), filled and stroked in one path
    from matplotlib.markers import MarkerStyle
    from scipy.ndimage import binary_dilation

    from pofa.report.plots.marks import _SHAPES

    style = MarkerStyle(">")
    unit = style.get_path().transformed(style.get_transform())
    np.testing.assert_allclose(_SHAPES[">"][0][:3], unit.vertices[:3], atol=1e-15)
    np.testing.assert_array_equal(_SHAPES[">"][1], unit.codes)

    x, y = np.array([1.0, 2.0, 2.3, 6.0]), np.array([1.0, 5.0, 5.1, 9.0])

    def draw(one_path: bool) -> Figure:
        fig = Figure(figsize=(1, 1), dpi=300)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.set_xlim(0, 10)
        ax.set_ylim(0, 10)
        if one_path:
            ax.add_line(OnePathMarks(x, y, marker=">", markersize=6, color="#999999", gid="alive"))
        else:
            ax.plot(x, y, linestyle="none", marker=">", markersize=6, color="#999999", gid="alive")
        return fig

    svg = _svg_of(draw(True))
    (d,) = _group_paths(svg, "alive")
    assert d.count("z") == 4 and "<use" not in svg
    assert "fill: #999999; stroke: #999999; stroke-linejoin: miter" in svg

    def pixels(one_path: bool) -> np.ndarray:
        buf = io.BytesIO()
        draw(one_path).savefig(buf, format="rgba", dpi=300)
        return np.frombuffer(buf.getvalue(), np.uint8).reshape(300, 300, 4)[..., 0] < 255

    one, each = pixels(True), pixels(False)
    grow = np.ones((3, 3), dtype=bool)  # the same marks, up to the whole pixels matplotlib stamps them at
    assert one.sum() > 0.9 * each.sum() > 0
    assert not (one & ~binary_dilation(each, grow)).any() and not (each & ~binary_dilation(one, grow)).any()


def test_stacked_points_give_the_pixels_of_the_stack() -> None:
    pts = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [3.0, 1.0], [2.0, 2.5], [3.0, 1.0]])
    xy, alpha = stacked_points(pts, 0.75)
    np.testing.assert_array_equal(xy, [[1.0, 2.0], [2.0, 2.5], [3.0, 1.0]])
    np.testing.assert_allclose(alpha, [1 - 0.25**3, 0.75, 1 - 0.25**2], rtol=0, atol=1e-15)

    def draw(x: np.ndarray, y: np.ndarray, rgba: object, alpha: float | None, aa: bool = True) -> np.ndarray:
        fig = Figure(figsize=(1, 1), dpi=100)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.set_xlim(0, 4)
        ax.set_ylim(0, 4)
        ax.scatter(x, y, s=60, c=rgba, alpha=alpha, edgecolors="none", marker="o", antialiased=aa)
        buf = io.BytesIO()
        fig.savefig(buf, format="rgba", dpi=100)
        return np.frombuffer(buf.getvalue(), np.uint8).reshape(100, 100, 4).astype(int)

    every = draw(pts[:, 0], pts[:, 1], "#D55E00", 0.75)
    rgba = np.tile(np.array([0xD5, 0x5E, 0x00, 0]) / 255, (len(xy), 1))
    rgba[:, 3] = alpha
    once = draw(xy[:, 0], xy[:, 1], rgba, None)
    diff = np.abs(every - once).max(axis=2)
    # inside every mark (its pixels without the anti-aliased rim) the same colour, up to 8-bit rounding
    inside = draw(xy[:, 0], xy[:, 1], "black", None, aa=False)[..., 0] == 0
    core = inside.copy()
    for _ in range(2):  # two pixels in from the edge
        core = core & np.roll(core, 1, 0) & np.roll(core, -1, 0) & np.roll(core, 1, 1) & np.roll(core, -1, 1)
    assert core.sum() > 100 and diff[core].max() <= 2
    # outside the marks nothing at all; only the rim of a stack (more opaque, k partial covers) differs
    drawn = draw(xy[:, 0], xy[:, 1], "black", None)[..., 0] < 255
    assert diff[~drawn].max() == 0
    rim = drawn & ~core
    assert diff[rim].max() > 0 and every[rim].sum() <= once[rim].sum()  # the stack's rim is the darker


@pytest.fixture(scope="module")
def cohort_input(tmp_path_factory: pytest.TempPathFactory) -> ReportInput:
    """The report input of a simulated 80-patient study."""
    from pofa.examples import simulated_analysis
    from pofa.report.model import as_report_input

    return as_report_input(simulated_analysis(tmp_path_factory.mktemp("figs") / "study", 80, seed=11))


@pytest.fixture(scope="module")
def cohort_figures(cohort_input: ReportInput) -> dict:
    """Two independent drawings of each figure of a simulated 80-patient study."""
    from pofa.report.plots import build_figures

    inp = cohort_input
    with rc_context():
        a = build_figures(inp, versions={"pofa": "test"})
        b = build_figures(inp, versions={"pofa": "test"})
    return {x.spec.name: (x, y) for x, y in zip(a, b, strict=True)}


@pytest.mark.slow
def test_svg_bytes_are_the_bytes_savefig_writes(cohort_input: ReportInput) -> None:
    # render_figure lays out and draws with one SVG renderer (each text measured once): the document must be
    # the one savefig(format="svg") writes, layout included
    from pofa.report.plots import build_figures
    from pofa.report.plots.base import svg_bytes

    meta = {"Date": None, "Title": "t"}
    with rc_context():
        a = build_figures(cohort_input, versions={"pofa": "test"})
        b = build_figures(cohort_input, versions={"pofa": "test"})
    for first, second in zip(a, b, strict=True):
        name = first.spec.name
        plain = io.BytesIO()
        with rc_context():
            first.figure.savefig(plain, format="svg", metadata=meta)
            assert second.figure.get_layout_engine() is not None
            once = svg_bytes(second.figure, meta)
        assert second.figure.get_layout_engine() is None  # laid out once, kept
        assert plain.getvalue() == once, name


def _small_figure(rasterized: bool) -> Figure:
    fig = Figure(figsize=(3.0, 2.5), layout="constrained")
    ax = fig.add_subplot()
    rng = np.random.default_rng(3)
    ax.scatter(rng.random(400), rng.random(400), s=4, rasterized=rasterized)
    ax.plot([0, 1], [1, 0], animated=True)  # drawn into a saved file only
    ax.set_title("A title that the layout makes room for")
    ax.set_ylabel("y label")
    ax.legend(["points"], loc="lower left", bbox_to_anchor=(0.0, 1.05))
    fig.supxlabel("footer", x=0.99, ha="right")
    return fig


@pytest.mark.parametrize("rasterized", [False, True])
@pytest.mark.parametrize("facecolor", ["auto", "#ffeecc"])
def test_svg_bytes_match_savefig_with_images_and_style(rasterized: bool, facecolor: str) -> None:
    from matplotlib import rc_context as mpl_rc_context

    from pofa.report.plots.base import svg_bytes

    meta = {"Date": None}
    with rc_context(), mpl_rc_context({"savefig.facecolor": facecolor}):
        plain = io.BytesIO()
        _small_figure(rasterized).savefig(plain, format="svg", metadata=meta)
        fig = _small_figure(rasterized)
        before = fig.get_facecolor(), fig.dpi, fig.canvas
        once = svg_bytes(fig, meta)
    assert plain.getvalue() == once
    assert (b"<image" in once) == rasterized
    assert (fig.get_facecolor(), fig.dpi, fig.canvas) == before  # its colour, dpi and canvas are back


def test_svg_bytes_measure_each_text_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # the layout's renderer draws: no text is measured a second time for the drawing
    from matplotlib.backends.backend_svg import RendererSVG

    from pofa.report.plots.base import svg_bytes

    calls: list[str] = []
    measure = RendererSVG.get_text_width_height_descent

    def counted(self: RendererSVG, s: str, prop: object, ismath: object) -> object:
        calls.append(s)
        return measure(self, s, prop, ismath)

    monkeypatch.setattr(RendererSVG, "get_text_width_height_descent", counted)
    with rc_context():
        svg_bytes(_small_figure(False), {"Date": None})
    assert calls and len(calls) == len(set(calls))


def test_release_figure_frees_the_drawing_at_once() -> None:
    import gc
    import weakref

    from pofa.report.plots.base import release_figure, settled_heap, svg_bytes

    with rc_context(), settled_heap():
        fig = _small_figure(False)
        ax = fig.axes[0]
        data = np.arange(10_000.0)
        ax.plot(data, data)
        svg_bytes(fig, {"Date": None})
        gone = [weakref.ref(ax), weakref.ref(ax.lines[0]), weakref.ref(ax.collections[0])]
        del ax
        gc.disable()  # only release_figure's own collection may free them
        try:
            release_figure(fig)
            assert fig.axes == []
            assert all(r() is None for r in gone)
        finally:
            gc.enable()


def test_rasterised_scatter_draws_each_stack_once_as_line_markers() -> None:
    # above RASTERIZE_ABOVE lesions the marks go into the embedded image as lines' markers (matplotlib
    # rasterises a line's marker once and stamps it): every distinct point once, as opaque as its stack
    import pandas as pd

    from pofa.report.plots.scatter import MARK_ALPHA, RASTERIZE_ABOVE, plot_lesion_scatter

    rng = np.random.default_rng(5)
    n = RASTERIZE_ABOVE + 500
    les = pd.DataFrame({"diameter_cm": np.round(rng.lognormal(0.5, 0.5, n), 1),
                        "suvmax": np.round(rng.lognormal(2.0, 0.5, n), 1)})
    outcome = pd.Series(rng.choice(["local failure", "controlled", "no progression", "unknown"], n))
    with rc_context():
        ax = Figure().add_subplot()
        drawn = plot_lesion_scatter(ax, les, outcome, thresholds={"diameter_cm": 5.0})
    assert not ax.collections
    for cls, pts in drawn.items():
        lines = [ln for ln in ax.lines if ln.get_gid() == f"scatter:{cls}"]
        assert lines and all(ln.get_rasterized() and ln.get_linestyle() == "None" for ln in lines)
        xy, alpha = stacked_points(pts, MARK_ALPHA)
        got = np.concatenate([np.column_stack([ln.get_xdata(), ln.get_ydata()]) for ln in lines])
        got_alpha = np.concatenate([np.full(len(ln.get_xdata()), ln.get_alpha()) for ln in lines])
        order = np.lexsort((got[:, 1], got[:, 0]))
        np.testing.assert_array_equal(got[order], xy)
        np.testing.assert_array_equal(got_alpha[order], alpha)
        assert len({ln.get_alpha() for ln in lines}) == len(lines)  # one line per opacity


def test_line_markers_give_the_pixels_of_scatter_marks() -> None:
    # the same marks as a scatter's up to the pixel grid: a line's mark is rasterised once and stamped at
    # whole pixels, so each mark is where the scatter's is, its outline within one pixel (at 300 dpi, 0.08 mm)
    from scipy.ndimage import binary_dilation

    rng = np.random.default_rng(8)
    x, y = rng.uniform(0.2, 3.8, 60), rng.uniform(0.2, 3.8, 60)

    def draw(as_lines: bool, marker: str) -> np.ndarray:
        fig = Figure(figsize=(1, 1), dpi=300)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.set_xlim(0, 4)
        ax.set_ylim(0, 4)
        if as_lines:
            ax.plot(x, y, linestyle="none", marker=marker, markersize=math.sqrt(3), color="#0072B2",
                    alpha=0.75, markeredgewidth=0.3 if marker == "x" else 0.0)
        else:
            ax.scatter(x, y, s=3, c=[(0.0, 0.447, 0.698, 0.75)] * len(x), marker=marker, linewidths=0.3,
                       edgecolors=None if marker == "x" else "none")
        buf = io.BytesIO()
        fig.savefig(buf, format="rgba", dpi=300)
        return np.frombuffer(buf.getvalue(), np.uint8).reshape(300, 300, 4)[..., 0] < 255

    for marker in ("o", "^", "s", "x"):
        lines, scatter = draw(True, marker), draw(False, marker)
        grow = np.ones((3, 3), dtype=bool)
        assert lines.sum() > 0.8 * scatter.sum() > 0, marker
        assert not (lines & ~binary_dilation(scatter, grow)).any(), marker
        assert not (scatter & ~binary_dilation(lines, grow)).any(), marker


@pytest.mark.slow
def test_titles_placed_at_the_top_are_where_matplotlib_would_place_them(
    cohort_input: ReportInput, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the patterns figure's title and the numbers-at-risk titles are given y = 1 (matplotlib's automatic
    # placement measures every y tick label at each pass to find the same place): the same SVG either way
    from matplotlib.axes import Axes
    from matplotlib.text import Text

    from pofa.report.plots import build_figures
    from pofa.report.plots.base import svg_bytes

    meta = {"Date": None}
    with rc_context():
        given = {b.spec.name: b for b in build_figures(cohort_input, versions={"pofa": "test"})}
        titles = [t for name in ("failure_patterns", "km_overall") for ax in given[name].figure.axes
                  for t in ax.get_children() if isinstance(t, Text) and t.get_text()
                  and t.get_text() == ax.get_title(loc="left")]
        assert len(titles) >= 3 and all(t.get_position()[1] == 1.0 for t in titles)
        set_title = Axes.set_title
        dropped: list[float] = []

        def automatic(self: Axes, *args: object, y: float | None = None, **kwargs: object) -> object:
            if y is not None:
                dropped.append(y)
            return set_title(self, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(Axes, "set_title", automatic)
        auto = {b.spec.name: b for b in build_figures(cohort_input, versions={"pofa": "test"})}
        assert len(dropped) >= 3  # the figures were drawn again with their titles placed by matplotlib
        for name in ("failure_patterns", "km_overall", "km_by_any_diameter_cm_ge_5"):
            if name in given:
                assert svg_bytes(given[name].figure, meta) == svg_bytes(auto[name].figure, meta), name


def _texts_outside(fig: Figure) -> list[str]:
    """The visible texts of a laid-out figure that reach beyond its edges, drawn again by Agg at the figure's
    dpi (the layout kept; 1.5 pixels of slack for the two renderers' text metrics)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    hidden = set()  # labels of ticks outside the axis' view: kept by matplotlib, never drawn
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in (*axis.get_major_ticks(), *axis.get_minor_ticks()):
                if not lo - 1e-9 * (hi - lo) <= tick.get_loc() <= hi + 1e-9 * (hi - lo):
                    hidden.update((id(tick.label1), id(tick.label2)))
    out = []
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip() or id(t) in hidden:
            continue
        box = t.get_window_extent(renderer)
        if box.x0 < -1.5 or box.y0 < -1.5 or box.x1 > width + 1.5 or box.y1 > height + 1.5:
            out.append(t.get_text())
    return out


def test_every_text_of_the_report_figures_is_inside_the_figure(cohort_figures: dict) -> None:
    from pofa.report.plots.base import svg_bytes

    for name, (built, _) in cohort_figures.items():
        with rc_context():
            svg_bytes(built.figure, {"Date": None})
        assert _texts_outside(built.figure) == [], name


def test_scatter_legend_of_a_large_cohort_fits_the_figure() -> None:
    # at 5,000 patients the outcome labels carry five-digit counts: a two-column legend was wider than the
    # figure and its right column was cut off
    import pandas as pd

    from pofa.report.plots.base import svg_bytes
    from pofa.report.plots.scatter import plot_lesion_scatter

    rng = np.random.default_rng(3)
    n = 21_000
    les = pd.DataFrame({"diameter_cm": np.round(rng.lognormal(0.5, 0.5, n), 1),
                        "suvmax": np.round(rng.lognormal(2.0, 0.5, n), 1)})
    outcome = pd.Series(rng.choice(["local failure", "controlled", "no progression", "unknown"], n,
                                   p=[0.17, 0.31, 0.5, 0.02]))
    with rc_context():
        fig = Figure(figsize=(5.2, 4.0), layout="constrained")
        ax = fig.add_subplot()
        plot_lesion_scatter(ax, les, outcome, thresholds={"diameter_cm": 5.0, "suvmax": 10.0})
        svg_bytes(fig, {"Date": None})
    assert _texts_outside(fig) == []
    assert ax.get_position().width > 0.6  # the plot keeps most of the width
