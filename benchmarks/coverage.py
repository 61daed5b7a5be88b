"""Simulation study of the lesion-level statistics: coverage of 95% CIs for the true marginal odds ratio.

    python3 benchmarks/coverage.py [--replicates 2000] [--seed 2021] [--workers 2]

Each scenario is a :class:`pofa.power.design.LesionOutcome` (lesions clustered within patients by a random
intercept); every replicate is fitted by GEE (exchangeable, robust and Mancl-DeRouen SEs) and by plain
logistic regression (model-based and cluster-robust SEs), and the share of replicates whose Wald 95% CI
contains the true population-averaged log odds ratio is counted (:func:`pofa.power.coverage.coverage`).

Scenarios: figura2021-like clustering (1 + NB(6.44, size 2) lesions per patient, random-intercept SD 1.66,
the simulator's conditional OR of diameter >= 5 cm, exp(1.405) = 4.08, 23% of lesions with the factor, whose
latent within-patient correlation is 0.229 as the simulator's diameters), then one thing changed at a time.
Prints a markdown table (docs/power.md).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

from pofa.power.coverage import METHODS, coverage
from pofa.power.dask_runner import ChunkRunner
from pofa.power.design import EffectScale, LesionOutcome

FIGURA = {"odds_ratio": math.exp(1.4050), "effect_scale": EffectScale.CONDITIONAL}

SCENARIOS: tuple[tuple[str, int, dict[str, object]], ...] = (
    ("figura2021-like", 63, {}),
    ("30 patients", 30, {}),
    ("200 patients", 200, {}),
    ("factor mostly per patient (factor ICC 0.6)", 63, {"factor_icc": 0.6}),
    ("factor independent within patient (factor ICC 0)", 63, {"factor_icc": 0.0}),
    ("no clustering (SD 0, factor ICC 0)", 63, {"patient_sd": 0.0, "factor_icc": 0.0}),
    ("no effect (OR 1): coverage = 1 - type I error", 63, {"odds_ratio": 1.0}),
    ("no effect (OR 1), 100 patients", 100, {"odds_ratio": 1.0}),
)

SHORT = {METHODS[0]: "GEE robust", METHODS[1]: "GEE Mancl-DeRouen", METHODS[2]: "logistic",
         METHODS[3]: "logistic, cluster-robust"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicates", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=2021)
    ap.add_argument("--workers", type=int, default=2, help="local Dask workers (0 = in this process)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    rows = []
    with ChunkRunner(args.workers) as runner:
        for name, n, kw in SCENARIOS:
            o = LesionOutcome(**{**FIGURA, **kw})  # type: ignore[arg-type]
            res = coverage(o, n, replicates=args.replicates, seed=args.seed, runner=runner)
            rows.append((name, n, o, res))
            print(f"{name}: {res.elapsed_s:.1f} s", file=sys.stderr)
    elapsed = time.perf_counter() - t0

    print(f"{args.replicates} replicates per scenario, seed {args.seed}, {runner.description}; "
          f"{elapsed:.0f} s in all.\n")
    print("| scenario | patients | conditional OR | true marginal OR | "
          + " | ".join(SHORT[m] for m in METHODS) + " |")
    print("|---|---|---|---|" + "---|" * len(METHODS))
    for name, n, _, res in rows:
        cells = [f"{m.coverage:.3f} ({m.mc_se:.3f})" + ("" if m.n_estimable == m.n_replicates
                                                        else f" [{m.n_replicates - m.n_estimable} n.e.]")
                 for m in res.methods]
        print(f"| {name} | {n} | {math.exp(res.truth.log_or_conditional):.2f} | "
              f"{math.exp(res.truth.log_or_marginal):.3f} | " + " | ".join(cells) + " |")
    print("\nMean SE / empirical SD of the log OR (1 = the SE is right):\n")
    print("| scenario | " + " | ".join(SHORT[m] for m in METHODS) + " | bias of log OR, GEE / logistic |")
    print("|---|" + "---|" * (len(METHODS) + 1))
    for name, _, _, res in rows:
        ratios = [f"{m.mean_se / m.empirical_sd:.2f}" for m in res.methods]
        print(f"| {name} | " + " | ".join(ratios)
              + f" | {res.methods[0].bias:+.3f} / {res.methods[2].bias:+.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
