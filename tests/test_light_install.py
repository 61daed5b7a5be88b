"""The base install (no pofa[imaging], no pofa[cluster]) analyses a study folder and writes the report.

The optional libraries are hidden from a child interpreter by a meta-path finder that refuses them, as if
they were not installed; the child then runs the README's demo path on the bundled example study.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
# tableone is a test dependency only (the oracle of the Table 1 tests): the base install runs without it
OPTIONAL = ("pydicom", "highdicom", "SimpleITK", "nibabel", "cc3d", "dask", "distributed", "tableone")

CHILD = """
import importlib.abc, runpy, sys
OPTIONAL = set(sys.argv[1].split(","))
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in OPTIONAL:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Refuse())
sys.argv = ["pofa", *sys.argv[2:]]
try:
    runpy.run_module("pofa", run_name="__main__")
except SystemExit as exc:
    loaded = sorted({m.split(".")[0] for m in sys.modules} & OPTIONAL)
    print("OPTIONAL LOADED", loaded)
    raise
"""


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-c", CHILD, ",".join(OPTIONAL), *argv], capture_output=True,
                          text=True, env=env, timeout=600)


@pytest.mark.slow
def test_analysis_and_report_need_no_optional_library(tmp_path: Path) -> None:
    from pofa.data import bundled_study

    out = tmp_path / "out"
    res = run("analyze", str(bundled_study("example")), "--out", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "OPTIONAL LOADED []" in res.stdout
    assert (out / "report.html").is_file()
    assert json.loads((out / "results.json").read_text(encoding="utf-8"))["patterns"]["patients"] == 5


def test_an_imaging_command_names_its_extra() -> None:
    res = run("extract", "pet", "--out", "x.csv")
    assert res.returncode == 2
    assert 'pip install "pofa[imaging]"' in res.stderr
