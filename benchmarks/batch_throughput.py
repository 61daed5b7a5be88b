"""Throughput of ``pofa batch``: generated studies per second on a local Dask cluster with 1 and 2 workers.

Run: ``python3 benchmarks/batch_throughput.py [--patients 100] [--transforms]``.

Each patient is a tiny generated PET/CT study (tests/batch_data.py: 32 x 40 x 40 voxels of 5 mm): baseline SUV
+ CT + organ map, and every second patient a failure scan. By default pofa registers each failure scan to its
baseline (CT-based rigid + affine, the published recipe), as a real batch does; ``--transforms`` gives the
exact transform files instead (extraction and matching only). The clock runs from the first task submitted to
the last result (cluster start and worker imports excluded; both are printed); the merge into the study folder
is included. The baseline of the ratio is the 1-worker run, measured in the same process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    from batch_data import make_study
    from pofa.batch.runner import run_batch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=100)
    ap.add_argument("--transforms", action="store_true", help="give transform files (no registration)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()

    print(f"load average at the start (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    root = Path(tempfile.mkdtemp(prefix="pofa-batch-bench-"))
    try:
        t = time.perf_counter()
        s = make_study(root / "data", args.patients, seed=1, transforms=args.transforms)
        n_fail = sum(t.has_failure for t in s.truth)
        print(f"{args.patients} generated studies ({n_fail} with a failure scan, "
              f"{'transform files' if args.transforms else 'registered'}), written in "
              f"{time.perf_counter() - t:.1f} s")
        rates: dict[int, float] = {}
        for n in args.workers:
            t = time.perf_counter()
            res = run_batch(s.manifest, root / f"out{n}", workers=n)
            total = time.perf_counter() - t
            assert res.n_computed == args.patients and not res.errors
            rates[n] = args.patients / res.elapsed_s
            print(f"{n} worker(s): {res.elapsed_s:7.1f} s processing, {rates[n]:6.2f} studies/s = "
                  f"{60.0 * rates[n]:6.1f} patients per minute "
                  f"({'registration' if not args.transforms else 'transform files'}; "
                  f"{total:.1f} s with cluster start and worker imports)")
            t = time.perf_counter()
            again = run_batch(s.manifest, root / f"out{n}", workers=n)
            assert again.n_reused == args.patients
            print(f"          rerun (all done, skipped by content hash): {again.elapsed_s:.2f} s processing, "
                  f"{time.perf_counter() - t:.1f} s in all")
        print(f"load average at the end (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
              f"on {os.cpu_count()} CPUs (other processes on the machine slow every figure down)")
        base = args.workers[0]
        for n in args.workers[1:]:
            print(f"ratio {n} workers / {base} worker(s): {rates[n] / rates[base]:.2f}x studies/s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
