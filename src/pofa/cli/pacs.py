"""``pofa pacs find`` and the PACS options of ``build-study``, ``batch`` and ``analyze`` (``--cache``, ...).

Registered in :mod:`pofa.cli` as the sub-group ``pacs`` (``app.add_typer(pacs_app, name="pacs")``). Importing
this module is light: dicomweb-client and requests are imported only when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pofa.cli.group import PofaGroup

if TYPE_CHECKING:
    from pofa.batch.manifest import Manifest
    from pofa.pacs.fetch import FetchOptions

__all__ = ["Cache", "Insecure", "PacsTimeout", "fetch_options", "find_command", "pacs_app", "require_pacs"]

pacs_app = typer.Typer(cls=PofaGroup, help="A PACS through DICOMweb: find PET/CT series, write a manifest "
                                           "(docs/pacs.md).", no_args_is_help=True)

Cache = Annotated[Path | None, typer.Option(
    "--cache", help="Folder for series fetched from a PACS (dicomweb: references in the manifest), kept "
                    "between runs; default $XDG_CACHE_HOME/pofa/dicomweb (~/.cache/pofa/dicomweb).")]
Insecure = Annotated[bool, typer.Option(
    "--insecure", help="Do NOT verify the PACS's TLS certificate (test servers only; prints a warning).")]
PacsTimeout = Annotated[float, typer.Option(
    "--pacs-timeout", min=0.1, help="Seconds to wait for the PACS to connect and to answer (each request "
                                    "is retried with back-off).")]

_TLS_OFF = ("WARNING: TLS certificate verification is OFF (--insecure): anyone on the network path can read "
            "and change what is sent and received, credentials and patient data included.")


def _warn_insecure() -> None:
    from pofa.cli.output import err_console

    err_console.print(_TLS_OFF, style="bold red", markup=False)


def fetch_options(cache: Path | None, insecure: bool, timeout: float) -> FetchOptions:
    """Return the fetch options of the command-line flags (and warn loudly when TLS is off).

    Parameters
    ----------
    cache : pathlib.Path or None
        ``--cache``.
    insecure : bool
        ``--insecure``.
    timeout : float
        ``--pacs-timeout``.

    Returns
    -------
    FetchOptions
        The options for :func:`pofa.pacs.fetch.fetch_series`.
    """
    from pofa.pacs.fetch import FetchOptions

    if insecure:
        _warn_insecure()
    return FetchOptions(cache=str(cache.expanduser().absolute()) if cache is not None else None,
                        verify_tls=not insecure, timeout=timeout)


def require_pacs(manifest: Manifest, command: str) -> None:
    """Check that the ``pacs`` extra is installed when the manifest holds ``dicomweb:`` references.

    Parameters
    ----------
    manifest : Manifest
        The manifest read.
    command : str
        The command, for the message.
    """
    from pofa.batch.manifest import REFERENCE_COLUMNS
    from pofa.cli.extras import require
    from pofa.pacs.reference import is_reference

    if any(is_reference(getattr(s, c)) for s in manifest.scans for c in REFERENCE_COLUMNS):
        require("pacs", command=command)


@pacs_app.command("find")
def find_command(
    url: Annotated[str, typer.Option("--url", help="The server's DICOMweb root, e.g. "
                                                   "https://pacs.example.org/dicom-web (no credentials: "
                                                   "POFA_DICOMWEB_USER/PASSWORD, POFA_DICOMWEB_TOKEN or "
                                                   "~/.netrc).")],
    out: Annotated[Path, typer.Option("--out", help="The imaging manifest to write (CSV).")],
    patient: Annotated[str | None, typer.Option("--patient", help="Only this PatientID (* and ? match "
                                                                  "any text / character).")] = None,
    modality: Annotated[list[str] | None, typer.Option(
        "--modality", help="PT or CT; repeat for both (default: both: one row per PET series, with its "
                           "study's CT).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only studies from this date on "
                                                              "(YYYY-MM-DD).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out file.")] = False,
    insecure: Insecure = False,
    timeout: PacsTimeout = 60.0,
) -> None:
    """Find PET/CT series on a DICOMweb server (QIDO-RS) and write an imaging manifest to edit.

    One row per PET series: patient_id, scan_date (the study date), pet and ct as dicomweb: references.
    Fill in role (baseline or failure), organs and threshold, and check the dates, before pofa build-study
    or batch. The manifest holds patient ids and dates: keep it with the clinical data, do not share it.
    """
    from pofa.cli.extras import require

    require("pacs", command="pofa pacs find")
    from pofa.atomic import write_text
    from pofa.cli.output import console, err_console, error_message, fail
    from pofa.errors import PofaError
    from pofa.pacs.find import FOUND_MODALITIES, find_series, manifest_rows, manifest_text

    if out.exists() and not force:
        raise fail(f"{out} exists; give another --out or --force to replace it")
    if insecure:
        _warn_insecure()
    try:
        found, n_studies = find_series(url, patient=patient, modalities=modality or FOUND_MODALITIES,
                                       since=since, verify_tls=not insecure, timeout=timeout)
        result = manifest_rows(url, found)
        write_text(out.absolute(), manifest_text(result.rows))
    except PofaError as exc:
        raise fail(error_message(exc)) from None
    console.print(f"{n_studies} studies, {result.pet_series} PET and {result.ct_series} CT series: "
                  f"{len(result.rows)} manifest rows written to {out}", markup=False, soft_wrap=True)
    for note in result.notes:
        err_console.print(f"  {note}", markup=False, highlight=False)
    console.print("Next: fill in role (baseline / failure), organs and threshold, check scan_date, put "
                  "patients.csv beside it; the file holds patient ids and dates: do not share it.",
                  markup=False)
