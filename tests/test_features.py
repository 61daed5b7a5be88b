"""Derived patient features and PFS / OS: closed-form cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist

from pofa.classify import DAYS_PER_MONTH
from pofa.errors import SettingsError
from pofa.features import dmax, patient_features, survival_endpoints, threshold_column
from pofa.settings import FeatureSettings, parse_settings

INDEX = pd.Timestamp("2020-01-01")


def rows(frame: pd.DataFrame) -> pd.DataFrame:
    frame.index = pd.RangeIndex(2, 2 + len(frame), name="row")
    return frame


def patients_table(ids: list[str]) -> pd.DataFrame:
    n = len(ids)
    return rows(pd.DataFrame({
        "patient_id": ids, "index_date": [INDEX] * n,
        "last_followup_date": [INDEX + pd.Timedelta(days=365)] * n,
        "progression_date": [pd.NaT] * n, "death_date": [pd.NaT] * n}))


def lesions_table(records: list[tuple]) -> pd.DataFrame:
    """(patient, lesion, diameter, suvmax, extranodal, mtv, (x, y, z) or None)."""
    out = []
    for pid, lid, diam, suv, extra, mtv, xyz in records:
        x, y, z = xyz if xyz is not None else (np.nan,) * 3
        out.append({"patient_id": pid, "lesion_id": lid, "site": "node", "extranodal": extra,
                    "diameter_cm": diam, "suvmax": suv, "x_mm": x, "y_mm": y, "z_mm": z, "mtv_ml": mtv})
    return rows(pd.DataFrame(out).astype({"extranodal": "boolean", "mtv_ml": "float64"}))


@pytest.fixture
def features() -> pd.DataFrame:
    patients = patients_table(["A", "B", "C", "D"])
    lesions = lesions_table([
        ("A", "L1", 5.0, 9.99, False, 10.0, (0.0, 0.0, 0.0)),     # exactly 5 cm: counts (>=)
        ("A", "L2", 2.0, 10.0, True, 2.5, (30.0, 40.0, 0.0)),     # exactly SUV 10: counts
        ("A", "L3", 1.0, 3.0, False, 0.5, (0.0, 0.0, 12.0)),
        ("B", "L1", 4.99, 9.9, False, np.nan, (1.0, 2.0, 3.0)),   # MTV blank -> total NA
        ("B", "L2", 1.0, 2.0, False, 4.0, None),                  # no centre -> Dmax NA
        ("C", "L1", 7.5, 20.0, True, 3.0, (5.0, 5.0, 5.0)),       # one lesion -> Dmax 0
    ])
    return patient_features(patients, lesions, FeatureSettings(diameter_cm_thresholds=(5.0, 7.5))).set_index(
        patients["patient_id"])


def test_thresholds_are_inclusive(features: pd.DataFrame) -> None:
    assert features["any_diameter_cm_ge_5"].tolist()[:3] == [True, False, True]
    assert features["any_suvmax_ge_10"].tolist()[:3] == [True, False, True]
    assert features["any_diameter_cm_ge_7_5"].tolist()[:3] == [False, False, True]


def test_burden_summaries(features: pd.DataFrame) -> None:
    assert features["n_lesions"].tolist() == [3, 2, 1, 0]
    assert features.loc["A", "max_diameter_cm"] == 5.0
    assert features.loc["A", "max_suvmax"] == 10.0
    assert features["any_extranodal"].tolist()[:3] == [True, False, True]
    assert features.loc["A", "total_mtv_ml"] == 13.0
    assert pd.isna(features.loc["B", "total_mtv_ml"])  # a blank MTV would make the sum understate
    assert features.loc["C", "total_mtv_ml"] == 3.0
    assert "total_tlg" not in features.columns  # no tlg column in the lesion table


def test_patient_without_lesions_has_missing_summaries(features: pd.DataFrame) -> None:
    d = features.loc["D"]
    assert d["n_lesions"] == 0
    for col in ("any_diameter_cm_ge_5", "any_suvmax_ge_10", "any_extranodal", "max_diameter_cm",
                "total_mtv_ml", "dmax_mm"):
        assert pd.isna(d[col]), col


def test_dmax_closed_form(features: pd.DataFrame) -> None:
    # A: distances 50 (3-4-5 triangle x10), 12, and sqrt(30^2 + 40^2 + 12^2).
    assert features.loc["A", "dmax_mm"] == pytest.approx(math.sqrt(2644.0), rel=1e-15)
    assert pd.isna(features.loc["B", "dmax_mm"])
    assert features.loc["C", "dmax_mm"] == 0.0


def test_dmax_matches_brute_force() -> None:
    rng = np.random.default_rng(7)
    sizes = [1, 2, 3, 7, 20, 64, 65, 150]  # both sides of the vectorised / per-patient split at 64
    ids = [f"P{i}" for i in range(len(sizes))]
    pid = np.repeat(ids, sizes)
    xyz = rng.normal(0, 100, (len(pid), 3))
    order = rng.permutation(len(pid))  # lesions of a patient need not be adjacent
    lesions = pd.DataFrame({"patient_id": pid[order], "x_mm": xyz[order, 0], "y_mm": xyz[order, 1],
                            "z_mm": xyz[order, 2]})
    got = dmax(lesions, pd.Series(ids))
    for i, p in enumerate(ids):
        pts = xyz[pid == p]
        expected = pdist(pts).max() if len(pts) > 1 else 0.0
        assert got[i] == pytest.approx(expected, rel=1e-12), p


def test_threshold_column_names() -> None:
    assert threshold_column("diameter_cm", 5) == "any_diameter_cm_ge_5"
    assert threshold_column("diameter_cm", 7.5) == "any_diameter_cm_ge_7_5"
    assert threshold_column("suvmax", 10.0) == "any_suvmax_ge_10"


def test_feature_settings_from_toml() -> None:
    toml = {"features": {"diameter_cm_thresholds": [5, 10], "suvmax_thresholds": []}}
    settings, findings = parse_settings(toml)
    assert findings == []
    assert settings.features == FeatureSettings(diameter_cm_thresholds=(5.0, 10.0), suvmax_thresholds=())
    _, findings = parse_settings({"features": {"suvmax_thresholds": [0]}})
    assert [f.column for f in findings] == ["suvmax_thresholds"]
    with pytest.raises(SettingsError):
        patient_features(patients_table(["A"]), lesions_table([("A", "L1", 1.0, 2.0, False, 1.0, None)]),
                         FeatureSettings(suvmax_thresholds=(-1.0,)))


def test_survival_endpoints_closed_form() -> None:
    d = lambda n: INDEX + pd.Timedelta(days=n)  # noqa: E731
    patients = rows(pd.DataFrame({
        "patient_id": ["prog", "died", "alive", "prog+died", "late death"],
        "index_date": [INDEX] * 5,
        "last_followup_date": [d(400), d(200), d(365), d(300), d(100)],
        "progression_date": [d(60), pd.NaT, pd.NaT, d(90), pd.NaT],
        "death_date": [pd.NaT, d(200), pd.NaT, d(300), d(130)],
    }))
    out = survival_endpoints(patients).set_index(patients["patient_id"])
    m = lambda days: days / DAYS_PER_MONTH  # noqa: E731 (months = days / 30.4375)
    expected = {
        "prog": (m(60), 1, m(400), 0),
        "died": (m(200), 1, m(200), 1),
        "alive": (m(365), 0, m(365), 0),
        "prog+died": (m(90), 1, m(300), 1),
        "late death": (m(130), 1, m(130), 1),  # death after the last follow-up ends follow-up at death
    }
    for pid, (pfs, pfs_event, os_, os_event) in expected.items():
        row = out.loc[pid]
        assert row["pfs_months"] == pytest.approx(pfs, rel=1e-15)
        assert row["os_months"] == pytest.approx(os_, rel=1e-15)
        assert (row["pfs_event"], row["os_event"]) == (pfs_event, os_event)
    assert m(60) == pytest.approx(1.971252566735113, rel=1e-15)  # 60 / 30.4375
