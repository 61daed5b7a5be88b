"""Segmentation rules and lesion features on phantoms with known geometry and uptake.

Expected values come from first principles: voxel counts of analytic shapes, closed-form sphere means, and a
slow brute-force SUVpeak written independently here. Tolerances are stated per quantity.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pet_synthetic import ellipsoid_mask, grid_mm, sphere_mask

from pofa.errors import ImagingError
from pofa.imaging.features import SUVPEAK_RADIUS_MM, lesion_features, patient_features
from pofa.imaging.organs import OrganMap, site_of
from pofa.imaging.segment import (
    Seeds,
    parse_threshold,
    percist_liver_reference,
    segment_mask,
    segment_threshold,
)
from pofa.imaging.volume import Volume

SP = (2.0, 2.0, 2.0)
ORIGIN = (-60.0, -60.0, -60.0)
SHAPE = (61, 61, 61)  # voxel centres from -60 to +60 mm


def phantom(*blobs, background=1.0, shape=SHAPE, spacing=SP, origin=ORIGIN) -> Volume:
    """Uniform spheres/ellipsoids ((centre, semi-axes or radius, value), ...) on a uniform background."""
    arr = np.full(shape, background, dtype=np.float32)
    for centre, size, value in blobs:
        axes = (size, size, size) if np.isscalar(size) else size
        arr[ellipsoid_mask(shape, spacing, origin, centre, axes)] = value
    return Volume.from_spacing(arr, spacing, origin)


# ------------------------------------------------------------------------------------------ volume, MTV
def test_sphere_mtv_within_2_percent_and_equal_to_voxel_count():
    r = 20.0
    v = phantom(((0.0, 0.0, 0.0), r, 10.0))
    seg = segment_threshold(v, "suv4")
    (les,) = lesion_features(v, seg)
    n_inside = int(sphere_mask(SHAPE, SP, ORIGIN, (0, 0, 0), r).sum())
    # exact: MTV is the number of voxels whose centre is inside, times 8 mm^3
    assert les.n_voxels == n_inside
    assert les.mtv_ml == pytest.approx(n_inside * 0.008, rel=1e-12)
    # binary, partial-volume-free phantom: with r = 10 voxels the lattice count is within 1% of 4/3 pi r^3
    assert les.mtv_ml == pytest.approx(4 / 3 * math.pi * r**3 / 1000, rel=1e-2)
    assert les.suvmax == 10.0 and les.suvmean == pytest.approx(10.0, rel=1e-7)
    assert les.tlg == pytest.approx(10.0 * les.mtv_ml, rel=1e-6)  # float32 sums
    np.testing.assert_allclose(les.centroid_lps, (0, 0, 0), atol=1e-9)


def test_features_scale_with_voxel_spacing():
    a = phantom(((0.0, 0.0, 0.0), (20.0, 12.0, 16.0), 8.0))
    b = Volume.from_spacing(a.voxels, (4.0, 4.0, 4.0), (-120.0, -120.0, -120.0))
    fa, fb = (lesion_features(v, segment_threshold(v, "suv4"))[0] for v in (a, b))
    assert fb.mtv_ml == pytest.approx(8 * fa.mtv_ml, rel=1e-12)
    assert fb.diameter_3d_mm == pytest.approx(2 * fa.diameter_3d_mm, rel=1e-12)
    assert fb.diameter_axial_mm == pytest.approx(2 * fa.diameter_axial_mm, rel=1e-12)
    assert fb.suvmax == fa.suvmax


# ------------------------------------------------------------------------------------------ diameters
@pytest.mark.parametrize(
    ("centre", "axes", "spacing"),
    [
        ((0.0, 0.0, 0.0), (20.0, 20.0, 20.0), (2.0, 2.0, 2.0)),  # sphere centred on a voxel
        ((1.0, 1.0, 1.0), (15.0, 15.0, 15.0), (2.0, 2.0, 2.0)),  # sphere centred between voxels
        ((-3.0, 5.0, 2.0), (18.0, 10.0, 14.0), (4.0, 2.0, 2.0)),  # ellipsoid, anisotropic (dz = 4 mm)
        ((0.5, 0.0, 0.0), (8.0, 12.0, 16.0), (2.0, 2.0, 2.0)),  # ellipsoid, longest axis cranio-caudal
    ],
)
def test_diameters_within_one_voxel(centre, axes, spacing):
    v = phantom((centre, axes, 9.0), spacing=spacing)
    (les,) = lesion_features(v, segment_threshold(v, "suv4"))
    true_axial = 2 * max(axes[0], axes[1])
    true_3d = 2 * max(axes)
    # within one voxel: the spacing along the measured direction (x/y in plane; the largest for 3-D)
    assert abs(les.diameter_axial_mm - true_axial) <= max(spacing[1], spacing[2]) + 1e-9
    assert abs(les.diameter_3d_mm - true_3d) <= max(spacing) + 1e-9


def test_diameters_of_a_box_are_its_edge_lengths():
    arr = np.zeros((20, 20, 20), np.float32)
    arr[5:8, 4:14, 2:8] = 5.0  # 3 x 10 x 6 voxels of 3 x 2 x 1.5 mm
    v = Volume.from_spacing(arr, (3.0, 2.0, 1.5))
    (les,) = lesion_features(v, segment_threshold(v, "suv4"))
    # the box of voxel centres is 6 x 18 x 7.5 mm; farthest centres are opposite corners
    d_axial = math.hypot(18.0, 7.5)
    u = np.array([18.0, 7.5]) / d_axial
    assert les.diameter_axial_mm == pytest.approx(d_axial + 1 / math.hypot(u[0] / 2.0, u[1] / 1.5), rel=1e-12)
    d3 = math.sqrt(6.0**2 + 18.0**2 + 7.5**2)
    u3 = np.array([6.0, 18.0, 7.5]) / d3
    ext = 1 / math.sqrt((u3[0] / 3) ** 2 + (u3[1] / 2) ** 2 + (u3[2] / 1.5) ** 2)
    assert les.diameter_3d_mm == pytest.approx(d3 + ext, rel=1e-12)


def test_single_voxel_lesion_has_its_size_as_diameter():
    arr = np.zeros((5, 5, 5), np.float32)
    arr[2, 2, 2] = 6
    v = Volume.from_spacing(arr, (2.0, 2.0, 2.0))
    (les,) = lesion_features(v, segment_threshold(v, "suv4"))
    assert les.diameter_axial_mm == pytest.approx(2.0) and les.diameter_3d_mm == pytest.approx(2.0)


def test_features_do_not_depend_on_orientation():
    v = phantom(((-3.0, 5.0, 2.0), (18.0, 10.0, 14.0), 9.0))
    c, s = math.cos(0.4), math.sin(0.4)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ v.direction
    w = Volume.from_spacing(v.voxels, v.spacing, (5.0, -3.0, 100.0), direction=rot)
    fa = lesion_features(v, segment_threshold(v, "suv4"))[0]
    fb = lesion_features(w, segment_threshold(w, "suv4"))[0]
    for name in ("mtv_ml", "diameter_axial_mm", "diameter_3d_mm", "suvpeak", "suvpeak_local"):
        assert getattr(fb, name) == pytest.approx(getattr(fa, name), rel=1e-9), name


# ------------------------------------------------------------------------------------------ SUVpeak
def brute_force_peaks(v: Volume, lesion: np.ndarray) -> tuple[float, float]:
    """Independent slow SUVpeak: for each lesion voxel, the mean of the image voxels within r of it."""
    xx, yy, zz = grid_mm(v.shape, v.spacing, v.origin)
    arr = v.voxels.astype(np.float64)
    means = {}
    for idx in map(tuple, np.argwhere(lesion)):
        d2 = (xx - xx[idx]) ** 2 + (yy - yy[idx]) ** 2 + (zz - zz[idx]) ** 2
        means[idx] = arr[d2 <= SUVPEAK_RADIUS_MM**2].mean()
    vals = {i: arr[i] for i in means}
    vmax = max(vals.values())
    return max(means.values()), max(m for i, m in means.items() if vals[i] == vmax)


def test_suvpeak_on_a_known_sphere_closed_form():
    # uniform sphere of SUV 8 (r = 20 mm) with one hot voxel of 20 at its centre
    v0 = phantom(((0.0, 0.0, 0.0), 20.0, 8.0))
    arr = v0.voxels_copy()
    arr[30, 30, 30] = 20.0
    v = v0.with_voxels(arr)
    (les,) = lesion_features(v, segment_threshold(v, "suv4"))
    # 2 mm voxels: offsets (i, j, k) with 4 (i^2 + j^2 + k^2) <= 6.2035^2, i.e. i^2 + j^2 + k^2 <= 9: 123
    # voxels
    k = 123
    expected = (20.0 + 8.0 * (k - 1)) / k
    assert les.suvpeak_local == pytest.approx(expected, rel=1e-12)
    assert les.suvpeak == pytest.approx(expected, rel=1e-12)
    assert les.suvmax == 20.0


def test_suvpeak_percist_differs_from_ibsi_local_and_matches_brute_force():
    # a plateau of 10 (r = 10 mm) and, touching it, a lone spike of 30 outside the plateau in background 1
    shape, origin = (25, 25, 25), (-24.0, -24.0, -24.0)
    v0 = phantom(((0.0, 0.0, 0.0), 10.0, 10.0), shape=shape, origin=origin)
    arr = v0.voxels_copy()
    arr[12, 12, 18] = 30.0  # x = +12 mm: adjacent to the plateau's edge voxel at x = +10 mm
    v = v0.with_voxels(arr)
    seg = segment_threshold(v, "suv4")
    assert seg.n_lesions == 1
    (les,) = lesion_features(v, seg)
    percist, ibsi = brute_force_peaks(v, seg.labels.voxels == 1)
    assert les.suvpeak == pytest.approx(percist, rel=1e-12)
    assert les.suvpeak_local == pytest.approx(ibsi, rel=1e-12)
    assert les.suvpeak > les.suvpeak_local  # the spike's sphere is mostly background


def test_suvpeak_at_the_image_border_uses_image_voxels_only():
    arr = np.full((12, 12, 12), 2.0, np.float32)
    arr[:4, :4, :4] = 9.0
    v = Volume.from_spacing(arr, SP)
    seg = segment_threshold(v, "suv4")
    (les,) = lesion_features(v, seg)
    percist, ibsi = brute_force_peaks(v, seg.labels.voxels == 1)
    assert les.suvpeak == pytest.approx(percist, rel=1e-12)
    assert les.suvpeak_local == pytest.approx(ibsi, rel=1e-12)


# ------------------------------------------------------------------------------------------ thresholds
def test_fixed_thresholds_and_ordering_by_suvmax():
    v = phantom(((-30.0, 0.0, 0.0), 8.0, 3.0), ((30.0, 0.0, 0.0), 8.0, 6.0), ((0.0, 30.0, 0.0), 8.0, 9.0))
    s4 = segment_threshold(v, "suv4")
    s25 = segment_threshold(v, "suv2.5")
    s5 = segment_threshold(v, 5.0)
    assert (s4.n_lesions, s25.n_lesions, s5.n_lesions) == (2, 3, 2)
    f = lesion_features(v, s25)
    assert [les.suvmax for les in f] == [9.0, 6.0, 3.0]  # numbered by decreasing SUVmax
    assert [les.lesion_id for les in f] == ["1", "2", "3"]
    assert s25.threshold_suv == (2.5, 2.5, 2.5)
    with pytest.raises(ImagingError, match="Unknown threshold"):
        parse_threshold("otsu")
    assert parse_threshold("41%")[0].value == "41pct"


def test_26_connectivity_joins_corner_neighbours():
    arr = np.zeros((6, 6, 6), np.float32)
    arr[2, 2, 2] = arr[3, 3, 3] = 7.0  # touching by a corner only
    v = Volume.from_spacing(arr, SP)
    assert segment_threshold(v, "suv4").n_lesions == 1


def gaussian_blobs(specs, background=1.0):
    xx, yy, zz = grid_mm(SHAPE, SP, ORIGIN)
    arr = np.full(SHAPE, background, np.float64)
    for (cx, cy, cz), sigma, amp in specs:
        arr += amp * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2 + (zz - cz) ** 2) / (2 * sigma**2))
    return Volume.from_spacing(arr.astype(np.float32), SP, ORIGIN), (xx, yy, zz)


def test_41_percent_of_each_lesions_own_suvmax():
    specs = [((-25.0, 0.0, 0.0), 5.0, 15.0), ((25.0, 0.0, 0.0), 5.0, 5.0)]
    v, (xx, yy, zz) = gaussian_blobs(specs)
    seg = segment_threshold(v, "41pct")
    assert seg.n_lesions == 2
    arr = v.voxels
    for k, ((cx, cy, cz), _sigma, _amp) in enumerate(specs, start=1):
        near = (xx - cx) ** 2 + (yy - cy) ** 2 + (zz - cz) ** 2 < 20.0**2
        vmax = float(arr[near].max())
        expected = near & (arr >= np.float32(0.41 * vmax))
        np.testing.assert_array_equal(seg.labels.voxels == k, expected)
        assert seg.threshold_suv[k - 1] == pytest.approx(0.41 * vmax, rel=1e-12)


def test_percist_liver_threshold():
    xx, yy, zz = grid_mm(SHAPE, SP, ORIGIN)
    liver = ellipsoid_mask(SHAPE, SP, ORIGIN, (0.0, 0.0, 0.0), (40.0, 30.0, 30.0))
    arr = np.full(SHAPE, 0.5, np.float32)
    pattern = (2.0 + 0.3 * np.sin(xx / 3.0) * np.cos(yy / 5.0) + 0.1 * np.sin(zz)).astype(np.float32)
    arr[liver] = pattern[liver]
    lesion = sphere_mask(SHAPE, SP, ORIGIN, (0.0, 45.0, 40.0), 6.0)
    arr[lesion] = 5.0
    v = Volume.from_spacing(arr, SP, ORIGIN)
    ref = percist_liver_reference(v, liver)
    # the deepest liver point is the ellipsoid's centre (a voxel centre); the sphere = voxels within 15 mm
    sphere = xx**2 + yy**2 + zz**2 <= 15.0**2
    vals = arr[sphere].astype(np.float64)
    assert ref.n_voxels == sphere.sum()
    assert ref.mean == pytest.approx(vals.mean(), rel=1e-12)
    assert ref.sd == pytest.approx(vals.std(ddof=1), rel=1e-12)
    assert ref.threshold == pytest.approx(1.5 * vals.mean() + 2 * vals.std(ddof=1), rel=1e-12)
    seg = segment_threshold(v, "percist", liver_mask=liver)
    assert seg.n_lesions == 1 and seg.liver is not None
    np.testing.assert_array_equal(seg.labels.voxels == 1, lesion)
    with pytest.raises(ImagingError, match="liver mask"):
        segment_threshold(v, "percist")
    with pytest.raises(ImagingError, match="3 cm sphere"):
        percist_liver_reference(v, lesion)


def test_min_volume_and_seeds():
    v = phantom(((-30.0, 0.0, 0.0), 10.0, 6.0), ((30.0, 0.0, 0.0), 10.0, 7.0), ((0.0, 30.0, 0.0), 2.0, 8.0))
    small = segment_threshold(v, "suv4", min_volume_ml=0.5)
    assert small.n_lesions == 2 and small.n_removed_small == 1
    # seeds: one inside lesion at x = -30, one 3 mm outside the x = +30 lesion's surface, one in background
    seeds = Seeds.from_array([[-30, 0, 0], [30, 0, 13.0], [0, -40, -40]], ids=["A", "B", "C"])
    seg = segment_threshold(v, "suv4", seeds=seeds, seed_tolerance_mm=5.0)
    assert seg.n_lesions == 2
    assert seg.lesion_ids == ("B", "A")  # numbered by SUVmax (7 then 6), ids from the seeds
    assert seg.unmatched_seeds == ("C",)
    strict = segment_threshold(v, "suv4", seeds=seeds, seed_tolerance_mm=0.0)
    assert strict.lesion_ids == ("A",)
    with pytest.raises(ImagingError, match="outside the PET volume"):
        segment_threshold(v, "suv4", seeds=Seeds.from_array([[500, 0, 0]]))
    seg41 = segment_threshold(v, "41pct", seeds=seeds)
    assert seg41.lesion_ids == ("B", "A")


def test_given_masks_binary_is_split_multilabel_is_kept():
    v = phantom(((-30.0, 0.0, 0.0), 10.0, 6.0), ((30.0, 0.0, 0.0), 10.0, 7.0))
    binary = (v.voxels > 4).astype(np.uint8)
    seg = segment_mask(v, v.with_voxels(binary))
    assert seg.n_lesions == 2 and seg.threshold == "mask"
    labels = binary.astype(np.int32) * 7  # one label spanning two disjoint parts = one lesion
    seg2 = segment_mask(v, v.with_voxels(labels))
    assert seg2.n_lesions == 1 and seg2.source_labels == (7,)
    (les,) = lesion_features(v, seg2)
    assert les.n_voxels == binary.sum()
    with pytest.raises(ImagingError, match="non-integer"):
        segment_mask(v, v.with_voxels(binary * 0.5))


# ------------------------------------------------------------------------------------------ sites
def test_site_majority_and_lugano_spleen():
    assert site_of("spleen") == ("spleen", "nodal")
    assert site_of("lung_upper_lobe_left") == ("lung", "extranodal")
    assert site_of("vertebrae_L3") == ("bone", "extranodal")
    assert site_of("aorta")[1] == "ignore"
    assert site_of("portal_vein_and_splenic_vein")[1] == "ignore"
    shape = (5, 20, 60)
    suv = np.zeros(shape, np.float32)
    org = np.zeros(shape, np.int16)
    # five 10-voxel lesions along x in separate rows; organ labels cover a known fraction of each
    cases = {
        2: (5, 10, "liver", True, 1.0),  # all in liver (label 5)
        5: (1, 10, "spleen", False, 1.0),  # all in spleen (label 1)
        8: (5, 4, "lymph node", False, 0.6),  # 40% liver: nodal
        11: (10, 6, "lung", True, 0.6),  # 60% lung lobe: extranodal
        14: (52, 10, "lymph node", False, 1.0),  # in the aorta label: ignored, so nodal
    }
    for row, (label, n_in, *_rest) in cases.items():
        suv[2, row, 20:30] = 5.0
        org[2, row, 20 : 20 + n_in] = label
    v = Volume.from_spacing(suv, SP)
    organs = OrganMap(
        v.with_voxels(org), {1: "spleen", 5: "liver", 10: "lung_upper_lobe_left", 52: "aorta"}, "t"
    )
    feats = lesion_features(v, segment_threshold(v, "suv4"), organs)
    by_row = {round((f.centroid_lps[1] - v.origin[1]) / 2): f for f in feats}
    for row, (_label, _n, site, extranodal, frac) in cases.items():
        f = by_row[row]
        assert (f.site, f.extranodal) == (site, extranodal), row
        assert f.organ_fraction == pytest.approx(frac), row


def test_patient_features_dmax_and_totals():
    v = phantom(((-30.0, 0.0, 0.0), 6.0, 6.0), ((30.0, 0.0, 0.0), 6.0, 7.0), ((0.0, 40.0, 0.0), 6.0, 8.0))
    feats = lesion_features(v, segment_threshold(v, "suv4"))
    p = patient_features(feats)
    assert p.n_lesions == 3
    assert p.dmax_mm == pytest.approx(60.0, abs=1e-9)  # the two lesions at x = -30 and +30
    assert p.total_mtv_ml == pytest.approx(sum(f.mtv_ml for f in feats), rel=1e-12)
    assert p.total_tlg == pytest.approx(sum(f.tlg for f in feats), rel=1e-12)
    assert p.suvmax == 8.0 and p.n_extranodal is None
    assert patient_features(feats[:1]).dmax_mm == 0.0
    assert math.isnan(patient_features(()).dmax_mm)


def test_organ_maps_from_folder_and_names_tables(tmp_path):
    from pofa.imaging.organs import load_organ_map

    base = Volume.from_spacing(np.zeros((6, 8, 10), np.uint8), SP)
    liver = np.zeros(base.shape, np.uint8)
    liver[:, :4] = 1
    spleen = np.zeros(base.shape, np.uint8)
    spleen[:, 4:, :3] = 1
    folder = tmp_path / "segmentations"
    folder.mkdir()
    base.with_voxels(liver).to_nifti(folder / "liver.nii.gz")
    base.with_voxels(spleen).to_nifti(folder / "spleen.nii.gz")
    om = load_organ_map(folder)
    assert om.names == {1: "liver", 2: "spleen"}
    np.testing.assert_array_equal(om.mask_of("liver"), liver == 1)
    # a multi-label map with the built-in TotalSegmentator v2 names (5 = liver, 1 = spleen)
    multi = liver * 5 + spleen * 1
    om2 = load_organ_map(base.with_voxels(multi))
    assert om2.names[5] == "liver" and om2.names[1] == "spleen" and "TotalSegmentator v2" in om2.source
    np.testing.assert_array_equal(om2.mask_of("liver"), liver == 1)
    # a CSV names table, and a value the table does not name
    (tmp_path / "names.csv").write_text("label,name\n5,liver\n1,spleen\n")
    assert load_organ_map(base.with_voxels(multi), tmp_path / "names.csv").names == {5: "liver", 1: "spleen"}
    with pytest.raises(ImagingError, match="does not name"):
        load_organ_map(base.with_voxels(multi * 30), tmp_path / "names.csv")


def test_large_lesion_diameters_slice_by_slice_path():
    # r = 36 mm at 1 mm voxels: > 2048 in-slice hull candidates, so the slice-by-slice search is used
    shape, sp, origin = (77, 77, 77), (1.0, 1.0, 1.0), (-38.0, -38.0, -38.0)
    v = phantom(((0.0, 0.0, 0.0), 36.0, 7.0), shape=shape, spacing=sp, origin=origin)
    (les,) = lesion_features(v, segment_threshold(v, "suv4"))
    assert abs(les.diameter_axial_mm - 72.0) <= 1.0 and abs(les.diameter_3d_mm - 72.0) <= 1.0


def test_grouped_and_slice_by_slice_feret_agree_with_brute_force():
    from pofa.imaging.features import _feret_by_slice, _feret_grouped

    rng = np.random.default_rng(1)
    for _ in range(50):
        n = int(rng.integers(2, 300))
        pts = rng.normal(size=(n, 2)) * rng.uniform(1, 20)
        z = np.sort(rng.integers(0, 6, n))
        brute = max(
            (
                np.sqrt(((q[:, None] - q[None]) ** 2).sum(-1)).max()
                for g in np.unique(z)
                if len(q := pts[z == g]) > 1
            ),
            default=0.0,
        )
        assert _feret_grouped(pts, z)[0] == pytest.approx(brute, rel=1e-9, abs=1e-12)
        assert _feret_by_slice(pts, z)[0] == pytest.approx(brute, rel=1e-9, abs=1e-12)
