"""A killed ``pofa analyze`` never damages the previous output, and the next run leaves no stray copies.

A 5,000-patient study (pofa.simulate) is analysed once; then ``pofa analyze --force`` into the same folder is
killed with SIGKILL at several moments (reading, analysing, writing, just before and during the swap). After
each kill the output folder must exist and match its manifest byte for byte (it is the previous, complete
output); after a final run to completion the parent folder must hold nothing but the study and the output.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")]

ROOT = Path(__file__).resolve().parents[1]
N_PATIENTS = 5000


def _command(study: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "pofa", "analyze", str(study), "--out", str(out), "--force"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def _intact(out: Path) -> str:
    """The output folder exists and every file its manifest lists has the recorded checksum; returns the
    checksum of results.json (which run wrote it)."""
    assert out.is_dir(), "the output folder went missing"
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    listed = {e["path"]: e["sha256"] for e in manifest["files"]}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {"manifest.json"}
    assert on_disk == set(listed)
    for rel, sha in listed.items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == sha, rel
    return listed["results.json"]


def _kill_after(study: Path, out: Path, delay: float | None) -> int:
    """Start a forced run; SIGKILL it after ``delay`` seconds, or (``None``) as soon as its temporary folder
    holds a manifest (the last file written before the swap). Returns the exit status."""
    proc = subprocess.Popen(_command(study, out), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        if delay is not None:
            time.sleep(delay)
        else:
            deadline = time.monotonic() + 900
            while proc.poll() is None and time.monotonic() < deadline:
                if any((p / "manifest.json").exists() for p in out.parent.glob(f".{out.name}.*.partial")):
                    break
                time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        code = proc.wait()
    return code


def test_killed_runs_leave_the_previous_output_and_no_leftovers(tmp_path: Path) -> None:
    from pofa.simulate import apply_overrides, preset, simulate, write_study

    params = apply_overrides(preset("figura2021"), {"cohort.n_patients": N_PATIENTS})
    study = write_study(simulate(params, seed=7), tmp_path / "study")
    out = tmp_path / "out"
    first = subprocess.run(_command(study, out), env=_env(), capture_output=True, text=True, timeout=1800)
    assert first.returncode == 0, first.stderr
    reference = _intact(out)
    # the kill moments are fractions of a warm run (the first run may also build caches, e.g. matplotlib's
    # font list, and take longer than every later one)
    start = time.monotonic()
    warm = subprocess.run(_command(study, out), env=_env(), capture_output=True, text=True, timeout=1800)
    took = time.monotonic() - start
    assert warm.returncode == 0, warm.stderr
    assert _intact(out) == reference

    kills = 0
    for moment in (0.05, 0.25, 0.5, 0.75, 0.9, None, 0.97):
        code = _kill_after(study, out, None if moment is None else moment * took)
        if code == -signal.SIGKILL:
            kills += 1
        # killed or (rarely) finished first: either way the folder is a complete output of the study
        assert _intact(out) == reference  # the analysis is deterministic: same results either way
        names = {p.name for p in tmp_path.iterdir()}
        assert {"study", "out"} <= names
        assert all(n in ("study", "out") or n.startswith(".out.") for n in names), names
    assert kills >= 5, "the runs should have been killed, not finished"

    final = subprocess.run(_command(study, out), env=_env(), capture_output=True, text=True, timeout=1800)
    assert final.returncode == 0, final.stderr
    assert _intact(out) == reference
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "study"], "leftovers after the rerun"
