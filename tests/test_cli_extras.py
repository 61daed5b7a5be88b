"""Optional extras: without pofa[imaging] or pofa[cluster] a command says exactly what to install (exit 2).

A missing module is simulated by making :func:`importlib.util.find_spec` find nothing for it, so the test runs
on a full install.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pofa.cli import app, extras
from pofa.cli import output as cli_output

runner = CliRunner()


def hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` look uninstalled to pofa.cli.extras."""
    real: Callable[..., Any] = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name.split(".")[0] in modules else real(name, *args, **kwargs)

    monkeypatch.setattr(extras.importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(cli_output.err_console, "width", 300)


def test_every_extra_is_complete_in_the_test_environment() -> None:
    # .[test] pulls every extra: the checks below hide a module, they never find a real gap.
    assert all(extras.available(name) for name in extras.EXTRAS)


@pytest.mark.parametrize(("argv", "module", "extra"), [
    (["extract", "pet", "--out", "x.csv"], "pydicom", "imaging"),
    (["match", "--help"], None, None),
    (["build-study", "m.csv", "--out", "o"], "SimpleITK", "imaging"),
    (["batch", "m.csv", "--out", "o"], "cc3d", "imaging"),
    (["batch", "m.csv", "--out", "o"], "distributed", "cluster"),
])
def test_a_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                   argv: list[str], module: str | None,
                                                   extra: str | None) -> None:
    monkeypatch.chdir(tmp_path)
    if module is None:  # help never needs the extra
        hide(monkeypatch, *extras.EXTRAS["imaging"])
        assert runner.invoke(app, argv).exit_code == 0
        return
    hide(monkeypatch, module)
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert f'pip install "pofa[{extra}]"' in result.output
    assert f"missing: {module}" in result.output
    assert not (tmp_path / "o").exists() and not (tmp_path / "x.csv").exists()


def test_analyze_of_a_manifest_needs_imaging(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("patient_id,baseline_pet\n", encoding="utf-8")
    hide(monkeypatch, "nibabel")
    result = runner.invoke(app, ["analyze", str(manifest), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert 'pip install "pofa[imaging]"' in result.output
    assert not (tmp_path / "out").exists()


def test_power_runs_in_process_without_the_cluster_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "dask", "distributed")
    small = ["power", "--or", "2", "--patients", "20", "--replicates", "20", "--no-progress"]
    assert runner.invoke(app, small).exit_code == 0
    asked = runner.invoke(app, [*small, "--workers", "2"])
    assert asked.exit_code == 2
    assert 'pip install "pofa[cluster]"' in asked.output


def test_install_line_is_the_documented_one() -> None:
    assert extras.install_line("imaging") == 'pip install "pofa[imaging]"'
    assert extras.install_line("cluster") == 'pip install "pofa[cluster]"'
