"""``pofa analyze`` / ``pofa demo`` and the analysis API: outputs, privacy, atomic writes, refusals, and a
study built to reproduce the counts of Figura et al. (IJROBP 2021)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import pofa
from pofa.analysis import (
    CORE_KEYS,
    AnalysisOptions,
    AnalysisResult,
    AnalysisStep,
    json_ready,
    run_analysis,
    write_outputs,
)
from pofa.cli import app
from pofa.data import bundled_study
from pofa.errors import PofaError, StudyError

PATTERN_KEYS = ["patients", "lesions", "recurred", "local_component", "strictly_local", "strictly_de_novo",
                "mixed", "unknown", "maintained_control", "local_failure_lesions"]
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
runner = CliRunner(env={"COLUMNS": "250"})  # wide enough that rich does not wrap findings


def analyze(*args: str | Path) -> object:
    return runner.invoke(app, ["analyze", *map(str, args)])


def results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text(encoding="utf-8"))


def no_leftovers(parent: Path) -> bool:
    """No temporary (.partial / .old) folders of an output folder were left behind."""
    return not [p for p in parent.iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------------------------------------------------------
# The command


def test_analyze_writes_the_outputs(example_analysis: tuple[Path, str]) -> None:
    out, printed = example_analysis
    assert sorted(p.name for p in out.iterdir()) == [
        "failures.csv", "figures", "lesions.csv", "manifest.json", "patients.csv", "report.html",
        "results.json", "tables"]
    assert str(out) in printed.replace("\n", "")
    r = results(out)
    assert list(r["patterns"]) == PATTERN_KEYS
    assert r["patterns"] == {"patients": 5, "lesions": 9, "recurred": 3, "local_component": 2,
                             "strictly_local": 1, "strictly_de_novo": 1, "mixed": 1, "unknown": 0,
                             "maintained_control": 3, "local_failure_lesions": 2}
    study = pofa.load_study(bundled_study("example"))
    assert r["pofa_version"] == pofa.__version__
    assert r["study"] == "example"
    assert r["settings"] == study.settings.to_json()
    assert r["inputs"] == study.input_hashes()
    assert r["files"][:3] == ["lesions.csv", "patients.csv", "failures.csv"]
    assert r["files"][-1] == "results.json"
    assert "report.html" in r["files"]
    assert all((out / f).is_file() for f in r["files"])
    assert r["classification"]["notes"] == []
    assert "30 days" in r["classification"]["method"]

    lesions = pd.read_csv(out / "lesions.csv")
    assert len(lesions) == 9
    assert {"lesion_outcome", "local_failure", "lf_months", "lf_status"} <= set(lesions.columns)
    # no patient ids without --show-ids: study sequence numbers (P001..P004 are 1..4, 007 is 5)
    assert "patient_id" not in lesions.columns
    assert set(lesions["patient_seq"]) == {1, 2, 3, 4, 5}
    patients = pd.read_csv(out / "patients.csv")
    assert {"pattern", "maintained_control", "pfs_months", "pfs_event", "os_months", "os_event", "n_lesions",
            "any_diameter_cm_ge_5", "dmax_mm", "fp_months", "fp_status", "age", "sex"} <= set(
        patients.columns)
    assert patients.set_index("patient_seq")["pattern"].to_dict()[1] == "mixed"
    for name in ("lesions.csv", "patients.csv", "failures.csv"):
        assert "P001" not in (out / name).read_text(encoding="utf-8")


def test_show_ids_keeps_the_ids(example_study: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert analyze(example_study, "--out", out, "--show-ids").exit_code == 0
    lesions = pd.read_csv(out / "lesions.csv", dtype={"patient_id": str})
    assert set(lesions["patient_id"]) == {"P001", "P002", "P003", "P004", "007"}  # ids kept as text
    patients = pd.read_csv(out / "patients.csv", dtype={"patient_id": str})
    assert patients.set_index("patient_id")["pattern"].to_dict()["P001"] == "mixed"
    assert results(out)["privacy"]["show_ids"] is True


def test_no_calendar_dates_by_default(example_study: Path, tmp_path: Path, tables_only: None) -> None:
    patients = pd.read_csv(example_study / "patients.csv", dtype=str, keep_default_na=False)
    patients["biopsy"] = "03/14/2018"  # a date the reader keeps as text: left out
    patients["surgery_date"] = "2018-01-02"  # a date covariate: becomes days from the index date
    patients.to_csv(example_study / "patients.csv", index=False)
    out = tmp_path / "out"
    assert analyze(example_study, "--out", out).exit_code == 0
    for csv in out.glob("*.csv"):
        text = csv.read_text(encoding="utf-8")
        assert not ISO_DATE.search(text), csv.name
        assert "03/14/2018" not in text
    p = pd.read_csv(out / "patients.csv").set_index("patient_seq")
    assert "index_date" not in p.columns and "biopsy" not in p.columns
    assert p.loc[1, "progression_days"] == 82  # P001: 2018-01-10 -> 2018-04-02
    assert p.loc[1, "surgery_days"] == -8
    f = pd.read_csv(out / "failures.csv")
    assert f["scan_days"].tolist() == [82, 82, 76, 113]
    privacy = results(out)["privacy"]
    assert privacy["date_like_columns_left_out"]["patients"] == ["biopsy"]
    assert "surgery_date" in privacy["dates_as_days_from_index"]["patients"]


def test_show_dates_keeps_them(example_study: Path, tmp_path: Path, tables_only: None) -> None:
    out = tmp_path / "out"
    assert analyze(example_study, "--out", out, "--show-dates").exit_code == 0
    p = pd.read_csv(out / "patients.csv", dtype=str).set_index("patient_seq")
    assert p.loc["1", "index_date"] == "2018-01-10"
    assert p.loc["1", "progression_date"] == "2018-04-02"
    assert p.loc["1", "progression_days"] == "82"
    assert results(out)["options"]["show_dates"] is True


def test_existing_output_needs_force(example_study: Path, tmp_path: Path, tables_only: None) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    res = analyze(example_study, "--out", out)
    assert res.exit_code == 2
    assert "--force" in res.output
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    # --force replaces only a folder pofa wrote: this one holds a file pofa never wrote
    res = analyze(example_study, "--out", out, "--force")
    assert res.exit_code == 2
    assert "not written by pofa" in " ".join(res.output.split())
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    (out / "keep.txt").unlink()
    assert analyze(example_study, "--out", out).exit_code == 0  # an empty folder needs no --force
    res = analyze(example_study, "--out", out, "--force")
    assert res.exit_code == 0, res.output
    assert (out / "results.json").is_file()
    assert no_leftovers(tmp_path)
    (out / "mine.txt").write_text("added by hand", encoding="utf-8")
    assert analyze(example_study, "--out", out, "--force").exit_code == 2  # a file the manifest does not list
    assert (out / "mine.txt").is_file()


def test_invalid_study_stops_and_writes_nothing(example_study: Path, tmp_path: Path) -> None:
    # P004 has a failure row; without a progression date that is a validation error.
    patients = pd.read_csv(example_study / "patients.csv", dtype=str, keep_default_na=False)
    patients.loc[patients["patient_id"] == "P004", "progression_date"] = ""
    patients.to_csv(example_study / "patients.csv", index=False)
    out = tmp_path / "results" / "out"
    res = analyze(example_study, "--out", out)
    assert res.exit_code == 2
    assert "failure lesion but no progression_date" in res.output
    assert "nothing was written" in res.output
    assert not out.exists()
    assert not (tmp_path / "results").exists() or no_leftovers(tmp_path / "results")
    with pytest.raises(StudyError, match="validation error"):
        run_analysis(pofa.load_study(example_study))


def test_missing_study_folder(tmp_path: Path) -> None:
    res = analyze(tmp_path / "nope", "--out", tmp_path / "out")
    assert res.exit_code == 2
    assert "not-a-study" in res.output or "no such file or folder" in res.output
    assert not (tmp_path / "out").exists()


def test_geometry_notes_reach_results_json(example_study: Path, tmp_path: Path, tables_only: None) -> None:
    failures = pd.read_csv(example_study / "failures.csv", dtype=str, keep_default_na=False)
    # P001's new lesion F2 placed on its baseline L2 (centre -30, -10, 300): geometry makes it local.
    failures.loc[1, ["x_mm", "y_mm", "z_mm"]] = ["-30", "-10", "300"]
    # P002's F1 names L1 but sits on L2 (-80, 60, -200): a conflict; the id wins.
    failures.loc[2, ["x_mm", "y_mm", "z_mm", "diameter_cm"]] = ["-80", "60", "-200", "1"]
    failures.to_csv(example_study / "failures.csv", index=False)
    toml = '[study]\nname = "example"\n[classification]\nuse_geometry = true\n'
    (example_study / "study.toml").write_text(toml, encoding="utf-8")
    out = tmp_path / "out"
    assert analyze(example_study, "--out", out).exit_code == 0
    r = results(out)
    [note] = r["classification"]["notes"]
    assert note["kind"] == "id-geometry-conflict"
    where = (note["file"], note["row"], note["patient_seq"], note["failure_id"])
    assert where == ("failures.csv", 4, 2, "F1")  # P002 is study patient 2; the file row points back to it
    assert "patient_id" not in note
    assert r["settings"]["classification"]["use_geometry"] is True
    assert r["patterns"]["strictly_local"] == 2 and r["patterns"]["mixed"] == 0
    f = pd.read_csv(out / "failures.csv", dtype=str).set_index(["patient_seq", "failure_id"])
    assert f.loc[("1", "F2"), "assigned_by"] == "geometry"
    assert f.loc[("1", "F2"), "assigned_lesion_id"] == "L2"


@pytest.mark.slow
def test_demo_runs_the_full_analysis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "demo-out"
    res = runner.invoke(app, ["demo", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert str(out) in res.output.replace("\n", "")
    r = results(out)
    assert list(r["patterns"]) == PATTERN_KEYS
    assert r["patterns"]["patients"] >= 5
    # run again, the demo replaces its own previous output (recognised by its manifest) without --force
    assert runner.invoke(app, ["demo", "--out", str(out)]).exit_code == 0
    assert runner.invoke(app, ["demo", "--out", str(out), "--force"]).exit_code == 0
    assert no_leftovers(tmp_path)
    # ... but nothing else: a folder with a file pofa did not write is refused, with or without --force
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    assert runner.invoke(app, ["demo", "--out", str(out)]).exit_code == 2
    assert runner.invoke(app, ["demo", "--out", str(out), "--force"]).exit_code == 2
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"


# ------------------------------------------------------------------------------------------------------------
# The API: steps, writers, atomic output


def test_steps_add_results_json_keys(example_study: Path, tmp_path: Path, tables_only: None) -> None:
    seen: list[int] = []

    def counts(result: AnalysisResult) -> dict:
        seen.append(len(result.stats))
        return {"n": len(result.lesions), "ratio": float("nan")}

    def second(result: AnalysisResult) -> dict:
        return {"previous": result.stats["lesion_models"]["n"]}

    steps = [AnalysisStep("lesion_models", counts), AnalysisStep("survival", second)]
    result = run_analysis(pofa.load_study(example_study), steps=steps)
    assert dict(result.stats) == {"lesion_models": {"n": 9, "ratio": result.stats["lesion_models"]["ratio"]},
                                  "survival": {"previous": 9}}
    folder = write_outputs(result, tmp_path / "out")
    r = results(folder)
    assert r["lesion_models"] == {"n": 9, "ratio": None}  # non-finite numbers become null
    assert r["survival"] == {"previous": 9}
    for key in sorted(CORE_KEYS)[:3]:
        with pytest.raises(PofaError, match="already used"):
            result.with_stats(key, {})
    with pytest.raises(PofaError, match="already used"):
        result.with_stats("survival", {})


def test_failed_writer_leaves_nothing(example_study: Path, tmp_path: Path) -> None:
    result = run_analysis(pofa.load_study(example_study), steps=())  # the statistics play no part

    def broken(result: AnalysisResult, folder: Path) -> tuple[str, ...]:
        (folder / "report.html").write_text("half", encoding="utf-8")
        raise RuntimeError("disk full")

    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        write_outputs(result, out, writers=[broken])
    assert not out.exists()
    assert no_leftovers(tmp_path)


def test_result_is_immutable_and_inputs_untouched(example_study: Path) -> None:
    study = pofa.load_study(example_study)
    before = (study.patients, study.lesions, study.failures)
    result = run_analysis(study, AnalysisOptions(), steps=())
    copy = result.patients
    copy.loc[:, "pattern"] = "changed"
    assert "changed" not in set(result.patients["pattern"])
    for a, b in zip(before, (study.patients, study.lesions, study.failures), strict=True):
        pd.testing.assert_frame_equal(a, b)
    with pytest.raises(AttributeError):
        result.study_name = "x"  # type: ignore[misc]


def test_json_ready() -> None:
    import numpy as np

    from pofa.classify import PatientPattern

    assert json_ready({"a": np.float64(1.5), "b": [np.int64(2), float("inf")], "c": PatientPattern.MIXED,
                       "d": pd.NA}) == {"a": 1.5, "b": [2, None], "c": "mixed", "d": None}
    with pytest.raises(PofaError):
        json_ready({"a": object()})


# ------------------------------------------------------------------------------------------------------------
# A study built to mirror the paper's reported counts


def paper_study(folder: Path) -> dict[str, int]:
    """63 patients, 469 baseline lesions; 36 recurred: 13 strictly local, 18 mixed, 5 strictly de novo.

    Deterministic. Patients 0-12 strictly local, 13-30 mixed, 31-35 strictly de novo, 36-62 without
    progression.
    Local-component patients 0-4 fail every lesion (no maintained control); the others fail 1-3 lesions. Every
    strictly local patient with an even number has a later de novo failure (day 45 after progression) and
    patient 14 a later local failure: later events that must not change the counts. Returns the expected
    number of lesions with local failure at first progression.
    """
    folder.mkdir(parents=True)
    base = pd.Timestamp("2016-06-01")
    d = lambda start, n: (start + pd.Timedelta(days=int(n))).strftime("%Y-%m-%d")  # noqa: E731
    patients, lesions, failures = [], [], []
    expected_failed = 0
    for i in range(63):
        pid = f"MCC-{i + 1:03d}"
        index = base + pd.Timedelta(days=7 * i)
        n_les = 7 if i < 35 else 8
        prog = 30 + (i * 11) % 300 if i < 36 else None
        death = 400 + i if i % 4 == 0 else None
        follow = death if death is not None else 365 + (i * 13) % 700
        patients.append({"patient_id": pid, "index_date": d(index, 0), "last_followup_date": d(index, follow),
                         "progression_date": d(index, prog) if prog is not None else "",
                         "death_date": d(index, death) if death is not None else "", "age": 40 + i % 40})
        for j in range(n_les):
            lesions.append({"patient_id": pid, "lesion_id": f"{i + 1}.{j + 1}", "site": "node",
                            "extranodal": "yes" if (i + j) % 3 == 0 else "no",
                            "diameter_cm": round(1.0 + ((i * 7 + j * 3) % 90) / 10, 1),
                            "suvmax": round(3.0 + ((i * 5 + j * 11) % 200) / 10, 1)})
        if prog is None:
            continue
        planned: list[tuple[str, int]] = []  # (baseline lesion id, "" = new lesion; days after progression)
        if i < 31:  # local component
            n_fail = n_les if i < 5 else 1 + i % 3
            planned += [(f"{i + 1}.{j + 1}", j % 31) for j in range(n_fail)]  # over days 0-30 of the window
            expected_failed += n_fail
        if i >= 13:  # de novo component
            planned += [("", 30 * m) for m in range(1 + i % 2)]  # day 0 or 30: in the window
        if i < 13 and i % 2 == 0:
            planned.append(("", 45))  # later de novo event
        if i == 14:
            planned.append((f"{i + 1}.{n_les}", 31))  # later local event (day 31: outside the window)
        for k, (lesion_id, days) in enumerate(planned):
            failures.append({"patient_id": pid, "failure_id": f"F{k + 1}", "scan_date": d(index, prog + days),
                             "baseline_lesion_id": lesion_id, "site": "" if lesion_id else "lung",
                             "extranodal": "" if lesion_id else "yes"})
    pd.DataFrame(patients).to_csv(folder / "patients.csv", index=False)
    pd.DataFrame(lesions).to_csv(folder / "lesions.csv", index=False)
    pd.DataFrame(failures).to_csv(folder / "failures.csv", index=False)
    (folder / "study.toml").write_text('[study]\nname = "Figura 2021 mirror"\n', encoding="utf-8")
    return {"local_failure_lesions": expected_failed}


def test_paper_counts(tmp_path: Path, tables_only: None) -> None:
    expected = paper_study(tmp_path / "paper")
    assert pofa.load_study(tmp_path / "paper").validate().findings == ()
    out = tmp_path / "out"
    res = analyze(tmp_path / "paper", "--out", out)
    assert res.exit_code == 0, res.output
    p = results(out)["patterns"]
    assert p == {"patients": 63, "lesions": 469, "recurred": 36, "local_component": 31, "strictly_local": 13,
                 "strictly_de_novo": 5, "mixed": 18, "unknown": 0, "maintained_control": 31,
                 "local_failure_lesions": expected["local_failure_lesions"]}
    # The paper's percentages: 57% recurred; of them 86% local component, 36% strictly local, 50% mixed,
    # 14% strictly de novo; 26/31 (84%) of the local-component patients kept other lesions controlled.
    assert [round(100 * p[k] / p["recurred"]) for k in ("local_component", "strictly_local", "mixed",
                                                        "strictly_de_novo")] == [86, 36, 50, 14]
    assert round(100 * p["recurred"] / p["patients"]) == 57
    patients = pd.read_csv(out / "patients.csv")
    local = patients[patients["local_component"]]
    assert (len(local), int(local["maintained_control"].sum())) == (31, 26)
    assert patients["fp_status"].value_counts().to_dict().get(1) == 31
    assert patients["fp_status"].value_counts().to_dict().get(2) == 5
    lesions = pd.read_csv(out / "lesions.csv")
    assert int(lesions["local_failure"].sum()) == expected["local_failure_lesions"]
    assert int((lesions["lf_status"] == 1).sum()) == expected["local_failure_lesions"] + 1  # + the later one
    assert list(lesions["lesion_id"].astype(str))[:2] == ["1.1", "1.2"]
    # The run is deterministic: a second build gives identical outputs.
    paper_study(tmp_path / "again")
    out2 = tmp_path / "out2"
    assert analyze(tmp_path / "again", "--out", out2).exit_code == 0
    for name in ("lesions.csv", "patients.csv", "failures.csv"):
        assert (out / name).read_bytes() == (out2 / name).read_bytes()
    shutil.rmtree(out2)


def test_output_folder_may_not_replace_the_study(example_study: Path, tmp_path: Path) -> None:
    before = sorted(p.name for p in example_study.iterdir())
    for out in (example_study, example_study.parent):
        res = analyze(example_study, "--out", out, "--force")
        assert res.exit_code == 2
        assert "holds the study itself" in " ".join(res.output.split())  # rich may wrap a long path
    result = run_analysis(pofa.load_study(example_study), steps=())
    with pytest.raises(PofaError, match="holds the study itself"):
        write_outputs(result, example_study, force=True)
    assert sorted(p.name for p in example_study.iterdir()) == before
