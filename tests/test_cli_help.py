"""Every command's help reads cleanly, and ``pofa --help`` stays light (nothing heavy is imported)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from pofa.cli import app

runner = CliRunner()
SRC = Path(__file__).resolve().parents[1] / "src"


def commands() -> list[tuple[list[str], Any]]:
    """Every command and sub-command of the program, with its argv prefix (typer carries its own click)."""
    found: list[tuple[list[str], Any]] = []

    def walk(prefix: list[str], command: Any) -> None:
        found.append((prefix, command))
        if hasattr(command, "list_commands"):
            ctx = command.make_context("pofa", [], resilient_parsing=True)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                walk([*prefix, name], sub)

    walk([], typer.main.get_command(app))
    return found


COMMANDS = commands()


@pytest.mark.parametrize(("argv", "command"), COMMANDS, ids=[" ".join(a) or "pofa" for a, _ in COMMANDS])
def test_help_reads_cleanly(argv: list[str], command: Any) -> None:
    result = runner.invoke(app, [*argv, "--help"], env={"COLUMNS": "250", "TERMINAL_WIDTH": "250"})
    assert result.exit_code == 0, result.output
    text = result.output
    assert "<bool>" not in text  # a flag takes no value
    assert "(, " not in text and ", )" not in text  # markup ate a bracketed word
    for param in command.params:
        helptext = getattr(param, "help", None) or ""
        # Every [word] written in a help text is shown (escaped as \[word] for rich).
        for word in re.findall(r"\\?\[([A-Za-z_][^\]]*)\]", helptext):
            assert f"[{word}]" in text, f"{' '.join(argv)} {param.name}: [{word}] not shown"


def test_simulate_config_help_names_the_sections() -> None:
    text = runner.invoke(app, ["simulate", "--help"], env={"COLUMNS": "250"}).output
    for section in ("cohort", "lesions", "failure", "survival", "followup", "covariates"):
        assert f"[{section}]" in text


def test_help_imports_nothing_heavy() -> None:
    # `pofa --help` must answer at once: the command modules import their libraries when they run.
    code = ("import sys, runpy\nsys.argv = ['pofa', '--help']\n"
            "try:\n    runpy.run_module('pofa', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'pandas', 'scipy', "
            "'statsmodels', 'matplotlib', 'pyarrow', 'SimpleITK', 'pydicom', 'nibabel', 'dask', 'jinja2'})\n"
            "print('HEAVY', heavy)\n")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr
