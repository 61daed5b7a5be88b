"""Standardized uptake value (SUV) from a DICOM PET series or a NIfTI file, by the QIBA vendor-neutral rules.

The rules (QIBA FDG-PET/CT Profile, Appendix G; the same logic as cornerstonejs/calculate-suv and 3D Slicer's
SUVFactorCalculator):

- CorrectedImage (0028,0051) must contain ATTN, and DECY unless DecayCorrection (0054,1102) is NONE.
- Units (0054,1001):

  * ``BQML``: SUV = value x mass / decayed dose. With DecayCorrection ``START`` the dose is decayed to the
    scan time: SeriesDate/SeriesTime, unless the series time is after the earliest AcquisitionDate/Time (a
    post-processed series); then GE's private scan date-time (0009,100D) in creator ``GEMS_PETD_01``, else the
    earliest acquisition time. ``ADMIN``: the image is corrected to the injection time, the dose is not
    decayed. ``NONE``: the image is not decay corrected; the dose is decayed, slice by slice, to the
    activity-weighted mid-frame time ``t_acq + ln(lambda T / (1 - exp(-lambda T))) / lambda`` (T =
    ActualFrameDuration, DICOM PS3.3 C.8.9.4.1.5), so the factor varies between bed positions.
  * ``CNTS`` (Philips): the private SUV Scale Factor (7053,1000) when present and non-zero on every slice,
    else the Activity Concentration Scale Factor (7053,1009) times the rescaled value gives Bq/ml, then as
    BQML.
  * ``GML``: already SUVbw (factor 1).

- Injection time: RadiopharmaceuticalStartDateTime (0018,1078) if present, else RadiopharmaceuticalStartTime
  (0018,1072) on the scan date, moved to the previous day when that is after the scan (a scan that crosses
  midnight).
- Mass: body weight (PatientWeight (0010,1030), kg) by default; lean body mass for SUL (PERCIST) by James
  (1976) or Janmahasatian (2005), which need PatientSize (0010,1020, m) and PatientSex (0010,0040, M/F).

Every missing or invalid input stops with :class:`~pofa.errors.ImagingError` naming the tag and the way out
(e.g. the ``weight_kg`` override). The result records which rules fired (:attr:`SuvFactors.rules`).
"""


from pofa.imaging.suv.body import lean_body_mass_kg
from pofa.imaging.suv.dicom import apply_factors, suv_factors, suv_from_dicom
from pofa.imaging.suv.model import KNOWN_HALF_LIVES_S, SuvFactors, SuvNormalisation, SuvResult
from pofa.imaging.suv.nifti import suv_factors_from_sidecar, suv_from_nifti

__all__ = [
    "KNOWN_HALF_LIVES_S",
    "SuvFactors",
    "SuvNormalisation",
    "SuvResult",
    "apply_factors",
    "lean_body_mass_kg",
    "suv_factors",
    "suv_from_dicom",
    "suv_from_nifti",
    "suv_factors_from_sidecar",
]
