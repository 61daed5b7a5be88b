"""Benchmark: ``pofa analyze`` and pofa's statistics beside an R script fitting the same models, in CPU time,
wall time and peak memory, from 63 to 100,000 patients, in one run.

Run: ``python3 benchmarks/scale_vs_r.py [--sizes 63 1000 5000 20000 100000] [--repeats 3]`` (the README's
scale table was printed by this command).

Each cohort is a study folder made by the independent generator of the reference tests
(``tests/reference/scale/make_cohorts.py``, which shares nothing with pofa's simulator; sizes without a fixed
seed use seed = 7 * size). For each size, three child processes run one after the other, each timed on its own
(CPU = user + system from ``os.wait4``, peak memory = the child's maximum resident set size), and the three
are repeated ``--repeats`` times in turn: the table gives the median CPU and wall time and the largest peak
(on a shared machine one run's CPU time varies by 20-30%):

* **pofa analyze**: the command itself, ``python3 -m pofa analyze STUDY --out OUT``: reading, validation,
  classification, every statistic of results.json, the output tables and the HTML report with its figures
  (each drawn once, as SVG: the 300-dpi PNG is written only on demand, `--png`) and tables;
* **pofa statistics**: ``python3 -c ...`` importing pofa, reading, validating and classifying the study
  (:func:`pofa.analysis.run_analysis` without report steps) and computing every statistical entry of
  results.json that R's script computes too (:mod:`pofa.stats.study_stats`: lesion models, survival and
  follow-up, patient models, competing risks, cut-points) -- the work of R's script, without the report;
* **R**: ``Rscript`` reading the same CSVs, deriving the outcomes (as tests/reference/scale/reference.R does)
  and fitting the same models with their default controls: ``glm`` and ``geepack::geeglm`` (3 univariable +
  1 multivariable each), ``survfit`` (log-log) medians and landmarks of PFS and OS and the reverse-KM
  follow-up, ``coxph`` (Efron) + ``survdiff`` + ``cox.zph`` for PFS and OS, ``cmprsk::cuminc`` (6 fits with
  Gray's tests) and ``maxstat::maxstat.test`` (2 markers x Lau92/Lau94).

All three include their start-up and library loading (pofa's modules compiled to bytecode beforehand, as
an installed pofa is). Ratios are pofa / R (< 1: pofa cheaper). The load
average of the machine is printed beside each size (the machine may be shared: CPU time is the figure to
compare; wall time grows with the load). A few figures are compared between pofa and R as a check that both
did the same work.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

POFA_CHILD = r"""
import json, sys, time
t0 = time.process_time()
import pofa
from pofa.analysis import AnalysisOptions, run_analysis
from pofa.stats import study_stats as ss
res = run_analysis(pofa.load_study(sys.argv[1]), AnalysisOptions(), steps=())
t1 = time.process_time()
out = {}
out.update(ss.lesion_level(res.lesions, res.settings))
out.update(ss.survival(res.patients, res.settings))
out.update(ss.patient_level(res.patients, res.lesions, res.settings))
out.update(ss.competing_risks(res.patients, res.lesions, res.settings))
out.update(ss.cutpoints(res.patients, res.settings))
t2 = time.process_time()
rows = out["lesion_models"]
multi = [r["or"] for r in rows if r["model"] == "multivariable" and r["method"] == "gee"]
print(json.dumps({"stats_cpu": t2 - t1, "load_cpu": t1 - t0,
                  "n_lesions": out["lesion_models_info"]["n_lesions"],
                  "gee_multi_or": multi, "pfs_hr": out["patient_models"][0]["hr"],
                  "pfs_median": out["survival"]["pfs"]["median_months"],
                  "not_estimable": sum(r["or"] is None for r in rows)}))
"""

R_CHILD = r"""
suppressMessages({library(survival); library(geepack); library(cmprsk); library(maxstat); library(jsonlite)})
dir <- commandArgs(trailingOnly = TRUE)[1]
rd <- function(f) read.csv(file.path(dir, f), stringsAsFactors = FALSE, na.strings = "",
                           colClasses = c(patient_id = "character"))
pat <- rd("patients.csv"); les <- rd("lesions.csv"); fai <- rd("failures.csv")
t0 <- proc.time()
les$lesion_id <- as.character(les$lesion_id)
for (v in c("index_date", "last_followup_date", "progression_date", "death_date"))
  pat[[v]] <- as.Date(pat[[v]])
fai$scan_date <- as.Date(fai$scan_date)
prog <- pat$progression_date; death <- pat$death_date; end <- pat$last_followup_date
pe <- end; pe[!is.na(prog)] <- prog[!is.na(prog)]
pat$pfs_months <- as.numeric(pe - pat$index_date) / 30.4375
pat$pfs_event <- as.integer(!is.na(prog) | !is.na(death))
pat$os_months <- as.numeric(end - pat$index_date) / 30.4375
pat$os_event <- as.integer(!is.na(death))
fai$prog <- prog[match(fai$patient_id, pat$patient_id)]
win <- fai[!is.na(fai$prog) & fai$scan_date >= fai$prog & fai$scan_date <= fai$prog + 30, ]
named <- paste(win$patient_id, win$baseline_lesion_id)[!is.na(win$baseline_lesion_id)]
lp <- prog[match(les$patient_id, pat$patient_id)]
les$local_failure <- ifelse(is.na(lp), 0L, ifelse(!(les$patient_id %in% win$patient_id), NA_integer_,
                            as.integer(paste(les$patient_id, les$lesion_id) %in% named)))
les$x1 <- as.integer(les$diameter_cm >= 5); les$x2 <- as.integer(les$suvmax >= 10)
les$x3 <- as.integer(les$extranodal == "yes")
pat$bulky <- as.integer(pat$patient_id %in% les$patient_id[les$diameter_cm >= 5])
k <- les[!is.na(les$local_failure), ]
k <- k[order(k$patient_id, method = "radix"), ]
k$id <- match(k$patient_id, unique(k$patient_id))
z <- qnorm(0.975)
for (f in c("x1", "x2", "x3", "x1 + x2 + x3")) {
  fo <- as.formula(paste("local_failure ~", f))
  g <- summary(glm(fo, family = binomial, data = k))$coefficients
  e <- summary(geeglm(fo, family = binomial, data = k, id = id, corstr = "exchangeable"))$coefficients
}
gee_multi_or <- unname(exp(e$Estimate[-1]))
km <- function(tt, ev) {
  f <- survfit(Surv(tt, ev) ~ 1, conf.type = "log-log")
  list(q = quantile(f, 0.5, conf.int = TRUE), s = summary(f, times = c(6, 12, 24), extend = TRUE))
}
pfs <- km(pat$pfs_months, pat$pfs_event); os <- km(pat$os_months, pat$os_event)
fu <- km(pat$os_months, 1 - pat$os_event)
hr <- NULL
for (ep in c("pfs", "os")) {
  tt <- pat[[paste0(ep, "_months")]]; ev <- pat[[paste0(ep, "_event")]]
  fit <- coxph(Surv(tt, ev) ~ bulky, data = pat, ties = "efron")
  lr <- survdiff(Surv(tt, ev) ~ bulky, data = pat); zph <- cox.zph(fit)
  if (is.null(hr)) hr <- unname(exp(coef(fit)))
}
# competing risks (cmprsk::cuminc + Gray's test, timepoints 6/12/24): patients' cause of first progression
# (local component 1, de novo only 2, death without progression 3), lesions' local failure with death
# competing, overall and by bulky disease / each lesion factor
local_pat <- pat$patient_id %in% win$patient_id[!is.na(win$baseline_lesion_id)]
fp_end <- end; fp_end[!is.na(prog)] <- prog[!is.na(prog)]
fp_months <- as.numeric(fp_end - pat$index_date) / 30.4375
fp_status <- ifelse(!is.na(prog), ifelse(local_pat, 1L, 2L), ifelse(!is.na(death), 3L, 0L))
ki <- match(k$patient_id, pat$patient_id)
lf_status <- ifelse(k$local_failure == 1L, 1L, ifelse(!is.na(death[ki]), 2L, 0L))
lf_end <- end[ki]; lf_end[lf_status == 1L] <- prog[ki][lf_status == 1L]
lf_months <- as.numeric(lf_end - pat$index_date[ki]) / 30.4375
LM <- c(6, 12, 24)
for (f in list(cuminc(fp_months, fp_status), cuminc(fp_months, fp_status, pat$bulky),
               cuminc(lf_months, lf_status), cuminc(lf_months, lf_status, k$x1),
               cuminc(lf_months, lf_status, k$x2), cuminc(lf_months, lf_status, k$x3)))
  tp <- timepoints(f, LM)
# exploratory cut-points (maxstat::maxstat.test, log-rank, Lau92 and Lau94) of the largest diameter and the
# highest SUVmax for PFS
d <- data.frame(t = pat$pfs_months, e = pat$pfs_event,
                dmax = unname(tapply(les$diameter_cm, les$patient_id, max)[pat$patient_id]),
                smax = unname(tapply(les$suvmax, les$patient_id, max)[pat$patient_id]))
for (col in c("dmax", "smax")) for (pm in c("Lau92", "Lau94"))
  ms <- maxstat.test(as.formula(paste("Surv(t, e) ~", col)), data = d, smethod = "LogRank", pmethod = pm)
t1 <- proc.time()
cpu <- function(t) t[["user.self"]] + t[["sys.self"]]
cat(toJSON(list(stats_cpu = unname(cpu(t1) - cpu(t0)),
                n_lesions = nrow(k), gee_multi_or = gee_multi_or, pfs_hr = hr,
                pfs_median = unname(pfs$q$quantile)), digits = NA, auto_unbox = TRUE))
"""


def _generator() -> Any:
    path = ROOT / "tests" / "reference" / "scale" / "make_cohorts.py"
    spec = importlib.util.spec_from_file_location("scale_make_cohorts", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float, str]:
    """Run a child process; return its CPU seconds (user + system), peak RSS in MB, wall seconds, stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {err.read().decode()[-800:]}")
        return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, wall, out.read().decode()


def median_run(runs: list[tuple[float, float, float, str]]) -> tuple[float, float, float, str]:
    """The median CPU and wall seconds of repeated runs, their largest peak, and the median run's output."""
    order = sorted(range(len(runs)), key=lambda i: runs[i][0])
    mid = runs[order[len(order) // 2]]
    walls = sorted(r[2] for r in runs)
    return mid[0], max(r[1] for r in runs), walls[len(walls) // 2], mid[3]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[63, 1000, 5000, 20000, 100000])
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs of each process per size (the median CPU and wall time, the largest peak)")
    args = ap.parse_args()
    gen = _generator()
    rscript = shutil.which("Rscript")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    # pofa's modules compiled to bytecode first, as an installed pofa is (pip compiles at install; a source
    # checkout caches it on first import unless PYTHONDONTWRITEBYTECODE is set): without it every pofa
    # process here would compile pofa's sources, about 0.3 s of CPU, which no user's run pays
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src" / "pofa")], check=True)
    rows = []
    nan = float("nan")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            folder = Path(tmp) / f"n{n}"
            seed = gen.SEEDS.get(n, 7 * n)
            folder.mkdir()
            for name, text in gen.cohort(n, seed).items():
                (folder / name).write_text(text, encoding="utf-8")
            load = os.getloadavg()[0]
            out = Path(tmp) / f"out{n}"
            a_runs, p_runs, r_runs = [], [], []
            for _ in range(args.repeats):  # interleaved, so that a slow spell of the machine hits all three
                a_runs.append(run_child(
                    [sys.executable, "-m", "pofa", "analyze", str(folder), "--out", str(out)], env))
                shutil.rmtree(out)
                p_runs.append(run_child([sys.executable, "-c", POFA_CHILD, str(folder)], env))
                if rscript:
                    r_runs.append(run_child([rscript, "-e", R_CHILD, str(folder)]))
            a_cpu, a_mem, a_wall, _ = median_run(a_runs)
            p_cpu, p_mem, p_wall, p_out = median_run(p_runs)
            p = json.loads(p_out)
            if rscript:
                r_cpu, r_mem, r_wall, r_out = median_run(r_runs)
                r = json.loads(r_out)
            else:
                r_cpu = r_mem = r_wall = nan
                r = {"stats_cpu": nan, "n_lesions": p["n_lesions"]}
            assert p["n_lesions"] == r["n_lesions"], (p, r)
            pairs = zip(p["gee_multi_or"], r.get("gee_multi_or", []), strict=False)
            agree = max((abs(a - b) / abs(b) for a, b in pairs), default=nan)
            rows.append({"n": n, "m": p["n_lesions"], "load": load, "a": (a_cpu, a_wall, a_mem),
                         "p": (p_cpu, p_wall, p_mem), "r": (r_cpu, r_wall, r_mem),
                         "models": (p["stats_cpu"], r["stats_cpu"]), "agree": agree,
                         "bad": p["not_estimable"]})
            shutil.rmtree(folder)
            print(f"n = {n}: pofa analyze {a_cpu:.1f} s CPU, {a_mem:.0f} MB; pofa statistics "
                  f"{p_cpu:.1f} s CPU, {p_mem:.0f} MB; R {r_cpu:.1f} s CPU, {r_mem:.0f} MB (load {load:.1f})",
                  flush=True)
    print("\nCPU = user + system of the whole process (start-up, reading, ..., models); wall = elapsed; "
          "peak = max RSS.")
    print("pofa analyze = the whole command (report and figures included); pofa statistics = the same "
          "work as R's script. Ratios pofa / R.\n")
    print("| patients (lesions) | load | pofa analyze: CPU s / wall s / peak MB | pofa statistics: CPU s / "
          "wall s / peak MB | R: CPU s / wall s / peak MB | CPU ratio analyze / statistics | "
          "memory ratio analyze / statistics |")
    print("|---|---|---|---|---|---|---|")
    for x in rows:
        (ac, aw, am), (pc, pw, pm), (rc, rw, rm) = x["a"], x["p"], x["r"]
        print(f"| {x['n']:,} ({x['m']:,}) | {x['load']:.1f} | {ac:.1f} / {aw:.1f} / {am:.0f} | "
              f"{pc:.1f} / {pw:.1f} / {pm:.0f} | {rc:.1f} / {rw:.1f} / {rm:.0f} | "
              f"{ac / rc:.2f} / {pc / rc:.2f} | {am / rm:.2f} / {pm / rm:.2f} |")
    print("\nmodels alone (CPU s inside each process, after reading): pofa / R")
    for x in rows:
        ps, rs = x["models"]
        print(f"  {x['n']:9,d} patients: {ps:.2f} / {rs:.2f} ({ps / rs:.2f})")
    print("\nagreement: multivariable GEE ORs pofa vs geeglm (default control), max relative difference; "
          "models not estimable in pofa:")
    for x in rows:
        print(f"  {x['n']:9,d} patients: {x['agree']:.1e}; {x['bad']}")


if __name__ == "__main__":
    main()
