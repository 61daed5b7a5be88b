"""Benchmark: the full report (report.html, figures as SVG, tables CSV + XLSX, manifest.json) of a simulated
1,000-patient study, against two baselines measured in the same run (``--png``: with the 300-dpi PNGs).

    python3 benchmarks/report_large.py [N_PATIENTS] [REPEATS] [--png]

Setup (not timed): pofa.simulate writes a 1,000-patient study (preset figura2021, ~7,400 lesions), which
pofa analyses (classification and every statistic). Timed: :func:`pofa.report.write_report` into an empty
folder.

Baselines, measured in the same process:

* ``empty figures``: matplotlib saving one empty 7 x 4 inch figure as SVG (with ``--png`` also as a 300-dpi
  PNG), once per figure of the report: the least any report with this many publication figures costs;
* ``results.json``: writing the results document as indented JSON (the analysis' own output step).

Target (issue 5): under 10 s wall-clock here. The machine is shared, so wall-clock time varies with load; the
CPU
time and the ratio to the empty-figure baseline (both measured under the same load) are the stable numbers.
"""

from __future__ import annotations

import io
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 10.0


def _timed(fn) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def main(argv: list[str]) -> int:
    png = "--png" in argv
    argv = [a for a in argv if a != "--png"]
    n = int(argv[1]) if len(argv) > 1 else 1000
    repeats = int(argv[2]) if len(argv) > 2 else 3
    from matplotlib.figure import Figure

    from pofa.examples import simulated_analysis
    from pofa.report import write_report
    from pofa.report.figures import rc_context

    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        t0 = time.perf_counter()
        result = simulated_analysis(tmpdir / "study", n, seed=20210615)
        setup = time.perf_counter() - t0
        doc = result.to_json()
        print(
            f"setup (simulate + analyse, not timed): {setup:.1f} s; {doc['patterns']['patients']} patients, "
            f"{doc['patterns']['lesions']} lesions"
        )

        def report(k: int) -> None:
            out = tmpdir / f"out{k}"
            shutil.rmtree(out, ignore_errors=True)
            write_report(result, out, png=png)

        report(-1)  # warm-up: fonts, templates, imports
        n_figures = len(list((tmpdir / "out-1" / "figures").glob("*.svg")))
        html_mb = (tmpdir / "out-1" / "report.html").stat().st_size / 1e6
        n_files = sum(1 for p in (tmpdir / "out-1").rglob("*") if p.is_file())

        def empty_figures() -> None:
            with rc_context():
                for _ in range(n_figures):
                    fig = Figure(figsize=(7.0, 4.0))
                    fig.add_subplot()
                    if png:
                        fig.savefig(io.BytesIO(), format="png", dpi=300)
                    fig.savefig(io.BytesIO(), format="svg", metadata={"Date": None})

        def results_json() -> None:
            (tmpdir / "results.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")

        rows = []
        for k in range(repeats):  # interleaved, so that all three see the same load
            rows.append((_timed(lambda k=k: report(k)), _timed(empty_figures), _timed(results_json)))
        rep_w = statistics.median(r[0][0] for r in rows)
        rep_c = statistics.median(r[0][1] for r in rows)
        fig_w = statistics.median(r[1][0] for r in rows)
        fig_c = statistics.median(r[1][1] for r in rows)
        js_w = statistics.median(r[2][0] for r in rows)
    print(
        f"report of {n} patients: {n_figures} figures ({'SVG + PNG' if png else 'SVG'}), {n_files} files, "
        f"report.html {html_mb:.1f} MB"
    )
    print(f"  write_report        wall {rep_w:6.2f} s   cpu {rep_c:6.2f} s   (median of {repeats})")
    print(f"  empty figures x{n_figures:<3d}  wall {fig_w:6.2f} s   cpu {fig_c:6.2f} s")
    print(f"  results.json        wall {js_w * 1000:6.1f} ms")
    print(f"ratio report / empty-figure baseline: wall {rep_w / fig_w:.1f}x, cpu {rep_c / fig_c:.1f}x")
    print(f"ratio report / results.json: {rep_w / js_w:.0f}x")
    verdict = "PASS" if rep_w < TARGET_SECONDS else "FAIL"
    print(f"target < {TARGET_SECONDS:g} s wall: {verdict} ({rep_w:.2f} s)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
