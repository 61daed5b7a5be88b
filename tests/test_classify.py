"""Lesion outcomes, failure assignment (ids and geometry) and patient patterns: one small study per rule."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pofa
from pofa.classify import (
    DAYS_PER_MONTH,
    AssignmentBasis,
    Classification,
    FailureClass,
    FailureTiming,
    FirstProgressionStatus,
    LesionOutcome,
    LocalFailureStatus,
    NoteKind,
    PatientPattern,
    check_settings,
    classify,
    classify_tables,
)
from pofa.errors import SettingsError, StudyError
from pofa.settings import ClassificationSettings

INDEX = pd.Timestamp("2020-01-01")

PATIENT_COLUMNS = ["patient_id", "index_date", "last_followup_date", "progression_date", "death_date"]
LESION_COLUMNS = ["patient_id", "lesion_id", "site", "extranodal", "diameter_cm", "suvmax", "x_mm", "y_mm",
                  "z_mm"]
FAILURE_COLUMNS = ["patient_id", "failure_id", "scan_date", "baseline_lesion_id", "site", "extranodal",
                   "x_mm", "y_mm", "z_mm", "diameter_cm"]


def day(n: int | None) -> str:
    """ISO date ``n`` days after the index date (blank for None)."""
    return "" if n is None else (INDEX + pd.Timedelta(days=n)).strftime("%Y-%m-%d")


def patient(pid: str, followup: int, progression: int | None = None, death: int | None = None) -> dict:
    return {"patient_id": pid, "index_date": day(0), "last_followup_date": day(followup),
            "progression_date": day(progression), "death_date": day(death)}


def lesion(pid: str, lid: str, diameter: float = 2.0, suv: float = 8.0, at: tuple | None = None) -> dict:
    x, y, z = at if at is not None else ("", "", "")
    return {"patient_id": pid, "lesion_id": lid, "site": "node", "extranodal": "no", "diameter_cm": diameter,
            "suvmax": suv, "x_mm": x, "y_mm": y, "z_mm": z}


def failure(pid: str, fid: str, scan: int, lid: str = "", at: tuple | None = None,
            diameter: float | str = "") -> dict:
    x, y, z = at if at is not None else ("", "", "")
    new = lid == ""
    return {"patient_id": pid, "failure_id": fid, "scan_date": day(scan), "baseline_lesion_id": lid,
            "site": "lung" if new else "", "extranodal": "yes" if new else "", "x_mm": x, "y_mm": y,
            "z_mm": z, "diameter_cm": diameter}


def write_study(folder: Path, patients: list[dict], lesions: list[dict], failures: list[dict],
                toml: str = "") -> Path:
    """A study folder of CSV files (read back through pofa.load_study, so validation runs)."""
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(patients, columns=PATIENT_COLUMNS).to_csv(folder / "patients.csv", index=False)
    pd.DataFrame(lesions, columns=LESION_COLUMNS).to_csv(folder / "lesions.csv", index=False)
    pd.DataFrame(failures, columns=FAILURE_COLUMNS).to_csv(folder / "failures.csv", index=False)
    if toml:
        (folder / "study.toml").write_text(toml, encoding="utf-8")
    return folder


def run(folder: Path, **settings: object) -> Classification:
    study = pofa.load_study(folder)
    report = study.validate()
    assert report.ok, [f.message for f in report.errors]
    cs = replace(study.settings.classification, **settings) if settings else None
    return classify(study, cs)


def by_key(frame: pd.DataFrame, *keys: str) -> pd.DataFrame:
    return frame.set_index(list(keys))


def months(days: int) -> float:
    return days / DAYS_PER_MONTH


# ------------------------------------------------------------------------------------------------------------
# The first-progression window


@pytest.fixture
def window_study(tmp_path: Path) -> Path:
    return write_study(
        tmp_path / "s",
        [patient("P1", 400, progression=100), patient("P2", 300, progression=50)],
        [lesion("P1", "L1"), lesion("P1", "L2"), lesion("P1", "L3"), lesion("P2", "L1")],
        [failure("P1", "F1", 130, "L1"),   # day 30 after progression: in the window
         failure("P1", "F2", 131, "L2"),   # day 31: a later event
         failure("P1", "F3", 100),         # new lesion at progression
         failure("P2", "F1", 81, "L1")],   # P2: only a row 31 days after progression
    )


def test_window_edges_day_30_in_day_31_out(window_study: Path) -> None:
    c = run(window_study)
    f = by_key(c.failures, "patient_id", "failure_id")
    assert f.loc[("P1", "F1"), "timing"] == FailureTiming.FIRST_PROGRESSION.value
    assert f.loc[("P1", "F1"), "days_after_progression"] == 30
    assert f.loc[("P1", "F2"), "timing"] == FailureTiming.LATER.value
    assert f.loc[("P1", "F2"), "days_after_progression"] == 31
    les = by_key(c.lesions, "patient_id", "lesion_id")
    assert les.loc[("P1", "L1"), "lesion_outcome"] == LesionOutcome.LOCAL_FAILURE.value
    assert les.loc[("P1", "L1"), "failure_ids"] == "F1"
    # L2 failed only after the window: controlled at first progression ...
    assert les.loc[("P1", "L2"), "lesion_outcome"] == LesionOutcome.CONTROLLED.value
    assert les.loc[("P1", "L2"), "local_failure"] == 0
    # ... but the later failure is kept for time to local failure.
    assert les.loc[("P1", "L2"), "lf_status"] == LocalFailureStatus.FAILURE
    assert les.loc[("P1", "L2"), "lf_months"] == pytest.approx(months(131), rel=1e-15)
    assert les.loc[("P1", "L1"), "lf_months"] == pytest.approx(months(130), rel=1e-15)
    assert les.loc[("P1", "L3"), "lf_status"] == LocalFailureStatus.CENSORED
    assert les.loc[("P1", "L3"), "lf_months"] == pytest.approx(months(400), rel=1e-15)
    p = by_key(c.patients, "patient_id")
    assert p.loc["P1", "pattern"] == PatientPattern.MIXED.value
    assert p.loc["P1", "maintained_control"]


def test_no_failure_rows_in_window_is_unknown_never_de_novo(window_study: Path) -> None:
    c = run(window_study)
    p = by_key(c.patients, "patient_id")
    assert p.loc["P2", "pattern"] == PatientPattern.UNKNOWN.value
    assert not p.loc["P2", "local_component"] and not p.loc["P2", "maintained_control"]
    assert p.loc["P2", "fp_status"] == FirstProgressionStatus.UNKNOWN_PATTERN
    assert p.loc["P2", "fp_cause"] == "progression, pattern unknown"
    les = by_key(c.lesions, "patient_id", "lesion_id")
    assert les.loc[("P2", "L1"), "lesion_outcome"] == LesionOutcome.UNKNOWN.value
    assert pd.isna(les.loc[("P2", "L1"), "local_failure"])
    # Censored at progression (day 50): whether it failed then is not recorded.
    assert les.loc[("P2", "L1"), "lf_status"] == LocalFailureStatus.CENSORED
    assert les.loc[("P2", "L1"), "lf_months"] == pytest.approx(months(50), rel=1e-15)
    assert p.loc["P2", "first_lf_status"] == 0 and p.loc["P2", "first_dn_status"] == 0
    assert p.loc["P2", "first_lf_months"] == pytest.approx(months(50), rel=1e-15)
    counts = c.counts()
    assert (counts.unknown, counts.recurred, counts.strictly_de_novo) == (1, 2, 0)
    [note] = [n for n in c.notes if n.kind is NoteKind.NO_FAILURES_IN_WINDOW]
    assert (note.file, note.row, note.patient_id) == ("patients.csv", 3, "P2")


def test_progression_without_any_failure_rows_is_unknown(tmp_path: Path) -> None:
    folder = write_study(tmp_path / "s", [patient("P1", 200, progression=60)], [lesion("P1", "L1")], [])
    c = run(folder)
    assert c.patients["pattern"].tolist() == [PatientPattern.UNKNOWN.value]
    assert c.counts().unknown == 1 and c.counts().strictly_de_novo == 0


@pytest.mark.parametrize(("window", "f2_in"), [(30, False), (31, True), (0, False)])
def test_window_is_configurable(window_study: Path, window: int, f2_in: bool) -> None:
    (window_study / "study.toml").write_text(f"[classification]\nwindow_days = {window}\n", encoding="utf-8")
    c = run(window_study)
    assert c.settings.window_days == window
    les = by_key(c.lesions, "patient_id", "lesion_id")
    assert (les.loc[("P1", "L2"), "lesion_outcome"] == LesionOutcome.LOCAL_FAILURE.value) is f2_in
    # With a 0-day window only scans on the progression date count: F1 (day 30) is then a later event.
    assert (les.loc[("P1", "L1"), "lesion_outcome"] == LesionOutcome.LOCAL_FAILURE.value) is (window >= 30)


def test_later_failures_do_not_change_the_pattern(tmp_path: Path) -> None:
    folder = write_study(
        tmp_path / "s", [patient("P1", 500, progression=100, death=500)],
        [lesion("P1", "L1"), lesion("P1", "L2")],
        [failure("P1", "F1", 100, "L1"), failure("P1", "F2", 160), failure("P1", "F3", 200, "L2")])
    c = run(folder)
    p = c.patients.iloc[0]
    assert p["pattern"] == PatientPattern.STRICTLY_LOCAL.value
    assert p["n_de_novo_failures"] == 0
    assert p["fp_status"] == FirstProgressionStatus.LOCAL_COMPONENT
    assert p["fp_months"] == pytest.approx(months(100), rel=1e-15)
    assert p["first_lf_status"] == 1 and p["first_lf_months"] == pytest.approx(months(100), rel=1e-15)
    # The later de novo row gives the time to first de novo failure.
    assert p["first_dn_status"] == 1 and p["first_dn_months"] == pytest.approx(months(160), rel=1e-15)
    les = by_key(c.lesions, "lesion_id")
    assert les.loc["L2", "lesion_outcome"] == LesionOutcome.CONTROLLED.value
    assert les.loc["L2", "lf_status"] == 1
    assert les.loc["L2", "lf_months"] == pytest.approx(months(200), rel=1e-15)
    assert c.to_json()["failure_rows"] == {
        "first progression": {"local": 1, "marginal": 0, "de novo": 0},
        "later": {"local": 1, "marginal": 0, "de novo": 1},
    }


def test_de_novo_only_progression_keeps_lesions_at_risk(tmp_path: Path) -> None:
    folder = write_study(
        tmp_path / "s", [patient("P1", 400, progression=80)], [lesion("P1", "L1"), lesion("P1", "L2")],
        [failure("P1", "F1", 80), failure("P1", "F2", 170, "L1")])
    c = run(folder)
    p = c.patients.iloc[0]
    assert p["pattern"] == PatientPattern.STRICTLY_DE_NOVO.value
    assert p["maintained_control"]
    assert p["fp_status"] == FirstProgressionStatus.STRICTLY_DE_NOVO
    les = by_key(c.lesions, "lesion_id")
    assert les["lesion_outcome"].tolist() == [LesionOutcome.CONTROLLED.value] * 2
    assert les.loc["L1", "lf_status"] == 1
    assert les.loc["L1", "lf_months"] == pytest.approx(months(170), rel=1e-15)
    assert les.loc["L2", "lf_status"] == 0
    assert les.loc["L2", "lf_months"] == pytest.approx(months(400), rel=1e-15)
    assert p["first_lf_months"] == pytest.approx(months(170), rel=1e-15)


def test_death_competes_and_censoring(tmp_path: Path) -> None:
    folder = write_study(
        tmp_path / "s",
        [patient("D", 250, death=250), patient("C", 300), patient("R", 600, progression=90, death=600)],
        [lesion("D", "L1"), lesion("C", "L1"), lesion("R", "L1"), lesion("R", "L2")],
        [failure("R", "F1", 90, "L1")])
    c = run(folder)
    les = by_key(c.lesions, "patient_id", "lesion_id")
    assert les.loc[("D", "L1"), "lf_status"] == LocalFailureStatus.DEATH
    assert les.loc[("D", "L1"), "lf_months"] == pytest.approx(months(250), rel=1e-15)
    assert les.loc[("C", "L1"), "lf_status"] == LocalFailureStatus.CENSORED
    assert les.loc[("R", "L2"), "lf_status"] == LocalFailureStatus.DEATH  # died without local failure of L2
    assert les.loc[("D", "L1"), "lesion_outcome"] == LesionOutcome.NO_PROGRESSION.value
    assert les.loc[("D", "L1"), "local_failure"] == 0
    p = by_key(c.patients, "patient_id")
    assert p.loc["D", "fp_status"] == FirstProgressionStatus.DEATH_WITHOUT_PROGRESSION
    assert p.loc["D", "fp_cause"] == "death without progression"
    assert p.loc["C", "fp_status"] == FirstProgressionStatus.CENSORED
    assert p.loc["C", "fp_months"] == pytest.approx(months(300), rel=1e-15)
    assert p.loc["R", "first_dn_status"] == LocalFailureStatus.DEATH
    assert p.loc["D", "pattern"] == PatientPattern.NO_PROGRESSION.value


def test_death_after_last_followup_ends_follow_up_at_death(tmp_path: Path) -> None:
    folder = write_study(tmp_path / "s", [patient("P1", 100, death=130)], [lesion("P1", "L1")], [])
    c = run(folder)  # a validation warning, not an error
    assert c.lesions["lf_months"].iloc[0] == pytest.approx(months(130), rel=1e-15)
    assert c.lesions["lf_status"].iloc[0] == LocalFailureStatus.DEATH


def test_maintained_control_needs_a_lesion_that_did_not_fail(tmp_path: Path) -> None:
    folder = write_study(
        tmp_path / "s", [patient("ALL", 300, progression=60), patient("SOME", 300, progression=60)],
        [lesion("ALL", "L1"), lesion("ALL", "L2"), lesion("SOME", "L1"), lesion("SOME", "L2")],
        [failure("ALL", "F1", 60, "L1"), failure("ALL", "F2", 61, "L2"), failure("SOME", "F1", 60, "L1")])
    p = by_key(run(folder).patients, "patient_id")
    assert not p.loc["ALL", "maintained_control"]
    assert p.loc["SOME", "maintained_control"]
    assert p.loc["ALL", "n_local_failure_lesions"] == 2


# ------------------------------------------------------------------------------------------------------------
# Geometry


def geometry_study(tmp_path: Path, failure_x: float, *, named: str = "", toml: str = "") -> Path:
    """One patient, baseline L1 (2 cm, at the origin) and L2 (2 cm, at x = 200 mm); one failure lesion of 2 cm
    at (failure_x, 0, 0) found at progression: surface gap to L1 = failure_x - 20 mm."""
    return write_study(
        tmp_path / f"g{failure_x}{named}", [patient("P1", 300, progression=90)],
        [lesion("P1", "L1", 2.0, at=(0, 0, 0)), lesion("P1", "L2", 2.0, at=(200, 0, 0))],
        [failure("P1", "F1", 90, named, at=(failure_x, 0, 0), diameter=2.0)], toml)


@pytest.mark.parametrize(("x", "cls", "gap"), [
    (5.0, FailureClass.LOCAL, -15.0),     # overlap
    (20.0, FailureClass.LOCAL, 0.0),      # touching counts as overlapping (gap <= 0 mm)
    (20.5, FailureClass.MARGINAL, 0.5),
    (30.0, FailureClass.MARGINAL, 10.0),  # exactly at the 10 mm margin: marginal
    (30.5, FailureClass.DE_NOVO, 10.5),
])
def test_geometry_classes_and_margin_edges(tmp_path: Path, x: float, cls: FailureClass, gap: float) -> None:
    c = run(geometry_study(tmp_path, x), use_geometry=True)
    f = c.failures.iloc[0]
    assert f["failure_class"] == cls.value
    assert f["assigned_by"] == AssignmentBasis.GEOMETRY.value
    assert f["gap_mm"] == pytest.approx(gap, abs=1e-12)
    assert f["assigned_lesion_id"] == (None if cls is FailureClass.DE_NOVO else "L1")
    assert c.notes == ()


def test_geometry_off_blank_id_is_de_novo(tmp_path: Path) -> None:
    c = run(geometry_study(tmp_path, 5.0))
    f = c.failures.iloc[0]
    assert f["failure_class"] == FailureClass.DE_NOVO.value
    assert f["assigned_by"] == AssignmentBasis.NEW_LESION.value
    assert np.isnan(f["gap_mm"])
    assert c.patients["pattern"].iloc[0] == PatientPattern.STRICTLY_DE_NOVO.value


def test_geometry_margins_are_configurable(tmp_path: Path) -> None:
    toml = "[classification]\nuse_geometry = true\nlocal_margin_mm = 5\nmarginal_margin_mm = 20\n"
    c = run(geometry_study(tmp_path, 24.0, toml=toml))  # gap 4 mm
    assert c.failures["failure_class"].iloc[0] == FailureClass.LOCAL.value
    c = run(geometry_study(tmp_path, 39.0, toml=toml))  # gap 19 mm
    assert c.failures["failure_class"].iloc[0] == FailureClass.MARGINAL.value


def test_marginal_counts_as_de_novo_by_default(tmp_path: Path) -> None:
    c = run(geometry_study(tmp_path, 25.0), use_geometry=True)
    les = by_key(c.lesions, "lesion_id")
    assert les.loc["L1", "lesion_outcome"] == LesionOutcome.CONTROLLED.value
    assert les.loc["L1", "marginal_failure"]
    assert not les.loc["L2", "marginal_failure"]
    p = c.patients.iloc[0]
    assert p["pattern"] == PatientPattern.STRICTLY_DE_NOVO.value
    assert (p["n_de_novo_failures"], p["n_marginal_failures"]) == (1, 1)
    assert c.failures["pattern_component"].iloc[0] == "de novo"
    assert c.to_json()["failure_rows"]["first progression"] == {"local": 0, "marginal": 1, "de novo": 0}


def test_marginal_can_count_as_local(tmp_path: Path) -> None:
    c = run(geometry_study(tmp_path, 25.0), use_geometry=True, marginal_counts_as="local")
    les = by_key(c.lesions, "lesion_id")
    assert les.loc["L1", "lesion_outcome"] == LesionOutcome.LOCAL_FAILURE.value
    assert les.loc["L1", "failure_ids"] == "F1"
    p = c.patients.iloc[0]
    assert p["pattern"] == PatientPattern.STRICTLY_LOCAL.value
    assert (p["n_de_novo_failures"], p["n_marginal_failures"]) == (0, 1)
    assert c.failures["failure_class"].iloc[0] == FailureClass.MARGINAL.value  # still its own class


def test_ambiguous_match_is_reported_and_takes_the_smallest_gap(tmp_path: Path) -> None:
    folder = write_study(
        tmp_path / "s", [patient("P1", 300, progression=90)],
        [lesion("P1", "L1", 2.0, at=(0, 0, 0)), lesion("P1", "L2", 2.0, at=(40, 0, 0))],
        [failure("P1", "F1", 90, at=(17, 0, 0), diameter=2.0)])  # gaps: L1 -3 mm, L2 +3 mm -> only L1 local
    c = run(folder, use_geometry=True)
    assert c.notes == ()
    assert c.failures["assigned_lesion_id"].iloc[0] == "L1"
    folder = write_study(
        tmp_path / "t", [patient("P1", 300, progression=90)],
        [lesion("P1", "L1", 2.0, at=(0, 0, 0)), lesion("P1", "L2", 2.0, at=(40, 0, 0))],
        [failure("P1", "F1", 90, at=(21, 0, 0), diameter=2.0)])  # gaps: L1 +1 mm, L2 -1 mm
    c = run(folder, use_geometry=True, local_margin_mm=2.0)  # both within 2 mm: ambiguous
    [note] = c.notes
    assert note.kind is NoteKind.AMBIGUOUS
    assert (note.file, note.row, note.patient_id, note.failure_id) == ("failures.csv", 2, "P1", "F1")
    assert "'L1'" in note.message and "'L2'" in note.message
    assert c.failures["assigned_lesion_id"].iloc[0] == "L2"  # gap -1 mm beats +1 mm
    les = by_key(c.lesions, "lesion_id")
    assert les["lesion_outcome"].tolist() == [LesionOutcome.CONTROLLED.value,
                                              LesionOutcome.LOCAL_FAILURE.value]


def test_ambiguous_marginal_is_reported_only_when_marginal_counts_as_local(tmp_path: Path) -> None:
    folder = write_study(
        tmp_path / "s", [patient("P1", 300, progression=90)],
        [lesion("P1", "L1", 2.0, at=(0, 0, 0)), lesion("P1", "L2", 2.0, at=(50, 0, 0))],
        [failure("P1", "F1", 90, at=(25, 0, 0), diameter=1.0)])  # gap 10 mm to both: marginal
    assert run(folder, use_geometry=True).notes == ()
    c = run(folder, use_geometry=True, marginal_counts_as="local")
    assert [n.kind for n in c.notes] == [NoteKind.AMBIGUOUS]
    assert c.failures["assigned_lesion_id"].iloc[0] == "L1"  # equal gaps: the first lesion row


def test_explicit_id_wins_and_conflict_is_reported(tmp_path: Path) -> None:
    # Named L1, but the sphere sits on L2 (x = 200): geometry says local to L2.
    folder = geometry_study(tmp_path, 195.0, named="L1")
    c = run(folder, use_geometry=True)
    f = c.failures.iloc[0]
    assert (f["failure_class"], f["assigned_by"]) == ("local", "baseline_lesion_id")
    assert f["assigned_lesion_id"] == "L1"
    assert f["gap_mm"] == pytest.approx(175.0)
    [note] = c.notes
    assert note.kind is NoteKind.CONFLICT
    assert (note.file, note.row, note.failure_id) == ("failures.csv", 2, "F1")
    assert "local to 'L2'" in note.message and "'L1'" in note.message
    les = by_key(c.lesions, "lesion_id")
    assert les.loc["L1", "lesion_outcome"] == LesionOutcome.LOCAL_FAILURE.value
    assert les.loc["L2", "lesion_outcome"] == LesionOutcome.CONTROLLED.value
    assert run(folder).notes == ()  # geometry off: nothing compared


def test_named_row_agreeing_with_geometry_has_no_note(tmp_path: Path) -> None:
    c = run(geometry_study(tmp_path, 10.0, named="L1"), use_geometry=True)
    assert c.notes == ()
    assert c.failures["gap_mm"].iloc[0] == pytest.approx(-10.0)


def test_named_row_far_from_everything_is_a_conflict(tmp_path: Path) -> None:
    c = run(geometry_study(tmp_path, 100.0, named="L1"), use_geometry=True)
    [note] = c.notes
    assert note.kind is NoteKind.CONFLICT and "de novo" in note.message


def test_incomplete_geometry_and_missing_coordinates_are_noted(tmp_path: Path) -> None:
    folder = write_study(
        tmp_path / "s", [patient("P1", 300, progression=90), patient("P2", 300, progression=90)],
        [lesion("P1", "L1", 2.0, at=(0, 0, 0)), lesion("P1", "L2"), lesion("P2", "L1")],
        [failure("P1", "F1", 90, at=(100, 0, 0), diameter=1.0), failure("P1", "F2", 90),
         failure("P2", "F1", 90, at=(0, 0, 0), diameter=1.0)])
    c = run(folder, use_geometry=True)
    kinds = {(n.patient_id, n.failure_id): n.kind for n in c.notes}
    assert kinds == {("P1", "F1"): NoteKind.INCOMPLETE_GEOMETRY, ("P1", "F2"): NoteKind.NO_COORDINATES,
                     ("P2", "F1"): NoteKind.INCOMPLETE_GEOMETRY}
    assert c.failures["failure_class"].tolist() == ["de novo"] * 3
    assert c.failures["assigned_by"].tolist() == ["geometry", "blank baseline_lesion_id", "geometry"]


# ------------------------------------------------------------------------------------------------------------
# Invariants on random studies


def random_tables(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A random valid study as typed tables (what pofa.Study gives)."""
    rng = np.random.default_rng(seed)
    n = 25
    pids = [f"P{i}" for i in range(n)]
    follow = rng.integers(100, 900, n)
    prog = np.where(rng.random(n) < 0.6, rng.integers(20, 90, n), -1)
    death = np.where(rng.random(n) < 0.3, follow, -1)
    date = lambda d: pd.NaT if d < 0 else INDEX + pd.Timedelta(days=int(d))  # noqa: E731
    patients = pd.DataFrame({
        "patient_id": pids, "index_date": [INDEX] * n, "last_followup_date": [date(d) for d in follow],
        "progression_date": [date(d) for d in prog], "death_date": [date(d) for d in death]})
    les, fail = [], []
    for i, pid in enumerate(pids):
        k = int(rng.integers(0, 6))
        for j in range(k):
            les.append({"patient_id": pid, "lesion_id": f"L{j}", "site": "node", "extranodal": bool(j % 2),
                        "diameter_cm": float(rng.uniform(1, 8)), "suvmax": float(rng.uniform(2, 20)),
                        "x_mm": float(100 * j), "y_mm": 0.0, "z_mm": 0.0})
        if prog[i] < 0:
            continue
        for m in range(int(rng.integers(0, 4))):
            scan = date(prog[i] + int(rng.choice([0, 10, 30, 31, 60])))
            lid = f"L{int(rng.integers(k))}" if k and rng.random() < 0.6 else None
            fail.append({"patient_id": pid, "failure_id": f"F{m}", "scan_date": scan,
                         "baseline_lesion_id": lid, "site": "lung", "extranodal": True,
                         "x_mm": float(rng.uniform(-50, 500)), "y_mm": 0.0, "z_mm": 0.0, "diameter_cm": 1.0})
    lesions = pd.DataFrame(les, columns=LESION_COLUMNS).astype({"extranodal": "boolean"})
    failures = pd.DataFrame(fail, columns=FAILURE_COLUMNS).astype({"extranodal": "boolean"})
    failures["scan_date"] = pd.to_datetime(failures["scan_date"]).astype("datetime64[ns]")
    for t in (patients, lesions, failures):
        t.index = pd.RangeIndex(2, 2 + len(t), name="row")
    return patients, lesions, failures


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("geometry", [False, True])
def test_invariants_on_random_studies(seed: int, geometry: bool) -> None:
    patients, lesions, failures = random_tables(seed)
    copies = (patients.copy(), lesions.copy(), failures.copy())
    settings = ClassificationSettings(use_geometry=geometry)
    c = classify_tables(patients, lesions, failures, settings)
    for before, after in zip(copies, (patients, lesions, failures), strict=True):
        pd.testing.assert_frame_equal(before, after)  # inputs not modified
    k = c.counts()
    assert k.recurred == k.local_component + k.strictly_de_novo + k.unknown
    assert k.local_component == k.strictly_local + k.mixed
    assert k.patients == len(patients) and k.lesions == len(lesions)
    # The pattern is built from lesion outcomes: local component <=> some lesion failed locally.
    les, p = c.lesions, c.patients.set_index("patient_id")
    failed = les[les["lesion_outcome"] == "local failure"].groupby("patient_id").size()
    assert set(failed.index) == set(p.index[p["local_component"]])
    assert k.local_failure_lesions == int(les["local_failure"].sum())
    unknown = set(p.index[p["pattern"] == "unknown"])
    assert set(les.loc[les["lesion_outcome"] == "unknown", "patient_id"]) <= unknown
    assert les.loc[les["patient_id"].isin(unknown), "local_failure"].isna().all()
    # Shuffling the rows changes nothing.
    shuffled = classify_tables(patients.sample(frac=1, random_state=seed),
                               lesions.sample(frac=1, random_state=1),
                               failures.sample(frac=1, random_state=2), settings)
    assert shuffled.counts() == k
    cols = ["lesion_outcome", "local_failure", "lf_months", "lf_status", "failure_ids"]
    pd.testing.assert_frame_equal(shuffled.lesions.sort_index()[cols], les.sort_index()[cols])
    pd.testing.assert_frame_equal(shuffled.patients.sort_index(), c.patients.sort_index())


# ------------------------------------------------------------------------------------------------------------
# Settings and refusals


@pytest.mark.parametrize("toml", [
    '[classification]\nmarginal_counts_as = "marginal"\n',
    "[classification]\nwindow_days = -1\n",
    "[classification]\nlocal_margin_mm = 12\nmarginal_margin_mm = 10\n",
])
def test_bad_classification_settings_are_validation_errors(window_study: Path, toml: str) -> None:
    (window_study / "study.toml").write_text(toml, encoding="utf-8")
    report = pofa.load_study(window_study).validate()
    assert [f.code for f in report.errors] == ["bad-setting"]


@pytest.mark.parametrize("bad", [
    ClassificationSettings(marginal_counts_as="both"),
    ClassificationSettings(window_days=-3),
    ClassificationSettings(local_margin_mm=-1.0),
])
def test_bad_settings_in_code_are_refused(bad: ClassificationSettings) -> None:
    with pytest.raises(SettingsError):
        check_settings(bad)


def test_invalid_study_is_refused(window_study: Path) -> None:
    patients = pd.read_csv(window_study / "patients.csv", dtype=str, keep_default_na=False)
    patients.loc[patients["patient_id"] == "P2", "progression_date"] = ""
    patients.to_csv(window_study / "patients.csv", index=False)
    study = pofa.load_study(window_study)
    assert "failure-without-progression" in {f.code for f in study.validate().errors}
    with pytest.raises(StudyError, match="validation error"):
        classify(study)


def test_a_column_pofa_computes_is_refused(window_study: Path) -> None:
    lesions = pd.read_csv(window_study / "lesions.csv", dtype=str, keep_default_na=False)
    lesions["local_failure"] = "no"
    lesions.to_csv(window_study / "lesions.csv", index=False)
    with pytest.raises(StudyError, match="'local_failure'"):
        classify(pofa.load_study(window_study))


def test_example_study(example_study: Path) -> None:
    c = classify(pofa.load_study(example_study))
    p = by_key(c.patients, "patient_id")
    assert p["pattern"].to_dict() == {"P001": "mixed", "P002": "strictly local", "P003": "no progression",
                                      "P004": "strictly de novo", "007": "no progression"}
    assert c.counts().to_json() == {"patients": 5, "lesions": 9, "recurred": 3, "local_component": 2,
                                    "strictly_local": 1, "strictly_de_novo": 1, "mixed": 1, "unknown": 0,
                                    "maintained_control": 3, "local_failure_lesions": 2}


@pytest.mark.parametrize("drop", ["lesions", "failures", "both"])
def test_geometry_on_without_coordinate_columns(tmp_path: Path, drop: str) -> None:
    folder = geometry_study(tmp_path, 5.0)
    for table in (["lesions", "failures"] if drop == "both" else [drop]):
        frame = pd.read_csv(folder / f"{table}.csv", dtype=str, keep_default_na=False)
        frame.drop(columns=["x_mm", "y_mm", "z_mm"]).to_csv(folder / f"{table}.csv", index=False)
    c = run(folder, use_geometry=True)
    assert c.failures["failure_class"].tolist() == ["de novo"]
    assert [n.kind for n in c.notes] == [NoteKind.NO_COORDINATES if drop != "lesions"
                                         else NoteKind.INCOMPLETE_GEOMETRY]
