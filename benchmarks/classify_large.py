"""Benchmark: ``pofa analyze`` (load + validate + classify + features + write) on a large simulated study.

Generates a 10,000-patient / 75,000-lesion study with failure rows (named local failures, new lesions with
coordinates that geometry assigns, later events) as CSV in a temporary folder, then times, in one process:

* baseline: ``pandas.read_csv`` of the same three files (text columns, no checks);
* pofa, geometry off and geometry on: ``load_study`` + ``validate`` + ``run_analysis`` + ``write_outputs``,
  the work of ``pofa analyze`` without the interpreter start-up (wall-clock and CPU time: on a shared machine
  the CPU time is the steadier figure);
* once, the command ``python3 -m pofa analyze`` itself in a subprocess.

Run: ``python3 benchmarks/classify_large.py``. Prints the best of ``--repeats`` runs and the ratio to the
baseline. Target: under 5 s for the whole analysis.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

import pofa
from pofa.analysis import AnalysisOptions, run_analysis, write_outputs


def make_study(folder: Path, n_patients: int = 10_000, n_lesions: int = 75_000, seed: int = 20211145) -> dict:
    """Write patients.csv, lesions.csv and failures.csv of a valid simulated study; return its sizes."""
    rng = np.random.default_rng(seed)
    pids = np.array([f"P{i:05d}" for i in range(n_patients)])
    # Lesions per patient: 1 + Poisson, rescaled so that the total is exactly n_lesions.
    counts = 1 + rng.poisson((n_lesions - n_patients) / n_patients, n_patients)
    while counts.sum() != n_lesions:
        i = rng.integers(n_patients)
        if counts.sum() > n_lesions and counts[i] > 1:
            counts[i] -= 1
        elif counts.sum() < n_lesions:
            counts[i] += 1
    index = pd.Timestamp("2016-01-01") + pd.to_timedelta(rng.integers(0, 1500, n_patients), unit="D")
    follow = rng.integers(60, 1800, n_patients)
    recurred = rng.random(n_patients) < 0.57
    prog_day = np.minimum(rng.integers(20, 400, n_patients), follow)
    dead = rng.random(n_patients) < 0.35
    lfu = index + pd.to_timedelta(follow, unit="D")
    patients = pd.DataFrame({
        "patient_id": pids,
        "index_date": index.strftime("%Y-%m-%d"),
        "last_followup_date": lfu.strftime("%Y-%m-%d"),
        "progression_date": np.where(
            recurred, (index + pd.to_timedelta(prog_day, unit="D")).strftime("%Y-%m-%d"), ""),
        "death_date": np.where(dead, lfu.strftime("%Y-%m-%d"), ""),
        "age": rng.integers(25, 85, n_patients),
    })
    owner = np.repeat(np.arange(n_patients), counts)
    within = np.concatenate([np.arange(c) for c in counts])
    diameter = np.round(rng.lognormal(1.0, 0.6, n_lesions), 1).clip(0.5, 25)
    # Lesions of a patient sit on a wide grid so that baseline spheres do not overlap each other.
    xyz = np.stack([(within % 5) * 300.0 - 600, (within // 5 % 5) * 300.0 - 600, (within // 25) * 300.0],
                   axis=1)
    lesions = pd.DataFrame({
        "patient_id": pids[owner],
        "lesion_id": [f"L{j + 1}" for j in within],
        "site": rng.choice(["mediastinum", "neck", "abdomen", "liver", "bone"], n_lesions),
        "extranodal": rng.choice(["yes", "no"], n_lesions),
        "diameter_cm": diameter,
        "suvmax": np.round(rng.lognormal(2.2, 0.5, n_lesions), 1).clip(1, 60),
        "x_mm": xyz[:, 0], "y_mm": xyz[:, 1], "z_mm": xyz[:, 2],
        "mtv_ml": np.round(rng.lognormal(2.5, 1.0, n_lesions), 1),
    })
    # Failure rows of recurrent patients: each lesion fails (named) with p = 0.3; 0-2 new lesions, half of
    # them placed on a baseline lesion without an id (geometry makes them local); some rows are later events.
    first = np.cumsum(counts) - counts
    rows = []
    for p in np.flatnonzero(recurred):
        day0 = index[p] + pd.Timedelta(days=int(prog_day[p]))
        k = 0
        for j in range(counts[p]):
            if rng.random() < 0.3:
                k += 1
                later = rng.random() < 0.15
                after = int(rng.integers(31, 200)) if later else int(rng.integers(0, 31))
                day = min(int(prog_day[p]) + after, int(follow[p]))
                scan = index[p] + pd.Timedelta(days=day)
                rows.append((pids[p], f"F{k}", scan, f"L{j + 1}", "", "", *xyz[first[p] + j],
                             diameter[first[p] + j]))
        for _ in range(int(rng.integers(0 if k else 1, 3))):
            k += 1
            if rng.random() < 0.5:
                j = int(rng.integers(counts[p]))
                centre = xyz[first[p] + j] + rng.normal(0, 5, 3)
            else:
                centre = np.array([rng.uniform(-900, 900), rng.uniform(-900, 900), rng.uniform(2000, 2500)])
            rows.append((pids[p], f"F{k}", day0, "", "lung", "yes", *centre, 1.5))
    failures = pd.DataFrame(rows, columns=["patient_id", "failure_id", "scan_date", "baseline_lesion_id",
                                           "site", "extranodal", "x_mm", "y_mm", "z_mm", "diameter_cm"])
    failures["scan_date"] = pd.to_datetime(failures["scan_date"]).dt.strftime("%Y-%m-%d")
    for c in ("x_mm", "y_mm", "z_mm"):
        failures[c] = failures[c].round(1)
    patients.to_csv(folder / "patients.csv", index=False)
    lesions.to_csv(folder / "lesions.csv", index=False)
    failures.to_csv(folder / "failures.csv", index=False)
    return {"patients": n_patients, "lesions": int(counts.sum()), "failures": len(failures)}


@dataclass(frozen=True)
class Timing:
    """Best wall-clock and best CPU (process) time of several runs, in seconds."""

    wall: float
    cpu: float
    walls: tuple[float, ...]

    def __str__(self) -> str:
        return f"wall {self.wall:.2f} s (median {statistics.median(self.walls):.2f} s), CPU {self.cpu:.2f} s"


def best_of(repeats: int, fn: Callable[[], object]) -> Timing:
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        cpus.append(time.process_time() - c0)
        walls.append(time.perf_counter() - w0)
    return Timing(min(walls), min(cpus), tuple(walls))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pofa-bench-"))
    try:
        study_dir = work / "study"
        study_dir.mkdir()
        t0 = time.perf_counter()
        sizes = make_study(study_dir)
        print(f"generated {sizes} in {time.perf_counter() - t0:.1f} s")

        def baseline() -> None:
            for name in ("patients", "lesions", "failures"):
                pd.read_csv(study_dir / f"{name}.csv", dtype=str, keep_default_na=False)

        def analyze(geometry: bool) -> Callable[[], object]:
            def run() -> object:
                study = pofa.load_study(study_dir)
                assert study.validate().ok, study.validate().errors[:3]
                classification = replace(study.settings.classification, use_geometry=geometry)
                settings = replace(study.settings, classification=classification)
                result = run_analysis(study, AnalysisOptions(settings=settings))
                return write_outputs(result, work / "out", force=True)
            return run

        base = best_of(args.repeats, baseline)
        off = best_of(args.repeats, analyze(False))
        on = best_of(args.repeats, analyze(True))
        result = run_analysis(pofa.load_study(study_dir), AnalysisOptions(settings=replace(
            pofa.Settings(), classification=replace(pofa.Settings().classification, use_geometry=True))))
        print(f"patterns (geometry on): {result.patterns.to_json()}")
        print(f"load average (1 min) during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"baseline pandas.read_csv of the 3 files: best {base}")
        for label, t in (("geometry off", off), ("geometry on ", on)):
            print(f"pofa analyze, {label}: best {t}; ratio to the baseline {t.wall / base.wall:.1f}x (wall), "
                  f"{t.cpu / base.cpu:.1f}x (CPU)")
        t0, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        command = [sys.executable, "-m", "pofa", "analyze", str(study_dir), "--out", str(work / "cli"),
                   "--force"]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        cli = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cli_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        assert done.returncode == 0, done.stderr
        print(f"the command 'python3 -m pofa analyze STUDY --out DIR' (with interpreter start-up and "
              f"imports): wall {cli:.2f} s, CPU {cli_cpu:.2f} s")
        print(f"target < 5 s (best wall time): {'met' if max(off.wall, on.wall) < 5 else 'NOT met'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
