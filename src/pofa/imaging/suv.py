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
(e.g. ``--weight-kg``). The result records which rules fired (:attr:`SuvFactors.rules`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from pofa.errors import ImagingError
from pofa.imaging.volume import Volume

__all__ = [
    "SuvFactors",
    "SuvNormalisation",
    "SuvResult",
    "lean_body_mass_kg",
    "suv_factors",
    "suv_from_dicom",
    "suv_from_nifti",
    "suv_factors_from_sidecar",
]

# Half-lives (s) used only when a NIfTI sidecar names the nuclide but not its half-life: the value PET
# scanners
# write for F-18 in RadionuclideHalfLife (109.77 min).
KNOWN_HALF_LIVES_S: dict[str, float] = {"F18": 6586.2, "18F": 6586.2}


class SuvNormalisation(StrEnum):
    """The mass SUV is normalised by; the value is the option users type."""

    BW = "bw"
    LBM_JAMES = "lbm-james"
    LBM_JANMAHASATIAN = "lbm-janmahasatian"

    @property
    def label(self) -> str:
        """Unit label of the resulting values: SUVbw or SUL (formula).

        Returns
        -------
        str
            Unit label of the resulting values: SUVbw or SUL (formula).
        """
        return {
            "bw": "SUVbw",
            "lbm-james": "SUL (James)",
            "lbm-janmahasatian": "SUL (Janmahasatian)",
        }[self.value]


@dataclass(frozen=True, slots=True)
class SuvFactors:
    """How voxel values become SUV: ``suv[a0] = value[a0] * slice_factors[a0]``.

    Attributes
    ----------
    normalisation : SuvNormalisation
        Body weight or lean body mass (James / Janmahasatian).
    source_units : str
        Units of the input values (DICOM Units, or the sidecar's Units).
    decay_correction : str
        DICOM DecayCorrection (START, ADMIN, NONE) or the sidecar's equivalent; empty when not used.
    factor : float
        The factor when it is the same for every slice; ``nan`` when it varies (``slice_factors``).
    slice_factors : tuple of float
        One factor per slice, in the volume's slice order.
    rules : tuple of str
        The rules that fired, in words (which tag gave the scan time, the injection time, the scale
        factor...).
    scan_time, injection_time : datetime or None
        Times used for the decay (START); never written to output files (they are dates).
    decay_times_s : tuple of float
        Seconds of decay applied to the dose, per slice (empty when no decay applies).
    injected_dose_bq, half_life_s, weight_kg, height_m, lean_body_mass_kg : float
        Inputs (``nan`` when not used).
    sex : str
        ``"M"``, ``"F"`` or ``""`` when not used.
    method : str
        One sentence naming the method.
    """

    normalisation: SuvNormalisation
    source_units: str
    decay_correction: str
    factor: float
    slice_factors: tuple[float, ...]
    rules: tuple[str, ...]
    scan_time: dt.datetime | None = None
    injection_time: dt.datetime | None = None
    decay_times_s: tuple[float, ...] = ()
    injected_dose_bq: float = math.nan
    half_life_s: float = math.nan
    weight_kg: float = math.nan
    height_m: float = math.nan
    sex: str = ""
    lean_body_mass_kg: float = math.nan
    method: str = "QIBA FDG-PET/CT Profile Appendix G vendor-neutral SUV"

    @property
    def units(self) -> str:
        """Unit label of the SUV values (SUVbw, SUL (James), SUL (Janmahasatian)).

        Returns
        -------
        str
            Unit label of the SUV values (SUVbw, SUL (James), SUL (Janmahasatian)).
        """
        return self.normalisation.label

    def to_json(self) -> dict[str, Any]:
        """JSON-ready provenance without dates (identifying): factors, rules, decay seconds, inputs.

        Returns
        -------
        dict of {str: object}
            JSON-ready provenance without dates (identifying): factors, rules, decay seconds, inputs.
        """
        uniq = sorted(set(self.slice_factors))
        return {
            "method": self.method,
            "normalisation": self.normalisation.value,
            "units": self.units,
            "source_units": self.source_units,
            "decay_correction": self.decay_correction,
            "factor": None if math.isnan(self.factor) else self.factor,
            "factor_min": uniq[0] if uniq else None,
            "factor_max": uniq[-1] if uniq else None,
            "rules": list(self.rules),
            "decay_time_s_min": min(self.decay_times_s) if self.decay_times_s else None,
            "decay_time_s_max": max(self.decay_times_s) if self.decay_times_s else None,
            "injected_dose_bq": _json_num(self.injected_dose_bq),
            "half_life_s": _json_num(self.half_life_s),
            "weight_kg": _json_num(self.weight_kg),
            "height_m": _json_num(self.height_m),
            "lean_body_mass_kg": _json_num(self.lean_body_mass_kg),
        }


@dataclass(frozen=True, slots=True, eq=False)
class SuvResult:
    """An SUV volume with the record of how it was computed."""

    volume: Volume
    factors: SuvFactors


def _json_num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


# ---------------------------------------------------------------------------------------------- parsing
# helpers
def _parse_da(value: Any, tag: str) -> dt.date:
    s = str(value).strip().replace(".", "").replace("-", "")
    try:
        return dt.date(int(s[0:4]), int(s[4:6]), int(s[6:8]))
    except (ValueError, IndexError) as exc:
        raise ImagingError(f"{tag} is not a valid DICOM date (YYYYMMDD): {value!r}.") from exc


def _parse_tm(value: Any, tag: str) -> dt.time:
    s = str(value).strip().replace(":", "")
    try:
        main, _, frac = s.partition(".")
        if len(main) not in (2, 4, 6) or not main.isdigit():
            raise ValueError(s)
        hh = int(main[0:2])
        mm = int(main[2:4]) if len(main) >= 4 else 0
        ss = int(main[4:6]) if len(main) >= 6 else 0
        us = int((frac + "000000")[:6]) if frac else 0
        if ss == 60:  # leap second: DICOM allows 60
            ss = 59
            us = 999999
        return dt.time(hh, mm, ss, us)
    except ValueError as exc:
        raise ImagingError(f"{tag} is not a valid DICOM time (HHMMSS.FFFFFF): {value!r}.") from exc


def _parse_dt(value: Any, tag: str) -> dt.datetime:
    s = str(value).strip()
    for sign in ("+", "-"):
        i = s.find(sign, 8)
        if i > 0:
            s = s[:i]  # a UTC offset applies equally to every time of the study; drop it
    if len(s) < 8:
        raise ImagingError(f"{tag} is not a valid DICOM date-time (YYYYMMDDHHMMSS.FFFFFF): {value!r}.")
    d = _parse_da(s[:8], tag)
    rest = s[8:]
    t = _parse_tm(rest, tag) if rest else dt.time(0, 0)
    return dt.datetime.combine(d, t)


def _present(ds: Any, keyword: str) -> bool:
    v = ds.get(keyword) if ds is not None else None
    return v is not None and str(v).strip() != ""


def _positive(ds: Any, keyword: str, tag: str, hint: str = "") -> float:
    if not _present(ds, keyword):
        raise ImagingError(f"{keyword} {tag} is missing.{(' ' + hint) if hint else ''}")
    try:
        x = float(ds.get(keyword))
    except (TypeError, ValueError) as exc:
        raise ImagingError(f"{keyword} {tag} is not a number: {ds.get(keyword)!r}.") from exc
    if not math.isfinite(x) or x <= 0:
        raise ImagingError(f"{keyword} {tag} must be positive; got {x}.{(' ' + hint) if hint else ''}")
    return x


def _private_value(ds: Any, group: int, creator: str, element: int) -> Any:
    """Value of a private element (group, creator, element offset) or None; bytes (UN) decoded as text."""
    try:
        block = ds.private_block(group, creator)
        elem = block[element]
    except (KeyError, ValueError):
        tag = (group << 16) | (0x1000 + element)  # the usual block 0x10 when the creator element is absent
        if tag not in ds:
            return None
        elem = ds[tag]
    v = elem.value
    if isinstance(v, bytes):
        v = v.decode("ascii", errors="replace").strip("\x00 ")
    return v


def _float_or_none(v: Any) -> float | None:
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


# ---------------------------------------------------------------------------------------------- body mass
def lean_body_mass_kg(weight_kg: float, height_m: float, sex: str, formula: SuvNormalisation | str) -> float:
    """Lean body mass in kg.

    James (1976): male ``1.10 W - 128 (W/H)^2``, female ``1.07 W - 148 (W/H)^2`` with H in cm. Janmahasatian
    (2005): male ``9270 W / (6680 + 216 BMI)``, female ``9270 W / (8780 + 244 BMI)``, BMI = W / H^2 with H in
    m.

    Parameters
    ----------
    weight_kg : float
        Body weight in kg.
    height_m : float
        Height in m.
    sex : str
        ``"M"`` or ``"F"`` (case-insensitive).
    formula : SuvNormalisation or str
        ``"lbm-james"`` or ``"lbm-janmahasatian"``.

    Returns
    -------
    float
        Lean body mass in kg.

    Raises
    ------
    pofa.errors.ImagingError
        When the sex is neither M nor F, the formula is not a lean-body-mass one, or the result is not
        positive.
    """
    formula = SuvNormalisation(formula)
    sex = sex.upper()
    if sex not in ("M", "F"):
        raise ImagingError(
            f"PatientSex (0010,0040) must be M or F for lean body mass; got {sex!r}. Give --sex M or --sex F."
        )
    if formula is SuvNormalisation.LBM_JAMES:
        h_cm = height_m * 100.0
        lbm = (
            1.10 * weight_kg - 128.0 * (weight_kg / h_cm) ** 2
            if sex == "M"
            else 1.07 * weight_kg - 148.0 * (weight_kg / h_cm) ** 2
        )
    elif formula is SuvNormalisation.LBM_JANMAHASATIAN:
        bmi = weight_kg / height_m**2
        lbm = 9270.0 * weight_kg / (6680.0 + 216.0 * bmi if sex == "M" else 8780.0 + 244.0 * bmi)
    else:
        raise ImagingError(f"{formula.value} is not a lean-body-mass formula.")
    if not lbm > 0:
        raise ImagingError(
            f"The {formula.label} lean body mass is not positive ({lbm:.1f} kg) for weight {weight_kg} kg "
            "and "
            f"height {height_m} m; check PatientWeight and PatientSize or use --suv bw."
        )
    return float(lbm)


@dataclass(frozen=True, slots=True)
class _Mass:
    grams: float
    weight_kg: float
    height_m: float
    sex: str
    lbm_kg: float
    rule: str


def _mass(
    normalisation: SuvNormalisation,
    weight: float | None,
    height: float | None,
    sex: str | None,
    weight_source: str,
    height_source: str,
    sex_source: str,
) -> _Mass:
    if weight is None or not math.isfinite(weight) or weight <= 0:
        raise ImagingError(
            f"Body weight is missing or not positive ({weight_source}); give the weight in kg with "
            "--weight-kg."
        )
    if not 1.0 <= weight <= 500.0:
        raise ImagingError(
            f"Body weight {weight} kg ({weight_source}) is not plausible; give it with --weight-kg."
        )
    if normalisation is SuvNormalisation.BW:
        return _Mass(
            weight * 1000.0, weight, math.nan, "", math.nan, f"mass = body weight from {weight_source}"
        )
    if height is None or not math.isfinite(height) or height <= 0:
        raise ImagingError(
            f"Height is missing or not positive ({height_source}); SUL needs it: give --height-m or use "
            "--suv bw."
        )
    if not 0.3 <= height <= 2.6:
        raise ImagingError(
            f"Height {height} ({height_source}) is not in metres; give the height in metres with --height-m."
        )
    if not sex:
        raise ImagingError(f"Sex is missing ({sex_source}); SUL needs M or F: give --sex or use --suv bw.")
    lbm = lean_body_mass_kg(weight, height, sex, normalisation)
    return _Mass(
        lbm * 1000.0,
        weight,
        height,
        sex.upper(),
        lbm,
        f"mass = lean body mass ({normalisation.label}) from weight ({weight_source}), "
        f"height ({height_source}), sex ({sex_source})",
    )


# ---------------------------------------------------------------------------------------------- DICOM
_SERIES_LEVEL = (
    "Units",
    "DecayCorrection",
    "PatientWeight",
    "PatientSize",
    "PatientSex",
    "SeriesDate",
    "SeriesTime",
    "CorrectedImage",
)


def _radiopharm(ds: Any) -> Any:
    seq = ds.get("RadiopharmaceuticalInformationSequence")
    if not seq:
        raise ImagingError(
            "RadiopharmaceuticalInformationSequence (0054,0016) is missing: the injected dose and time "
            "are unknown."
        )
    return seq[0]


def _acq_datetime(ds: Any, fallback_date: dt.date | None) -> dt.datetime | None:
    if _present(ds, "AcquisitionDateTime"):
        return _parse_dt(ds.AcquisitionDateTime, "AcquisitionDateTime (0008,002A)")
    if not _present(ds, "AcquisitionTime"):
        return None
    t = _parse_tm(ds.AcquisitionTime, "AcquisitionTime (0008,0032)")
    if _present(ds, "AcquisitionDate"):
        d = _parse_da(ds.AcquisitionDate, "AcquisitionDate (0008,0022)")
    elif fallback_date is not None:
        d = fallback_date
    else:
        raise ImagingError("AcquisitionDate (0008,0022) and SeriesDate (0008,0021) are both missing.")
    return dt.datetime.combine(d, t)


def suv_factors(
    headers: Sequence[Any],
    normalisation: SuvNormalisation | str = SuvNormalisation.BW,
    weight_kg: float | None = None,
    height_m: float | None = None,
    sex: str | None = None,
) -> SuvFactors:
    """SUV factors of a PET series from its per-slice headers (pydicom Datasets in volume slice order).

    Parameters
    ----------
    headers : sequence of pydicom.Dataset
        One per slice, as in :attr:`pofa.imaging.dicom.DicomSeries.headers`. The factors apply to the
        *rescaled* values (``stored * RescaleSlope + RescaleIntercept``, per slice).
    normalisation : SuvNormalisation or str
        ``"bw"`` (default), ``"lbm-james"`` or ``"lbm-janmahasatian"``.
    weight_kg, height_m, sex : optional
        Override PatientWeight, PatientSize and PatientSex (for headers that lack them or are wrong).

    Returns
    -------
    SuvFactors
        Factor of each slice with the rules applied and the inputs used.

    Notes
    -----
    Matches the QIBA pseudo-code (and cornerstonejs/calculate-suv) for BQML/START, CNTS and GML; ADMIN and
    NONE follow DICOM PS3.3 C.8.9.4.1.5 as described in the module docstring.
    """
    norm = SuvNormalisation(normalisation)
    if not headers:
        raise ImagingError("No PET slices were given.")
    h0 = headers[0]
    modality = str(h0.get("Modality", ""))
    if modality != "PT":
        raise ImagingError(f"Modality (0008,0060) is {modality!r}, not PT: SUV needs a PET series.")
    for kw in _SERIES_LEVEL:
        first = str(h0.get(kw, ""))
        for h in headers[1:]:
            if str(h.get(kw, "")) != first:
                raise ImagingError(
                    f"{kw} differs between slices ({first!r} vs {str(h.get(kw, ''))!r}): the slices do "
                    "not come "
                    "from one PET series."
                )
    rules: list[str] = []
    if not _present(h0, "Units"):
        raise ImagingError("Units (0054,1001) is missing: cannot tell Bq/ml from counts or SUV.")
    units = str(h0.Units).strip().upper()
    if not _present(h0, "CorrectedImage"):
        raise ImagingError(
            "CorrectedImage (0028,0051) is missing: cannot confirm attenuation and decay correction."
        )
    corrected = {
        str(v).strip().upper()
        for v in (h0.CorrectedImage if not isinstance(h0.CorrectedImage, str) else [h0.CorrectedImage])
    }
    decay = str(h0.get("DecayCorrection", "")).strip().upper()
    if "ATTN" not in corrected:
        raise ImagingError(
            f"CorrectedImage (0028,0051) = {sorted(corrected)} lacks ATTN: the image is not attenuation "
            "corrected, "
            "so SUV is not defined."
        )
    if units != "GML":
        if not decay:
            raise ImagingError("DecayCorrection (0054,1102) is missing: cannot tell START, ADMIN or NONE.")
        if decay not in ("START", "ADMIN", "NONE"):
            raise ImagingError(f"DecayCorrection (0054,1102) = {decay!r}; expected START, ADMIN or NONE.")
        if decay != "NONE" and "DECY" not in corrected:
            raise ImagingError(
                f"CorrectedImage (0028,0051) = {sorted(corrected)} lacks DECY although DecayCorrection "
                f"(0054,1102) is {decay}."
            )
    rules.append(f"CorrectedImage (0028,0051) contains {', '.join(sorted(corrected & {'ATTN', 'DECY'}))}")

    # ---- body mass (needed by every unit except GML + bw)
    weight_src = "--weight-kg" if weight_kg is not None else "PatientWeight (0010,1030)"
    w = weight_kg if weight_kg is not None else _float_or_none(h0.get("PatientWeight"))
    height_src = "--height-m" if height_m is not None else "PatientSize (0010,1020)"
    hgt = height_m if height_m is not None else _float_or_none(h0.get("PatientSize"))
    sex_src = "--sex" if sex is not None else "PatientSex (0010,0040)"
    sx = sex if sex is not None else str(h0.get("PatientSex", "") or "")
    n = len(headers)

    if units == "GML":
        rules.append("Units (0054,1001) GML: values are already SUVbw (factor 1)")
        if norm is SuvNormalisation.BW:
            return SuvFactors(norm, units, decay, 1.0, (1.0,) * n, tuple(rules), method=_METHOD)
        m = _mass(norm, w, hgt, sx, weight_src, height_src, sex_src)
        f = m.lbm_kg / m.weight_kg
        rules.append(f"SUL = SUVbw x lean body mass / body weight; {m.rule}")
        return SuvFactors(
            norm,
            units,
            decay,
            f,
            (f,) * n,
            tuple(rules),
            weight_kg=m.weight_kg,
            height_m=m.height_m,
            sex=m.sex,
            lean_body_mass_kg=m.lbm_kg,
            method=_METHOD,
        )

    if units == "CNTS":
        suv_sf = [
            _float_or_none(_private_value(h, 0x7053, "Philips PET Private Group", 0x00)) for h in headers
        ]
        if all(v is not None and v != 0 for v in suv_sf):
            rules.append("Units (0054,1001) CNTS: Philips private SUV Scale Factor (7053,1000) per slice")
            f_bw = [float(v) for v in suv_sf if v is not None]
            if norm is SuvNormalisation.BW:
                return SuvFactors(
                    norm,
                    units,
                    decay,
                    _uniform(f_bw),
                    tuple(f_bw),
                    tuple(rules),
                    weight_kg=math.nan if w is None else float(w),
                    method=_METHOD,
                )
            m = _mass(norm, w, hgt, sx, weight_src, height_src, sex_src)
            rules.append(f"SUL = SUVbw x lean body mass / body weight; {m.rule}")
            f_sul = [v * m.lbm_kg / m.weight_kg for v in f_bw]
            return SuvFactors(
                norm,
                units,
                decay,
                _uniform(f_sul),
                tuple(f_sul),
                tuple(rules),
                weight_kg=m.weight_kg,
                height_m=m.height_m,
                sex=m.sex,
                lean_body_mass_kg=m.lbm_kg,
                method=_METHOD,
            )
        acsf = [_float_or_none(_private_value(h, 0x7053, "Philips PET Private Group", 0x09)) for h in headers]
        if not all(v is not None and v != 0 for v in acsf):
            raise ImagingError(
                "Units (0054,1001) is CNTS but the Philips private SUV Scale Factor (7053,1000) and Activity "
                "Concentration Scale Factor (7053,1009) are missing or zero: cannot convert counts to SUV."
            )
        rules.append(
            "Units (0054,1001) CNTS: Philips Activity Concentration Scale Factor (7053,1009) x rescaled "
            "value = Bq/ml, then as BQML"
        )
        base = _bqml(headers, norm, decay, w, hgt, sx, weight_src, height_src, sex_src, rules)
        acsf_set = [float(a) for a in acsf if a is not None]  # all set: checked above
        f_cnts = [a * b for a, b in zip(acsf_set, base.slice_factors, strict=True)]
        return _replace_factors(base, f_cnts, units, tuple(rules))

    if units == "BQML":
        rules.append("Units (0054,1001) BQML")
        return _bqml(headers, norm, decay, w, hgt, sx, weight_src, height_src, sex_src, rules)

    raise ImagingError(
        f"Units (0054,1001) = {units!r} is not supported (BQML, CNTS with Philips scale factors, or GML)."
    )


_METHOD = "QIBA FDG-PET/CT Profile Appendix G vendor-neutral SUV (as cornerstonejs/calculate-suv)"


def _uniform(values: Sequence[float]) -> float:
    v0 = values[0]
    return float(v0) if all(abs(v - v0) <= 1e-12 * abs(v0) for v in values) else math.nan


def _replace_factors(base: SuvFactors, f: Sequence[float], units: str, rules: tuple[str, ...]) -> SuvFactors:
    return SuvFactors(
        base.normalisation,
        units,
        base.decay_correction,
        _uniform(f),
        tuple(float(x) for x in f),
        rules,
        base.scan_time,
        base.injection_time,
        base.decay_times_s,
        base.injected_dose_bq,
        base.half_life_s,
        base.weight_kg,
        base.height_m,
        base.sex,
        base.lean_body_mass_kg,
        base.method,
    )


def _bqml(
    headers: Sequence[Any],
    norm: SuvNormalisation,
    decay: str,
    w: float | None,
    hgt: float | None,
    sx: str,
    weight_src: str,
    height_src: str,
    sex_src: str,
    rules: list[str],
) -> SuvFactors:
    h0 = headers[0]
    m = _mass(norm, w, hgt, sx, weight_src, height_src, sex_src)
    rules.append(m.rule)
    rp = _radiopharm(h0)
    dose = _positive(rp, "RadionuclideTotalDose", "(0018,1074)", "The injected dose is needed for SUV.")
    half = _positive(rp, "RadionuclideHalfLife", "(0018,1075)")
    n = len(headers)
    if decay == "ADMIN":
        rules.append("DecayCorrection (0054,1102) ADMIN: image corrected to injection time; dose not decayed")
        f = m.grams / dose
        return SuvFactors(
            norm,
            "BQML",
            decay,
            f,
            (f,) * n,
            tuple(rules),
            None,
            None,
            (0.0,) * n,
            dose,
            half,
            m.weight_kg,
            m.height_m,
            m.sex,
            m.lbm_kg,
            _METHOD,
        )
    if not _present(h0, "SeriesDate"):
        raise ImagingError("SeriesDate (0008,0021) is missing: needed to place the scan and injection times.")
    series_date = _parse_da(h0.SeriesDate, "SeriesDate (0008,0021)")
    acq = [_acq_datetime(h, series_date) for h in headers]

    if decay == "START":
        if not _present(h0, "SeriesTime"):
            raise ImagingError("SeriesTime (0008,0031) is missing: the scan start time is unknown.")
        series_dt = dt.datetime.combine(series_date, _parse_tm(h0.SeriesTime, "SeriesTime (0008,0031)"))
        known = [a for a in acq if a is not None]
        earliest = min(known) if known else None
        if earliest is None or series_dt <= earliest:
            scan = series_dt
            rules.append(
                "scan time = SeriesDate/SeriesTime (0008,0021/0031) (not after the earliest acquisition)"
            )
        else:
            ge = _private_value(h0, 0x0009, "GEMS_PETD_01", 0x0D)
            if ge is not None and str(ge).strip():
                scan = _parse_dt(ge, "GE private scan date-time (0009,100D)")
                rules.append(
                    "series time after earliest acquisition (post-processed series): scan time = GE private "
                    "(0009,100D) GEMS_PETD_01"
                )
            else:
                scan = earliest
                rules.append(
                    "series time after earliest acquisition (post-processed series): scan time = earliest "
                    "AcquisitionDate/Time (0008,0022/0032)"
                )
        inj = _injection_time(rp, scan, rules)
        t = (scan - inj).total_seconds()
        if t < 0:
            raise ImagingError(
                f"The injection is {-t:.0f} s after the scan start: check RadiopharmaceuticalStartTime "
                "(0018,1072) "
                "/ RadiopharmaceuticalStartDateTime (0018,1078) and the series and acquisition times."
            )
        rules.append("DecayCorrection (0054,1102) START: dose decayed from injection to scan time")
        decayed = dose * 2.0 ** (-t / half)
        f = m.grams / decayed
        return SuvFactors(
            norm,
            "BQML",
            decay,
            f,
            (f,) * n,
            tuple(rules),
            scan,
            inj,
            (t,) * n,
            dose,
            half,
            m.weight_kg,
            m.height_m,
            m.sex,
            m.lbm_kg,
            _METHOD,
        )

    # NONE: per-slice activity-weighted mid-frame time
    lam = math.log(2.0) / half
    times = []
    offsets = []
    for k, (h, a) in enumerate(zip(headers, acq, strict=True)):
        if a is None:
            raise ImagingError(
                f"AcquisitionTime (0008,0032) is missing on slice {k}: DecayCorrection NONE needs each "
                "frame's time."
            )
        dur_ms = _positive(
            h, "ActualFrameDuration", "(0018,1242)", "DecayCorrection NONE needs the frame duration."
        )
        big_t = dur_ms / 1000.0
        x = lam * big_t
        offsets.append(math.log(x / -math.expm1(-x)) / lam)
        times.append(a)
    inj = _injection_time(rp, min(times), rules)
    # seconds as floats (a timedelta would round the mid-frame offset to microseconds)
    secs = [(tt - inj).total_seconds() + off for tt, off in zip(times, offsets, strict=True)]
    if min(secs) < 0:
        raise ImagingError(
            "The injection is after a frame's acquisition: check RadiopharmaceuticalStartTime (0018,1072) / "
            "RadiopharmaceuticalStartDateTime (0018,1078) and AcquisitionTime (0008,0032)."
        )
    rules.append(
        "DecayCorrection (0054,1102) NONE: dose decayed to each frame's activity-weighted mid-frame time "
        "(AcquisitionDate/Time + ln(lT/(1-exp(-lT)))/l, T = ActualFrameDuration (0018,1242))"
    )
    f_none = [m.grams / (dose * 2.0 ** (-s / half)) for s in secs]
    return SuvFactors(
        norm,
        "BQML",
        decay,
        _uniform(f_none),
        tuple(f_none),
        tuple(rules),
        min(times),
        inj,
        tuple(secs),
        dose,
        half,
        m.weight_kg,
        m.height_m,
        m.sex,
        m.lbm_kg,
        _METHOD,
    )


def _injection_time(rp: Any, scan: dt.datetime, rules: list[str]) -> dt.datetime:
    if _present(rp, "RadiopharmaceuticalStartDateTime"):
        rules.append("injection time = RadiopharmaceuticalStartDateTime (0018,1078)")
        return _parse_dt(rp.RadiopharmaceuticalStartDateTime, "RadiopharmaceuticalStartDateTime (0018,1078)")
    if not _present(rp, "RadiopharmaceuticalStartTime"):
        raise ImagingError(
            "RadiopharmaceuticalStartTime (0018,1072) and RadiopharmaceuticalStartDateTime (0018,1078) "
            "are both "
            "missing: the injection time is unknown."
        )
    t = _parse_tm(rp.RadiopharmaceuticalStartTime, "RadiopharmaceuticalStartTime (0018,1072)")
    inj = dt.datetime.combine(scan.date(), t)
    if inj > scan:
        inj -= dt.timedelta(days=1)
        rules.append(
            "injection time = RadiopharmaceuticalStartTime (0018,1072) on the day before the scan date "
            "(the scan crosses midnight)"
        )
    else:
        rules.append("injection time = RadiopharmaceuticalStartTime (0018,1072) on the scan date")
    return inj


def apply_factors(volume: Volume, factors: SuvFactors) -> Volume:
    """Multiply each slice by its factor.

    Parameters
    ----------
    volume : Volume
        Activity image (or SUV already), slices along the first axis.
    factors : SuvFactors
        Factor of each slice (:func:`suv_factors`).

    Returns
    -------
    Volume
        A float32 SUV volume.

    Raises
    ------
    pofa.errors.ImagingError
        When the number of factors is not the number of slices.
    """
    f = np.asarray(factors.slice_factors, dtype=np.float64)
    if f.shape != (volume.shape[0],):
        raise ImagingError(f"{f.size} slice factors for a volume of {volume.shape[0]} slices.")
    vox = volume.voxels
    if np.all(f == f[0]):
        suv = (vox.astype(np.float64) * f[0]).astype(np.float32)
    else:
        suv = (vox.astype(np.float64) * f[:, None, None]).astype(np.float32)
    return volume._with_owned_voxels(suv, units=factors.units)


def suv_from_dicom(
    folder: str | os.PathLike[str] | Any,
    normalisation: SuvNormalisation | str = SuvNormalisation.BW,
    series_uid: str | None = None,
    weight_kg: float | None = None,
    height_m: float | None = None,
    sex: str | None = None,
) -> SuvResult:
    """Read a PET series (a folder or a read :class:`~pofa.imaging.dicom.DicomSeries`) and convert to SUV.

    Parameters
    ----------
    folder : str or PathLike or object
        DICOM folder, or a :class:`~pofa.imaging.dicom.DicomSeries` already read.
    normalisation : SuvNormalisation or str, optional
        ``"bw"``, ``"lbm-james"`` or ``"lbm-janmahasatian"``.
    series_uid : str or None, optional
        SeriesInstanceUID when the folder holds several PET series.
    weight_kg : float or None, optional
        Body weight in kg; overrides the header.
    height_m : float or None, optional
        Height in m; overrides the header.
    sex : str or None, optional
        ``"M"`` or ``"F"``; overrides the header.

    Returns
    -------
    SuvResult
        The SUV volume and its factors.

    Raises
    ------
    pofa.errors.ImagingError
        When the series is not a PET or its header cannot give SUV.
    """
    from pofa.imaging.dicom import DicomSeries, read_series

    series = folder if isinstance(folder, DicomSeries) else read_series(folder, "PT", series_uid)
    if series.info.modality != "PT":
        raise ImagingError(
            f"Modality (0008,0060) is {series.info.modality!r}, not PT: SUV needs a PET series."
        )
    factors = suv_factors(series.headers, normalisation, weight_kg, height_m, sex)
    return SuvResult(apply_factors(series.volume, factors), factors)


# ---------------------------------------------------------------------------------------------- NIfTI +
# sidecar
_DOSE_UNITS = {"BQ": 1.0, "KBQ": 1e3, "MBQ": 1e6, "GBQ": 1e9, "MCI": 3.7e7, "UCI": 3.7e4}
_CONC_UNITS = {"BQ/ML": 1.0, "KBQ/ML": 1e3, "MBQ/ML": 1e6, "BQML": 1.0}


def _sidecar_get(meta: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in meta or meta[key] is None or meta[key] == "":
        raise ImagingError(f"The JSON sidecar lacks {key!r} ({what}).")
    return meta[key]


def _sidecar_number(meta: Mapping[str, Any], key: str, what: str, positive: bool = True) -> float:
    v = _sidecar_get(meta, key, what)
    try:
        x = float(v)
    except (TypeError, ValueError) as exc:
        raise ImagingError(f"The JSON sidecar's {key!r} is not a number: {v!r}.") from exc
    if not math.isfinite(x) or (positive and x <= 0):
        raise ImagingError(
            f"The JSON sidecar's {key!r} must be {'positive' if positive else 'finite'}; got {x}."
        )
    return x


def suv_factors_from_sidecar(
    meta: Mapping[str, Any],
    n_slices: int,
    normalisation: SuvNormalisation | str = SuvNormalisation.BW,
    weight_kg: float | None = None,
    height_m: float | None = None,
    sex: str | None = None,
) -> SuvFactors:
    """SUV factors from a BIDS-PET style JSON sidecar.

    Keys (BIDS PET names): ``Units`` ("Bq/mL", "kBq/mL" or "g/mL" = already SUVbw), ``InjectedRadioactivity``
    with ``InjectedRadioactivityUnits`` (Bq, kBq, MBq, GBq, mCi, uCi), ``BodyWeight`` (kg), ``InjectionStart``
    and ``ImageDecayCorrectionTime`` (seconds from the same TimeZero; the dose is decayed over their
    difference), ``ImageDecayCorrected`` (must be true), ``RadionuclideHalfLife`` (s; or
    ``TracerRadionuclide`` "F18"). For SUL also ``BodyHeight`` (m) and ``PatientSex`` (M/F).

    Parameters
    ----------
    meta : mapping of {str: object}
        The parsed sidecar.
    n_slices : int
        Slices of the image (one factor each).
    normalisation : SuvNormalisation or str, optional
        ``"bw"``, ``"lbm-james"`` or ``"lbm-janmahasatian"``.
    weight_kg : float or None, optional
        Body weight in kg; overrides ``BodyWeight``.
    height_m : float or None, optional
        Height in m; overrides ``BodyHeight``.
    sex : str or None, optional
        ``"M"`` or ``"F"``; overrides ``PatientSex``.

    Returns
    -------
    SuvFactors
        The same factor for every slice, with the rules applied.

    Raises
    ------
    pofa.errors.ImagingError
        When a key needed is missing or invalid.
    """
    norm = SuvNormalisation(normalisation)
    rules: list[str] = []
    units = str(_sidecar_get(meta, "Units", "the unit of the voxel values")).strip()
    uu = units.upper().replace(" ", "")
    w = weight_kg if weight_kg is not None else _float_or_none(meta.get("BodyWeight"))
    weight_src = "--weight-kg" if weight_kg is not None else "sidecar BodyWeight"
    if weight_kg is None and str(meta.get("BodyWeightUnits", "kg")).strip().lower() not in ("kg", ""):
        raise ImagingError(
            f"The sidecar's BodyWeightUnits is {meta.get('BodyWeightUnits')!r}; pofa expects kg."
        )
    hgt = height_m if height_m is not None else _float_or_none(meta.get("BodyHeight"))
    height_src = "--height-m" if height_m is not None else "sidecar BodyHeight"
    sx = sex if sex is not None else str(meta.get("PatientSex", "") or "")
    sex_src = "--sex" if sex is not None else "sidecar PatientSex"
    if uu in ("G/ML", "SUV", "SUVBW", "GML"):
        rules.append(f"sidecar Units {units!r}: values are already SUVbw (factor 1)")
        if norm is SuvNormalisation.BW:
            return SuvFactors(norm, units, "", 1.0, (1.0,) * n_slices, tuple(rules), method=_METHOD_NIFTI)
        m = _mass(norm, w, hgt, sx, weight_src, height_src, sex_src)
        f = m.lbm_kg / m.weight_kg
        rules.append(f"SUL = SUVbw x lean body mass / body weight; {m.rule}")
        return SuvFactors(
            norm,
            units,
            "",
            f,
            (f,) * n_slices,
            tuple(rules),
            weight_kg=m.weight_kg,
            height_m=m.height_m,
            sex=m.sex,
            lean_body_mass_kg=m.lbm_kg,
            method=_METHOD_NIFTI,
        )
    if uu not in _CONC_UNITS:
        raise ImagingError(f"The sidecar's Units {units!r} is not supported (Bq/mL, kBq/mL, MBq/mL or g/mL).")
    conc_scale = _CONC_UNITS[uu]
    m = _mass(norm, w, hgt, sx, weight_src, height_src, sex_src)
    rules.append(m.rule)
    dose_val = _sidecar_number(meta, "InjectedRadioactivity", "the injected dose")
    dose_unit = str(_sidecar_get(meta, "InjectedRadioactivityUnits", "the unit of the injected dose"))
    du = dose_unit.strip().upper().replace("µ", "U")
    if du not in _DOSE_UNITS:
        raise ImagingError(
            f"InjectedRadioactivityUnits {dose_unit!r} is not one of Bq, kBq, MBq, GBq, mCi, uCi."
        )
    dose = dose_val * _DOSE_UNITS[du]
    if "RadionuclideHalfLife" in meta:
        half = _sidecar_number(meta, "RadionuclideHalfLife", "half-life in seconds")
        rules.append("half-life = sidecar RadionuclideHalfLife")
    else:
        nuc = str(meta.get("TracerRadionuclide", "")).strip().upper().replace("-", "").replace("^", "")
        if nuc not in KNOWN_HALF_LIVES_S:
            raise ImagingError(
                "The JSON sidecar lacks 'RadionuclideHalfLife' (seconds) and its TracerRadionuclide "
                f"{meta.get('TracerRadionuclide')!r} is not one pofa knows (F18)."
            )
        half = KNOWN_HALF_LIVES_S[nuc]
        rules.append(f"half-life = {half} s for TracerRadionuclide {meta.get('TracerRadionuclide')}")
    corrected = meta.get("ImageDecayCorrected", None)
    if corrected is not True and str(corrected).lower() != "true":
        raise ImagingError(
            "The JSON sidecar must say ImageDecayCorrected: true (pofa needs a decay-corrected activity "
            "image)."
        )
    t_inj = _sidecar_number(meta, "InjectionStart", "injection time in s from TimeZero", positive=False)
    t_dc = _sidecar_number(
        meta,
        "ImageDecayCorrectionTime",
        "time the image is decay corrected to, in s from TimeZero",
        positive=False,
    )
    t = t_dc - t_inj
    if t < 0:
        raise ImagingError(
            f"ImageDecayCorrectionTime is {-t:.0f} s before InjectionStart in the JSON sidecar."
        )
    rules.append("dose decayed from InjectionStart to ImageDecayCorrectionTime (sidecar)")
    f = conc_scale * m.grams / (dose * 2.0 ** (-t / half))
    if uu != "BQ/ML":
        rules.append(f"values in {units} converted to Bq/ml (x{conc_scale:g})")
    return SuvFactors(
        norm,
        units,
        "START" if t > 0 else "ADMIN",
        f,
        (f,) * n_slices,
        tuple(rules),
        None,
        None,
        (t,) * n_slices,
        dose,
        half,
        m.weight_kg,
        m.height_m,
        m.sex,
        m.lbm_kg,
        _METHOD_NIFTI,
    )


_METHOD_NIFTI = (
    "SUV from a NIfTI image and its BIDS-PET JSON sidecar (same formula as QIBA Appendix G, BQML/START)"
)

# Voxel values above this in a NIfTI given as SUV without a sidecar are activity, not SUV.
_MAX_PLAUSIBLE_SUV = 500.0


def suv_from_nifti(
    path: str | os.PathLike[str],
    sidecar: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    normalisation: SuvNormalisation | str = SuvNormalisation.BW,
    weight_kg: float | None = None,
    height_m: float | None = None,
    sex: str | None = None,
) -> SuvResult:
    """Read a PET NIfTI and convert it to SUV.

    Without a sidecar (none given and no ``<name>.json`` next to the file) the values are taken as SUVbw (as
    in autoPET's ``SUV.nii.gz``); values above 500 are refused as not SUV. With a sidecar, see
    :func:`suv_factors_from_sidecar`.

    Parameters
    ----------
    path : str or PathLike
        The NIfTI file.
    sidecar : str or PathLike or mapping of {str: object} or None, optional
        JSON sidecar (path or parsed); default ``<name>.json`` next to the file when it exists.
    normalisation : SuvNormalisation or str, optional
        ``"bw"``, ``"lbm-james"`` or ``"lbm-janmahasatian"``.
    weight_kg : float or None, optional
        Body weight in kg; overrides the sidecar.
    height_m : float or None, optional
        Height in m; overrides the sidecar.
    sex : str or None, optional
        ``"M"`` or ``"F"``; overrides the sidecar.

    Returns
    -------
    SuvResult
        The SUV volume and its factors.

    Raises
    ------
    pofa.errors.ImagingError
        When the file cannot be read, or values above 500 come without a sidecar.
    """
    p = Path(path)
    vol = Volume.from_nifti(p)
    meta: Mapping[str, Any] | None
    if sidecar is None:
        name = p.name
        stem = name[:-7] if name.endswith(".nii.gz") else (name[:-4] if name.endswith(".nii") else p.stem)
        cand = p.with_name(stem + ".json")
        meta = _load_json(cand) if cand.is_file() else None
    elif isinstance(sidecar, Mapping):
        meta = sidecar
    else:
        meta = _load_json(Path(sidecar))
    if meta is None:
        mx = float(np.nanmax(vol.voxels))
        if mx > _MAX_PLAUSIBLE_SUV:
            raise ImagingError(
                f"{p.name} has no JSON sidecar, so its values are taken as SUV, but they reach {mx:.4g}: "
                "that is "
                "activity, not SUV. Give a sidecar with the dose, weight and times (see docs/imaging.md)."
            )
        norm = SuvNormalisation(normalisation)
        if norm is not SuvNormalisation.BW:
            raise ImagingError(
                "A NIfTI without a JSON sidecar is taken as SUVbw; SUL needs a sidecar or --suv bw."
            )
        factors = SuvFactors(
            norm,
            "SUV (NIfTI, no sidecar)",
            "",
            1.0,
            (1.0,) * vol.shape[0],
            ("NIfTI without JSON sidecar: voxel values taken as SUVbw as stored",),
            method=_METHOD_NIFTI,
        )
    else:
        factors = suv_factors_from_sidecar(meta, vol.shape[0], normalisation, weight_kg, height_m, sex)
    return SuvResult(apply_factors(vol, factors), factors)


def _load_json(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise ImagingError(f"Cannot read the JSON sidecar {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ImagingError(f"The JSON sidecar {path} must hold an object.")
    return data
