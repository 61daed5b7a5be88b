"""The one result shape shared by every estimate pofa reports.

The report and results.json read only these fields, so every estimator (odds ratio, hazard ratio, median,
survival at a landmark, cumulative incidence) is rendered the same way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate with its confidence interval and p-value.

    Parameters
    ----------
    estimate : float
        The point estimate on the reported scale (an odds ratio, a hazard ratio, a probability, months).
        ``nan`` when not estimable; ``reason`` then says why.
    ci_low, ci_high : float
        Lower and upper confidence limits (``nan`` when not estimable or unbounded above: see ``reason``).
    p : float
        Two-sided p-value, ``nan`` when no test applies.
    n : int
        Number of observations behind the estimate.
    method : str
        The method, in words a reader of a paper understands, including the CI type.
    reason : str
        Why a quantity is missing (empty when everything is estimable).
    """

    estimate: float
    ci_low: float
    ci_high: float
    p: float
    n: int
    method: str
    reason: str = ""

    def to_json(self) -> dict[str, object]:
        """Plain JSON-ready dict: non-finite numbers become ``None``."""
        return {k: json_number(v) if isinstance(v, float) else v for k, v in asdict(self).items()}


def json_number(x: float | int | None) -> float | int | None:
    """Return ``x`` as a JSON number, or ``None`` when it is missing or not finite."""
    if x is None:
        return None
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, int):
        return x
    xf = float(x)
    return xf if math.isfinite(xf) else None
