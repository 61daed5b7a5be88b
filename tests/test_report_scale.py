"""The report at scale: a swimmer plot of very many patients draws an evenly spaced sample and says so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pofa.report.plots.swimmer as swimmer
from pofa.examples import simulated_analysis
from pofa.report.model import as_report_input
from pofa.report.plots import rc_context


def bar_widths(ax) -> list[float]:
    """The swimmer's bar lengths, bottom to top (its bars are one path of rectangles per colour)."""
    bars = []
    for c in ax.collections:
        if (c.get_gid() or "").startswith("swimmer:bars:"):
            rects = c.get_paths()[0].vertices.reshape(-1, 5, 2)
            bars += [(float(r[:, 1].mean()), float(r[:, 0].max())) for r in rects]
    return [w for _, w in sorted(bars)]


def test_sample_keeps_the_first_and_last_and_at_most_the_limit() -> None:
    df = pd.DataFrame({"os_months": np.arange(100_000, dtype=float)})
    drawn, step = swimmer.swimmer_sample(df, 2000)
    assert step == 50 and len(drawn) <= 2001
    assert drawn["os_months"].iloc[0] == 0 and drawn["os_months"].iloc[-1] == 99_999
    assert np.all(np.diff(drawn["os_months"].to_numpy()) > 0)  # the order of follow-up kept
    same, one = swimmer.swimmer_sample(df.iloc[:2000], 2000)
    assert one == 1 and len(same) == 2000


def test_swimmer_of_many_patients_draws_a_sample_and_says_so(tmp_path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    inp = as_report_input(simulated_analysis(tmp_path / "study", 80, seed=11))
    monkeypatch.setattr(swimmer, "MAX_DRAWN", 30)
    with rc_context():
        built = swimmer.swimmer_figure(inp, False, "x")
    assert built is not None
    widths = bar_widths(built.figure.axes[0])
    os_months = np.sort(inp.patients["os_months"].dropna().to_numpy(float))
    assert built.drawn["patients"] == len(os_months) == 80 and built.drawn["step"] == 3
    assert len(widths) == built.drawn["drawn"] <= 31
    assert widths[0] == pytest.approx(os_months[0]) and widths[-1] == pytest.approx(os_months[-1])
    assert f"Only {len(widths)} of the 80 patients are drawn (one in every 3" in built.spec.caption
    n_dead = int(inp.patients["os_event"].fillna(False).astype(bool).sum())
    assert f"death by a cross ({n_dead})" in built.spec.caption  # counts are of all patients
