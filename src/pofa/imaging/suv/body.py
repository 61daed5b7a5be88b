"""Body mass for the SUV: body weight, or lean body mass (James 1976, Janmahasatian 2005) for SUL."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pofa.errors import ImagingError
from pofa.imaging.suv.model import SuvNormalisation


# ---------------------------------------------------------------------------------------------- body mass
def lean_body_mass_kg(weight_kg: float, height_m: float, sex: str, formula: SuvNormalisation | str) -> float:
    """Compute the lean body mass in kg.

    James (1976): male ``1.10 W - 128 (W/H)^2``, female ``1.07 W - 148 (W/H)^2`` with H in cm. Janmahasatian
    (2005): male ``9270 W / (6680 + 216 BMI)``, female ``9270 W / (8780 + 244 BMI)``, BMI = W / H^2 with H in
    m.

    Parameters
    ----------
    weight_kg : float
        Body weight (kg).
    height_m : float
        Height (m).
    sex : str
        ``"M"`` or ``"F"`` (any case).
    formula : SuvNormalisation or str
        ``lbm-james`` or ``lbm-janmahasatian``.

    Returns
    -------
    float
        The lean body mass (kg), positive.

    Raises
    ------
    ImagingError
        For a sex other than M or F, a formula that is not a lean-body-mass one, or a mass not positive.
    """
    formula = SuvNormalisation(formula)
    sex = sex.upper()
    if sex not in ("M", "F"):
        raise ImagingError(
            f"PatientSex (0010,0040) must be M or F for lean body mass; got {sex!r}",
            advice="give {sex} M or {sex} F",
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
            f"height {height_m} m",
            advice="check PatientWeight and PatientSize or use {normalisation} bw",
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
            f"Body weight is missing or not positive ({weight_source})",
            advice="give the weight in kg with {weight_kg}",
        )
    if not 1.0 <= weight <= 500.0:
        raise ImagingError(
            f"Body weight {weight} kg ({weight_source}) is not plausible", advice="give it with {weight_kg}"
        )
    if normalisation is SuvNormalisation.BW:
        return _Mass(
            weight * 1000.0, weight, math.nan, "", math.nan, f"mass = body weight from {weight_source}"
        )
    if height is None or not math.isfinite(height) or height <= 0:
        raise ImagingError(
            f"Height is missing or not positive ({height_source}); SUL needs it",
            advice="give {height_m} or use {normalisation} bw",
        )
    if not 0.3 <= height <= 2.6:
        raise ImagingError(
            f"Height {height} ({height_source}) is not in metres",
            advice="give the height in metres with {height_m}",
        )
    if not sex:
        raise ImagingError(f"Sex is missing ({sex_source}); SUL needs M or F",
                           advice="give {sex} or use {normalisation} bw")
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


