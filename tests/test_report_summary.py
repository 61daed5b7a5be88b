"""pofa's summary tables (pofa.report.tables.summary) print what tableone.TableOne prints, cell for cell.

tableone 0.9.6 (a test dependency only) is the oracle: random frames of every shape Table 1 meets (two to
five groups, some of one member, rows without a group, missing values, small counts so that Fisher's exact
test and the r x c warning occur, normal and non-normal variables, constant columns, category levels absent
from a group or listed in the order but absent from the data), each summarised by both with the options the
report uses; every string must be equal (summaries, percentages, Missing, SMDs, p-values and test names).
Building the report's tables loads neither tableone nor scipy.stats.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pofa.report.model import ReportError
from pofa.report.tables.cohort import summary_table
from pofa.report.tables.summary import Variable, summarise

tableone = pytest.importorskip("tableone")

ROOT = Path(__file__).resolve().parents[1]


def tableone_table(
    frame: pd.DataFrame, variables: list[Variable], group: str | None, group_order: list[str]
) -> pd.DataFrame:
    """TableOne with the options pofa's Table 1 follows (as pofa called it before it summarised by itself)."""
    variables = [v for v in variables if frame[v.column].notna().any()]
    cats = [v.column for v in variables if v.kind == "category"]
    order = {v.column: list(v.levels) for v in variables if v.kind == "category" and v.levels}
    if group is not None:
        order[group] = list(group_order)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = tableone.TableOne(
            frame,
            columns=[v.column for v in variables],
            categorical=cats,
            nonnormal=[v.column for v in variables if v.kind == "median"],
            groupby=group,
            rename={v.column: v.label for v in variables},
            pval=group is not None,
            htest_name=group is not None,
            smd=group is not None,
            missing=True,
            include_null=False,
            order=order or None,
            overall=True,
            decimals=1,
        )
    return t.tableone


def random_frame(rng: np.random.Generator) -> tuple[pd.DataFrame, list[Variable], list[str]]:
    """A frame to summarise: groups g0.., variables v0.. of every kind, and the groups' order."""
    n = int(rng.choice([2, 3, 5, 8, 12, 20, 40, 150, 600]))
    k = int(rng.integers(2, 6))
    names = [f"g{i}" for i in range(k)]
    g = rng.choice(names, n, p=rng.dirichlet(np.full(k, rng.choice([0.5, 3.0])))).astype(object)
    if rng.random() < 0.2:
        g[rng.random(n) < 0.1] = None  # rows without a group: in Overall only
    data: dict[str, Any] = {"_group": g, "always": np.round(rng.gamma(2.0, 2.0, n), 1)}
    variables = [Variable("always", "Always", "median" if rng.random() < 0.5 else "mean")]
    for j in range(int(rng.integers(1, 6))):
        kind = str(rng.choice(["median", "mean", "category", "category"]))
        col = f"v{j}"
        if kind == "category":
            n_levels = int(rng.integers(1, 5))
            levels = [chr(97 + i) for i in range(n_levels)]
            x = rng.choice(levels, n, p=rng.dirichlet(np.ones(n_levels))).astype(object)
            x[rng.random(n) < rng.choice([0, 0.1, 0.5])] = pd.NA
            order: tuple[str, ...] = ()
            if rng.random() < 0.6:  # an order, possibly partial, possibly naming a level absent here
                order = tuple(
                    str(o) for o in rng.permutation([*levels, "zz"])[: int(rng.integers(0, n_levels + 2))]
                )
            data[col] = x
            variables.append(Variable(col, f"V{j}", "category", order))
            continue
        style = int(rng.integers(0, 4))
        if style == 0:
            x = rng.normal(50, 10, n)
        elif style == 1:
            x = np.round(rng.lognormal(1, 1, n), 1)
        elif style == 2:
            x = rng.integers(0, 4, n).astype(float)  # many ties
        else:
            x = np.full(n, 3.0)  # a constant column
        x[rng.random(n) < rng.choice([0, 0.1, 0.5])] = np.nan
        data[col] = x
        variables.append(Variable(col, f"V{j}", kind))
    return pd.DataFrame(data), variables, [str(x) for x in rng.permutation(names)]


def _compare(
    frame: pd.DataFrame, variables: list[Variable], group: str | None, order: list[str]
) -> pd.DataFrame:
    """Assert that both tables are the same strings; return ours."""
    ref = tableone_table(frame, variables, group, order).astype(str)
    ours = summarise(frame, variables, group, order).tableone.astype(str)
    assert list(ours.columns) == list(ref.columns)
    assert list(ours.index) == list(ref.index)
    rows, cols = np.nonzero((ours != ref).to_numpy())
    assert len(rows) == 0, [
        (ours.index[r], ours.columns[c], ours.iat[r, c], ref.iat[r, c])
        for r, c in zip(rows, cols, strict=True)
    ]
    return ours


def _random_comparisons(seeds: Iterable[int]) -> Counter[str]:
    tests: Counter[str] = Counter()
    compared = failed = 0
    for seed in seeds:
        rng = np.random.default_rng(seed)
        frame, variables, order = random_frame(rng)
        present = [o for o in order if (frame["_group"] == o).any()]
        group = "_group" if len(present) > 1 and rng.random() < 0.9 else None
        try:
            tableone_table(frame, variables, group, present)
        except KeyError:
            # tableone fails when, in some group, every continuous variable has at most one value (its pivot
            # table drops the group's undefined SDs); pofa prints the table (an SD nan where undefined)
            assert len(summarise(frame, variables, group, present).table) > 1
            failed += 1
            continue
        ours = _compare(frame, variables, group, present)
        compared += 1
        if group is not None:
            tests.update(t for t in ours.iloc[:, -1] if t)
    assert failed <= 0.1 * (compared + failed)
    return tests


ALL_TESTS = {
    "Kruskal-Wallis",
    "One-way ANOVA",
    "Welch\u2019s T-test",
    "Chi-squared",
    "Chi-squared (warning: expected count < 5)",
    "Fisher's exact",
    "Not tested",
}


def test_random_frames_equal_tableone() -> None:
    """Five of the frames below (one of them not grouped), among them every test tableone names."""
    assert set(_random_comparisons([1, 3, 8, 12, 25])) == ALL_TESTS


@pytest.mark.slow
def test_many_random_frames_equal_tableone() -> None:
    """400 frames (about 30,000 rows; a few minutes: TableOne takes about 0.3 s a frame)."""
    assert set(_random_comparisons(range(400))) == ALL_TESTS


def test_each_rule_equals_tableone() -> None:
    """One frame per rule: Welch and Fisher (two groups), the r x c warning, a constant column, a group of
    one member, a level absent from a group, a group without any value (not tested), no grouping."""
    rng = np.random.default_rng(7)
    n = 60
    two = np.where(np.arange(n) < 22, "a", "b").astype(object)
    frame = pd.DataFrame(
        {
            "_group": two,
            "age": rng.normal(60, 9, n),
            "size": np.round(rng.lognormal(1, 0.5, n), 1),
            "const": np.full(n, 2.0),
            "rare": np.where(np.arange(n) % 15 == 0, "yes", "no").astype(object),  # expected < 5: Fisher
            "common": rng.choice(["no", "yes"], n).astype(object),  # chi-square with Yates' correction
            "site": rng.choice(["x", "y", "z"], n).astype(object),
        }
    )
    frame.loc[3:5, "age"] = np.nan
    variables = [
        Variable("age", "Age (years)", "mean"),
        Variable("size", "Size (cm)", "median"),
        Variable("const", "Constant", "median"),
        Variable("rare", "Rare", "category", ("no", "yes")),
        Variable("common", "Common", "category", ("no", "yes")),
        Variable("site", "Site", "category", ("z",)),
    ]
    ours = _compare(frame, variables, "_group", ["b", "a"])
    tests = set(ours.iloc[:, -1])
    assert {"Welch\u2019s T-test", "Fisher's exact", "Chi-squared"} <= tests
    # three groups, one of a single member; a level absent from a group; the r x c warning
    three = frame.assign(_group=np.where(np.arange(n) == 0, "c", two))
    three.loc[three["_group"] == "b", "site"] = "x"
    ours = _compare(three, variables, "_group", ["a", "b", "c"])
    assert "Chi-squared (warning: expected count < 5)" in set(ours.iloc[:, -1])
    assert ours.loc[("Site, n (%)", "y"), ("Grouped by _group", "b")] == "0 (0.0)"
    # a group without any value of a variable: no test
    missing = three.assign(size=np.where(three["_group"] == "c", np.nan, three["size"]))
    ours = _compare(missing, variables, "_group", ["a", "b", "c"])
    assert ours.loc[("Size (cm), median [Q1,Q3]", ""), ("Grouped by _group", "Test")] == "Not tested"
    _compare(frame, variables, None, [])


def test_reserved_group_names_are_refused() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "_group": ["Overall", "b", "b"]})
    with pytest.raises(ValueError, match="Overall"):
        summarise(frame, [Variable("x", "X", "median")], "_group", ["b"])
    with pytest.raises(ReportError, match="Overall"):
        summary_table(frame, [Variable("x", "X", "median")], "_group", ["b"])


def _run(code: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()


def test_summaries_load_neither_tableone_nor_scipy_stats() -> None:
    code = (
        "import sys\n"
        "import pandas as pd\n"
        "from pofa.report.tables.cohort import Variable, summary_table\n"
        "f = pd.DataFrame({'x': [1.0, 2.0, 3.0, 4.0], 'c': ['a', 'b', 'a', 'a'], '_group': list('ppqq')})\n"
        "v = [Variable('x', 'X', 'median'), Variable('y', 'Y', 'mean'), Variable('c', 'C', 'category')]\n"
        "f['y'] = f['x']\n"
        "t = summary_table(f, v, '_group', ['p', 'q']).table\n"
        "assert list(t['Test'][1:]) == ['Kruskal-Wallis', 'Welch\u2019s T-test', \"Fisher's exact\", '']\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] == 'tableone' or m.startswith('scipy.stats')]\n"
        "print(' '.join(loaded))\n"
    )
    assert _run(code) == ""


def test_building_the_report_tables_loads_neither_tableone_nor_scipy_stats() -> None:
    code = (
        "import sys\n"
        "import pofa\n"
        "from pofa.analysis import AnalysisOptions, run_analysis\n"
        "from pofa.report.model import as_report_input\n"
        "inp = as_report_input(run_analysis(pofa.load_study(sys.argv[1]), AnalysisOptions(), steps=()))\n"
        "before = set(sys.modules)\n"
        "from pofa.report.tables.cohort import cohort_table, lesion_table\n"
        "cohort_table(inp); lesion_table(inp)\n"
        "print(' '.join(sorted(m for m in set(sys.modules) - before if m.split('.')[0] == 'tableone' "
        "or m.startswith('scipy.stats'))))\n"
    )
    assert _run(code, str(ROOT / "tests" / "reference" / "pipeline" / "study")) == ""
