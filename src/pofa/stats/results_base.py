"""The shared pieces of pofa's typed results: an estimate, a JSON number, a landmark, a step curve.

Imported by :mod:`pofa.stats.results`, which re-exports them; nothing else needs this module directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate with its confidence interval and p-value.

    Attributes
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
        """Return the estimate as a JSON-ready dict.

        Returns
        -------
        dict of str to object
            Every field by name; non-finite numbers become ``None``.
        """
        return {k: json_number(v) if isinstance(v, float) else v for k, v in asdict(self).items()}


def json_number(x: float | int | None) -> float | int | None:
    """Return ``x`` as a JSON number, or ``None`` when it is missing or not finite.

    Parameters
    ----------
    x : float or int or None
        The number to write (a bool is written as 0 or 1).

    Returns
    -------
    float or int or None
        ``x`` unchanged when it is an int, ``float(x)`` when finite, otherwise ``None``.
    """
    if x is None:
        return None
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, int):
        return x
    xf = float(x)
    return xf if math.isfinite(xf) else None


# -----------------------------------------------------------------------------------------------------------
# Typed results of a study analysis (pofa.stats.study_stats). results.json is written from them
# (``json_entries``), and the report renders them: the report imports this module only.


def _n(x: float | int | None) -> float | int | None:
    return json_number(x)


def _frozen_array(values: object) -> np.ndarray:
    out = np.array(values, dtype=float, copy=True).reshape(-1)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, slots=True)
class Landmark:
    """An estimate at a landmark time (survival or cumulative incidence) with its pointwise CI.

    Attributes
    ----------
    months : float
        The landmark time.
    estimate, ci_low, ci_high : float
        Estimate and confidence limits (``nan`` when not estimable).
    reason : str
        Why the estimate is missing (empty when estimable).
    """

    months: float
    estimate: float
    ci_low: float
    ci_high: float
    reason: str = ""

    def to_json(self, value_key: str) -> dict[str, Any]:
        """Return the landmark as written in results.json.

        Parameters
        ----------
        value_key : str
            The key of the estimate (``"survival"`` or ``"incidence"``).

        Returns
        -------
        dict of str to Any
            ``{"months", value_key, "ci_low", "ci_high"[, "reason"]}``; non-finite numbers become ``None``.
        """
        out: dict[str, Any] = {"months": self.months, value_key: _n(self.estimate), "ci_low": _n(self.ci_low),
                               "ci_high": _n(self.ci_high)}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True, eq=False)
class StepCurve:
    """A right-continuous step function with its pointwise band: the curve a figure draws.

    Attributes
    ----------
    times : numpy.ndarray
        Times (months) at which the estimate may change, increasing (read-only).
    estimate, ci_low, ci_high : numpy.ndarray
        The estimate just after each time and its pointwise confidence limits (read-only).
    n_risk : numpy.ndarray
        Number at risk just before each time (Kaplan-Meier curves; empty for cumulative incidence).
    n_censor : numpy.ndarray
        Number censored at each time (Kaplan-Meier curves; empty for cumulative incidence).
    start : float
        The value before the first time (1 for survival, 0 for cumulative incidence).
    last_time : float
        Last follow-up time: the curve is drawn flat to it, not beyond.
    ci_method : str
        The pointwise interval's transform (``"log-log"``, ...).
    """

    times: np.ndarray
    estimate: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n_risk: np.ndarray
    n_censor: np.ndarray
    start: float
    last_time: float
    ci_method: str

    def __post_init__(self) -> None:
        for name in ("times", "estimate", "ci_low", "ci_high", "n_risk", "n_censor"):
            object.__setattr__(self, name, _frozen_array(getattr(self, name)))
        if not (self.times.shape == self.estimate.shape == self.ci_low.shape == self.ci_high.shape):
            raise ValueError("a step curve's times, estimate and limits must have the same length")

    def steps(self) -> tuple[np.ndarray, np.ndarray]:
        """Return x and y of the step function from time 0 to :attr:`last_time` (``drawstyle="steps-post"``).

        Returns
        -------
        tuple of numpy.ndarray
            Times starting at 0 and values starting at :attr:`start`.
        """
        x = np.concatenate(([0.0], self.times))
        y = np.concatenate(([self.start], self.estimate))
        if self.last_time > x[-1]:
            x = np.append(x, self.last_time)
            y = np.append(y, y[-1])
        return x, y

    def band(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the pointwise confidence band as steps (``nan`` limits dropped).

        Returns
        -------
        tuple of numpy.ndarray
            Times, lower limits and upper limits, of equal length, for ``fill_between(..., step="post")``.
        """
        ok = np.isfinite(self.ci_low) & np.isfinite(self.ci_high)
        return self.times[ok], self.ci_low[ok], self.ci_high[ok]

    def censored(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the censoring times and the curve's value there (a Kaplan-Meier plot's censoring marks).

        Returns
        -------
        tuple of numpy.ndarray
            Times with at least one censored observation and the curve's value at each.
        """
        if self.n_censor.size == 0:
            return np.array([]), np.array([])
        sel = self.n_censor > 0
        return self.times[sel], self.estimate[sel]

    def value_at(self, t: float) -> float:
        """Return the curve's value at time ``t`` (the step it is on; no estimation).

        Parameters
        ----------
        t : float
            Time in months.

        Returns
        -------
        float
            The value of the step containing ``t`` (:attr:`start` before the first time).
        """
        i = int(np.searchsorted(self.times, t, side="right"))
        return self.start if i == 0 else float(self.estimate[i - 1])

    def at_risk(self, ticks: Sequence[float]) -> tuple[int, ...]:
        """Return the number at risk #{T >= t} at each tick (as R and SAS count), from the curve's risk sets.

        Parameters
        ----------
        ticks : sequence of float
            Times (months).

        Returns
        -------
        tuple of int
            The number at risk at each tick, in the order of ``ticks``.

        Raises
        ------
        ValueError
            When the curve carries no numbers at risk (a cumulative incidence).
        """
        if self.n_risk.size == 0:
            raise ValueError("this curve carries no numbers at risk")
        out = []
        for t in ticks:
            i = int(np.searchsorted(self.times, t, side="left"))
            out.append(int(self.n_risk[i]) if i < self.times.size else 0)
        return tuple(out)
