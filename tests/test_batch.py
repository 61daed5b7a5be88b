"""The per-patient pipeline and the study built from an imaging manifest, in this process (no cluster).

The generated studies (tests/batch_data.py) know their truth: which baseline lesions persist at failure (local
failures), which lesion is new (de novo), and the translation between the scans.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from batch_data import CANDIDATES, SPACING, StudyFiles, make_study
from pofa.batch.cache import DONE_FILE, RESULT_FILE, Status, folder_name, read_done
from pofa.batch.job import PatientJob, run_patient_job
from pofa.batch.manifest import load_manifest
from pofa.batch.pipeline import FAILURE_COLUMNS, PatientResult, PipelineSettings, process_patient
from pofa.batch.runner import _lock, run_batch
from pofa.batch.study import IMAGING_JSON, BuildError, build_study_from_manifest
from pofa.errors import PofaError
from pofa.study import load_study


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> StudyFiles:
    """Six patients (three with a failure scan), transforms given; read-only for the tests."""
    return make_study(tmp_path_factory.mktemp("batch") / "data", 6, seed=3)


def _copy(study: StudyFiles, dest: Path) -> Path:
    shutil.copytree(study.root, dest)
    return dest / "manifest.csv"


def _near(a: tuple[float, ...], b: tuple[float, ...], tol: float) -> bool:
    return bool(np.linalg.norm(np.subtract(a, b)) <= tol)


def test_process_patient_finds_local_and_de_novo_failures(study: StudyFiles) -> None:
    patients = load_manifest(study.manifest).patients()
    assert len(patients) == 6
    for scans, truth in zip(patients, study.truth, strict=True):
        res = process_patient(scans)
        les = res.lesions.records()
        assert len(les) == len(truth.baseline)
        # every rendered lesion is found at its centre (the sphere's voxel centroid is within half a voxel)
        for t in truth.baseline:
            hits = [r for r in les if _near((r["x_mm"], r["y_mm"], r["z_mm"]), t.centre, SPACING / 2)]
            assert len(hits) == 1
            in_liver = t.centre == CANDIDATES[0]
            assert hits[0]["extranodal"] == ("yes" if in_liver else "no")
            assert hits[0]["site"] == ("liver" if in_liver else "lymph node")
        fails = res.failures.records()
        assert res.failures.columns == FAILURE_COLUMNS
        if not truth.has_failure:
            assert fails == []
            continue
        local = [f for f in fails if f["match_class"] == "local"]
        new = [f for f in fails if f["match_class"] != "local"]
        assert len(local) == len(truth.persisting) and len(new) == truth.n_new
        by_id = {r["lesion_id"]: r for r in les}
        named = sorted((by_id[f["baseline_lesion_id"]]["x_mm"], by_id[f["baseline_lesion_id"]]["y_mm"],
                        by_id[f["baseline_lesion_id"]]["z_mm"]) for f in local)
        expected = sorted(truth.baseline[k].centre for k in truth.persisting)
        assert all(_near(a, b, SPACING / 2) for a, b in zip(named, expected, strict=True))
        # the new lesion's centre is reported in baseline space: where it is in the anatomy (the follow-up
        # scan was shifted by truth.shift_mm), within a voxel
        (n,) = new
        assert n["baseline_lesion_id"] is None and n["match_class"] == "de novo"
        assert _near((n["x_mm"], n["y_mm"], n["z_mm"]), truth.followup[-1].centre, SPACING)
        assert len({f["failure_id"] for f in fails}) == len(fails)
        prov = res.provenance
        assert [p["role"] for p in prov] == ["baseline", "failure"]
        assert prov[1]["registration"]["stages"] == ["precomputed"]
        assert prov[1]["registration"]["body_dice_after"] > 0.95


@pytest.mark.slow
def test_registration_path_gives_the_same_classes(study: StudyFiles, tmp_path: Path) -> None:
    """Without the transform file pofa registers the CTs; the classes and attributions are the same."""
    scans = load_manifest(study.manifest).patients()[0]
    assert scans.failures
    given = process_patient(scans)
    without = tuple(dataclasses.replace(s, transform=None) for s in scans.failures)
    registered = process_patient(dataclasses.replace(scans, failures=without))
    pick = ("failure_id", "baseline_lesion_id", "match_class", "followup_label")
    assert [[r[c] for c in pick] for r in given.failures.records()] == \
        [[r[c] for c in pick] for r in registered.failures.records()]
    reg = registered.provenance[1]["registration"]
    assert reg["stages"] == ["rigid", "affine"]
    assert reg["body_dice_after"] > reg["body_dice_before"]


def test_two_failure_scans_get_distinct_failure_ids(study: StudyFiles, tmp_path: Path) -> None:
    manifest = _copy(study, tmp_path / "data")
    lines = manifest.read_text().splitlines()
    later = lines[2].replace("2019-04-21", "2019-06-30")  # P000's failure scan again, ten weeks later
    assert later != lines[2] and lines[2].startswith("P000,failure")
    manifest.write_text("\n".join([*lines, later]) + "\n")
    patients = manifest.parent / "patients.csv"
    rows = patients.read_text().splitlines()
    rows[1] = rows[1].replace("2019-11-17", "2019-12-31")  # follow-up covers the later scan
    patients.write_text("\n".join(rows) + "\n")
    (p0,) = [p for p in load_manifest(manifest).patients() if p.patient_id == "P000"]
    res = process_patient(p0)
    fails = res.failures.records()
    ids = [f["failure_id"] for f in fails]
    n = len(fails) // 2
    assert len(set(ids)) == len(ids) == 2 * n and all(i.startswith("S1-") for i in ids[:n])
    assert [f["scan_date"] for f in fails] == ["2019-04-21"] * n + ["2019-06-30"] * n
    assert [f["baseline_lesion_id"] for f in fails[:n]] == [f["baseline_lesion_id"] for f in fails[n:]]
    assert load_study(build_study_from_manifest(manifest, tmp_path / "s")).validate().ok


def test_result_survives_json_exactly(study: StudyFiles) -> None:
    res = process_patient(load_manifest(study.manifest).patients()[0])
    again = PatientResult.from_json(json.loads(json.dumps(res.to_json())))
    assert again == res
    assert isinstance(res.lesions.rows[0][res.lesions.columns.index("suvmax")], float)


def test_built_study_validates_and_analyses(study: StudyFiles, tmp_path: Path) -> None:
    from pofa.analysis import run_analysis

    out = build_study_from_manifest(study.manifest, tmp_path / "study")
    assert sorted(p.name for p in out.iterdir()) == [".pofa-written.json", "failures.csv", IMAGING_JSON,
                                                     "lesions.csv", "patients.csv", "study.toml"]
    loaded = load_study(out)
    report = loaded.validate()
    assert report.ok, [f.message for f in report.errors]
    assert loaded.patients["patient_id"].tolist() == [t.patient_id for t in study.truth]
    assert loaded.patients["age"].tolist() == [50 + i for i in range(6)]  # covariates kept
    n_local = sum(len(t.persisting) for t in study.truth)
    assert int(loaded.failures["baseline_lesion_id"].notna().sum()) == n_local
    result = run_analysis(loaded)
    recurred = sum(t.has_failure for t in study.truth)
    assert result.patterns.recurred == recurred
    assert result.patterns.mixed == recurred  # every failure scan has local lesions and one new lesion
    assert result.patterns.local_failure_lesions == n_local
    info = json.loads((out / IMAGING_JSON).read_text())
    assert [p["patient_id"] for p in info["patients"]] == [t.patient_id for t in study.truth]
    assert info["excluded"] == []


@pytest.mark.slow
def test_resume_reuses_done_patients_and_recomputes_a_changed_one(study: StudyFiles, tmp_path: Path) -> None:
    manifest = _copy(study, tmp_path / "data")
    work = tmp_path / "work"
    seen: list[tuple[str, bool]] = []
    first = build_study_from_manifest(manifest, tmp_path / "s1", work=work,
                                      on_outcome=lambda o: seen.append((o.patient_id, o.reused)))
    assert [r for _, r in seen] == [False] * 6
    seen.clear()
    build_study_from_manifest(manifest, tmp_path / "s2", work=work,
                              on_outcome=lambda o: seen.append((o.patient_id, o.reused)))
    assert [r for _, r in seen] == [True] * 6
    assert _same_files(first, tmp_path / "s2")
    # rows moved in the manifest (other row numbers, other patient order): all reused, and the study is the
    # one a fresh build of the moved manifest gives (imaging.json takes row numbers from the current manifest)
    moved = manifest.with_name("moved.csv")
    lines = manifest.read_text().splitlines()
    moved.write_text("\n".join([lines[0], *lines[:0:-1]]) + "\n")
    seen.clear()
    reordered = build_study_from_manifest(moved, tmp_path / "s-moved", work=work,
                                          on_outcome=lambda o: seen.append((o.patient_id, o.reused)))
    assert [r for _, r in seen] == [True] * 6 and seen[0][0] == "P005"
    assert _same_files(reordered, build_study_from_manifest(moved, tmp_path / "s-moved-fresh"))
    info = json.loads((reordered / IMAGING_JSON).read_text())
    rows = [s["row"] for p in info["patients"] for s in p["scans"]]
    assert sorted(rows) == list(range(2, len(lines) + 1))
    # change one voxel of one patient's baseline PET: only that patient is recomputed
    from pofa.imaging.volume import Volume

    pet = manifest.parent / "images" / "case0003" / "base_suv.nii.gz"
    v = Volume.from_nifti(pet)
    arr = v.voxels_copy()
    arr[tuple(np.argwhere(arr > 4)[0])] += 1.0  # one lesion voxel brighter: a new SUVmax for one lesion
    v.with_voxels(arr).to_nifti(pet)
    seen.clear()
    third = build_study_from_manifest(manifest, tmp_path / "s3", work=work,
                                      on_outcome=lambda o: seen.append((o.patient_id, o.reused)))
    assert [pid for pid, reused in seen if not reused] == ["P003"]
    assert not _same_files(first, third)
    fresh = build_study_from_manifest(manifest, tmp_path / "s4")  # nothing reused
    assert _same_files(third, fresh)
    # settings are part of the key
    seen.clear()
    build_study_from_manifest(manifest, tmp_path / "s5", work=work,
                              settings=PipelineSettings(min_volume_ml=0.5),
                              on_outcome=lambda o: seen.append((o.patient_id, o.reused)))
    assert not any(r for _, r in seen)


def _same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names)


def test_partial_or_tampered_work_never_counts(study: StudyFiles, tmp_path: Path) -> None:
    scans = load_manifest(study.manifest).patients()[1]
    job = PatientJob(scans, PipelineSettings(), str(tmp_path / "work"))
    first = run_patient_job(job)
    assert first.status is Status.OK and not first.reused
    assert run_patient_job(job).reused
    # result.json changed after the record was written: recomputed
    (job.folder / RESULT_FILE).write_text("{}", encoding="utf-8")
    assert not run_patient_job(job).reused
    # no done-record (a worker killed before the folder was complete): recomputed
    (job.folder / DONE_FILE).unlink()
    assert not run_patient_job(job).reused
    # another key (other settings): recomputed, the record replaced
    other = PatientJob(scans, PipelineSettings(min_volume_ml=0.1), str(tmp_path / "work"))
    assert not run_patient_job(other).reused
    assert read_done(other.folder).key != first.key
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == [folder_name(scans.patient_id)]


def test_unexpected_exception_is_recorded_as_internal_and_retried(study: StudyFiles, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import pofa.batch.pipeline as pipeline

    scans = load_manifest(study.manifest).patients()[0]
    job = PatientJob(scans, PipelineSettings(), str(tmp_path / "work"))

    def broken_matching(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(pipeline, "_match", broken_matching)
    out = run_patient_job(job)
    assert out.status is Status.ERROR and out.error_kind is not None and out.error_kind.value == "internal"
    assert out.stage == "lesion matching of the failure scan of 2019-04-21 (manifest row 3)"
    assert out.reason == "ZeroDivisionError: a bug"
    rec = read_done(job.folder)
    assert rec is not None and "ZeroDivisionError" in rec.detail and "Traceback" in rec.detail
    assert sorted(p.name for p in job.folder.iterdir()) == [DONE_FILE]  # no partial result kept
    assert not run_patient_job(job).reused  # retried, not kept
    monkeypatch.undo()
    assert run_patient_job(job).status is Status.OK


def test_broken_scan_is_isolated(study: StudyFiles, tmp_path: Path) -> None:
    manifest = _copy(study, tmp_path / "data")
    (manifest.parent / "images" / "case0002" / "fu_suv.nii.gz").write_bytes(b"not a nifti file")
    where = r"P002', extraction of the failure scan of 2019-05-11 \(manifest row 6\)"
    with pytest.raises(BuildError, match=where) as err:
        build_study_from_manifest(manifest, tmp_path / "s1")
    assert "NIfTI" in str(err.value)
    assert not (tmp_path / "s1").exists()
    out = build_study_from_manifest(manifest, tmp_path / "s2", skip_errors=True)
    loaded = load_study(out)
    assert loaded.validate().ok
    assert "P002" not in set(loaded.patients["patient_id"]) | set(loaded.lesions["patient_id"])
    assert len(loaded.patients) == 5
    (excluded,) = json.loads((out / IMAGING_JSON).read_text())["excluded"]
    assert excluded["patient_id"] == "P002" and excluded["error_kind"] == "input"
    assert excluded["stage"] == "extraction of the failure scan of 2019-05-11 (manifest row 6)"
    assert "fu_suv.nii.gz" in excluded["reason"]


def test_missing_organ_maps_leave_site_blank_and_the_study_says_so(study: StudyFiles, tmp_path: Path) -> None:
    manifest = _copy(study, tmp_path / "data")
    text = manifest.read_text().splitlines()
    rows = [",".join(c if i != 6 else "" for i, c in enumerate(line.split(","))) for line in text[1:]]
    manifest.write_text("\n".join([text[0], *rows]) + "\n")
    m = load_manifest(manifest)
    assert {str(f.code) for f in m.report.warnings} == {"no-organ-map"}
    out = build_study_from_manifest(m, tmp_path / "s")
    errors = load_study(out).validate().errors
    assert errors and {(str(f.code), f.column) for f in errors} >= {("blank-cell", "site"),
                                                                     ("blank-cell", "extranodal")}


def test_batch_folder_guards(study: StudyFiles, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(PofaError, match="holds no earlier pofa batch"):
        run_batch(study.manifest, other, workers=1)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / ".pofa-batch.lock").write_text(json.dumps({"host": os.uname().nodename, "pid": os.getpid(),
                                                       "started": "now"}))
    with pytest.raises(PofaError, match="another pofa batch"):
        run_batch(study.manifest, busy, workers=1)
    stale = tmp_path / "stale"
    stale.mkdir()
    dead = 2**22 + 12345  # above the default pid_max: no such process
    (stale / ".pofa-batch.lock").write_text(json.dumps({"host": os.uname().nodename, "pid": dead}))
    with _lock(stale):
        assert json.loads((stale / ".pofa-batch.lock").read_text())["pid"] == os.getpid()
    assert not (stale / ".pofa-batch.lock").exists()


def test_build_study_command(study: StudyFiles, tmp_path: Path) -> None:
    import typer

    from pofa.cli.batch import batch_command, build_study_command

    app = typer.Typer()
    app.command("build-study")(build_study_command)
    app.command("batch")(batch_command)
    runner = CliRunner()
    res = runner.invoke(app, ["build-study", str(study.manifest), "--out", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    assert load_study(tmp_path / "s").validate().ok
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.csv").write_text("patient_id,role,scan_date,pet\nP1,later,2019-01-01,x.nii\n")
    (bad / "patients.csv").write_text("patient_id,index_date,last_followup_date,progression_date,death_date\n"
                                      "P1,2019-01-10,2019-12-01,,\n")
    for cmd in ("build-study", "batch"):
        res = runner.invoke(app, [cmd, str(bad / "manifest.csv"), "--out", str(tmp_path / f"o-{cmd}")])
        assert res.exit_code == 2
        assert "bad-role" in res.output or "role" in res.output
        assert not (tmp_path / f"o-{cmd}").exists()
    res = runner.invoke(app, ["batch", str(study.manifest), "--out", str(tmp_path / "b"), "--workers", "1",
                              "--scheduler", "tcp://127.0.0.1:1"])
    assert res.exit_code == 2 and "not both" in res.output
