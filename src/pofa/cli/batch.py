"""``pofa batch`` and ``pofa build-study``: command-line wrappers over the batch runner and study builder.

They wrap :func:`pofa.batch.runner.run_batch` and :func:`pofa.batch.study.build_study_from_manifest`, and are
registered in :mod:`pofa.cli` (``app.command("batch")(batch_command)``,
``app.command("build-study")(build_study_command)``). Importing this module is light: Dask, SimpleITK and the
imaging code are imported only when a command runs. Manifest errors are printed as a table (file, row, column,
problem, what to do); other errors are :class:`~pofa.errors.PofaError` messages, which the CLI prints without
a traceback.

Exit codes: 0 everything done; 1 done with problems (``batch``: some patients failed and were left out of the
study; ``build-study``: the study was written but does not validate, e.g. blank sites without organ maps);
2 nothing done (bad manifest, bad options, a failed patient without ``--skip-errors``).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pofa.cli.pacs import Cache, Insecure, PacsTimeout, fetch_options, require_pacs
from pofa.cli.store import StoreResults, check_store_url, store_and_report

if TYPE_CHECKING:
    from pofa.batch.manifest import Manifest
    from pofa.batch.pipeline import PipelineSettings

__all__ = ["batch_command", "build_study_command"]

_MANIFEST_HELP = ("Imaging manifest (CSV: patient_id, role, scan_date, pet [, ct, mask, organs, threshold, "
                  "transform]; role baseline, followup or failure); patients.csv beside it holds the "
                  "clinical dates. With followup scans the study also gets the measurements, scans and "
                  "tracks tables (docs/batch.md, docs/response.md).")

Threshold = Annotated[str | None, typer.Option(
    "--threshold", help="Segmentation rule for rows with no mask and no threshold of their own: suv4 | "
                        "suv2.5 | 41pct | percist | a number (SUV >= number).")]
Patients = Annotated[Path | None, typer.Option(
    "--patients", help="Patients table (study format CSV); default: patients.csv beside the manifest.")]
Suv = Annotated[str, typer.Option("--suv", help="SUV normalisation: bw | lbm-james | lbm-janmahasatian.")]
MinVolume = Annotated[float, typer.Option("--min-volume-ml", min=0.0,
                                          help="Drop lesions smaller than this (ml).")]
Deformable = Annotated[bool, typer.Option("--deformable", help="Add a B-spline stage to the registration.")]
Tolerance = Annotated[float, typer.Option(
    "--tolerance-mm", min=0.0,
    help="A follow-up lesion overlapping a baseline lesion grown by this is local.")]
Margin = Annotated[float, typer.Option(
    "--margin-mm", min=0.0,
    help="Within this distance of a baseline lesion (and not local) a lesion is marginal.")]
Force = Annotated[bool, typer.Option("--force", help="Recompute everything / replace an --out folder pofa "
                                                     "wrote (a folder pofa did not write is refused).")]


def _settings(
    suv: str, min_volume_ml: float, deformable: bool, tolerance_mm: float, margin_mm: float
) -> PipelineSettings:
    from pofa.batch.pipeline import PipelineSettings

    return PipelineSettings(suv=suv, min_volume_ml=min_volume_ml, deformable=deformable,
                            local_tolerance_mm=tolerance_mm, marginal_margin_mm=margin_mm)


def _print_error(message: str) -> None:
    """An error message as plain text (paths and ids may hold brackets that are not rich markup)."""
    from rich.text import Text

    from pofa.cli.output import err_console

    err_console.print(Text.assemble(("error:", "bold red"), " ", message))


def _print_manifest_warnings(manifest: Manifest) -> None:
    """The manifest's warnings (it has no errors here), as a table."""
    from pofa.cli.output import print_report

    if manifest.report.warnings:
        print_report(manifest.report, 20)


def _print_manifest_errors(exc: Exception) -> None:
    from pofa.cli.output import err_console, print_report

    report = getattr(exc, "report", None)
    if report is not None:
        print_report(report, 100)
    err_console.print("The manifest has errors, so nothing was processed. Fix them and run the command "
                      "again.")


def batch_command(
    manifest: Annotated[Path, typer.Argument(help=_MANIFEST_HELP)],
    out: Annotated[Path, typer.Option("--out", help="Batch folder: study/, work/, errors.csv, batch.json. "
                                                     "A rerun resumes: patients already done are skipped.")],
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler",
        help="Address of a running Dask scheduler (tcp://host:8786); default: a local cluster.")]
    = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1,
        help="Local cluster: worker processes, one thread each (default: CPU count).")] = None,
    memory_limit: Annotated[str, typer.Option(
        "--memory-limit", help="Local cluster: memory per worker, e.g. 4GB (default auto = RAM / workers).")]
    = "auto",
    threshold: Threshold = None,
    patients: Patients = None,
    force: Force = False,
    retry_errors: Annotated[bool, typer.Option(
        "--retry-errors", help="Retry patients whose scans failed in an earlier run (else kept while the "
                               "inputs are unchanged).")] = False,
    suv: Suv = "bw",
    min_volume_ml: MinVolume = 0.0,
    deformable: Deformable = False,
    tolerance_mm: Tolerance = 0.0,
    margin_mm: Margin = 10.0,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    cache: Cache = None,
    insecure: Insecure = False,
    pacs_timeout: PacsTimeout = 60.0,
    store_results: StoreResults = None,
) -> None:
    """Extract lesions and match failures for every patient of an imaging manifest on a Dask cluster.

    Each patient is one task; a broken scan is recorded in errors.csv with its reason and the rest completes.
    Results are merged into OUT/study, a study folder for pofa analyze.
    """
    from pofa.cli.extras import require

    require("imaging", "cluster", command="pofa batch")
    from pofa.batch.manifest import ManifestError, load_manifest
    from pofa.batch.runner import STORED_CSV, run_batch
    from pofa.cli.output import console, err_console, error_message
    from pofa.errors import PofaError

    if scheduler is not None and workers is not None:
        _print_error("give either --scheduler (a running cluster) or --workers (a local cluster), not both")
        raise typer.Exit(2)
    try:
        store_url = check_store_url(store_results)
        m = load_manifest(manifest, patients, threshold)
        _print_manifest_warnings(m)
        require_pacs(m, "pofa batch")
        fetch = fetch_options(cache, insecure, pacs_timeout)
        result = run_batch(m, out, fetch=fetch,
                           settings=_settings(suv, min_volume_ml, deformable, tolerance_mm, margin_mm),
                           scheduler=scheduler, workers=workers,
                           memory_limit=None if memory_limit.lower() in ("none", "0") else memory_limit,
                           force=force, retry_errors=retry_errors, progress=progress)
    except ManifestError as exc:
        _print_manifest_errors(exc)
        raise typer.Exit(2) from None
    except PofaError as exc:
        _print_error(error_message(exc))
        raise typer.Exit(2) from None
    console.print(result.summary(), soft_wrap=True, markup=False)
    if result.errors:
        err_console.print(f"{len(result.errors)} patient(s) failed and are not in the study; reasons in "
                          f"{result.out / 'errors.csv'}. Fix the scans and run the same command again (only "
                          "changed patients are recomputed; --retry-errors retries the rest).", markup=False)
        for o in result.errors[:10]:
            err_console.print(f"  {o.patient_id}: {o.stage}: {o.reason}", markup=False, highlight=False)
    invalid = False
    if result.study is not None:
        from pofa.study import load_study

        report = load_study(result.study).validate()
        if report.errors:
            invalid = True
            err_console.print(f"The study has {len(report.errors)} validation error(s) (e.g. blank "
                              "site/extranodal where no organ map was given): run pofa validate "
                              f"{result.study} and fix them before pofa analyze.", markup=False)
    stored = True
    if store_url is not None and result.study is not None:
        stored = store_and_report(store_url, m, result.outcomes, result.out / "work", fetch,
                                  record=result.out / STORED_CSV)
    if result.errors or invalid or not stored:
        raise typer.Exit(1 if result.study is not None else 2)


def build_study_command(
    manifest: Annotated[Path, typer.Argument(help=_MANIFEST_HELP)],
    out: Annotated[Path, typer.Option("--out", help="Study folder to write (patients.csv, lesions.csv, "
                                                     "failures.csv, study.toml, imaging.json).")],
    threshold: Threshold = None,
    patients: Patients = None,
    force: Force = False,
    skip_errors: Annotated[bool, typer.Option(
        "--skip-errors",
        help="Leave out patients whose scans fail (listed in imaging.json) instead of stopping.")]
    = False,
    work: Annotated[Path | None, typer.Option(
        "--work", help="Keep per-patient results here and reuse them on the next run (as pofa batch does).")]
    = None,
    suv: Suv = "bw",
    min_volume_ml: MinVolume = 0.0,
    deformable: Deformable = False,
    tolerance_mm: Tolerance = 0.0,
    margin_mm: Margin = 10.0,
    cache: Cache = None,
    insecure: Insecure = False,
    pacs_timeout: PacsTimeout = 60.0,
    store_results: StoreResults = None,
) -> None:
    """Build a study folder from an imaging manifest in this process (no cluster): lesions and failures from
    the images, patients from patients.csv. Same numbers as pofa batch."""
    from pofa.cli.extras import require

    require("imaging", command="pofa build-study")
    from pofa.batch.cache import Status
    from pofa.batch.job import PatientOutcome
    from pofa.batch.manifest import ManifestError, load_manifest
    from pofa.batch.runner import progress_bar
    from pofa.batch.study import IMAGING_JSON, build_study_from_manifest
    from pofa.cli.output import console, err_console, error_message, print_report
    from pofa.errors import PofaError
    from pofa.study import load_study

    outcomes: list[PatientOutcome] = []
    with contextlib.ExitStack() as stack:
        try:
            store_url = check_store_url(store_results)
            if store_url is not None and work is None:  # the label maps must outlive the build
                work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pofa-work-")))
            m = load_manifest(manifest, patients, threshold)
            _print_manifest_warnings(m)
            require_pacs(m, "pofa build-study")
            fetch = fetch_options(cache, insecure, pacs_timeout)
            with progress_bar(True, len(m.patients())) as advance:
                counts = {"processed": 0, "already done": 0, "failed": 0}

                def step(o: PatientOutcome) -> None:
                    outcomes.append(o)
                    key = "failed" if o.status is Status.ERROR else ("already done" if o.reused else
                                                                     "processed")
                    counts[key] += 1
                    advance(", ".join(f"{v} {k}" for k, v in counts.items()))

                folder = build_study_from_manifest(
                    m, out, settings=_settings(suv, min_volume_ml, deformable, tolerance_mm, margin_mm),
                    force=force, skip_errors=skip_errors, work=work, on_outcome=step, fetch=fetch)
        except ManifestError as exc:
            _print_manifest_errors(exc)
            raise typer.Exit(2) from None
        except PofaError as exc:
            _print_error(error_message(exc))
            raise typer.Exit(2) from None
        stored = True
        if store_url is not None and work is not None:
            stored = store_and_report(store_url, m, outcomes, work, fetch)
    console.print(f"Study written to {folder}", markup=False, soft_wrap=True)
    excluded = json.loads((folder / IMAGING_JSON).read_text(encoding="utf-8")).get("excluded", [])
    if excluded:
        err_console.print(f"{len(excluded)} patient(s) left out (--skip-errors; listed in {IMAGING_JSON}):",
                          markup=False)
        for e in excluded[:10]:
            err_console.print(f"  {e['patient_id']}: {e['stage']}: {e['reason']}", markup=False,
                              highlight=False)
    report = load_study(folder).validate()
    if report.errors:
        print_report(report, 50)
        err_console.print("The study was written but has errors (e.g. blank site/extranodal where no organ "
                          "map was given); fix them in the study's tables before pofa analyze.",
                          markup=False)
        raise typer.Exit(1)
    if not stored:
        raise typer.Exit(1)
