"""Benchmark: pofa's patient-level survival statistics vs R (survival, cmprsk) on a 5,000-patient cohort.

Run: ``python3 benchmarks/stats_vs_r.py [--n 5000] [--repeats 5]``

Simulates one cohort (seeded; whole-day times in months, so with ties), then times, in pofa and in R on the
same CSV within this one run:

1. Kaplan-Meier of PFS and of OS (curve, median with CI, 6/12/24-month landmarks);
2. log-rank test of PFS by bulky disease (2 groups) and by a 3-level risk group;
3. Cox models of PFS: three univariable and one multivariable (Efron ties) plus the PH test (cox.zph);
4. cumulative incidence of local / de novo failure with death as competing risk, by bulky, with Gray's
   test.

Each block is timed ``--repeats`` times and the best time is kept (R: ``system.time`` inside one Rscript
process, so R's start-up is not counted). The ratio is pofa time / R time (< 1: pofa faster). Baseline 2
is statsmodels (PHReg efron, SurvfuncRight, survdiff, CumIncidenceRight) for the blocks it covers, also
timed in this run. If ``Rscript`` is not installed, the R column says so and only the statsmodels baseline
is printed. Agreement of a few numbers with R is printed as a check.
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

import numpy as np
import pandas as pd

from pofa.stats.competing import cumulative_incidence
from pofa.stats.cox import cox_ph, cox_univariable, proportional_hazards_test
from pofa.stats.survival import days_to_months, kaplan_meier, log_rank_test

R_SCRIPT = r"""
suppressMessages({library(survival); library(cmprsk); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); reps <- as.integer(args[2])
best <- function(f) {
  t <- Inf
  for (i in seq_len(reps)) t <- min(t, system.time(r <- f())[["elapsed"]])
  list(t = t, r = r)
}
km <- best(function() {
  out <- list()
  for (v in c("pfs", "os")) {
    f <- survfit(Surv(d[[paste0(v, "_time")]], d[[paste0(v, "_event")]]) ~ 1, conf.type = "log-log")
    q <- quantile(f, 0.5); s <- summary(f, times = c(6, 12, 24))
    out[[v]] <- c(q$quantile, q$lower, q$upper, s$surv)
  }
  out })
lr <- best(function() c(survdiff(Surv(pfs_time, pfs_event) ~ bulky, data = d)$chisq,
                        survdiff(Surv(pfs_time, pfs_event) ~ risk, data = d)$chisq))
cx <- best(function() {
  u <- sapply(c("bulky", "age", "extranodal"), function(v)
    coef(coxph(as.formula(paste("Surv(pfs_time, pfs_event) ~", v)), data = d)))
  m <- coxph(Surv(pfs_time, pfs_event) ~ bulky + age + extranodal + risk, data = d)
  z <- cox.zph(m)
  list(uni = unname(u), multi = unname(coef(m)), zph = unname(z$table[, "chisq"])) })
cr <- best(function() { f <- cuminc(d$pfs_time, d$cause, d$bulky); f$Tests[, "stat"] })
cat(toJSON(list(km = km$t, logrank = lr$t, cox = cx$t, cif = cr$t,
                values = list(logrank = lr$r, cox_multi = cx$r$multi, zph = cx$r$zph, gray = unname(cr$r),
                              km_pfs = unname(km$r$pfs))), digits = NA, auto_unbox = TRUE))
"""


def simulate(n: int, seed: int = 2021) -> pd.DataFrame:
    """A CAR-T-like cohort: bulky disease, age, extranodal, risk group; PFS, OS and the failure pattern."""
    rng = np.random.default_rng(seed)
    bulky = rng.binomial(1, 0.6, n)
    age = rng.integers(25, 85, n)
    extranodal = rng.binomial(1, 0.4, n)
    risk = rng.choice(["low", "mid", "high"], n, p=[0.3, 0.4, 0.3])
    lp = (
        0.8 * bulky
        + 0.01 * (age - 60)
        + 0.3 * extranodal
        + np.select([risk == "mid", risk == "high"], [0.3, 0.7])
    )
    t_fail = rng.exponential(14 * 30.4375 / np.exp(lp))
    t_death0 = rng.exponential(60 * 30.4375, n)
    t_cens = rng.uniform(3, 36, n) * 30.4375
    pfs_days = np.ceil(np.minimum.reduce([t_fail, t_death0, t_cens]))
    failed = (t_fail <= t_death0) & (t_fail <= t_cens)
    died_first = (t_death0 < t_fail) & (t_death0 <= t_cens)
    local = rng.binomial(1, 0.8, n)  # a failure with a local component vs strictly de novo
    cause = np.where(failed, np.where(local == 1, 1, 2), np.where(died_first, 3, 0))
    t_death_after = np.where(failed, pfs_days + rng.exponential(10 * 30.4375, n), t_death0)
    os_days = np.ceil(np.minimum(t_death_after, t_cens))
    os_event = (t_death_after <= t_cens).astype(int)
    return pd.DataFrame(
        {
            "pfs_time": days_to_months(pfs_days),
            "pfs_event": (failed | died_first).astype(int),
            "os_time": days_to_months(np.maximum(os_days, pfs_days)),
            "os_event": os_event,
            "cause": cause,
            "bulky": bulky,
            "age": age,
            "extranodal": extranodal,
            "risk": risk,
        }
    )


def best_of(f: Callable[[], object], repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t0)
    return best, out


def pofa_blocks(d: pd.DataFrame, repeats: int) -> tuple[dict[str, float], dict[str, object]]:
    def km() -> list[float]:
        out = []
        for v in ("pfs", "os"):
            k = kaplan_meier(d[f"{v}_time"], d[f"{v}_event"])
            m = k.median()
            out += [m.estimate, m.ci_low, m.ci_high, *[e.estimate for e in k.landmarks().values()]]
        return out

    def lr() -> list[float]:
        return [
            log_rank_test(d.pfs_time, d.pfs_event, d.bulky).chisq,
            log_rank_test(d.pfs_time, d.pfs_event, d.risk).chisq,
        ]

    def cx() -> dict[str, list[float]]:
        uni = cox_univariable(d.pfs_time, d.pfs_event, d[["bulky", "age", "extranodal"]])
        multi = cox_ph(d.pfs_time, d.pfs_event, d[["bulky", "age", "extranodal", "risk"]])
        z = proportional_hazards_test(multi).summary()["chisq"].tolist()
        return {"uni": [float(r.coef[0]) for r in uni.values()], "multi": multi.coef.tolist(), "zph": z}

    def cr() -> list[float]:
        res = cumulative_incidence(d.pfs_time, d.cause, group=d.bulky)
        return [t.statistic for t in res.tests]

    times, values = {}, {}
    for name, f in (("km", km), ("logrank", lr), ("cox", cx), ("cif", cr)):
        times[name], values[name] = best_of(f, repeats)
    return times, values


def statsmodels_blocks(d: pd.DataFrame, repeats: int) -> dict[str, float]:
    from statsmodels.duration.hazard_regression import PHReg
    from statsmodels.duration.survfunc import SurvfuncRight, survdiff

    def km() -> None:
        for v in ("pfs", "os"):
            sf = SurvfuncRight(d[f"{v}_time"].to_numpy(), d[f"{v}_event"].to_numpy())
            sf.quantile(0.5)
            sf.quantile_ci(0.5)

    def lr() -> None:
        survdiff(d.pfs_time.to_numpy(), d.pfs_event.to_numpy(), d.bulky.to_numpy())
        survdiff(d.pfs_time.to_numpy(), d.pfs_event.to_numpy(), d.risk.to_numpy())

    def cx() -> None:
        x = pd.get_dummies(
            d[["bulky", "age", "extranodal", "risk"]], columns=["risk"], drop_first=True, dtype=float
        )
        for v in ("bulky", "age", "extranodal"):
            PHReg(
                d.pfs_time.to_numpy(), d[[v]].to_numpy(float), status=d.pfs_event.to_numpy(), ties="efron"
            ).fit()
        PHReg(d.pfs_time.to_numpy(), x.to_numpy(), status=d.pfs_event.to_numpy(), ties="efron").fit()

    out = {}
    for name, f in (("km", km), ("logrank", lr), ("cox", cx)):
        out[name], _ = best_of(f, repeats)
    return out


def r_blocks(d: pd.DataFrame, repeats: int) -> dict | None:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "cohort.csv"
        d.to_csv(csv, index=False)
        script = Path(tmp) / "bench.R"
        script.write_text(R_SCRIPT)
        proc = subprocess.run(
            [rscript, str(script), str(csv), str(repeats)],
            capture_output=True,
            text=True,
            check=False,
            timeout=1200,
        )
    if proc.returncode != 0:
        print(f"Rscript failed ({proc.returncode}): {proc.stderr.strip()[:500]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    d = simulate(args.n)
    print(
        f"cohort: {len(d)} patients, PFS events {int(d.pfs_event.sum())}, OS events {int(d.os_event.sum())}, "
        f"distinct PFS times {d.pfs_time.nunique()}; best of {args.repeats} runs per block"
    )
    p_times, p_vals = pofa_blocks(d, args.repeats)
    s_times = statsmodels_blocks(d, args.repeats)
    r = r_blocks(d, args.repeats)
    labels = {
        "km": "KM PFS + OS (median, CI, landmarks)",
        "logrank": "log-rank (2 and 3 groups)",
        "cox": "Cox 3 uni + 1 multi (+ cox.zph)",
        "cif": "CIF (2 causes x 2 groups) + Gray",
    }
    print(f"\n{'block':40s} {'pofa s':>9s} {'R s':>9s} {'pofa/R':>8s} {'statsmodels s':>14s} {'pofa/sm':>8s}")
    for k, lab in labels.items():
        rt = r[k] if r else float("nan")
        st = s_times.get(k, float("nan"))
        print(
            f"{lab:40s} {p_times[k]:9.4f} {rt:9.4f} {p_times[k] / rt:8.2f} {st:14.4f} {p_times[k] / st:8.2f}"
        )
    total_p = sum(p_times.values())
    if r:
        total_r = sum(r[k] for k in labels)
        print(f"{'total':40s} {total_p:9.4f} {total_r:9.4f} {total_p / total_r:8.2f}")
        vals = r["values"]
        print("\nagreement with R (max relative difference):")
        pairs = {
            "log-rank chi-square": (p_vals["logrank"], vals["logrank"]),
            "Cox multivariable coefficients": (p_vals["cox"]["multi"], vals["cox_multi"]),
            "cox.zph chi-square": (p_vals["cox"]["zph"], vals["zph"]),
            "Gray statistics": (p_vals["cif"], vals["gray"]),
            "KM PFS median/CI/landmarks": (p_vals["km"][:6], vals["km_pfs"]),
        }
        for name, (a, b) in pairs.items():
            a_, b_ = np.asarray(a, float), np.asarray(b, float)
            print(f"  {name:32s} {np.max(np.abs(a_ - b_) / np.abs(b_)):.1e}")
    else:
        print("\nRscript not found (or failed): the R baseline was not measured in this run.")


if __name__ == "__main__":
    main()
