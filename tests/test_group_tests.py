"""The tests of Table 1 (pofa.report.tables.group_tests) equal scipy.stats' on random and degenerate samples,
and Fisher's exact test equals R's fisher.test (tests/reference/table1: fisher.R and its values).

Tolerances. Welch's t, ANOVA, Kruskal-Wallis and the chi-square test repeat scipy's arithmetic step by step
and evaluate the same tails (scipy.special's stdtr, fdtrc, chdtrc): they agree to the last bit on this
machine; rtol 1e-12 leaves room for another numpy's summation order (a few rounding units of sums of up to
a few hundred terms, amplified by a tail's slope). Fisher's test sums hypergeometric probabilities computed
from log-probabilities whose magnitude grows with the table's total N, each carrying an absolute error of a
few rounding units of N: rtol = 64 * eps * N (1e-13 for N = 14, 9e-11 for N = 6,000; seen: 8e-12).
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from pofa.report.tables.group_tests import (
    chi2_contingency,
    fisher_exact_2x2,
    kruskal_wallis,
    one_way_anova,
    welch_t_test,
)

REF = Path(__file__).parent / "reference" / "table1" / "fisher_reference.csv"
RTOL = 1e-12
EPS = float(np.finfo(float).eps)


def _same(ours: float, theirs: float, rtol: float = RTOL) -> bool:
    if math.isnan(theirs):
        return math.isnan(ours)
    return math.isclose(ours, theirs, rel_tol=rtol, abs_tol=0.0) or ours == theirs


def _samples(rng: np.random.Generator, k: int, small: bool) -> list[np.ndarray]:
    out = []
    for _ in range(k):
        n = int(rng.integers(1, 6)) if small else int(rng.integers(2, 300))
        decimals = int(rng.integers(0, 3))  # 0 decimals: many ties
        out.append(np.round(rng.normal(rng.normal(0, 0.5), rng.uniform(0.5, 3), n), decimals))
    return out


@pytest.mark.filterwarnings("ignore")  # scipy warns of small or constant samples: the values are compared
@pytest.mark.parametrize("seed", range(6))
def test_continuous_tests_equal_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(150):
        groups = _samples(rng, int(rng.integers(2, 6)), small=bool(rng.random() < 0.4))
        assert _same(kruskal_wallis(groups).p_value, float(stats.kruskal(*groups).pvalue))
        assert _same(one_way_anova(groups).p_value, float(stats.f_oneway(*groups).pvalue))
        a, b = groups[0], groups[1]
        if a.size > 1 and b.size > 1:
            ref = stats.ttest_ind(a, b, equal_var=False)
            ours = welch_t_test(a, b)
            assert _same(ours.p_value, float(ref.pvalue)) and _same(ours.df, float(ref.df))


def test_degenerate_samples_as_scipy() -> None:
    """Constant groups, a group of one, all values equal: the same inf / nan / 0 as scipy."""
    cases = [
        [[1.0, 1.0], [2.0, 2.0]],  # every group constant, means differ: F = inf, p = 0
        [[1.0], [2.0, 2.0]],
        [[3.0, 3.0], [3.0, 3.0, 3.0]],  # all equal: nan
        [[1.0], [2.0, 3.0]],
        [[1.0], [2.0]],  # groups of one each
        [[5.0] * 40, [5.0] * 3, [5.0]],
        [[1.0, 2.0, 2.0], [2.0, 2.0], [2.0]],
    ]
    for groups in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns of degenerate samples: the values are compared
            assert _same(one_way_anova(groups).p_value, float(stats.f_oneway(*groups).pvalue))
            assert _same(kruskal_wallis(groups).p_value, float(stats.kruskal(*groups).pvalue))
            if len(groups[0]) > 1 and len(groups[1]) > 1:
                ref = stats.ttest_ind(groups[0], groups[1], equal_var=False).pvalue
                assert _same(welch_t_test(groups[0], groups[1]).p_value, float(ref))
    with pytest.raises(ValueError, match="two groups"):
        one_way_anova([[1.0, 2.0]])
    with pytest.raises(ValueError, match="without values"):
        kruskal_wallis([[1.0, 2.0], []])


@pytest.mark.parametrize("seed", range(4))
def test_chi_square_equals_scipy(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    for _ in range(300):
        shape = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        table = rng.integers(0, int(rng.choice([4, 20, 2000])), shape)
        table = table[table.sum(axis=1) > 0]
        table = table[:, table.sum(axis=0) > 0] if table.size else table
        if table.size == 0:
            continue
        chi2, p, dof, expected = stats.chi2_contingency(table)
        ours = chi2_contingency(table)
        assert _same(ours.p_value, float(p)) and _same(ours.statistic, float(chi2))
        assert ours.df == dof and ours.min_expected == expected.min()
    with pytest.raises(ValueError, match="no count"):
        chi2_contingency([[0, 0], [1, 2]])


@pytest.mark.parametrize("seed", range(4))
def test_fisher_equals_scipy(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    for _ in range(400):
        table = rng.integers(0, int(rng.choice([5, 15, 60, 500])), (2, 2))
        odds, p = stats.fisher_exact(table)
        ours = fisher_exact_2x2(table)
        assert _same(ours.p_value, float(p), 64 * EPS * max(int(table.sum()), 1))
        assert _same(ours.statistic, float(odds))


def test_fisher_equals_r() -> None:
    with REF.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 20
    for r in rows:
        a, b, c, d = (int(r[k]) for k in "abcd")
        ours = fisher_exact_2x2([[a, b], [c, d]]).p_value
        assert math.isclose(ours, float(r["p"]), rel_tol=64 * EPS * (a + b + c + d), abs_tol=0.0), r
    with pytest.raises(ValueError, match="2 x 2"):
        fisher_exact_2x2([[1, 2, 3], [4, 5, 6]])
