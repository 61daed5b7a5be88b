"""SUV of a NIfTI PET: SUV as is, or activity with a JSON sidecar (BIDS-PET keys)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pofa.errors import ImagingError
from pofa.imaging.suv._parse import _float_or_none
from pofa.imaging.suv.body import _mass
from pofa.imaging.suv.dicom import apply_factors
from pofa.imaging.suv.model import KNOWN_HALF_LIVES_S, SuvFactors, SuvNormalisation, SuvResult
from pofa.imaging.volume import Volume

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
    """Compute SUV factors from a BIDS-PET style JSON sidecar.

    Keys (BIDS PET names): ``Units`` ("Bq/mL", "kBq/mL" or "g/mL" = already SUVbw), ``InjectedRadioactivity``
    with ``InjectedRadioactivityUnits`` (Bq, kBq, MBq, GBq, mCi, uCi), ``BodyWeight`` (kg), ``InjectionStart``
    and ``ImageDecayCorrectionTime`` (seconds from the same TimeZero; the dose is decayed over their
    difference), ``ImageDecayCorrected`` (must be true), ``RadionuclideHalfLife`` (s; or
    ``TracerRadionuclide`` "F18"). For SUL also ``BodyHeight`` (m) and ``PatientSex`` (M/F).

    Parameters
    ----------
    meta : Mapping of str to Any
        The parsed sidecar.
    n_slices : int
        Number of slices of the image (one factor each).
    normalisation : SuvNormalisation or str
        ``"bw"`` (default), ``"lbm-james"`` or ``"lbm-janmahasatian"``.
    weight_kg : float, optional
        Overrides ``BodyWeight``.
    height_m : float, optional
        Overrides ``BodyHeight``.
    sex : str, optional
        Overrides ``PatientSex``.

    Returns
    -------
    SuvFactors
        The factors (equal for every slice), the units and the rules applied.

    Raises
    ------
    ImagingError
        When a key is missing or holds a value pofa cannot use.
    """
    norm = SuvNormalisation(normalisation)
    rules: list[str] = []
    units = str(_sidecar_get(meta, "Units", "the unit of the voxel values")).strip()
    uu = units.upper().replace(" ", "")
    w = weight_kg if weight_kg is not None else _float_or_none(meta.get("BodyWeight"))
    weight_src = "weight_kg (given)" if weight_kg is not None else "sidecar BodyWeight"
    if weight_kg is None and str(meta.get("BodyWeightUnits", "kg")).strip().lower() not in ("kg", ""):
        raise ImagingError(
            f"The sidecar's BodyWeightUnits is {meta.get('BodyWeightUnits')!r}; pofa expects kg."
        )
    hgt = height_m if height_m is not None else _float_or_none(meta.get("BodyHeight"))
    height_src = "height_m (given)" if height_m is not None else "sidecar BodyHeight"
    sx = sex if sex is not None else str(meta.get("PatientSex", "") or "")
    sex_src = "sex (given)" if sex is not None else "sidecar PatientSex"
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
    path : str or os.PathLike
        The NIfTI file.
    sidecar : str, os.PathLike or Mapping, optional
        The JSON sidecar (a file or its parsed content); default ``<name>.json`` beside the file if present.
    normalisation : SuvNormalisation or str
        ``"bw"`` (default), ``"lbm-james"`` or ``"lbm-janmahasatian"`` (needs a sidecar).
    weight_kg : float, optional
        Overrides the sidecar's ``BodyWeight``.
    height_m : float, optional
        Overrides the sidecar's ``BodyHeight``.
    sex : str, optional
        Overrides the sidecar's ``PatientSex``.

    Returns
    -------
    SuvResult
        The SUV volume and its factors.

    Raises
    ------
    ImagingError
        When the values are not SUV without a sidecar, SUL is asked without one, or the sidecar is unusable.
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
                "A NIfTI without a JSON sidecar is taken as SUVbw; SUL needs a sidecar",
                advice="add the sidecar, or use {normalisation} bw",
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
