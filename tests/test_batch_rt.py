"""The imaging manifest's radiotherapy columns: dose and field classes of failure lesions from the plan.

A synthetic patient (tests/batch_data.py anatomy, 5 mm voxels): baseline lesions A at (30, 20, 10) and B at
(-45, -35, 30); at failure A persists (a local failure) and a new lesion C appears at (45, -25, -25), 59 mm
from A; the failure scan is the anatomy moved by (4, -3, 5) mm. The plan's dose is a sphere centred on A
(100% of 30 Gy within 18 mm, falling linearly to 0 at 28 mm: the 95% isodose is the sphere of 18.5 mm). A's
voxel centres lie within 10 mm of its centre, all inside the isodose: in-field by both rules (V95 = 100%,
centroid dose 30 Gy). C lies 59 - 10 = 49 mm or more from A's centre, where the dose is 0: out-of-field by
both rules (V95 = 0, centroid 40 mm from the isodose).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from batch_data import Lesion, render, write_translation
from pofa.batch.cache import input_hashes, patient_key
from pofa.batch.manifest import ManifestCode, read_manifest
from pofa.batch.rt import compose
from pofa.batch.study import build_study_from_manifest
from pofa.cli import app
from test_rt_dose import write_rtdose, write_rtplan

BASE_FOR = "1.2.826.0.1.3680043.8.498.77"
PLAN_FOR = "1.2.826.0.1.3680043.8.498.78"
A = (30.0, 20.0, 10.0)
B = (-45.0, -35.0, 30.0)
C = (45.0, -25.0, -25.0)
SHIFT = (4.0, -3.0, 5.0)
P = 30.0
R0, R1 = 18.0, 28.0

HEADER = ["patient_id", "role", "scan_date", "pet", "ct", "mask", "organs", "threshold", "transform",
          "rtdose", "rtplan", "rtstruct", "rtct", "rt_prescription_gy", "rt_fractions"]


def sphere_dose(path: Path, centre: tuple[float, float, float], for_uid: str) -> Path:
    """A 2 mm axial dose grid over the phantom (+-100 mm) carrying the sphere field about ``centre``."""
    axis = np.arange(-100.0, 100.0 + 1e-9, 2.0)
    zz, yy, xx = np.meshgrid(axis, axis, axis, indexing="ij")
    r = np.sqrt((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (zz - centre[2]) ** 2)
    dose = P * np.clip(1.0 - (r - R0) / (R1 - R0), 0.0, 1.0)
    return write_rtdose(path, dose, (-100.0, -100.0, -100.0), (1, 0, 0, 0, 1, 0), (2.0, 2.0), axis + 100.0,
                        1e-5, for_uid=for_uid)


def make_rt_study(root: Path, *, dose_for: str = BASE_FOR, sidecar: bool = True, rtct_shift=None,
                  rtplan: bool = False, extra: dict[str, str] | None = None,
                  failure_extra: dict[str, str] | None = None) -> Path:
    """One patient with a baseline and a failure PET/CT and a plan; returns the manifest's path."""
    root.mkdir(parents=True, exist_ok=True)
    base = (Lesion(A, 10.0, 9.0), Lesion(B, 10.0, 8.0))
    follow = (Lesion(A, 10.0, 9.0), Lesion(C, 10.0, 10.0))
    suv, ct, org = render(base)
    suv.to_nifti(root / "base_suv.nii.gz")
    ct.to_nifti(root / "base_ct.nii.gz")
    org.to_nifti(root / "base_organs.nii.gz")
    if sidecar:
        (root / "base_ct.json").write_text(json.dumps({"FrameOfReferenceUID": BASE_FOR}))
    suv, ct, org = render(follow, SHIFT)
    suv.to_nifti(root / "fu_suv.nii.gz")
    ct.to_nifti(root / "fu_ct.nii.gz")
    org.to_nifti(root / "fu_organs.nii.gz")
    write_translation(root / "fu.tfm", SHIFT)
    rt: dict[str, str] = {"rtdose": "rd.dcm", "rt_prescription_gy": "30", "rt_fractions": "10"}
    centre = A
    if rtct_shift is not None:
        # the planning CT shows the anatomy moved by rtct_shift: a baseline point p lies at p + rtct_shift
        _, pct, _ = render((), rtct_shift)
        pct.to_nifti(root / "plan_ct.nii.gz")
        rt["rtct"] = "plan_ct.nii.gz"
        centre = tuple(a + s for a, s in zip(A, rtct_shift, strict=True))
    sphere_dose(root / "rd.dcm", centre, dose_for)
    if rtplan:
        write_rtplan(root / "rp.dcm", P, 10, dose_for)
        rt = {"rtdose": "rd.dcm", "rtplan": "rp.dcm", **{k: v for k, v in rt.items() if k == "rtct"}}
    rt.update(extra or {})
    rows = [
        {"patient_id": "P1", "role": "baseline", "scan_date": "2020-01-02", "pet": "base_suv.nii.gz",
         "ct": "base_ct.nii.gz", "organs": "base_organs.nii.gz", "threshold": "suv4", **rt},
        {"patient_id": "P1", "role": "failure", "scan_date": "2020-06-01", "pet": "fu_suv.nii.gz",
         "ct": "fu_ct.nii.gz", "organs": "fu_organs.nii.gz", "threshold": "suv4", "transform": "fu.tfm",
         **(failure_extra or {})},
    ]
    with (root / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, HEADER)
        w.writeheader()
        w.writerows(rows)
    (root / "patients.csv").write_text(
        "patient_id,index_date,last_followup_date,progression_date,death_date\n"
        f"P1,2020-01-16,{dt.date(2020, 12, 1).isoformat()},2020-06-01,\n")
    return root / "manifest.csv"


def _failures(study: Path) -> pd.DataFrame:
    return pd.read_csv(study / "failures.csv", dtype=str, keep_default_na=False)


def _by_lesion(f: pd.DataFrame) -> dict[str, pd.Series]:
    """The failure rows keyed by 'local' (the failure of A) and 'new' (C)."""
    local = f[f["baseline_lesion_id"] != ""]
    new = f[f["baseline_lesion_id"] == ""]
    assert len(local) == 1 and len(new) == 1, f
    return {"local": local.iloc[0], "new": new.iloc[0]}


def _check_classes(study: Path) -> None:
    rows = _by_lesion(_failures(study))
    a, c = rows["local"], rows["new"]
    assert (a["class_volume"], a["class_centroid"], a["classes_agree"], a["rt_field"]) == (
        "in-field", "in-field", "yes", "in-field")
    assert float(a["v95_pct"]) == 100.0
    assert float(a["centroid_dose_gy"]) == pytest.approx(P, abs=1e-3)
    assert float(a["dmin_gy"]) == pytest.approx(P, abs=1e-3)
    assert (c["class_volume"], c["class_centroid"], c["classes_agree"], c["rt_field"]) == (
        "out-of-field", "out-of-field", "yes", "out-of-field")
    assert float(c["v95_pct"]) == 0.0
    assert float(c["dmax_gy"]) == pytest.approx(0.0, abs=1e-6)


def test_same_frame_of_reference_through_the_failure_registration(tmp_path: Path) -> None:
    manifest = make_rt_study(tmp_path / "in")
    m = read_manifest(manifest)
    assert m.ok, m.report.errors
    base = m.patients()[0].baseline
    assert base.rtdose is not None and base.rt_prescription_gy == 30.0 and base.rt_fractions == 10
    study = build_study_from_manifest(m, tmp_path / "study")
    _check_classes(study)
    info = json.loads((study / "imaging.json").read_text())
    rt = info["patients"][0]["scans"][0]["radiotherapy"]
    assert rt["prescription_gy"] == 30.0 and rt["fractions"] == 10 and rt["isodose_gy"] == pytest.approx(28.5)
    assert "identity" in rt["frame"]
    # the baseline lesion inside the field is irradiated (30 Gy in 10 fractions), the other is not
    les = pd.read_csv(study / "lesions.csv", dtype=str, keep_default_na=False)
    near = ((les["x_mm"].astype(float) - A[0]) ** 2 + (les["y_mm"].astype(float) - A[1]) ** 2) < 25
    assert near.sum() == 1
    assert les.loc[near, ["bridging_rt", "rt_dose_gy", "rt_fractions", "rt_v95_pct"]].values.tolist() == [
        ["yes", "30.0", "10", "100.0"]]
    assert les.loc[~near, ["bridging_rt", "rt_dose_gy", "rt_fractions", "rt_v95_pct"]].values.tolist() == [
        ["no", "", "", "0.0"]]


def test_study_toml_rules_set_the_classes(tmp_path: Path) -> None:
    manifest = make_rt_study(tmp_path / "in")
    # C's centroid lies 59 - 18.5 = 40.5 mm from the isodose: marginal by centroid with a 45 mm margin
    (tmp_path / "in" / "study.toml").write_text("[radiotherapy]\ncentroid_margin_mm = 45.0\n")
    study = build_study_from_manifest(manifest, tmp_path / "study")
    c = _by_lesion(_failures(study))["new"]
    assert (c["class_volume"], c["class_centroid"], c["classes_agree"]) == ("out-of-field", "marginal", "no")
    assert json.loads((study / "imaging.json").read_text())["settings"]["rt_centroid_margin_mm"] == 45.0


def test_rtplan_gives_the_prescription_and_cli_build_study(tmp_path: Path) -> None:
    manifest = make_rt_study(tmp_path / "in", rtplan=True)
    out = tmp_path / "study"
    res = CliRunner().invoke(app, ["build-study", str(manifest), "--out", str(out)])
    assert res.exit_code == 0, res.output
    _check_classes(out)


def test_planning_ct_in_another_frame_is_registered(tmp_path: Path) -> None:
    manifest = make_rt_study(tmp_path / "in", dose_for=PLAN_FOR, rtct_shift=(-7.0, 6.0, -4.0))
    m = read_manifest(manifest)
    assert m.ok, m.report.errors
    study = build_study_from_manifest(m, tmp_path / "study")
    _check_classes(study)
    rt = json.loads((study / "imaging.json").read_text())["patients"][0]["scans"][0]["radiotherapy"]
    assert "registered" in rt["frame"] and rt["registration"]["stages"] == ["rigid"]
    reg = rt["registration"]
    assert reg["body_dice_after"] > reg["body_dice_before"]


@pytest.mark.slow  # starts a dask worker process
def test_batch_and_analyze_carry_the_classes(tmp_path: Path) -> None:
    manifest = make_rt_study(tmp_path / "in")
    out = tmp_path / "batch"
    res = CliRunner().invoke(app, ["batch", str(manifest), "--out", str(out), "--workers", "1",
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    _check_classes(out / "study")
    out2 = tmp_path / "analysis"
    res = CliRunner().invoke(app, ["analyze", str(manifest), "--out", str(out2), "--keep-study",
                                   str(tmp_path / "built")])
    assert res.exit_code == 0, res.output
    assert not (out2 / "study").exists()
    _check_classes(tmp_path / "built")
    rt = json.loads((out2 / "results.json").read_text())["radiotherapy"]
    assert (rt["n_irradiated"], rt["local_failures_rt"]) == (1, 1)
    assert (rt["in_field"]["events"], rt["in_field"]["n"]) == (1, 1)
    assert rt["field_classes"] == {"in-field": 1, "marginal": 0, "out-of-field": 1}


def test_cache_key_includes_the_plan(tmp_path: Path) -> None:
    manifest = make_rt_study(tmp_path / "in")
    p = read_manifest(manifest).patients()[0]
    key = patient_key(p, {}, input_hashes(p))
    sphere_dose(tmp_path / "in" / "rd.dcm", (A[0] + 1.0, A[1], A[2]), BASE_FOR)
    assert patient_key(p, {}, input_hashes(p)) != key
    # a patient without a plan keeps the hash entries it always had
    no_rt = input_hashes(type(p)(p.patient_id, type(p.baseline)(**{
        **{f: getattr(p.baseline, f) for f in p.baseline.__slots__},
        "rtdose": None, "rt_prescription_gy": None, "rt_fractions": None}), p.failures))
    assert "rtdose" not in no_rt[0]


def _codes(manifest: Path) -> list[tuple[str, int | None, str | None]]:
    return [(str(f.code), f.row, f.column) for f in read_manifest(manifest).report.errors]


def test_dose_in_another_frame_without_rtct_is_a_located_error(tmp_path: Path) -> None:
    manifest = make_rt_study(tmp_path / "a", dose_for=PLAN_FOR)
    assert _codes(manifest) == [(ManifestCode.RT_FRAME.value, 2, "rtdose")]
    msg = read_manifest(manifest).report.errors[0]
    assert PLAN_FOR in msg.message and "rtct" in msg.hint
    # a NIfTI CT without FrameOfReferenceUID in a sidecar: the frame is unknown, the same finding
    manifest = make_rt_study(tmp_path / "b", sidecar=False)
    assert _codes(manifest) == [(ManifestCode.RT_FRAME.value, 2, "rtdose")]
    out = tmp_path / "study"
    res = CliRunner().invoke(app, ["build-study", str(manifest), "--out", str(out)])
    assert res.exit_code == 2 and "rtdose" in res.output and not out.exists()


def test_missing_and_misplaced_rt_inputs(tmp_path: Path) -> None:
    manifest = make_rt_study(tmp_path / "a", extra={"rtdose": "nope.dcm"})
    assert _codes(manifest) == [(ManifestCode.MISSING_IMAGE.value, 2, "rtdose")]
    manifest = make_rt_study(tmp_path / "b", extra={"rt_prescription_gy": "", "rt_fractions": "2.5"})
    assert sorted(_codes(manifest)) == sorted([
        (ManifestCode.BAD_RT_VALUE.value, 2, "rt_fractions"),
        (ManifestCode.RT_NO_PRESCRIPTION.value, 2, "rt_prescription_gy")])
    manifest = make_rt_study(tmp_path / "c", extra={"rt_prescription_gy": ""})
    assert _codes(manifest) == [(ManifestCode.RT_NO_PRESCRIPTION.value, 2, "rt_prescription_gy")]
    manifest = make_rt_study(tmp_path / "d", failure_extra={"rtdose": "rd.dcm"})
    assert _codes(manifest) == [(ManifestCode.RT_ON_FAILURE.value, 3, "rtdose")]
    blank = {"rtdose": "", "rt_prescription_gy": "", "rt_fractions": ""}
    manifest = make_rt_study(tmp_path / "e", extra=blank)
    assert read_manifest(manifest).ok  # no plan at all is fine
    manifest = make_rt_study(tmp_path / "f", extra={"rtdose": "", "rt_fractions": ""})
    assert _codes(manifest) == [(ManifestCode.RT_WITHOUT_DOSE.value, 2, "rt_prescription_gy")]
    manifest = make_rt_study(tmp_path / "g", extra={"rtdose": "base_ct.json"})
    assert _codes(manifest) == [(ManifestCode.BAD_RT_FILE.value, 2, "rtdose")]
    write_rtplan(tmp_path / "g" / "other_plan.dcm", P, 10, PLAN_FOR)
    manifest = make_rt_study(tmp_path / "g", extra={"rtplan": "other_plan.dcm"})
    assert _codes(manifest) == [(ManifestCode.RT_FRAME.value, 2, "rtplan")]


def test_compose_applies_first_then_second() -> None:
    import SimpleITK as sitk

    t1 = sitk.TranslationTransform(3, [1.0, 2.0, 3.0])
    t2 = sitk.Euler3DTransform([0.0, 0.0, 0.0], 0.1, 0.2, 0.3, [5.0, -1.0, 0.5])
    c = compose(t1, t2)
    p = [10.0, -20.0, 30.0]
    assert np.allclose(c.TransformPoint(p), t2.TransformPoint(t1.TransformPoint(p)), atol=1e-9)
    img = sitk.Image([8, 8, 8], sitk.sitkFloat32)
    img.SetOrigin([-150.0] * 3)
    img.SetSpacing([40.0] * 3)
    bs = sitk.BSplineTransformInitializer(img, [3, 3, 3], 3)
    bs.SetParameters(np.random.default_rng(0).normal(0, 3, len(bs.GetParameters())).tolist())
    assert compose(None, t2) is t2 and compose(t1, None) is t1
    both = compose(t1, bs)
    assert both.GetName() == "CompositeTransform"
    assert np.allclose(both.TransformPoint(p), bs.TransformPoint(t1.TransformPoint(p)), atol=1e-9)
