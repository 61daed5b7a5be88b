"""``pofa batch``: every patient of an imaging manifest on a dask.distributed cluster, resumable.

One task per patient (:func:`pofa.batch.job.run_patient_job`) is submitted to a Dask cluster: a
:class:`distributed.LocalCluster` by default (worker processes, one thread each, a memory limit per worker),
or the scheduler at ``--scheduler ADDRESS``. Results are collected as they complete (``as_completed``) behind
a progress bar.

- **Error isolation**: a patient whose scans fail is recorded with the stage and reason (its ``done.json`` and
  ``errors.csv``); the others complete. A worker that dies (killed, out of memory, a crash in a native
  library) has its tasks rescheduled by the scheduler on the remaining workers; a patient whose task kills
  workers ``distributed.scheduler.allowed-failures`` times is recorded as a worker error.
- **Resumable**: a rerun skips every patient with a valid done-record for the same content key (inputs and
  settings, :mod:`pofa.batch.cache`); patients with changed inputs are recomputed.
- **Merge**: the processed patients become the study folder ``<out>/study``
(:func:`pofa.batch.study.write_study`),
  the same bytes as ``pofa build-study`` writes.

Layout of ``<out>``: ``batch.json`` (the run record), ``errors.csv``, ``study/``, ``work/<patient>/``, and
``stored.csv`` when the run stored its lesions on a PACS (``--store-results``): every run removes the
``stored.csv`` of an earlier run first, so the file always describes the last run.
All workers must see the manifest's files and ``<out>`` under the same paths (a shared file system).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pofa import __version__
from pofa.atomic import check_output_dir, write_text
from pofa.batch.cache import Status, clean_partial
from pofa.batch.job import PatientJob, PatientOutcome, load_result, record_worker_failure, run_patient_job
from pofa.batch.manifest import Manifest, ManifestError, load_manifest
from pofa.batch.pipeline import PipelineSettings
from pofa.batch.study import ExcludedPatient, error_rows, write_study
from pofa.errors import PofaError
from pofa.pacs.fetch import FetchOptions

__all__ = ["BATCH_JSON", "ERRORS_CSV", "STORED_CSV", "BatchResult", "progress_bar", "run_batch"]

BATCH_JSON = "batch.json"
ERRORS_CSV = "errors.csv"
#: Written by the caller that stores the lesions (``--store-results``); removed at the start of every run.
STORED_CSV = "stored.csv"
LOCK_FILE = ".pofa-batch.lock"
WORK = "work"
STUDY = "study"


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What a batch run did.

    Attributes
    ----------
    out : pathlib.Path
        The batch folder.
    study : pathlib.Path or None
        The merged study folder (None when no patient succeeded).
    outcomes : tuple of PatientOutcome
        Exactly one per manifest patient, in manifest order.
    elapsed_s : float
        Wall time of the processing (cluster start excluded), seconds.
    n_workers : int
        Workers at the start of the run.
    scheduler : str
        ``local`` or the scheduler address.
    memory_limits : tuple of int
        The distinct memory limits of the workers, bytes (0 = none).
    """

    out: Path
    study: Path | None
    outcomes: tuple[PatientOutcome, ...]
    elapsed_s: float
    n_workers: int
    scheduler: str
    memory_limits: tuple[int, ...] = ()

    @property
    def n_patients(self) -> int:
        """Number of patients with an outcome.

        Returns
        -------
        int
            Patients processed, reused or failed.
        """
        return len(self.outcomes)

    @property
    def n_reused(self) -> int:
        """Number of patients whose earlier work was reused.

        Returns
        -------
        int
            Patients reused without error.
        """
        return sum(o.reused and o.status is Status.OK for o in self.outcomes)

    @property
    def n_computed(self) -> int:
        """Number of patients computed in this run.

        Returns
        -------
        int
            Patients computed without error.
        """
        return sum(not o.reused and o.status is Status.OK for o in self.outcomes)

    @property
    def errors(self) -> tuple[PatientOutcome, ...]:
        """The patients whose scans could not be processed.

        Returns
        -------
        tuple of PatientOutcome
            Their outcomes.
        """
        return tuple(o for o in self.outcomes if o.status is Status.ERROR)

    def summary(self) -> str:
        """One line for the terminal.

        Returns
        -------
        str
            Counts of patients computed, reused and failed, the time and the workers.
        """
        s = (f"{self.n_patients} patient(s): {self.n_computed} processed, {self.n_reused} already done, "
             f"{len(self.errors)} failed, in {self.elapsed_s:.1f} s on {self.n_workers} worker(s).")
        if self.study is not None:
            s += f" Study folder: {self.study}"
        return s


# ---------------------------------------------------------------------------------------------- the folder
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
    """One batch at a time per output folder (a lock file; a stale one from a dead process is taken over)."""
    path = out / LOCK_FILE
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                other = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                other = {}
            if other.get("host") == me["host"] and isinstance(other.get("pid"), int) \
                    and not _pid_alive(other["pid"]):
                path.unlink(missing_ok=True)
                continue
            raise PofaError(f"another pofa batch ({other.get('host', '?')}, process {other.get('pid', '?')}, "
                            f"started {other.get('started', '?')}) is writing to {out}; wait for it to end, "
                            f"or delete {path} if that run is gone") from None
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(me, fh)
        break
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _prepare(out: Path, force: bool) -> Path:
    """Check and create the batch folder; with ``force`` remove earlier results. Returns the work folder."""
    if out.exists() and not out.is_dir():
        raise PofaError(f"{out} exists and is not a folder", advice="choose another {out}")
    ours = (out / BATCH_JSON).is_file() or (out / WORK).is_dir()
    if out.is_dir() and any(p.name != LOCK_FILE for p in out.iterdir()) and not ours:
        # --force recomputes an earlier batch; it never takes over a folder pofa did not write
        raise PofaError(f"the folder {out} is not empty and holds no earlier pofa batch",
                        advice="choose another {out} (pofa never deletes files it did not write)")
    if (out / STUDY).exists() or (out / STUDY).is_symlink():
        check_output_dir(out / STUDY, True)  # the merged study is replaced: never one edited since
    out.mkdir(parents=True, exist_ok=True)
    return out / WORK


#: Imported on every worker before the clock starts: a few seconds per worker process on first use
#: (scipy.signal, imported lazily by the SUVpeak code, alone takes about 2 s): start-up, not processing time.
_WARM_UP = ("cc3d", "nibabel", "pydicom", "scipy.ndimage", "scipy.signal", "scipy.spatial", "SimpleITK",
            "pofa.batch.job", "pofa.imaging.extract", "pofa.imaging.features", "pofa.imaging.registration")


def _visible(paths: list[str]) -> list[str]:
    """The paths a worker cannot see (run on each worker); imports :data:`_WARM_UP` first."""
    import importlib

    for name in _WARM_UP:
        importlib.import_module(name)
    return [p for p in paths if not os.path.exists(p)]


# ---------------------------------------------------------------------------------------------- the run
def run_batch(
    manifest: str | Path | Manifest,
    out: str | Path,
    *,
    patients: str | Path | None = None,
    threshold: str | float | None = None,
    settings: PipelineSettings | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    memory_limit: str | float | None = "auto",
    force: bool = False,
    retry_errors: bool = False,
    progress: bool = False,
    client: Any = None,
    on_outcome: Callable[[PatientOutcome], None] | None = None,
    retries: int = 2,
    fetch: FetchOptions | None = None,
) -> BatchResult:
    """Process every patient of a manifest on a Dask cluster and merge the results into ``<out>/study``.

    Parameters
    ----------
    manifest : path or Manifest
        The imaging manifest.
    out : path
        The batch folder (created; reused by a rerun, which skips the patients already done).
    patients, threshold : optional
        As in :func:`pofa.batch.manifest.read_manifest`.
    settings : PipelineSettings, optional
        Options of the pipeline (default ``PipelineSettings()``).
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); default: a local cluster.
    workers : int, optional
        Local cluster only: worker processes (one thread each). Default: the number of CPUs, at most the
        number of patients.
    memory_limit : str or float
        Local cluster only: memory per worker (``"4GB"``, bytes, or ``"auto"`` = total memory / workers). A
        worker above 95% of it is restarted and its patient retried.
    force : bool
        Recompute every patient (earlier work and study are removed).
    retry_errors : bool
        Recompute the patients whose scans failed before (by default an input error is reused while the inputs
        are unchanged).
    progress : bool
        Show a progress bar (rich) on stderr.
    client : distributed.Client, optional
        Use this client (and its cluster) instead of starting one; it is not closed.
    on_outcome : callable, optional
        Called in the driver with each :class:`PatientOutcome` as it arrives.
    retries : int
        Dask retries of a task that raised (tasks record patient errors themselves, so this covers transient
        failures such as a shared-disk hiccup).
    fetch : FetchOptions, optional
        How the workers fetch ``dicomweb:`` series (cache folder, TLS, timeout; docs/pacs.md). A series that
        cannot be fetched fails its patient only.

    Returns
    -------
    BatchResult
        Outcome of every patient and the study folder written.

    Raises
    ------
    ManifestError
        The manifest has errors (nothing is processed).
    PofaError
        The folder is in use or not a batch folder, workers cannot see the files, or the scheduler is lost.
    """
    st = settings if settings is not None else PipelineSettings()
    m = manifest if isinstance(manifest, Manifest) else load_manifest(manifest, patients, threshold)
    st = st.with_study_toml(m.path.parent).for_manifest(m)
    if not m.ok:
        raise ManifestError(m.report)
    plist = m.patients()
    out_dir = Path(out).absolute()
    work = _prepare(out_dir, force)
    with _lock(out_dir):
        if force:
            for name in (WORK, STUDY):
                shutil.rmtree(out_dir / name, ignore_errors=True)
            for name in (ERRORS_CSV, BATCH_JSON):
                (out_dir / name).unlink(missing_ok=True)
        (out_dir / STORED_CSV).unlink(missing_ok=True)  # an earlier run's record: this run stores anew or not
        work.mkdir(parents=True, exist_ok=True)
        clean_partial(work)
        jobs = {p.patient_id: PatientJob(p, st, str(work), retry_errors=retry_errors, fetch=fetch)
                for p in plist}
        with _client(client, scheduler, workers, memory_limit, len(plist)) as (cl, where):
            _check_workers(cl, [str(work), str(m.path.parent)])
            info = cl.scheduler_info(n_workers=-1).get("workers", {})
            n_workers = len(info)
            memory = sorted({int(w.get("memory_limit") or 0) for w in info.values()})
            t0 = time.perf_counter()
            outcomes = _run(cl, jobs, retries, progress, on_outcome)
            elapsed = time.perf_counter() - t0
        clean_partial(work)  # a worker killed while writing leaves a temporary folder: never counted, removed
        ordered = tuple(outcomes[p.patient_id] for p in plist)
        ok = [o for o in ordered if o.status is Status.OK]
        failed = [o for o in ordered if o.status is Status.ERROR]
        study: Path | None = None
        if ok:
            results = [load_result(jobs[o.patient_id].folder, o.key) for o in ok]
            study = write_study(m, results, out_dir / STUDY, settings=st,
                                keys={o.patient_id: o.key for o in ok},
                                excluded=[ExcludedPatient.of(o) for o in failed], force=True)
        else:
            shutil.rmtree(out_dir / STUDY, ignore_errors=True)
        write_text(out_dir / ERRORS_CSV, error_rows(ordered))
        result = BatchResult(out_dir, study, ordered, elapsed, n_workers, where, tuple(memory))
        write_text(out_dir / BATCH_JSON, json.dumps(_record(result, m, st), indent=1, allow_nan=False) + "\n")
    return result


@contextlib.contextmanager
def _client(client: Any, scheduler: str | None, workers: int | None, memory_limit: str | float | None,
            n_tasks: int) -> Iterator[tuple[Any, str]]:
    """The client to use: the caller's, one connected to ``scheduler``, or a new local cluster's."""
    if client is not None:
        yield client, str(getattr(client, "scheduler", None) and client.scheduler.address or "client")
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            cl = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise PofaError(f"cannot connect to the Dask scheduler at {scheduler}: {exc}; check the address "
                            "(e.g. tcp://host:8786) and that the scheduler runs") from None
        try:
            if not cl.scheduler_info().get("workers"):
                cl.wait_for_workers(1, timeout=120)
            yield cl, scheduler
        finally:
            cl.close()
        return
    n = workers if workers is not None else max(1, min(os.cpu_count() or 1, n_tasks))
    if n < 1:
        raise PofaError(f"the number of workers must be at least 1; got {n}", advice="check {workers}")
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, memory_limit=memory_limit,
                           dashboard_address=":0", silence_logs=logging.ERROR)
    try:
        with Client(cluster) as cl:
            yield cl, "local"
    finally:
        cluster.close()


def _check_workers(cl: Any, paths: list[str]) -> None:
    missing = cl.run(_visible, paths)
    blind = {w: p for w, p in missing.items() if p}
    if blind:
        w, p = next(iter(blind.items()))
        raise PofaError(f"worker {w} cannot see {', '.join(p)}",
                        advice="put the manifest's files and {out} on a file system every worker sees under "
                               "the same path")


def _run(cl: Any, jobs: dict[str, PatientJob], retries: int, progress: bool,
         on_outcome: Callable[[PatientOutcome], None] | None) -> dict[str, PatientOutcome]:
    """Submit one task per patient and collect the outcomes as they complete."""
    from distributed import as_completed

    run_id = uuid.uuid4().hex[:8]
    futures = {}
    for pid, job in jobs.items():
        fut = cl.submit(run_patient_job, job, key=f"pofa-{job.folder.name}-{run_id}", pure=False,
                        retries=retries)
        futures[fut] = pid
    outcomes: dict[str, PatientOutcome] = {}
    counts = {"processed": 0, "already done": 0, "failed": 0}
    with progress_bar(progress, len(jobs)) as advance:
        for fut in as_completed(list(futures)):
            pid = futures[fut]
            try:
                o = fut.result()
            except Exception as exc:  # noqa: BLE001 - KilledWorker, or a task that raised after its retries
                if cl.status not in ("running", "connecting"):
                    raise PofaError("the connection to the Dask scheduler was lost; run the same command "
                                    "again to resume (patients already done are kept)") from None
                o = record_worker_failure(jobs[pid], _worker_reason(exc))
            if pid in outcomes:
                raise PofaError(f"patient {pid!r} was reported twice by the cluster")  # pragma: no cover
            outcomes[pid] = o
            key = "failed" if o.status is Status.ERROR else ("already done" if o.reused else "processed")
            counts[key] += 1
            advance(", ".join(f"{v} {k}" for k, v in counts.items()))
            if on_outcome is not None:
                on_outcome(o)
    missing = set(jobs) - set(outcomes)
    if missing:  # pragma: no cover - as_completed yields every future
        raise PofaError(f"no outcome for patient(s) {sorted(missing)}; run the batch again to resume")
    return outcomes


def _worker_reason(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "KilledWorker":
        return ("the workers running this patient died repeatedly (out of memory, or a crash in a native "
                "library); try a larger memory limit per worker, or check the scans")
    return f"the task failed on the cluster: {name}: {exc}"


@contextlib.contextmanager
def progress_bar(show: bool, total: int) -> Iterator[Callable[[str], None]]:
    """A rich progress bar on stderr over ``total`` patients; yields ``advance(text)`` (one patient done).

    Parameters
    ----------
    show : bool
        Show the bar (otherwise the callback does nothing).
    total : int
        Number of patients.
    """
    if not show:
        yield lambda _text: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("[bold]patients"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), TextColumn("{task.description}"),
                  console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("", total=total)

        def advance(text: str) -> None:
            bar.update(task, advance=1, description=text)

        yield advance


def _record(result: BatchResult, m: Manifest, st: PipelineSettings) -> dict[str, Any]:
    """batch.json: the run's versions, inputs, settings, cluster and per-patient outcomes."""
    import importlib.metadata as md

    versions = {"pofa": __version__}
    for pkg in ("dask", "distributed", "numpy", "SimpleITK", "nibabel", "pydicom"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = "not installed"
    computed = result.n_computed + len([o for o in result.errors if not o.reused])
    return {
        "tool": "pofa batch",
        "versions": versions,
        "manifest": str(m.path),
        "manifest_sha256": m.sha256(),
        "patients_table": str(m.patients_path),
        "default_threshold": m.default_threshold,
        "settings": st.to_json(),
        "scheduler": result.scheduler,
        "workers": result.n_workers,
        "worker_memory_limit_bytes": list(result.memory_limits),
        "elapsed_s": round(result.elapsed_s, 3),
        "patients_per_s": round(computed / result.elapsed_s, 4) if result.elapsed_s > 0 else None,
        "counts": {"patients": result.n_patients, "processed": result.n_computed,
                   "already_done": result.n_reused, "failed": len(result.errors)},
        "study": None if result.study is None else STUDY,
        "outcomes": [{"patient_id": o.patient_id, "status": o.status.value, "reused": o.reused, "key": o.key,
                      "error_kind": None if o.error_kind is None else o.error_kind.value, "stage": o.stage,
                      "reason": o.reason, "elapsed_s": o.elapsed_s, "host": o.host} for o in result.outcomes],
    }

