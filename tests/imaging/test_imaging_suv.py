"""SUV against closed-form values for every vendor and decay-correction variant, and clear errors for bad
headers.

Expected values are written from first principles in this file: SUV = stored x slope x mass_g / decayed dose
with the decay time in seconds worked out by hand from the synthetic header times.

Tolerances: the SUV volume is float32 (two roundings of 2^-24 relative each: about 1.2e-7), so voxel values
are compared at rtol 1e-6 (the issue's requirement); factors are float64 arithmetic and compared at rtol
1e-12.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pytest
from pet_synthetic import (
    F18_HALF_LIFE,
    PetSpec,
    write_pet_series,
)

from pofa.errors import ImagingError
from pofa.imaging.dicom import read_series
from pofa.imaging.suv import (
    SuvNormalisation,
    lean_body_mass_kg,
    suv_from_dicom,
    suv_from_nifti,
)
from pofa.imaging.volume import Volume

RTOL_VOXEL = 1e-6  # float32 storage, see the module docstring
RTOL_FACTOR = 1e-12  # float64 arithmetic only

SHAPE = (5, 6, 7)
STORED = (np.arange(np.prod(SHAPE)).reshape(SHAPE) * 37 % 4000 + 1).astype(np.int64)

# Header times of the default PetSpec: injection 09:12:30, series 10:14:05.25 -> 3695.25 s.
DT_DEFAULT = 3695.25


def bw_factor(weight_kg: float, dose_bq: float, decay_s: float, half_life: float = F18_HALF_LIFE) -> float:
    return weight_kg * 1000.0 / (dose_bq * 2.0 ** (-decay_s / half_life))


def slopes_of(spec: PetSpec) -> np.ndarray:
    return np.array(
        [spec.slope * (1.0 + 0.5 * k) if spec.per_slice_slope else spec.slope for k in range(SHAPE[0])]
    )


def run(tmp_path: Path, spec: PetSpec, **kw):
    folder = tmp_path / "pet"
    write_pet_series(folder, STORED, spec)
    return suv_from_dicom(folder, **kw)


def check_voxels(result, spec: PetSpec, factors) -> None:
    f = np.broadcast_to(np.asarray(factors, dtype=np.float64), (SHAPE[0],))
    expected = STORED * slopes_of(spec)[:, None, None] * f[:, None, None]
    np.testing.assert_allclose(result.volume.voxels, expected, rtol=RTOL_VOXEL, atol=0)


def test_bqml_start_series_time(tmp_path):
    spec = PetSpec()
    res = run(tmp_path, spec)
    f = bw_factor(73.5, 3.7e8, DT_DEFAULT)
    assert res.factors.factor == pytest.approx(f, rel=RTOL_FACTOR)
    check_voxels(res, spec, f)
    assert res.factors.decay_times_s[0] == pytest.approx(DT_DEFAULT, abs=1e-6)
    assert any("SeriesDate/SeriesTime" in r for r in res.factors.rules)
    assert any("RadiopharmaceuticalStartDateTime" in r for r in res.factors.rules)
    assert res.volume.units == "SUVbw"


def test_per_slice_rescale_slope(tmp_path):
    spec = PetSpec(per_slice_slope=True, manufacturer="GE MEDICAL SYSTEMS")
    res = run(tmp_path, spec)
    check_voxels(res, spec, bw_factor(73.5, 3.7e8, DT_DEFAULT))


def test_ge_post_processed_series_uses_private_scan_time(tmp_path):
    # series created at 11:30 (after the acquisition at 10:14:05.25); GE private scan time 10:10:00 -> 3450 s
    spec = PetSpec(
        series=dt.datetime(2021, 3, 4, 11, 30, 0),
        acquisition=dt.datetime(2021, 3, 4, 10, 14, 5, 250000),
        ge_scan_datetime=dt.datetime(2021, 3, 4, 10, 10, 0),
        manufacturer="GE MEDICAL SYSTEMS",
        per_slice_slope=True,
    )
    res = run(tmp_path, spec)
    f = bw_factor(73.5, 3.7e8, 3450.0)
    assert res.factors.factor == pytest.approx(f, rel=RTOL_FACTOR)
    check_voxels(res, spec, f)
    assert any("GE private (0009,100D)" in r for r in res.factors.rules)


def test_post_processed_without_ge_tag_uses_earliest_acquisition(tmp_path):
    # acquisitions 10:14:05.25 + 60 s per slice (written in shuffled file order); series time 11:30 is later
    spec = PetSpec(
        series=dt.datetime(2021, 3, 4, 11, 30, 0),
        acquisition=dt.datetime(2021, 3, 4, 10, 14, 5, 250000),
        acq_step_s=60.0,
    )
    res = run(tmp_path, spec)
    f = bw_factor(73.5, 3.7e8, DT_DEFAULT)
    check_voxels(res, spec, f)
    assert any("earliest AcquisitionDate/Time" in r for r in res.factors.rules)


def test_philips_cnts_suv_scale_factor(tmp_path):
    spec = PetSpec(units="CNTS", philips_suv_factor=0.000123, manufacturer="Philips Medical Systems")
    res = run(tmp_path, spec)
    check_voxels(res, spec, 0.000123)
    assert any("(7053,1000)" in r for r in res.factors.rules)


def test_philips_cnts_activity_concentration_factor(tmp_path):
    spec = PetSpec(units="CNTS", philips_acsf=0.5, manufacturer="Philips Medical Systems")
    res = run(tmp_path, spec)
    f = 0.5 * bw_factor(73.5, 3.7e8, DT_DEFAULT)
    assert res.factors.factor == pytest.approx(f, rel=RTOL_FACTOR)
    check_voxels(res, spec, f)
    assert any("(7053,1009)" in r for r in res.factors.rules)


def test_gml_is_already_suv(tmp_path):
    spec = PetSpec(units="GML", dose_bq=None)
    res = run(tmp_path, spec)
    check_voxels(res, spec, 1.0)


def test_admin_decay_correction_does_not_decay_the_dose(tmp_path):
    spec = PetSpec(decay_correction="ADMIN")
    res = run(tmp_path, spec)
    f = 73.5 * 1000.0 / 3.7e8
    assert res.factors.factor == pytest.approx(f, rel=RTOL_FACTOR)
    check_voxels(res, spec, f)


def test_none_decay_correction_decays_to_each_frames_activity_weighted_mid_time(tmp_path):
    # bed k starts 120 k s after 10:14:05.25 and lasts 180 s; not decay corrected, so no DECY
    spec = PetSpec(
        decay_correction="NONE",
        corrected_image=("ATTN", "SCAT"),
        acq_step_s=120.0,
        frame_duration_ms=180000.0,
    )
    res = run(tmp_path, spec)
    lam = math.log(2) / F18_HALF_LIFE
    t_mid = math.log(lam * 180.0 / (1.0 - math.exp(-lam * 180.0))) / lam  # about 89.8 s, just under T/2
    assert 89.0 < t_mid < 90.0
    f = [bw_factor(73.5, 3.7e8, DT_DEFAULT + 120.0 * k + t_mid) for k in range(SHAPE[0])]
    np.testing.assert_allclose(res.factors.slice_factors, f, rtol=RTOL_FACTOR)
    assert math.isnan(res.factors.factor)  # varies by slice
    check_voxels(res, spec, f)


@pytest.mark.parametrize("with_datetime", [True, False])
def test_scan_crossing_midnight(tmp_path, with_datetime):
    # injection 23:40:00 on 4 March, series 00:35:10 on 5 March -> 55 min 10 s = 3310 s
    spec = PetSpec(
        injection=dt.datetime(2021, 3, 4, 23, 40, 0),
        series=dt.datetime(2021, 3, 5, 0, 35, 10),
        use_start_datetime=with_datetime,
    )
    res = run(tmp_path, spec)
    f = bw_factor(73.5, 3.7e8, 3310.0)
    check_voxels(res, spec, f)
    if not with_datetime:
        assert any("day before" in r for r in res.factors.rules)


def test_lean_body_mass_formulas_hand_values():
    # 70 kg, 1.75 m male. James: 1.10*70 - 128*(70/175)^2 = 77 - 20.48 = 56.52 kg.
    assert lean_body_mass_kg(70, 1.75, "M", "lbm-james") == pytest.approx(56.52, rel=1e-12)
    # Janmahasatian: BMI = 70/1.75^2 = 22.857142...; 9270*70/(6680 + 216*BMI)
    bmi = 70 / 1.75**2
    assert lean_body_mass_kg(70, 1.75, "M", "lbm-janmahasatian") == pytest.approx(
        648900 / (6680 + 216 * bmi), rel=1e-12
    )
    # female, 60 kg, 1.65 m. James: 1.07*60 - 148*(60/165)^2
    assert lean_body_mass_kg(60, 1.65, "F", "lbm-james") == pytest.approx(
        64.2 - 148 * (60 / 165) ** 2, rel=1e-12
    )
    assert lean_body_mass_kg(60, 1.65, "f", "lbm-janmahasatian") == pytest.approx(
        9270 * 60 / (8780 + 244 * 60 / 1.65**2), rel=1e-12
    )


@pytest.mark.parametrize("norm", ["lbm-james", "lbm-janmahasatian"])
def test_sul(tmp_path, norm):
    spec = PetSpec()  # 73.5 kg, 1.78 m, M
    res = run(tmp_path, spec, normalisation=norm)
    lbm = lean_body_mass_kg(73.5, 1.78, "M", norm)
    f = lbm * 1000.0 / (3.7e8 * 2.0 ** (-DT_DEFAULT / F18_HALF_LIFE))
    check_voxels(res, spec, f)
    assert res.factors.normalisation is SuvNormalisation(norm)
    assert res.volume.units.startswith("SUL")


def test_weight_override(tmp_path):
    spec = PetSpec(weight_kg=None)
    res = run(tmp_path, spec, weight_kg=80.0)
    check_voxels(res, spec, bw_factor(80.0, 3.7e8, DT_DEFAULT))
    assert any("weight_kg (given)" in r for r in res.factors.rules)


# ------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (PetSpec(weight_kg=None), "PatientWeight (0010,1030)"),
        (PetSpec(weight_kg=0.0), "PatientWeight (0010,1030)"),
        (PetSpec(dose_bq=None), "RadionuclideTotalDose (0018,1074)"),
        (PetSpec(dose_bq=0.0), "RadionuclideTotalDose (0018,1074)"),
        (PetSpec(corrected_image=("DECY", "SCAT")), "ATTN"),
        (PetSpec(corrected_image=("ATTN",)), "DECY"),
        (PetSpec(decay_correction=""), "DecayCorrection (0054,1102)"),
        (PetSpec(units="PROPCNTS"), "Units (0054,1001)"),
        (PetSpec(units="CNTS"), "(7053,1000)"),
        (PetSpec(injection=dt.datetime(2021, 3, 4, 10, 30, 0)), "after the scan"),
    ],
)
def test_bad_headers_give_clear_errors(tmp_path, spec, message):
    with pytest.raises(ImagingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(tmp_path, spec)


def test_non_pet_modality(tmp_path):
    write_pet_series(tmp_path / "ct", STORED, PetSpec(modality="CT"))
    with pytest.raises(ImagingError, match=r"(?s)No PT series.*modality=CT"):
        suv_from_dicom(tmp_path / "ct")


def test_sul_without_height(tmp_path):
    with pytest.raises(ImagingError, match="PatientSize|Height"):
        run(tmp_path, PetSpec(height_m=None), normalisation="lbm-james")


# ------------------------------------------------------------------------------------------ NIfTI
def _write_nifti(tmp_path: Path, arr: np.ndarray, name: str = "pet.nii.gz") -> Path:
    p = tmp_path / name
    Volume.from_spacing(arr, (3.0, 2.0, 2.0)).to_nifti(p)
    return p


def test_nifti_with_bids_sidecar(tmp_path):
    act = np.full((4, 5, 6), 5000.0, dtype=np.float32)  # Bq/ml
    p = _write_nifti(tmp_path, act)
    meta = {
        "Units": "Bq/mL",
        "InjectedRadioactivity": 370.0,
        "InjectedRadioactivityUnits": "MBq",
        "BodyWeight": 73.5,
        "TracerRadionuclide": "F18",
        "InjectionStart": 0,
        "ImageDecayCorrectionTime": 3600,
        "ImageDecayCorrected": True,
    }
    (tmp_path / "pet.json").write_text(json.dumps(meta))
    res = suv_from_nifti(p)
    f = bw_factor(73.5, 3.7e8, 3600.0, 6586.2)
    np.testing.assert_allclose(res.volume.voxels, 5000.0 * f, rtol=RTOL_VOXEL)
    # kBq/mL and mCi convert
    meta2 = dict(meta, Units="kBq/mL", InjectedRadioactivity=10.0, InjectedRadioactivityUnits="mCi")
    res2 = suv_from_nifti(p, meta2)
    np.testing.assert_allclose(
        res2.volume.voxels, 5000.0 * 1000.0 * bw_factor(73.5, 3.7e8, 3600.0, 6586.2), rtol=RTOL_VOXEL
    )


def test_nifti_sidecar_missing_dose(tmp_path):
    p = _write_nifti(tmp_path, np.ones((3, 3, 3), np.float32))
    with pytest.raises(ImagingError, match="InjectedRadioactivity"):
        suv_from_nifti(p, {"Units": "Bq/mL", "BodyWeight": 70})


def test_nifti_without_sidecar_is_suv_and_activity_is_refused(tmp_path):
    suv = np.linspace(0, 12, 60, dtype=np.float32).reshape(3, 4, 5)
    res = suv_from_nifti(_write_nifti(tmp_path, suv, "suv.nii.gz"))
    np.testing.assert_array_equal(res.volume.voxels, suv)
    with pytest.raises(ImagingError, match="activity, not SUV"):
        suv_from_nifti(_write_nifti(tmp_path, suv * 1000, "act.nii.gz"))


def test_read_series_keeps_headers_in_slice_order(tmp_path):
    spec = PetSpec(per_slice_slope=True)
    write_pet_series(tmp_path / "pet", STORED, spec)
    s = read_series(tmp_path / "pet")
    z = [float(h.ImagePositionPatient[2]) for h in s.headers]
    assert z == sorted(z)
    np.testing.assert_allclose(s.volume.voxels, STORED * slopes_of(spec)[:, None, None], rtol=RTOL_VOXEL)
