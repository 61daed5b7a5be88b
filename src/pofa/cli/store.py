"""``--store-results URL`` of ``pofa batch``, ``pofa build-study`` and ``pofa analyze MANIFEST.csv``.

After the patients are processed, each one's lesions are stored on the DICOMweb server as DICOM SEG
objects (:func:`pofa.batch.writeback.store_results`: one per scan, referencing its PET series). A patient
whose SEG cannot be built or stored is listed (sequence number, id, scan, PET series, reason); the others are
stored, and the command ends with exit code 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from pofa.batch.job import PatientOutcome
    from pofa.batch.manifest import Manifest
    from pofa.pacs.fetch import FetchOptions

__all__ = ["StoreResults", "check_store_url", "store_and_report"]

StoreResults = Annotated[str | None, typer.Option(
    "--store-results", metavar="URL",
    help="DICOMweb root (e.g. https://pacs.example.org/dicom-web) to store each patient's lesions on, as a "
         "DICOM SEG per scan referencing its PET series (STOW-RS). Credentials from POFA_DICOMWEB_USER/"
         "POFA_DICOMWEB_PASSWORD, POFA_DICOMWEB_TOKEN or ~/.netrc, never from the URL (docs/pacs.md).")]


def check_store_url(url: str | None) -> str | None:
    """Check ``--store-results`` before any work: the pacs extra is installed and the URL is acceptable.

    Parameters
    ----------
    url : str or None
        The option's value.

    Returns
    -------
    str or None
        The normalised URL (None without the option).

    Raises
    ------
    typer.Exit
        With code 2 and the ``pip install`` line, when the ``pacs`` extra is not installed.
    pofa.pacs.errors.PacsConfigError
        When the URL is refused (credentials in it, not http/https).
    """
    if url is None:
        return None
    from pofa.cli.extras import require

    require("pacs", command="--store-results")
    from pofa.pacs.client import normalise_url

    return normalise_url(url)


def store_and_report(url: str, manifest: Manifest, outcomes: Sequence[PatientOutcome], work: Path,
                     fetch: FetchOptions | None = None, record: Path | None = None) -> bool:
    """Store the processed patients' SEG objects and print what happened.

    Parameters
    ----------
    url : str
        The DICOMweb root.
    manifest : Manifest
        The imaging manifest.
    outcomes : sequence of PatientOutcome
        The patients' outcomes.
    work : pathlib.Path
        The work folder with the patients' results and label maps.
    fetch : FetchOptions or None, optional
        The run's fetch options (``--cache``, ``--insecure``, ``--pacs-timeout``): also used to connect.
    record : pathlib.Path or None, optional
        Where to write the per-scan records as CSV (``pofa batch``: ``OUT/stored.csv``).

    Returns
    -------
    bool
        True when nothing failed.
    """
    from pofa.atomic import write_text
    from pofa.batch.writeback import StoredSeg, store_results
    from pofa.cli.output import console, err_console, error_message
    from pofa.errors import PofaError

    def show(recs: list[StoredSeg]) -> None:
        for r in recs:
            if r.status == "failed":
                err_console.print(f"  {r.line()}", markup=False, highlight=False, soft_wrap=True)

    try:
        with console.status(f"Storing the lesions on {url} ..."):
            report = store_results(url, manifest, outcomes, work, fetch=fetch, on_patient=show)
    except PofaError as exc:
        err_console.print(f"error: the lesions were not stored: {error_message(exc)}", markup=False)
        return False
    if record is not None:
        write_text(record, report.csv_text())
    console.print(report.summary(), markup=False, soft_wrap=True)
    if report.failed:
        err_console.print(f"{len(report.failed)} SEG(s) could not be stored (listed above"
                          + (f"; also in {record}" if record is not None else "")
                          + "); the other patients' lesions were stored.", markup=False, soft_wrap=True)
    return not report.failed
