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
                                                "failure.log_or_bridging_rt"}
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
