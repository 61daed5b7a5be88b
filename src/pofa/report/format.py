"""How numbers are written in the report, its tables and its figures (one place, so they always agree).

Conventions (those of clinical journals):

* odds and hazard ratios and their confidence limits: 2 decimals (``2.34``);
* months: 1 decimal (``12.6``);
* percentages: whole numbers from counts (``57%``), 1 decimal for probabilities (``51.2%``);
* p-values: ``<0.001`` below 0.001, 3 decimals below 0.01, else 2 decimals (``0.004``, ``0.02``, ``0.63``);
* a missing (not estimable) number is written ``NE`` ("not estimable"); the reason is given beside it.

Every formatter takes the number exactly as stored in results.json (``None`` = not estimable).
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = [
    "NOT_ESTIMABLE",
    "displayed_matches",
    "fmt_count",
    "fmt_months",
    "fmt_number",
    "fmt_p",
    "fmt_pct",
    "fmt_prob",
    "fmt_ratio",
    "p_phrase",
    "result_span",
]

#: Text shown for a number that could not be estimated.
NOT_ESTIMABLE = "NE"
#: En dash between confidence limits (journal style).
DASH = "\u2013"


def _finite(x: Any) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def fmt_number(x: Any, decimals: int) -> str:
    """Format a number with a fixed number of decimals.

    Parameters
    ----------
    x : Any
        The number (``None``, booleans, text that is not a number and non-finite values count as missing).
    decimals : int
        The number of decimals shown.

    Returns
    -------
    str
        The formatted number, or ``NE`` when missing or not finite.
    """
    v = _finite(x)
    if v is None:
        return NOT_ESTIMABLE
    return f"{v:.{decimals}f}"


def fmt_ratio(x: Any) -> str:
    """Format an odds or hazard ratio or one of its confidence limits with 2 decimals.

    Parameters
    ----------
    x : Any
        The ratio.

    Returns
    -------
    str
        The ratio with 2 decimals, or ``NE`` when missing or not finite.
    """
    return fmt_number(x, 2)


def fmt_months(x: Any) -> str:
    """Format a time in months with 1 decimal.

    Parameters
    ----------
    x : Any
        The time in months.

    Returns
    -------
    str
        The time with 1 decimal, or ``NE`` when missing or not finite.
    """
    return fmt_number(x, 1)


def fmt_count(x: Any) -> str:
    """Format a count as a whole number.

    Parameters
    ----------
    x : Any
        The count (rounded to the nearest whole number).

    Returns
    -------
    str
        The whole number, or ``NE`` when missing or not finite.
    """
    v = _finite(x)
    if v is None:
        return NOT_ESTIMABLE
    return f"{round(v):d}"


def fmt_p(x: Any) -> str:
    """Format a p-value: ``<0.001``, 3 decimals below 0.01, else 2 decimals (``>0.99`` above 0.995).

    Parameters
    ----------
    x : Any
        The p-value.

    Returns
    -------
    str
        The formatted p-value, or ``NE`` when missing or not finite.
    """
    v = _finite(x)
    if v is None:
        return NOT_ESTIMABLE
    if v < 0.001:
        return "<0.001"
    if v < 0.01:
        return f"{v:.3f}"
    if v > 0.995:
        return ">0.99"
    return f"{v:.2f}"


def p_phrase(x: Any, name: str = "p") -> str:
    """Write a p-value as a phrase for running text and figures.

    Parameters
    ----------
    x : Any
        The p-value (formatted by :func:`fmt_p`).
    name : str
        The symbol written before the value.

    Returns
    -------
    str
        ``"p = 0.02"``, ``"p < 0.001"``, ``"p > 0.99"`` or ``"p = NE"``.
    """
    text = fmt_p(x)
    if text[0] in "<>":
        return f"{name} {text[0]} {text[1:]}"
    return f"{name} = {text}"


def fmt_pct(count: Any, total: Any) -> str:
    """Format ``count / total`` as a whole-number percentage (``57%``).

    Whole counts are rounded half up exactly (13/40 = 32.5% -> ``33%``), as journals do; Python's own
    rounding would give 32 (half to even, and binary floating point).

    Parameters
    ----------
    count : Any
        The numerator.
    total : Any
        The denominator.

    Returns
    -------
    str
        The percentage, or ``NE`` when either is missing or ``total`` is 0.
    """
    c, t = _finite(count), _finite(total)
    if c is None or t is None or t == 0:
        return NOT_ESTIMABLE
    if c.is_integer() and t.is_integer() and t > 0 and c >= 0:
        ci, ti = int(c), int(t)
        return f"{(200 * ci + ti) // (2 * ti)}%"
    return f"{100.0 * c / t:.0f}%"


def fmt_prob(x: Any) -> str:
    """Format a probability as a percentage with 1 decimal (``51.2%``).

    Parameters
    ----------
    x : Any
        The probability (0 to 1).

    Returns
    -------
    str
        The percentage, or ``NE`` when missing or not finite.
    """
    v = _finite(x)
    if v is None:
        return NOT_ESTIMABLE
    return f"{100.0 * v:.1f}%"


def displayed_matches(text: str, value: Any) -> bool:
    """Whether ``text``, as the report shows it, states ``value`` (a results.json number) at its precision.

    ``NE`` matches a missing value; ``<0.001`` / ``p < 0.001`` a value below the bound; ``34.9%`` a
    probability of 0.349 +- 0.0005; otherwise the first number in the text, rounded as written (2.34 matches
    2.335 to 2.345). Text values must be equal. Used by the report's tests to prove that every number shown is
    the one stored.

    Parameters
    ----------
    text : str
        The text shown in the report.
    value : Any
        The results.json value (number, text, boolean or ``None``).

    Returns
    -------
    bool
        ``True`` when the text states the value at the text's precision.
    """
    t = text.strip()
    if value is None:
        return NOT_ESTIMABLE in t
    if isinstance(value, str):
        return t == value
    if isinstance(value, bool):
        return t in ("yes", "no") and (t == "yes") == value
    v = float(value)
    m = re.search(r"([<>])\s*([0-9.]+)", t)
    if m:
        bound = float(m.group(2))
        return v < bound if m.group(1) == "<" else v > bound
    m = re.search(r"-?[0-9]+(?:\.[0-9]+)?", t)
    if not m:
        return False
    shown = float(m.group(0))
    decimals = len(m.group(0).split(".", 1)[1]) if "." in m.group(0) else 0
    half_unit: float = 0.5 * 10**-decimals  # int ** -int is typed Any
    if t.endswith("%"):
        shown, half_unit = shown / 100, half_unit / 100
    return abs(shown - v) <= half_unit * (1 + 1e-9) + 1e-15


def result_span(text: str, path: str, value: Any) -> str:
    """Wrap ``text`` in a span carrying its results.json path and exact JSON value.

    The span's ``data-result`` and ``data-value`` attributes are those of every number of the report's tables,
    so that tests can compare what is shown with results.json.

    Parameters
    ----------
    text : str
        The text shown (escaped here).
    path : str
        Its place in results.json (``"responses[3].lugano_ct"``).
    value : Any
        The value stored there (non-finite numbers become ``null``, as in results.json).

    Returns
    -------
    str
        The HTML span.
    """
    import html
    import json

    if isinstance(value, float) and not math.isfinite(value):
        value = None
    return (f'<span data-result="{html.escape(path)}" data-value="{html.escape(json.dumps(value))}">'
            f"{html.escape(text)}</span>")
