"""Imports only for what is used: an analysis's statistics load neither scipy.stats nor firthmodels (with
scikit-learn), and their distribution functions equal scipy.stats' to the last bit."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from pofa.stats import distributions as d

SRC = Path(__file__).resolve().parents[1] / "src"
SCALE = Path(__file__).resolve().parent / "reference" / "scale"

CHILD = """
import sys
import pofa
from pofa.analysis import AnalysisOptions, run_analysis
from pofa.stats import study_stats as ss
res = run_analysis(pofa.load_study(sys.argv[1]), AnalysisOptions(), steps=())
ss.lesion_level(res.lesions, res.settings)
ss.survival(res.patients, res.settings)
ss.patient_level(res.patients, res.lesions, res.settings)
ss.competing_risks(res.patients, res.lesions, res.settings)
ss.cutpoints(res.patients, res.settings)
print(" ".join(m for m in ("scipy.stats", "firthmodels", "sklearn", "statsmodels", "matplotlib")
               if m in sys.modules))
"""


def test_statistics_of_a_study_load_no_heavy_library(tmp_path: Path) -> None:
    """A 1,000-patient cohort of the scale tests (no separation: no Firth fit is needed)."""
    spec = importlib.util.spec_from_file_location("scale_make_cohorts", SCALE / "make_cohorts.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    gen.write_cohort(1000, tmp_path / "study")
    env = dict(os.environ, PYTHONPATH=str(SRC))
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "study")], capture_output=True,
                          text=True, env=env, check=True)
    assert done.stdout.strip() == ""


@pytest.mark.parametrize("x", [0.0, 0.3, 1.959963984540054, 5.2, 12.0, 40.0])
def test_distribution_functions_equal_scipy_stats(x: float) -> None:
    assert d.norm_sf(x) == stats.norm.sf(x) and d.norm_cdf(x) == stats.norm.cdf(x)
    assert d.norm_pdf(x) == pytest.approx(stats.norm.pdf(x), rel=1e-15, abs=0)
    for df in (1, 2, 3, 7):
        assert d.chi2_sf(x, df) == stats.chi2.sf(x, df)
    arr = np.array([-x, x])
    np.testing.assert_array_equal(d.norm_sf(arr), stats.norm.sf(arr))
    for q in (0.025, 0.5, 0.975):
        assert d.norm_ppf(q) == stats.norm.ppf(q)
        assert d.beta_ppf(q, 3.0, 17.0) == stats.beta.ppf(q, 3.0, 17.0)


def test_ranks_equal_scipy_rankdata() -> None:
    rng = np.random.default_rng(1)
    t = rng.integers(0, 40, 500).astype(float)
    np.testing.assert_array_equal(d.rank_max(t), stats.rankdata(t, method="max"))
    np.testing.assert_array_equal(d.rank_average(t), stats.rankdata(t, method="average"))
