"""Benchmark: validating a 10,000-patient / 75,000-lesion study (with failures).

Run as ``python3 benchmarks/validate_large.py [--patients N] [--repeat R]``. It writes a valid simulated study
(CSV) into a temporary folder, times ``pofa.load_study(folder).validate()`` (reading, parsing every cell,
every cross-table check), and compares it with a baseline measured in the same run: plain
``pandas.read_csv(path, dtype=str)`` of the same three files. The best of ``R`` repetitions is reported for
both.
The target on the development machine (2 cores) is under 5 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import pofa


def make_study(folder: Path, n_patients: int = 10_000, n_lesions: int = 75_000,
               seed: int = 2021) -> dict[str, int]:
    """Write a valid study of ``n_patients`` patients and exactly ``n_lesions`` lesions into ``folder``."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"P{i:05d}" for i in range(1, n_patients + 1)], dtype=object)
    index = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 5 * 365, n_patients), unit="D")
    followup_days = rng.integers(60, 6 * 365, n_patients)
    last_fu = index + pd.to_timedelta(followup_days, unit="D")
    progressed = rng.random(n_patients) < 0.57
    prog_days = (followup_days * rng.uniform(0.1, 0.9, n_patients)).astype(int) + 1
    progression = pd.Series(index + pd.to_timedelta(prog_days, unit="D")).where(progressed)
    died = rng.random(n_patients) < 0.3
    death = pd.Series(last_fu).where(died)
    patients = pd.DataFrame({
        "patient_id": ids,
        "index_date": index.strftime("%Y-%m-%d"),
        "last_followup_date": last_fu.strftime("%Y-%m-%d"),
        "progression_date": progression.dt.strftime("%Y-%m-%d").fillna(""),
        "death_date": death.dt.strftime("%Y-%m-%d").fillna(""),
        "age": rng.integers(20, 85, n_patients),
        "sex": rng.choice(["F", "M"], n_patients),
    })
    # Lesions per patient: at least one, total exactly n_lesions.
    counts = np.ones(n_patients, dtype=int)
    extra = rng.multinomial(n_lesions - n_patients, np.full(n_patients, 1 / n_patients))
    counts += extra
    owner = np.repeat(np.arange(n_patients), counts)
    within = np.concatenate([np.arange(1, c + 1) for c in counts])
    lesions = pd.DataFrame({
        "patient_id": ids[owner],
        "lesion_id": [f"L{k}" for k in within],
        "site": rng.choice(["mediastinum", "liver", "bone", "cervical lymph node", "spleen"], n_lesions),
        "extranodal": rng.choice(["yes", "no"], n_lesions),
        "diameter_cm": np.round(rng.gamma(2.0, 1.5, n_lesions) + 0.5, 1),
        "suvmax": np.round(rng.gamma(3.0, 3.0, n_lesions) + 1.0, 1),
        "x_mm": np.round(rng.normal(0, 100, n_lesions), 1),
        "y_mm": np.round(rng.normal(0, 100, n_lesions), 1),
        "z_mm": np.round(rng.normal(0, 300, n_lesions), 1),
        "bridging_rt": rng.choice(["yes", "no"], n_lesions, p=[0.2, 0.8]),
    })
    # Failures: every progressing patient has 1-4 failure lesions, a local one naming lesion L1 when possible.
    rows = []
    prog_idx = np.flatnonzero(progressed)
    n_fail = rng.integers(1, 5, prog_idx.size)
    for p, k in zip(prog_idx, n_fail, strict=True):
        scan = progression.iloc[p].strftime("%Y-%m-%d")
        for j in range(k):
            local = j < counts[p] and rng.random() < 0.7
            rows.append((ids[p], f"F{j + 1}", scan, f"L{j + 1}" if local else "",
                         "" if local else "lung", "" if local else "yes"))
    failures = pd.DataFrame(rows, columns=["patient_id", "failure_id", "scan_date", "baseline_lesion_id",
                                           "site", "extranodal"])
    patients.to_csv(folder / "patients.csv", index=False)
    lesions.to_csv(folder / "lesions.csv", index=False)
    failures.to_csv(folder / "failures.csv", index=False)
    return {"patients": len(patients), "lesions": len(lesions), "failures": len(failures)}


def best_of(repeat: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--lesions", type=int, default=75_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pofa-bench-") as tmp:
        folder = Path(tmp)
        sizes = make_study(folder, args.patients, args.lesions)
        files = [folder / f"{t}.csv" for t in ("patients", "lesions", "failures")]

        def baseline() -> None:
            for f in files:
                pd.read_csv(f, dtype=str)

        report = pofa.load_study(folder).validate()
        if report.findings:
            raise SystemExit(f"the simulated study is not valid: {report.findings[:3]}")
        t_base = best_of(args.repeat, baseline)
        t_pofa = best_of(args.repeat, lambda: pofa.load_study(folder).validate())
        # The same tables as Parquet (text columns), for the record: reading Parquet is cheaper than CSV.
        pq_folder = folder / "parquet"
        pq_folder.mkdir()
        for f in files:
            pd.read_csv(f, dtype=str, keep_default_na=False).to_parquet(pq_folder / f"{f.stem}.parquet")
        t_pq_base = best_of(args.repeat, lambda: [pd.read_parquet(p) for p in pq_folder.iterdir()])
        t_pq = best_of(args.repeat, lambda: pofa.load_study(pq_folder).validate())
    print(f"study: {sizes['patients']} patients, {sizes['lesions']} lesions, "
          f"{sizes['failures']} failure rows (CSV)")
    print(f"baseline pandas.read_csv(dtype=str) of the three files: {t_base:.3f} s (best of {args.repeat})")
    print(f"pofa.load_study(...).validate():                        {t_pofa:.3f} s (best of {args.repeat})")
    verdict = "met" if t_pofa < 5 else "NOT met"
    print(f"ratio pofa / baseline: {t_pofa / t_base:.1f}x; target < 5 s: {verdict}")
    print(f"Parquet: pofa {t_pq:.3f} s, baseline pandas.read_parquet {t_pq_base:.3f} s, "
          f"ratio {t_pq / t_pq_base:.1f}x")


if __name__ == "__main__":
    main()
