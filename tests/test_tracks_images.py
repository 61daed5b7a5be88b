"""Lesion tracks from images: axial diameters on closed-form shapes, and a four-scan PET/CT series.

Tolerance of a diameter: the outline of the voxels whose centres lie inside a shape is within half an in-plane
voxel diagonal of the shape (Hausdorff distance), so a diameter measured on it is within one in-plane voxel
diagonal (``h * sqrt(2)`` for square pixels of side ``h``) of the shape's. A split lesion's measurement adds
two parts, each within that, so it gets twice the tolerance.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from pofa.errors import ImagingError
from pofa.response.diameters import AxialDiameters, axial_diameters, slice_axis
from pofa.response.linking import LesionSize, combine_parts, select_targets

sys.path.insert(0, str(Path(__file__).parent))
import tracks_data as td  # noqa: E402


def _grid(h: float, dz: float, n: int = 64, nz: int = 15, off: tuple[float, float] = (0.0, 0.0)
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x, y, z voxel-centre coordinates (mm, array order z, y, x) and the affine of that grid."""
    z, y, x = np.meshgrid((np.arange(nz) - nz // 2) * dz, (np.arange(n) - n / 2) * h + off[0],
                          (np.arange(n) - n / 2) * h + off[1], indexing="ij")
    aff = np.zeros((4, 4))
    aff[2, 0], aff[1, 1], aff[0, 2], aff[3, 3] = dz, h, h, 1.0
    return x, y, z, aff


def _rotated(x: np.ndarray, y: np.ndarray, theta: float) -> tuple[np.ndarray, np.ndarray]:
    return x * math.cos(theta) + y * math.sin(theta), -x * math.sin(theta) + y * math.cos(theta)


ANGLES = np.linspace(0.0, math.pi / 2, 8)
OFFSETS = ((0.0, 0.0), (0.3, 0.7), (1.1, 0.45))


@pytest.mark.parametrize("h", [2.0, 4.0])
def test_ellipsoid_diameters_are_its_axes(h: float) -> None:
    """A 40 x 24 mm (semi-axes 20, 12, 15) ellipsoid, rotated in the slice and moved off the grid."""
    tol = h * math.sqrt(2)
    for theta in ANGLES:
        for off in OFFSETS:
            x, y, z, aff = _grid(h, 3.0, off=off)
            u, v = _rotated(x, y, theta)
            d = axial_diameters((u / 20) ** 2 + (v / 12) ** 2 + (z / 15) ** 2 <= 1, aff)
            assert abs(d.ldi_mm - 40.0) <= tol, (theta, off, d)
            assert abs(d.sdi_mm - 24.0) <= tol, (theta, off, d)
            # the equator, or a neighbour 3 mm away whose true LDi (39.2 mm) its digitisation made longer
            assert abs(d.slice_index - 7) <= 1
    # the digitised lesion measured edge to edge is not biased low: centre-to-centre would lose about a voxel
    x, y, z, aff = _grid(2.0, 3.0)
    assert axial_diameters((x / 20) ** 2 + (y / 12) ** 2 + (z / 15) ** 2 <= 1, aff).ldi_mm >= 40.0


def test_rotated_box_diagonal_and_perpendicular_chord() -> None:
    """A 40 x 20 mm box: LDi is its diagonal D, the longest chord perpendicular to it 20 * D / 40."""
    h = 2.0
    tol = h * math.sqrt(2)
    diag = math.hypot(40.0, 20.0)
    for theta in ANGLES:
        for off in OFFSETS:
            x, y, z, aff = _grid(h, 3.0, off=off)
            u, v = _rotated(x, y, theta)
            d = axial_diameters((np.abs(u) <= 20) & (np.abs(v) <= 10) & (np.abs(z) <= 5), aff)
            assert abs(d.ldi_mm - diag) <= tol, (theta, off, d)
            assert abs(d.sdi_mm - 20.0 * diag / 40.0) <= tol, (theta, off, d)


def test_exact_pixel_outlines() -> None:
    """Shapes whose outline is exact: one voxel and an axis-aligned block (to 1e-8 mm: the positions where
    the perpendicular extent is evaluated are rounded to 1e-9 mm)."""
    aff = np.array([[0, 0, 2.0, 0], [0, 2.0, 0, 0], [3.0, 0, 0, 0], [0, 0, 0, 1]])  # axis 0 -> z (3 mm)
    m = np.zeros((3, 10, 10), bool)
    m[1, 4, 4] = True
    d = axial_diameters(m, aff)
    assert d.ldi_mm == pytest.approx(2 * math.sqrt(2), abs=1e-8)  # corner to corner
    assert d.sdi_mm == pytest.approx(2 * math.sqrt(2), abs=1e-8)  # the other diagonal
    m[:] = False
    m[1, 2:5, 1:9] = True  # 3 x 8 voxels: a 6 x 16 mm rectangle
    d = axial_diameters(m, aff)
    diag = math.hypot(16.0, 6.0)
    assert d.ldi_mm == pytest.approx(diag, abs=1e-8)
    assert d.sdi_mm == pytest.approx(6.0 * diag / 16.0, abs=1e-8)
    assert axial_diameters(np.zeros((3, 4, 4), bool), aff) == AxialDiameters(0.0, 0.0, -1)
    with pytest.raises(ImagingError):
        axial_diameters(np.zeros((3, 3), bool), aff)


def test_slice_axis_follows_the_head_foot_axis() -> None:
    """An array stored with z as its last axis is measured in the planes across z, as axis 0 would be."""
    x, y, z, aff = _grid(2.0, 3.0, off=(0.3, 0.7))
    u, v = _rotated(x, y, 0.4)
    m = (u / 20) ** 2 + (v / 12) ** 2 + (z / 15) ** 2 <= 1
    ref = axial_diameters(m, aff)
    aff2 = aff.copy()
    aff2[:3, :3] = aff[:3, [2, 1, 0]]  # array (x, y, z): axis 2 now steps along z
    moved = np.transpose(m, (2, 1, 0))
    assert slice_axis(aff2) == 2
    d = axial_diameters(moved, aff2)
    assert (d.ldi_mm, d.sdi_mm) == pytest.approx((ref.ldi_mm, ref.sdi_mm), abs=1e-9)


def test_combine_parts_keeps_the_sum_of_ppds() -> None:
    parts = [LesionSize(16.0, 12.0, 7.0), LesionSize(10.0, 5.0, 9.0)]
    c = combine_parts(parts)
    assert c.ldi_mm == 26.0
    assert c.ldi_mm * c.sdi_mm == pytest.approx(16 * 12 + 10 * 5, abs=1e-12)
    assert c.sdi_mm <= c.ldi_mm and c.suvmax == 9.0
    assert combine_parts([]) == LesionSize(0.0, 0.0, None)
    assert combine_parts(parts[:1]) == parts[0]


def test_deauville_score_boundaries_and_references(tmp_path: Path) -> None:
    from pofa.imaging.volume import Volume
    from pofa.response.linking import UptakeReference, deauville_score, site_uptake, uptake_reference

    ref = UptakeReference(1.6, 2.5)
    assert [deauville_score(v, ref) for v in (0.5, 1.6, 1.61, 2.5, 2.51, 5.0, 5.01)] == [2, 2, 3, 3, 4, 4, 5]
    suv = Volume.from_spacing(np.full((6, 6, 6), 1.0, np.float32), (2.0, 2.0, 2.0))
    suv_arr = suv.voxels_copy()
    suv_arr[0:2], suv_arr[4:6] = 2.5, 1.6
    suv_arr[3, 3, 3] = 9.0
    suv = suv.with_voxels(suv_arr)
    organs = np.zeros((6, 6, 6), np.uint8)
    organs[0:2], organs[4:6] = td.LIVER_LABEL, td.AORTA_LABEL
    lesions = np.zeros((6, 6, 6), np.int32)
    lesions[0, 0, 0] = 1  # a lesion voxel inside the liver is left out of the reference
    suv_arr[0, 0, 0] = 30.0
    suv = suv.with_voxels(suv_arr)
    got = uptake_reference(suv, suv.with_voxels(organs), suv.with_voxels(lesions))
    assert got == UptakeReference(pytest.approx(1.6, abs=1e-6), pytest.approx(2.5, abs=1e-6))
    assert uptake_reference(suv, None, suv.with_voxels(lesions)) is None
    no_aorta = np.where(organs == td.AORTA_LABEL, 0, organs)
    assert uptake_reference(suv, suv.with_voxels(no_aorta), suv.with_voxels(lesions)) is None
    base = np.zeros((6, 6, 6), np.int32)
    base[3, 3, 2] = 7
    import SimpleITK as sitk

    shift = sitk.TranslationTransform(3, [2.0, 0.0, 0.0])  # one voxel along x (array axis 2)
    assert site_uptake(suv.with_voxels(base), 7, shift, suv) == 9.0
    assert site_uptake(suv.with_voxels(base), 7, None, suv) == 1.0


def test_targets_are_the_six_largest_measurable() -> None:
    sizes = {f"L{k}": LesionSize(10.0 + 3 * k, 8.0, None) for k in range(9)}  # L0 10 mm ... L8 34 mm
    extranodal = {"L0": True}  # 10 mm is not > 10 mm: not measurable even as extranodal
    targets, warning = select_targets(sizes, extranodal)
    assert targets == {"L3", "L4", "L5", "L6", "L7", "L8"} and warning is None
    sizes = {"A": LesionSize(14.0, 8.0, None), "B": LesionSize(12.0, 12.0, None),
             "C": LesionSize(11.0, 6.0, None)}
    targets, warning = select_targets(sizes, {"C": True})
    assert targets == {"C"}  # extranodal and > 10 mm: the only measurable lesion
    targets, warning = select_targets(sizes, {})
    assert targets == {"B"} and warning is not None and "largest" in warning  # none measurable: largest PPD


# ------------------------------------------------------------------------------------------- the series
def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _names(study: Path) -> dict[str, str]:
    """Baseline lesion id -> name in tracks_data, by the lesion's centre (baseline frame)."""
    centres = {"shrink": td.SHRINK[0].centre, "grow": td.GROW[0].centre, "split": td.SPLIT_BASE.centre,
               "merge_big": td.MERGE_BIG.centre, "merge_small": td.MERGE_SMALL.centre,
               "vanish": td.VANISH.centre}
    out = {}
    for r in _read(study / "lesions.csv"):
        p = np.array([float(r["x_mm"]), float(r["y_mm"]), float(r["z_mm"])])
        name = min(centres, key=lambda n: float(np.linalg.norm(p - np.array(centres[n]))))
        assert np.linalg.norm(p - np.array(centres[name])) < 2.0
        out[r["lesion_id"]] = name
    assert sorted(out.values()) == sorted(centres)
    return out


def _expected(name: str, scan: int) -> tuple[float, float, float]:
    """Known (ldi, sdi, tolerance) of a lesion at a scan."""
    tol = 2.5 * math.sqrt(2)
    parts = td.lesions_at(scan).get(name, ())
    if name == "merge_small" and scan >= 2:
        return 0.0, 0.0, 0.0  # merged into merge_big, which carries the mass
    if not parts:
        return 0.0, 0.0, 0.0
    c = combine_parts([LesionSize(e.ldi, e.sdi, None) for e in parts])
    return c.ldi_mm, c.sdi_mm, tol * len(parts)


def _check_series(study: Path, tol_scale: float = 1.0) -> None:
    names = _names(study)
    rows = _read(study / "measurements.csv")
    assert len(rows) == 6 * 4
    for r in rows:
        scan = td.DATES.index(r["scan_date"])
        ldi, sdi, tol = _expected(names[r["lesion_id"]], scan)
        assert abs(float(r["ldi_mm"]) - ldi) <= tol * tol_scale, (names[r["lesion_id"]], scan, r)
        assert abs(float(r["sdi_mm"]) - sdi) <= tol * tol_scale, (names[r["lesion_id"]], scan, r)
        name = names[r["lesion_id"]]
        faint = name == "shrink" and scan >= 2
        assert r["suvmax"] == ("" if ldi == 0 else "4.5" if faint else "8.0")
        # references: blood pool 1.6, liver 2.5; SUV 8 > 2 x 2.5 is 5, SUV 4.5 is 4; the vanished lesion's
        # site shows body uptake (SUV 1) <= blood pool: 2; the merged-away lesion's site lies in the mass: 5
        assert r["deauville"] == ("2" if name == "vanish" and scan else "4" if faint else "5"), (name, scan)
    # targets: the measurable lesions (LDi > 15 mm), at most six, the same on every row
    target = {names[r["lesion_id"]]: r["target"] for r in rows}
    assert target == {"shrink": "yes", "grow": "yes", "split": "yes", "merge_big": "yes",
                      "merge_small": "yes", "vanish": "yes"}
    tracks = _read(study / "tracks.csv")
    events = {(names.get(r["lesion_id"], r["lesion_id"]), td.DATES.index(r["scan_date"])): r["event"]
              for r in tracks}
    assert events == {
        **{(n, 0): "baseline" for n in names.values()},
        **{(n, k): "continues" for n in ("shrink", "grow") for k in (1, 2, 3)},
        ("split", 1): "continues", ("split", 2): "split", ("split", 3): "split",
        ("merge_big", 1): "continues", ("merge_small", 1): "continues",
        **{(n, k): "merge" for n in ("merge_big", "merge_small") for k in (2, 3)},
        **{("vanish", k): "disappeared" for k in (1, 2, 3)},
        # the new lesion of day 90 seen again at the failure scan is one track; the second new lesion its own
        ("new-1", 2): "new", ("new-1", 3): "continues", ("new-2", 3): "new",
    }
    assert sum(r["event"] == "split" for r in tracks) == 4  # one row per part and scan
    new = {(r["lesion_id"], td.DATES.index(r["scan_date"])): r for r in tracks
           if r["lesion_id"].startswith("new")}
    assert len(new) == 3
    tol = 2.5 * math.sqrt(2)
    for key, e in ((("new-1", 2), td.NEW_EARLY), (("new-1", 3), td.NEW), (("new-2", 3), td.NEW2)):
        assert abs(float(new[key]["ldi_mm"]) - e.ldi) <= tol and abs(float(new[key]["sdi_mm"]) - e.sdi) <= tol
    assert new["new-1", 2]["component"].startswith("F")  # a follow-up scan's lesion
    failure_ids = {r["failure_id"] for r in _read(study / "failures.csv")}
    assert {new["new-1", 3]["component"], new["new-2", 3]["component"]} <= failure_ids  # S1-F<label>
    # new lesions are not in the measurements table (its lesions are the baseline lesions), only here
    assert not any(r["lesion_id"].startswith("new") for r in rows)
    scans = _read(study / "scans.csv")
    assert [(r["scan_date"], r["new_lesions"]) for r in scans] == list(
        zip(td.DATES, ("no", "no", "yes", "yes"), strict=True))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pofa.batch.study import build_study_from_manifest

    root = tmp_path_factory.mktemp("series")
    return build_study_from_manifest(td.write_series(root / "in"), root / "study")


def test_series_measurements_events_and_scans(built: Path) -> None:
    _check_series(built)
    info = json.loads((built / "imaging.json").read_text())
    roles = [s["role"] for s in info["patients"][0]["scans"]]
    assert roles == ["baseline", "followup", "followup", "failure"]  # by date
    assert set(info["columns"]) >= {"measurements.csv", "scans.csv", "tracks.csv"}
    tracks = info["patients"][0]["scans"][0]["tracks"]
    assert tracks["new_lesion_tracks"] == ["new-1", "new-2"]
    # the organ map holds the liver and the aorta only: every (nodal) lesion is in one region, "nodes"
    assert set(tracks["target_regions"].values()) == {"nodes"}
    assert "one region" in tracks["notes"][0]


def test_series_study_validates_and_analyses(built: Path) -> None:
    from pofa.analysis import run_analysis
    from pofa.study import load_study

    study = load_study(built)
    report = study.validate()
    assert report.ok, [f.message for f in report.errors]
    res = run_analysis(study).to_json()
    responses = res["responses"]
    assert [r["day"] for r in responses] == [30, 90, 180]
    assert all(r["patient"] == 1 for r in responses)
    # the failure scan: a new lesion and a lesion grown from 24 x 16 to 46 x 30 mm: progression by every rule
    last = responses[-1]
    assert (last["lugano_ct"], last["recil"]) == ("PD", "PD")
    assert last["progressed_lesions"] >= 1
    assert res["lesion_failure"]["n_lesions"] == 6
    assert res["lesion_failure"]["n_local_failures"] >= 1


def test_study_without_followup_rows_has_no_response_tables(tmp_path: Path) -> None:
    """Manifests with baseline and failure scans only build the same study as before (no new tables)."""
    from batch_data import make_study
    from pofa.batch.study import build_study_from_manifest

    s = make_study(tmp_path / "in", 2, seed=3)
    out = build_study_from_manifest(s.manifest, tmp_path / "study")
    assert not any((out / f).exists() for f in ("measurements.csv", "scans.csv", "tracks.csv"))


@pytest.mark.slow
def test_series_registered_instead_of_transform_files(tmp_path: Path) -> None:
    """Registering each scan to the baseline (CT, rigid then affine) gives the same tracks and sizes."""
    from pofa.batch.study import build_study_from_manifest

    out = build_study_from_manifest(td.write_series(tmp_path / "in", transforms=False), tmp_path / "study")
    _check_series(out)


def test_manifest_followup_role_and_its_findings(tmp_path: Path) -> None:
    from pofa.batch.manifest import ManifestCode, read_manifest

    m = td.write_series(tmp_path)
    ok = read_manifest(m)
    assert ok.ok, [f.message for f in ok.report.errors]
    p = ok.patients()[0]
    assert [s.scan_date for s in p.followups] == list(td.DATES[1:3])
    assert [s.scan_date for s in p.later] == list(td.DATES[1:])
    text = m.read_text().splitlines()
    text[2] = text[2].replace(td.DATES[1], "2021-02-01")  # a follow-up before the baseline
    text[3] = text[3].replace(td.DATES[2], td.DATES[3])  # same date as the failure scan
    text.append(text[1].replace("baseline", "follow-up").replace(td.DATES[0], "2021-12-01"))
    m.write_text("\n".join(text) + "\n")
    codes = {(f.code, f.row) for f in read_manifest(m).findings}
    assert (ManifestCode.FAILURE_BEFORE_BASELINE, 3) in codes
    assert (ManifestCode.DUPLICATE_SCAN, 5) in codes or (ManifestCode.DUPLICATE_SCAN, 4) in codes
    assert (ManifestCode.BAD_ROLE, 6) in codes


@pytest.mark.slow
def test_batch_on_a_cluster_writes_the_same_tables(built: Path, tmp_path: Path) -> None:
    """``pofa batch`` (one worker process) writes the same study folder, tables included, byte for byte."""
    import logging

    from distributed import Client, LocalCluster

    from pofa.batch.runner import run_batch

    manifest = built.parent / "in" / "manifest.csv"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        res = run_batch(manifest, tmp_path / "out", client=client)
    assert res.study is not None
    names = sorted(p.name for p in built.iterdir())
    assert names == sorted(p.name for p in res.study.iterdir())
    assert {"measurements.csv", "scans.csv", "tracks.csv"} <= set(names)
    assert all((built / n).read_bytes() == (res.study / n).read_bytes() for n in names)


def test_build_study_command_writes_the_tables(built: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pofa.cli import app

    manifest = built.parent / "in" / "manifest.csv"
    out = tmp_path / "cli"
    r = CliRunner().invoke(app, ["build-study", str(manifest), "--out", str(out)])
    assert r.exit_code == 0, r.output
    for name in ("measurements.csv", "scans.csv", "tracks.csv"):
        assert (out / name).read_bytes() == (built / name).read_bytes()


def test_mixed_manifest_tracks_every_patient(tmp_path: Path) -> None:
    """One follow-up row tracks every patient: one with a failure scan only, one with the follow-up scan."""
    import datetime as dt

    from batch_data import make_study, write_translation
    from pofa.analysis import run_analysis
    from pofa.batch.study import build_study_from_manifest
    from pofa.study import load_study

    s = make_study(tmp_path / "in", 2, seed=3)  # P000 has a failure scan, P001 none
    rows = s.manifest.read_text().splitlines()
    base = next(r for r in rows if r.startswith("P001,baseline"))
    day = dt.date.fromisoformat(base.split(",")[2]) + dt.timedelta(days=14 + 30)  # index date + 30
    write_translation(s.root / "zero.tfm", (0.0, 0.0, 0.0))
    follow = base.replace("baseline", "followup").replace(base.split(",")[2], day.isoformat())
    follow = follow[:follow.rindex(",")] + ",zero.tfm"
    s.manifest.write_text("\n".join([*rows, follow]) + "\n")
    out = build_study_from_manifest(s.manifest, tmp_path / "study")
    meas = _read(out / "measurements.csv")
    by_patient = {p: [r for r in meas if r["patient_id"] == p] for p in ("P000", "P001")}
    assert len({r["scan_date"] for r in by_patient["P000"]}) == 2  # baseline and failure scan
    p1 = by_patient["P001"]
    dates = sorted({r["scan_date"] for r in p1})
    assert dates[1] == day.isoformat()
    # the same image again: every lesion continues with exactly its baseline size
    first = {r["lesion_id"]: (r["ldi_mm"], r["sdi_mm"]) for r in p1 if r["scan_date"] == dates[0]}
    again = {r["lesion_id"]: (r["ldi_mm"], r["sdi_mm"]) for r in p1 if r["scan_date"] == dates[1]}
    assert first == again and first
    events = {r["event"] for r in _read(out / "tracks.csv") if r["patient_id"] == "P001"}
    assert events == {"baseline", "continues"}
    study = load_study(out)
    assert study.validate().ok, [f.message for f in study.validate().errors]
    responses = run_analysis(study).to_json()["responses"]
    assert sorted(r["patient"] for r in responses) == [1, 2]
    assert next(r for r in responses if r["patient"] == 2)["lugano_ct"] == "SD"  # nothing changed


def test_registration_working_grid_with_an_axis_already_coarse() -> None:
    """4 mm slices and 2.5 mm pixels on a 4 mm working grid: only the pixels are smoothed (ITK refuses a
    zero sigma, which stopped the registration of such scans)."""
    import SimpleITK as sitk

    from pofa.imaging.registration import _working_image

    img = sitk.GetImageFromArray(np.random.default_rng(0).random((10, 16, 16)).astype(np.float32))
    img.SetSpacing((2.5, 2.5, 4.0))
    out = _working_image(img, 4.0)
    assert out.GetSpacing() == (4.0, 4.0, 4.0)
    assert out.GetSize() == (10, 10, 10)
    # a constant image stays constant (smoothing and resampling only)
    flat = sitk.GetImageFromArray(np.full((10, 16, 16), 3.0, np.float32))
    flat.SetSpacing((2.5, 2.5, 4.0))
    assert np.allclose(sitk.GetArrayFromImage(_working_image(flat, 4.0)), 3.0, atol=1e-5)


# ------------------------------------------------------------------------ targets spread over body regions
def test_targets_take_the_largest_of_each_region_first() -> None:
    """Lugano 2014: the largest lesions "from different body regions ... include mediastinal and
    retroperitoneal areas, if involved"; pofa: the largest of each region, then the rest by PPD."""
    sizes = {"C1": LesionSize(60.0, 40.0, None), "C2": LesionSize(55.0, 40.0, None),
             "C3": LesionSize(50.0, 40.0, None), "C4": LesionSize(45.0, 40.0, None),
             "C5": LesionSize(44.0, 40.0, None), "A1": LesionSize(20.0, 15.0, None),
             "L1": LesionSize(12.0, 11.0, None), "N1": LesionSize(30.0, 20.0, None),
             "T1": LesionSize(14.0, 14.0, None)}  # T1: a 14 mm node is not measurable
    extranodal = {"L1": True}
    regions = {"C1": "nodes: chest", "C2": "nodes: chest", "C3": "nodes: chest", "C4": "nodes: chest",
               "C5": "nodes: chest", "A1": "nodes: abdomen", "L1": "liver", "N1": "nodes: neck",
               "T1": "nodes: pelvis"}
    by_size, _ = select_targets(sizes, extranodal)
    assert by_size == {"C1", "C2", "C3", "C4", "C5", "N1"}  # today's rule: size alone
    spread, warning = select_targets(sizes, extranodal, regions)
    # one per region with a measurable lesion (chest C1, neck N1, abdomen A1, liver L1), then C2, C3
    assert spread == {"C1", "N1", "A1", "L1", "C2", "C3"} and warning is None
    # more regions than targets: mediastinal (chest) and retroperitoneal (abdomen) first, then by size
    many = {f"R{k}": LesionSize(40.0 - k, 20.0, None) for k in range(8)}
    reg = {f"R{k}": f"region {k}" for k in range(8)} | {"R7": "nodes: abdomen", "R6": "nodes: chest"}
    got, _ = select_targets(many, {}, reg)
    assert got == {"R6", "R7", "R0", "R1", "R2", "R3"}
    # deterministic: the same input gives the same choice, whatever the mapping order
    assert select_targets(dict(reversed(list(sizes.items()))), extranodal, regions)[0] == spread


def _organ_volume() -> tuple[object, dict[str, int]]:
    """A 2 mm organ map, z from 0 to 398 mm: hip bones up to 100 mm, liver up to 250, lungs up to 330."""
    from pofa.imaging.organs import TOTALSEGMENTATOR_V2
    from pofa.imaging.volume import Volume

    value = {n: v for v, n in TOTALSEGMENTATOR_V2.items()}
    arr = np.zeros((200, 20, 20), np.uint8)  # axis 0 along z, 2 mm
    arr[10:50, 2:6, 2:6] = value["hip_left"]  # z 20-98 mm: top edge 99 mm
    arr[90:125, 10:18, 2:8] = value["liver"]  # top edge 249 mm
    arr[130:165, 2:8, 12:18] = value["lung_upper_lobe_right"]  # top edge 329 mm
    aff = np.eye(4)
    aff[:3, :3] = 0.0
    aff[2, 0], aff[1, 1], aff[0, 2] = 2.0, 2.0, 2.0
    return Volume(arr, aff, units="label"), value


def test_lesion_regions_from_the_organ_map() -> None:
    from pofa.response.linking import lesion_regions

    organs, value = _organ_volume()
    centres = {"neck": (0, 0, 350.0), "chest": (0, 0, 300.0), "abd": (0, 0, 150.0), "pelvis": (0, 0, 60.0),
               "liver": (0, 0, 200.0), "spleen": (0, 0, 180.0), "edge": (0, 0, 249.5)}
    sites = {"liver": "liver", "spleen": "spleen"} | {k: "lymph node" for k in ("neck", "chest", "abd",
                                                                                  "pelvis", "edge")}
    extranodal = {k: k == "liver" for k in centres}
    regions, note = lesion_regions(centres, sites, extranodal, organs)  # type: ignore[arg-type]
    assert regions == {"neck": "nodes: neck", "chest": "nodes: chest", "abd": "nodes: abdomen",
                       "pelvis": "nodes: pelvis", "liver": "liver", "spleen": "spleen",
                       "edge": "nodes: chest"}  # 249.5 mm is above the liver's top edge (249 mm)
    assert "largest measurable lesion of each region first" in note
    # an organ map without the landmarks: nodes are one region, extranodal lesions still by organ
    arr = np.asarray(organs.voxels).copy()  # type: ignore[attr-defined]
    arr[arr == value["hip_left"]] = 0
    regions, note = lesion_regions(centres, sites, extranodal, organs.with_voxels(arr))  # type: ignore
    assert regions is not None and set(regions.values()) == {"nodes", "liver", "spleen"}
    assert "one region" in note
    # no organ map (no sites): today's rule, said in the note
    regions, note = lesion_regions(centres, {}, dict.fromkeys(centres), None)
    assert regions is None and "not spread over body regions" in note


def test_new_lesions_are_linked_from_scan_to_scan() -> None:
    """A new lesion keeps one id over the scans (continues, splits, comes back after a scan without it);
    one elsewhere starts its own track; the baseline lesion's own events are not repeated here."""
    from pofa.imaging.matching import match_patient
    from pofa.imaging.volume import Volume
    from pofa.response.linking import NewLesionTracks

    def vol(*boxes: tuple[int, slice, slice, slice]) -> Volume:
        a = np.zeros((12, 40, 40), np.int32)
        for label, *box in boxes:
            a[tuple(box)] = label
        return Volume.from_spacing(a, (3.0, 2.0, 2.0))

    base = vol((1, slice(4, 8), slice(2, 8), slice(2, 8)))
    tracks = NewLesionTracks(base, {"1", "new-1"}, tolerance_mm=0.0, margin_mm=10.0)
    scans = [
        vol((1, slice(4, 8), slice(2, 8), slice(2, 8)), (2, slice(4, 8), slice(20, 26), slice(20, 26))),
        vol((1, slice(4, 8), slice(2, 8), slice(2, 8)), (3, slice(4, 8), slice(21, 27), slice(21, 27)),
            (2, slice(4, 8), slice(30, 36), slice(2, 8))),
        vol((1, slice(4, 8), slice(2, 8), slice(2, 8))),
        vol((4, slice(4, 8), slice(20, 23), slice(20, 26)), (5, slice(4, 8), slice(24, 27), slice(20, 26))),
    ]
    rows = []
    for k, fu in enumerate(scans):
        m = match_patient(base, fu, None)
        labels = [int(v) for v in np.unique(fu.voxels) if v]
        ids = {v: f"F{v}" for v in labels}
        sizes = {v: LesionSize(float(v), 1.0, None) for v in labels}
        rows += [(k, r["lesion_id"], r["component"], r["event"])
                 for r in tracks.add("P", f"d{k}", m, fu, None, ids, sizes)]
    # "new-1" is taken by a baseline lesion's id: the first track is new-2
    assert rows == [(0, "new-2", "F2", "new"),
                    (1, "new-2", "F3", "continues"), (1, "new-3", "F2", "new"),
                    (2, "new-2", None, "disappeared"), (2, "new-3", None, "disappeared"),
                    (3, "new-2", "F4", "split"), (3, "new-2", "F5", "split"),
                    (3, "new-3", None, "disappeared")]
    assert tracks.ids == ("new-2", "new-3")
