"""The report's "Baseline and failure scans" section: one MIP figure per patient with a failure scan.

A tiny imaging study (tests/batch_data.py: 4 patients, failure scans for the 1st and 3rd) goes through
``pofa analyze MANIFEST.csv``; the figures are checked by their data -- the lesion outlines written into the
SVG files (``id="lesion:<panel>:<label>:<outcome>"``) and the figures' ``drawn`` records -- against the match
classes of the built study's failures.csv and against the rendered truth, not by pixels.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from batch_data import StudyFiles, make_study
from pofa.cli import app
from pofa.report.model import ReportError, ReportInput


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> tuple[StudyFiles, Path]:
    root = tmp_path_factory.mktemp("mip")
    files = make_study(root / "images", 4)
    out = root / "out"
    res = CliRunner().invoke(app, ["analyze", str(files.manifest), "--out", str(out), "--keep-study",
                                   str(_built(out))])
    assert res.exit_code == 0, res.output
    assert not (out / "study").exists()  # the built study (ids, dates) is never in the results
    return files, out


def _built(out: Path) -> Path:
    """The study built from the images, kept beside the results with --keep-study."""
    return out.parent / "built"


def _section(html: str) -> str:
    start = html.index('<section id="scans">')
    return html[start : html.index("</section>", start)]


def _failure_classes(study: Path) -> dict[str, dict[int, str]]:
    """Patient id -> {failure label: match_class} of the first failure scan (rows S1-...)."""
    out: dict[str, dict[int, str]] = {}
    with (study / "failures.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["failure_id"].startswith("S1-"):
                out.setdefault(row["patient_id"], {})[int(row["followup_label"])] = row["match_class"]
    return out


def _local_baseline(study: Path) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    with (study / "failures.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["failure_id"].startswith("S1-") and row["baseline_lesion_id"]:
                out.setdefault(row["patient_id"], set()).add(int(row["baseline_lesion_id"]))
    return out


def _svg_outlines(svg: str) -> dict[str, dict[int, str]]:
    found: dict[str, dict[int, str]] = {"baseline": {}, "failure": {}}
    for panel, label, outcome in re.findall(r'id="lesion:(baseline|failure):(\d+):([a-z_]+)"', svg):
        assert int(label) not in found[panel], "one outline per lesion"
        found[panel][int(label)] = outcome.replace("_", " ")
    return found


def test_one_mip_figure_per_recurred_patient(analysed: tuple[StudyFiles, Path]) -> None:
    files, out = analysed
    html = (out / "report.html").read_text(encoding="utf-8")
    recurred = [k for k, t in enumerate(files.truth, start=1) if t.has_failure]  # sequence numbers 1 and 3
    assert recurred == [1, 3]
    names = [f"scans_{k:03d}" for k in recurred]
    assert re.findall(r'<figure class="fig" id="fig-(scans_\d+)">', html) == names
    assert '<a href="#scans">Baseline and failure scans</a>' in html
    section = _section(html)
    assert "<h2>Baseline and failure scans</h2>" in section
    for k, name in zip(recurred, names, strict=True):
        assert (out / "figures" / f"{name}.svg").is_file() and not (out / "figures" / f"{name}.png").exists()
        assert f"Baseline and failure scans of patient {k}." in section
    # self-contained: embedded images, no file links
    assert section.count('src="data:image/svg+xml;base64,') == len(names)
    # no identifiers and no dates unless --show-ids (in the text: the images are base64)
    text = re.sub(r'src="data:[^"]*"', "", section)
    for t in files.truth:
        assert t.patient_id not in text
    assert not re.search(r"\d{4}-\d{2}-\d{2}", text)
    # alt text and how it was made: registration method, tolerance and margin
    alts = re.findall(r'<img src="data:[^"]+" alt="([^"]+)"', section)
    assert len(alts) == 2 and all("baseline on the left and failure on the right" in a for a in alts)
    hows = re.findall(r'<span class="how">(.*?)</span>', section, flags=re.S)
    assert len(hows) == 2
    for how in hows:
        assert "baseline: a precomputed transform (TranslationTransform)." in how
        assert "grown by 0 mm" in how and "within 10 mm" in how
        assert ".tfm" not in how  # no file names (they may hold identifiers)
    results = json.loads((out / "results.json").read_text())
    assert {f"figures/{n}.svg" for n in names} <= set(results["files"])
    assert not any(f.endswith(".png") for f in results["files"])  # PNG only with --png


def test_figure_data_equal_the_match_classes(analysed: tuple[StudyFiles, Path]) -> None:
    files, out = analysed
    classes = _failure_classes(_built(out))
    local = _local_baseline(_built(out))
    seq = {t.patient_id: k for k, t in enumerate(files.truth, start=1)}
    checked = 0
    for t in files.truth:
        svg_path = out / "figures" / f"scans_{seq[t.patient_id]:03d}.svg"
        if not t.has_failure:
            assert not svg_path.exists()
            continue
        drawn = _svg_outlines(svg_path.read_text(encoding="utf-8"))
        # failure lesions: one outline each, coloured by the class failures.csv holds
        assert drawn["failure"] == classes[t.patient_id]
        # baseline lesions: local failure exactly when failures.csv names them as failed
        assert set(drawn["baseline"]) == set(range(1, len(t.baseline) + 1))
        for label, outcome in drawn["baseline"].items():
            assert outcome == ("local failure" if label in local[t.patient_id] else "no failure")
        # and the rendered truth: persisting lesions are local, the new one de novo
        assert sorted(drawn["failure"].values()).count("local") == len(t.persisting)
        assert sorted(drawn["failure"].values()).count("de novo") == t.n_new
        assert sum(o == "local failure" for o in drawn["baseline"].values()) == len(t.persisting)
        checked += 1
    assert checked == 2


def _report_input(study: Path, drop: tuple[str, ...] = ()) -> ReportInput:
    ids = [r["patient_id"] for r in csv.DictReader((study / "patients.csv").open(encoding="utf-8"))]
    ids = [i for i in ids if i not in drop]
    patients = pd.DataFrame(
        {
            "patient_id": ids,
            "pfs_months": [None] * len(ids),
            "pfs_event": [None] * len(ids),
            "os_months": [None] * len(ids),
            "os_event": [None] * len(ids),
            "progression_months": [None] * len(ids),
            "pattern": ["none"] * len(ids),
        }
    )
    lesions = pd.DataFrame(
        columns=["patient_id", "site", "extranodal", "diameter_cm", "suvmax", "local_failure"]
    )
    return ReportInput(results={}, patients=patients, lesions=lesions)


def _figures(study: Path, show_ids: bool, drop: tuple[str, ...] = ()) -> list[Any]:
    from pofa.report.figures import build_scan_figures, rc_context

    with rc_context():
        inp = _report_input(study, drop)
        built = build_scan_figures(inp, study, show_ids=show_ids, versions={"pofa": "x"})
    for b in built:
        b.figure.clear()
    return list(built)


def test_drawn_records_labels_and_dates(analysed: tuple[StudyFiles, Path]) -> None:
    files, out = analysed
    study = _built(out)
    classes = _failure_classes(study)
    figs = _figures(study, show_ids=False)
    assert [f.spec.name for f in figs] == ["scans_001", "scans_003"]
    for f in figs:
        pid = f.drawn["patient_id"]
        assert f.drawn["failure"] == classes[pid]
        assert pid not in f.spec.title + f.spec.caption + f.spec.alt + f.spec.how
        assert not re.search(r"\d{4}-\d{2}-\d{2}", f.spec.caption + f.spec.alt + f.spec.how)
    # --show-ids: identifiers and the scan dates
    shown = _figures(study, show_ids=True)
    info = json.loads((study / "imaging.json").read_text())
    dates = {p["patient_id"]: [s["scan_date"] for s in p["scans"]] for p in info["patients"]}
    for f in shown:
        pid = f.drawn["patient_id"]
        assert f.spec.title == f"Baseline and failure scans of patient {pid}"
        assert f"(baseline {dates[pid][0]}, failure {dates[pid][1]})" in f.spec.caption
    # only the patients of the analysed table
    assert [f.drawn["patient_id"] for f in _figures(study, False, drop=("P000",))] == ["P002"]


def test_study_without_images_has_no_scan_section(analysed: tuple[StudyFiles, Path], tmp_path: Path) -> None:
    _, out = analysed
    plain = tmp_path / "plain"
    shutil.copytree(_built(out), plain)
    (plain / "imaging.json").unlink()
    res = CliRunner().invoke(app, ["analyze", str(plain), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "o" / "report.html").read_text(encoding="utf-8")
    assert 'id="scans"' not in html and "Baseline and failure scans" not in html
    assert not list((tmp_path / "o" / "figures").glob("scans_*"))
    assert _figures(plain, show_ids=False) == []


def test_imaging_json_without_or_with_damaged_figure_data(analysed: tuple[StudyFiles, Path],
                                                          tmp_path: Path) -> None:
    _, out = analysed
    info = json.loads((_built(out) / "imaging.json").read_text())
    # built before the figure existed: no figures, no error
    old = tmp_path / "old"
    old.mkdir()
    (old / "imaging.json").write_text(json.dumps({**info, "patients": [
        {k: v for k, v in p.items() if k != "figure"} for p in info["patients"]]}))
    shutil.copy(_built(out) / "patients.csv", old / "patients.csv")
    assert _figures(old, show_ids=False) == []
    # damaged: a clear error, never a figure silently missing
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(_built(out) / "patients.csv", bad / "patients.csv")
    patients = [dict(p) for p in info["patients"]]
    patients[0]["figure"] = {**patients[0]["figure"], "format": 99}
    (bad / "imaging.json").write_text(json.dumps({**info, "patients": patients}))
    with pytest.raises(ReportError, match="format 99"):
        _figures(bad, show_ids=False)
    patients[0]["figure"] = {**info["patients"][0]["figure"]}
    patients[0]["figure"]["failure"] = {**patients[0]["figure"]["failure"], "image": "not base64!"}
    (bad / "imaging.json").write_text(json.dumps({**info, "patients": patients}))
    with pytest.raises(ReportError, match="damaged"):
        _figures(bad, show_ids=False)
    (bad / "imaging.json").write_text("{not json")
    with pytest.raises(ReportError, match="cannot be read"):
        _figures(bad, show_ids=False)


def test_figure_failure_keeps_the_patient(analysed: tuple[StudyFiles, Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A figure that cannot be made (e.g. an oblique PET) leaves the patient's rows intact, with a warning."""
    import pofa.imaging.mip as mip
    from pofa.batch.manifest import load_manifest
    from pofa.batch.pipeline import process_patient
    from pofa.errors import ImagingError

    files, _ = analysed
    scans = load_manifest(files.manifest).patients()[0]
    good = process_patient(scans)
    assert good.figure and good.figure_data is not None and good.figure_data["format"] == mip.MIP_FORMAT

    def oblique(*args: object, **kwargs: object) -> None:
        raise ImagingError("Cannot tell the image's axes apart (oblique orientation)")

    monkeypatch.setattr(mip, "match_mip", oblique)
    res = process_patient(scans)
    assert res.figure == "" and res.figure_data is None
    assert res.lesions == good.lesions and res.failures == good.failures
    warnings = res.provenance[1]["matching"]["warnings"]
    assert any("no report figure" in w and "oblique" in w for w in warnings)
