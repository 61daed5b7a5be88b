"""Lesion matching on label maps: exact cases and brute-force references (scipy EDT, per-pair counts)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from pofa.errors import ImagingError, PofaError
from pofa.imaging.matching import (
    AssignBy,
    GroupKind,
    MatchClass,
    as_label_map,
    match_label_arrays,
    match_patient,
    match_to_failures_rows,
    overlap_pairs,
)
from pofa.imaging.volume import Volume

SPACING = (3.0, 2.0, 1.5)  # (dz, dy, dx), anisotropic on purpose


def affine_of(spacing: tuple[float, float, float] = SPACING, rot: np.ndarray | None = None) -> np.ndarray:
    v = Volume.from_spacing(
        np.zeros((2, 2, 2)),
        spacing=spacing,
        origin=(-10.0, 5.0, 30.0),
        direction=None if rot is None else rot,
    )
    return v.affine


def random_labels(
    rng: np.random.Generator, shape: tuple[int, int, int], n: int, max_r: int = 4
) -> np.ndarray:
    """Boxes and balls with labels 1..n at random places (later ones overwrite earlier ones)."""
    arr = np.zeros(shape, dtype=np.int32)
    zz, yy, xx = np.indices(shape)
    for lab in range(1, n + 1):
        c = rng.integers(0, shape)
        r = rng.integers(1, max_r + 1, size=3)
        if rng.random() < 0.5:
            m = (np.abs(zz - c[0]) <= r[0]) & (np.abs(yy - c[1]) <= r[1]) & (np.abs(xx - c[2]) <= r[2])
        else:
            m = ((zz - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 + ((xx - c[2]) / r[2]) ** 2 <= 1.0
        arr[m] = lab
    return arr


# ---------------------------------------------------------------------------------------------- exact cases
def two_boxes(gap_x: int) -> tuple[np.ndarray, np.ndarray]:
    """Baseline box 1 at x 2..5; follow-up box 1 starting gap_x voxels further along x (same z, y ranges)."""
    b = np.zeros((10, 10, 30), dtype=np.uint8)
    f = np.zeros_like(b)
    b[2:6, 2:6, 2:6] = 1
    f[2:6, 2:6, 6 + gap_x - 1 : 10 + gap_x - 1] = 1
    return b, f


def test_overlap_dice_closed_form() -> None:
    b = np.zeros((10, 10, 10), dtype=np.uint16)
    f = np.zeros_like(b)
    b[0:4, 0:4, 0:4] = 3  # 64 voxels
    f[2:6, 0:4, 0:4] = 7  # 64 voxels, 32 shared
    r = match_label_arrays(b, f, affine_of((2.0, 2.0, 2.0)))
    row = r.followup_lesion(7)
    assert row.match_class is MatchClass.LOCAL
    assert row.baseline_label == 3 and row.assigned
    assert row.overlap_voxels == 32
    assert row.overlap_ml == pytest.approx(32 * 8.0 / 1000.0, rel=1e-12)  # 32 voxels of 2 x 2 x 2 mm
    assert row.dice == pytest.approx(2 * 32 / 128, rel=1e-12)
    assert row.distance_mm == 0.0
    assert row.volume_ml == pytest.approx(64 * 8.0 / 1000.0, rel=1e-12)
    assert r.groups[0].kind is GroupKind.ONE_TO_ONE
    assert r.baseline_lesion(3).failed and r.baseline_lesion(3).assigned_followup_label == 7


@pytest.mark.parametrize("gap", [1, 2, 3, 7, 8])
def test_distance_along_axis_and_classes(gap: int) -> None:
    # follow-up box starts `gap` voxels after the baseline box ends: gap - 1 empty voxels lie between their
    # faces, so they are (gap - 1) * dx apart (touching boxes, gap 1: 0 mm)
    b, f = two_boxes(gap)
    dx = SPACING[2]
    r = match_label_arrays(b, f, affine_of(), tolerance_mm=1.5 * 2, margin_mm=10.0)
    row = r.followup_lesion(1)
    assert row.distance_mm == pytest.approx((gap - 1) * dx, abs=1e-9)
    expected = (
        MatchClass.LOCAL
        if (gap - 1) * dx <= 3.0
        else MatchClass.MARGINAL
        if (gap - 1) * dx <= 10.0
        else MatchClass.DE_NOVO
    )
    assert row.match_class is expected
    assert row.nearest_baseline_label == 1
    if expected is MatchClass.LOCAL:  # local through the tolerance only: no voxel overlap
        assert row.overlap_voxels == 0 and row.baseline_label == 1 and row.assigned
        assert r.baseline_lesion(1).failed
    else:
        assert row.baseline_label is None and not row.assigned
        assert not r.baseline_lesion(1).failed


def test_tolerance_zero_means_voxel_overlap() -> None:
    b, f = two_boxes(1)  # touching (a shared face): 0 mm apart, but no shared voxel
    r = match_label_arrays(b, f, affine_of(), tolerance_mm=0.0)
    assert r.followup_lesion(1).match_class is MatchClass.MARGINAL
    assert r.followup_lesion(1).distance_mm == 0.0
    b, f = two_boxes(2)  # one empty voxel between: 1.5 mm apart
    r = match_label_arrays(b, f, affine_of(), tolerance_mm=1.5)  # the boundary counts (<=)
    assert r.followup_lesion(1).match_class is MatchClass.LOCAL


def test_split_merge_and_assignment() -> None:
    b = np.zeros((12, 12, 40), dtype=np.int32)
    f = np.zeros_like(b)
    b[2:8, 2:8, 2:14] = 1  # splits into follow-up 1 (larger part) and 2
    f[2:8, 2:8, 2:8] = 1
    f[2:8, 2:8, 10:13] = 2
    b[2:8, 2:8, 18:22] = 2  # 2 and 3 merge into follow-up 3, which overlaps 3 more
    b[2:8, 2:8, 24:28] = 3
    f[2:8, 2:8, 20:28] = 3
    b[2:8, 2:8, 32:35] = 4  # vanishes
    f[9:11, 9:11, 36:39] = 9  # new
    r = match_label_arrays(b, f, affine_of((2.0, 2.0, 2.0)), margin_mm=1.0)
    kinds = {g.kind: (g.baseline_labels, g.followup_labels) for g in r.groups}
    assert kinds[GroupKind.SPLIT] == ((1,), (1, 2))
    assert kinds[GroupKind.MERGE] == ((2, 3), (3,))
    assert kinds[GroupKind.VANISHED] == ((4,), ())
    assert kinds[GroupKind.NEW] == ((), (9,))
    assert r.assignments == {1: 1, 3: 3}
    f2 = r.followup_lesion(2)
    assert f2.match_class is MatchClass.LOCAL and f2.baseline_label == 1 and not f2.assigned
    f3 = r.followup_lesion(3)
    assert f3.baseline_label == 3 and f3.local_to == ((3, 4 * 36), (2, 2 * 36))
    assert r.baseline_lesion(2).failed and r.baseline_lesion(2).assigned_followup_label is None
    assert not r.baseline_lesion(4).failed
    assert r.followup_lesion(9).match_class is MatchClass.DE_NOVO
    # group ids follow the smallest follow-up label, then baseline-only groups
    assert [g.kind for g in r.groups] == [GroupKind.SPLIT, GroupKind.MERGE, GroupKind.NEW, GroupKind.VANISHED]


def test_split_and_merge_group_and_dice_assignment() -> None:
    b = np.zeros((6, 6, 30), dtype=np.int32)
    f = np.zeros_like(b)
    b[:, :, 0:10] = 1
    b[:, :, 10:20] = 2
    f[:, :, 0:4] = 1  # only in 1
    f[:, :, 4:16] = 2  # 6 in 1, 6 in 2
    f[:, :, 16:18] = 3  # only in 2
    r_ov = match_label_arrays(b, f, affine_of((1.0, 1.0, 1.0)))
    assert [g.kind for g in r_ov.groups] == [GroupKind.SPLIT_MERGE]
    # overlap: 1-2 (6) + 2-? : best total = 1->2 (6*36) + 2->3 (2*36) = 8 or 1->1 (4) + 2->2 (6) = 10
    assert r_ov.assignments == {1: 1, 2: 2}
    r_d = match_label_arrays(b, f, affine_of((1.0, 1.0, 1.0)), assign_by="dice")
    # Dice: 1-1 = 2*4/(10+4)=.571, 1-2 = 12/22=.545, 2-2 = .545, 2-3 = 4/12=.333 -> {1:1, 2:2} (1.117) beats
    # {1:2, 2:3} (0.879)
    assert r_d.assignments == {1: 1, 2: 2}
    assert r_d.assign_by is AssignBy.DICE


def test_no_baseline_lesions_and_no_followup_lesions() -> None:
    b = np.zeros((5, 5, 5), dtype=np.int32)
    f = np.zeros_like(b)
    f[1:3, 1:3, 1:3] = 4
    r = match_label_arrays(b, f, affine_of())
    row = r.followup_lesion(4)
    assert row.match_class is MatchClass.DE_NOVO and row.distance_mm == np.inf
    assert row.nearest_baseline_label is None
    r = match_label_arrays(f, b, affine_of())
    assert r.followup == () and r.baseline[0].failed is False
    assert r.groups[0].kind is GroupKind.VANISHED


def test_overlap_pairs_brute_force() -> None:
    rng = np.random.default_rng(3)
    b = random_labels(rng, (20, 18, 16), 12)
    f = random_labels(rng, (20, 18, 16), 15)
    bl, fl, n = overlap_pairs(b, f)
    ref = {(i, j): int(np.sum((b == i) & (f == j))) for i in range(1, 13) for j in range(1, 16)}
    ref = {k: v for k, v in ref.items() if v}
    assert dict(zip(zip(bl.tolist(), fl.tolist(), strict=True), n.tolist(), strict=True)) == ref


# ---------------------------------------------------------------------------------------------- brute force
def face_edt(mask: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Per voxel: the gap in mm between its faces and the nearest voxel of ``mask`` (axis-aligned grid).

    Independent of the matcher's k-d tree: the gap between voxel boxes whose indices differ by ``d`` is the
    centre distance with every ``|d|`` shortened by one, which is the centre distance to the mask grown by one
    voxel in all 26 directions -- scipy's exact EDT of that grown mask.
    """
    grown = ndimage.binary_dilation(mask, structure=np.ones((3, 3, 3), dtype=bool))
    return ndimage.distance_transform_edt(~grown, sampling=spacing)


def brute_force(
    b: np.ndarray, f: np.ndarray, spacing: tuple[float, float, float], tol: float, margin: float
) -> dict[int, tuple[str, float, frozenset[int], frozenset[int]]]:
    """Per follow-up label: class, surface distance, nearest baseline labels, baseline labels it is local
    to -- from scipy's exact EDT (the definition the matcher must reproduce)."""
    out: dict[int, tuple[str, float, frozenset[int], frozenset[int]]] = {}
    fl = [int(v) for v in np.unique(f) if v]
    bl = [int(v) for v in np.unique(b) if v]
    per = {i: face_edt(b == i, spacing) for i in bl}
    for j in fl:
        m = f == j
        if not bl:
            out[j] = ("de novo", np.inf, frozenset(), frozenset())
            continue
        dj = {i: float(per[i][m].min()) for i in bl}
        overlaps = frozenset(i for i in bl if np.any(m & (b == i)))
        dmin = 0.0 if overlaps else min(dj.values())
        nearest = overlaps or frozenset(i for i in bl if dj[i] <= dmin + 1e-9)
        local_to = overlaps | (frozenset(i for i in bl if dj[i] <= tol + 1e-6) if tol > 0 else frozenset())
        cls = "local" if local_to else "marginal" if dmin <= margin + 1e-6 else "de novo"
        out[j] = (cls, dmin, nearest, local_to)
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), tol=st.sampled_from([0.0, 2.0, 4.5]))
def test_matches_scipy_edt_definition(seed: int, tol: float) -> None:
    rng = np.random.default_rng(seed)
    shape = (14, 16, 18)
    b = random_labels(rng, shape, int(rng.integers(0, 6)))
    f = random_labels(rng, shape, int(rng.integers(1, 7)))
    r = match_label_arrays(b, f, affine_of(), tolerance_mm=tol, margin_mm=8.0)
    ref = brute_force(b, f, SPACING, tol, 8.0)
    assert {row.followup_label for row in r.followup} == set(ref)
    for row in r.followup:
        cls, d, near, local_to = ref[row.followup_label]
        assert row.match_class.value == cls
        # distances are sums of squared multiples of the spacing: both sides compute the same sqrt
        assert row.distance_mm == pytest.approx(d, abs=1e-9)
        if near:
            # ties between equidistant baseline lesions may pick either: the one chosen is among them
            assert row.nearest_baseline_label in near
        assert frozenset(b_ for b_, _ in row.local_to) == local_to
        if cls == "local":
            assert row.baseline_label in local_to
    # groups are the connected components of the "local to" graph
    nodes = {("b", int(v)) for v in np.unique(b) if v} | {("f", j) for j in ref}
    parent = {n: n for n in nodes}

    def find(n: tuple[str, int]) -> tuple[str, int]:
        while parent[n] != n:
            n = parent[n]
        return n

    for j, (_, _, _, lt) in ref.items():
        for i in lt:
            parent[find(("b", i))] = find(("f", j))
    comps: dict[tuple[str, int], set[tuple[str, int]]] = {}
    for n in nodes:
        comps.setdefault(find(n), set()).add(n)
    got = {
        frozenset({("b", i) for i in g.baseline_labels} | {("f", j) for j in g.followup_labels})
        for g in r.groups
    }
    assert got == {frozenset(c) for c in comps.values()}
    # the assignment is a maximum-weight matching inside every group (checked by enumeration)
    ov = dict(
        zip(
            *[tuple(zip(*overlap_pairs(b, f)[:2], strict=True)), overlap_pairs(b, f)[2].tolist()], strict=True
        )
    )
    for g in r.groups:
        if not g.baseline_labels or not g.followup_labels or len(g.followup_labels) > 6:
            continue
        best = 0
        for perm in itertools.permutations(
            g.followup_labels, min(len(g.baseline_labels), len(g.followup_labels))
        ):
            for bsub in itertools.permutations(g.baseline_labels, len(perm)):
                best = max(best, sum(ov.get((i, j), 0) for i, j in zip(bsub, perm, strict=True)))
        got_w = sum(ov.get((i, j), 0) for i, j in r.assignments.items() if i in g.baseline_labels)
        assert got_w == best


def test_rotated_grid_gives_the_same_distances() -> None:
    # distances are physical: a rotated direction matrix must not change them
    rng = np.random.default_rng(11)
    b = random_labels(rng, (12, 14, 16), 4)
    f = random_labels(rng, (12, 14, 16), 5)
    c, s = np.cos(0.4), np.sin(0.4)
    rot = np.array([[0.0, c, -s], [0.0, s, c], [1.0, 0.0, 0.0]])
    r0 = match_label_arrays(b, f, affine_of(), tolerance_mm=2.0)
    r1 = match_label_arrays(b, f, affine_of(rot=rot), tolerance_mm=2.0)
    for a, z in zip(r0.followup, r1.followup, strict=True):
        assert a.distance_mm == pytest.approx(z.distance_mm, abs=1e-9)
        assert a.match_class is z.match_class and a.group_id == z.group_id


def test_relabelling_changes_only_labels() -> None:
    rng = np.random.default_rng(5)
    b = random_labels(rng, (14, 14, 14), 5)
    f = random_labels(rng, (14, 14, 14), 6)
    perm = np.array([0, 60, 7, 300, 2, 41, 9])  # follow-up label k -> perm[k]
    r0 = match_label_arrays(b, f, affine_of())
    r1 = match_label_arrays(b, perm[f], affine_of())
    by0 = {perm[r.followup_label]: r for r in r0.followup}
    for r in r1.followup:
        a = by0[r.followup_label]
        assert (a.match_class, a.baseline_label, a.overlap_voxels, a.distance_mm) == (
            r.match_class,
            r.baseline_label,
            r.overlap_voxels,
            r.distance_mm,
        )


def test_huge_label_values() -> None:
    # labels far above the voxel count (e.g. hashed ids) take the np.unique paths; same answer as small labels
    rng = np.random.default_rng(8)
    b = random_labels(rng, (12, 12, 12), 4)
    f = random_labels(rng, (12, 12, 12), 5)
    big = np.uint64(2**40)
    bb = np.where(b > 0, b.astype(np.uint64) + big, 0).astype(np.uint64)
    fb = np.where(f > 0, f.astype(np.uint64) * big, 0).astype(np.uint64)
    r0 = match_label_arrays(b, f, affine_of(), tolerance_mm=2.0)
    r1 = match_label_arrays(bb, fb, affine_of(), tolerance_mm=2.0)
    for a, z in zip(r0.followup, r1.followup, strict=True):
        assert z.followup_label == a.followup_label * 2**40
        assert z.baseline_label == (None if a.baseline_label is None else a.baseline_label + 2**40)
        assert (z.match_class, z.overlap_voxels, z.distance_mm) == (
            a.match_class,
            a.overlap_voxels,
            a.distance_mm,
        )
    bl, fl, n = overlap_pairs(bb, fb)  # keys would overflow int64: pairs are counted without them
    bl0, fl0, n0 = overlap_pairs(b, f)
    assert np.array_equal(bl, bl0 + 2**40) and np.array_equal(fl, fl0 * 2**40) and np.array_equal(n, n0)


def test_inputs_not_modified() -> None:
    rng = np.random.default_rng(2)
    b = random_labels(rng, (10, 10, 10), 3)
    f = random_labels(rng, (10, 10, 10), 3)
    b0, f0 = b.copy(), f.copy()
    match_label_arrays(b, f, affine_of(), tolerance_mm=2.0)
    assert np.array_equal(b, b0) and np.array_equal(f, f0)


def test_result_is_frozen() -> None:
    b, f = two_boxes(0)
    r = match_label_arrays(b, f, affine_of())
    with pytest.raises(AttributeError):
        r.margin_mm = 3.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        r.followup[0].match_class = MatchClass.DE_NOVO  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------- errors
def test_bad_inputs_give_clear_errors() -> None:
    b, f = two_boxes(0)
    with pytest.raises(ImagingError, match="same grid"):
        match_label_arrays(b, f[:, :, :10], affine_of())
    with pytest.raises(ImagingError, match="tolerance_mm"):
        match_label_arrays(b, f, affine_of(), tolerance_mm=-1.0)
    with pytest.raises(ImagingError, match="margin_mm"):
        match_label_arrays(b, f, affine_of(), tolerance_mm=5.0, margin_mm=2.0)
    with pytest.raises(ImagingError, match="assign_by"):
        match_label_arrays(b, f, affine_of(), assign_by="volume")
    pet = Volume.from_spacing(np.full((4, 4, 4), 2.7, dtype=np.float32))
    with pytest.raises(PofaError, match="not a label map"):
        as_label_map(pet, "baseline")
    neg = Volume.from_spacing(-np.ones((3, 3, 3), dtype=np.int16))
    with pytest.raises(ImagingError, match="negative"):
        as_label_map(neg, "follow-up")
    whole = as_label_map(Volume.from_spacing(np.full((3, 3, 3), 2.0)), "baseline")
    assert whole.voxels.dtype == np.int32 and int(whole.voxels.max()) == 2


def test_unknown_labels_and_bad_transform() -> None:
    b, f = two_boxes(0)
    r = match_label_arrays(b, f, affine_of())
    with pytest.raises(ImagingError, match="not in this result"):
        r.followup_lesion(99)
    with pytest.raises(ImagingError, match="not in this result"):
        r.baseline_lesion(99)
    vb = Volume.from_spacing(b, spacing=SPACING)
    with pytest.raises(ImagingError, match="transform must be"):
        match_patient(vb, vb, transform=42)  # type: ignore[arg-type]
    with pytest.raises(ImagingError, match="not found"):
        match_patient(vb, vb, transform="/nonexistent/t.tfm")


# ---------------------------------------------------------------------------------------------- Volume level
def test_binary_masks_with_components() -> None:
    b = np.zeros((8, 8, 30), dtype=np.uint8)
    b[2:5, 2:5, 2:5] = 1
    b[2:5, 2:5, 20:25] = 1
    f = np.zeros_like(b)
    f[2:5, 2:5, 21:26] = 1
    vb = Volume.from_spacing(b, spacing=(2.0, 2.0, 2.0))
    vf = Volume.from_spacing(f, spacing=(2.0, 2.0, 2.0))
    r_plain = match_patient(vb, vf)
    assert len(r_plain.baseline) == 1  # one label 1 holding both components
    r = match_patient(vb, vf, components=True)
    assert len(r.baseline) == 2 and r.followup[0].baseline_label == 2  # cc3d numbers in scan order


def test_small_lesion_missed_by_resampling_is_placed() -> None:
    # follow-up on a 1 mm grid, baseline on a 4 mm grid: a 1-voxel follow-up lesion between baseline voxel
    # centres is missed by nearest-neighbour resampling and must be placed at its centre
    base = np.zeros((10, 10, 10), dtype=np.uint8)
    base[4:7, 4:7, 4:7] = 1
    vb = Volume.from_spacing(base, spacing=(4.0, 4.0, 4.0))
    fu = np.zeros((40, 40, 40), dtype=np.uint8)
    fu[22, 22, 22] = 5  # centre (22, 22, 22) mm: inside baseline voxel 5 (20..24 mm, index 5 centred at 20)
    fu[0, 0, 30] = 6  # near the baseline grid's edge but inside
    vf = Volume.from_spacing(fu, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0))
    r = match_patient(vb, vf)
    row = r.followup_lesion(5)
    assert row.voxels_in_baseline == 1
    assert row.match_class is MatchClass.LOCAL and row.baseline_label == 1
    assert "placed as one voxel" in r.method
    assert r.followup_lesion(6).voxels_in_baseline == 1


def test_lesion_outside_baseline_scan() -> None:
    base = np.zeros((10, 10, 10), dtype=np.uint8)
    base[4:7, 4:7, 4:7] = 1
    vb = Volume.from_spacing(base, spacing=(4.0, 4.0, 4.0))
    fu = np.zeros((10, 10, 20), dtype=np.uint8)
    fu[4:7, 4:7, 4:7] = 1
    fu[4:6, 4:6, 15:18] = 2  # x = 60..68 mm: beyond the baseline's 0..36 mm
    vf = Volume.from_spacing(fu, spacing=(4.0, 4.0, 4.0))
    r = match_patient(vb, vf)
    out = r.followup_lesion(2)
    assert out.match_class is MatchClass.OUTSIDE and out.voxels_in_baseline == 0
    assert np.isnan(out.distance_mm) and np.isnan(out.centre_lps[0])
    assert out.volume_ml == pytest.approx(12 * 0.064)
    assert r.counts()[MatchClass.OUTSIDE] == 1
    assert r.followup_lesion(1).match_class is MatchClass.LOCAL
    kinds = {g.group_id: g.kind for g in r.groups}
    assert kinds[out.group_id] is GroupKind.NEW
    rows = {row["failure_id"]: row for row in match_to_failures_rows(r, patient_id="P1")}
    assert rows["F2"]["match_class"] == "outside baseline scan" and rows["F2"]["baseline_lesion_id"] is None
    assert rows["F2"]["x_mm"] is None and rows["F2"]["distance_mm"] is None
    assert rows["F1"]["baseline_lesion_id"] == "1"


def test_baseline_lesion_outside_followup_scan() -> None:
    base = np.zeros((10, 10, 20), dtype=np.uint8)
    base[4:7, 4:7, 2:5] = 1
    base[4:7, 4:7, 15:18] = 2  # beyond the follow-up's x range
    vb = Volume.from_spacing(base, spacing=(4.0, 4.0, 4.0))
    vf = Volume.from_spacing(np.zeros((10, 10, 10), dtype=np.uint8), spacing=(4.0, 4.0, 4.0))
    r = match_patient(vb, vf)
    assert r.baseline_lesion(1).in_followup_scan and not r.baseline_lesion(2).in_followup_scan
