"""The lesion-box resampling of a follow-up label map equals SimpleITK's full nearest-neighbour resampling.

Reference: ``pofa.imaging.registration.resample_volume(moving, reference, transform, "nearest")``, i.e.
``SimpleITK.Resample`` over the whole reference grid. The comparison is exact (``np.array_equal``): label maps
have no tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import SimpleITK as sitk

import pofa.imaging.matching.patient as matching_patient
import pofa.imaging.matching.resample as matching
from pofa.imaging.matching import (
    match_patient,
    resample_label_map,
)
from pofa.imaging.registration import resample_volume
from pofa.imaging.volume import Volume


def _balls(shape: tuple[int, ...], rng: np.random.Generator, n: int, border: bool) -> np.ndarray:
    """Label map with ``n`` balls (radius 1-6 voxels); with ``border`` some are cut by the image edge."""
    arr = np.zeros(shape, dtype=np.uint16)
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    for lab in range(1, n + 1):
        c = rng.uniform(0, np.asarray(shape), 3)
        if border and lab % 2:
            axis = int(rng.integers(0, 3))
            c[axis] = 0.0 if rng.random() < 0.5 else shape[axis] - 1.0
        r = rng.uniform(1.0, 6.0)
        arr[((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2) <= r * r] = lab
    return arr


def _direction(rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return q


def _transform(kind: str, rng: np.random.Generator, centre: list[float]) -> sitk.Transform | None:
    def shift() -> list[float]:
        return [float(v) for v in rng.uniform(-8.0, 8.0, 3)]

    if kind == "identity":
        return None
    if kind == "translation":
        return sitk.TranslationTransform(3, shift())
    if kind == "rotation":
        euler = sitk.Euler3DTransform()
        euler.SetCenter(centre)
        ax, ay, az = (float(v) for v in rng.uniform(-0.35, 0.35, 3))
        euler.SetRotation(ax, ay, az)
        euler.SetTranslation(shift())
        return euler
    if kind == "scaling":
        sim = sitk.Similarity3DTransform()
        sim.SetCenter(centre)
        sim.SetScale(float(rng.uniform(0.7, 1.4)))
        sim.SetRotation((0.0, 0.0, 1.0), float(rng.uniform(-0.3, 0.3)))
        sim.SetTranslation(shift())
        return sim
    if kind == "affine":
        aff = sitk.AffineTransform(3)
        aff.SetCenter(centre)
        aff.SetMatrix([float(v) for v in (np.eye(3) + rng.uniform(-0.2, 0.2, (3, 3))).ravel()])
        aff.SetTranslation(shift())
        return aff
    assert kind == "composite"
    e = sitk.Euler3DTransform()
    e.SetCenter(centre)
    e.SetRotation(0.1, -0.05, 0.2)
    return sitk.CompositeTransform([e, sitk.TranslationTransform(3, shift())])


KINDS = ("identity", "translation", "rotation", "scaling", "affine", "composite")


def _cases(seed: int, n: int) -> Iterator[tuple[str, Volume, Volume, sitk.Transform | None]]:
    """Random pairs: each its own grids (shape, anisotropic spacing, origin, oblique or axial direction)."""
    rng = np.random.default_rng(seed)
    spacings = np.array([0.9765625, 1.0, 1.3, 2.0, 3.0, 4.07])
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        shape_b = tuple(int(v) for v in rng.integers(18, 40, 3))
        shape_f = tuple(int(v) for v in rng.integers(18, 40, 3))
        base = Volume.from_spacing(
            np.zeros(shape_b, np.uint8),
            rng.choice(spacings, 3),
            rng.uniform(-60.0, 60.0, 3),
            _direction(rng) if i % 3 == 0 else None,
        )
        fu = Volume.from_spacing(
            _balls(shape_f, rng, int(rng.integers(1, 8)), border=i % 2 == 0),
            rng.choice(spacings, 3),
            np.asarray(base.origin) + rng.uniform(-10.0, 10.0, 3),
            _direction(rng) if i % 4 == 1 else None,
            units="label",
        )
        centre = [float(v) for v in base.index_to_lps((np.asarray(shape_b) - 1) / 2.0)]
        yield kind, base, fu, _transform(kind, rng, centre)


@pytest.mark.parametrize("seed", [1, 2])
def test_fast_path_equals_full_resampling(seed: int) -> None:
    kinds_done: set[str] = set()
    for kind, base, fu, t in _cases(seed, 60):
        full = resample_volume(fu, base, t, "nearest").voxels
        fast = matching._resample_labels(fu, base, t)
        assert fast.lesion_boxes, kind  # the lesion-box path, not the fallback
        assert np.array_equal(fast.voxels, full), kind
        assert fast.voxels.dtype == full.dtype
        present = np.unique(full[full != 0])
        assert np.array_equal(fast.present, present)
        kinds_done.add(kind)
    assert kinds_done == set(KINDS)


def test_public_function_and_dtypes() -> None:
    rng = np.random.default_rng(5)
    arr = _balls((20, 24, 28), rng, 5, border=True)
    base = Volume.from_spacing(np.zeros((22, 26, 30)), (2.0, 1.5, 1.5), (-3.0, 2.0, 1.0))
    t = sitk.Euler3DTransform()
    t.SetRotation(0.05, 0.1, -0.2)
    t.SetTranslation((2.0, -1.0, 3.0))
    for dtype in (np.uint8, np.uint16, np.int32, np.int64):
        fu = Volume.from_spacing(arr.astype(dtype), (2.5, 1.2, 1.7), (0.0, 0.0, 0.0), units="label")
        out = resample_label_map(fu, base, t)
        ref = resample_volume(fu, base, t, "nearest")
        assert out.voxels.dtype == dtype and out.units == "label"
        assert np.array_equal(out.voxels, ref.voxels) and np.allclose(out.affine, base.affine)
    # same grid, no transform: the voxels themselves
    fu = Volume.from_spacing(arr, units="label")
    assert np.array_equal(resample_label_map(fu, fu).voxels, arr)


def _tie_cases() -> Iterator[tuple[Volume, Volume, sitk.Transform | None]]:
    """Transforms that put many voxel centres exactly on half-voxel positions (rounding ties)."""
    rng = np.random.default_rng(11)
    for i in range(16):
        sp = rng.choice([1.0, 2.0, 3.0, 4.07, 1.3], 3)
        shape_b = tuple(int(v) for v in rng.integers(18, 34, 3))
        base = Volume.from_spacing(np.zeros(shape_b, np.uint8), sp, rng.integers(-20, 20, 3).astype(float))
        fu = Volume.from_spacing(
            _balls(tuple(int(v) for v in rng.integers(18, 34, 3)), rng, 6, border=True),
            sp,
            np.asarray(base.origin) + rng.integers(-4, 4, 3) * 0.5 * sp,  # half-voxel grid offsets
            units="label",
        )
        centre = [float(v) for v in np.round(base.index_to_lps((np.asarray(shape_b) - 1) / 2.0))]
        t: sitk.Transform | None
        if i % 4 == 0:
            t = None
        elif i % 4 == 1:
            t = sitk.TranslationTransform(3, [float(v) for v in 0.5 * sp[::-1]])
        elif i % 4 == 2:
            t = sitk.Euler3DTransform()
            t.SetCenter(centre)
            t.SetRotation(0.0, 0.0, math.pi / 2)
            t.SetTranslation((0.5, 1.5, 0.0))
        else:
            t = sitk.Similarity3DTransform()
            t.SetCenter(centre)
            t.SetScale(2.0)
            t.SetTranslation((0.5, 0.0, 1.0))
        yield base, fu, t


def test_ties_are_resampled_whole_and_exactly() -> None:
    """Transforms that put voxel centres on half-voxel positions: numpy's rounding of those positions differs
    from ITK's in some voxels (checked), so the whole grid goes to SimpleITK and the result is exact."""
    fallback = differs = 0
    for base, fu, t in _tie_cases():
        full = resample_volume(fu, base, t, "nearest").voxels
        res = matching._resample_labels(fu, base, t)
        assert np.array_equal(res.voxels, full)
        if res.lesion_boxes:
            continue
        fallback += 1
        # numpy's own rounding of the same map, over the whole grid
        m = matching._linear_index_map(fu, base, t)
        assert m is not None
        idx = np.argwhere(np.ones(base.shape, dtype=bool))
        k = np.floor(idx @ m[:3, :3].T + m[:3, 3] + 0.5).astype(np.int64)
        ok = np.all((k >= 0) & (k < np.asarray(fu.shape)), axis=1)
        naive = np.zeros(base.voxels.size, dtype=fu.voxels.dtype)
        naive[ok] = fu.voxels[k[ok, 0], k[ok, 1], k[ok, 2]]
        differs += int(np.count_nonzero(naive.reshape(base.shape) != full))
    assert fallback >= 8 and differs > 0


def _itk_index(base: Volume, fu: Volume, t: sitk.Transform | None, idx: np.ndarray) -> np.ndarray:
    """Moving continuous array index of reference voxels, computed point by point by SimpleITK (ITK's
    TransformIndexToPhysicalPoint, TransformPoint, TransformPhysicalPointToContinuousIndex)."""
    ref, mov = base.to_sitk(), fu.to_sitk()
    tt = t if t is not None else sitk.Transform()
    out = [
        mov.TransformPhysicalPointToContinuousIndex(
            tt.TransformPoint(ref.TransformIndexToPhysicalPoint((int(a[2]), int(a[1]), int(a[0]))))
        )[::-1]
        for a in idx
    ]
    return np.asarray(out)


def test_numpy_map_agrees_with_itk_far_inside_the_tie_window() -> None:
    """The justification of the 1e-9 voxel tie window: numpy's map is within 1e-11 voxel of ITK's (measured
    6e-13 on the large grid below), so a position outside the window rounds the same way in both."""
    rng = np.random.default_rng(4)
    worst = 0.0
    for _, base, fu, t in _cases(3, 24):
        m = matching._linear_index_map(fu, base, t)
        assert m is not None
        idx = np.argwhere(np.ones(base.shape, dtype=bool))[::97]
        worst = max(worst, float(np.max(np.abs(idx @ m[:3, :3].T + m[:3, 3] - _itk_index(base, fu, t, idx)))))
    # a 512 x 512 x 600 CT-like reference 1.6 m from the scanner origin and a PET-like moving grid, rotated
    base = Volume.from_spacing(np.zeros((600, 512, 512), np.uint8)[:1, :1, :1], (2.0, 0.9765625, 0.9765625),
                               (-250.0, -250.0, -1600.0))
    fu = Volume.from_spacing(np.zeros((1, 1, 1), np.uint8), (3.0, 4.07, 4.07), (-300.0, -290.0, -1650.0))
    t = sitk.Euler3DTransform()
    t.SetCenter((0.0, 0.0, -1000.0))
    t.SetRotation(0.1, -0.2, 0.3)
    t.SetTranslation((5.0, -7.0, 11.0))
    m = matching._linear_index_map(fu, base, t)
    assert m is not None
    idx = rng.integers(0, [600, 512, 512], size=(1500, 3))
    worst = max(worst, float(np.max(np.abs(idx @ m[:3, :3].T + m[:3, 3] - _itk_index(base, fu, t, idx)))))
    assert worst < 1e-11
    assert matching._TIE_VOXELS >= 100 * 1e-11


def test_nonlinear_transforms_use_full_resampling() -> None:
    rng = np.random.default_rng(3)
    fu = Volume.from_spacing(_balls((24, 24, 24), rng, 5, border=False), (2.0, 2.0, 2.0), units="label")
    base = Volume.from_spacing(np.zeros((20, 26, 22)), (2.5, 1.8, 2.0), (3.0, -2.0, 1.0))
    img = base.to_sitk()
    bs = sitk.BSplineTransformInitializer(img, [3, 3, 3], 3)
    params = np.asarray(bs.GetParameters())
    bs.SetParameters([float(v) for v in rng.normal(0.0, 2.0, params.size)])
    affine = sitk.AffineTransform(3)
    affine.SetTranslation((1.0, 2.0, -1.0))
    for t in (bs, sitk.CompositeTransform([affine, bs])):
        res = matching._resample_labels(fu, base, t)
        assert not res.lesion_boxes
        assert np.array_equal(res.voxels, resample_volume(fu, base, t, "nearest").voxels)


def test_lesions_outside_the_reference_and_empty_maps() -> None:
    rng = np.random.default_rng(8)
    fu = Volume.from_spacing(_balls((20, 20, 20), rng, 4, border=False), (2.0, 2.0, 2.0), units="label")
    far = Volume.from_spacing(np.zeros((10, 10, 10)), (2.0, 2.0, 2.0), (500.0, 500.0, 500.0))
    res = matching._resample_labels(fu, far, None)
    assert res.lesion_boxes and not res.voxels.any() and res.present.size == 0
    empty = fu.with_voxels(np.zeros(fu.shape, np.uint16))
    res = matching._resample_labels(empty, far, sitk.Euler3DTransform())
    assert not res.voxels.any() and res.voxels.shape == far.shape


def test_match_patient_equals_matching_the_fully_resampled_map(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole match (classes, groups, assignments, volumes, lost lesions) is the one of the full
    resampling."""
    rng = np.random.default_rng(21)
    base_arr = _balls((60, 50, 50), rng, 25, border=True)
    fu_arr = _balls((56, 54, 48), rng, 25, border=True)
    fu_arr[30, 30, 30] = 99  # a one-voxel lesion, smaller than a baseline voxel: may be lost by resampling
    base = Volume.from_spacing(base_arr, (3.0, 2.0, 2.0), (-50.0, -50.0, -90.0), units="label")
    fu = Volume.from_spacing(fu_arr, (2.5, 2.2, 1.9), (-44.0, -47.0, -85.0), units="label")
    t = sitk.Euler3DTransform()
    t.SetCenter([float(v) for v in base.index_to_lps((np.asarray(base.shape) - 1) / 2.0)])
    t.SetRotation(0.04, -0.03, 0.08)
    t.SetTranslation((2.0, -3.0, 4.0))
    fast = match_patient(base, fu, t, margin_mm=8.0)
    assert "near the follow-up lesions only" in fast.method

    def whole(moving: Volume, reference: Volume, transform: object, fg: object = None) -> object:
        arr = np.array(resample_volume(moving, reference, transform, "nearest").voxels)  # type: ignore[arg-type]
        return matching._Resampled(arr, np.unique(arr[arr != 0]).astype(np.int64), False)

    monkeypatch.setattr(matching_patient, "_resample_labels", whole)
    full = match_patient(base, fu, t, margin_mm=8.0)
    assert "whole grid" in full.method
    assert fast.followup == full.followup and fast.baseline == full.baseline and fast.groups == full.groups
    assert len(fast.followup) == 26
