"""Benchmark: validating a million-row CSV file of junk and a valid study of a million lesions, against a
bare ``pandas.read_csv`` of the same files.

Run as ``python3 benchmarks/validate_junk.py [--rows N] [--lesions M]``. It writes

* a study folder whose ``patients.csv`` holds ``N`` rows (default 1,000,000; about 44 MB) of random junk in
  every column (and a small ``lesions.csv`` of junk);
* a valid study of about ``M`` lesions (default 1,000,000; made by the independent generator of the
  reference tests, tests/reference/scale/make_cohorts.py, with M / 4.2 patients),

then measures, each in a fresh Python process of the same run:

* ``pofa validate``'s check, :func:`pofa.validation_stream.validate_study` (large CSV files block by block),
  plus making the findings' lines (what ``pofa validate STUDY | cat`` prints);
* the former whole-file check, ``pofa.load_study(folder).validate()`` (what ``pofa analyze`` runs);
* the baseline: ``pandas.read_csv(path, dtype=str)`` of every table.

It prints CPU time, wall time and peak resident memory of each and the ratios to the baseline. Every cell of
the junk file is bad, so the validator meets millions of problems; it keeps at most 20 findings of a kind one
by one and counts the rest, so the output stays a few hundred lines.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

_MEASURE = """
import json, resource, sys, time
t0, c0 = time.perf_counter(), time.process_time()
{body}
print(json.dumps({{"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0,
                   "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "out": out}}))
"""

POFA = """
from pofa.validation_stream import validate_study
from pofa.cli.output import finding_line
report = validate_study(sys.argv[1])
lines = [finding_line(f) for f in report.findings]
out = {"findings": len(report.findings), "represented": sum(f.more or 1 for f in report.findings)}
"""

WHOLE = """
import pofa
from pofa.cli.output import finding_line
report = pofa.load_study(sys.argv[1]).validate()
lines = [finding_line(f) for f in report.findings]
out = {"findings": len(report.findings), "represented": sum(f.more or 1 for f in report.findings)}
"""

BASELINE = """
import pathlib
import pandas as pd
frames = [pd.read_csv(p, dtype=str) for p in sorted(pathlib.Path(sys.argv[1]).glob("*.csv"))]
out = {"rows": sum(len(f) for f in frames)}
"""


def run(body: str, folder: Path) -> dict[str, object]:
    """Run ``body`` in a fresh Python process; its time, CPU time and peak memory."""
    code = _MEASURE.format(body=body)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    done = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True,
                          check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _valid_study(folder: Path, lesions: int) -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tests" / "reference" / "scale" / "make_cohorts.py"
    spec = importlib.util.spec_from_file_location("scale_make_cohorts", path)
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    folder.mkdir(parents=True)
    for name, text in gen.cohort(round(lesions / 4.2), 5).items():
        (folder / name).write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lesions", type=int, default=1_000_000)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_validate_scale import write_junk

    with tempfile.TemporaryDirectory(prefix="pofa-junk-") as tmp:
        junk, valid = Path(tmp) / "junk", Path(tmp) / "valid"
        write_junk(junk, args.rows)
        _valid_study(valid, args.lesions)
        for title, folder in ((f"junk: patients.csv of {args.rows:,} rows of junk", junk),
                              (f"valid study of about {args.lesions:,} lesions", valid)):
            size = sum(p.stat().st_size for p in folder.glob("*.csv"))
            rows = sum(p.read_bytes().count(b"\n") - 1 for p in folder.glob("*.csv"))
            print(f"{title} ({rows:,} rows in all, {size / 1e6:.0f} MB of CSV; load average "
                  f"{os.getloadavg()[0]:.1f})")
            base = run(BASELINE, folder)
            for name, body in (("pofa validate (block by block)", POFA),
                               ("whole-file check (load_study)", WHOLE)):
                m = run(body, folder)
                print(f"  {name}: {m['cpu']:.2f} s CPU, {m['wall']:.2f} s wall, {m['peak_mb']:.0f} MB peak; "
                      f"{m['out']['findings']} findings for {m['out']['represented']:,} problems; ratio to "
                      f"the baseline: CPU {m['cpu'] / base['cpu']:.1f}x, memory "
                      f"{m['peak_mb'] / base['peak_mb']:.1f}x")
            print(f"  baseline pandas.read_csv(dtype=str): {base['cpu']:.2f} s CPU, {base['wall']:.2f} s "
                  f"wall, {base['peak_mb']:.0f} MB peak")


if __name__ == "__main__":
    main()
