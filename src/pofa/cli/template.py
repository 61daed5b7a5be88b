"""``pofa template``: an empty study to fill in (Excel workbook, CSV files) or a REDCap data dictionary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pofa.cli.output import console, error_message, fail


def template_command(
    out: Annotated[Path | None, typer.Option(
        "--out", help="The file to write: study.xlsx (the workbook) or, with --redcap, dictionary.csv."
    )] = None,
    csv_dir: Annotated[Path | None, typer.Option(
        "--csv", help="Write patients.csv, lesions.csv and failures.csv into this new folder instead."
    )] = None,
    redcap: Annotated[bool, typer.Option(
        "--redcap", help="Write a REDCap data dictionary (CSV) to upload into a new REDCap project."
    )] = False,
    no_examples: Annotated[bool, typer.Option(
        "--no-examples", help="Leave out the example rows (ids EXAMPLE-1, ...) of the workbook or CSVs."
    )] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace an existing file or non-empty folder.")] = False,
) -> None:
    """Write an empty study to fill in: an Excel workbook, CSV files, or a REDCap data dictionary.

    The workbook has the sheets patients, lesions and failures with their headers, a 'columns' sheet that
    explains every column, data validation, and example rows (ids EXAMPLE-1, ...) to delete. See
    docs/data-entry.md.
    """
    from pofa import atomic
    from pofa.errors import PofaError

    chosen = [x for x in (out is not None and not redcap, csv_dir is not None, redcap) if x]
    if len(chosen) != 1:
        raise fail("give exactly one of --out study.xlsx, --csv FOLDER, or --redcap --out dictionary.csv")
    try:
        if csv_dir is not None:
            from pofa.template import write_csv_templates

            write_csv_templates(csv_dir, examples=not no_examples, force=force)
            console.print(f"wrote {csv_dir}/patients.csv, lesions.csv and failures.csv; fill them in, "
                          f"then run pofa validate {csv_dir}", markup=False)
            return
        if out is None:
            raise fail("--redcap needs --out dictionary.csv")
        if out.exists() and not force:
            raise fail(f"{out} exists; choose another --out, or add --force to replace it")
        if redcap:
            if out.suffix.lower() != ".csv":
                raise fail("a REDCap data dictionary is a .csv file: --out dictionary.csv")
            from pofa.redcap.dictionary import dictionary_csv

            atomic.write_text(out, dictionary_csv())
            console.print(f"wrote {out}: upload it in REDCap (Project Setup > Design your data collection "
                          "instruments > Data Dictionary), then make 'lesions' and 'failures' repeating "
                          "instruments (docs/data-entry.md)", markup=False)
            return
        if out.suffix.lower() != ".xlsx":
            raise fail("the template workbook is an .xlsx file: --out study.xlsx (or --csv FOLDER for CSV)")
        from pofa.template import write_workbook

        write_workbook(out, examples=not no_examples)
        console.print(f"wrote {out}: delete the yellow example rows, fill in the sheets, then run "
                      f"pofa validate {out}")
    except PofaError as exc:
        raise fail(error_message(exc)) from None
