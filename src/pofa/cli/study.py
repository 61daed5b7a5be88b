"""``pofa validate``, ``pofa analyze`` and ``pofa demo``: a study folder (or imaging manifest) to a report.

Heavy libraries are imported inside the commands so that ``pofa --help`` stays quick.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from pofa.cli.output import (
    FindingsFormat,
    StepProgress,
    console,
    err_console,
    error_message,
    fail,
    print_report,
)
from pofa.cli.pacs import Cache, Insecure, PacsTimeout, fetch_options
from pofa.cli.store import StoreResults
from pofa.errors import PofaError

if TYPE_CHECKING:
    from pofa.analysis import AnalysisResult


def validate_command(
    study: Annotated[Path, typer.Argument(help="Study folder (CSV/Parquet tables) or Excel workbook.")],
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as errors (exit 2).")] = False,
    fmt: Annotated[FindingsFormat | None, typer.Option(
        "--format", case_sensitive=False,
        help="table (the default on a terminal), text (one finding per line, the default when the output "
             "is not a terminal) or json.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
    limit: Annotated[int, typer.Option(min=0,
                                       help="Show at most this many findings (table and text).")] = 500,
) -> None:
    """Check a study and report every problem at once (exit 0 valid, 1 warnings only, 2 errors).

    Writes nothing and never modifies the study. The format is described in docs/study-format.md.
    """
    from pofa.validation_stream import validate_study

    if as_json:
        if fmt not in (None, FindingsFormat.JSON):
            raise fail(f"--json and --format {fmt.value} contradict each other; give one of them")
        fmt = FindingsFormat.JSON
    report = validate_study(study)
    print_report(report, limit, fmt, strict)
    if fmt is not FindingsFormat.JSON:
        if report.errors:
            err_console.print("Fix the errors above, then run pofa validate again.")
        elif report.warnings and strict:
            err_console.print("--strict: the warnings above count as errors.")
    raise typer.Exit(report.exit_code(strict))


def print_patterns(result: AnalysisResult) -> None:
    """Print the pattern counts as a table (percentages of the recurrent patients), titled by the study.

    Parameters
    ----------
    result : AnalysisResult
        The analysis whose :attr:`~pofa.analysis.AnalysisResult.patterns` are printed.
    """
    from rich.text import Text

    c = result.patterns
    table = Table(title=Text(f"Patterns of failure at first progression: {result.study_name}"),
                  title_justify="left")
    table.add_column("")
    table.add_column("n", justify="right")
    table.add_column("%", justify="right")

    def pct(n: int) -> str:
        return f"{100 * n / c.recurred:.0f}%" if c.recurred else ""

    table.add_row("patients", str(c.patients), "")
    table.add_row("baseline lesions", str(c.lesions), "")
    table.add_row("baseline lesions with local failure (% of lesions)", str(c.local_failure_lesions),
                  f"{100 * c.local_failure_lesions / c.lesions:.0f}%" if c.lesions else "")
    table.add_row("recurred (% of patients)", str(c.recurred),
                  f"{100 * c.recurred / c.patients:.0f}%" if c.patients else "")
    table.add_row("[italic]of the recurred:[/]", "", "")
    table.add_row("  local component", str(c.local_component), pct(c.local_component))
    table.add_row("    strictly local", str(c.strictly_local), pct(c.strictly_local))
    table.add_row("    mixed", str(c.mixed), pct(c.mixed))
    table.add_row("  strictly de novo", str(c.strictly_de_novo), pct(c.strictly_de_novo))
    table.add_row("  unknown (no failure rows in the window)", str(c.unknown), pct(c.unknown))
    table.add_row("  maintained control", str(c.maintained_control), pct(c.maintained_control))
    console.print(table)


def run_analyze(study: Path, out: Path, force: bool, show_dates: bool, show_ids: bool = False,
                extra_writers: tuple[Any, ...] = (), fetch: Any = None,
                store_results: str | None = None, keep_study: Path | None = None, png: bool = False) -> int:
    """Validate, analyse and write a study (or build it first from an imaging manifest).

    Parameters
    ----------
    study : pathlib.Path
        Study folder, Excel workbook, or an imaging manifest (.csv).
    out : pathlib.Path
        The output folder.
    force : bool
        Replace a non-empty output folder that pofa wrote.
    show_dates : bool
        Keep calendar dates in the output tables.
    show_ids : bool
        Show patient ids in the report (default: sequence numbers).
    extra_writers : tuple of Any
        Writers run after the default ones (e.g. the PDF report).
    fetch : pofa.pacs.fetch.FetchOptions, optional
        How an imaging manifest's ``dicomweb:`` series are fetched (default: the user's cache folder).
    store_results : str or None, optional
        An imaging manifest only: the DICOMweb root to store each patient's lesions on as DICOM SEG.
    keep_study : pathlib.Path, optional
        For an imaging manifest: write the study built from the images to this folder (it holds patient
        ids and dates, so it is never written into ``out``).
    png : bool
        Also write each figure as a 300-dpi PNG (as ``[report] png = true``; recorded so in results.json's
        settings). Default: the study's setting.

    Returns
    -------
    int
        The exit code: 0 on success, 1 when lesions could not be stored, 2 with nothing written on an
        invalid study.
    """
    from rich.text import Text

    from pofa.analysis import WRITERS, AnalysisOptions, run_analysis, write_outputs
    from pofa.atomic import check_output_dir, is_pofa_output
    from pofa.study import load_study

    try:
        target, source = out.resolve(), study.resolve()
        if target == source or target in source.parents:
            raise PofaError(f"the output folder {out} holds the study itself; choose another --out")
        check_output_dir(out.absolute(), force, recognise=is_pofa_output)
        if study.is_file() and study.suffix.lower() == ".csv":
            from pofa.cli.extras import require
            from pofa.cli.store import check_store_url

            require("imaging", command="pofa analyze MANIFEST.csv")
            return _analyze_manifest(study, out, force, show_dates, show_ids, keep_study, extra_writers,
                                     fetch, check_store_url(store_results), png)
        if store_results is not None:
            raise PofaError("--store-results needs an imaging manifest (the lesions come from its scans); "
                            f"{study} is a study folder")
        if keep_study is not None:
            raise PofaError("--keep-study is for an imaging manifest (MANIFEST.csv); a study folder is "
                            "already kept")
        with StepProgress("Reading the study") as progress:
            progress("load")
            loaded = load_study(study)
            progress("validate")
            report = loaded.validate()
        if report.errors:
            print_report(report, 50)
            err_console.print("The study has errors, so nothing was written. Fix them (pofa validate lists "
                              "them all), then run pofa analyze again.")
            return 2
        if report.warnings:
            console.print(Text.assemble((f"{len(report.warnings)} warning(s)", "yellow"),
                                        f": run 'pofa validate {study}' to see them."))
        with StepProgress("Analysing") as progress:
            result = run_analysis(loaded, AnalysisOptions(show_dates=show_dates, show_ids=show_ids or None),
                                  progress=progress)
            if png:
                result = _with_png(result)
            folder = write_outputs(result, out, force, writers=(*WRITERS, *extra_writers), progress=progress)
    except PofaError as exc:
        raise fail(error_message(exc)) from None
    print_patterns(result)
    notes = result.classification.notes
    if notes:
        console.print(f"{len(notes)} classification note(s) to review (results.json, classification.notes).")
    files = ", ".join(sorted(p.name for p in folder.iterdir()))
    console.print(Text.assemble("Results written to ", (str(folder), "bold"), f": {files}"), soft_wrap=True)
    if (folder / "report.html").is_file():
        console.print(Text.assemble("Report: ", (str(folder / "report.html"), "bold")), soft_wrap=True)
    if not show_dates:
        console.print("The tables hold no calendar dates (days from the index date instead; --show-dates "
                      "keeps them).")
    return 0


def _with_png(result: AnalysisResult) -> AnalysisResult:
    """The result with ``[report] png = true`` in its settings: the report writes each figure's PNG too (and
    results.json's settings say so)."""
    from dataclasses import replace

    settings = result.settings
    return replace(result, settings=replace(settings, report=replace(settings.report, png=True)))


def _analyze_manifest(manifest: Path, out: Path, force: bool, show_dates: bool, show_ids: bool,
                      keep_study: Path | None = None, extra_writers: tuple[Any, ...] = (),
                      fetch: Any = None, store_url: str | None = None, png: bool = False) -> int:
    """``pofa analyze MANIFEST.csv``: build the study from the images, analyse it.

    The built study holds the patients' ids and calendar dates, so it is built in a private temporary
    folder (removed afterwards) and never copied into ``out``; ``keep_study`` writes it to a folder of its
    own instead (as ``pofa build-study`` does). With ``store_url`` each patient's lesions are also stored
    there as DICOM SEG.
    """
    import os
    import shutil
    import tempfile

    from pofa.atomic import PARTIAL_MARKER, check_output_dir, clean_leftovers
    from pofa.batch.job import PatientOutcome
    from pofa.batch.manifest import ManifestError, load_manifest
    from pofa.batch.study import build_study_from_manifest
    from pofa.cli.pacs import require_pacs

    if keep_study is not None:
        kept, results = keep_study.resolve(), out.resolve()
        if kept == results or results in kept.parents or kept in results.parents:
            raise PofaError(f"--keep-study {keep_study} and --out {out} overlap: the built study holds "
                            "patient ids and dates, and is never written into the results; give two separate "
                            "folders")
        check_output_dir(keep_study.absolute(), force)
    console.print(f"{manifest.name} is a CSV file: reading it as an imaging manifest (docs/batch.md).",
                  markup=False)
    # The private folder is a hidden sibling of --out marked with this process: if the run is killed, the
    # next run into --out removes it (pofa.atomic.clean_leftovers), as it removes a partial output.
    target = out.absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(target)
    tmp = tempfile.mkdtemp(prefix=f".{target.name}.build-", suffix=".partial", dir=target.parent)
    try:
        (Path(tmp) / PARTIAL_MARKER).write_text(f"{os.getpid()}\n", encoding="ascii")
        built = keep_study if keep_study is not None else Path(tmp) / "study"
        outcomes: list[PatientOutcome] = []
        try:
            with console.status("Building the study from the images ..."):
                loaded = load_manifest(manifest)
                require_pacs(loaded, "pofa analyze MANIFEST.csv")  # dicomweb: series need the pacs extra
                build_study_from_manifest(loaded, built, force=force, work=Path(tmp) / "work",
                                          on_outcome=outcomes.append, fetch=fetch)
        except ManifestError as exc:
            print_report(exc.report, 50)
            raise fail(error_message(exc)) from None
        if keep_study is not None:
            console.print(Text.assemble("The study built from the images (with patient ids and dates): ",
                                        (str(keep_study), "bold")), soft_wrap=True)
        stored = True
        if store_url is not None:
            from pofa.cli.store import store_and_report

            stored = store_and_report(store_url, loaded, outcomes, Path(tmp) / "work", fetch)
        code = run_analyze(built, out, force, show_dates, show_ids, extra_writers=extra_writers, png=png)
        if code != 0 and keep_study is None:
            console.print("To complete the study built from the images (e.g. site and extranodal without an "
                          "organ map), run again with --keep-study STUDY (or run pofa build-study), fill it "
                          "in, then run pofa analyze on it.", soft_wrap=True)
        return 1 if code == 0 and not stored else code
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def analyze_command(
    study: Annotated[Path, typer.Argument(help="Study folder (CSV/Parquet tables), Excel workbook, or an "
                                          "imaging manifest (.csv) to build the study from the scans.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the results (replaced only with --force).")],
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty --out folder that pofa wrote "
                                        "(one holding pofa's manifest.json); any other folder is refused."
                                        )] = False,
    show_dates: Annotated[bool, typer.Option("--show-dates",
                                             help="Keep calendar dates in the output tables.")] = False,
    show_ids: Annotated[bool, typer.Option("--show-ids",
                                           help="Show patient ids in the report (default: sequence numbers)."
                                           )] = False,
    pdf: Annotated[bool, typer.Option("--pdf", help="Also print the report to report.pdf (headless "
                                      "Chromium).")] = False,
    paper: Annotated[str, typer.Option("--paper", help="Paper size of report.pdf: A4 or Letter.")] = "A4",
    png: Annotated[bool, typer.Option("--png", help="Also write each figure as a 300-dpi PNG beside its SVG "
                                      "(default: SVG only, or the study's \\[report] png setting).")] = False,
    cache: Cache = None,
    insecure: Insecure = False,
    pacs_timeout: PacsTimeout = 60.0,
    store_results: StoreResults = None,
    keep_study: Annotated[Path | None, typer.Option(
        "--keep-study", help="With an imaging manifest: also write the study built from the images to this "
                             "folder (it holds patient ids and dates; never written into --out).")] = None,
) -> None:
    """Classify lesion outcomes and failure patterns; write lesions, patients, failures CSV and results.json.

    An invalid study stops with its findings (exit 2) and nothing is written. The output folder appears
    complete or not at all. From an imaging manifest the study is built in a temporary folder and removed
    afterwards (--keep-study keeps it elsewhere): the results hold no patient ids or dates.
    """
    extra: tuple[Any, ...] = ()
    if pdf:
        from functools import partial

        from pofa.report.pdf import PAPER_SIZES, pdf_writer

        if paper not in PAPER_SIZES:
            raise fail(f"--paper {paper!r}: use one of {', '.join(PAPER_SIZES)}")
        extra = (partial(pdf_writer, paper=paper),)
    fetch = fetch_options(cache, insecure, pacs_timeout) if study.suffix.lower() == ".csv" else None
    raise typer.Exit(run_analyze(study, out, force, show_dates, show_ids, extra_writers=extra, fetch=fetch,
                                 store_results=store_results, keep_study=keep_study, png=png))


def demo_command(
    out: Annotated[Path, typer.Option(help="Folder for the demo results.")] = Path("pofa-demo"),
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty --out folder that pofa wrote.")
                     ] = False,
    png: Annotated[bool, typer.Option("--png", help="Also write each figure as a 300-dpi PNG beside its SVG."
                                      )] = False,
) -> None:
    """Run the full analysis on the bundled study (simulated patients, no real data) into --out.

    Run again, it replaces its own previous output (recognised by its manifest.json) without --force.
    """
    from pofa.data import bundled_study

    try:
        path = bundled_study("demo")
    except FileNotFoundError:
        path = bundled_study("example")
    console.print(f"Bundled study '{path.name}': {path}", markup=False)
    raise typer.Exit(run_analyze(path, out, force or _is_demo_output(out, path), show_dates=False, png=png))


def _is_demo_output(out: Path, study: Path) -> bool:
    """Whether ``out`` holds a previous ``pofa demo`` output: pofa's manifest, listing only its own files,
    whose input checksums are those of the bundled study."""
    from pofa.atomic import MANIFEST_NAME, is_pofa_output, read_regular_bytes
    from pofa.study import load_study

    if not is_pofa_output(out):
        return False
    try:
        manifest = json.loads(read_regular_bytes(out / MANIFEST_NAME, "the manifest").decode("utf-8"))
        recorded = manifest["inputs"]["sha256"]
        return isinstance(recorded, dict) and recorded == load_study(study).input_hashes()
    except (PofaError, ValueError, KeyError, TypeError):
        return False
