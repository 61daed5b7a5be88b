"""Benchmark: the statistics of ``pofa analyze`` vs R fitting the same models, on a 5,000-patient study.

Run: ``python3 benchmarks/analyze_stats_vs_r.py [--patients 5000] [--repeats 3] [--seed 2021]``

1. Simulates a study with :mod:`pofa.simulate` (preset figura2021, ``cohort.lesions_extra_mean = 6``:
   about 7 lesions per patient, ~35,000 lesions), classifies it with :func:`pofa.analysis.run_analysis`
   (timed, not part of the comparison) and writes the analysed patients.csv / lesions.csv for R (as
   ``pofa analyze --show-dates`` does).
2. Times each statistics step of :mod:`pofa.stats.study_stats` on the analysed tables (the five steps that
   fill results.json), best of ``--repeats``.
3. Times an Rscript doing the same work on the same tables, block by block, best of ``--repeats`` with
   ``system.time`` **inside** one R process: R start-up, package loading and reading the CSVs are not
   counted (pofa's import time and table building are not counted either):

   ========== ======================================================================================
   lesion     glm(binomial) and geepack::geeglm(exchangeable): 3 univariable + 1 multivariable each,
              OR, Wald CI, p (sorting the lesions by patient, which geeglm needs, is included)
   survival   survfit (log-log) of PFS and OS: median with CI, 6/12/24-month landmarks; reverse-KM
              median follow-up
   patient    coxph (Efron) + survdiff + cox.zph, PFS and OS, any lesion >= 5 cm
   competing  cmprsk::cuminc + timepoints: patients overall and by any lesion >= 5 cm (Gray), lesions
              overall and by each of the 3 lesion factors (Gray)
   cutpoints  maxstat::maxstat.test (LogRank) of max diameter and max SUVmax, Lau92 and Lau94 (two calls
              per feature in R; pofa computes both p-values in one)
   ========== ======================================================================================

The ratio printed is pofa time / R time (< 1: pofa faster). A few results of the run are compared between
pofa and R as a check that both did the same work. Needs ``Rscript`` with survival, geepack, cmprsk, maxstat
and jsonlite; without it only pofa's times are printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import pofa
from pofa.analysis import AnalysisOptions, output_tables, run_analysis, write_csv
from pofa.simulate import load_params, simulate, write_study
from pofa.stats import study_stats as ss

R_SCRIPT = r"""
suppressMessages({library(survival); library(geepack); library(cmprsk); library(maxstat); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
pat <- read.csv(file.path(args[1], "patients.csv"), stringsAsFactors = FALSE,
                colClasses = c(patient_id = "character"))
les <- read.csv(file.path(args[1], "lesions.csv"), stringsAsFactors = FALSE,
                colClasses = c(patient_id = "character", lesion_id = "character"))
reps <- as.integer(args[2])
flag <- function(x) if (is.logical(x)) x else x == "true"
les$extranodal <- flag(les$extranodal)
pat$bulky <- as.integer(flag(pat$any_diameter_cm_ge_5))
z <- qnorm(0.975); LM <- c(6, 12, 24)
best <- function(f) {
  t <- Inf
  for (i in seq_len(reps)) t <- min(t, system.time(r <- f())[["elapsed"]])
  list(t = t, r = r)
}
wald <- function(est, se) cbind(or = exp(est), lo = exp(est - z * se), hi = exp(est + z * se),
                                p = 2 * pnorm(-abs(est / se)))[-1, , drop = FALSE]
lesion <- best(function() {
  k <- les[!is.na(les$local_failure), ]
  k <- k[order(k$patient_id, method = "radix"), ]
  k$id <- match(k$patient_id, unique(k$patient_id))
  k$x1 <- as.integer(k$diameter_cm >= 5); k$x2 <- as.integer(k$suvmax >= 10); k$x3 <- as.integer(k$extranodal)
  out <- list()
  for (f in c("x1", "x2", "x3", "x1 + x2 + x3")) {
    fo <- as.formula(paste("local_failure ~", f))
    g <- summary(glm(fo, family = binomial, data = k))$coefficients
    e <- as.data.frame(summary(geeglm(fo, family = binomial, data = k, id = id,
                                      corstr = "exchangeable"))$coefficients)
    out[[f]] <- list(logistic = wald(g[, 1], g[, 2]), gee = wald(e$Estimate, e$Std.err))
  }
  out })
km <- function(tt, ev) {
  f <- survfit(Surv(tt, ev) ~ 1, conf.type = "log-log")
  q <- quantile(f, 0.5, conf.int = TRUE); s <- summary(f, times = LM, extend = FALSE)
  c(q$quantile, q$lower, q$upper, s$surv, s$lower, s$upper)
}
survival <- best(function() {
  f <- survfit(Surv(pat$os_months, 1 - pat$os_event) ~ 1, conf.type = "log-log")
  q <- quantile(f, 0.5, conf.int = TRUE)
  list(pfs = unname(km(pat$pfs_months, pat$pfs_event)), os = unname(km(pat$os_months, pat$os_event)),
       followup = unname(c(q$quantile, q$lower, q$upper))) })
patient <- best(function() {
  lapply(c("pfs", "os"), function(ep) {
    tt <- pat[[paste0(ep, "_months")]]; ev <- pat[[paste0(ep, "_event")]]
    fit <- coxph(Surv(tt, ev) ~ bulky, data = pat, ties = "efron")
    b <- coef(fit); se <- sqrt(diag(fit$var))
    lr <- survdiff(Surv(tt, ev) ~ bulky, data = pat)
    zph <- cox.zph(fit)
    unname(c(exp(b), exp(b - z * se), exp(b + z * se), 2 * pnorm(-abs(b / se)),
             pchisq(lr$chisq, 1, lower.tail = FALSE), zph$table["GLOBAL", "p"]))
  }) })
competing <- best(function() {
  lk <- les[!is.na(les$lf_status) & !is.na(les$lf_months), ]
  fits <- list(cuminc(pat$fp_months, pat$fp_status),
               cuminc(pat$fp_months, pat$fp_status, pat$bulky),
               cuminc(lk$lf_months, lk$lf_status),
               cuminc(lk$lf_months, lk$lf_status, as.integer(lk$diameter_cm >= 5)),
               cuminc(lk$lf_months, lk$lf_status, as.integer(lk$suvmax >= 10)),
               cuminc(lk$lf_months, lk$lf_status, as.integer(lk$extranodal)))
  lapply(fits, function(f) list(tp = timepoints(f, LM)$est,
                                gray = if (is.null(f$Tests)) NULL else unname(f$Tests[, "stat"]))) })
cutpoints <- best(function() {
  lapply(c("max_diameter_cm", "max_suvmax"), function(col) {
    d <- data.frame(t = pat$pfs_months, e = pat$pfs_event, x = pat[[col]])
    m92 <- maxstat.test(Surv(t, e) ~ x, data = d, smethod = "LogRank", pmethod = "Lau92")
    m94 <- maxstat.test(Surv(t, e) ~ x, data = d, smethod = "LogRank", pmethod = "Lau94")
    unname(c(m92$estimate, m92$statistic, m92$p.value, m94$p.value))
  }) })
gee_multi <- lesion$r[["x1 + x2 + x3"]]$gee
cat(toJSON(list(
  times = list(lesion = lesion$t, survival = survival$t, patient = patient$t, competing = competing$t,
               cutpoints = cutpoints$t),
  values = list(gee_multi_or = unname(gee_multi[, "or"]),
                lesion_all = lapply(unname(lesion$r), function(m) list(logistic = unname(m$logistic),
                                                                       gee = unname(m$gee))),
                logistic_multi_or = unname(lesion$r[["x1 + x2 + x3"]]$logistic[, "or"]),
                pfs = survival$r$pfs, followup = survival$r$followup, cox = patient$r,
                gray_patients = competing$r[[2]]$gray, gray_lesions_bulky = competing$r[[4]]$gray,
                cutpoints = cutpoints$r)),
  digits = NA, auto_unbox = TRUE, na = "null"))
"""

STEPS: dict[str, str] = {
    "lesion": "lesion models: glm + geeglm, 4 + 4 fits",
    "survival": "KM PFS/OS, landmarks, follow-up",
    "patient": "Cox + log-rank + cox.zph, PFS/OS",
    "competing": "cuminc x 6 (+ Gray x 4)",
    "cutpoints": "maxstat x 2 (Lau92, Lau94)",
}


def best_of(f: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t0)
    return best, out


def make_study(folder: Path, n_patients: int, seed: int) -> Any:
    params = load_params("figura2021", assignments=["cohort.lesions_extra_mean=6"], n_patients=n_patients)
    t0 = time.perf_counter()
    sim = simulate(params, seed, preset="figura2021")
    write_study(sim, folder / "study")
    print(f"simulated ({time.perf_counter() - t0:.1f} s): {sim.summary()}")
    t0 = time.perf_counter()
    result = run_analysis(pofa.load_study(folder / "study"), AnalysisOptions(show_dates=True), steps=())
    print(f"read + classified + features ({time.perf_counter() - t0:.2f} s; not compared)")
    tables = output_tables(result)
    (folder / "analysed").mkdir()
    for stem in ("patients", "lesions"):
        write_csv(tables[stem], folder / "analysed" / f"{stem}.csv")
    return result


def pofa_steps(result: Any, repeats: int) -> tuple[dict[str, float], dict[str, Any]]:
    pat, les, settings = result.patients, result.lesions, result.settings
    calls: dict[str, Callable[[], Any]] = {
        "lesion": lambda: ss.lesion_level(les, settings),
        "survival": lambda: ss.survival(pat, settings),
        "patient": lambda: ss.patient_level(pat, les, settings),
        "competing": lambda: ss.competing_risks(pat, les, settings),
        "cutpoints": lambda: ss.cutpoints(pat, settings),
    }
    times: dict[str, float] = {}
    values: dict[str, Any] = {}
    for name, f in calls.items():
        times[name], out = best_of(f, repeats)
        values.update(out)
    return times, values


def run_r(folder: Path, repeats: int) -> dict[str, Any] | None:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    script = folder / "bench.R"
    script.write_text(R_SCRIPT, encoding="utf-8")
    proc = subprocess.run(
        [rscript, str(script), str(folder / "analysed"), str(repeats)],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    if proc.returncode != 0:
        print(f"Rscript failed ({proc.returncode}): {proc.stderr.strip()[:800]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout)


def _rel(a: Any, b: Any) -> float:
    x = np.array([np.nan if v is None else v for v in np.ravel(a)], dtype=float)
    y = np.array([np.nan if v is None else v for v in np.ravel(b)], dtype=float)
    ok = np.isfinite(y) & (y != 0)
    assert np.array_equal(np.isfinite(x), np.isfinite(y)), (x, y)
    return float(np.max(np.abs(x[ok] - y[ok]) / np.abs(y[ok]))) if ok.any() else 0.0


def agreement(values: dict[str, Any], r: dict[str, Any]) -> dict[str, float]:
    """Max relative difference pofa vs R for a few results of this run."""
    rows = values["lesion_models"]

    def ors(method: str) -> list[float]:
        return [x["or"] for x in rows if (x["model"], x["method"]) == ("multivariable", method)]

    pfs = values["survival"]["pfs"]
    km = [pfs["median_months"], pfs["ci_low"], pfs["ci_high"]]
    for k in ("survival", "ci_low", "ci_high"):
        km += [lm[k] for lm in pfs["landmarks"]]
    fu = values["followup"]
    cox = [[p[k] for k in ("hr", "ci_low", "ci_high", "p", "logrank_p")] for p in values["patient_models"]]
    zph = [c["p"] for c in values["patient_models_info"]["ph_checks"]]
    gray_p = [c["gray"]["statistic"] for c in values["competing_risks"]["patients"]["by_group"]["causes"]]
    gray_l = [c["gray"]["statistic"] for c in values["competing_risks"]["lesions"]["by_factor"][0]["causes"]]
    cuts = [[c[k] for k in ("cutpoint", "statistic", "p_lau92", "p_lau94")] for c in values["cutpoints"]]
    v = r["values"]
    # every lesion-model figure: OR, CI limits and p of each univariable and the multivariable model
    terms = ["diameter_cm>=5", "suvmax>=10", "extranodal"]
    specs = [("univariable", [t]) for t in terms] + [("multivariable", terms)]
    diffs = {"logistic": 0.0, "gee": 0.0}
    for (model, names), rm in zip(specs, v["lesion_all"], strict=True):
        for method in diffs:
            mine = [[x[k] for k in ("or", "ci_low", "ci_high", "p")] for x in rows
                    if (x["model"], x["method"]) == (model, method) and x["term"] in names]
            diffs[method] = max(diffs[method], _rel(mine, rm[method]))
    return {
        "logistic ORs, CIs, p, all models (glm default control)": diffs["logistic"],
        "GEE ORs, CIs, p, all models (geeglm default control)": diffs["gee"],
        "GEE multivariable ORs (geeglm default control)": _rel(ors("gee"), v["gee_multi_or"]),
        "logistic multivariable ORs (glm)": _rel(ors("logistic"), v["logistic_multi_or"]),
        "KM PFS median, CI, landmarks": _rel(km, v["pfs"]),
        "median follow-up and CI": _rel([fu["median_months"], fu["ci_low"], fu["ci_high"]], v["followup"]),
        "Cox HR, CI, p; log-rank p": _rel(cox, [row[:5] for row in v["cox"]]),
        "cox.zph global p": _rel(zph, [row[5] for row in v["cox"]]),
        "Gray statistics (patients, lesions)": max(
            _rel(gray_p, v["gray_patients"]), _rel(gray_l, v["gray_lesions_bulky"])
        ),
        "maxstat cut-point, M, p Lau92/Lau94": _rel(cuts, v["cutpoints"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=2021)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        result = make_study(folder, args.patients, args.seed)
        les = result.lesions
        print(
            f"lesions with a known outcome: {int(les['local_failure'].notna().sum())}; "
            f"best of {args.repeats} runs per step"
        )
        p_times, values = pofa_steps(result, args.repeats)
        r = run_r(folder, args.repeats)
    print(f"\n{'step (R equivalent)':44s} {'pofa s':>8s} {'R s':>8s} {'pofa/R':>7s}")
    for k, label in STEPS.items():
        rt = r["times"][k] if r else float("nan")
        print(f"{k + ': ' + label:44s} {p_times[k]:8.3f} {rt:8.3f} {p_times[k] / rt:7.3f}")
    total_p = sum(p_times.values())
    if r is None:
        print(f"{'total':44s} {total_p:8.3f}\nRscript not found (or it failed): no R baseline in this run.")
        return
    total_r = sum(r["times"][k] for k in STEPS)
    print(f"{'total':44s} {total_p:8.3f} {total_r:8.3f} {total_p / total_r:7.3f}")
    print("(R: system.time inside one Rscript process; R start-up, library() and read.csv not counted)")
    print("\nagreement with R in this run (max relative difference):")
    for name, d in agreement(values, r).items():
        print(f"  {name:48s} {d:.1e}")


if __name__ == "__main__":
    main()
