"""``pofa import redcap``: a REDCap records export (file or API) to a study folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pofa.cli.group import PofaGroup
from pofa.cli.output import console, err_console, error_message, fail

import_app = typer.Typer(cls=PofaGroup, help="Import a study from another system's export (REDCap).",
                         no_args_is_help=True)


def _print_findings(findings: list[object]) -> None:
    """One finding per line: ``file:row:column: error|warning: message (what to do)``."""
    from pofa.findings import Finding

    for f in findings:
        assert isinstance(f, Finding)
        where = ":".join([f.file, "" if f.row is None else str(f.row), f.column or ""])
        line = f"{where}: {f.severity.value}: {f.message} ({f.hint})"
        (err_console if f.severity.value == "error" else console).print(line, markup=False, soft_wrap=True)


@import_app.command("redcap")
def redcap_command(
    out: Annotated[Path, typer.Option("--out", help="The study folder to write (a new folder).")],
    export: Annotated[Path | None, typer.Argument(
        help="The records export (CSV, raw or labels) downloaded from REDCap.")] = None,
    dictionary: Annotated[Path | None, typer.Option(
        "--dictionary", help="The project's data dictionary (CSV) from REDCap's Dictionary page.")] = None,
    settings: Annotated[Path | None, typer.Option(
        "--settings", help="A study.toml whose \\[redcap] section maps REDCap fields to the format's "
        "columns; its other sections are copied into the study."
    )] = None,
    api_url: Annotated[str | None, typer.Option(
        "--api-url", help="Pull the export and dictionary from this REDCap API URL instead (PyCap).")] = None,
    token_env: Annotated[str, typer.Option(
        "--token-env", help="Environment variable holding the API token (never written anywhere).")
    ] = "POFA_REDCAP_TOKEN",
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty --out folder.")] = False,
) -> None:
    """Read a REDCap records export and write it as a study folder (patients, lesions, failures).

    Every problem is printed on one line with the export's line, the REDCap field, and the record,
    instrument and instance. With errors nothing is written (exit 2). The export is never changed.
    See docs/data-entry.md.
    """
    from pofa.errors import PofaError
    from pofa.redcap.config import RedcapSettings, read_redcap_settings
    from pofa.redcap.dictionary import parse_dictionary, read_dictionary
    from pofa.redcap.export import parse_export, read_export
    from pofa.redcap.study import check_import, write_study

    try:
        conf = RedcapSettings()
        settings_text: str | None = None
        if settings is not None:
            if not settings.is_file():
                raise fail(f"--settings {settings}: no such file")
            conf, bad = read_redcap_settings(settings)
            settings_text = settings.read_bytes().decode("utf-8", errors="replace")
            if bad:
                _print_findings(list(bad))
                raise fail("fix the [redcap] section of the settings file")
        if api_url is not None:
            if export is not None or dictionary is not None:
                raise fail("give either --api-url or an EXPORT file with --dictionary, not both")
            from pofa.redcap.api import pull, token_from_env

            pulled = pull(api_url, token_from_env(token_env))
            imported = parse_export(pulled.export_csv, "REDCap API export",
                                    parse_dictionary(pulled.dictionary_csv, "REDCap API dictionary"), conf)
        else:
            if export is None or dictionary is None:
                raise fail("give the EXPORT file and --dictionary DICTIONARY.csv (or --api-url URL)")
            imported = read_export(export, read_dictionary(dictionary), conf)
        report = check_import(imported)
        _print_findings(list(report.findings))
        if report.errors:
            err_console.print(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s); nothing "
                              "written. Correct the records in REDCap, export again and re-run.",
                              markup=False)
            raise typer.Exit(2)
        write_study(imported, out, force, settings_text)
    except PofaError as exc:
        raise fail(error_message(exc)) from None
    n = {t.value: len(raw.frame) for t, raw in imported.tables.items()}
    console.print(f"wrote {out}: {n.get('patients', 0)} patients, {n.get('lesions', 0)} lesions, "
                  f"{n.get('failures', 0)} failure lesions ({len(report.warnings)} warning(s)). Next: "
                  f"pofa analyze {out} --out results", markup=False, soft_wrap=True)
