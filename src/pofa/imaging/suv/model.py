"""SUV results and their record: the normalisation, the factors and the rules that fired."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pofa.imaging.volume import Volume

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
            ``"SUVbw"``, ``"SUL (James)"`` or ``"SUL (Janmahasatian)"``.
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
            The label of :attr:`normalisation`.
        """
        return self.normalisation.label

    def to_json(self) -> dict[str, Any]:
        """Return the provenance as JSON, without dates (identifying): factors, rules, decay seconds, inputs.

        Returns
        -------
        dict of str to Any
            Method, normalisation, units, factor range, rules, decay-time range and the inputs (dose,
            half-life, weight, height, lean body mass); non-finite numbers become ``None``.
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


