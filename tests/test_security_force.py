"""``--force`` replaces only what pofa wrote, in every command that writes a folder (docs/security.md).

A folder holding a file pofa did not write, or a file pofa wrote and someone changed since, is refused with
a clear message and exit code 2, and nothing in it changes; a folder pofa wrote, unchanged, is replaced.
Commands that write single files refuse an existing file without ``--force``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pofa.atomic import WRITTEN_RECORD, foreign_files, is_pofa_folder
from pofa.cli import app

sys.path.insert(0, str(Path(__file__).parent))
from redcap_build import Project, dictionary_text, export_text  # noqa: E402

runner = CliRunner(env={"COLUMNS": "250"})


def invoke(*args: object) -> tuple[int, str]:
    res = runner.invoke(app, [str(a) for a in args])
    return res.exit_code, " ".join(res.output.split())


def foreign(folder: Path) -> Path:
    """A folder holding a user's file."""
    folder.mkdir(parents=True)
    (folder / "thesis.docx").write_text("years of work", encoding="utf-8")
    return folder


def redcap_args(tmp: Path) -> list[object]:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "export.csv").write_text(export_text(Project()), encoding="utf-8")
    (tmp / "dictionary.csv").write_text(dictionary_text(Project()), encoding="utf-8")
    return ["import", "redcap", tmp / "export.csv", "--dictionary", tmp / "dictionary.csv"]


#: Commands that write a study folder: the arguments before ``--out FOLDER``.
STUDY_WRITERS: dict[str, Callable[[Path], list[object]]] = {
    "simulate": lambda tmp: ["simulate", "--patients", "12", "--seed", "3"],
    "template-csv": lambda tmp: ["template"],
    "import-redcap": redcap_args,
}


def _write(name: str, tmp: Path, out: Path, *extra: object) -> tuple[int, str]:
    args = STUDY_WRITERS[name](tmp / "in")
    flag = "--csv" if name == "template-csv" else "--out"
    return invoke(*args, flag, out, *extra)


@pytest.mark.parametrize("name", sorted(STUDY_WRITERS))
def test_study_writers_replace_only_their_own_unchanged_folder(name: str, tmp_path: Path) -> None:
    out = foreign(tmp_path / "out")
    code, text = _write(name, tmp_path, out, "--force")
    assert code == 2 and "not written by pofa" in text and "thesis.docx" in text, text
    assert [p.name for p in out.iterdir()] == ["thesis.docx"]  # nothing changed
    # a folder pofa wrote is recognised by its record, and replaced with --force only
    own = tmp_path / "own"
    code, text = _write(name, tmp_path, own)
    assert code == 0, text
    assert (own / WRITTEN_RECORD).is_file() and is_pofa_folder(own)
    code, text = _write(name, tmp_path, own)
    assert code == 2 and "not empty" in text
    code, text = _write(name, tmp_path, own, "--force")
    assert code == 0, text
    # edited since pofa wrote it: refused, the edit kept
    (own / "patients.csv").write_text((own / "patients.csv").read_text(encoding="utf-8") + "\n",
                                      encoding="utf-8")
    assert foreign_files(own) == ["patients.csv (changed since pofa wrote it)"]
    code, text = _write(name, tmp_path, own, "--force")
    assert code == 2 and "patients.csv (changed since pofa wrote it)" in text, text
    (own / "patients.csv").unlink()
    (own / "notes.txt").write_text("mine", encoding="utf-8")  # a file added
    code, text = _write(name, tmp_path, own, "--force")
    assert code == 2 and "notes.txt (not written by pofa)" in text, text
    assert (own / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "in") == ["out", "own"]  # no leftovers


def test_analyze_and_demo_refuse_a_study_folder_and_a_foreign_one(example_study: Path, tmp_path: Path
                                                                  ) -> None:
    out = foreign(tmp_path / "out")
    code, text = invoke("analyze", example_study, "--out", out, "--force")
    assert code == 2 and "thesis.docx (not listed" not in text and "not written by pofa" in text
    code, text = invoke("demo", "--out", out, "--force")
    assert code == 2 and "not written by pofa" in text
    assert [p.name for p in out.iterdir()] == ["thesis.docx"]
    # a study folder pofa wrote (simulate) is not an analysis output: analyze --force does not replace it
    sim = tmp_path / "sim"
    assert invoke("simulate", "--out", sim, "--patients", "8")[0] == 0
    code, text = invoke("analyze", example_study, "--out", sim, "--force")
    assert code == 2 and "manifest.json" in text
    assert is_pofa_folder(sim)


@pytest.mark.parametrize("command", ["build-study", "batch"])
def test_imaging_commands_refuse_a_foreign_folder(command: str, tmp_path: Path) -> None:
    pytest.importorskip("SimpleITK")
    from batch_data import make_study

    files = make_study(tmp_path / "images", 1)
    out = foreign(tmp_path / "out")
    extra = ["--workers", "1", "--no-progress"] if command == "batch" else []
    code, text = invoke(command, files.manifest, "--out", out, "--force", *extra)
    assert code == 2 and ("not written by pofa" in text or "no earlier pofa batch" in text), text
    assert [p.name for p in out.iterdir()] == ["thesis.docx"]


def test_analyze_manifest_keep_study_follows_the_rule(tmp_path: Path) -> None:
    pytest.importorskip("SimpleITK")
    from batch_data import make_study

    files = make_study(tmp_path / "images", 1)
    kept = foreign(tmp_path / "kept")
    code, text = invoke("analyze", files.manifest, "--out", tmp_path / "out", "--keep-study", kept, "--force")
    assert code == 2 and "not written by pofa" in text and not (tmp_path / "out").exists()
    assert [p.name for p in kept.iterdir()] == ["thesis.docx"]
    code, text = invoke("analyze", tmp_path / "nothing", "--out", tmp_path / "out", "--keep-study", kept)
    assert code == 2 and "imaging manifest" in text


@pytest.mark.parametrize("args", [
    ["dose", "labels.nii.gz", "--rtdose", "rd.dcm", "--prescription-gy", "30"],
    ["extract", "pet.nii.gz"],
    ["template"],
    ["model", "fit", "study"],
    ["predict", "published", "lesions.csv"],
])
def test_single_file_writers_refuse_an_existing_file(args: list[str], tmp_path: Path) -> None:
    pytest.importorskip("SimpleITK")
    name = "study.xlsx" if args == ["template"] else ("model.json" if args[0] == "model" else "x.csv")
    target = tmp_path / name
    target.write_text("mine", encoding="utf-8")
    code, text = invoke(*args, "--out", target)
    assert code == 2 and "exist" in text, text
    assert target.read_text(encoding="utf-8") == "mine"


def test_an_old_study_folder_swapped_aside_is_removed_by_the_next_run(tmp_path: Path) -> None:
    from pofa.atomic import clean_leftovers, output_dir

    with output_dir(tmp_path / "aside") as tmp:  # a study folder pofa wrote (with its record) ...
        (tmp / "patients.csv").write_text("patient_id\nP1\n", encoding="utf-8")
    (tmp_path / "aside").rename(tmp_path / ".out.x1.partial")  # ... left aside by a run killed after the swap
    (tmp_path / ".out.x2.partial").mkdir()  # named alike, not pofa's: kept
    (tmp_path / ".out.x2.partial" / "mine.txt").write_text("mine", encoding="utf-8")
    assert [p.name for p in clean_leftovers(tmp_path / "out")] == [".out.x1.partial"]
    assert (tmp_path / ".out.x2.partial" / "mine.txt").is_file()


@pytest.mark.slow
def test_killed_simulate_leaves_the_previous_study_and_no_leftovers(tmp_path: Path) -> None:
    """``pofa simulate --force`` of 5,000 patients killed at several moments: the previous study stays whole
    (every file as its record says), and after a rerun the parent holds only the study."""
    import os
    import signal
    import subprocess
    import time

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    out = tmp_path / "study"
    command = [sys.executable, "-m", "pofa", "simulate", "--out", str(out), "--patients", "5000", "--force"]
    start = time.monotonic()
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=900)
    took = time.monotonic() - start
    reference = (out / WRITTEN_RECORD).read_bytes()
    for moment in (0.2, 0.5, 0.8, 0.95):
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(moment * took)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert out.is_dir() and is_pofa_folder(out), foreign_files(out)
        assert (out / WRITTEN_RECORD).read_bytes() == reference  # same seed: the same study either way
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=900)
    assert is_pofa_folder(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study"], "leftovers after the rerun"


@pytest.mark.slow  # starts a dask worker process
def test_batch_never_replaces_a_study_edited_since(tmp_path: Path) -> None:
    pytest.importorskip("SimpleITK")
    from batch_data import make_study

    files = make_study(tmp_path / "images", 1)
    out = tmp_path / "batch"
    args = ["batch", files.manifest, "--out", out, "--workers", "1", "--no-progress"]
    code, text = invoke(*args)
    assert code in (0, 1), text
    assert is_pofa_folder(out / "study")
    edited = (out / "study" / "patients.csv").read_text(encoding="utf-8") + "\n"
    (out / "study" / "patients.csv").write_text(edited, encoding="utf-8")
    for extra in ([], ["--force"]):
        code, text = invoke(*args, *extra)
        assert code == 2 and "changed since pofa wrote it" in text, text
        assert (out / "study" / "patients.csv").read_text(encoding="utf-8") == edited


def test_single_file_writes_remove_the_temporary_files_of_killed_writes(tmp_path: Path) -> None:
    import os
    import subprocess

    from pofa.atomic import write_text

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale = tmp_path / f".model.json.{dead}-abc123.tmp"  # a write killed before its rename
    stale.write_text("half", encoding="utf-8")
    alive = tmp_path / f".model.json.{os.getpid()}-def456.tmp"  # a write still running (this process)
    alive.write_text("busy", encoding="utf-8")
    mine = tmp_path / ".model.json.backup.tmp"  # named alike, not pofa's pattern: kept
    mine.write_text("mine", encoding="utf-8")
    write_text(tmp_path / "model.json", "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model.json", alive.name, mine.name])
