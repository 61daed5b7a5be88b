"""Benchmark: CPU time of each report figure (build, SVG, SVG + PNG) at 5,000 and 20,000 patients, against a
bare matplotlib figure with as many points saved to SVG, measured in the same run.

    python3 benchmarks/figures.py [N_PATIENTS ...] [--repeats R]      # default: 5000 20000, R = 3

Setup (not timed): the cohorts of tests/reference/scale/make_cohorts.py (a generator that shares nothing with
pofa's simulator; sizes other than its own get the seed 100000 + n), analysed by pofa. Timed, per figure of
the report (:func:`pofa.report.plots.iter_figures`, in the report's style, with the heap settled as
:func:`pofa.report.write_report` draws them):

* ``build``: drawing the figure (matplotlib artists from the analysis' results);
* ``SVG``: :func:`pofa.report.plots.render_figure` without PNG (the layout, once, and the SVG): what
  ``pofa analyze`` spends by default;
* ``SVG+PNG``: the same with the 300-dpi PNG of the drawing (``pofa analyze --png``), on a second build;
* ``bare``: baseline, a matplotlib figure of the same size with one line through as many points as the
  figure draws (line vertices, markers, bars), saved to SVG: what matplotlib alone costs for that much data.

Process CPU time (the machine may be shared: CPU time is the stable number), the best of R runs (the least
disturbed by other processes on the machine). Target
(issue 20): every report figure at 5,000 patients in well under 1 s of CPU in total, SVG only.
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_5000_SVG_S = 1.0
_ROOT = Path(__file__).resolve().parents[1]


def _cohort(n: int, folder: Path) -> Path:
    sys.path.insert(0, str(_ROOT / "tests" / "reference" / "scale"))
    import make_cohorts

    folder.mkdir(parents=True, exist_ok=True)
    seed = make_cohorts.SEEDS.get(n, 100000 + n)
    for name, text in make_cohorts.cohort(n, seed).items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _points(fig: Any) -> int:
    """How many data points a figure draws: line vertices, markers, collection paths or offsets, patches."""
    n = 0
    for ax in fig.axes:
        for ln in ax.lines:
            n += len(ln.get_xdata())
        for c in ax.collections:
            offsets = c.get_offsets()
            n += len(offsets) if len(offsets) > 1 else sum(len(p.vertices) for p in c.get_paths())
        n += len(ax.patches)
    return n


def _bare_svg(size: tuple[float, float], n: int) -> float:
    import numpy as np
    from matplotlib.figure import Figure

    rng = np.random.default_rng(0)
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    ax.plot(np.sort(rng.random(max(n, 2))), rng.random(max(n, 2)))
    c = time.process_time()
    fig.savefig(io.BytesIO(), format="svg", metadata={"Date": None})
    return time.process_time() - c


def measure(n: int, tmp: Path, repeats: int) -> list[tuple[str, int, float, float, float, float]]:
    """Per figure: name, points, build, SVG, SVG+PNG and bare-baseline CPU seconds (best of ``repeats``)."""
    from pofa.analysis import run_analysis
    from pofa.report.model import as_report_input
    from pofa.report.plots import iter_figures, rc_context, release_figure, render_figure, settled_heap
    from pofa.study import load_study

    inp = as_report_input(run_analysis(load_study(_cohort(n, tmp / f"n{n}"))))
    versions = {"pofa": "benchmark"}
    runs: dict[str, dict[str, list[float]]] = {}
    points: dict[str, int] = {}
    with rc_context(), settled_heap():
        for b in iter_figures(inp, versions=versions):  # warm-up: fonts, caches
            render_figure(b)
            release_figure(b.figure)
        for _ in range(repeats):
            for png in (False, True):
                figures = iter_figures(inp, versions=versions)
                while True:
                    c0 = time.process_time()
                    built = next(figures, None)
                    if built is None:
                        break
                    c1 = time.process_time()
                    render_figure(built, png=png)
                    c2 = time.process_time()
                    r = runs.setdefault(built.spec.name, {"build": [], "svg": [], "png": [], "bare": []})
                    r["png" if png else "svg"].append(c2 - c1)
                    if not png:
                        r["build"].append(c1 - c0)
                        points[built.spec.name] = _points(built.figure)
                        size = tuple(built.figure.get_size_inches())
                        release_figure(built.figure)
                        r["bare"].append(_bare_svg(size, points[built.spec.name]))
                    else:
                        release_figure(built.figure)
    keys = ("build", "svg", "png", "bare")
    return [(name, points[name], *(min(r[k]) for k in keys)) for name, r in runs.items()]


def main(argv: list[str]) -> int:
    repeats = 3
    if "--repeats" in argv:
        i = argv.index("--repeats")
        repeats = int(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    sizes = [int(a) for a in argv[1:]] or [5000, 20000]
    verdict = 0
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            rows = measure(n, Path(tmp), repeats)
            print(f"\n{n:,} patients: CPU seconds per figure (best of {repeats})")
            print(f"{'figure':30s} {'points':>8s} {'build':>7s} {'SVG':>7s} {'SVG+PNG':>8s} {'bare SVG':>9s}"
                  f" {'(build+SVG)/bare':>17s}")
            tot = [0.0, 0.0, 0.0, 0.0]
            for name, pts, build, svg, png, bare in rows:
                print(f"{name:30s} {pts:8d} {build:7.3f} {svg:7.3f} {png:8.3f} {bare:9.3f} "
                      f"{(build + svg) / bare:16.1f}x")
                tot = [a + b for a, b in zip(tot, (build, svg, png, bare), strict=True)]
            print(f"{'all figures':30s} {'':8s} {tot[0]:7.3f} {tot[1]:7.3f} {tot[2]:8.3f} {tot[3]:9.3f} "
                  f"{(tot[0] + tot[1]) / tot[3]:16.1f}x")
            print(f"  default (build + SVG): {tot[0] + tot[1]:.2f} s; with --png (build + SVG + PNG): "
                  f"{tot[0] + tot[2]:.2f} s")
            if n == 5000:
                ok = tot[0] + tot[1] < TARGET_5000_SVG_S
                print(f"  target at 5,000 patients: build + SVG of every figure < {TARGET_5000_SVG_S:g} s "
                      f"CPU: {'PASS' if ok else 'FAIL'}")
                verdict |= 0 if ok else 1
    return verdict


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
