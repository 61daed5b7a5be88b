"""Tests of the cohort simulator (pofa.simulate): determinism, parameters, invariants, writer, CLI, demo."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import special, stats
from typer.testing import CliRunner

from pofa.cli.simulate import simulate_command
from pofa.data import bundled_study
from pofa.errors import PofaError, SettingsError
from pofa.simulate import apply_overrides, load_params, preset, simulate, write_study
from pofa.simulate.figures import km_median, lesion_outcomes
from pofa.simulate.generator import DAYS_PER_MONTH, STREAMS, SimulatedStudy, draw_latent
from pofa.simulate.params import BODY_BOX_MM, DEFAULT_SITES, PRESETS, SimulationParams, parse_assignment
from pofa.simulate.writer import study_files
from pofa.study import load_study

BASE = preset("figura2021")
DEMO_SEED = 2405
WINDOW = pd.Timedelta(days=30)


def small(n: int = 63, **values: object) -> SimulationParams:
    return apply_overrides(BASE, {"cohort.n_patients": n, **values})


# ------------------------------------------------------------------------------------------------ determinism

def test_same_seed_same_study() -> None:
    a, b = simulate(BASE, 7), simulate(BASE, 7)
    for name in ("patients", "lesions", "failures", "patient_truth", "lesion_truth"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert study_files(a) == study_files(b)


def test_different_seeds_differ() -> None:
    a, b = simulate(BASE, 7), simulate(BASE, 8)
    assert not a.patients["index_date"].equals(b.patients["index_date"])
    assert not a.lesions["diameter_cm"].equals(b.lesions["diameter_cm"])


def test_streams_are_separate() -> None:
    """Each part of the model has its own random stream: changing one part leaves the others unchanged."""
    a = simulate(BASE, 3)
    b = simulate(apply_overrides(BASE, {"failure.log_or_bulky": 0.0, "failure.later_scan_prob": 0.9}), 3)
    pd.testing.assert_frame_equal(a.patients, b.patients)  # survival and dates do not use the failure stream
    pd.testing.assert_frame_equal(a.lesions, b.lesions)
    assert not a.lesion_truth["p_local_given_progression"].equals(b.lesion_truth["p_local_given_progression"])
    c = simulate(apply_overrides(BASE, {"covariates.age_mean": 40.0}), 3)
    pd.testing.assert_frame_equal(a.lesions, c.lesions)
    pd.testing.assert_frame_equal(a.failures, c.failures)
    assert (c.patients["age"] < a.patients["age"]).mean() > 0.8
    assert len(set(STREAMS.values())) == len(STREAMS)


def test_results_are_immutable_copies() -> None:
    sim = simulate(small(10), 1)
    les = sim.lesions
    les.loc[:, "diameter_cm"] = -1.0
    assert (sim.lesions["diameter_cm"] > 0).all()
    with pytest.raises(AttributeError):
        sim.seed = 2  # type: ignore[misc]


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True])
def test_bad_seed(seed: object) -> None:
    with pytest.raises(SettingsError, match="seed"):
        simulate(BASE, seed)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ parameters

def test_set_values_of_every_type(tmp_path: Path) -> None:
    p = load_params("figura2021", assignments=[
        "failure.log_or_bulky=1.25", "cohort.n_patients=100", "followup.data_cutoff=2021-01-31",
        "covariates.ecog_probs=[0.5, 0.5]", "cohort.patient_id_prefix=SIM", "n_patients=120",
        "failure.intercept = -2",
    ])
    assert p.failure.log_or_bulky == 1.25
    assert p.cohort.n_patients == 120  # later assignment wins; a unique bare name is accepted
    assert p.followup.data_cutoff.isoformat() == "2021-01-31"
    assert p.covariates.ecog_probs == (0.5, 0.5)
    assert p.cohort.patient_id_prefix == "SIM"
    assert p.failure.intercept == -2.0 and isinstance(p.failure.intercept, float)
    assert set(p.differences(BASE)) == {
        "failure.log_or_bulky", "cohort.n_patients", "followup.data_cutoff", "covariates.ecog_probs",
        "cohort.patient_id_prefix", "failure.intercept"}


def test_precedence_preset_config_set_patients(tmp_path: Path) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text("[cohort]\nn_patients = 80\n[failure]\nlog_or_suv = 0.5\nlog_or_bulky = 0.7\n")
    p = load_params("figura2021", config=cfg, assignments=["failure.log_or_bulky=0.9"], n_patients=90)
    assert (p.cohort.n_patients, p.failure.log_or_suv, p.failure.log_or_bulky) == (90, 0.5, 0.9)
    assert p.survival == BASE.survival


def test_config_replaces_site_table(tmp_path: Path) -> None:
    cfg = tmp_path / "sites.toml"
    cfg.write_text(
        "[[lesions.sites]]\nname = 'liver'\nextranodal = true\nweight = 1\ncentre_mm = [-90, 0, -120]\n"
        "spread_mm = [40, 40, 40]\n"
        "[[lesions.sites]]\nname = 'spleen'\nextranodal = false\nweight = 3\ncentre_mm = [110, 50, -110]\n"
        "spread_mm = [20, 25, 30]\n")
    p = load_params(config=cfg, n_patients=200)
    sim = simulate(p, 1)
    les = sim.lesions
    assert set(les["site"]) == {"liver", "spleen"}
    assert (les.loc[les["site"] == "spleen", "extranodal"] == False).all()  # noqa: E712
    assert 0.65 < (les["site"] == "spleen").mean() < 0.85  # weight 3/4; ~1500 lesions, SE ~0.011 (clustered)


@pytest.mark.parametrize(("text", "message"), [
    ("failure.log_or_bulk=1", "did you mean failure.log_or_bulky"),
    ("nonsense=1", "unknown simulation parameter"),
    ("log_or_bulky", "key=value"),
    ("=3", "no parameter name"),
    ("cohort.n_patients=2.5", "whole number"),
    ("cohort.n_patients=0", ">= 1"),
    ("failure.de_novo_prob=1.5", "probability"),
    ("failure.log_or_bulky=abc", "must be a number"),
    ("followup.data_cutoff=2014-01-01", "accrual_start <= accrual_end < data_cutoff"),
    ("followup.data_cutoff=31/12/2020", "YYYY-MM-DD"),
    ("covariates.ecog_probs=[0.5, 0.6]", "summing to 1"),
    ("failure.confirm_scan_max_days=45", "window is 30 days"),
    ("lesions.suv_diameter_correlation=1", "between -1 and 1"),
    ("intercept=true", "must be a number"),
])
def test_bad_assignments_are_clear_errors(text: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_params("figura2021", assignments=[text])


def test_bad_config_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[cohort\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_params(config=bad)
    bad.write_text("[cohrt]\nn_patients = 3\n")
    with pytest.raises(SettingsError, match=r"did you mean \[cohort\]"):
        load_params(config=bad)
    bad.write_text("[[lesions.sites]]\nname = 'x'\nweight = 1\n")
    with pytest.raises(SettingsError, match="missing site field"):
        load_params(config=bad)
    with pytest.raises(SettingsError, match="does not exist"):
        load_params(config=tmp_path / "missing.toml")
    with pytest.raises(SettingsError, match="unknown preset 'nope'; choose one of: figura2021"):
        load_params("nope")


def test_parse_assignment_reads_toml_values_else_text() -> None:
    assert parse_assignment("a.b=1") == ("a.b", 1)
    assert parse_assignment("a.b = 2.5e-1") == ("a.b", 0.25)
    assert parse_assignment("a.b=true") == ("a.b", True)
    assert parse_assignment("a.b=hello world") == ("a.b", "hello world")
    assert parse_assignment("a.b='x=y'") == ("a.b", "x=y")


def test_every_key_round_trips_through_to_dict() -> None:
    d = BASE.to_dict()
    flat = {f"{s}.{k}": v for s, sec in d.items() for k, v in sec.items()}
    assert apply_overrides(BASE, flat) == BASE
    assert set(PRESETS) == {"figura2021", "bridging_rt"}


def test_spleen_and_waldeyer_are_nodal() -> None:
    by_name = {s.name: s for s in DEFAULT_SITES}
    assert not by_name["spleen"].extranodal and not by_name["Waldeyer's ring"].extranodal
    assert by_name["liver"].extranodal and by_name["bone"].extranodal
    en = sum(s.weight for s in DEFAULT_SITES if s.extranodal) / sum(s.weight for s in DEFAULT_SITES)
    assert 0.30 < en < 0.40


# ------------------------------------------------------------------------------------------------ invariants

def check_invariants(sim: SimulatedStudy, separate_baselines: bool = False) -> None:
    """Every rule of the study format and of the model, for one simulated study.

    With ``separate_baselines``, also check that a patient's baseline lesions (spheres of their diameter) do
    not overlap; the generator guarantees it unless a patient has too many large lesions to fit.
    """
    p, les, fl = sim.patients, sim.lesions, sim.failures
    truth, ltruth = sim.patient_truth, sim.lesion_truth
    params = sim.params
    # identifiers
    assert p["patient_id"].is_unique
    assert not les.duplicated(["patient_id", "lesion_id"]).any()
    assert not fl.duplicated(["patient_id", "failure_id"]).any()
    assert set(les["patient_id"]) == set(p["patient_id"])  # every patient has at least one lesion
    # dates
    idx = p["index_date"]
    fu = params.followup
    assert idx.between(pd.Timestamp(fu.accrual_start), pd.Timestamp(fu.accrual_end)).all()
    for col in ("last_followup_date", "progression_date", "death_date"):
        assert (p[col].isna() | (p[col] >= idx)).all(), col
    assert (p["last_followup_date"] <= pd.Timestamp(params.followup.data_cutoff)).all()
    prog, death = p["progression_date"], p["death_date"]
    assert (prog.isna() | (prog <= p["last_followup_date"])).all()
    assert (prog.isna() | death.isna() | (prog <= death)).all()
    assert (death.isna() | (death == p["last_followup_date"])).all()
    # lesions
    for col in ("diameter_cm", "suvmax", "mtv_ml", "tlg"):
        assert (les[col] > 0).all(), col
    assert (les["diameter_cm"] >= params.lesions.diameter_min_cm).all()
    assert (les["suvmax"] >= params.lesions.suvmax_min - 0.05).all()
    for axis, (lo, hi) in zip(("x_mm", "y_mm", "z_mm"), BODY_BOX_MM, strict=True):
        assert les[axis].between(lo, hi).all() and fl[axis].between(lo, hi).all()
    nodal_sites = {s.name for s in params.lesions.sites if not s.extranodal}
    assert (les["extranodal"] == ~les["site"].isin(nodal_sites)).all()
    # failure rows
    m = fl.merge(p, on="patient_id", how="left", validate="many_to_one")
    assert m["progression_date"].notna().all()  # failure rows only for patients with progression
    assert (m["scan_date"] >= m["progression_date"]).all()
    assert (m["scan_date"] <= m["last_followup_date"]).all()
    assert fl["site"].notna().all() and fl["extranodal"].notna().all()
    named = fl[fl["baseline_lesion_id"].notna()]
    keys = set(zip(les["patient_id"], les["lesion_id"], strict=True))
    assert all(k in keys for k in zip(named["patient_id"], named["baseline_lesion_id"], strict=True))
    first = m[(m["scan_date"] - m["progression_date"]) <= WINDOW]
    assert not first.duplicated(["patient_id", "baseline_lesion_id"]).any() or \
        first["baseline_lesion_id"].isna()[first.duplicated(["patient_id", "baseline_lesion_id"])].all()
    # each progressing patient with a known pattern has a row on the progression date itself
    on_day = set(m.loc[m["scan_date"] == m["progression_date"], "patient_id"])
    known = truth.loc[truth["progressed"] & (truth["pattern"] != "unknown"), "patient_id"]
    assert set(known) <= on_day
    assert not set(truth.loc[truth["pattern"] == "unknown", "patient_id"]) & set(fl["patient_id"])
    # geometry: local rows sit on their lesion, new lesions keep the margin from every baseline sphere
    pos = les.set_index(["patient_id", "lesion_id"])[["x_mm", "y_mm", "z_mm", "diameter_cm"]]
    base = pos.loc[list(zip(named["patient_id"], named["baseline_lesion_id"], strict=True))].to_numpy()
    shift = np.sqrt(((named[["x_mm", "y_mm", "z_mm"]].to_numpy() - base[:, :3]) ** 2).sum(axis=1))
    assert (shift <= 6 * params.failure.local_jitter_mm + 0.2).all()
    new = fl[fl["baseline_lesion_id"].isna()]
    for pid, rows in new.groupby("patient_id"):
        b = les[les["patient_id"] == pid]
        d = np.sqrt(((rows[["x_mm", "y_mm", "z_mm"]].to_numpy()[:, None, :]
                      - b[["x_mm", "y_mm", "z_mm"]].to_numpy()[None, :, :]) ** 2).sum(axis=2))
        gap = d - 5 * (rows["diameter_cm"].to_numpy()[:, None] + b["diameter_cm"].to_numpy()[None, :])
        assert (gap >= params.failure.de_novo_margin_mm - 0.2).all()  # 0.2 mm: rounding to 0.1 mm
    if separate_baselines:
        for _, b in les.groupby("patient_id"):
            xyz, r = b[["x_mm", "y_mm", "z_mm"]].to_numpy(), 5 * b["diameter_cm"].to_numpy()
            d = np.sqrt(((xyz[:, None, :] - xyz[None, :, :]) ** 2).sum(axis=2))
            gap = d - r[:, None] - r[None, :]
            assert (gap[~np.eye(len(b), dtype=bool)] >= -0.2).all()
    # the tables carry the truth (outcomes decided with the format's 30-day rule)
    les_out, pat_out = lesion_outcomes(p, les, fl)
    assert (pat_out["pattern"].to_numpy() == truth["pattern"].to_numpy()).all()
    assert (les_out["local_failure"].to_numpy() == ltruth["local_failure"].to_numpy()).all()
    assert (truth["progressed"] == p["progression_date"].notna()).all()
    assert (truth["died"] == p["death_date"].notna()).all()
    assert (ltruth["bulky"] == (les["diameter_cm"] >= params.failure.bulky_cm)).all()
    assert np.allclose(ltruth["p_local_given_progression"], special.expit(ltruth["linear_predictor"]))


@pytest.mark.parametrize("seed", range(25))
def test_invariants_figura2021(seed: int) -> None:
    check_invariants(simulate(BASE, seed), separate_baselines=True)


@pytest.mark.parametrize("values", [
    {"failure.unknown_pattern_prob": 0.4, "failure.confirm_scan_prob": 1.0, "failure.later_scan_prob": 1.0},
    {"failure.bridging_rt_prob": 0.6, "survival.nrm_rate_per_year": 0.0, "followup.loss_rate_per_year": 0.0},
    {"cohort.lesions_extra_mean": 0.0, "failure.de_novo_extra_mean": 0.0, "failure.patient_sd": 0.0},
    {"cohort.lesions_extra_mean": 15.0, "lesions.diameter_median_cm": 5.0, "failure.de_novo_extra_mean": 6.0},
    {"followup.accrual_start": "2019-12-31", "followup.data_cutoff": "2020-01-01"},
])
def test_invariants_extreme_parameters(values: dict[str, object]) -> None:
    for seed in range(3):
        check_invariants(simulate(small(63, **values), seed))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), n=st.integers(1, 40), unknown=st.floats(0, 1), confirm=st.floats(0, 1),
       later=st.floats(0, 1), sd=st.floats(0, 4), loss=st.floats(0, 3))
def test_invariants_random_parameters(seed: int, n: int, unknown: float, confirm: float, later: float,
                                      sd: float, loss: float) -> None:
    check_invariants(simulate(small(n, **{
        "failure.unknown_pattern_prob": unknown, "failure.confirm_scan_prob": confirm,
        "failure.later_scan_prob": later, "failure.patient_sd": sd,
        "followup.loss_rate_per_year": loss}), seed))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_written_study_passes_pofa_validation(tmp_path: Path, seed: int) -> None:
    """The study reader and validator accept a simulated study with no error and no warning."""
    sim = simulate(small(63, **{"failure.later_scan_prob": 0.5, "failure.bridging_rt_prob": 0.3}), seed)
    study = load_study(write_study(sim, tmp_path / "s"))
    report = study.validate()
    assert not report.findings, [f.message for f in report.findings]
    assert len(study.patients) == 63 and len(study.lesions) == len(sim.lesions)
    assert set(study.covariates("patients")) == {"age", "sex", "ldh_elevated", "ecog"}
    assert study.settings.study.name == "simulated-custom-seed" + str(seed)


# ------------------------------------------------------------------------------------------------ the model

def test_generator_follows_its_documented_distributions() -> None:
    """Closed-form checks of the model on 20,000 latent patients (tolerances: 4 Monte Carlo SEs)."""
    params = small(20_000, **{"followup.loss_rate_per_year": 0.0, "survival.nrm_rate_per_year": 0.0})
    lat = draw_latent(params, 99)
    co, su = params.cohort, params.survival
    # 1 + NegativeBinomial(mean m, size k): mean 1 + m, variance m + m^2/k
    m, k = co.lesions_extra_mean, co.lesions_dispersion
    extra = lat.n_lesions - 1
    assert abs(extra.mean() - m) < 4 * math.sqrt((m + m * m / k) / lat.n)
    # Weibull progression for non-bulky patients: S(t) = exp(-(t/scale)^shape), KS test
    t = lat.progression_months[~lat.bulky]
    scale, shape = su.progression_scale_months, su.progression_weibull_shape
    ks = stats.kstest(t, lambda x: 1 - np.exp(-((x / scale) ** shape)))
    assert ks.pvalue > 1e-4
    # proportional hazards: cumulative hazard ratio bulky / non-bulky at the median time
    tb = lat.progression_months[lat.bulky]
    t0 = float(np.median(t))
    ratio = math.log((tb > t0).mean()) / math.log(0.5)
    assert abs(math.log(ratio) - su.log_hr_progression_bulky) < 0.05  # SE of the log ratio ~0.012 here
    # no loss, no NRM: every progression before the cutoff is observed
    admin = lat.censor_day
    assert np.array_equal(lat.progressed, lat.progression_day <= admin)
    # lesion failure given progression is Bernoulli(p): observed rate = mean p within 4 SE
    obs = (lat.progressed & ~lat.unknown)[lat.lesion_patient]
    y, p = lat.local_failure[obs], lat.p_local[obs]
    assert abs(y.mean() - p.mean()) < 4 * math.sqrt((p * (1 - p)).sum()) / p.size
    # no failure without progression; de novo forced when nothing failed locally
    assert not lat.local_failure[~obs].any()
    prog = lat.progressed & ~lat.unknown
    assert (lat.n_de_novo[prog & (lat.n_local == 0)] >= 1).all()
    # SUVmax and diameter are positively correlated on the log scale
    assert stats.spearmanr(lat.diameter_cm, lat.suvmax).statistic > 0.2


REFERENCE = Path(__file__).parent / "reference" / "simulate"


@pytest.mark.parametrize("case", ["flat_half", "simple", "censored", "ties_half", "never_half", "reverse_km"])
def test_km_median_matches_r_survfit(case: str) -> None:
    """Kaplan-Meier median (R's midpoint convention on a flat S = 0.5) against R survival 3.5-3 survfit
    (tests/reference/simulate/km_median.R). The medians are event times or midpoints of two: exact up to
    floating-point rounding (1e-12)."""
    ref = json.loads((REFERENCE / "km_median.json").read_text())[case]
    got = km_median(np.array(ref["time"], float), np.array(ref["event"], bool))
    if ref["median"] is None:
        assert math.isnan(got)
    else:
        assert got == pytest.approx(ref["median"], abs=1e-12)


def test_quick_calibration_600_patients() -> None:
    """One 600-patient cohort reproduces the paper's figures within 4 Monte Carlo SEs.

    SEs for n = 600 patients: a patient proportion p has SE sqrt(p(1-p)/600) (0.019 for 0.67); pattern shares
    among ~343 recurrences SE sqrt(p(1-p)/343) (0.019 at 0.86, 0.026 at 0.36). For the GEE odds ratios the SE
    of the log OR scales like 1/sqrt(n): the paper's CI gives 0.21 at 63 patients, so ~0.068 here; 4 SE plus
    the 2% small-sample bias of the calibration gives 0.30 on the log scale. This catches, for instance, the
    conditional ORs (log 1.39 / 1.28 / 0.86) being reported instead of the marginal ones.
    """
    import statsmodels.api as sm

    sim = simulate(small(600), 12345)
    les, pat = lesion_outcomes(sim.patients, sim.lesions, sim.failures)
    n = 600
    bulky = les.groupby("patient_id")["diameter_cm"].max() >= 5
    assert abs(bulky.mean() - 46 / 69) < 4 * math.sqrt(0.667 * 0.333 / n)
    rec = pat[pat["progressed"]]
    assert abs(len(rec) / n - 36 / 63) < 4 * math.sqrt(0.571 * 0.429 / n)
    r = len(rec)
    local = rec["pattern"].isin(["strictly local", "mixed"]).mean()
    assert abs(local - 31 / 36) < 4 * math.sqrt(0.861 * 0.139 / r)
    strictly = (rec["pattern"] == "strictly local").mean()
    assert abs(strictly - 13 / 36) < 4 * math.sqrt(0.361 * 0.639 / r)
    assert abs(len(les) / n - 469 / 63) < 4 * 5.2 / math.sqrt(n)
    y = les["local_failure"].to_numpy(float)
    groups = pd.factorize(les["patient_id"])[0]
    factors = ((les["diameter_cm"] >= 5, 2.34), (les["suvmax"] >= 10, 2.08), (les["extranodal"], 1.49))
    for x, target in factors:
        X = sm.add_constant(x.to_numpy(float)[:, None])
        g = sm.GEE(y, X, groups=groups, family=sm.families.Binomial(),
                   cov_struct=sm.cov_struct.Exchangeable()).fit()
        assert abs(g.params[1] - math.log(target)) < 0.30, (target, math.exp(g.params[1]))
    fu = (sim.patients["last_followup_date"] - sim.patients["index_date"]).dt.days / DAYS_PER_MONTH
    med = km_median(fu.to_numpy(), sim.patients["death_date"].isna().to_numpy())
    assert abs(med - 12.6) < 2.5  # SD of the median over 63-patient studies is 2.4 months; here ~0.8


# ------------------------------------------------------------------------------------------------ writer

def test_writer_formats_and_atomicity(tmp_path: Path) -> None:
    sim = simulate(small(12), 4, preset="figura2021")
    out = write_study(sim, tmp_path / "a" / "b")
    names = sorted(x.name for x in out.iterdir())
    # pofa's record (docs/security.md) lets a later --force recognise the folder as pofa's, unchanged
    assert names == [".pofa-written.json", "failures.csv", "lesions.csv", "patients.csv", "study.toml"]
    assert not [x for x in (tmp_path / "a").iterdir() if x.name != "b"]  # no temporary folder left behind
    text = (out / "lesions.csv").read_text()
    assert text.splitlines()[0] == ("patient_id,lesion_id,site,extranodal,diameter_cm,suvmax,x_mm,y_mm,z_mm,"
                                    "mtv_ml,tlg,bridging_rt")
    assert "\r" not in text and text.endswith("\n")
    p = pd.read_csv(out / "patients.csv", dtype=str, keep_default_na=False)
    assert list(p.columns) == ["patient_id", "index_date", "last_followup_date", "progression_date",
                               "death_date", "age", "sex", "ldh_elevated", "ecog"]
    assert p["index_date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert set(p["ldh_elevated"]) <= {"yes", "no"}
    assert ((p["death_date"] == "") | (p["death_date"] == p["last_followup_date"])).all()
    f = pd.read_csv(out / "failures.csv", dtype=str, keep_default_na=False)
    assert list(f.columns) == ["patient_id", "failure_id", "scan_date", "baseline_lesion_id", "site",
                               "extranodal", "x_mm", "y_mm", "z_mm", "diameter_cm"]
    l2 = pd.read_csv(out / "lesions.csv", dtype=str, keep_default_na=False)
    assert l2["diameter_cm"].str.fullmatch(r"\d+\.\d").all()
    toml = tomllib.loads((out / "study.toml").read_text())
    description = ("Simulated cohort of 12 patients (pofa.simulate, preset figura2021, seed 4); "
                   "not real patients.")
    assert toml == {"study": {"name": "simulated-figura2021-seed4", "description": description,
                              "simulated": True, "seed": 4, "preset": "figura2021"}}
    assert (out / "study.toml").read_text().startswith("# SIMULATED study")


def test_writer_refuses_non_empty_folder_unless_forced(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("x")
    sim = simulate(small(5), 1, preset="figura2021")
    with pytest.raises(PofaError, match="not empty"):
        write_study(sim, dest)
    assert (dest / "keep.txt").read_text() == "x"
    with pytest.raises(PofaError, match=r"not written by pofa.*keep\.txt"):  # --force: pofa's folders only
        write_study(sim, dest, force=True)
    assert (dest / "keep.txt").read_text() == "x"
    (dest / "keep.txt").unlink()
    write_study(sim, dest)
    write_study(simulate(small(6), 2, preset="figura2021"), dest, force=True)  # its own folder: replaced
    assert len(pd.read_csv(dest / "patients.csv")) == 6
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out"]
    empty = tmp_path / "empty"
    empty.mkdir()
    write_study(sim, empty)  # an empty folder is fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(PofaError, match="not a folder"):
        write_study(sim, tmp_path / "file", force=True)


def test_study_toml_records_overrides(tmp_path: Path) -> None:
    params = small(30, **{"failure.log_or_bulky": 0.25, "followup.data_cutoff": "2020-12-31"})
    text = study_files(simulate(params, 9, preset="figura2021"))["study.toml"]
    assert "#   failure.log_or_bulky = 0.25" in text and "#   followup.data_cutoff = 2020-12-31" in text
    # the commented lines are valid TOML for --config (dotted keys)
    cfg = tmp_path / "params.toml"
    lines = [line[4:] for line in text.splitlines() if line.startswith("#   ") and " = " in line]
    cfg.write_text("\n".join(lines))
    again = load_params("figura2021", config=cfg, n_patients=30)
    assert study_files(simulate(again, 9, "figura2021")) == study_files(simulate(params, 9, "figura2021"))


# ----------------------------------------------------------------------------------------------- command line

def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("simulate")(simulate_command)

    @app.command("noop")
    def _noop() -> None:  # a second command so that "simulate" is a sub-command, as in pofa's CLI
        """Nothing."""

    return app


def test_cli_simulate(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "sim"
    res = runner.invoke(_app(), ["simulate", "--out", str(out), "--seed", "5", "--patients", "20",
                                 "--set", "failure.log_or_bulky=0.5", "--set", "cohort.patient_id_prefix=S"])
    assert res.exit_code == 0, res.output
    assert "20 patients" in res.output and "not real patients" in res.output
    p = pd.read_csv(out / "patients.csv", dtype=str)
    assert len(p) == 20 and p["patient_id"].iloc[0] == "S001"
    params = small(20, **{"failure.log_or_bulky": 0.5, "cohort.patient_id_prefix": "S"})
    expected = study_files(simulate(params, 5, preset="figura2021"))
    for name, text in expected.items():
        assert (out / name).read_text() == text
    res = runner.invoke(_app(), ["simulate", "--out", str(out)])
    assert res.exit_code == 2 and "not empty" in " ".join(res.output.split())  # a clear error, no traceback
    res = runner.invoke(_app(), ["simulate", "--out", str(out), "--force", "--set", "failure.nope=1"])
    assert res.exit_code == 2 and "unknown simulation parameter" in " ".join(res.output.split())
    cfg = tmp_path / "c.toml"
    cfg.write_text("[cohort]\nn_patients = 7\n")
    res = runner.invoke(_app(), ["simulate", "--out", str(out), "--force", "--config", str(cfg)])
    assert res.exit_code == 0 and len(pd.read_csv(out / "patients.csv")) == 7


def test_importing_the_command_module_is_light() -> None:
    code = ("import sys, pofa; before = set(sys.modules); import pofa.cli.simulate; "
            "new = set(sys.modules) - before; "
            "print(sorted(m for m in new if m.split('.')[0] in {'numpy', 'scipy', 'pandas', 'statsmodels'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------------------------------------ demo study

def test_bundled_demo_regenerates_byte_for_byte() -> None:
    demo = bundled_study("demo")
    files = study_files(simulate(preset("figura2021"), DEMO_SEED, preset="figura2021"), followup=True)
    for name, text in files.items():
        assert (demo / name).read_bytes() == text.encode("utf-8"), name


def test_bundled_demo_is_labelled_simulated() -> None:
    demo = bundled_study("demo")
    readme = (demo / "README.md").read_text()
    assert "simulated" in readme.lower() and "not real patients" in readme.lower()
    assert f"--seed {DEMO_SEED}" in readme
    info = tomllib.loads((demo / "study.toml").read_text())["study"]
    assert info["simulated"] is True and info["seed"] == DEMO_SEED and info["preset"] == "figura2021"
    report = load_study(demo).validate()
    assert not report.findings, [f.message for f in report.findings]
