"""The bridging-RT simulator preset reproduces its calibration targets, and pofa power tests bridging RT."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from pofa.power.design import PlannedStudy, SimulatorOutcome
from pofa.power.power import analyses
from pofa.simulate.params import FIGURA2021, preset

ROOT = Path(__file__).resolve().parents[1]


def _calibration():
    spec = importlib.util.spec_from_file_location("cal", ROOT / "benchmarks" / "calibration_bridging_rt.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_preset_hits_the_published_rates() -> None:
    p = preset("bridging_rt")
    assert p.failure.bridging_rt_prob == 0.5
    assert p.differences(FIGURA2021).keys() == {"failure.bridging_rt_prob", "failure.intercept",
                                                "failure.log_or_bridging_rt", "failure.rt_in_field_prob"}
    cal = _calibration()
    # another seed and 60,000 patients: the expected rates are means over ~40,000 lesions per group, whose
    # Monte Carlo SD is below 0.003; 0.01 is three times that
    rt, no_rt = cal.expected_rates(p.failure.intercept, p.failure.log_or_bridging_rt, n=60_000, seed=7)
    assert rt == pytest.approx(0.21, abs=0.01)
    assert no_rt == pytest.approx(0.46, abs=0.01)


def test_power_tests_bridging_rt_only_when_the_cohort_has_it() -> None:
    with_rt = analyses(PlannedStudy(40, SimulatorOutcome(preset("bridging_rt"), "bridging_rt"), 0.05))
    assert with_rt[-1] == "local failure: bridging RT (GEE)" and len(with_rt) == 5
    without = analyses(PlannedStudy(40, SimulatorOutcome(FIGURA2021, "figura2021"), 0.05))
    assert len(without) == 4 and not any("bridging" in a for a in without)


def test_in_field_share_reproduces_saifi() -> None:
    """rt_in_field_prob x the share of irradiated lesions with a failure row = 9/53 (Saifi et al. 2023).

    The share is exact given the latent draws; over another seed's 60,000 patients (about 45,000 irradiated
    lesions, Monte Carlo SD of the share below 0.002) the rate is within 0.005 of 16.98%."""
    p = preset("bridging_rt")
    cal = _calibration()
    rate = p.failure.rt_in_field_prob * cal.failure_row_share(60_000, seed=7)
    assert rate == pytest.approx(9 / 53, abs=0.005)


def test_simulated_failures_carry_the_field_class() -> None:
    import numpy as np

    from pofa.simulate.generator import simulate

    sim = simulate(preset("bridging_rt").with_values({"cohort.n_patients": 400}), 5)
    les, f, truth = sim.lesions, sim.failures, sim.patient_truth
    bridged = set(truth.loc[truth["bridging"], "patient_id"])
    irr = set(zip(les.loc[les["bridging_rt"], "patient_id"], les.loc[les["bridging_rt"], "lesion_id"],
                  strict=True))
    in_bridged = f["patient_id"].isin(bridged)
    assert f.loc[~in_bridged, "rt_field"].isna().all()
    key = list(zip(f["patient_id"], f["baseline_lesion_id"], strict=True))
    of_irr = np.array([k in irr for k in key])
    assert set(f.loc[in_bridged & ~of_irr, "rt_field"]) == {"out-of-field"}
    assert set(f.loc[of_irr, "rt_field"]) == {"in-field", "marginal"}
    # one class per lesion, over all its rows (first progression, confirmation and later scans)
    assert f[of_irr].groupby(["patient_id", "baseline_lesion_id"])["rt_field"].nunique().max() == 1
    # the field draw has its own stream: every other column equals a run with every failure in-field
    other = simulate(preset("bridging_rt").with_values({"cohort.n_patients": 400,
                                                         "failure.rt_in_field_prob": 1.0}), 5)
    assert other.failures.drop(columns="rt_field").equals(f.drop(columns="rt_field"))
    assert set(other.failures.loc[of_irr, "rt_field"]) == {"in-field"}
    # figura2021 (no bridging RT) has no rt_field column
    assert "rt_field" not in simulate(FIGURA2021.with_values({"cohort.n_patients": 20}), 5).failures.columns
