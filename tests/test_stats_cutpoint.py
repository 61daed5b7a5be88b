"""Maximally selected log-rank statistics (cut-points) against maxstat::maxstat.test.

Reference values: tests/reference/cutpoint/maxstat.R (R 4.2.2, maxstat 0.7-25) -> maxstat.json, on
maxstat's hohnloser data (the package's own example), R's lung (age, many ties) and veteran (karno,
minprop 0.2 / maxprop 0.8).

Tolerances:
* M, every candidate statistic, the log-rank scores: rtol 1e-10 -- closed-form sums and one square root;
  observed agreement ~1e-15.
* Lau92 / Lau94 p-values: rtol 1e-10 -- closed-form functions of M (normal density and distribution).
* The cut-point and candidate cuts: exact (they are data values).
* The published hohnloser figures (M = 3.5691, p = 0.01065 / 0.005453, as printed by maxstat) are checked
  to the printed digits: abs 5e-5 on M and 5e-6 / 5e-7 on the p-values (half a unit in the last place).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pofa.errors import EstimationError
from pofa.stats.cutpoint import EXPLORATORY_NOTE, _p_lau92, _p_lau94, logrank_scores, maxstat_cutpoint

REF = Path(__file__).parent / "reference"
MS = json.loads((REF / "cutpoint" / "maxstat.json").read_text())
RTOL = 1e-10


def _data(case: dict):
    spec = case["spec"]
    df = pd.read_csv(REF / "data" / spec["file"])
    event = (df[spec["event"]] == spec.get("event_value", 1)).astype(int)
    return df[spec["time"]], event, df[spec["x"]]


@pytest.mark.parametrize("case", MS["cases"], ids=[c["name"] for c in MS["cases"]])
def test_matches_maxstat(case):
    time, event, x = _data(case)
    res = maxstat_cutpoint(time, event, x, minprop=case["minprop"], maxprop=case["maxprop"])
    assert res.cutpoint == case["cutpoint"]
    np.testing.assert_allclose(res.statistic, case["statistic"], rtol=RTOL)
    np.testing.assert_allclose(res.p_lau92, case["p_lau92"], rtol=RTOL)
    np.testing.assert_allclose(res.p_lau94, case["p_lau94"], rtol=RTOL)
    np.testing.assert_array_equal(res.cuts, np.atleast_1d(case["cuts"]))
    np.testing.assert_allclose(res.statistics, np.atleast_1d(case["stats"]), rtol=RTOL)
    np.testing.assert_allclose(logrank_scores(time, event), case["scores"], rtol=RTOL, atol=1e-13)
    assert res.n_low + res.n_high == res.n == case["n"]
    assert res.note == EXPLORATORY_NOTE == "exploratory: cut-point chosen on the same data"


def test_hohnloser_published_values():
    case = next(c for c in MS["cases"] if c["name"] == "hohnloser_EF")
    res = maxstat_cutpoint(*_data(case))  # defaults minprop 0.1, maxprop 0.9 as maxstat
    assert res.cutpoint == 39
    assert res.statistic == pytest.approx(3.5691, abs=5e-5)
    assert res.p_lau92 == pytest.approx(0.01065, abs=5e-6)
    assert res.p_lau94 == pytest.approx(0.005453, abs=5e-7)
    assert (res.minprop, res.maxprop) == (0.1, 0.9)
    assert "maxstat" in res.method


def test_cut_is_invariant_to_row_order_and_frozen():
    case = MS["cases"][0]
    time, event, x = _data(case)
    perm = np.random.default_rng(5).permutation(len(time))
    a = maxstat_cutpoint(time, event, x)
    b = maxstat_cutpoint(time.iloc[perm], event.iloc[perm], x.iloc[perm])
    assert (a.cutpoint, a.statistic) == (b.cutpoint, pytest.approx(b.statistic, rel=1e-12))
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.cutpoint = 0.0  # type: ignore[misc]


def test_lau92_bound_below_one_and_lau94_formula():
    # maxstat's pLausen92 returns 1 for M < 1; pLausen94 with a single cut is the two-sided normal p
    assert _p_lau92(0.99, 0.1, 0.9) == 1.0
    assert _p_lau94(1.959963984540054, 100, np.array([30])) == pytest.approx(0.05, rel=1e-12)


@pytest.mark.parametrize(
    ("x", "kwargs", "message"),
    [
        ([1.0] * 10, {}, "minprop is too large|no candidate"),
        ([1.0, np.nan] + [2.0] * 8, {}, "missing"),
        (list(range(10)), {"minprop": 0.6, "maxprop": 0.5}, "minprop < maxprop"),
    ],
)
def test_bad_input(x, kwargs, message):
    time = np.arange(1.0, 11.0)
    event = np.array([1, 0] * 5)
    with pytest.raises(EstimationError, match=message):
        maxstat_cutpoint(time, event, x, **kwargs)
