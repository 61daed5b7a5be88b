"""What the command-line program prints: the consoles, errors that say what to do, findings as a table."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pofa.findings import Severity, ValidationReport

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error that says what to do, and return the Exit to raise."""
    err_console.print(Text.assemble(("error: ", "bold red"), message))
    return typer.Exit(code)


def print_report(report: ValidationReport, limit: int) -> None:
    """Findings as a table (file, row, column, what is wrong, what to do).

    Everything taken from the study (file names, cell values in messages) is printed as plain text, never as
    rich markup: ``study.xlsx[patients]`` must show its brackets.
    """
    from rich.text import Text

    if not report.findings:
        console.print(Text.assemble(("valid:", "green"), f" {report.study} has no problems."))
        return
    table = Table(show_lines=False, title=Text(f"Findings for {report.study}"), title_justify="left")
    for col in ("", "file", "row", "column", "problem", "what to do"):
        table.add_column(col, overflow="fold")
    for f in report.findings[:max(limit, 0)]:
        mark = Text("error", "red") if f.severity is Severity.ERROR else Text("warning", "yellow")
        table.add_row(mark, Text(f.file), "" if f.row is None else str(f.row), Text(f.column or ""),
                      Text(f.message), Text(f.hint))
    console.print(table)
    if len(report.findings) > limit:
        console.print(f"... and {len(report.findings) - max(limit, 0)} more findings "
                      "(use --limit N or --json to see all)")
    console.print(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s).")
