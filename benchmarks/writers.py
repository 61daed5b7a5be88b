"""Benchmark: the CPU of ``pofa analyze``'s output writers (tables, report tables, report input, manifest),
piece by piece, as one run of the command pays it.

    python3 benchmarks/writers.py [N_PATIENTS] [REPEATS]

The study is the cohort of the scale benchmark (``tests/reference/scale/make_cohorts.py``, 5,000 patients by
default). Each repeat is a fresh process (so that first-call costs count as in a run: libraries loaded by a
writer, the report template, the dependency versions): it reads the study and runs the analysis (not
timed), then times with the process CPU clock, in the order of a run: the identifying-column check (a run
makes it twice: validation and analysis), the output tables and their CSV files, the report input, the
report's tables (built, then written as CSV and XLSX), the report template, the dependency versions (asked
twice) and results.json's document asked a second time. The medians over the repeats are printed, in ms.
To compare two versions, run it with each on ``PYTHONPATH``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, pathlib, sys, tempfile, time
from pofa.analysis import output_tables, run_analysis, write_csv
from pofa.privacy import identifying_columns
from pofa.study import load_study

out = {}

def timed(key, f):
    t = time.process_time()
    r = f()
    out[key] = out.get(key, 0.0) + time.process_time() - t
    return r

st = load_study(sys.argv[1])
frames = {"patients": st.patients, "lesions": st.lesions, "failures": st.failures}
timed("identifying columns (once)",
      lambda: identifying_columns(frames, {t: st.covariates(t) for t in frames}, st.settings))
res = run_analysis(st)
d = pathlib.Path(tempfile.mkdtemp())
tabs = timed("output tables", lambda: output_tables(res))
for k, f in tabs.items():
    timed("CSV files (3)", lambda: write_csv(f, d / f"{k}.csv"))
from pofa.report.model import as_report_input
inp = timed("report input", lambda: as_report_input(res))
from pofa.report.tables import build_tables, write_table
tables = timed("report tables built", lambda: build_tables(inp))
(d / "tables").mkdir()
for t in tables:
    timed("report tables written (CSV + XLSX)", lambda: write_table(t, d / "tables"))
import jinja2
from pofa.report.html import _environment
timed("report template", lambda: _environment().get_template("report.html.j2"))
from pofa.report.manifest import dependency_versions
timed("dependency versions (twice)", dependency_versions)
timed("dependency versions (twice)", dependency_versions)
timed("results.json document (2nd time)", lambda: res.to_json(["x"]))
print(json.dumps(out))
"""


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    spec = importlib.util.spec_from_file_location("scale_make_cohorts",
                                                  ROOT / "tests" / "reference" / "scale" / "make_cohorts.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", str(ROOT / "src"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / f"n{n}"
        folder.mkdir()
        for name, text in gen.cohort(n, gen.SEEDS.get(n, 7 * n)).items():
            (folder / name).write_text(text, encoding="utf-8")
        runs = []
        for _ in range(repeats):
            done = subprocess.run([sys.executable, "-c", CHILD, str(folder)], env=env, check=True,
                                  capture_output=True, text=True)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    total = 0.0
    print(f"{n} patients, median of {repeats} processes (CPU, ms)")
    for key in runs[0]:
        ms = statistics.median(r[key] for r in runs) * 1000
        total += ms
        print(f"  {key:38s} {ms:7.1f}")
    print(f"  {'sum':38s} {total:7.1f}")


if __name__ == "__main__":
    main()
