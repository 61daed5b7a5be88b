"""Make the simulated lesion cohorts used as reference inputs (run once; the CSVs are committed).

    python3 tests/reference/lesion/make_cohorts.py

cohort_a.csv  60 patients, 2-12 lesions each, patient ids "1.1" ... "6.10" (they collide when read as numbers:
              "1.1" == "1.10"), outcome correlated within patient (random intercept, SD 1), 3 missing suvmax.
cohort_b.csv  30 patients, 1-8 lesions each, ids "P1.1" ... "P3.10", continuous suvmax used per SD.
firth.csv     40 lesions in 10 patients with quasi-complete separation: every lesion >= 5 cm failed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent


def _lesions(
    rng: np.random.Generator,
    ids: list[str],
    n_min: int,
    n_max: int,
    coef: dict[str, float],
    sd_patient: float,
) -> pd.DataFrame:
    rows = []
    for pid in ids:
        n = int(rng.integers(n_min, n_max + 1))
        u = rng.normal(0.0, sd_patient)
        size_level = rng.normal(0.0, 0.3)  # patients with bulky disease have several large lesions
        for k in range(n):
            diameter = float(np.round(np.exp(rng.normal(1.0 + size_level, 0.55)), 1))
            suv = float(np.round(np.exp(rng.normal(2.0 + 0.25 * np.log(diameter), 0.45)), 1))
            extranodal = bool(rng.random() < 0.3)
            eta = (
                coef["intercept"]
                + coef["bulky"] * (diameter >= 5)
                + coef["suv"] * (suv >= 10)
                + coef["extranodal"] * extranodal
                + u
            )
            failed = int(rng.random() < 1.0 / (1.0 + np.exp(-eta)))
            rows.append(
                {
                    "patient_id": pid,
                    "lesion_id": f"L{k + 1}",
                    "diameter_cm": diameter,
                    "suvmax": suv,
                    "extranodal": extranodal,
                    "local_failure": failed,
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    rng = np.random.default_rng(20260104)
    ids_a = [f"{site}.{k}" for site in range(1, 7) for k in range(1, 11)]
    a = _lesions(rng, ids_a, 2, 12, {"intercept": -1.6, "bulky": 0.85, "suv": 0.7, "extranodal": 0.4}, 1.0)
    a.loc[[5, 77, 200], "suvmax"] = np.nan
    a.to_csv(HERE / "cohort_a.csv", index=False, na_rep="NA")

    ids_b = [f"P{site}.{k}" for site in range(1, 4) for k in range(1, 11)]
    b = _lesions(rng, ids_b, 1, 8, {"intercept": -1.2, "bulky": 0.6, "suv": 0.9, "extranodal": 0.2}, 0.8)
    b.to_csv(HERE / "cohort_b.csv", index=False, na_rep="NA")

    ids_f = [f"F{k}" for k in range(1, 13)]
    f = _lesions(rng, ids_f, 2, 5, {"intercept": -1.0, "bulky": 0.0, "suv": 0.8, "extranodal": 0.3}, 0.5)
    f = f.iloc[:40].copy()
    f.loc[f["diameter_cm"] >= 5, "local_failure"] = 1
    f.to_csv(HERE / "firth.csv", index=False, na_rep="NA")


if __name__ == "__main__":
    main()
