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
from typing import Any

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


def test_insecure_warns_loudly(orthanc: OrthancServer, pacs_study: DicomStudy, tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="VERIFICATION IS OFF"):
        res = RUNNER.invoke(app, ["pacs", "find", "--url", orthanc.url, "--out", str(tmp_path / "m.csv"),
                                  "--insecure"])
    assert res.exit_code == 0, res.output
    assert "TLS certificate verification is OFF" in res.output


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
    files = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    assert {"lesions.csv", "failures.csv", "patients.csv", "study.toml", "imaging.json"} <= set(files)
    for name in files:  # every file, imaging.json included: it records inputs by content, never by location
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    lesions = (a / "lesions.csv").read_text(encoding="utf-8").splitlines()
    assert len(lesions) > 3  # the study has lesions: the comparison compares something
    info = json.loads((a / "imaging.json").read_text(encoding="utf-8"))
    assert "manifest_sha256" not in info and len(info["inputs_sha256"]) == 64
    scans = [s for p in info["patients"] for s in p["scans"]]
    assert len(scans) == len(pacs_study.scans) and all(len(s["inputs"]["pet"]) == 64 for s in scans)
    text = (a / "imaging.json").read_text(encoding="utf-8")
    assert str(tmp_path) not in text and "dicomweb" not in text and orthanc.url not in text
    # Nothing identifying and no credential in the study or the cache's records.
    for folder in (b, cache / "series"):
        blob = b"".join(p.read_bytes() for p in folder.rglob("*.json")) + read_all_bytes(b)
        assert orthanc.password.encode() not in blob
    for secret in (SECRET_NAME, SECRET_BIRTH, SECRET_INSTITUTION):
        assert secret.encode() not in read_all_bytes(b)


@pytest.mark.slow
@pytest.mark.usefixtures("tables_only")
def test_analyze_builds_from_a_dicomweb_manifest(orthanc: OrthancServer, pacs_study: DicomStudy,
                                                 tmp_path: Path) -> None:
    remote = _dicomweb_manifest(orthanc, pacs_study, tmp_path / "pacs" / "cohort")
    cache = tmp_path / "cache"
    res = RUNNER.invoke(app, ["analyze", str(remote), "--out", str(tmp_path / "results"), "--cache",
                              str(cache)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "results" / "results.json").is_file()
    assert len(list((cache / "series").glob("*/complete.json"))) == 2 * len(pacs_study.scans)
    blob = read_all_bytes(tmp_path / "results")
    assert orthanc.password.encode() not in blob and orthanc.url.encode() not in blob


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


# ------------------------------------------------------------------------------------------------ faults
def _threads_cluster() -> Any:
    """A one-worker Dask cluster in this process (threads), so that a test can wrap the fetch."""
    import logging

    from distributed import LocalCluster

    return LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0",
                        silence_logs=logging.CRITICAL)


def _fast(cache: Path) -> Any:
    from pofa.pacs.fetch import FetchOptions

    return FetchOptions(cache=str(cache), timeout=5.0, retries=1, backoff=0.05)


@pytest.mark.slow
def test_batch_with_a_deleted_series_fails_that_patient_only(
        orthanc_fresh: OrthancServer, upload_study: Callable[[OrthancServer, Path], DicomStudy],
        tmp_path: Path) -> None:
    from distributed import Client

    from pofa.batch.cache import Status
    from pofa.batch.job import FETCH_STAGE
    from pofa.batch.runner import run_batch

    study = upload_study(orthanc_fresh, tmp_path / "data")
    remote = _dicomweb_manifest(orthanc_fresh, study, tmp_path / "pacs" / "cohort")
    gone = next(s for s in study.scans if s.row["patient_id"] == "P002" and s.row["role"] == "failure")
    orthanc_fresh.delete_series(gone.pet_uid)
    with _threads_cluster() as cluster, Client(cluster) as cl:
        result = run_batch(remote, tmp_path / "out", client=cl, fetch=_fast(tmp_path / "cache"))
    status = {o.patient_id: o for o in result.outcomes}
    assert status["P000"].status is Status.OK and status["P001"].status is Status.OK
    failed = status["P002"]
    assert failed.status is Status.ERROR and failed.stage == FETCH_STAGE
    assert f"series {gone.pet_uid} of study {gone.study_uid}" in failed.reason
    assert "P002" not in failed.reason and orthanc_fresh.password not in failed.reason
    errors = (tmp_path / "out" / "errors.csv").read_text(encoding="utf-8")
    assert gone.pet_uid in errors and orthanc_fresh.password not in errors
    assert result.study is not None
    ids = [r["patient_id"] for r in csv.DictReader((result.study / "patients.csv").open(encoding="utf-8"))]
    assert ids == ["P000", "P001"]
    series = tmp_path / "cache" / "series"
    # every series but the deleted PET and the CT after it (a patient's fetch stops at its first failure)
    assert len(list(series.glob("*/complete.json"))) == 2 * len(study.scans) - 2


@pytest.mark.slow
def test_server_stopped_mid_batch_fails_the_rest_then_a_rerun_completes_them(
        orthanc_fresh: OrthancServer, upload_study: Callable[[OrthancServer, Path], DicomStudy],
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from distributed import Client

    import pofa.pacs.fetch as fetch_module
    from pofa.batch.cache import Status
    from pofa.batch.runner import run_batch

    study = upload_study(orthanc_fresh, tmp_path / "data")
    remote = _dicomweb_manifest(orthanc_fresh, study, tmp_path / "pacs" / "cohort")
    received: list[str] = []
    patients: list[str] = []  # in the order the worker fetches them
    stopped: list[str] = []
    original = fetch_module._retrieve_instance

    def retrieve(session: Any, ref: Any, sop: str, *args: Any) -> bytes:
        pid = study.scan_of(ref.series_uid).row["patient_id"]
        if pid not in patients:
            patients.append(pid)
        if len(patients) == 2 and received.count(pid) == 10 and not stopped:  # 10 into the second patient
            stopped.append(pid)
            orthanc_fresh.stop()
        data = original(session, ref, sop, *args)
        received.append(pid)
        return bytes(data)

    monkeypatch.setattr(fetch_module, "_retrieve_instance", retrieve)
    cache = tmp_path / "cache"
    with _threads_cluster() as cluster, Client(cluster) as cl:
        first = run_batch(remote, tmp_path / "out", client=cl, fetch=_fast(cache))
    status = {o.patient_id: o for o in first.outcomes}
    done = patients[0]
    assert status[done].status is Status.OK
    for pid in {"P000", "P001", "P002"} - {done}:
        assert status[pid].status is Status.ERROR
        assert "cannot connect to the server" in status[pid].reason and "of study 1." in status[pid].reason
        assert pid not in status[pid].reason
    assert not any(p.name.startswith(".") for p in (cache / "partial").rglob("*"))  # no half-written file
    assert len(list((cache / "partial").rglob("*.dcm"))) == 10  # the instances received before the stop
    n_done = 2 * sum(s.row["patient_id"] == done for s in study.scans)
    assert len(list((cache / "series").glob("*/complete.json"))) == n_done
    kept = len(received)
    orthanc_fresh.start()
    with _threads_cluster() as cluster, Client(cluster) as cl:
        second = run_batch(remote, tmp_path / "out", client=cl, fetch=_fast(cache))
    assert [o.status for o in second.outcomes] == [Status.OK] * 3
    assert [o.patient_id for o in second.outcomes if o.reused] == [done]
    total = sum(len(list(s.pet_dir.iterdir())) + len(list(s.ct_dir.iterdir())) for s in study.scans)
    per_done = sum(len(list(s.pet_dir.iterdir())) + len(list(s.ct_dir.iterdir())) for s in study.scans
                   if s.row["patient_id"] == done)
    assert len(received) - kept == total - per_done - 10  # resumed: nothing received before is fetched again
    assert not any((cache / "partial").iterdir()) and not any((cache / "tmp").iterdir())


def test_several_processes_fetching_one_series_share_one_complete_copy(
        orthanc: OrthancServer, pacs_study: DicomStudy, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from pofa.pacs.fetch import FetchOptions, fetch_series
    from pofa.pacs.reference import SeriesRef

    scan = pacs_study.scans[0]
    ref = SeriesRef.of(orthanc.url, scan.study_uid, scan.pet_uid)
    opts = FetchOptions(cache=str(tmp_path / "cache"))
    with ThreadPoolExecutor(4) as pool:
        folders = list(pool.map(lambda _: fetch_series(ref, opts), range(4)))
    assert len(set(folders)) == 1
    local = sorted(p.read_bytes() for p in scan.pet_dir.iterdir())
    assert sorted(p.read_bytes() for p in folders[0].iterdir()) == local  # the bytes as uploaded
    assert not any((tmp_path / "cache" / "tmp").iterdir())
