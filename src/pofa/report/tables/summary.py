"""Summary tables in the layout and with the numbers of ``tableone`` (Pollard et al., JAMIA Open 2018).

Table 1 of the report and its lesion-level companion are written by this module, by hand, rather than by
``tableone.TableOne``, for its cost: measured by benchmarks/table1.py at 5,000 patients (21,001 lesions) the
two TableOne calls took 1.0 s of CPU and ``import tableone`` 0.5 s more (scipy.stats, statsmodels), at
100,000 patients 10 s: the largest fixed cost of the report, because tableone formats every cell, counts
categories and computes the standardised mean differences in Python loops over rows. Here each variable is
one pass of numpy over its column (counts by ``bincount``, quantiles by numpy's own functions on each
group), and the p-values come from :mod:`pofa.report.tables.group_tests` (:mod:`scipy.special` only): 0.07 s
for both tables at 5,000 patients.

The conventions are tableone 0.9.6's, with the options the report gives it (overall and per-group
columns, an ``n`` row, ``decimals=1``, a Missing column, ``include_null=False``, ``order``, ``rename``,
``smd=True``, ``pval=True``, ``htest_name=True``), rule by rule:

* continuous: "median [Q1,Q3]" (``numpy.nanmedian``, ``numpy.nanpercentile`` 25 and 75) or "mean (SD)"
  (``numpy.nanmean``; ``numpy.nanstd(ddof=1)``, 0 for a group of one row), one decimal;
* categorical: "n (%)" of the rows with a value, the percentage ``n / total * 100`` to one decimal;
  levels in the given order, then the others in sorted order; the Missing count, the SMD, p and test on the
  first level's row only;
* SMD: for each pair of groups, Cohen's d on the group means and SDs ``(m2 - m1) / sqrt((s1^2 + s2^2) / 2)``,
  and for categories the multivariate distance of Yang & Dalton (2012) on the proportions of all levels but
  the first (sorted) one; printed to three decimals, ``0.000`` as ``<0.001``;
* p: Kruskal-Wallis (median rows), one-way ANOVA (mean rows; Welch's t-test for two groups when each has at
  least two values), chi-square (Yates' correction for 2 x 2); when an expected count is under 5 or a group
  has fewer than 5 rows with a value: Fisher's exact test for a 2 x 2 table, otherwise the chi-square test
  named "Chi-squared (warning: expected count < 5)"; no test ("Not tested") when a group has no value of a
  continuous variable; printed to three decimals, below 0.001 as ``<0.001``.

Where tableone fails rather than prints, this module prints a table: a group in which no continuous
variable has two values (tableone's pivot table drops the group's undefined SDs: here SD ``nan``), a
categorical variable whose values all lie in rows without a group ("Not tested"). tests/test_report_summary.py
compares every cell with tableone's on randomised tables (tableone is a test dependency only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from pofa.report.tables.group_tests import (
    chi2_contingency,
    fisher_exact_2x2,
    kruskal_wallis,
    one_way_anova,
    welch_t_test,
)

__all__ = ["RESERVED_GROUPS", "SummaryTable", "Variable", "summarise"]

#: Column names of the table: no group may be called so (tableone refuses them too).
RESERVED_GROUPS = ("Missing", "P-Value", "Test", "P-Value (adjusted)", "SMD", "Overall")

_WELCH = "Welch\u2019s T-test"
_SUFFIX = {"median": "median [Q1,Q3]", "mean": "mean (SD)", "category": "n (%)"}


@dataclass(frozen=True, slots=True)
class Variable:
    """One row group of a summary table.

    Attributes
    ----------
    column : str
        Column of the summarised frame.
    label : str
        As printed (with unit).
    kind : str
        ``"median"``, ``"mean"`` or ``"category"``.
    levels : tuple of str
        Category order (categories only; the levels not listed follow in sorted order).
    """

    column: str
    label: str
    kind: str
    levels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SummaryTable:
    """A summary table: one row per continuous variable and per level of a categorical one.

    Attributes
    ----------
    table : pandas.DataFrame
        The printed strings. Index: (``"label, median [Q1,Q3]"``, ``""``), (``"label, n (%)"``, level), the
        first row ``("n", "")``. Columns: ``Missing``, ``Overall``, the groups in order, then (grouped)
        ``SMD (a,b)`` for each pair of groups (sorted by name), ``P-Value`` and ``Test``.
    group : str or None
        The grouping column (``None``: overall only).
    """

    table: pd.DataFrame
    group: str | None

    @property
    def tableone(self) -> pd.DataFrame:
        """The table in ``TableOne.tableone``'s layout: columns under "Grouped by <group>" when grouped.

        Returns
        -------
        pandas.DataFrame
            :attr:`table` with a two-level column index when grouped, itself otherwise.
        """
        if self.group is None:
            return self.table
        out = self.table.copy()
        out.columns = pd.MultiIndex.from_product([[f"Grouped by {self.group}"], list(self.table.columns)])
        return out


def _fmt_p(p: float) -> str:
    """tableone's p-value text: three decimals, ``<0.001`` below 0.001, empty when undefined."""
    if math.isnan(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _fmt_smd(d: float) -> str:
    text = f"{d:.3f}"
    return "<0.001" if text == "0.000" else text


def _std(x: np.ndarray) -> float:
    """tableone's SD: 0 for a group of one row (even without a value), else ``numpy.nanstd(ddof=1)``."""
    if x.size == 1:
        return 0.0
    if np.count_nonzero(~np.isnan(x)) <= 1:
        return math.nan
    return float(np.nanstd(x, ddof=1))


def _continuous_cell(x: np.ndarray, kind: str, dec: int) -> str:
    """One cell of a continuous row, numpy's functions on the group's values in row order (as tableone)."""
    if not np.any(~np.isnan(x)):
        med = q1 = q3 = mean = math.nan
    elif kind == "median":
        med = float(np.nanmedian(x))
        q1, q3 = (float(q) for q in np.nanpercentile(x, [25, 75]))
    else:
        mean = float(np.nanmean(x))
    if kind == "median":
        return f"{med:.{dec}f} [{q1:.{dec}f},{q3:.{dec}f}]"
    return f"{mean:.{dec}f} ({_std(x):.{dec}f})"


def _cont_smd(mean1: float, mean2: float, sd1: float, sd2: float) -> float:
    """Cohen's d of two groups (tableone's ``_cont_smd``, ``unbiased=False``)."""
    with np.errstate(all="ignore"):
        return float((np.float64(mean2) - mean1) / np.sqrt((np.float64(sd1) ** 2 + sd2**2) / 2))


def _cat_smd(prop1: np.ndarray, prop2: np.ndarray) -> float:
    """Yang & Dalton's SMD of two vectors of level proportions, the first level left out (tableone)."""
    p1, p2 = prop1[1:], prop2[1:]
    covs = []
    for p in (p1, p2):
        cov = -np.outer(p, p)
        cov[np.diag_indices_from(cov)] = p * (1 - p)
        covs.append(cov)
    diff = np.asarray(p2 - p1).reshape((1, -1))
    with np.errstate(all="ignore"):
        try:
            sq = diff @ np.linalg.inv((covs[0] + covs[1]) / 2) @ diff.T
        except np.linalg.LinAlgError:
            return math.nan
        return float(np.sqrt(sq)[0][0])


def _p_continuous(values: list[np.ndarray], kind: str) -> tuple[float, str]:
    """p and the test's name for a continuous variable (tableone's ``_p_test``)."""
    if min(v.size for v in values) == 0:
        return math.nan, "Not tested"
    if kind == "median":
        return kruskal_wallis(values).p_value, "Kruskal-Wallis"
    if len(values) == 2 and min(v.size for v in values) >= 2:
        return welch_t_test(values[0], values[1]).p_value, _WELCH
    return one_way_anova(values).p_value, "One-way ANOVA"


def _p_categorical(counts: np.ndarray) -> tuple[float, str]:
    """p and the test's name from the groups x levels counts (tableone's ``_p_test`` on ``pd.crosstab``)."""
    tab = counts[counts.sum(axis=1) > 0]
    tab = tab[:, tab.sum(axis=0) > 0]
    if tab.size == 0:
        return math.nan, "Not tested"
    min_observed = int(tab.sum(axis=1).min())
    chi = chi2_contingency(tab.T)
    if chi.min_expected < 5 or min_observed < 5:
        if tab.shape == (2, 2):
            return fisher_exact_2x2(tab.T).p_value, "Fisher's exact"
        return chi.p_value, "Chi-squared (warning: expected count < 5)"
    return chi.p_value, "Chi-squared"


def _group_codes(
    frame: pd.DataFrame, group: str | None, group_order: Sequence[str]
) -> tuple[list[str], np.ndarray]:
    if group is None:
        return [], np.full(len(frame), -1, dtype=np.int64)
    raw, uniques = pd.factorize(frame[group], use_na_sentinel=True)
    present = sorted(uniques.tolist())
    levels = [x for x in group_order if x in present] + [x for x in present if x not in group_order]
    bad = [str(x) for x in levels if str(x) in RESERVED_GROUPS]
    if bad:
        raise ValueError(f"a group may not be called {', '.join(bad)} (a column of the table)")
    position = {x: i for i, x in enumerate(levels)}
    recode = np.array([*(position[u] for u in uniques.tolist()), -1], dtype=np.int64)
    return [str(x) for x in levels], recode[raw]


def summarise(
    frame: pd.DataFrame,
    variables: Sequence[Variable],
    group: str | None = None,
    group_order: Sequence[str] = (),
    decimals: int = 1,
) -> SummaryTable:
    """Summarise ``frame`` overall and per group, as ``tableone.TableOne`` prints it (see the module's notes).

    Parameters
    ----------
    frame : pandas.DataFrame
        One column per variable (numbers for ``median`` and ``mean``, any values for ``category``; missing
        values as NaN / NA) and the grouping column. Rows without a group count in Overall only.
    variables : sequence of Variable
        The rows, in order (a variable without any value gives no row).
    group : str or None
        The grouping column (``None``: an Overall column only, no SMD, p or test).
    group_order : sequence of str
        The groups' order (the groups not listed follow in sorted order).
    decimals : int
        Decimals of the summaries and percentages.

    Returns
    -------
    SummaryTable
        The printed table.

    Raises
    ------
    ValueError
        When a group is named like a column of the table (:data:`RESERVED_GROUPS`).
    """
    groups, codes = _group_codes(frame, group, group_order)
    grouped = group is not None
    n_groups = len(groups)
    perm = np.argsort(codes, kind="stable")  # each group's rows, in row order
    bounds = np.searchsorted(codes[perm], np.arange(n_groups + 1))
    rows_of = [perm[bounds[i] : bounds[i + 1]] for i in range(n_groups)]
    pairs = list(combinations(range(n_groups), 2))
    smd_names = [f"SMD ({groups[a]},{groups[b]})" for a, b in pairs]
    columns = ["Missing", "Overall"]
    if grouped:
        columns += [*groups, *sorted(smd_names), "P-Value", "Test"]
    index: list[tuple[str, str]] = [("n", "")]
    n_row = {"Missing": "", "Overall": str(len(frame))}
    n_row.update({g: str(len(r)) for g, r in zip(groups, rows_of, strict=True)})
    cells: list[dict[str, str]] = [n_row]
    for v in variables:  # each column read once; a variable without any value gives no row
        label = f"{v.label}, {_SUFFIX[v.kind]}"
        if v.kind == "category":
            new = _categorical_rows(frame[v.column], v, groups, codes, pairs, smd_names, decimals)
            for level, row in new:
                index.append((label, level))
                cells.append(row)
            continue
        x = pd.to_numeric(frame[v.column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        n_missing = int(np.count_nonzero(np.isnan(x)))
        if n_missing == x.size:
            continue
        row = {"Missing": str(n_missing), "Overall": _continuous_cell(x, v.kind, decimals)}
        if grouped:
            xs = [x[r] for r in rows_of]
            row.update({g: _continuous_cell(xg, v.kind, decimals) for g, xg in zip(groups, xs, strict=True)})
            # tableone's SMD uses pandas' group means (compensated sums) and its own SD
            means = pd.Series(x).groupby(codes).mean()
            sds = [_std(xg) for xg in xs]
            for (a, b), name in zip(pairs, smd_names, strict=True):
                row[name] = _fmt_smd(
                    _cont_smd(means.get(a, math.nan), means.get(b, math.nan), sds[a], sds[b])
                )
            p, test = _p_continuous([xg[~np.isnan(xg)] for xg in xs], v.kind)
            row["P-Value"], row["Test"] = _fmt_p(p), test
        index.append((label, ""))
        cells.append(row)
    table = pd.DataFrame.from_records(cells, columns=columns).fillna("")
    table.index = pd.MultiIndex.from_tuples(index, names=[None, None])
    return SummaryTable(table, group)


def _categorical_rows(
    col: pd.Series,
    v: Variable,
    groups: list[str],
    codes: np.ndarray,
    pairs: list[tuple[int, int]],
    smd_names: list[str],
    decimals: int,
) -> list[tuple[str, dict[str, str]]]:
    """The rows of one categorical variable: (level, cells), the first row with SMD, p and test."""
    raw, uniques = pd.factorize(col, use_na_sentinel=True)
    has = raw >= 0
    if len(uniques) == 0:
        return []
    text = [str(u) for u in uniques]  # tableone compares the values' text
    levels = sorted(set(text))
    where = {t: i for i, t in enumerate(levels)}
    to_level = np.array([where[t] for t in text], dtype=np.int64)
    lvl = np.full(len(col), -1, dtype=np.int64)
    lvl[has] = to_level[raw[has]]
    n_lv = len(levels)
    overall = np.bincount(lvl[has], minlength=n_lv)
    n_groups = len(groups)
    both = has & (codes >= 0)
    counts = np.bincount(codes[both] * n_lv + lvl[both], minlength=n_groups * n_lv).reshape(n_groups, n_lv)
    with np.errstate(all="ignore"):
        pct_all = overall / overall.sum() * 100
        pct = counts / counts.sum(axis=1, keepdims=True) * 100
    order = [x for x in v.levels if x in where] + [x for x in levels if x not in v.levels]
    out: list[tuple[str, dict[str, str]]] = []
    for level in order:
        j = where[level]
        row = {"Overall": f"{overall[j]} ({pct_all[j]:.{decimals}f})"}
        row.update({g: f"{counts[i, j]} ({pct[i, j]:.{decimals}f})" for i, g in enumerate(groups)})
        out.append((level, row))
    first = out[0][1]
    first["Missing"] = str(int(np.count_nonzero(~has)))
    if groups:
        for (a, b), name in zip(pairs, smd_names, strict=True):
            first[name] = _fmt_smd(_cat_smd(pct[a] / 100, pct[b] / 100))
        p, test = _p_categorical(counts)
        first["P-Value"], first["Test"] = _fmt_p(p), test
    return out
