"""Write back against a real Orthanc: the SEG objects stored by ``--store-results`` are read again through
WADO-RS and their segments equal pofa's label maps voxel for voxel, on each source PET's grid."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from orthanc_server import OrthancServer
from pacs_data import DicomStudy
from seg_readback import label_map_from_seg
from typer.testing import CliRunner

from pofa.batch.cache import folder_name
from pofa.imaging.volume import Volume

runner = CliRunner()


def _headers(folder: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.iterdir())]


def _stored_segs(url: str) -> list[pydicom.Dataset]:
    """Every SEG instance on the server, retrieved through WADO-RS."""
    from pofa.pacs.client import connect

    client = connect(url)
    out = []
    for s in client.search_for_series(search_filters={"Modality": "SEG"}):
        study = s["0020000D"]["Value"][0]
        series = s["0020000E"]["Value"][0]
        out.extend(client.retrieve_series(study, series))
    return out


def _check_round_trip(study: DicomStudy, work: Path, segs: list[pydicom.Dataset], out_study: Path) -> None:
    failures = list(csv.DictReader((out_study / "failures.csv").open(encoding="utf-8")))
    lesions = list(csv.DictReader((out_study / "lesions.csv").open(encoding="utf-8")))
    assert len(segs) == len(study.scans)  # one SEG per scan (every scan has lesions)
    seen = set()
    for ds in segs:
        pet_uid = ds.ReferencedSeriesSequence[0].SeriesInstanceUID
        scan = study.scan_of(pet_uid)
        seen.add(pet_uid)
        row = scan.row
        pid = row["patient_id"]
        pet = _headers(scan.pet_dir)
        # filed under the PET's patient and study
        assert ds.PatientID == pet[0].PatientID == pid
        assert ds.StudyInstanceUID == pet[0].StudyInstanceUID == scan.study_uid
        assert ds.FrameOfReferenceUID == pet[0].FrameOfReferenceUID
        name = ("baseline_labels.nii.gz" if row["role"] == "baseline"
                else f"failure_{row['scan_date']}_labels.nii.gz")
        labels = Volume.from_nifti(work / folder_name(pid) / name)
        got, facts = label_map_from_seg(ds, pet)
        np.testing.assert_array_equal(got, np.asarray(labels.voxels))  # voxel for voxel on the PET grid
        assert facts["derivation_ok"]
        n = int(np.asarray(labels.voxels).max())
        assert len(ds.SegmentSequence) == n
        text = [str(item.SegmentLabel) for item in ds.SegmentSequence]
        if row["role"] == "baseline":
            ids = [r["lesion_id"] for r in lesions if r["patient_id"] == pid]
            assert text == [f"lesion {i}: baseline" for i in ids]
        else:
            cls = {int(r["followup_label"]): r["match_class"] for r in failures
                   if r["patient_id"] == pid and r["scan_date"] == row["scan_date"]}
            words = {"local": "local failure", "marginal": "marginal failure", "de novo": "de novo",
                     "outside baseline scan": "outside baseline scan"}
            assert text == [f"lesion {k}: {words[cls[k]]}" for k in sorted(cls)]
            assert "de novo" in cls.values() and "local" in cls.values()
    assert seen == {s.pet_uid for s in study.scans}


@pytest.mark.slow
def test_build_study_stores_segs_that_read_back_equal(
        orthanc_fresh: OrthancServer, upload_study: Callable[[OrthancServer, Path], DicomStudy],
        tmp_path: Path) -> None:
    from pofa.cli import app

    study = upload_study(orthanc_fresh, tmp_path / "data")
    work = tmp_path / "work"
    res = runner.invoke(app, ["build-study", str(study.manifest), "--out", str(tmp_path / "study"),
                              "--work", str(work), "--store-results", orthanc_fresh.url])
    print(res.output)
    assert res.exit_code == 0, res.output
    assert "lesion segmentation(s) (DICOM SEG) stored" in res.output, res.output
    segs = _stored_segs(orthanc_fresh.url)
    _check_round_trip(study, work, segs, tmp_path / "study")
    # storing again sends the same instances: the server still holds one SEG per scan
    res2 = runner.invoke(app, ["build-study", str(study.manifest), "--out", str(tmp_path / "study"),
                               "--force", "--work", str(work), "--store-results", orthanc_fresh.url])
    assert res2.exit_code == res.exit_code, res2.output
    again = _stored_segs(orthanc_fresh.url)
    assert sorted(d.SOPInstanceUID for d in again) == sorted(d.SOPInstanceUID for d in segs)


def _build(study: DicomStudy, tmp_path: Path) -> tuple[list, Path]:
    from pofa.batch.study import build_study_from_manifest

    outcomes: list = []
    work = tmp_path / "work"
    build_study_from_manifest(study.manifest, tmp_path / "study", work=work, on_outcome=outcomes.append)
    return outcomes, work


@pytest.mark.slow
def test_one_patient_failing_does_not_stop_the_others(
        orthanc_fresh: OrthancServer, upload_study: Callable[[OrthancServer, Path], DicomStudy],
        tmp_path: Path) -> None:
    from pofa.batch.manifest import load_manifest
    from pofa.batch.writeback import store_results

    study = upload_study(orthanc_fresh, tmp_path / "data")
    outcomes, work = _build(study, tmp_path)
    p001 = next(s for s in study.scans if s.row["patient_id"] == "P001")
    files = sorted(p001.pet_dir.iterdir(), key=lambda p: float(pydicom.dcmread(p).ImagePositionPatient[2]))
    files[len(files) // 2].unlink()  # patient 2 of 3: its PET lost a slice since the build
    (work / folder_name("P002") / "baseline_labels.nii.gz").unlink()  # patient 3: its work folder is damaged
    report = store_results(orthanc_fresh.url, load_manifest(study.manifest), outcomes, work)
    failed = report.failed
    assert [(f.seq, f.patient_id) for f in failed] == [(2, "P001"), (3, "P002"), (3, "P002")]
    assert "slice(s) missing" in failed[0].reason and p001.pet_uid in failed[0].reason
    assert failed[0].line().startswith("patient #2 (P001), SEG of the baseline scan of ")
    assert "cannot be read" in failed[1].reason and "run the batch again" in failed[1].reason
    assert report.n_stored == 2  # patient 1's baseline and failure scans
    segs = _stored_segs(orthanc_fresh.url)
    assert {d.ReferencedSeriesSequence[0].SeriesInstanceUID for d in segs} == {
        s.pet_uid for s in study.scans if s.row["patient_id"] == "P000"}
    assert "failed" in report.csv_text() and report.summary().startswith("2 lesion")


@pytest.mark.slow
def test_server_down_fails_each_scan_with_its_series(
        orthanc_fresh: OrthancServer, upload_study: Callable[[OrthancServer, Path], DicomStudy],
        tmp_path: Path) -> None:
    from pofa.batch.manifest import load_manifest
    from pofa.batch.writeback import store_results
    from pofa.pacs.client import connect

    study = upload_study(orthanc_fresh, tmp_path / "data")
    outcomes, work = _build(study, tmp_path)
    client = connect(orthanc_fresh.url, retries=1, backoff=0.01, timeout=5)
    orthanc_fresh.stop()
    report = store_results(orthanc_fresh.url, load_manifest(study.manifest), outcomes, work, client=client)
    assert report.n_stored == 0 and len(report.failed) == len(study.scans)
    for item, scan in zip(report.failed, study.scans, strict=True):
        assert "cannot connect to the server" in item.reason and scan.pet_uid in item.reason
        assert orthanc_fresh.url in item.reason
    assert [i.seq for i in report.failed] == [1, 1, 2, 3, 3]


@pytest.mark.slow
def test_batch_and_analyze_store_results(
        orthanc_fresh: OrthancServer, upload_study: Callable[[OrthancServer, Path], DicomStudy],
        tmp_path: Path) -> None:
    from pofa.cli import app

    study = upload_study(orthanc_fresh, tmp_path / "data")
    out = tmp_path / "batch"
    res = runner.invoke(app, ["batch", str(study.manifest), "--out", str(out), "--workers", "1",
                              "--memory-limit", "2GB", "--no-progress", "--store-results", orthanc_fresh.url])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((out / "stored.csv").open(encoding="utf-8")))
    assert [r["status"] for r in rows] == ["stored"] * len(study.scans)
    assert [r["patient"] for r in rows] == ["1", "1", "2", "3", "3"]
    segs = _stored_segs(orthanc_fresh.url)
    assert sorted(r["seg_series_uid"] for r in rows) == sorted(d.SeriesInstanceUID for d in segs)
    _check_round_trip(study, out / "work", segs, out / "study")
    # a later run that does not store leaves no stored.csv of the earlier one behind
    res = runner.invoke(app, ["batch", str(study.manifest), "--out", str(out), "--workers", "1",
                              "--memory-limit", "2GB", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert not (out / "stored.csv").exists() and (out / "errors.csv").is_file()
    # pofa analyze MANIFEST.csv stores the same SEG objects (same results, same UIDs)
    res = runner.invoke(app, ["analyze", str(study.manifest), "--out", str(tmp_path / "results"),
                              "--store-results", orthanc_fresh.url])
    assert res.exit_code == 0, res.output
    assert f"{len(study.scans)} lesion segmentation(s) (DICOM SEG) stored" in res.output
    assert sorted(d.SOPInstanceUID for d in _stored_segs(orthanc_fresh.url)) == sorted(
        d.SOPInstanceUID for d in segs)
    # a study folder has no scans to store
    res = runner.invoke(app, ["analyze", str(out / "study"), "--out", str(tmp_path / "r2"),
                              "--store-results", orthanc_fresh.url])
    assert res.exit_code == 2 and "needs an imaging manifest" in res.output


def test_store_results_refuses_credentials_in_the_url(tmp_path: Path) -> None:
    from pofa.cli import app

    res = runner.invoke(app, ["build-study", str(tmp_path / "m.csv"), "--out", str(tmp_path / "s"),
                              "--store-results", "https://user:secret@pacs.example.org/dicom-web"])
    assert res.exit_code == 2 and "holds credentials" in res.output and "secret" not in res.output


@pytest.mark.slow
def test_dicomweb_manifest_stores_the_same_segs(
        orthanc_fresh: OrthancServer, upload_study: Callable[[OrthancServer, Path], DicomStudy],
        tmp_path: Path) -> None:
    """Scans given as dicomweb: references (fetched into the cache) give the SEG objects of local scans."""
    from pacs_data import write_manifest

    from pofa.cli import app

    study = upload_study(orthanc_fresh, tmp_path / "data")
    url = orthanc_fresh.url
    rows = [dict(s.row, pet=f"dicomweb:{url}?study={s.study_uid}&series={s.pet_uid}",
                 ct=f"dicomweb:{url}?study={s.study_uid}&series={s.ct_uid}",
                 organs=str(study.root / s.row["organs"]),
                 transform=str(study.root / s.row["transform"]) if s.row["transform"] else "")
            for s in study.scans]
    (tmp_path / "web").mkdir()
    manifest = write_manifest(tmp_path / "web" / "manifest.csv", rows)
    (tmp_path / "web" / "patients.csv").write_bytes(study.patients.read_bytes())
    res = runner.invoke(app, ["build-study", str(manifest), "--out", str(tmp_path / "web-study"),
                              "--work", str(tmp_path / "web-work"), "--cache", str(tmp_path / "cache"),
                              "--store-results", url])
    assert res.exit_code == 0, res.output
    web = _stored_segs(url)
    _check_round_trip(study, tmp_path / "web-work", web, tmp_path / "web-study")
    res = runner.invoke(app, ["build-study", str(study.manifest), "--out", str(tmp_path / "study"),
                              "--store-results", url])
    assert res.exit_code == 0, res.output
    assert sorted(d.SOPInstanceUID for d in _stored_segs(url)) == sorted(d.SOPInstanceUID for d in web)


@pytest.mark.slow
def test_library_errors_never_quote_the_patient_name(orthanc: OrthancServer, pacs_study: DicomStudy,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capfd: pytest.CaptureFixture[str]) -> None:
    """highdicom or pydicom failing with a message that quotes a header (as their validators do) is reported
    with the PET series and the error class only: the PET's PatientName appears in no output."""
    import dicomweb_client
    import highdicom
    from pet_synthetic import SECRET_ID, SECRET_NAME, read_all_bytes

    from pofa.cli import app

    def refuse(*args: object, source_images: list[pydicom.Dataset], **kwargs: object) -> None:
        raise ValueError(f"Value '{source_images[0].PatientName}' of PatientName is invalid")

    work = tmp_path / "work"
    monkeypatch.setattr(highdicom.seg, "Segmentation", refuse)
    res = runner.invoke(app, ["build-study", str(pacs_study.manifest), "--out", str(tmp_path / "study"),
                              "--work", str(work), "--store-results", orthanc.url])
    assert res.exit_code == 1, res.output
    assert "highdicom refused it (ValueError)" in res.output and pacs_study.scans[0].pet_uid in res.output
    monkeypatch.undo()
    for name, value in orthanc.env().items():
        monkeypatch.setenv(name, value)

    def encode_fails(self: object, datasets: list[pydicom.Dataset], *args: object, **kwargs: object) -> None:
        raise TypeError(f"cannot encode PatientName {datasets[0].PatientName} ({datasets[0].PatientID})")

    monkeypatch.setattr(dicomweb_client.DICOMwebClient, "store_instances", encode_fails)
    res2 = runner.invoke(app, ["build-study", str(pacs_study.manifest), "--out", str(tmp_path / "study2"),
                               "--work", str(work), "--store-results", orthanc.url])
    assert res2.exit_code == 1, res2.output
    assert "could not be encoded or sent (TypeError)" in res2.output
    captured = capfd.readouterr()
    for secret in (SECRET_NAME, SECRET_ID, SECRET_NAME.split("^")[0]):
        for text in (res.output, res2.output, captured.out, captured.err):
            assert secret not in text
        for folder in (tmp_path / "study", tmp_path / "study2", work):
            assert secret.encode() not in read_all_bytes(folder)
    assert not [u for u in orthanc.series_uids() if u not in {x for s in pacs_study.scans
                                                              for x in (s.pet_uid, s.ct_uid)}]
