"""pofa against a real Orthanc: find (QIDO-RS), fetch (WADO-RS) into the cache, build-study end to end.

The synthetic study (:mod:`pacs_data`) is uploaded to the server; its local DICOM copy gives the local
manifest.
The DICOMweb manifest is the one ``pofa pacs find`` writes, with role, organs, threshold and transform filled
in from the local manifest as a reader would.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from orthanc_server import OrthancServer
from pacs_data import DicomStudy, write_manifest
from pet_synthetic import SECRET_BIRTH, SECRET_INSTITUTION, SECRET_NAME, read_all_bytes
from typer.testing import CliRunner

from pofa.cli import app

RUNNER = CliRunner()


def _find(server: OrthancServer, out: Path, *args: str) -> list[dict[str, str]]:
    res = RUNNER.invoke(app, ["pacs", "find", "--url", server.url, "--out", str(out), *args])
    assert res.exit_code == 0, res.output
    with out.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _dicomweb_manifest(server: OrthancServer, study: DicomStudy, folder: Path) -> Path:
    """``pofa pacs find``'s manifest in ``folder``, completed from the local manifest, + patients.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = _find(server, folder / "found.csv")
    by_series = {s.pet_uid: s for s in study.scans}
    done = []
    for row in rows:
        series = row["pet"].rpartition("series=")[2]
        local = by_series[series].row
        assert row["ct"].endswith(f"series={by_series[series].ct_uid}")
        assert row["scan_date"] == local["scan_date"] and row["role"] == ""
        done.append(dict(row, role=local["role"], threshold=local["threshold"],
                         organs=str(study.root / local["organs"]),
                         transform=str(study.root / local["transform"]) if local["transform"] else ""))
    shutil.copyfile(study.patients, folder / "patients.csv")
    return write_manifest(folder / "manifest.csv", done)


def _local_manifest(study: DicomStudy, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [dict(s.row, **{c: str(study.root / s.row[c]) if s.row[c] else "" for c in
                           ("pet", "ct", "organs", "transform")}) for s in study.scans]
    shutil.copyfile(study.patients, folder / "patients.csv")
    return write_manifest(folder / "manifest.csv", rows)


def _build(manifest: Path, out: Path, cache: Path, *args: str) -> None:
    res = RUNNER.invoke(app, ["build-study", str(manifest), "--out", str(out), "--cache", str(cache), *args])
    assert res.exit_code == 0, res.output


def test_find_lists_every_pet_series_with_its_ct(orthanc: OrthancServer, pacs_study: DicomStudy,
                                                 tmp_path: Path) -> None:
    rows = _find(orthanc, tmp_path / "m.csv")
    assert len(rows) == len(pacs_study.scans)
    assert list(rows[0]) == ["patient_id", "role", "scan_date", "pet", "ct", "mask", "organs", "threshold",
                             "transform"]
    expected = {(s.row["patient_id"], s.row["scan_date"],
                 f"dicomweb:{orthanc.url}?study={s.study_uid}&series={s.pet_uid}",
                 f"dicomweb:{orthanc.url}?study={s.study_uid}&series={s.ct_uid}") for s in pacs_study.scans}
    assert {(r["patient_id"], r["scan_date"], r["pet"], r["ct"]) for r in rows} == expected
    assert all(r["role"] == r["organs"] == r["threshold"] == "" for r in rows)
    text = (tmp_path / "m.csv").read_text(encoding="utf-8")
    assert orthanc.password not in text and orthanc.user not in text


def test_find_filters_by_patient_and_date(orthanc: OrthancServer, pacs_study: DicomStudy, tmp_path: Path
                                          ) -> None:
    one = _find(orthanc, tmp_path / "p.csv", "--patient", "P002")
    assert {r["patient_id"] for r in one} == {"P002"} and len(one) == 2
    later = _find(orthanc, tmp_path / "d.csv", "--since", "2019-03-01")
    assert sorted(r["scan_date"] for r in later) == sorted(
        s.row["scan_date"] for s in pacs_study.scans if s.row["scan_date"] >= "2019-03-01")
    pt_only = _find(orthanc, tmp_path / "m.csv", "--modality", "PT")
    assert len(pt_only) == len(pacs_study.scans) and all(r["ct"] == "" for r in pt_only)


def test_find_prints_no_patient_identifier(orthanc: OrthancServer, pacs_study: DicomStudy, tmp_path: Path
                                           ) -> None:
    res = RUNNER.invoke(app, ["pacs", "find", "--url", orthanc.url, "--out", str(tmp_path / "m.csv")])
    assert res.exit_code == 0, res.output
    assert "5 manifest rows" in res.output
    assert not any(f"P00{i}" in res.output for i in range(3))


def test_find_refuses_credentials_in_the_url(orthanc: OrthancServer, tmp_path: Path) -> None:
    url = orthanc.url.replace("http://", f"http://{orthanc.user}:{orthanc.password}@")
    res = RUNNER.invoke(app, ["pacs", "find", "--url", url, "--out", str(tmp_path / "m.csv")])
    assert res.exit_code == 2
    assert orthanc.password not in res.output and "holds credentials" in res.output
    assert not (tmp_path / "m.csv").exists()


def test_wrong_credentials_are_a_clear_error(orthanc: OrthancServer, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POFA_DICOMWEB_PASSWORD", "not-the-password")
    res = RUNNER.invoke(app, ["pacs", "find", "--url", orthanc.url, "--out", str(tmp_path / "m.csv")])
    assert res.exit_code == 2
    assert "HTTP 401" in res.output and "POFA_DICOMWEB_USER" in res.output


@pytest.mark.slow
def test_local_and_dicomweb_manifests_give_the_same_study(orthanc: OrthancServer, pacs_study: DicomStudy,
                                                          tmp_path: Path) -> None:
    local = _local_manifest(pacs_study, tmp_path / "local" / "cohort")
    remote = _dicomweb_manifest(orthanc, pacs_study, tmp_path / "pacs" / "cohort")
    cache = tmp_path / "cache"
    _build(local, tmp_path / "local" / "study", cache)
    _build(remote, tmp_path / "pacs" / "study", cache)
    a, b = tmp_path / "local" / "study", tmp_path / "pacs" / "study"
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert {"lesions.csv", "failures.csv", "patients.csv", "study.toml", "imaging.json"} <= set(names)
    for name in names:
        if name != "imaging.json":
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
    lesions = (a / "lesions.csv").read_text(encoding="utf-8").splitlines()
    assert len(lesions) > 3  # the study has lesions: the comparison compares something
    # imaging.json names its inputs: the manifest's SHA-256, each scan's pet/ct source (a file name, or
    # "dicomweb"), and each patient's content key (a hash of the input files' names and bytes: the cache
    # names DICOM files by their SHA-256). Everything else is the same byte for byte.
    ja, jb = (json.loads((d / "imaging.json").read_text(encoding="utf-8")) for d in (a, b))
    assert ja["manifest_sha256"] != jb["manifest_sha256"]
    for j, source in ((ja, "pet"), (jb, "dicomweb")):
        j["manifest_sha256"] = ""
        for p in j["patients"]:
            p["key"] = ""
            for s in p["scans"]:
                assert s["pet"] == source or source == "pet"
                s["pet"] = s["ct"] = ""
    assert json.dumps(ja, sort_keys=True) == json.dumps(jb, sort_keys=True)
    # Nothing identifying and no credential in the study or the cache's records.
    for folder in (b, cache / "series"):
        blob = b"".join(p.read_bytes() for p in folder.rglob("*.json")) + read_all_bytes(b)
        assert orthanc.password.encode() not in blob
    for secret in (SECRET_NAME, SECRET_BIRTH, SECRET_INSTITUTION):
        assert secret.encode() not in read_all_bytes(b)


@pytest.mark.slow
def test_cache_is_checked_shared_between_runs_and_used_when_the_server_is_down(
        orthanc_fresh: OrthancServer, upload_study: Callable[[OrthancServer, Path], DicomStudy],
        tmp_path: Path) -> None:
    study = upload_study(orthanc_fresh, tmp_path / "data")
    remote = _dicomweb_manifest(orthanc_fresh, study, tmp_path / "pacs" / "cohort")
    cache = tmp_path / "cache"
    _build(remote, tmp_path / "first", cache)
    records = sorted((cache / "series").glob("*/complete.json"))
    assert len(records) == 2 * len(study.scans)
    rec = json.loads(records[0].read_text(encoding="utf-8"))
    files = sorted((records[0].parent / "dicom").iterdir())
    assert rec["instances"] == len(files) == len(rec["files"])
    assert orthanc_fresh.password not in records[0].read_text(encoding="utf-8")
    assert not any((cache / "tmp").iterdir()) and not any((cache / "partial").iterdir())
    orthanc_fresh.stop()
    _build(remote, tmp_path / "second", cache)  # everything from the cache
    for name in ("lesions.csv", "failures.csv", "imaging.json"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes()
    # A damaged cached series is not used: with the server down, the patient fails naming the series.
    files[0].write_bytes(files[0].read_bytes()[:-10])
    res = RUNNER.invoke(app, ["build-study", str(remote), "--out", str(tmp_path / "third"), "--cache",
                              str(cache), "--pacs-timeout", "2"])
    assert res.exit_code == 2
    assert "cannot connect" in res.output and "series 1." in res.output
