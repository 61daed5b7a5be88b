"""Benchmark: pofa's vectorised exchangeable-logit GEE against an R loop of geepack::geeglm.

    python3 benchmarks/gee_vs_r.py [--studies 1000] [--seed 1]

Simulates ``--studies`` lesion cohorts shaped like Figura et al. 2021 (63 patients, about 7.4 lesions
each, outcome correlated within patient) and fits 3 univariable GEE models per cohort (diameter >= 5 cm,
SUVmax >= 10, extranodal): the workload of the power analysis. Times

* pofa.stats.gee.gee_exchangeable_logit (this process);
* the same fits with geepack::geeglm in one Rscript process (timed inside R around the loop only, so R's
  start-up and reading the CSV are not counted), when Rscript and geepack are available;
* statsmodels GEE (ddof_scale=0, the geepack convention) on a subset, always.

It prints the time per fit, the ratios, and the largest differences of the coefficients and SEs between pofa
and geeglm (run with its default control, epsilon 1e-4).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pofa.stats.gee import gee_exchangeable_logit

TERMS = ("bulky", "suv10", "extranodal")

R_SCRIPT = r"""
suppressPackageStartupMessages(library(geepack))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], colClasses = c(patient_id = "character"))
studies <- split(d, d$study)
terms <- c("bulky", "suv10", "extranodal")
out <- vector("list", length(studies) * 3)
k <- 0
t0 <- proc.time()[["elapsed"]]
for (s in studies) {
  s <- s[order(s$patient_id), ]
  id <- match(s$patient_id, unique(s$patient_id))
  for (term in terms) {
    f <- geeglm(as.formula(paste("y ~", term)), id = id, data = s, family = binomial, corstr = "exchangeable")
    k <- k + 1
    out[[k]] <- c(s$study[1], match(term, terms), coef(f), sqrt(diag(f$geese$vbeta)))
  }
}
elapsed <- proc.time()[["elapsed"]] - t0
res <- do.call(rbind, out)
colnames(res) <- c("study", "term", "b0", "b1", "se0", "se1")
write.csv(res, args[2], row.names = FALSE)
cat(sprintf("%.6f\n", elapsed))
"""


def simulate(n_studies: int, seed: int) -> pd.DataFrame:
    """Lesion cohorts of 63 patients with 1-15 lesions (mean ~7.4) and a patient random intercept (SD 1)."""
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(n_studies):
        sizes = np.clip(rng.poisson(6.4, 63) + 1, 1, 15)
        pid = np.repeat([f"{s}.{k + 1}" for k in range(63)], sizes)  # text ids, "0.1" != "0.10"
        n = pid.shape[0]
        u = np.repeat(rng.normal(0.0, 1.0, 63), sizes)
        bulky = rng.random(n) < 0.25
        suv10 = rng.random(n) < 0.4 + 0.2 * bulky
        extranodal = rng.random(n) < 0.3
        eta = -1.5 + 0.85 * bulky + 0.7 * suv10 + 0.4 * extranodal + u
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(int)
        frames.append(
            pd.DataFrame(
                {
                    "study": s,
                    "patient_id": pid,
                    "y": y,
                    "bulky": bulky.astype(int),
                    "suv10": suv10.astype(int),
                    "extranodal": extranodal.astype(int),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def fit_all_pofa(data: pd.DataFrame) -> tuple[float, np.ndarray]:
    studies = [(s, g) for s, g in data.groupby("study", sort=True)]
    prepared = [
        (
            s,
            g["y"].to_numpy(float),
            g["patient_id"].to_numpy(str),
            {t: np.column_stack([np.ones(len(g)), g[t].to_numpy(float)]) for t in TERMS},
        )
        for s, g in studies
    ]
    rows = []
    t0 = time.perf_counter()
    for s, y, groups, Xs in prepared:
        for j, t in enumerate(TERMS):
            fit = gee_exchangeable_logit(y, Xs[t], groups)
            rows.append((s, j + 1, *fit.params, *fit.bse, fit.converged))
    elapsed = time.perf_counter() - t0
    return elapsed, np.array(rows, dtype=float)


def fit_statsmodels(data: pd.DataFrame, n_studies: int) -> float:
    import statsmodels.api as sm

    studies = [g for _, g in data.groupby("study", sort=True)][:n_studies]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for g in studies:
            for t in TERMS:
                X = np.column_stack([np.ones(len(g)), g[t].to_numpy(float)])
                sm.GEE(
                    g["y"].to_numpy(float),
                    X,
                    groups=g["patient_id"].to_numpy(str),
                    family=sm.families.Binomial(),
                    cov_struct=sm.cov_struct.Exchangeable(),
                ).fit(ddof_scale=0)
    return time.perf_counter() - t0


def run_r(data: pd.DataFrame) -> tuple[float, pd.DataFrame] | None:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    check = subprocess.run([rscript, "-e", "library(geepack)"], capture_output=True, text=True)
    if check.returncode != 0:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        (tmpd / "fit.R").write_text(R_SCRIPT)
        data.to_csv(tmpd / "data.csv", index=False)
        proc = subprocess.run(
            [rscript, str(tmpd / "fit.R"), str(tmpd / "data.csv"), str(tmpd / "out.csv")],
            capture_output=True,
            text=True,
            check=True,
        )
        elapsed = float(proc.stdout.strip().splitlines()[-1])
        return elapsed, pd.read_csv(tmpd / "out.csv")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--studies", type=int, default=1000, help="simulated 63-patient cohorts (default 1000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--statsmodels-studies", type=int, default=50, help="cohorts timed with statsmodels")
    args = ap.parse_args(argv)

    data = simulate(args.studies, args.seed)
    n_fits = 3 * args.studies
    print(
        f"{args.studies} simulated cohorts of 63 patients, mean {len(data) / args.studies:.0f} lesions; "
        f"{n_fits} univariable exchangeable-logit GEE fits"
    )

    fit_all_pofa(data[data["study"] < 5])  # warm-up
    t_pofa, ours = fit_all_pofa(data)
    n_failed = int((ours[:, -1] == 0).sum())
    print(
        f"pofa gee_exchangeable_logit: {t_pofa:8.2f} s total, {1e3 * t_pofa / n_fits:6.3f} ms per fit"
        f" ({n_failed} not converged)"
    )

    n_sm = min(args.statsmodels_studies, args.studies)
    t_sm = fit_statsmodels(data, n_sm) / (3 * n_sm)
    print(
        f"statsmodels GEE (ddof_scale=0): {1e3 * t_sm:6.3f} ms per fit ({3 * n_sm} fits); "
        f"pofa is {t_sm / (t_pofa / n_fits):.1f}x faster"
    )

    r = run_r(data)
    if r is None:
        print("Rscript with geepack not found: no R comparison (statsmodels above is the baseline).")
        return 0
    t_r, ref = r
    print(
        f"R geepack::geeglm loop:      {t_r:8.2f} s total, {1e3 * t_r / n_fits:6.3f} ms per fit "
        "(timed inside R)"
    )
    print(f"ratio R / pofa: {t_r / t_pofa:.1f}x")
    ok = ours[:, -1] == 1
    key = pd.DataFrame(ours[ok][:, :2], columns=["study", "term"])
    merged = key.merge(ref, on=["study", "term"], how="left")
    mine = ours[ok][:, 2:6]
    theirs = merged[["b0", "b1", "se0", "se1"]].to_numpy()
    # geeglm's default control stops at epsilon 1e-4, so its coefficients are a few 1e-6 from the root;
    # relative differences of coefficients near 0 mean nothing, so they are given in units of their SE.
    dcoef = np.abs(mine[:, :2] - theirs[:, :2])
    rel_se = np.abs(mine[:, 2:] / theirs[:, 2:] - 1.0)
    print(
        f"largest difference vs geeglm (default control, epsilon 1e-4): coefficients "
        f"{np.nanmax(dcoef):.1e} absolute = {np.nanmax(dcoef / theirs[:, 2:]):.1e} SE; "
        f"SEs {np.nanmax(rel_se):.1e} relative"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
