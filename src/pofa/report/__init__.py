"""The report: one self-contained HTML file with publication figures and tables, plus manifest.json.

Entry points::

    from pofa.report import write_report
    write_report(result, "out_dir")   # report.html, figures/ (SVG), tables/, manifest.json, results.json

``result`` is a :class:`pofa.analysis.AnalysisResult` or a :class:`ReportInput` (:mod:`pofa.report.model`, the
documented input shape: the typed results, the results.json document and the patient and lesion tables).
Inside
:func:`pofa.analysis.write_outputs`, add :func:`report_writer` to the writers and call
:func:`write_run_manifest` after results.json is written. matplotlib is imported only when figures are drawn,
never by ``import pofa`` or ``import pofa.report``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pofa.report.model import ReportError, ReportInput, as_report_input

if TYPE_CHECKING:
    from pathlib import Path

    from pofa.report.html import ReportFiles

__all__ = [
    "ReportError",
    "ReportFiles",
    "ReportInput",
    "as_report_input",
    "report_writer",
    "write_report",
    "write_run_manifest",
]


def write_report(
    result_like: Any,
    out_dir: Any,
    *,
    show_ids: bool | None = None,
    versions: Any = None,
    manifest: bool = True,
    write_results: bool = True,
    png: bool | None = None,
) -> ReportFiles:
    """Write report.html, figures/, tables/ and manifest.json (see :func:`pofa.report.html.write_report`).

    Parameters
    ----------
    result_like : Any
        What to report: a :class:`ReportInput` or an analysis result (see :func:`as_report_input`).
    out_dir : str or Path
        Output folder (created if needed).
    show_ids : bool, optional
        Label patients by their study identifiers instead of sequence numbers (default: the result's or
        the settings' choice).
    versions : Mapping[str, str], optional
        Software versions to record (default: those installed).
    manifest : bool
        Write manifest.json last, listing and hashing every file of the folder.
    write_results : bool
        Write results.json from the results given when the folder has none.
    png : bool, optional
        Also write each figure as a 300-dpi PNG beside its SVG (default: the settings' ``[report] png``,
        false).

    Returns
    -------
    ReportFiles
        The paths written.
    """
    from pofa.report.html import write_report as _write

    return _write(
        result_like,
        out_dir,
        show_ids=show_ids,
        versions=versions,
        manifest=manifest,
        write_results=write_results,
        png=png,
    )


def report_writer(result: Any, folder: Path) -> list[str]:
    """Write the report as a writer of :func:`pofa.analysis.write_outputs`.

    See :func:`pofa.report.html.report_writer`: results.json and manifest.json are not written.

    Parameters
    ----------
    result : Any
        The analysis result.
    folder : Path
        The output folder.

    Returns
    -------
    list of str
        The files written, relative to ``folder``.
    """
    from pofa.report.html import report_writer as _writer

    return _writer(result, folder)


def write_run_manifest(
    result_like: Any, out_dir: Any, *, show_ids: bool | None = None, versions: Any = None
) -> Path:
    """Write manifest.json of an output folder, last (see :func:`pofa.report.html.write_run_manifest`).

    Parameters
    ----------
    result_like : Any
        The analysis result (anything :func:`as_report_input` accepts).
    out_dir : str or Path
        The output folder whose files are listed and hashed.
    show_ids : bool, optional
        Whether patients were labelled by their identifiers (default: the result's or the settings' choice).
    versions : Mapping[str, str], optional
        Software versions to record (default: those installed).

    Returns
    -------
    Path
        The path of manifest.json.
    """
    from pofa.report.html import write_run_manifest as _manifest

    return _manifest(result_like, out_dir, show_ids=show_ids, versions=versions)


def __getattr__(name: str) -> Any:
    if name == "ReportFiles":
        from pofa.report.html import ReportFiles

        return ReportFiles
    raise AttributeError(name)
