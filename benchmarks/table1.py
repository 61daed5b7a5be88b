"""Benchmark: the report's Table 1 (patients) and lesion table, pofa's summaries beside tableone's, in CPU
time and peak memory, at 5,000, 20,000 and 100,000 patients in one run.

Run: ``python3 benchmarks/table1.py [--sizes 5000 20000 100000]`` (docs/report.md's figures were printed by
this command).

Each cohort is a study folder made by the independent generator of the reference tests
(``tests/reference/scale/make_cohorts.py``; sizes without a fixed seed use seed = 7 * size, as
benchmarks/scale_vs_r.py), read and classified by pofa (not timed). Then, in this process, one after the
other on the same input:

* **pofa**: :func:`pofa.report.tables.cohort.cohort_table` and
  :func:`~pofa.report.tables.cohort.lesion_table`, the two tables of the report as it writes them (their
  frames, the summaries of :mod:`pofa.report.tables.summary`, the rows);
* **tableone**: the same two frames (:func:`~pofa.report.tables.cohort.cohort_input`,
  :func:`~pofa.report.tables.cohort.lesion_input`) given to ``tableone.TableOne`` with the options the report
  used to give it (its rows left out: they cost pofa's side a few milliseconds).

CPU time is the process's (``time.process_time``), the best of ``--repeats`` runs; peak memory is the peak of
the allocations made during the call (``tracemalloc``, which numpy and pandas report to), measured in a
separate run because tracing slows Python down. What ``import tableone`` adds to a report process is
measured in a fresh child process that has loaded pandas, scipy.special and pofa.report.tables first (pofa's
summaries and their tests are part of pofa.report.tables).
Both tables are checked to be the same strings. Ratios are pofa / tableone.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import pofa  # noqa: E402
from pofa.analysis import AnalysisOptions, run_analysis  # noqa: E402
from pofa.report.model import ReportInput, as_report_input  # noqa: E402
from pofa.report.tables.cohort import (  # noqa: E402
    SummaryInput,
    cohort_input,
    cohort_table,
    lesion_input,
    lesion_table,
)
from pofa.report.tables.summary import summarise  # noqa: E402

IMPORT_CHILD = r"""
import importlib, sys, time
for name in sys.argv[2:]:
    importlib.import_module(name)
t0 = time.process_time()
importlib.import_module(sys.argv[1])
print(time.process_time() - t0)
"""


def _generator() -> Any:
    path = ROOT / "tests" / "reference" / "scale" / "make_cohorts.py"
    spec = importlib.util.spec_from_file_location("make_cohorts", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _tableone(si: SummaryInput) -> pd.DataFrame:
    from tableone import TableOne

    variables = [v for v in si.variables if si.frame[v.column].notna().any()]
    order: dict[str, list[str]] = {
        v.column: list(v.levels) for v in variables if v.kind == "category" and v.levels
    }
    if si.group is not None:
        order[si.group] = list(si.groups)
    grouped = si.group is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TableOne(
            si.frame,
            columns=[v.column for v in variables],
            categorical=[v.column for v in variables if v.kind == "category"],
            nonnormal=[v.column for v in variables if v.kind == "median"],
            groupby=si.group,
            rename={v.column: v.label for v in variables},
            pval=grouped,
            htest_name=grouped,
            smd=grouped,
            missing=True,
            include_null=False,
            order=order or None,
            overall=True,
            decimals=1,
        ).tableone


def _pofa_tables(inp: ReportInput) -> None:
    cohort_table(inp)
    lesion_table(inp)


def _tableone_tables(inp: ReportInput) -> None:
    _tableone(cohort_input(inp))
    _tableone(lesion_input(inp))


def _cpu(fn: Callable[[ReportInput], None], inp: ReportInput, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        fn(inp)
        best = min(best, time.process_time() - t0)
    return best


def _peak_mb(fn: Callable[[ReportInput], None], inp: ReportInput) -> float:
    tracemalloc.start()
    try:
        fn(inp)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _same_strings(inp: ReportInput) -> bool:
    for si in (cohort_input(inp), lesion_input(inp)):
        ours = summarise(si.frame, si.variables, si.group, si.groups).tableone.astype(str)
        if not ours.equals(_tableone(si).astype(str)):
            return False
    return True


def _import_cpu(module: str, *loaded: str) -> float:
    """CPU seconds of importing ``module`` in a fresh process that has imported ``loaded`` first."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    cmd = [sys.executable, "-c", IMPORT_CHILD, module, *loaded]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return float(out.stdout) if out.returncode == 0 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 100000])
    ap.add_argument("--repeats", type=int, default=3, help="CPU time: the best of this many runs")
    args = ap.parse_args()
    gen = _generator()
    # what tableone adds to a report process (pofa's summaries are part of pofa.report.tables)
    imp_t1 = _import_cpu("tableone", "pandas", "scipy.special", "pofa.report.tables")
    print(f"import tableone in a report process: {imp_t1:.3f} s CPU (pofa's summaries: no import of its own)")
    print(f"load average {os.getloadavg()[0]:.1f}")
    header = (
        f"{'patients':>9} {'lesions':>8} | {'pofa CPU s':>10} {'tableone CPU s':>14} {'ratio':>6} | "
        f"{'pofa peak MB':>12} {'tableone peak MB':>16} {'ratio':>6} | same strings"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            folder = Path(tmp) / f"n{n}"
            folder.mkdir()
            for name, text in gen.cohort(n, gen.SEEDS.get(n, 7 * n)).items():
                (folder / name).write_text(text, encoding="utf-8")
            inp = as_report_input(run_analysis(pofa.load_study(folder), AnalysisOptions(), steps=()))
            _pofa_tables(inp)  # warm-up: first-call costs (lazy imports) are not the tables'
            _tableone_tables(inp)
            cpu_p, cpu_t = _cpu(_pofa_tables, inp, args.repeats), _cpu(_tableone_tables, inp, args.repeats)
            mem_p, mem_t = _peak_mb(_pofa_tables, inp), _peak_mb(_tableone_tables, inp)
            same = "yes" if _same_strings(inp) else "NO"
            print(
                f"{n:>9,} {len(inp.lesions):>8,} | {cpu_p:>10.3f} {cpu_t:>14.3f} {cpu_p / cpu_t:>6.3f} | "
                f"{mem_p:>12.1f} {mem_t:>16.1f} {mem_p / mem_t:>6.3f} | {same}",
                flush=True,
            )


if __name__ == "__main__":
    main()
