"""The ``pofa`` command-line program: a thin layer over the Python API.

Every command catches :class:`pofa.errors.PofaError` and prints its message with what to do next; the exit
code is non-zero. Heavy libraries are imported inside the commands so that ``pofa --help`` stays quick.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pofa import __version__
from pofa.errors import PofaError
from pofa.findings import Severity, ValidationReport

app = typer.Typer(
    name="pofa",
    help="Patterns-of-failure analysis after CAR T-cell therapy: lesion outcomes, failure patterns, predictors "
    "and a publication-ready report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error that says what to do, and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        console.print(f"pofa {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """pofa command-line program."""


def print_report(report: ValidationReport, limit: int) -> None:
    """Findings as a table (file, row, column, what is wrong, what to do)."""
    if not report.findings:
        console.print(f"[green]valid:[/] {report.study} has no problems.")
        return
    table = Table(show_lines=False, title=f"Findings for {report.study}", title_justify="left")
    for col in ("", "file", "row", "column", "problem", "what to do"):
        table.add_column(col, overflow="fold")
    for f in report.findings[:limit]:
        mark = "[red]error[/]" if f.severity is Severity.ERROR else "[yellow]warning[/]"
        table.add_row(mark, f.file, "" if f.row is None else str(f.row), f.column or "", f.message, f.hint)
    console.print(table)
    if len(report.findings) > limit:
        console.print(f"... and {len(report.findings) - limit} more findings (use --limit N or --json to see all)")
    console.print(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s).")


@app.command()
def validate(
    study: Annotated[Path, typer.Argument(help="Study folder (CSV/Parquet tables) or Excel workbook.")],
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
    limit: Annotated[int, typer.Option(help="Show at most this many findings on screen.")] = 500,
) -> None:
    """Check a study and report every problem at once (exit 0 valid, 1 warnings only, 2 errors).

    Writes nothing and never modifies the study.
    """
    from pofa.study import load_study

    report = load_study(study).validate()
    if as_json:
        sys.stdout.write(json.dumps(report.to_json(strict), indent=2) + "\n")
    else:
        print_report(report, limit)
        if report.errors:
            err_console.print("Fix the errors above, then run pofa validate again.")
    raise typer.Exit(report.exit_code(strict))


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo results.")] = Path("pofa-demo"),
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty --out folder.")] = False,
) -> None:
    """Run pofa on the bundled example study (invented patients, no real data)."""
    from pofa.data import bundled_study
    from pofa.study import load_study

    path = bundled_study("example")
    console.print(f"Bundled example study: {path}")
    report = load_study(path).validate()
    print_report(report, 50)
    console.print("This release validates the bundled example study; the full demo analysis writes its "
                  f"results to {out} once the analysis is available (force={force}).")
    raise typer.Exit(report.exit_code())


def main() -> None:
    """Entry point of the console script."""
    try:
        app()
    except PofaError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
