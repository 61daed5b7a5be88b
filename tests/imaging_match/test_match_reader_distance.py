"""Distances as a reader measures them: the gap between lesion surfaces (voxel faces), in mm.

Lesions are boxes in physical space (mm) drawn onto the grid as a scanner would: a voxel belongs to a lesion
when its centre lies inside. A failure lesion starts ``gap`` mm beyond the baseline lesion's edge, which lies
on a voxel face. A reader looking at the voxels sees the gap between the drawn voxels' faces: the first
voxel centre at or beyond ``gap`` starts the failure lesion, so the seen gap is ``gap`` rounded to the nearest
voxel face (0 for 0 and for 2 mm on a 4 mm grid: touching; 8 mm for 7 mm on a 4 mm grid, 6 mm on a 2 mm
grid). With the default 10 mm margin and tolerance 0:
0, 2 and 7 mm are marginal (no shared voxel, within 10 mm), 12 mm is de novo. A distance between voxel
centres would count one voxel more: 7 mm on a 4 mm grid became 12 mm, de novo.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pofa.imaging.matching import MatchClass, match_label_arrays, match_patient
from pofa.imaging.volume import Volume

GAPS_MM = (0.0, 2.0, 7.0, 12.0)
READER_CLASS = {0.0: "marginal", 2.0: "marginal", 7.0: "marginal", 12.0: "de novo"}


def rotation(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = (f(a) for a in (ax, ay, az) for f in (math.cos, math.sin))
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def draw_pair(
    spacing: tuple[float, float, float], gap_mm: float, axis: int, direction: np.ndarray | None = None
) -> tuple[Volume, Volume, float]:
    """Baseline box and failure box ``gap_mm`` beyond it along array ``axis`` (in the grid's own frame, so a
    rotated grid rotates the boxes with it). Returns both label maps and the gap a reader sees (mm)."""
    shape = [24, 24, 24]
    sp = spacing[axis]
    shape[axis] = int(math.ceil((40.0 + gap_mm + 40.0) / sp)) + 4
    # coordinates along ``axis`` in the grid frame, from the first voxel's face
    centres = (np.arange(shape[axis]) + 0.5) * sp
    edge = 2 * sp + 8 * sp  # the baseline box covers voxels 2..9 along the axis; its far face is here
    base_1d = (centres >= 2 * sp) & (centres <= edge)
    fail_1d = (centres >= edge + gap_mm) & (centres <= edge + gap_mm + 8 * sp)
    b = np.zeros(shape, dtype=np.uint8)
    f = np.zeros(shape, dtype=np.uint8)
    sl: list[slice | np.ndarray] = [slice(6, 18)] * 3
    sl[axis] = base_1d
    b[np.ix_(*[np.arange(shape[a])[sl[a]] for a in range(3)])] = 1
    sl[axis] = fail_1d
    f[np.ix_(*[np.arange(shape[a])[sl[a]] for a in range(3)])] = 1
    seen = float(centres[np.flatnonzero(fail_1d)[0]] - sp / 2 - edge)  # failure's near face - baseline's face
    vb = Volume.from_spacing(
        b, spacing=spacing, origin=(-30.0, 12.0, 40.0), direction=direction, units="label"
    )
    return vb, vb.with_voxels(f), seen


@pytest.mark.parametrize("voxel_mm", [4.0, 2.0])
@pytest.mark.parametrize("gap_mm", GAPS_MM)
def test_reader_gaps_on_4_and_2_mm_grids(voxel_mm: float, gap_mm: float) -> None:
    for axis in range(3):
        b, f, seen = draw_pair((voxel_mm,) * 3, gap_mm, axis)
        assert abs(seen - gap_mm) <= voxel_mm / 2  # the drawn gap: the physical one rounded to a voxel face
        r = match_patient(b, f)  # defaults: tolerance 0, margin 10 mm
        row = r.followup_lesion(1)
        assert row.distance_mm == pytest.approx(seen, abs=1e-9)
        assert row.match_class.value == READER_CLASS[gap_mm], (voxel_mm, gap_mm, axis, row.distance_mm)
        assert row.nearest_baseline_label == 1 and row.overlap_voxels == 0


def test_the_figures_of_the_issue() -> None:
    # 4 mm voxels: touching lesions are 0 mm apart (centres: 4 mm); a lesion 7 mm from a baseline edge is
    # drawn 8 mm away and is marginal (centres: 12 mm, de novo)
    b, f, _ = draw_pair((4.0, 4.0, 4.0), 0.0, 2)
    assert match_patient(b, f).followup_lesion(1).distance_mm == 0.0
    b, f, _ = draw_pair((4.0, 4.0, 4.0), 7.0, 2)
    row = match_patient(b, f).followup_lesion(1)
    assert row.distance_mm == pytest.approx(8.0) and row.match_class is MatchClass.MARGINAL


@pytest.mark.parametrize("gap_mm", GAPS_MM)
def test_tolerance_makes_near_lesions_local(gap_mm: float) -> None:
    # grown by 3 mm, the baseline lesion reaches the failure lesions 0 and 2 mm away (2 mm grid: drawn at
    # 0 and 2 mm); 7 mm stays marginal, 12 mm de novo
    b, f, seen = draw_pair((2.0, 2.0, 2.0), gap_mm, 1)
    row = match_patient(b, f, tolerance_mm=3.0).followup_lesion(1)
    expected = "local" if seen <= 3.0 else READER_CLASS[gap_mm]
    assert row.match_class.value == expected
    assert (row.baseline_label == 1) is (expected == "local")


@pytest.mark.parametrize("gap_mm", GAPS_MM)
def test_anisotropic_grid(gap_mm: float) -> None:
    # 2 x 4 x 1.5 mm voxels (z, y, x): along each axis the gap rounds up to that axis' voxel face
    spacing = (2.0, 4.0, 1.5)
    for axis in range(3):
        b, f, seen = draw_pair(spacing, gap_mm, axis)
        row = match_patient(b, f).followup_lesion(1)
        assert row.distance_mm == pytest.approx(seen, abs=1e-9)
        cls = "marginal" if seen <= 10.0 else "de novo"
        assert row.match_class.value == cls


@pytest.mark.parametrize("gap_mm", GAPS_MM)
def test_rotated_grid(gap_mm: float) -> None:
    # direction cosines of an oblique acquisition: the boxes turn with the grid; the gap is unchanged
    rot = rotation(0.3, -0.5, 0.8)
    spacing = (3.0, 2.0, 2.5)
    for axis in range(3):
        b0, f0, seen = draw_pair(spacing, gap_mm, axis)
        b1, f1, _ = draw_pair(spacing, gap_mm, axis, direction=rot)
        assert not np.allclose(b1.affine[:3, :3], b0.affine[:3, :3])
        r0 = match_patient(b0, f0).followup_lesion(1)
        r1 = match_patient(b1, f1).followup_lesion(1)
        assert r1.distance_mm == pytest.approx(seen, abs=1e-9)
        assert r0.distance_mm == pytest.approx(r1.distance_mm, abs=1e-9)
        assert r0.match_class is r1.match_class


def test_diagonal_gaps_on_a_rotated_anisotropic_grid() -> None:
    # a failure box offset along two or three axes at once, with k_a empty voxels between the boxes along axis
    # a: the nearest points are on edges or corners, sqrt(sum (k_a * spacing_a)^2) apart, on any rotated grid
    rot = rotation(-0.4, 0.2, 1.1)
    spacing = (2.5, 1.5, 4.0)
    for off in [(3, 2, 0), (0, -4, 2), (2, 3, -2), (1, 1, 1), (4, 0, 0), (0, 0, -1)]:
        b = np.zeros((22, 22, 22), dtype=np.uint8)
        f = np.zeros_like(b)
        b[9:12, 9:12, 9:12] = 1
        lo = [12 + k if k > 0 else 6 + k if k < 0 else 9 for k in off]
        f[lo[0] : lo[0] + 3, lo[1] : lo[1] + 3, lo[2] : lo[2] + 3] = 2
        expected = math.sqrt(sum((abs(k) * s) ** 2 for k, s in zip(off, spacing, strict=True)))
        for direction in (None, rot):
            aff = Volume.from_spacing(b, spacing=spacing, direction=direction).affine
            row = match_label_arrays(b, f, aff).followup_lesion(2)
            assert row.distance_mm == pytest.approx(expected, abs=1e-9), (off, direction is None)
            cls = MatchClass.MARGINAL if expected <= 10.0 else MatchClass.DE_NOVO
            assert row.match_class is cls
