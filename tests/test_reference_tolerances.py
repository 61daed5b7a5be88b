"""Meta-test: no comparison in the test suite may use a tolerance looser than 1e-2.

Scans every ``tests/test_*.py`` (recursively) with ``ast`` for calls to ``numpy.testing.assert_allclose``,
``numpy.allclose``, ``numpy.isclose``, ``pytest.approx`` and ``math.isclose`` (under any import alias, or
imported bare) and checks their ``rtol=``, ``atol=``, ``rel=`` and ``abs=`` keyword arguments (and
``rel_tol=`` / ``abs_tol=``, math.isclose's names). A value is a
numeric literal (``1e-8``, ``-1e-8``, ``1 / 100``), or a name bound to such a literal at module level
(``RTOL = 1e-8`` ... ``rtol=RTOL``). A failure lists file:line of every offender.

Why 1e-2: the reference values are computed exactly the same way in R; anything looser than 1% hides a
convention mismatch (log vs log-log CI, Breslow vs Efron ties) instead of testing agreement.
"""

from __future__ import annotations

import ast
import math
import operator
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
LIMIT = 1e-2
TOL_KEYWORDS = frozenset({"rtol", "atol", "rel", "abs", "rel_tol", "abs_tol"})  # the last two: math.isclose
# dotted names (after resolving import aliases) of the comparison functions checked
CHECKED = frozenset(
    {
        "numpy.testing.assert_allclose",
        "numpy.allclose",
        "numpy.isclose",
        "pytest.approx",
        "math.isclose",
    }
)


_BINOPS = {
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Add: operator.add,
    ast.Sub: operator.sub,
}


def _const(node: ast.AST, names: dict[str, float]) -> float | None:
    """Value of a numeric literal expression, or None when it is not one."""
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        v = _const(node.operand, names)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        a, b = _const(node.left, names), _const(node.right, names)
        if a is None or b is None:
            return None
        try:
            return float(_BINOPS[type(node.op)](a, b))
        except (ArithmeticError, OverflowError):
            return None
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    return None


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted module/function path, from the file's imports."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    head = aliases.get(node.id, node.id)
    return ".".join([head, *reversed(parts)])


def _module_constants(tree: ast.Module) -> dict[str, float]:
    names: dict[str, float] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            v = _const(node.value, names)
            if v is not None:
                names[node.targets[0].id] = v
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            v = _const(node.value, names)
            if v is not None:
                names[node.target.id] = v
    return names


def loose_tolerances(source: str, filename: str = "<string>", limit: float = LIMIT) -> list[str]:
    """``file:line: call(kw=value)`` for every checked call with a tolerance above ``limit``."""
    tree = ast.parse(source, filename=filename)
    aliases = _aliases(tree)
    names = _module_constants(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        fname = _dotted(node.func, aliases)
        if fname is None:
            continue
        if fname not in CHECKED:
            continue
        for kw in node.keywords:
            if kw.arg not in TOL_KEYWORDS:
                continue
            v = _const(kw.value, names)
            if v is not None and (math.isnan(v) or abs(v) > limit):
                found.append(
                    f"{filename}:{kw.value.lineno}: {fname}({kw.arg}={ast.unparse(kw.value)}) = {v:g}"
                )
    return found


def _test_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("test_*.py") if p.is_file())


def test_no_tolerance_looser_than_one_percent():
    offenders: list[str] = []
    for path in _test_files():
        offenders += loose_tolerances(path.read_text(encoding="utf-8"), str(path.relative_to(TESTS.parent)))
    assert not offenders, "tolerances looser than 1e-2 in comparisons:\n" + "\n".join(offenders)


def test_scan_sees_the_test_files():
    files = {p.name for p in _test_files()}
    assert {"test_stats_survival.py", "test_stats_cox.py", "test_reference_tolerances.py"} <= files


@pytest.mark.parametrize(
    "snippet",
    [
        "import numpy as np\nnp.testing.assert_allclose(a, b, rtol=0.1)",
        "import numpy\nnumpy.testing.assert_allclose(a, b, atol=5e-2)",
        "from numpy.testing import assert_allclose as aac\naac(a, b, rtol=2)",
        "import numpy as np\nassert np.allclose(a, b, atol=-0.5)",
        "import numpy as np\nassert np.isclose(a, b, rtol=1 / 10)",
        "import pytest\nassert a == pytest.approx(b, rel=0.05)",
        "from pytest import approx\nassert a == approx(b, abs=1)",
        "import math\nassert math.isclose(a, b, rel_tol=1e-9, abs_tol=0.2)",
        "from math import isclose\nassert isclose(a, b, rel=0.5)",
        "import numpy as np\nRTOL = 0.1\nnp.testing.assert_allclose(a, b, rtol=RTOL)",
        "import numpy as np\nT: float = 3e-2\ndef f():\n    np.testing.assert_allclose(a, b, atol=T)",
    ],
)
def test_scan_flags_loose_tolerances(snippet):
    hits = loose_tolerances(snippet, "snippet.py")
    assert len(hits) == 1 and hits[0].startswith("snippet.py:")


@pytest.mark.parametrize(
    "snippet",
    [
        "import numpy as np\nnp.testing.assert_allclose(a, b, rtol=1e-8, atol=0)",
        "import numpy as np\nRTOL = 1e-6\nnp.testing.assert_allclose(a, b, rtol=RTOL)",
        "import pytest\nassert a == pytest.approx(b, rel=1e-2)",
        "import numpy as np\nnp.linspace(0, 1, num=50)",
        "import numpy as np\ndef f(tol):\n    np.testing.assert_allclose(a, b, rtol=tol)",
    ],
)
def test_scan_accepts_tight_or_unrelated_calls(snippet):
    assert loose_tolerances(snippet, "snippet.py") == []


def test_report_names_the_line():
    src = "import numpy as np\n\n\nnp.testing.assert_allclose(a, b,\n    rtol=0.5)\n"
    assert loose_tolerances(src, "x.py") == ["x.py:5: numpy.testing.assert_allclose(rtol=0.5) = 0.5"]
