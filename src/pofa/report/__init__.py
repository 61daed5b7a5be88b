"""The report: one self-contained HTML file with publication figures and tables, plus manifest.json.

Entry points::

    from pofa.report import write_report
    write_report(result, "out_dir")   # report.html, figures/, tables/, manifest.json, results.json

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
) -> ReportFiles:
    """Write report.html, figures/, tables/ and manifest.json (see :func:`pofa.report.html.write_report`)."""
    from pofa.report.html import write_report as _write

    return _write(
        result_like,
        out_dir,
        show_ids=show_ids,
        versions=versions,
        manifest=manifest,
        write_results=write_results,
    )


def report_writer(result: Any, folder: Path) -> list[str]:
    """Writer for :func:`pofa.analysis.write_outputs` (see :func:`pofa.report.html.report_writer`)."""
    from pofa.report.html import report_writer as _writer

    return _writer(result, folder)


def write_run_manifest(
    result_like: Any, out_dir: Any, *, show_ids: bool | None = None, versions: Any = None
) -> Path:
    """manifest.json of an output folder, written last (see :func:`pofa.report.html.write_run_manifest`)."""
    from pofa.report.html import write_run_manifest as _manifest

    return _manifest(result_like, out_dir, show_ids=show_ids, versions=versions)


def __getattr__(name: str) -> Any:
    if name == "ReportFiles":
        from pofa.report.html import ReportFiles

        return ReportFiles
    raise AttributeError(name)
