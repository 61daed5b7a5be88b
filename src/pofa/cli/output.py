"""What the command-line program prints: the consoles, errors that say what to do, findings.

Findings are printed in one of three forms (``pofa validate --format``):

``text``
    One finding per line, ``file:row:column: error|warning: message (what to do)``, never wrapped, as
    compilers and linters write them; the default when standard output is not a terminal (a pipe, a file).
``table``
    A table for the terminal (the default there). Cells wrap at word boundaries only: the file, row and
    column cells are never broken, and when the terminal is too narrow for that, the text form is printed.
``json``
    The report as JSON (:meth:`pofa.findings.ValidationReport.to_json`).
"""

from __future__ import annotations

import enum
import json
import time
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pofa.errors import PofaError
from pofa.findings import Finding, Severity, ValidationReport

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # messages are never cut


class FindingsFormat(enum.StrEnum):
    """How findings are printed (the values are the words of ``--format``)."""

    TABLE = "table"
    TEXT = "text"
    JSON = "json"


#: Options whose command-line flag is not their parameter name with dashes (``weight_kg`` -> ``--weight-kg``).
FLAGS: dict[str, str] = {
    "series_uid": "--pet-series / --ct-series",
    "normalisation": "--suv",
    "liver_mask": "--liver",
}


def flag(option: str) -> str:
    """Return the command-line flag of a library option name (``weight_kg`` -> ``--weight-kg``).

    Parameters
    ----------
    option : str
        A parameter name the library's error advice refers to.

    Returns
    -------
    str
        The flag (from :data:`FLAGS` when it is spelled differently).
    """
    return FLAGS.get(option, "--" + option.replace("_", "-"))


def error_message(exc: BaseException) -> str:
    """Return an error's message as the command line shows it: the library's advice names flags.

    Parameters
    ----------
    exc : BaseException
        Usually a :class:`pofa.errors.PofaError`, whose options are spelled as flags.

    Returns
    -------
    str
        The message with its advice.
    """
    return exc.render(flag) if isinstance(exc, PofaError) else str(exc)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error that says what to do, and return the Exit to raise.

    Parameters
    ----------
    message : str
        What is wrong and what to do.
    code : int, optional
        Exit code.

    Returns
    -------
    typer.Exit
        The Exit to raise.
    """
    err_console.print(Text.assemble(("error: ", "bold red"), message))
    return typer.Exit(code)


def _one_line(text: str) -> str:
    """Text with line breaks and tabs as blanks, so that a finding stays on its line."""
    return " ".join(text.replace("\r", " ").replace("\n", " ").replace("\t", " ").split(" ")).strip()


def finding_line(f: Finding) -> str:
    """One finding as one line: ``file:row:column: severity: message (what to do)``.

    The row and column parts are left out when the finding concerns a whole file or column.

    Parameters
    ----------
    f : Finding
        The finding.

    Returns
    -------
    str
        The line, without a line break.
    """
    where = [_one_line(f.file)]
    if f.row is not None:
        where.append(str(f.row))
    if f.column is not None:
        where.append(_one_line(f.column))
    hint = f" ({_one_line(f.hint)})" if f.hint else ""
    return f"{':'.join(where)}: {f.severity.value}: {_one_line(f.message)}{hint}"


def summary_line(report: ValidationReport) -> str:
    """Count the errors and warnings in one line (it ends the printed findings).

    Parameters
    ----------
    report : ValidationReport
        The validation report.

    Returns
    -------
    str
        The line.
    """
    return f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)."


def resolve_format(fmt: FindingsFormat | None) -> FindingsFormat:
    """Choose the format of the printed findings.

    Parameters
    ----------
    fmt : FindingsFormat or None
        The format asked for, if any.

    Returns
    -------
    FindingsFormat
        ``fmt``, else a table on a terminal and plain lines elsewhere (a pipe, a file).
    """
    if fmt is not None:
        return fmt
    return FindingsFormat.TABLE if console.is_terminal else FindingsFormat.TEXT


def print_report(report: ValidationReport, limit: int, fmt: FindingsFormat | None = None,
                 strict: bool = False) -> None:
    """Print the findings of a report (see the module docstring for the forms), then one summary line.

    Everything taken from the study (file names, cell values in messages) is printed as plain text, never as
    rich markup: ``study.xlsx[patients]`` must show its brackets.

    Parameters
    ----------
    report : ValidationReport
        The findings.
    limit : int
        Print at most this many findings (``json`` prints all).
    fmt : FindingsFormat or None
        The form; ``None`` chooses by whether standard output is a terminal.
    strict : bool
        Passed to the JSON form (warnings count as errors).
    """
    fmt = resolve_format(fmt)
    if fmt is FindingsFormat.JSON:
        typer.echo(json.dumps(report.to_json(strict), indent=2))
        return
    if not report.findings:
        if fmt is FindingsFormat.TEXT:
            typer.echo(f"valid: {_one_line(report.study)} has no problems.")
        else:
            console.print(Text.assemble(("valid:", "green"), f" {report.study} has no problems."))
        return
    shown = report.findings[:max(limit, 0)]
    if fmt is FindingsFormat.TABLE and _print_table(report.study, shown):
        pass
    else:
        for f in shown:
            typer.echo(finding_line(f))
    rest = len(report.findings) - len(shown)
    if rest > 0:
        typer.echo(f"... and {rest} more findings (use --limit N or --format json to see all)")
    typer.echo(summary_line(report))


#: Below this many characters a message or hint column is too narrow to read: the text form is printed.
_MIN_TEXT_WIDTH = 12


def _print_table(study: str, findings: tuple[Finding, ...]) -> bool:
    """Findings as a table that wraps at word boundaries only; False (nothing printed) if it cannot fit."""
    fixed = {
        "file": max(len("file"), *(len(f.file) for f in findings)),
        "row": max(len("row"), *(len(str(f.row or "")) for f in findings)),
        "column": max(len("column"), *(len(f.column or "") for f in findings)),
    }
    longest_word = max(len(w) for f in findings for w in (f.message + " " + f.hint).split() or [""])
    text_width = max(_MIN_TEXT_WIDTH, longest_word)
    # The frame: a border and a blank on each side of every cell (3 characters per column, 1 at the end).
    needed = len("warning") + sum(fixed.values()) + 2 * text_width + 3 * 6 + 1
    if needed > console.width:
        return False
    table = Table(show_lines=False, title=Text(f"Findings for {study}"), title_justify="left")
    table.add_column("", no_wrap=True, min_width=len("warning"))
    for name, width in fixed.items():
        table.add_column(name, no_wrap=True, min_width=width, overflow="ignore")
    for name in ("problem", "what to do"):
        table.add_column(name, overflow="fold", min_width=text_width)
    for f in findings:
        mark = Text("error", "red") if f.severity is Severity.ERROR else Text("warning", "yellow")
        table.add_row(mark, Text(f.file), "" if f.row is None else str(f.row), Text(f.column or ""),
                      Text(f.message), Text(f.hint))
    console.print(table)
    return True


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
