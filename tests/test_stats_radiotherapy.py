"""pofa.stats.radiotherapy against R (tests/reference/radiotherapy/reference.R: glm, geepack, binom.test,
survival), on the synthetic study the script writes (lesions.csv, patients.csv).

Tolerances: glm and geeglm coefficients and SEs to 1e-6 relative (both solve the same estimating equations to
convergence tolerances near 1e-8; pofa's GEE tests elsewhere reach 1e-8); p-values to 1e-8 absolute (normal
tail of the same z); Clopper-Pearson limits to 1e-9 absolute (beta quantiles by the same algorithm family);
log-rank chi-square and Cox estimates to 1e-6 relative (Newton-Raphson converged to 1e-9), KM medians exactly
(a median is an event time).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pofa.settings import RadiotherapySettings, RiskFactorSettings, Settings
from pofa.stats.radiotherapy import (
    clopper_pearson,
    dose_response,
    local_failure_by_rt,
    pfs_by_rt,
    radiotherapy_statistics,
)

REF = Path(__file__).parent / "reference" / "radiotherapy"
R = json.loads((REF / "reference.json").read_text())
ADJUST = ("diameter_cm>=5", "suvmax>=10", "extranodal")


def lesions() -> pd.DataFrame:
    df = pd.read_csv(REF / "lesions.csv", dtype={"patient_id": str, "lesion_id": str})
    for c in ("bridging_rt", "extranodal"):
        df[c] = df[c].map({"yes": True, "no": False}).astype("boolean")
    return df


def patients() -> pd.DataFrame:
    return pd.read_csv(REF / "patients.csv", dtype={"patient_id": str})


def _check(or_, ref: dict[str, float]) -> None:
    assert math.log(or_.estimate) == pytest.approx(ref["coef"], rel=1e-6)
    se = (math.log(or_.ci_high) - math.log(or_.ci_low)) / (2 * 1.959963984540054)
    assert se == pytest.approx(ref["se"], rel=1e-6)
    assert or_.p == pytest.approx(ref["p"], abs=1e-8)


def test_local_failure_by_rt_equals_glm_and_geeglm() -> None:
    rows = local_failure_by_rt(lesions(), ADJUST)
    assert [(r.method, bool(r.adjusted_for)) for r in rows] == [
        ("logistic", False), ("gee", False), ("logistic", True), ("gee", True)]
    _check(rows[0], R["rt_unadjusted"]["glm"])
    _check(rows[1], R["rt_unadjusted"]["gee"])
    _check(rows[2], R["rt_adjusted"]["glm"])
    _check(rows[3], R["rt_adjusted"]["gee"])
    assert rows[0].n_lesions == 251 and rows[0].n_patients == 80


def test_dose_response_equals_glm_and_geeglm() -> None:
    rows = dose_response(lesions(), alpha_beta_gy=10.0)
    _check(rows[0], R["eqd2"]["glm"])
    _check(rows[1], R["eqd2"]["gee"])


@pytest.mark.parametrize("i", range(5))
def test_clopper_pearson_equals_binom_test(i: int) -> None:
    ref = R["binom"][i]
    p = clopper_pearson(ref["x"], ref["n"])
    assert p.ci_low == pytest.approx(ref["low"], abs=1e-9)
    assert p.ci_high == pytest.approx(ref["high"], abs=1e-9)
    assert p.estimate == ref["x"] / ref["n"]


def test_pfs_by_rt_equals_survival() -> None:
    pat = patients()
    res = pfs_by_rt(pat["pfs_months"].to_numpy(), pat["pfs_event"].to_numpy(), pat["any_rt"].to_numpy() == 1)
    ref = R["pfs"]
    assert res.logrank_chisq == pytest.approx(ref["chisq"], rel=1e-6)
    assert res.logrank_p == pytest.approx(ref["p"], rel=1e-6)
    assert res.hr == pytest.approx(ref["hr"], rel=1e-6)
    assert res.hr_ci_low == pytest.approx(ref["hr_low"], rel=1e-6)
    assert res.hr_ci_high == pytest.approx(ref["hr_high"], rel=1e-6)
    assert res.hr_p == pytest.approx(ref["hr_p"], rel=1e-6)
    assert res.events_rt == ref["events_rt"]
    medians = ((res.median_rt_months, ref["median_rt"]), (res.median_no_rt_months, ref["median_no_rt"]))
    for mine, theirs in medians:
        assert (math.isnan(mine) and theirs in (None, "NA")) or mine == pytest.approx(theirs, abs=1e-12)


def test_the_whole_analysis_and_its_json() -> None:
    les = lesions()
    pat = patients().assign(pfs_event=lambda d: d["pfs_event"].astype(int))
    fail = pd.DataFrame({"patient_id": ["P001", "P002"], "baseline_lesion_id": ["L2", "L1"],
                         "rt_field": ["in-field", "marginal"]})
    settings = Settings(risk_factors=RiskFactorSettings(lesion=ADJUST),
                        radiotherapy=RadiotherapySettings(alpha_beta_gy=10.0))
    res = radiotherapy_statistics(les, fail, pat, settings)
    assert res is not None
    irr = les[les["bridging_rt"].astype(bool)]
    assert res.n_irradiated == len(irr) and res.n_lesions == len(les)
    assert res.local_failures_rt == int(irr["local_failure"].sum())
    assert res.in_field is not None and res.in_field.events == 1 and res.in_field.n == len(irr)
    assert dict(res.field_classes) == {"in-field": 1, "marginal": 1, "out-of-field": 0}
    eq = irr["rt_dose_gy"] * (irr["rt_dose_gy"] / irr["rt_fractions"] + 10) / 12
    assert res.eqd2_median_gy == pytest.approx(float(np.median(eq)))
    _check(res.dose_response[1], R["eqd2"]["gee"])
    js = res.to_json()
    json.dumps(js, allow_nan=True)
    assert js["pfs"]["hr"] == pytest.approx(R["pfs"]["hr"], rel=1e-6)
    # without rt_field, a local failure of an irradiated lesion counts in-field
    res2 = radiotherapy_statistics(les, None, pat, settings)
    assert res2 is not None and res2.in_field is not None
    assert res2.in_field.events == res.local_failures_rt
    low = R["binom"][4]
    assert res2.in_field.ci_low == pytest.approx(low["low"], abs=1e-9)
    assert radiotherapy_statistics(les.drop(columns="bridging_rt"), None, pat, settings) is None
