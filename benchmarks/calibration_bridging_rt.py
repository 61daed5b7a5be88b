"""Calibrate the simulator's ``bridging_rt`` preset to the published bridging-RT figures.

Targets (docs/radiotherapy.md): local failure of irradiated lesions 21%, of the lesions bridging RT would have
treated (each patient's bulky lesions, else its largest) in patients without bridging RT 46% (Blood Adv
2024;8:4877). Starting from figura2021 with half the patients bridged, the lesion intercept and the
conditional log odds ratio of bridging RT are solved so that the *expected* rates (the mean of each lesion's
probability of local failure given its patient's observed progression) over a 400,000-patient cohort hit the
targets; the other parameters keep their figura2021 values.

Run: ``PYTHONPATH=src python3 benchmarks/calibration_bridging_rt.py`` (about a minute).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special

from pofa.simulate.generator import draw_latent
from pofa.simulate.params import FIGURA2021

TARGET_RT, TARGET_NO_RT = 0.21, 0.46
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


def main() -> None:
    def f(x: np.ndarray) -> list[float]:
        a, b = expected_rates(float(x[0]), float(x[1]))
        return [special.logit(a) - special.logit(TARGET_RT), special.logit(b) - special.logit(TARGET_NO_RT)]

    sol = optimize.root(f, x0=[FIGURA2021.failure.intercept, -1.0], method="hybr", options={"xtol": 1e-6})
    a, b = expected_rates(*sol.x)
    print(f"failure.intercept = {sol.x[0]:.4f}\nfailure.log_or_bridging_rt = {sol.x[1]:.4f}\n"
          f"expected local failure: irradiated {a:.4f}, would-be targets without RT {b:.4f}")


if __name__ == "__main__":
    main()
