"""Without the ``pacs`` extra, commands given ``dicomweb:`` series or ``--store-results`` say what to install.

A missing module is simulated by making :func:`importlib.util.find_spec` find nothing for it (as in
tests/test_cli_extras.py), so the test runs on a full install; nothing is contacted.
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
URL = "https://pacs.example.org/dicom-web"


def _hide(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    real: Callable[..., Any] = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name.split(".")[0] == module else real(name, *args, **kwargs)

    monkeypatch.setattr(extras.importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(cli_output.err_console, "width", 300)


def _manifest(folder: Path, pet: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "patients.csv").write_text(
        "patient_id,index_date,last_followup_date,progression_date,death_date,age,sex\n"
        "P1,2020-01-01,2021-01-01,2020-06-01,,50,M\n", encoding="utf-8")
    m = folder / "manifest.csv"
    m.write_text(f"patient_id,role,scan_date,pet,threshold\nP1,baseline,2019-12-20,{pet},suv4\n",
                 encoding="utf-8")
    return m


@pytest.mark.parametrize("command", ["analyze", "build-study", "batch"])
def test_dicomweb_series_need_the_pacs_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             command: str) -> None:
    manifest = _manifest(tmp_path / "cohort", f"dicomweb:{URL}?study=1.2.3&series=1.2.3.4")
    _hide(monkeypatch, "dicomweb_client")
    res = runner.invoke(app, [command, str(manifest), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert 'pip install "pofa[pacs]"' in res.output and "missing: dicomweb_client" in res.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["analyze", "build-study", "batch"])
def test_store_results_needs_the_pacs_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                            command: str) -> None:
    pet = tmp_path / "pet.nii.gz"
    pet.write_bytes(b"")
    manifest = _manifest(tmp_path / "cohort", str(pet))
    _hide(monkeypatch, "dicomweb_client")
    res = runner.invoke(app, [command, str(manifest), "--out", str(tmp_path / "out"), "--store-results", URL])
    assert res.exit_code == 2, res.output
    assert 'pip install "pofa[pacs]"' in res.output
    assert not (tmp_path / "out").exists()
