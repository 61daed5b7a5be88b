"""Multi-scan follow-up of the simulator: a valid study whose lesion-level events are the simulated truth."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import pofa
from pofa.response.study import lesion_failure_times, patient_scans
from pofa.simulate import preset, simulate
from pofa.simulate.followup import simulate_followup
from pofa.simulate.writer import write_study


@pytest.fixture(scope="module")
def sim() -> object:
    return simulate(preset("figura2021").with_values({"cohort.n_patients": 40}), 5, preset="figura2021")


def test_followup_is_reproducible_and_has_the_schedule(sim: object) -> None:
    m1, s1 = simulate_followup(sim)  # type: ignore[arg-type]
    m2, s2 = simulate_followup(sim)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(m1, m2)
    pd.testing.assert_frame_equal(s1, s2)
    assert (m1["sdi_mm"] <= m1["ldi_mm"]).all()
    assert m1.groupby(["patient_id", "scan_date"])["target"].sum().max() <= 6
    assert len(s1) == m1.groupby(["patient_id", "scan_date"]).ngroups


def test_written_study_validates_and_events_match_the_truth(sim: object, tmp_path: Path) -> None:
    folder = write_study(sim, tmp_path / "s", followup=True)  # type: ignore[arg-type]
    study = pofa.load_study(folder)
    assert study.validate().errors == ()
    assert study.measurements is not None and study.scans is not None
    by = patient_scans(study.measurements, study.scans, study.patients, study.lesions)
    times = lesion_failure_times(by, study.patients)
    truth = sim.lesion_truth  # type: ignore[attr-defined]
    merged = times.merge(truth.astype({"patient_id": str, "lesion_id": str}), on=["patient_id", "lesion_id"])
    # every simulated local failure regrows to Lugano progression at the progression scan, and no lesion
    # without local failure meets it (5% measurement noise stays far from the rule's thresholds)
    assert ((merged["cause"] == 1) == merged["local_failure"].astype(bool)).all()
    assert (merged["cause"] == 1).sum() > 0
