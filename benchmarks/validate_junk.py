"""Benchmark: validating a million-row CSV file of junk, against a bare ``pandas.read_csv`` of it.

Run as ``python3 benchmarks/validate_junk.py [--rows N]``. It writes a study folder whose ``patients.csv``
holds ``N`` rows (default 1,000,000; about 44 MB) of random junk in every column (and a small ``lesions.csv``
of junk), then measures, each in a fresh Python process of the same run:

* ``pofa.load_study(folder).validate()`` plus printing the findings one per line (what ``pofa validate
  STUDY | cat`` does);
* the baseline: ``pandas.read_csv(patients.csv, dtype=str)`` and of lesions.csv.

It prints CPU time, wall time and peak resident memory of both and their ratios. Every cell is bad, so the
validator meets millions of problems; it keeps at most 20 findings of a kind one by one and counts the rest,
so the output stays a few hundred lines and memory follows the file, not the number of findings.
"""

from __future__ import annotations

import argparse
import json
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
import pofa
from pofa.cli.output import finding_line
report = pofa.load_study(sys.argv[1]).validate()
lines = [finding_line(f) for f in report.findings]
out = {"findings": len(report.findings), "represented": sum(f.more or 1 for f in report.findings)}
"""

BASELINE = """
import pandas as pd
frames = [pd.read_csv(f"{sys.argv[1]}/{t}.csv", dtype=str) for t in ("patients", "lesions")]
out = {"rows": sum(len(f) for f in frames)}
"""


def run(body: str, folder: Path) -> dict[str, object]:
    """Run ``body`` in a fresh Python process; its time, CPU time and peak memory."""
    code = _MEASURE.format(body=body)
    done = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_validate_scale import write_junk

    with tempfile.TemporaryDirectory(prefix="pofa-junk-") as tmp:
        folder = Path(tmp) / "junk"
        write_junk(folder, args.rows)
        size = (folder / "patients.csv").stat().st_size
        base = run(BASELINE, folder)
        pofa = run(POFA, folder)
    print(f"patients.csv: {args.rows:,} rows of junk ({size / 1e6:.0f} MB)")
    print(f"pofa validate: {pofa['cpu']:.2f} s CPU, {pofa['wall']:.2f} s wall, "
          f"{pofa['peak_mb']:.0f} MB peak; "
          f"{pofa['out']['findings']} findings printed for {pofa['out']['represented']:,} problems")
    print(f"baseline pandas.read_csv(dtype=str): {base['cpu']:.2f} s CPU, {base['wall']:.2f} s wall, "
          f"{base['peak_mb']:.0f} MB peak")
    print(f"ratio pofa / baseline: CPU {pofa['cpu'] / base['cpu']:.1f}x, peak memory "
          f"{pofa['peak_mb'] / base['peak_mb']:.1f}x")


if __name__ == "__main__":
    main()
