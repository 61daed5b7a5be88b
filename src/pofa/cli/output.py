"""What the command-line program prints: the consoles, errors that say what to do, findings as a table."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pofa.errors import PofaError
from pofa.findings import Severity, ValidationReport

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


#: Options whose command-line flag is not their parameter name with dashes (``weight_kg`` -> ``--weight-kg``).
FLAGS: dict[str, str] = {
    "series_uid": "--pet-series / --ct-series",
    "normalisation": "--suv",
    "liver_mask": "--liver",
}


def flag(option: str) -> str:
    """The command-line flag of a library option name (``weight_kg`` -> ``--weight-kg``).

    Parameters
    ----------
    option : str
        A parameter name the library's error advice refers to.

    Returns
    -------
    str
    """
    return FLAGS.get(option, "--" + option.replace("_", "-"))


def error_message(exc: BaseException) -> str:
    """An error's message as the command line shows it: the library's advice names flags.

    Parameters
    ----------
    exc : BaseException
        Usually a :class:`pofa.errors.PofaError`, whose options are spelled as flags.

    Returns
    -------
    str
    """
    return exc.render(flag) if isinstance(exc, PofaError) else str(exc)


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


class StepProgress:
    """Shows the step running (a spinner on stderr) and, when it ends, its name and duration.

    Use as a context manager; call it with each step's name as the step starts (it is a
    :data:`pofa.analysis.Progress`). Steps shorter than ``min_seconds`` leave no line behind.

    Parameters
    ----------
    title : str
        What the steps are part of (shown before the step's name).
    min_seconds : float
        Finished steps at least this long are listed with their duration.
    """

    def __init__(self, title: str, min_seconds: float = 0.5) -> None:
        self.title = title
        self.min_seconds = min_seconds
        self._status: Any = None
        self._step: str | None = None
        self._started = 0.0

    def __enter__(self) -> StepProgress:
        self._status = err_console.status(Text(self.title), spinner="dots")
        self._status.__enter__()
        return self

    def __call__(self, step: str) -> None:
        self._finish()
        self._step, self._started = step, time.perf_counter()
        if self._status is not None:
            self._status.update(Text(f"{self.title}: {step} ..."))

    def _finish(self) -> None:
        if self._step is None:
            return
        took = time.perf_counter() - self._started
        if took >= self.min_seconds:
            err_console.print(Text.assemble(("  done ", "green"), f"{self._step} ",
                                            (f"({took:.1f} s)", "dim")))
        self._step = None

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self._finish()
        if self._status is not None:
            self._status.__exit__(*exc)
            self._status = None
