"""A small study with multi-scan follow-up (measurements and scans tables) for the response tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

SCHEDULE = (30, 90, 180, 270)


def write_response_study(folder: Path, n_patients: int = 14, seed: int = 7) -> Path:
    """Write patients, lesions, measurements and scans CSVs of a synthetic study into ``folder``.

    Lesions shrink, stay or regrow (the growth rate depends on their size and SUVmax); one patient dies.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pat = ["patient_id,index_date,last_followup_date,progression_date,death_date"]
    les = ["patient_id,lesion_id,site,extranodal,diameter_cm,suvmax"]
    mea = ["patient_id,lesion_id,scan_date,ldi_mm,sdi_mm,suvmax,deauville,target"]
    sca = ["patient_id,scan_date,deauville,bone_marrow,new_lesions,clinical_deterioration"]
    for i in range(1, n_patients + 1):
        pid = f"R{i:03d}"
        index = dt.date(2022, 1, 1) + dt.timedelta(days=int(rng.integers(0, 300)))
        n_scans = int(rng.integers(2, 5))
        days = SCHEDULE[:n_scans]
        last = index + dt.timedelta(days=days[-1] + 20)
        died = i == 3
        prog: dt.date | None = None
        rows = []
        for k in range(int(rng.integers(1, 5))):
            lid = f"L{k + 1}"
            ldi = float(rng.uniform(18, 70))
            sdi = ldi * float(rng.uniform(0.5, 0.9))
            suv = float(rng.uniform(4, 25))
            extranodal = bool(rng.random() < 0.3)
            les.append(f"{pid},{lid},site{k},{'yes' if extranodal else 'no'},{ldi / 10:.1f},{suv:.1f}")
            rows.append((lid, ldi, sdi, suv, k < 6))
        base_date = index - dt.timedelta(days=3)
        scales = {lid: 1.0 for lid, *_ in rows}
        for j, day in enumerate((-3, *days)):
            date = base_date if j == 0 else index + dt.timedelta(days=day)
            worst = 1
            for lid, ldi, sdi, suv, target in rows:
                if j > 0:
                    drift = -0.9 + 0.012 * ldi + 0.02 * suv + float(rng.normal(0, 0.35))
                    scales[lid] = max(0.0, scales[lid] * float(np.exp(drift)))
                f = scales[lid]
                a, b = (round(ldi * f, 1), round(sdi * f, 1)) if f > 0.12 else (0.0, 0.0)
                score = 5 if j == 0 else int(np.clip(round(1 + 3 * f), 1, 5))
                worst = max(worst, score)
                mea.append(f"{pid},{lid},{date},{a},{b},{suv * max(f, 0.1):.1f},{score},"
                           f"{'yes' if target else 'no'}")
                if j > 0 and prog is None and a > 15 and f > 1.5:
                    prog = date
            sca.append(f"{pid},{date},{worst},no,no,no")
        if prog is not None and prog > last:
            prog = None
        death = last if died else None
        pat.append(f"{pid},{index},{last},{prog or ''},{death or ''}")
    for name, lines in (("patients", pat), ("lesions", les), ("measurements", mea), ("scans", sca)):
        (folder / f"{name}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
