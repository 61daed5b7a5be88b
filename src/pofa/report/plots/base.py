"""What every report figure shares: the style context, the records of a figure, ticks and the footer.

Plot functions (one module per figure in this package) take an ``Axes`` and draw on it; they never create
windows or call ``plt.show()`` (pyplot is not used: figures are ``matplotlib.figure.Figure`` objects).
"""

from __future__ import annotations

import contextlib
import gc
import io
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import matplotlib
import numpy as np
from cycler import cycler
from matplotlib.backends.backend_mixed import MixedModeRenderer
from matplotlib.backends.backend_svg import FigureCanvasSVG, RendererSVG
from matplotlib.figure import Figure

from pofa.report.style import OKABE_ITO, RC

__all__ = [
    "ENDPOINT_WORDS",
    "BuiltFigure",
    "FigureSpec",
    "RenderedFigure",
    "add_footer",
    "band_changes",
    "rc_context",
    "release_figure",
    "render_figure",
    "settled_heap",
    "software_line",
    "svg_bytes",
    "time_ticks",
]

_CYCLE = [
    OKABE_ITO[k]
    for k in ("black", "vermillion", "blue", "orange", "bluish green", "reddish purple", "sky blue", "yellow")
]

#: Words of each survival endpoint: title, abbreviation, event.
ENDPOINT_WORDS = {
    "pfs": ("Progression-free survival", "PFS", "progression or death"),
    "os": ("Overall survival", "OS", "death from any cause"),
}

#: The mark on every figure of a simulated study.
SIMULATED_MARK = "SIMULATED DATA, NOT PATIENTS"


def rc_context() -> Any:
    """``matplotlib.rc_context`` with the report's settings (the global settings are left alone).

    Returns
    -------
    contextlib.AbstractContextManager
        A context manager that applies the report's matplotlib settings inside its block.
    """
    rc = dict(RC)
    rc["axes.prop_cycle"] = cycler(color=_CYCLE)
    return matplotlib.rc_context(rc)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class FigureSpec:
    """Texts that go with a figure.

    Attributes
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
    """A figure and its texts, before rendering.

    Attributes
    ----------
    spec : FigureSpec
        The figure's name, title, caption, alternative text and method note.
    figure : matplotlib.figure.Figure
        The drawn matplotlib figure.
    drawn : Mapping
        What the plot functions drew (for tests and alt text).
    """

    spec: FigureSpec
    figure: Figure
    drawn: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RenderedFigure:
    """A rendered figure: SVG bytes and, when asked for, the 300-dpi PNG of the same drawing.

    Attributes
    ----------
    spec : FigureSpec
        The figure's texts.
    svg : bytes
        The SVG document (embedded in the report and written to figures/).
    png : bytes
        Empty when no PNG was asked for.
    width_pt, height_pt : float
        The figure's size in points (1/72 inch).
    """

    spec: FigureSpec
    svg: bytes
    png: bytes
    width_pt: float
    height_pt: float


def time_ticks(max_time: float) -> tuple[float, ...]:
    """Tick times from 0 to at most ``max_time``: every 3, 6, 12 or 24 months depending on the follow-up.

    Parameters
    ----------
    max_time : float
        Longest time shown (months).

    Returns
    -------
    tuple of float
        The tick times, starting at 0 (only 0 when ``max_time`` is not a positive finite number).
    """
    if not math.isfinite(max_time) or max_time <= 0:
        return (0.0,)
    step = 3.0 if max_time <= 15 else 6.0 if max_time <= 42 else 12.0 if max_time <= 96 else 24.0
    n = int(math.floor(max_time / step + 1e-9))
    return tuple(step * i for i in range(n + 1))


def band_changes(t: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A post-step band's times where a limit changes, and its last time: the same region, fewer vertices.

    A post-step band keeps its limits until the next time, so a time where neither limit changes (a
    censoring time of a Kaplan-Meier curve) adds two collinear vertices to the drawn polygon and nothing
    else. The first and the last time are kept (where the band starts and ends).

    Parameters
    ----------
    t, lo, hi : numpy.ndarray
        Times and the lower and upper limits from each time on (``StepCurve.band()``).

    Returns
    -------
    tuple of numpy.ndarray
        The kept times and limits, for ``fill_between(..., step="post")``.
    """
    if t.size < 3:
        return t, lo, hi
    keep = np.ones(t.size, dtype=bool)
    keep[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    keep[-1] = True
    return t[keep], lo[keep], hi[keep]


def software_line(versions: Mapping[str, str]) -> str:
    """``"pofa 1.0, python 3.11, ..."``: the versions named in a figure's note.

    Parameters
    ----------
    versions : Mapping
        Installed software versions by package name.

    Returns
    -------
    str
        The versions of pofa, Python and the scientific packages present in ``versions``, comma-separated.
    """
    keys = ("pofa", "python", "numpy", "scipy", "statsmodels", "pandas", "matplotlib")
    return ", ".join(f"{k} {versions[k]}" for k in keys if k in versions)


def add_footer(fig: Figure, simulated: bool) -> None:
    """Write the "simulated data, not patients" mark in the figure's footer (a simulated study only).

    Parameters
    ----------
    fig : Figure
        The figure to mark.
    simulated : bool
        Whether the study is simulated (``[study] simulated = true``).
    """
    if simulated:
        fig.supxlabel(
            SIMULATED_MARK, fontsize=6.5, color=OKABE_ITO["vermillion"], fontweight="bold", x=0.99, ha="right"
        )


@contextlib.contextmanager
def settled_heap() -> Iterator[None]:
    """Keep the objects that exist now out of the garbage collector's passes while figures are drawn.

    Drawing allocates hundreds of thousands of short-lived objects, and each allocation burst triggers
    collections that walk every object of the process (with a large study: its tables and results, tens of
    megabytes of them) though none of those can be garbage. ``gc.freeze`` moves them aside for the block;
    the objects made inside it are collected as usual; at the end everything is collectable again.

    Yields
    ------
    None
        Inside the block the objects older than it are not scanned.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def release_figure(fig: Figure) -> None:
    """Let go of a rendered figure's drawing at once: its axes leave the figure and are collected.

    ``Figure.clear()`` clears each axes before removing it, which rebuilds the axes (ticks, spines, patch)
    only to drop them; here the axes are removed from the figure as they are, and one garbage collection
    frees them with everything they hold (the axes and their artists refer to each other, so reference
    counting alone does not). Inside :func:`settled_heap` that collection walks only the objects made
    since the block began (mostly this drawing's). The figure is left without axes.

    Parameters
    ----------
    fig : Figure
        A figure that has been rendered and is not drawn again.
    """
    while fig.axes:
        fig.delaxes(fig.axes[-1])
    gc.collect()


class _RendererCanvas(FigureCanvasSVG):
    """An SVG canvas that is saving a file and hands out the renderer it is saving with.

    A figure's layout engine measures text with its canvas' ``get_renderer()`` when the canvas has one (as an
    Agg canvas hands out its own).
    """

    def __init__(self, figure: Figure) -> None:
        super().__init__(figure)
        self.renderer: Any = None

    def get_renderer(self) -> Any:
        """The renderer the figure is being saved with.

        Returns
        -------
        Any
            The renderer set on the canvas.
        """
        return self.renderer

    def is_saving(self) -> bool:
        """Whether the canvas is saving a file: always (as a canvas inside ``savefig`` is).

        Returns
        -------
        bool
            True.
        """
        return True


def svg_bytes(fig: Figure, metadata: Mapping[str, Any]) -> bytes:
    """The figure's SVG, laid out and drawn by one renderer: ``savefig(format="svg")``'s bytes, for less work.

    ``savefig`` measures every text twice: once while the layout engine runs (with a renderer of its own)
    and again while drawing (matplotlib keeps text metrics per renderer). Here one SVG renderer (matplotlib's
    own, as ``savefig(format="svg")`` makes it: 72 dpi, images at ``savefig.dpi``) is made first; the layout
    engine measures the text with it and is removed (the layout is kept: a later PNG is one drawing pass of
    it), and the figure is drawn with it, so each text is measured once. The document is the one
    ``savefig`` writes, byte for byte (tests compare them). The style's ``savefig.facecolor`` /
    ``edgecolor`` are applied as ``savefig`` does; ``savefig.bbox`` is not (the report's style keeps it
    ``standard``).

    Parameters
    ----------
    fig : Figure
        The figure (its layout engine, if any, runs once and is removed).
    metadata : Mapping
        The SVG metadata, as ``savefig(metadata=...)`` takes it.

    Returns
    -------
    bytes
        The UTF-8 SVG document.
    """
    image_dpi = matplotlib.rcParams["savefig.dpi"]
    if image_dpi == "figure":
        image_dpi = fig.dpi
    text = io.StringIO()
    canvas, dpi = fig.canvas, fig.dpi
    colours = {"facecolor": fig.get_facecolor(), "edgecolor": fig.get_edgecolor()}
    savefig_colours = {"facecolor": matplotlib.rcParams["savefig.facecolor"],
                       "edgecolor": matplotlib.rcParams["savefig.edgecolor"]}
    try:
        for prop, colour in savefig_colours.items():
            if not (isinstance(colour, str) and colour == "auto"):
                getattr(fig, f"set_{prop}")(colour)
        saving = _RendererCanvas(fig)  # made at the figure's own dpi, as savefig switches canvases
        fig.dpi = 72.0
        width, height = fig.get_size_inches()
        svg = RendererSVG(  # type: ignore[no-untyped-call]
            width * 72, height * 72, text, image_dpi=image_dpi, metadata=dict(metadata)
        )
        renderer: Any = MixedModeRenderer(fig, width, height, image_dpi, svg)  # type: ignore[no-untyped-call]
        saving.renderer = renderer
        engine = fig.get_layout_engine()
        if engine is not None:
            engine.execute(fig)  # measures the text with ``renderer`` (the canvas' renderer)
            fig.set_layout_engine(None)
        fig.draw(renderer)
        renderer.finalize()
    finally:
        fig.dpi = dpi
        fig.set_canvas(canvas)
        for prop, colour in colours.items():
            getattr(fig, f"set_{prop}")(colour)
    return text.getvalue().encode("utf-8")


def render_figure(built: BuiltFigure, *, png: bool = False, dpi: int = 300) -> RenderedFigure:
    """SVG bytes of a figure and, with ``png``, PNG bytes of the same drawing (the layout is computed once).

    Both are reproducible byte for byte (no dates in the metadata).

    Parameters
    ----------
    built : BuiltFigure
        The figure to render.
    png : bool
        Also render the PNG (on demand: from the drawing the SVG was made of, with the same layout).
    dpi : int
        PNG resolution.

    Returns
    -------
    RenderedFigure
        The SVG bytes, the PNG bytes (empty without ``png``) and the figure's size.
    """
    from pofa import __version__

    fig = built.figure
    software = f"pofa {__version__} (matplotlib {matplotlib.__version__})"
    with rc_context():
        svg = svg_bytes(fig, {"Date": None, "Creator": software, "Title": built.spec.title})
        png_bytes = b""
        if png:
            buf = io.BytesIO()
            fig.savefig(
                buf,
                format="png",
                dpi=dpi,
                metadata={"Software": software, "Title": built.spec.title},
                pil_kwargs={"compress_level": 6},
            )
            png_bytes = buf.getvalue()
    w, h = fig.get_size_inches()
    return RenderedFigure(built.spec, svg, png_bytes, float(w) * 72, float(h) * 72)
