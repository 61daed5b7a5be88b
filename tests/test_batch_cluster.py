"""``pofa batch`` on a real dask.distributed cluster: same bytes as the single-machine path, resumable, broken
scans isolated, and a worker killed mid-run loses and duplicates nothing.

Every test here starts worker processes (about 10 s each time, mostly imports), hence ``slow``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from batch_data import make_study
from pofa.batch.cache import DONE_FILE, ErrorKind, Status, read_done
from pofa.batch.job import PatientOutcome
from pofa.batch.runner import BATCH_JSON, ERRORS_CSV, run_batch
from pofa.batch.study import IMAGING_JSON, build_study_from_manifest
from pofa.study import load_study

pytestmark = pytest.mark.slow


def _cluster(n: int = 2) -> Any:
    from distributed import LocalCluster

    return LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                        silence_logs=logging.CRITICAL)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    from distributed import Client

    with _cluster() as cluster, Client(cluster) as cl:
        yield cl


def _same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names)


def test_batch_equals_sequential_and_resumes(client: Any, tmp_path: Path) -> None:
    s = make_study(tmp_path / "data", 8, seed=11)
    sequential = build_study_from_manifest(s.manifest, tmp_path / "sequential")
    seen: list[PatientOutcome] = []
    first = run_batch(s.manifest, tmp_path / "out", client=client, on_outcome=seen.append)
    assert [o.status for o in first.outcomes] == [Status.OK] * 8
    assert first.n_computed == 8 and first.n_reused == 0 and len(seen) == 8
    assert len({o.host for o in first.outcomes}) == 2  # both workers took part
    assert first.study is not None and _same_files(first.study, sequential)  # byte for byte
    record = json.loads((tmp_path / "out" / BATCH_JSON).read_text())
    assert record["counts"] == {"patients": 8, "processed": 8, "already_done": 0, "failed": 0}
    assert record["workers"] == 2
    # a second run recomputes nothing and writes the same study
    second = run_batch(s.manifest, tmp_path / "out", client=client)
    assert second.n_reused == 8 and second.n_computed == 0
    assert _same_files(second.study, sequential)
    # one changed input file: only that patient is recomputed, and the study equals a fresh sequential build
    (s.root / "images" / "case0004" / "base_ct.nii.gz").write_bytes(
        (s.root / "images" / "case0005" / "base_ct.nii.gz").read_bytes())
    third = run_batch(s.manifest, tmp_path / "out", client=client)
    assert [o.patient_id for o in third.outcomes if not o.reused] == ["P004"]
    fresh = build_study_from_manifest(s.manifest, tmp_path / "sequential2")
    assert _same_files(third.study, fresh)
    # --force recomputes everything
    forced = run_batch(s.manifest, tmp_path / "out", client=client, force=True)
    assert forced.n_computed == 8 and _same_files(forced.study, fresh)


def test_scheduler_address_connects_to_a_running_cluster(client: Any, tmp_path: Path) -> None:
    s = make_study(tmp_path / "data", 3, seed=8)
    address = client.scheduler.address
    res = run_batch(s.manifest, tmp_path / "out", scheduler=address)
    assert res.scheduler == address and res.n_workers == 2 and res.n_computed == 3
    assert client.status == "running"  # run_batch closed its own client and left the cluster running


def test_broken_series_is_recorded_and_the_rest_completes(client: Any, tmp_path: Path) -> None:
    s = make_study(tmp_path / "data", 6, seed=5)
    broken = s.root / "images" / "case0001" / "base_suv.nii.gz"
    good = broken.read_bytes()
    broken.write_bytes(b"this is not a NIfTI file")  # recognised by the reader: an input error
    truncated = s.root / "images" / "case0004" / "fu_ct.nii.gz"
    truncated.write_bytes(truncated.read_bytes()[:300])  # fails inside gzip (EOFError from nibabel today)
    res = run_batch(s.manifest, tmp_path / "out", client=client)
    assert [o.patient_id for o in res.errors] == ["P001", "P004"]
    bad, cut = res.errors
    assert bad.error_kind is ErrorKind.INPUT
    # an exception that is not a pofa error is "internal" (retried by every run); should the reader learn to
    # report a truncated file as a pofa error, it becomes "input" (kept while the file is unchanged)
    assert cut.error_kind in (ErrorKind.INPUT, ErrorKind.INTERNAL)
    assert bad.stage == "extraction of the baseline scan of 2019-01-10 (manifest row 4)"
    assert "base_suv.nii.gz" in bad.reason
    assert cut.stage == "extraction of the failure scan of 2019-05-31 (manifest row 9)"
    errors_csv = (tmp_path / "out" / ERRORS_CSV).read_text().splitlines()
    assert errors_csv[0] == "patient_id,error_kind,stage,reason"
    assert [line.split(",")[:2] for line in errors_csv[1:]] == [["P001", "input"],
                                                                 ["P004", cut.error_kind.value]]
    study = load_study(res.study)
    assert study.validate().ok
    assert sorted(set(study.lesions["patient_id"])) == ["P000", "P002", "P003", "P005"]
    excluded = json.loads((res.study / IMAGING_JSON).read_text())["excluded"]
    assert [e["patient_id"] for e in excluded] == ["P001", "P004"]
    # rerun: an input error is kept while the file is unchanged (no wasted work); an internal one is retried
    again = run_batch(s.manifest, tmp_path / "out", client=client)
    retried_now = ["P004"] if cut.error_kind is ErrorKind.INTERNAL else []
    assert [o.patient_id for o in again.outcomes if not o.reused] == retried_now
    assert [o.patient_id for o in again.errors] == ["P001", "P004"]
    # input errors are retried on request
    retried = run_batch(s.manifest, tmp_path / "out", client=client, retry_errors=True)
    assert [o.patient_id for o in retried.outcomes if not o.reused] == ["P001", "P004"]
    # repaired files are recomputed
    broken.write_bytes(good)
    shutil.copyfile(s.root / "images" / "case0004" / "base_ct.nii.gz", truncated)
    fixed = run_batch(s.manifest, tmp_path / "out", client=client)
    assert not fixed.errors and [o.patient_id for o in fixed.outcomes if not o.reused] == ["P001", "P004"]
    assert (tmp_path / "out" / ERRORS_CSV).read_text() == "patient_id,error_kind,stage,reason\n"


def test_worker_killed_mid_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """Kill one of two workers (SIGKILL) while it processes a patient; the scheduler reruns its tasks."""
    from distributed import Client

    n = 10
    s = make_study(tmp_path / "data", n, seed=7, failure_every=1, transforms=False)  # registration: ~1 s each
    killed: dict[str, object] = {}
    with _cluster(2) as cluster, Client(cluster) as cl:

        def kill_a_busy_worker(outcome: PatientOutcome) -> None:
            if killed:
                return
            busy = {w: keys for w, keys in cl.processing().items() if keys}
            worker, keys = sorted(busy.items())[0]
            # results finished on that worker and not yet gathered live only in its memory: they are lost too
            held = [k for k, where in cl.who_has().items() if where and set(where) <= {worker}]
            pid = cl.run(os.getpid, workers=[worker])[worker]
            os.kill(pid, signal.SIGKILL)
            killed.update(worker=worker, pid=pid, keys=list(keys), held=held, after=outcome.patient_id)

        res = run_batch(s.manifest, tmp_path / "out", client=cl, on_outcome=kill_a_busy_worker)
    assert killed and killed["keys"], "no worker was busy when the first result arrived"
    # the patient(s) in flight on the killed worker were computed again by a live process
    in_flight = {str(k).split("-")[1] for k in killed["keys"]}
    held = killed["held"]
    assert isinstance(held, list)
    lost = in_flight | {str(k).split("-")[1] for k in held}
    redone = [o for o in res.outcomes if o.patient_id in in_flight]
    assert redone and any(not o.host.endswith(f":{killed['pid']}") for o in redone)
    # every patient accounted for, exactly once, all processed (the killed task ran again elsewhere)
    assert [o.patient_id for o in res.outcomes] == [t.patient_id for t in s.truth]
    assert [o.status for o in res.outcomes] == [Status.OK] * n
    # registration now takes a fraction of a second, so the killed worker may have finished a patient (its
    # folder complete: written atomically, done file last) just before the kill, or finished one whose result
    # the client had not gathered yet (that result died with the worker); the rerun then reuses its folder,
    # as a resumed batch would. Only the killed worker's patients may be reused.
    assert {o.patient_id for o in res.outcomes if o.reused} <= lost
    work = tmp_path / "out" / "work"
    folders = sorted(work.iterdir())
    assert len(folders) == n and all(not f.name.startswith(".") for f in folders)  # no partial folder left
    assert sorted(read_done(f).patient_id for f in folders) == sorted(t.patient_id for t in s.truth)
    assert all((f / DONE_FILE).is_file() for f in folders)
    study = load_study(res.study)
    assert study.validate().ok  # no duplicate lesion or failure rows (they would be duplicate-id errors)
    counts = study.lesions.groupby("patient_id").size().to_dict()
    assert counts == {t.patient_id: len(t.baseline) for t in s.truth}
    assert len(study.failures) == sum(len(t.followup) for t in s.truth)
    # and the numbers are those of the single-machine path
    assert _same_files(res.study, build_study_from_manifest(s.manifest, tmp_path / "sequential"))


def test_a_patient_whose_worker_dies_too_often_is_recorded_and_retried(tmp_path: Path) -> None:
    """With ``allowed-failures = 0`` one worker death fails its tasks (KilledWorker): they are recorded, the
    rest completes, and the next run retries them (a worker death is never kept as the patient's result)."""
    import dask
    from distributed import Client

    s = make_study(tmp_path / "data", 6, seed=9, failure_every=1, transforms=False)
    killed: dict[str, object] = {}
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), _cluster(2) as cluster, \
            Client(cluster) as cl:

        def kill_a_busy_worker(outcome: PatientOutcome) -> None:
            if killed:
                return
            busy = {w: keys for w, keys in cl.processing().items() if keys}
            worker, keys = sorted(busy.items())[0]
            os.kill(cl.run(os.getpid, workers=[worker])[worker], signal.SIGKILL)
            killed.update(keys=list(keys))

        res = run_batch(s.manifest, tmp_path / "out", client=cl, on_outcome=kill_a_busy_worker)
        lost = {o.patient_id for o in res.errors}
        # the patients on the killed worker when it died: those seen processing just before the kill (a task
        # assigned to it between that look and the kill is lost too, so the lost set may be larger)
        assert lost & {str(k).split("-")[1] for k in killed["keys"]}
        assert len(res.outcomes) == 6
        assert all(o.status is Status.OK for o in res.outcomes if o.patient_id not in lost)
        assert {o.error_kind.value for o in res.errors} == {"worker"}
        assert all("died" in o.reason for o in res.errors)
        assert set(load_study(res.study).patients["patient_id"]) == {t.patient_id for t in s.truth} - lost
        cl.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker
        again = run_batch(s.manifest, tmp_path / "out", client=cl)
    assert not again.errors and {o.patient_id for o in again.outcomes if not o.reused} == lost


def test_batch_command_on_a_local_cluster(tmp_path: Path) -> None:
    import typer

    from pofa.cli.batch import batch_command

    s = make_study(tmp_path / "data", 3, seed=2)
    shutil.copy(s.root / "patients.csv", tmp_path / "clinical.csv")
    app = typer.Typer()
    app.command("batch")(batch_command)
    app.command("other")(lambda: None)
    res = CliRunner().invoke(app, ["batch", str(s.manifest), "--out", str(tmp_path / "out"), "--workers", "1",
                                   "--memory-limit", "1GB", "--patients", str(tmp_path / "clinical.csv"),
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "3 processed" in res.output
    record = json.loads((tmp_path / "out" / BATCH_JSON).read_text())
    assert record["workers"] == 1 and record["worker_memory_limit_bytes"] == [10**9]
    assert record["patients_table"].endswith("clinical.csv")
    assert load_study(tmp_path / "out" / "study").validate().ok
