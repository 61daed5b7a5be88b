"""Make cohort.csv, the lesion-level cohort of the risk-model reference values (run once; kept for
provenance).

    cd tests/reference/riskmodel && python3 make_cohort.py && Rscript make_reference.R

A simulated study (pofa.simulate, preset "figura2021", seed 4242: invented patients) classified by
pofa.classify; lesions with bridging radiotherapy are left out (as `pofa model fit` does). Patient ids are
renamed "1.1", "1.2", ..., "1.10", "2.1", ... so that ids which merge when read as numbers ("1.1" and "1.10")
are present. `fold` is pofa.riskmodel.validate.assign_folds(patient_id, local_failure, folds=5, seed=7): the
R script cross-validates with exactly these folds.
"""

from __future__ import annotations

from pathlib import Path

from pofa.classify import classify_tables
from pofa.riskmodel.validate import assign_folds
from pofa.simulate import preset, simulate

HERE = Path(__file__).parent


def main() -> None:
    sim = simulate(preset("figura2021"), seed=4242)
    les = classify_tables(sim.patients, sim.lesions, sim.failures).lesions
    les = les.loc[~les["bridging_rt"].astype(bool)]
    ids = {p: f"{i // 10 + 1}.{i % 10 + 1}" for i, p in enumerate(dict.fromkeys(les["patient_id"]))}
    out = les[
        ["patient_id", "lesion_id", "diameter_cm", "suvmax", "extranodal", "mtv_ml", "local_failure"]
    ].copy()
    out["patient_id"] = out["patient_id"].map(ids)
    out["extranodal"] = out["extranodal"].astype(int)
    out = out.loc[out["local_failure"].notna()]
    out["local_failure"] = out["local_failure"].astype(int)
    out["fold"] = assign_folds(out["patient_id"], out["local_failure"], 5, 7) + 1
    out.to_csv(HERE / "cohort.csv", index=False, lineterminator="\n")
    n_events = int(out["local_failure"].sum())
    print(f"{len(out)} lesions, {out['patient_id'].nunique()} patients, {n_events} events")


if __name__ == "__main__":
    main()
