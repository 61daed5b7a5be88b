"""``pofa validate`` on the corpus: exit codes (0/1/2, --strict), --json, and nothing modified or written."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pofa import cli
from pofa.cli import app

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "expected.json").is_file())
runner = CliRunner()


def expected(case: str) -> dict:
    return json.loads((CORPUS / case / "expected.json").read_text(encoding="utf-8"))


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder``: SHA-256 and modification time (ns)."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """A console wide enough that no table cell is folded (the test runner's terminal has no width)."""
    monkeypatch.setattr(cli.console, "width", 400)


@pytest.fixture
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


@pytest.mark.slow  # 65 cases x 2 runs of the command: about 15-25 s on a 2-core machine
@pytest.mark.parametrize("case", CASES)
def test_cli_on_corpus_case(case: str, tmp_path: Path, empty_cwd: Path) -> None:
    exp = expected(case)
    study = tmp_path / case
    shutil.copytree(CORPUS / case, study, copy_function=shutil.copy2)
    (study / "expected.json").unlink()
    before = snapshot(study)
    target = str(study / exp["target"])

    result = runner.invoke(app, ["validate", target, "--json"])
    assert result.exit_code == exp["exit_code"], result.output
    report = json.loads(result.stdout)
    got = Counter((f["severity"], f["code"], f["file"], f["row"], f["column"]) for f in report["findings"])
    want = Counter((f["severity"], f["code"], f["file"], f["row"], f["column"]) for f in exp["findings"])
    assert got == want
    assert report["exit_code"] == exp["exit_code"] and report["strict"] is False
    assert report["valid"] is (exp["exit_code"] < 2)
    assert report["errors"] + report["warnings"] == len(exp["findings"])

    strict = runner.invoke(app, ["validate", target, "--strict"])
    assert strict.exit_code == exp["exit_code_strict"], strict.output
    for f in exp["findings"]:
        assert f["file"] in strict.stdout  # shown as plain text, brackets of workbook[sheet] included

    assert snapshot(study) == before, "pofa validate modified or added a file in the study"
    assert list(empty_cwd.iterdir()) == [], "pofa validate wrote into the working folder"


def test_json_shape(example_study: Path) -> None:
    result = runner.invoke(app, ["validate", str(example_study), "--json", "--strict"])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report == {"study": str(example_study), "valid": True, "strict": True, "errors": 0, "warnings": 0,
                      "exit_code": 0, "findings": []}
    bad = runner.invoke(app, ["validate", str(CORPUS / "csv_na_date"), "--json"])
    (finding,) = json.loads(bad.stdout)["findings"]
    assert list(finding) == ["severity", "code", "file", "row", "column", "message", "hint", "more"]
    assert finding["hint"] == "leave the cell empty when the value is unknown"


def test_valid_study_prints_valid(example_study: Path) -> None:
    result = runner.invoke(app, ["validate", str(example_study)])
    assert result.exit_code == 0
    assert "valid:" in result.stdout and "no problems" in result.stdout


def test_warnings_only_and_strict() -> None:
    case = str(CORPUS / "csv_implausible_suv")
    plain = runner.invoke(app, ["validate", case])
    assert plain.exit_code == 1
    assert "0 error(s), 1 warning(s)." in plain.stdout
    strict = runner.invoke(app, ["validate", case, "--strict"])
    assert strict.exit_code == 2
    assert "--strict" in strict.stderr
    data = json.loads(runner.invoke(app, ["validate", case, "--json", "--strict"]).stdout)
    assert data["valid"] is False and data["exit_code"] == 2


def test_limit_and_markup_safety() -> None:
    result = runner.invoke(app, ["validate", str(CORPUS / "csv_extra_cells"), "--limit", "3"])
    assert result.exit_code == 2
    assert "... and 1 more findings" in result.stdout
    sheet = runner.invoke(app, ["validate", str(CORPUS / "xlsx_numeric_ids")])
    assert "study.xlsx[patients]" in sheet.stdout and "study.xlsx[lesions]" in sheet.stdout


def test_missing_path(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nowhere"), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["findings"][0]["code"] == "not-a-study"


@pytest.mark.slow
def test_console_script_exit_codes(example_study: Path, tmp_path: Path) -> None:
    """The real program (python -m pofa): 0 valid, 1 warnings only, 2 with --strict, 2 errors."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    cwd = tmp_path / "cwd"
    cwd.mkdir()

    def run(*args: str) -> int:
        return subprocess.run([sys.executable, "-m", "pofa", "validate", *args], capture_output=True,
                              cwd=cwd, env=env, timeout=120).returncode

    assert run(str(example_study)) == 0
    assert run(str(CORPUS / "csv_implausible_suv")) == 1
    assert run(str(CORPUS / "csv_implausible_suv"), "--strict") == 2
    assert run(str(CORPUS / "csv_bad_date"), "--json") == 2
    assert list(cwd.iterdir()) == []
