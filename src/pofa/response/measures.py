"""Measurements of one scan: PPD, SPD, sum of longest diameters, nadir and percentage change.

Sizes are in millimetres. Lugano 2014 (Cheson et al., J Clin Oncol 2014;32:3059, Table 3, footnotes):
"PPD: cross product of the LDi and perpendicular diameter"; "SPD: sum of the product of the perpendicular
diameters for multiple lesions"; "When a lesion is too small to measure on CT, assign 5 mm x 5 mm as the
default value; when no longer visible, 0 x 0 mm; for a node > 5 x 5 mm, but smaller than normal, use actual
measurement for calculation."
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pofa.errors import EstimationError

#: Lugano's default size of a lesion too small to measure (mm).
TOO_SMALL_MM = 5.0


@dataclass(frozen=True, slots=True)
class LesionMeasurement:
    """One lesion measured on one scan.

    Attributes
    ----------
    lesion_id : str
        The baseline lesion's identifier (``lesions.lesion_id``).
    ldi_mm, sdi_mm : float
        Longest diameter and the perpendicular short diameter (mm, >= 0; 0 x 0 = no longer visible).
    target : bool
        Whether the lesion is one of the (up to six) target lesions chosen at baseline.
    extranodal : bool
        Extranodal lesion (CT complete response asks extranodal lesions to be absent, nodes <= 15 mm).
    suvmax : float or None
        Maximum SUV, when measured.
    deauville : int or None
        Deauville five-point score 1-5; ``None`` when not scored (``X`` or blank).
    """

    lesion_id: str
    ldi_mm: float
    sdi_mm: float
    target: bool = True
    extranodal: bool = False
    suvmax: float | None = None
    deauville: int | None = None


@dataclass(frozen=True, slots=True)
class Scan:
    """One imaging time point of one patient.

    Attributes
    ----------
    day : int
        Days from the index date (the baseline scan has ``day <= 0``).
    lesions : tuple of LesionMeasurement
        The baseline lesions measured on this scan.
    deauville : int or None
        Overall Deauville score of the scan; ``None``: the highest lesion score is used.
    bone_marrow : bool
        FDG-avid (PET) or otherwise documented bone-marrow involvement on this scan (absent = not involved).
    new_lesions : bool
        New lesions attributable to lymphoma on this scan.
    clinical_deterioration : bool
        Clinical deterioration at this time point (LYRIC IR1 requires its absence).
    """

    day: int
    lesions: tuple[LesionMeasurement, ...]
    deauville: int | None = None
    bone_marrow: bool = False
    new_lesions: bool = False
    clinical_deterioration: bool = False

    def lesion(self, lesion_id: str) -> LesionMeasurement | None:
        """Return the measurement of ``lesion_id`` on this scan, or ``None`` when it was not measured.

        Parameters
        ----------
        lesion_id : str
            The lesion's id.

        Returns
        -------
        LesionMeasurement or None
            The measurement.
        """
        for m in self.lesions:
            if m.lesion_id == lesion_id:
                return m
        return None


def lugano_dimensions(ldi_mm: float, sdi_mm: float, *,
                      too_small_mm: float = TOO_SMALL_MM) -> tuple[float, float]:
    """The diameters that enter the PPD by Lugano's convention for small and vanished lesions.

    "When a lesion is too small to measure on CT, assign 5 mm x 5 mm as the default value; when no longer
    visible, 0 x 0 mm" (Cheson et al., J Clin Oncol 2014, Table 3 footnote). pofa reads a lesion with both
    diameters 0 as no longer visible, and raises any non-zero diameter below ``too_small_mm`` to it.

    Parameters
    ----------
    ldi_mm, sdi_mm : float
        Measured longest and perpendicular diameters (mm, >= 0).
    too_small_mm : float
        The default size of a lesion too small to measure (Lugano: 5 mm).

    Returns
    -------
    tuple of float
        ``(ldi, sdi)`` as used in the PPD.

    Raises
    ------
    EstimationError
        A negative diameter, or a short diameter longer than the long one.
    """
    if ldi_mm < 0 or sdi_mm < 0:
        raise EstimationError(f"diameters must be >= 0 mm, got {ldi_mm} x {sdi_mm}")
    if sdi_mm > ldi_mm:
        raise EstimationError(f"the short diameter {sdi_mm} mm is longer than the long diameter {ldi_mm} mm")
    if ldi_mm == 0 and sdi_mm == 0:
        return 0.0, 0.0
    return max(ldi_mm, too_small_mm), max(sdi_mm, too_small_mm)


def ppd(ldi_mm: float, sdi_mm: float, *, too_small_mm: float = TOO_SMALL_MM) -> float:
    """Product of the perpendicular diameters (mm^2): "cross product of the LDi and perpendicular diameter".

    Parameters
    ----------
    ldi_mm, sdi_mm : float
        Longest and perpendicular diameters (mm).
    too_small_mm : float
        Default size of a lesion too small to measure (see :func:`lugano_dimensions`).

    Returns
    -------
    float
        LDi x SDi after Lugano's small-lesion convention.
    """
    a, b = lugano_dimensions(ldi_mm, sdi_mm, too_small_mm=too_small_mm)
    return a * b


def spd(lesions: Sequence[LesionMeasurement], *, too_small_mm: float = TOO_SMALL_MM) -> float:
    """Sum of the products of the perpendicular diameters of the target lesions (mm^2).

    Parameters
    ----------
    lesions : sequence of LesionMeasurement
        Measurements of one scan; only ``target`` lesions count.
    too_small_mm : float
        Default size of a lesion too small to measure.

    Returns
    -------
    float
        The SPD.
    """
    return float(sum(ppd(m.ldi_mm, m.sdi_mm, too_small_mm=too_small_mm) for m in lesions if m.target))


def sld(lesions: Sequence[LesionMeasurement]) -> float:
    """Sum of the longest diameters (mm) of the given lesions (RECIL 2017's tumour burden).

    Parameters
    ----------
    lesions : sequence of LesionMeasurement
        The (up to three) RECIL target lesions of one scan.

    Returns
    -------
    float
        Sum of LDi.
    """
    return float(sum(m.ldi_mm for m in lesions))


#: Decimals kept of percent changes and of diameter or PPD differences before they meet a threshold: far
#: below any measurement's precision, far above the rounding error of binary floating point.
DIGITS = 9


def at_least(value: float, threshold: float) -> bool:
    """Whether ``value >= threshold`` once both are rounded to :data:`DIGITS` decimals.

    Diameters are read in tenths of a millimetre, which binary floating point cannot hold exactly: 20.4 - 15.4
    is 4.999999999999998. The rules' thresholds ("an increase ... of 0.5 cm", ">= 50%") are met by a value
    equal to them, so the comparison is made on rounded values.

    Parameters
    ----------
    value, threshold : float
        The quantity and its threshold (same unit).

    Returns
    -------
    bool
        ``round(value - threshold, DIGITS) >= 0``; False when either is NaN.
    """
    return bool(round(value - threshold, DIGITS) >= 0)


def percent_change(value: float, reference: float) -> float:
    """Change of ``value`` from ``reference`` in percent (``nan`` when the reference is 0).

    Parameters
    ----------
    value, reference : float
        The current and the reference measurement.

    Returns
    -------
    float
        ``100 * (value - reference) / reference``, rounded to :data:`DIGITS` decimals so that a change of
        exactly 50% (or 10%, 20%, 30%) computed from diameters in tenths of a millimetre is exactly that
        number, not 49.999999999 (binary floating point), and meets the rules' "at least" thresholds.
    """
    if reference == 0:
        return float("nan") if value == 0 else float("inf")
    return round(100.0 * (value - reference) / reference, DIGITS)


def nadir(values: Sequence[float]) -> float:
    """The smallest value so far (the nadir of a series that includes the baseline).

    Parameters
    ----------
    values : sequence of float
        Measurements in time order, baseline first.

    Returns
    -------
    float
        Their minimum.

    Raises
    ------
    EstimationError
        An empty series.
    """
    if not values:
        raise EstimationError("the nadir of an empty series is undefined")
    return float(min(values))
