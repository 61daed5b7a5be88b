"""Every file pofa reads is untrusted: a pipe (FIFO) given where a file is expected is refused at once with a
clear error and exit code 2, in every command -- never read (a pipe would block the command forever).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


def _cases(tmp: Path) -> dict[str, list[str]]:
    fifo = str(tmp / "pipe.csv")
    nii = str(tmp / "pipe.nii.gz")
    model = str(tmp / "pipe.json")
    return {
        "predict-model": ["predict", model, str(tmp / "absent.csv"), "--out", str(tmp / "o1.csv")],
        "predict-lesions": ["predict", "published", fifo, "--out", str(tmp / "o2.csv")],
        "import-redcap": ["import", "redcap", fifo, "--dictionary", fifo, "--out", str(tmp / "o3")],
        "simulate-config": ["simulate", "--config", fifo, "--out", str(tmp / "o4")],
        "dose": ["dose", nii, "--rtdose", nii, "--prescription-gy", "30", "--out", str(tmp / "o5.csv")],
        "extract": ["extract", nii, "--threshold", "suv4", "--out", str(tmp / "o6.csv")],
        "match": ["match", nii, nii, "--out", str(tmp / "o7.csv")],
        "analyze-manifest": ["analyze", fifo, "--out", str(tmp / "o8")],
        "build-study": ["build-study", fifo, "--out", str(tmp / "o9")],
    }


@pytest.mark.parametrize("case", sorted(_cases(Path("x"))))
def test_a_pipe_as_input_is_refused(case: str, tmp_path: Path) -> None:
    for name in ("pipe.csv", "pipe.nii.gz", "pipe.json"):
        os.mkfifo(tmp_path / name)
    if case in ("dose", "extract", "match", "build-study"):
        pytest.importorskip("SimpleITK")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200"}
    try:
        run = subprocess.run([sys.executable, "-m", "pofa", *_cases(tmp_path)[case]], capture_output=True,
                             text=True, env=env, timeout=120)
    except subprocess.TimeoutExpired:  # pragma: no cover - the failure this test guards against
        pytest.fail(f"pofa {case} blocked on a pipe")
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("o")], "nothing is written"


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
@pytest.mark.parametrize("name", ["patients.csv", "study.toml"])
def test_a_device_as_table_or_settings_is_refused(example_study: Path, name: str) -> None:
    """A link to a device that never ends (/dev/zero) is refused, not read."""
    import pofa

    (example_study / name).unlink(missing_ok=True)
    (example_study / name).symlink_to("/dev/zero")
    report = pofa.load_study(example_study).validate()
    assert any(f.file == name and "regular file" in f.message for f in report.errors), report.errors
