"""Calibrate the simulator's ``bridging_rt`` preset to the published bridging-RT figures.

Targets (docs/radiotherapy.md): local failure of irradiated lesions 21%, of the lesions bridging RT would have
treated (each patient's bulky lesions, else its largest) in patients without bridging RT 46% (Blood Adv
2024;8:4877). Starting from figura2021 with half the patients bridged, the lesion intercept and the
conditional log odds ratio of bridging RT are solved so that the *expected* rates (the mean of each lesion's
probability of local failure given its patient's observed progression) over a 400,000-patient cohort hit the
targets; the other parameters keep their figura2021 values.

Then the field: a failure of an irradiated lesion is in-field with probability ``failure.rt_in_field_prob``
(else marginal), once for all the lesion's failure rows. The analysis counts an irradiated lesion as failed
in-field when any of its failure rows is in-field (pofa.stats.radiotherapy), so the expected in-field rate
among irradiated lesions is ``rt_in_field_prob`` times the expected share of irradiated lesions with a failure
row: ``p_local`` at first progression, plus, for a lesion that did not fail then, the later scan's
``later_scan_prob x later_local_prob`` when follow-up lasts at least 31 days after progression. That share is
computed exactly given each patient's latent draws (no row is simulated), averaged over 400,000 patients, and
``rt_in_field_prob`` solved so that the rate is 9/53 = 16.98% (Saifi et al. 2023).
``--check N`` simulates N studies of the preset's 63 patients and prints the pooled in-field rate with its
Monte Carlo SE (docs/simulation.md).

Run: ``PYTHONPATH=src python3 benchmarks/calibration_bridging_rt.py [--in-field] [--check 1000]`` (about a
minute each).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special

from pofa.simulate.generator import draw_latent
from pofa.simulate.params import FIGURA2021

TARGET_RT, TARGET_NO_RT = 0.21, 0.46
TARGET_IN_FIELD = 9 / 53
BRIDGED = 0.5


def expected_rates(intercept: float, log_or: float, n: int = 400_000,
                   seed: int = 20240) -> tuple[float, float]:
    """Expected local failure of irradiated lesions and of would-be targets without RT."""
    params = FIGURA2021.with_values({"cohort.n_patients": n, "failure.bridging_rt_prob": BRIDGED,
                                     "failure.intercept": intercept, "failure.log_or_bridging_rt": log_or})
    lat = draw_latent(params, seed)
    fa = params.failure
    lp_ = lat.lesion_patient
    eligible = (lat.progressed & ~lat.unknown)[lp_]
    bulky_lesion = lat.diameter_cm >= fa.bulky_cm
    order = np.lexsort((-lat.diameter_cm, lp_))
    largest = np.zeros(lp_.size, dtype=bool)
    largest[order[np.concatenate(([True], np.diff(lp_[order]) != 0))]] = True
    target = np.where(lat.bulky[lp_], bulky_lesion, largest)
    risk = eligible * lat.p_local
    rt = lat.bridging_rt
    no_rt = target & ~lat.bridging[lp_]
    return float(risk[rt].mean()), float(risk[no_rt].mean())


def failure_row_share(n: int = 400_000, seed: int = 20240) -> float:
    """Expected share of irradiated lesions of the bridging_rt preset with a local failure row (any scan)."""
    from pofa.simulate.params import preset

    params = preset("bridging_rt").with_values({"cohort.n_patients": n})
    lat = draw_latent(params, seed)
    fa = params.failure
    lp_ = lat.lesion_patient
    eligible = (lat.progressed & ~lat.unknown)[lp_]
    later = (lat.last_followup_day - lat.progression_day >= 31)[lp_]
    p_row = lat.p_local + (1.0 - lat.p_local) * later * fa.later_scan_prob * fa.later_local_prob
    share = eligible * p_row
    return float(share[lat.bridging_rt].mean())


def in_field_prob(n: int = 400_000, seed: int = 20240) -> float:
    """``failure.rt_in_field_prob`` that gives the target in-field rate among irradiated lesions."""
    return TARGET_IN_FIELD / failure_row_share(n, seed)


def observed_in_field(n_studies: int, first_seed: int = 1) -> tuple[float, float, list[float]]:
    """Pooled in-field rate among irradiated lesions over ``n_studies`` simulated 63-patient studies, its
    Monte Carlo SE (ratio estimator, by the delta method over studies) and the per-study rates."""
    from pofa.simulate.generator import simulate
    from pofa.simulate.params import preset

    params = preset("bridging_rt")
    events, totals = [], []
    for seed in range(first_seed, first_seed + n_studies):
        sim = simulate(params, seed)
        les, f = sim.lesions, sim.failures
        irr = les[les["bridging_rt"]]
        inf = f[f["rt_field"] == "in-field"]
        hit = set(zip(inf["patient_id"], inf["baseline_lesion_id"], strict=True))
        events.append(sum((a, b) in hit for a, b in zip(irr["patient_id"], irr["lesion_id"], strict=True)))
        totals.append(len(irr))
    e, t = np.asarray(events, float), np.asarray(totals, float)
    rate = e.sum() / t.sum()
    resid = e - rate * t
    se = float(np.sqrt((resid**2).sum() / (len(e) * (len(e) - 1))) / t.mean())
    return float(rate), se, [float(a / b) if b else float("nan") for a, b in zip(e, t, strict=True)]


def main() -> None:
    import sys

    if "--in-field" in sys.argv:
        share = failure_row_share()
        print(f"share of irradiated lesions with a failure row {share:.4f}\n"
              f"failure.rt_in_field_prob = {TARGET_IN_FIELD / share:.4f}")
        return
    if "--check" in sys.argv:
        n = int(sys.argv[sys.argv.index("--check") + 1])
        rate, se, _ = observed_in_field(n)
        print(f"{n} studies of 63 patients: in-field rate among irradiated lesions {rate:.4f} (MC SE "
              f"{se:.4f}); target {TARGET_IN_FIELD:.4f}, difference {(rate - TARGET_IN_FIELD) / se:+.2f} SE")
        return

    def f(x: np.ndarray) -> list[float]:
        a, b = expected_rates(float(x[0]), float(x[1]))
        return [special.logit(a) - special.logit(TARGET_RT), special.logit(b) - special.logit(TARGET_NO_RT)]

    sol = optimize.root(f, x0=[FIGURA2021.failure.intercept, -1.0], method="hybr", options={"xtol": 1e-6})
    a, b = expected_rates(*sol.x)
    print(f"failure.intercept = {sol.x[0]:.4f}\nfailure.log_or_bridging_rt = {sol.x[1]:.4f}\n"
          f"expected local failure: irradiated {a:.4f}, would-be targets without RT {b:.4f}")


if __name__ == "__main__":
    main()
