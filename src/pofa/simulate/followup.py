"""Multi-scan follow-up for a simulated study: the ``measurements`` and ``scans`` tables (docs/response.md).

Each patient gets a baseline scan a few days before the infusion and follow-up scans on a clinical schedule
(days 30, 90, 180, 270, 365, then every 180 days) until the last follow-up, death or first progression (the
progression scan, on ``progression_date``, is the last). Lesions shrink to a lognormal nadir by day 90 (a
lesion whose long diameter falls below 10 mm vanishes with probability one half); a lesion that fails
locally (the simulator's truth) regrows to meet Lugano's single-lesion progression rule at the progression
scan (LDi at least 18 mm and 80% above its nadir), others stay at their nadir. Diameters carry
multiplicative measurement noise (coefficient of variation ``noise_cv``, 5% by default: the inter-reader
variability of CT diameters). Deauville scores and SUVmax follow the size: 4-5 at baseline, 1-3 for lesions
that shrank by half or more, 4 otherwise, 5 at local failure. The progression scan marks new lesions when
the patient has de novo failures.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pandas as pd

from pofa.simulate.generator import SimulatedStudy

#: The follow-up schedule (days from the infusion); after the last, a scan every ``LATE_INTERVAL`` days.
SCHEDULE_DAYS = (30, 90, 180, 270, 365)
LATE_INTERVAL = 180
#: Lugano's number of target lesions.
MAX_TARGETS = 6


def _schedule(end_day: int) -> list[int]:
    days = [d for d in SCHEDULE_DAYS if d < end_day]
    d = SCHEDULE_DAYS[-1] + LATE_INTERVAL
    while d < end_day:
        days.append(d)
        d += LATE_INTERVAL
    return days


def _day(date: Any, index: pd.Timestamp) -> int | None:
    if pd.isna(date):
        return None
    return int(round((pd.Timestamp(date) - index) / pd.Timedelta(days=1)))


def simulate_followup(sim: SimulatedStudy, *, noise_cv: float = 0.05) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The measurements and scans tables of a simulated study's follow-up imaging.

    Parameters
    ----------
    sim : SimulatedStudy
        From :func:`pofa.simulate.simulate`; its seed also seeds the follow-up (the same study always gets
        the same scans).
    noise_cv : float
        Coefficient of variation of the measurement noise of each diameter (>= 0).

    Returns
    -------
    tuple of pandas.DataFrame
        ``(measurements, scans)`` with the columns of the study format (dates as datetime64).
    """
    rng = np.random.default_rng([sim.seed, zlib.crc32(b"followup")])
    patients: Any = sim.patients.set_index("patient_id")
    truth: Any = sim.lesion_truth.set_index(["patient_id", "lesion_id"])
    pt: Any = sim.patient_truth.set_index("patient_id")
    mrows: list[dict[str, object]] = []
    srows: list[dict[str, object]] = []
    for pid, les in sim.lesions.groupby("patient_id", sort=False):
        p = patients.loc[pid]
        index = pd.Timestamp(p["index_date"])
        prog = _day(p["progression_date"], index)
        death = _day(p["death_date"], index)
        last = _day(p["last_followup_date"], index) or 0
        end = min(d for d in (last, death, prog) if d is not None)
        days = [d for d in _schedule(end) if d < end]
        if prog is not None:
            days.append(prog)
        base_day = -int(rng.integers(1, 15))
        ldi0 = les["diameter_cm"].to_numpy(float) * 10.0
        ratio = rng.uniform(0.55, 0.9, ldi0.size)
        suv0 = les["suvmax"].to_numpy(float)
        nadir = np.minimum(1.0, np.exp(rng.normal(np.log(0.35), 0.6, ldi0.size)))
        vanish = (ldi0 * nadir < 10.0) & (rng.random(ldi0.size) < 0.5)
        fails = np.array([bool(truth.loc[(pid, lid), "local_failure"]) for lid in les["lesion_id"]])
        order = np.argsort(-ldi0, kind="stable")
        target = np.zeros(ldi0.size, bool)
        target[order[:MAX_TARGETS]] = True
        de_novo = int(pt.loc[pid, "n_de_novo"]) > 0
        smallest = np.ones(ldi0.size)  # each lesion's smallest size so far (its nadir), as a fraction
        for day in [base_day, *days]:
            date = (index + pd.Timedelta(days=day)).normalize()
            at_prog = prog is not None and day == prog
            for k, lid in enumerate(les["lesion_id"]):
                if day <= 0:
                    f = 1.0
                elif at_prog and fails[k]:
                    f = max(smallest[k] * 1.8, 25.0 / ldi0[k], smallest[k] + 18.0 / ldi0[k])
                elif vanish[k] and day >= 90:
                    f = 0.0
                else:
                    f = float(np.exp(np.log(nadir[k]) * min(day, 90) / 90.0))
                smallest[k] = min(smallest[k], f)
                if f == 0.0:
                    ldi = sdi = 0.0
                else:
                    noise = np.exp(rng.normal(0.0, noise_cv, 2)) if noise_cv > 0 else np.ones(2)
                    ldi = round(float(ldi0[k] * f * noise[0]), 1)
                    sdi = round(min(float(ldi0[k] * ratio[k] * f * noise[1]), ldi), 1)
                if day <= 0:
                    score, suv = (5 if suv0[k] >= 10 else 4), suv0[k]
                elif at_prog and fails[k]:
                    score, suv = 5, suv0[k] * float(rng.uniform(0.8, 1.3))
                elif f <= 0.5:
                    score, suv = int(rng.integers(1, 4)), max(1.5, suv0[k] * f)
                else:
                    score, suv = 4, max(2.5, suv0[k] * f)
                mrows.append({"patient_id": pid, "lesion_id": lid, "scan_date": date, "ldi_mm": ldi,
                              "sdi_mm": sdi, "suvmax": round(float(suv), 1), "deauville": str(score),
                              "target": bool(target[k])})
            srows.append({"patient_id": pid, "scan_date": date, "deauville": "",
                          "bone_marrow": False, "new_lesions": bool(at_prog and de_novo),
                          "clinical_deterioration": bool(at_prog and rng.random() < 0.3)})
    mcols = ["patient_id", "lesion_id", "scan_date", "ldi_mm", "sdi_mm", "suvmax", "deauville", "target"]
    scols = ["patient_id", "scan_date", "deauville", "bone_marrow", "new_lesions", "clinical_deterioration"]
    return pd.DataFrame(mrows, columns=mcols), pd.DataFrame(srows, columns=scols)


__all__ = ["SCHEDULE_DAYS", "simulate_followup"]
