"""Benchmark: a simulation-based power analysis by pofa against the same fits in an R loop of geepack::geeglm.

    python3 benchmarks/power_vs_r.py [--studies 1000] [--seed 2021] [--workers 2]

Workload (issue 6): the power of 1,000 simulated 63-patient studies of the figura2021 preset
(``pofa.simulate``; about 7.4 lesions per patient, lesions correlated within patient), three univariable
exchangeable-logit GEEs of lesion local failure each (diameter >= 5 cm, SUVmax >= 10, extranodal):
3,000 fits.

* pofa, in one process: ``pofa.power.power(PlannedStudy(63, SimulatorOutcome(include_pfs=False)),
  replicates=1000, workers=0)``, end to end: simulating the 1,000 cohorts, the 3,000 GEE fits, the power
  table. Timed whole.
* pofa on a local Dask cluster (``--workers``, default 2): the same call, cluster start-up excluded (timed
  separately).
* R: the same 1,000 cohorts (the data pofa simulated, written once to CSV) fitted with ``geeglm(y ~ x, id,
  family = binomial, corstr = "exchangeable")`` in one Rscript process, timed inside R around the fitting loop
  only (R start-up, package loading and reading the CSV are not counted), then the same power table.

Prints the times, the ratio R / pofa, the two power tables and the largest differences between the
coefficients and SEs of pofa and geeglm (default control, epsilon 1e-4), and how many of the 3,000 tests
reach a different decision.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from pofa.power import PlannedStudy, SimulatorOutcome
from pofa.power.power import chunk_plan, power
from pofa.power.simulate import draw_simulator_replicates

TERMS = ("bulky", "suv_high", "extranodal")

R_SCRIPT = r"""
suppressPackageStartupMessages(library(geepack))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], colClasses = c(patient_id = "character"))
studies <- split(d, d$study)
terms <- c("bulky", "suv_high", "extranodal")
out <- vector("list", length(studies) * 3)
k <- 0
t0 <- proc.time()[["elapsed"]]
for (s in studies) {
  id <- match(s$patient_id, unique(s$patient_id))  # rows are sorted by patient: contiguous clusters
  for (term in terms) {
    f <- geeglm(as.formula(paste("y ~", term)), id = id, data = s, family = binomial,
                corstr = "exchangeable")
    k <- k + 1
    out[[k]] <- c(s$study[1], match(term, terms), coef(f), sqrt(diag(f$geese$vbeta)))
  }
}
elapsed <- proc.time()[["elapsed"]] - t0
res <- as.data.frame(do.call(rbind, out))
colnames(res) <- c("study", "term", "b0", "b1", "se0", "se1")
p <- 2 * pnorm(-abs(res$b1 / res$se1))
power <- tapply(p < 0.05, res$term, mean)
write.csv(res, args[2], row.names = FALSE)
cat(sprintf("power %s\n", paste(sprintf("%.4f", power), collapse = " ")))
cat(sprintf("R %s, geepack %s\n", getRversion(), packageVersion("geepack")))
cat(sprintf("%.6f\n", elapsed))
"""


def simulated_data(study: PlannedStudy, replicates: int, seed: int, chunk_size: int) -> pd.DataFrame:
    """The cohorts :func:`pofa.power.power` simulates for these settings (same chunk seeds), as one table."""
    assert isinstance(study.outcome, SimulatorOutcome)
    frames = []
    first = 0
    for n, ss in chunk_plan(replicates, seed, chunk_size):
        sim = draw_simulator_replicates(study.outcome, study.n_patients, n, ss)
        rep = np.repeat(np.arange(n), np.diff(sim.lesion_start))
        frames.append(pd.DataFrame({
            "study": first + rep,
            "patient_id": [f"{first + r}.{p % study.n_patients + 1}"  # text ids: "0.1" != "0.10"
                           for r, p in zip(rep, sim.patient, strict=True)],
            "y": sim.local_failure.astype(int),
            "bulky": sim.bulky.astype(int),
            "suv_high": sim.suv_high.astype(int),
            "extranodal": sim.extranodal.astype(int),
        }))
        first += n
    return pd.concat(frames, ignore_index=True)


def run_r(data: pd.DataFrame) -> tuple[float, pd.DataFrame, list[float], str] | None:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    if subprocess.run([rscript, "-e", "library(geepack)"], capture_output=True).returncode != 0:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "fit.R").write_text(R_SCRIPT)
        data.to_csv(d / "data.csv", index=False)
        proc = subprocess.run([rscript, str(d / "fit.R"), str(d / "data.csv"), str(d / "out.csv")],
                              capture_output=True, text=True, check=True)
        lines = proc.stdout.strip().splitlines()
        r_power = [float(v) for v in lines[-3].split()[1:]]
        return float(lines[-1]), pd.read_csv(d / "out.csv"), r_power, lines[-2]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--studies", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=2021)
    ap.add_argument("--chunk-size", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2,
                    help="local Dask workers for the parallel run (0: skip it)")
    args = ap.parse_args(argv)

    study = PlannedStudy(63, SimulatorOutcome(include_pfs=False))
    n_fits = 3 * args.studies
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"numpy {np.__version__}")
    power(study, replicates=20, seed=args.seed + 1, chunk_size=10)  # warm-up (imports, caches)

    t0 = time.perf_counter()
    res = power(study, replicates=args.studies, seed=args.seed, chunk_size=args.chunk_size, workers=0)
    t_pofa = time.perf_counter() - t0
    print(f"pofa power analysis, in one process: {t_pofa:7.2f} s for {args.studies} studies "
          f"({1e3 * t_pofa / n_fits:.3f} ms per fit, simulation included)")
    for t in res.tests:
        print(f"    {t.test:45s} power {t.power:.3f} (MC SE {t.mc_se:.3f}), mean OR {t.mean_estimate:.2f}, "
              f"{t.n_not_estimable} not estimable")

    if args.workers > 0:
        from pofa.power.dask_runner import ChunkRunner

        t0 = time.perf_counter()
        with ChunkRunner(args.workers) as runner:
            t_start = time.perf_counter() - t0
            power(study, replicates=20, seed=args.seed + 1, chunk_size=10, runner=runner)  # warm the workers
            t0 = time.perf_counter()
            par = power(study, replicates=args.studies, seed=args.seed, chunk_size=args.chunk_size,
                        runner=runner)
            t_par = time.perf_counter() - t0
        same = np.array_equal(par.estimates, res.estimates, equal_nan=True)
        print(f"pofa on a local Dask cluster, {args.workers} workers: {t_par:7.2f} s "
              f"(cluster start-up {t_start:.1f} s not counted); same numbers as in one process: {same}")

    data = simulated_data(study, args.studies, args.seed, args.chunk_size)
    print(f"{args.studies} simulated studies of 63 patients, {len(data) / args.studies:.1f} lesions per "
          "study on average, written to CSV for R")
    r = run_r(data)
    if r is None:
        print("Rscript with geepack not found: no R comparison.")
        return 0
    t_r, ref, r_power, r_version = r
    print(f"R loop of geepack::geeglm ({r_version}): {t_r:7.2f} s for {n_fits} fits "
          f"({1e3 * t_r / n_fits:.3f} ms per fit, timed inside R, fitting only)")
    print(f"    power by R: {', '.join(f'{t} {p:.3f}' for t, p in zip(TERMS, r_power, strict=True))}")
    print(f"ratio R / pofa (one process, simulation included): {t_r / t_pofa:.1f}x")
    if args.workers > 0:
        print(f"ratio R / pofa ({args.workers} Dask workers): {t_r / t_par:.1f}x")

    ref = ref.sort_values(["study", "term"])
    b1 = ref["b1"].to_numpy().reshape(args.studies, 3)
    se1 = ref["se1"].to_numpy().reshape(args.studies, 3)
    ok = np.isfinite(res.estimates)
    dcoef = np.abs(res.estimates - b1)[ok]
    dse = np.abs(res.std_errors / se1 - 1.0)[ok]
    r_reject = 2 * stats.norm.sf(np.abs(b1 / se1)) < 0.05
    differ = int(np.sum(r_reject != res.rejected))
    print(f"pofa vs geeglm (default control, epsilon 1e-4): largest |coef difference| {dcoef.max():.1e} "
          f"({(dcoef / se1[ok]).max():.1e} SE), largest relative SE difference {dse.max():.1e}; "
          f"{differ} of {n_fits} test decisions differ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
