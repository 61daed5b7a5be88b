"""Phantom pairs with known rigid and smooth deformations: registration error and lesion matching accuracy.

The follow-up scan is rendered through a known map (match_phantoms.py), so the true baseline -> follow-up
transform is known exactly. Targets: local/de novo F1 >= 0.95 with correct assignments, and a target
registration error (TRE) within 2 mm at every lesion centre and organ centre (landmarks).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
from match_phantoms import (
    ANATOMY,
    BASELINE_LESIONS,
    EXPECTED,
    RIGID_DEMO,
    VANISHED,
    KnownMap,
    PhantomPair,
    make_pair,
)

from pofa.imaging.matching import GroupKind, MatchClass, MatchResult, match_patient
from pofa.imaging.registration import (
    Modality,
    RegistrationResult,
    RegistrationSettings,
    body_mask,
    invert_points,
    register,
    register_scans,
    transform_from_file,
    transform_points,
)

RIGID = RIGID_DEMO
SMOOTH = KnownMap(rot_deg=(2.0, 1.0, -3.0), shift_mm=(-5.0, 4.0, 9.0), amplitude_mm=5.0)
TRE_LIMIT_MM = 2.0  # the target
# Measured here (docs/matching.md): rigid + affine 0.13 (CT) and 0.17 mm (PET) at worst; B-spline on PET with
# the lesions masked 0.71 mm (1.14 mm before the metric was restricted to the body). The bounds leave room for
# other ITK builds (a different last bit changes the random samples' sums), not for a lost pyramid level or
# a metric sampling the air.
RIGID_TRE_MM = 0.5
DEFORMABLE_TRE_MM = 1.14

LANDMARKS = np.vstack(
    [np.array([s.centre for s in BASELINE_LESIONS]), np.array([e.centre for e in ANATOMY[1:]])]
)


@pytest.fixture(scope="module")
def rigid_pair() -> PhantomPair:
    return make_pair(RIGID)


@pytest.fixture(scope="module")
def smooth_pair() -> PhantomPair:
    return make_pair(SMOOTH)


def tre(transform: sitk.Transform | None, g: KnownMap) -> np.ndarray:
    """Distance (mm) between where the transform sends each baseline landmark and where it truly is."""
    return np.linalg.norm(transform_points(transform, LANDMARKS) - g.inverse(LANDMARKS), axis=1)


def f1_local(result: MatchResult) -> float:
    """F1 of 'local' against the expected classes (marginal and de novo are both 'not local')."""
    tp = fp = fn = 0
    for row in result.followup:
        pred = row.match_class is MatchClass.LOCAL
        truth = EXPECTED[row.followup_label].match_class == "local"
        tp += pred and truth
        fp += pred and not truth
        fn += truth and not pred
    return 2 * tp / (2 * tp + fp + fn)


def check_against_expected(result: MatchResult) -> None:
    assert {r.followup_label for r in result.followup} == set(EXPECTED)
    assert f1_local(result) >= 0.95
    for row in result.followup:
        e = EXPECTED[row.followup_label]
        assert row.match_class.value == e.match_class, row
        assert row.baseline_label == e.baseline_label, row
        assert row.assigned == e.assigned, row
        assert frozenset(b for b, _ in row.local_to) == e.group, row
    assert result.assignments == {1: 1, 2: 2, 3: 3, 4: 5, 7: 6}
    kinds = sorted((g.kind.value, g.baseline_labels, g.followup_labels) for g in result.groups)
    assert (GroupKind.SPLIT.value, (3,), (3, 4)) in kinds
    assert (GroupKind.MERGE.value, (4, 5), (5,)) in kinds
    assert (GroupKind.VANISHED.value, VANISHED, ()) in kinds
    assert [b.baseline_label for b in result.baseline if not b.failed] == list(VANISHED)
    assert all(b.in_followup_scan for b in result.baseline)


# ---------------------------------------------------------------------------------------------- known
# transform
@pytest.mark.parametrize("which", ["rigid", "smooth"])
@pytest.mark.slow
def test_matching_with_true_transform(which: str, rigid_pair: PhantomPair, smooth_pair: PhantomPair) -> None:
    pair = rigid_pair if which == "rigid" else smooth_pair
    truth = pair.g.truth_transform(pair.baseline_labels)
    result = match_patient(pair.baseline_labels, pair.followup_labels, truth)
    check_against_expected(result)
    # the marginal lesion: 6 mm from lesion 7's surface; nearest voxel centres are within one voxel of that
    marg = result.followup_lesion(9)
    assert marg.nearest_baseline_label == 7 and 2.0 <= marg.distance_mm <= 10.0


def test_identity_is_wrong_so_the_phantom_tests_something(rigid_pair: PhantomPair) -> None:
    # without registration the shift + rotation moves landmarks by > 10 mm and spoils the matching
    assert tre(None, RIGID).min() > 10.0
    result = match_patient(rigid_pair.baseline_labels, rigid_pair.followup_labels, None)
    assert result.assignments != {1: 1, 2: 2, 3: 3, 4: 5, 7: 6}


def test_truth_transform_inverts_the_map(rigid_pair: PhantomPair) -> None:
    # the phantom's own bookkeeping: G(G^-1(p)) = p, and the SimpleITK truth transform equals G^-1
    p = LANDMARKS
    for g in (RIGID, SMOOTH):
        assert np.abs(g(g.inverse(p)) - p).max() < 1e-6
    t = RIGID.truth_transform(rigid_pair.baseline_labels)
    assert np.abs(transform_points(t, p) - RIGID.inverse(p)).max() < 1e-9
    assert np.abs(invert_points(t, RIGID.inverse(p)) - p).max() < 1e-9


# ---------------------------------------------------------------------------------------------- registration
@pytest.mark.parametrize("modality", ["CT", "PET"])
@pytest.mark.slow
def test_rigid_registration_error(modality: str, rigid_pair: PhantomPair) -> None:
    pair = rigid_pair
    b = pair.baseline_ct if modality == "CT" else pair.baseline_pet
    f = pair.followup_ct if modality == "CT" else pair.followup_pet
    reg = register(b, f, modality)
    assert reg.stages == ("rigid", "affine")
    assert "cropped to the body" in reg.method
    err = tre(reg.transform, RIGID)
    assert err.max() < RIGID_TRE_MM, err
    assert reg.body_dice_after > reg.body_dice_before
    assert reg.body_dice_after > 0.95
    assert len(reg.metric_values) == 2 and all(math.isfinite(v) for v in reg.metric_values)
    assert ("mean squares" if modality == "CT" else "Mattes mutual information") in reg.method
    # matching through the estimated transform reproduces the expected outcome
    check_against_expected(match_patient(pair.baseline_labels, pair.followup_labels, reg))


@pytest.mark.slow
def test_fine_followup_is_registered_on_the_working_grid(rigid_pair: PhantomPair) -> None:
    # follow-up at 2 mm (as a diagnostic CT): smoothed and resampled to the 4 mm working grid, same accuracy
    pair = rigid_pair
    fine = make_pair(RIGID, followup_shape=(140, 116, 124), followup_spacing=(2.0, 2.1, 2.1))
    reg = register(pair.baseline_ct, fine.followup_ct, "CT")
    assert "resampled" in reg.method
    err = tre(reg.transform, RIGID)
    assert err.max() < TRE_LIMIT_MM, err
    # the working image covers the same physical extent (voxel corners) as the original
    from pofa.imaging.registration import _working_image

    img = fine.followup_ct.to_sitk()
    w = _working_image(img, 4.0)
    for im in (img, w):
        assert im.GetDirection() == img.GetDirection()
    lo = np.asarray(img.GetOrigin()) - np.asarray(img.GetSpacing()) / 2
    lo_w = np.asarray(w.GetOrigin()) - np.asarray(w.GetSpacing()) / 2
    assert np.allclose(lo, lo_w, atol=1e-9)
    assert w.GetSpacing() == (4.0, 4.0, 4.0)
    assert _working_image(pair.followup_ct.to_sitk(), 4.0).GetSize() == pair.followup_ct.to_sitk().GetSize()


@pytest.mark.slow
def test_registration_is_reproducible(rigid_pair: PhantomPair) -> None:
    # one thread (the default): bit-identical (fixed sampling seed)
    fast = {"affine": False, "iterations": 40, "shrink_factors": (4, 2), "smoothing_sigmas_mm": (2.0, 1.0)}
    st1 = RegistrationSettings(**fast, threads=1)
    a = register(rigid_pair.baseline_pet, rigid_pair.followup_pet, "PET", st1)
    b = register(rigid_pair.baseline_pet, rigid_pair.followup_pet, "PET", st1)
    assert a.transform.GetParameters() == b.transform.GetParameters()
    assert a.metric_values == b.metric_values
    assert a.stages == ("rigid",)
    # two threads: ITK adds per-thread partial sums in whatever order the threads finish, so results may
    # differ in the last bits (seen: 6e-16 rad); 1e-9 (rad or mm) is far below any clinical relevance
    st2 = RegistrationSettings(**fast, threads=2)
    c = register(rigid_pair.baseline_pet, rigid_pair.followup_pet, "PET", st2)
    d = register(rigid_pair.baseline_pet, rigid_pair.followup_pet, "PET", st2)
    assert np.allclose(c.transform.GetParameters(), d.transform.GetParameters(), rtol=0, atol=1e-9)


@pytest.mark.slow
def test_whole_field_of_view_registration_still_available(rigid_pair: PhantomPair) -> None:
    # body_margin_mm=None: the previous behaviour (metric over the whole field of view, uncropped)
    st = RegistrationSettings(body_margin_mm=None)
    reg = register(rigid_pair.baseline_pet, rigid_pair.followup_pet, "PET", st)
    assert "cropped to the body" not in reg.method
    assert tre(reg.transform, RIGID).max() < RIGID_TRE_MM


def test_register_scans_prefers_ct(rigid_pair: PhantomPair) -> None:
    st = RegistrationSettings(
        affine=False, iterations=40, shrink_factors=(4, 2), smoothing_sigmas_mm=(2.0, 1.0)
    )
    with_ct = register_scans(
        rigid_pair.baseline_pet, rigid_pair.followup_pet, rigid_pair.baseline_ct, rigid_pair.followup_ct, st
    )
    without = register_scans(
        rigid_pair.baseline_pet, rigid_pair.followup_pet, None, rigid_pair.followup_ct, st
    )
    assert with_ct.modality is Modality.CT and without.modality is Modality.PET


def test_body_masks(rigid_pair: PhantomPair) -> None:
    ct = body_mask(rigid_pair.baseline_ct, "CT").voxels.astype(bool)
    pet = body_mask(rigid_pair.baseline_pet, "PET").voxels.astype(bool)
    # the body ellipsoid (105 x 75 x 125 mm radii) holds 4/3 pi abc = 4.123 l; voxels are 64 ml... 0.064 ml
    expected_ml = 4.0 / 3.0 * math.pi * 105 * 75 * 125 / 1000.0
    # CT: partial-volume edge (soft 1.5 mm logistic) on a 4 mm grid: within 1% of the ellipsoid volume
    # (measured 0.4%).
    assert ct.sum() * 0.064 == pytest.approx(expected_ml, rel=1e-2)
    # PET: the body outline comes from blurred uptake, so the mask reaches outward: it must hold the whole
    # ellipsoid and overshoot it by less than 3% (measured 2.2%).
    assert expected_ml < pet.sum() * 0.064 < 1.03 * expected_ml
    assert (ct & pet).sum() / ct.sum() > 0.97  # lungs (air in CT) are filled as holes


def test_transform_file_round_trip(rigid_pair: PhantomPair, tmp_path) -> None:
    truth = RIGID.truth_transform(rigid_pair.baseline_labels)
    res = RegistrationResult(truth, ("given",), (), (), None, None, math.nan, math.nan, "truth")
    for name in ("t.tfm", "t.h5"):
        path = res.save(tmp_path / name)
        loaded = transform_from_file(path, rigid_pair.baseline_ct, rigid_pair.followup_ct, "CT")
        assert loaded.stages == ("precomputed",)
        assert np.abs(transform_points(loaded.transform, LANDMARKS) - RIGID.inverse(LANDMARKS)).max() < 1e-9
        assert loaded.body_dice_after > 0.97 and loaded.body_dice_before < loaded.body_dice_after
        r_file = match_patient(rigid_pair.baseline_labels, rigid_pair.followup_labels, path)
        check_against_expected(r_file)
    with pytest.raises(Exception, match="must end in"):
        res.save(tmp_path / "t.json")


def test_bad_transform_file(tmp_path) -> None:
    p = tmp_path / "bad.tfm"
    p.write_text("not a transform\n")
    with pytest.raises(Exception, match="Cannot read"):
        transform_from_file(p)


def test_bad_settings() -> None:
    from pofa.errors import ImagingError

    for kw in (
        {"sampling_percentage": 0.0},
        {"shrink_factors": (4, 2)},
        {"initializer": "random"},
        {"bspline_grid_mm": -1.0},
        {"threads": 0},
        {"step_mm": 0.0},
        {"working_spacing_mm": 0.0},
        {"bspline_sampling_percentage": 2.0},
        {"lesion_margin_mm": -1.0},
        {"body_margin_mm": -1.0},
    ):
        with pytest.raises(ImagingError):
            RegistrationSettings(**kw)


@pytest.mark.slow
def test_deformable_registration_error_and_matching(smooth_pair: PhantomPair) -> None:
    pair = smooth_pair
    reg = register(
        pair.baseline_pet,
        pair.followup_pet,
        "PET",
        RegistrationSettings(deformable=True),
        baseline_lesions=pair.baseline_labels,
        followup_lesions=pair.followup_labels,
    )
    assert reg.stages == ("rigid", "affine", "bspline")
    assert "left out of the metric" in reg.method
    err = tre(reg.transform, SMOOTH)
    assert err.max() < DEFORMABLE_TRE_MM, err
    # the B-spline's inverse has no closed form: Newton inversion must agree with the forward map
    q = transform_points(reg.transform, LANDMARKS)
    assert np.abs(invert_points(reg.transform, q) - LANDMARKS).max() < 1e-3
    check_against_expected(match_patient(pair.baseline_labels, pair.followup_labels, reg))
