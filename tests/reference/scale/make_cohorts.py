"""Study cohorts of 63, 1,000, 5,000 and 20,000 patients for the reference tests against R at scale.

    python3 tests/reference/scale/make_cohorts.py OUT_DIR          # -> OUT_DIR/n00063/ ... OUT_DIR/n20000/
    cd tests/reference/scale && Rscript reference.R OUT_DIR        # -> reference_n*.json

A small generator written for these tests with numpy alone: it shares nothing with pofa's simulator
(:mod:`pofa.simulate`), so that the tests do not check pofa against data shaped by pofa's own assumptions.
Each cohort is a study folder in the documented format (docs/study-format.md: patients.csv, lesions.csv,
failures.csv), invented patients, not real data:

* 1-15 baseline lesions per patient (1 + Poisson(3.2), capped at 15), longest diameter log-normal (median
  2.6 cm, some above 5 cm), SUVmax log-normal and correlated with the diameter, extranodal 35%;
* a patient frailty (normal, SD 1) shared by the patient's lesions: the lesion outcomes are clustered;
* progression by a proportional-hazards model (bulky disease, the frailty), death after progression or
  without it, administrative censoring: tied event times occur (whole days);
* at progression, each lesion fails locally with a logistic probability of diameter >= 5 cm, SUVmax >= 10,
  extranodal and the frailty; new (de novo) lesions appear too; 4% of progressing patients have no failure
  row (their lesions' outcome is unknown and left out, as pofa and R's na.omit do).

The seeds of the 5,000- and 20,000-patient cohorts, 25028 and 40015, were picked (among 25000-25047 and
40000-40015) as ones where pofa's former logistic fit (statsmodels IRLS with an absolute deviance tolerance of
1e-12) failed: its deviance changed by one rounding unit between iterations forever, so it reported "did not
converge" where R's glm converges (2 of those 48 cohorts of 5,000 and 1 of 16 of 20,000 hit it, on one
univariable fit each). The other seeds are arbitrary.

Every number is drawn from ``numpy.random.Generator(PCG64(seed))`` with the seed of :data:`SEEDS` and written
with fixed formatting, so the files are the same bytes on every run (the SHA-256 of each file is in
reference_n*.json, and the tests check it before comparing any statistic).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

SIZES = (63, 1000, 5000, 20000)
SEEDS = {63: 20063, 1000: 21000, 5000: 25028, 20000: 40015}

NODAL = ("cervical lymph node", "mediastinal lymph node", "axillary lymph node", "para-aortic lymph node",
         "mesenteric lymph node", "inguinal lymph node", "spleen")
EXTRANODAL = ("bone", "lung", "liver", "soft tissue", "adrenal", "kidney", "stomach")
EPOCH = dt.date(2015, 1, 1)


def _date(day: int) -> str:
    return (EPOCH + dt.timedelta(days=int(day))).isoformat()


def cohort(n: int, seed: int) -> dict[str, str]:
    """The three CSV files (name -> text) of a cohort of ``n`` patients."""
    rng = np.random.Generator(np.random.PCG64(seed))
    frailty = rng.normal(0.0, 1.0, n)
    n_les = np.minimum(1 + rng.poisson(3.2, n), 15)
    start = rng.integers(0, 6 * 365, n)  # index dates over six years
    pid = np.repeat(np.arange(n), n_les)
    m = int(n_les.sum())
    lesion_no = np.arange(m) - np.repeat(np.cumsum(n_les) - n_les, n_les) + 1
    z = rng.normal(0.0, 1.0, (m, 2))
    diameter = np.round(np.exp(np.log(2.6) + 0.55 * z[:, 0]), 1).clip(0.5, 25.0)
    suv = np.round(np.exp(np.log(8.0) + 0.5 * (0.5 * z[:, 0] + np.sqrt(0.75) * z[:, 1])), 1).clip(1.0, 60.0)
    extranodal = rng.random(m) < 0.35
    site_idx = rng.integers(0, 7, m)
    bulky = np.zeros(n, dtype=bool)
    np.logical_or.at(bulky, pid, diameter >= 5.0)

    # progression, death and censoring (days since the index date)
    hazard_p = 0.0022 * np.exp(0.45 * bulky + 0.35 * frailty)
    t_prog = np.ceil(rng.exponential(1.0 / hazard_p)).astype(int)
    cured = rng.random(n) < 0.35  # never progress
    t_prog[cured] = 10**6
    t_death_noprog = np.ceil(rng.exponential(1.0 / 0.00035, n)).astype(int)
    t_death_after = t_prog + np.ceil(rng.exponential(300.0, n)).astype(int)
    t_cens = rng.integers(90, 5 * 365, n)
    progressed = t_prog <= np.minimum(t_death_noprog, t_cens)
    death_day = np.where(progressed, t_death_after, t_death_noprog)
    died = death_day <= t_cens
    last_fu = np.where(died, death_day, t_cens)

    # lesion outcomes at progression (clustered by the frailty)
    lin = -1.1 + 0.55 * (diameter >= 5.0) + 0.35 * (suv >= 10.0) + 0.25 * extranodal + 0.8 * frailty[pid]
    fails = (rng.random(m) < 1.0 / (1.0 + np.exp(-lin))) & progressed[pid]
    n_new = rng.poisson(0.6, n) * progressed
    no_rows = progressed & (rng.random(n) < 0.04)
    nothing = progressed & ~no_rows & (n_new == 0)
    nothing &= ~np.bincount(pid, weights=fails, minlength=n).astype(bool)
    n_new[nothing] = 1  # every progression with rows shows at least one lesion
    new_site = rng.integers(0, 7, int(n_new.sum()))
    new_extra = rng.random(int(n_new.sum())) < 0.35
    new_diam = np.round(np.exp(np.log(1.8) + 0.4 * rng.normal(0.0, 1.0, int(n_new.sum()))), 1).clip(0.5, 15.0)
    lf_diam = np.round(diameter * np.exp(0.2 * rng.normal(0.0, 1.0, m)), 1).clip(0.5, 30.0)

    ids = [f"S{i + 1:05d}" for i in range(n)]
    pat = ["patient_id,index_date,last_followup_date,progression_date,death_date,age,sex"]
    age = rng.integers(25, 86, n)
    sex = np.where(rng.random(n) < 0.6, "M", "F")
    for i in range(n):
        s = int(start[i])
        prog = _date(s + t_prog[i]) if progressed[i] else ""
        death = _date(s + death_day[i]) if died[i] else ""
        pat.append(f"{ids[i]},{_date(s)},{_date(s + last_fu[i])},{prog},{death},{age[i]},{sex[i]}")
    les = ["patient_id,lesion_id,site,extranodal,diameter_cm,suvmax"]
    for j in range(m):
        site = (EXTRANODAL if extranodal[j] else NODAL)[site_idx[j]]
        les.append(f"{ids[pid[j]]},L{lesion_no[j]:02d},{site},{'yes' if extranodal[j] else 'no'},"
                   f"{diameter[j]:.1f},{suv[j]:.1f}")
    fail = ["patient_id,failure_id,scan_date,baseline_lesion_id,site,extranodal,diameter_cm"]
    first = np.cumsum(n_les) - n_les
    new_first = np.cumsum(n_new) - n_new
    for i in np.flatnonzero(progressed & ~no_rows):
        scan = _date(int(start[i]) + int(t_prog[i]))
        k = 0
        for j in range(int(first[i]), int(first[i] + n_les[i])):
            if fails[j]:
                k += 1
                fail.append(f"{ids[i]},F{k:02d},{scan},L{lesion_no[j]:02d},,,{lf_diam[j]:.1f}")
        for q in range(int(new_first[i]), int(new_first[i] + n_new[i])):
            k += 1
            site = (EXTRANODAL if new_extra[q] else NODAL)[new_site[q]]
            yn = "yes" if new_extra[q] else "no"
            fail.append(f"{ids[i]},F{k:02d},{scan},,{site},{yn},{new_diam[q]:.1f}")
    return {"patients.csv": "\n".join(pat) + "\n", "lesions.csv": "\n".join(les) + "\n",
            "failures.csv": "\n".join(fail) + "\n"}


def write_cohort(n: int, folder: Path) -> dict[str, str]:
    """Write the cohort of ``n`` patients (seed from :data:`SEEDS`) into ``folder``; return the SHA-256 of
    each file."""
    folder.mkdir(parents=True, exist_ok=True)
    digests = {}
    for name, text in cohort(n, SEEDS[n]).items():
        data = text.encode("utf-8")
        (folder / name).write_bytes(data)
        digests[name] = hashlib.sha256(data).hexdigest()
    return digests


def folder_name(n: int) -> str:
    return f"n{n:05d}"


def main(argv: list[str]) -> None:
    """Write the cohorts into ``argv[1]`` and their seeds and SHA-256 into cohorts.json beside this script."""
    out = Path(argv[1]) if len(argv) > 1 else Path("cohorts")
    sizes = [int(a) for a in argv[2:]] or list(SIZES)
    manifest_path = Path(__file__).with_name("cohorts.json")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    for n in sizes:
        digests = write_cohort(n, out / folder_name(n))
        manifest[folder_name(n)] = {"patients": n, "seed": SEEDS[n], "sha256": digests}
        print(n, digests)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv)
