"""SUV factors of a DICOM PET series by the QIBA vendor-neutral rules (see :mod:`pofa.imaging.suv`)."""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from pofa.errors import ImagingError
from pofa.imaging.suv._parse import (
    _float_or_none,
    _parse_da,
    _parse_dt,
    _parse_tm,
    _positive,
    _present,
    _private_value,
)
from pofa.imaging.suv.body import _mass
from pofa.imaging.suv.model import SuvFactors, SuvNormalisation, SuvResult
from pofa.imaging.volume import Volume

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
        The factor of each slice, the units, the rules applied and the inputs (without dates).

    Raises
    ------
    ImagingError
        When the slices are not one attenuation-corrected PET series, or the units, decay correction or scale
        factors do not allow SUV.

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
    weight_src = "weight_kg (given)" if weight_kg is not None else "PatientWeight (0010,1030)"
    w = weight_kg if weight_kg is not None else _float_or_none(h0.get("PatientWeight"))
    height_src = "height_m (given)" if height_m is not None else "PatientSize (0010,1020)"
    hgt = height_m if height_m is not None else _float_or_none(h0.get("PatientSize"))
    sex_src = "sex (given)" if sex is not None else "PatientSex (0010,0040)"
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
            f_bw = [float(v) for v in suv_sf]  # type: ignore[arg-type]
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
        f_cnts = [float(a) * b for a, b in zip(acsf, base.slice_factors, strict=True)]  # type: ignore[arg-type]
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
    """Multiply each slice by its SUV factor.

    Parameters
    ----------
    volume : Volume
        The PET volume (rescaled values), one factor per slice.
    factors : SuvFactors
        From :func:`suv_factors`.

    Returns
    -------
    Volume
        A float32 SUV volume in the factors' units.

    Raises
    ------
    ImagingError
        When the number of factors differs from the number of slices.
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
    """Read a PET series (a folder or a read :class:`~pofa.imaging.dicom.DicomSeries`) and convert it to SUV.

    Parameters
    ----------
    folder : str, os.PathLike or DicomSeries
        A DICOM folder, or a series already read.
    normalisation : SuvNormalisation or str
        ``"bw"`` (default), ``"lbm-james"`` or ``"lbm-janmahasatian"``.
    series_uid : str, optional
        Which PET series to read when the folder holds several.
    weight_kg : float, optional
        Overrides PatientWeight.
    height_m : float, optional
        Overrides PatientSize.
    sex : str, optional
        Overrides PatientSex.

    Returns
    -------
    SuvResult
        The SUV volume and its factors.

    Raises
    ------
    ImagingError
        When the series is not PET or its headers cannot give SUV factors.
    """
    from pofa.imaging.dicom import DicomSeries, read_series

    series = folder if isinstance(folder, DicomSeries) else read_series(folder, "PT", series_uid)
    if series.info.modality != "PT":
        raise ImagingError(
            f"Modality (0008,0060) is {series.info.modality!r}, not PT: SUV needs a PET series."
        )
    factors = suv_factors(series.headers, normalisation, weight_kg, height_m, sex)
    return SuvResult(apply_factors(series.volume, factors), factors)


