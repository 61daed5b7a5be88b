"""Shared fixtures: the bundled example study and a helper to write small studies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pofa.data import bundled_study


@pytest.fixture
def example_study(tmp_path: Path) -> Path:
    """A private copy of the bundled example study (tests may edit it)."""
    dest = tmp_path / "example"
    shutil.copytree(bundled_study("example"), dest)
    return dest


@pytest.fixture
def tables_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """``pofa analyze`` and :func:`pofa.analysis.write_outputs` write the tables and results.json only.

    For tests about the tables, results.json and the refusals: the report (figures) takes most of a run and
    is checked once, by :func:`example_analysis`, and by the report's own tests.
    """
    import pofa.analysis

    monkeypatch.setattr(pofa.analysis, "WRITERS", (pofa.analysis.write_tables,))


@pytest.fixture(scope="session")
def example_analysis(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``pofa analyze`` of the bundled example study with every output, run once per test session.

    Returns the output folder and what the command printed. Shared: tests only read it.
    """
    from typer.testing import CliRunner

    from pofa.cli import app

    out = tmp_path_factory.mktemp("example-analysis") / "out"
    res = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["analyze", str(bundled_study("example")),
                                                         "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out, res.output
