"""Lugano 2014 response: CT-based (CR/PR/SD/PD), PET-based (CMR/PMR/NMR/PMD) and single-lesion progression.

Source: Cheson BD, Fisher RI, Barrington SF, et al. Recommendations for initial evaluation, staging, and
response assessment of Hodgkin and non-Hodgkin lymphoma: the Lugano classification. J Clin Oncol
2014;32:3059-3068, Table 3 (revised criteria for response assessment).

What was checked against what (docs/response.md, "Sources"): the wording quoted in each docstring below
against verbatim reproductions of Table 3: the CT-based criteria (CR, PR, SD, PD with the single-lesion rule)
as the LYRIC paper (Cheson et al., Blood 2016, its Table 2) and a PMC review (PMC5298348, Table 2) reproduce
them; the PET-based criteria, the Deauville scale's use and the 5 x 5 mm / 0 x 0 mm defaults as UpToDate's
copy of the table reproduces them. The paper itself was not read.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

#: Lugano's "LDi > 1.5 cm" for an abnormal node, and CT CR's "regress to <= 1.5 cm in LDi" (mm).
ABNORMAL_LDI_MM = 15.0
#: The size that decides between the 0.5 cm and the 1.0 cm increase of the single-lesion rule (mm).
SMALL_LESION_MM = 20.0


class LuganoCT(enum.StrEnum):
    """CT-based response (the values are what clinicians read). NE: not evaluable (a target not measured)."""

    CR = "CR"
    PR = "PR"
    SD = "SD"
    PD = "PD"
    NE = "NE"


class LuganoPET(enum.StrEnum):
    """PET-based (metabolic) response. NE: not evaluable (no Deauville score)."""

    CMR = "CMR"
    PMR = "PMR"
    NMR = "NMR"
    PMD = "PMD"
    NE = "NE"


@dataclass(frozen=True, slots=True)
class LesionSizes:
    """Diameters (mm) of one lesion now and at its PPD nadir.

    Attributes
    ----------
    ldi_mm, sdi_mm : float
        Current longest and perpendicular diameters.
    nadir_ldi_mm, nadir_sdi_mm : float
        Diameters at the scan where the lesion's PPD was smallest (baseline included).
    """

    ldi_mm: float
    sdi_mm: float
    nadir_ldi_mm: float
    nadir_sdi_mm: float


def lesion_progression(sizes: LesionSizes, *, too_small_mm: float = 5.0) -> bool:
    """Decide Lugano's progression of an individual node or lesion.

    "An individual node/lesion must be abnormal with: LDi > 1.5 cm and increase by >= 50% from PPD nadir and
    an increase in LDi or SDi from nadir 0.5 cm for lesions <= 2 cm, 1.0 cm for lesions > 2 cm" (Cheson et
    al., J Clin Oncol 2014, Table 3, progressive disease). pofa reads "lesions <= 2 cm" as the lesion's LDi at
    its nadir (the size the increase is measured from) and the increases as "at least". A lesion that has
    vanished (0 x 0) at nadir has PPD 0: any regrowth to LDi > 1.5 cm with the size increase then counts.

    Parameters
    ----------
    sizes : LesionSizes
        The lesion now and at its nadir.
    too_small_mm : float
        Default size of a lesion too small to measure (PPD convention).

    Returns
    -------
    bool
        Whether the lesion meets progression.
    """
    from pofa.response.measures import at_least, ppd

    if at_least(ABNORMAL_LDI_MM, sizes.ldi_mm):  # LDi <= 1.5 cm
        return False
    now = ppd(sizes.ldi_mm, sizes.sdi_mm, too_small_mm=too_small_mm)
    low = ppd(sizes.nadir_ldi_mm, sizes.nadir_sdi_mm, too_small_mm=too_small_mm)
    if not at_least(now, 1.5 * low):
        return False
    step = 5.0 if at_least(SMALL_LESION_MM, sizes.nadir_ldi_mm) else 10.0
    return (at_least(sizes.ldi_mm - sizes.nadir_ldi_mm, step)
            or at_least(sizes.sdi_mm - sizes.nadir_sdi_mm, step))


@dataclass(frozen=True, slots=True)
class CTFindings:
    """What the CT-based rule needs of one follow-up scan.

    Attributes
    ----------
    spd_change_from_baseline : float
        Change of the target SPD from baseline, percent.
    target_ldi_mm : tuple of float
        Current LDi of every target lesion.
    target_extranodal : tuple of bool
        Whether each target lesion is extranodal (same order).
    any_lesion_progression : bool
        Some lesion meets :func:`lesion_progression`.
    new_lesions : bool
        New lesions.
    new_bone_marrow : bool
        New or recurrent bone-marrow involvement.
    """

    spd_change_from_baseline: float
    target_ldi_mm: tuple[float, ...]
    target_extranodal: tuple[bool, ...]
    any_lesion_progression: bool
    new_lesions: bool
    new_bone_marrow: bool = False


def ct_response(f: CTFindings) -> LuganoCT:
    """Lugano 2014 CT-based response of one follow-up scan.

    - CR: "Target nodes/nodal masses must regress to <= 1.5 cm in LDi; no extralymphatic sites of disease";
      no new lesions; bone marrow normal.
    - PR: ">= 50% decrease from baseline in SPD of up to 6 target measurable nodes and extranodal sites";
      no new lesions.
    - PD: an individual node/lesion progresses (:func:`lesion_progression`), "new or recurrent involvement of
      the bone marrow", or new lesions.
    - SD: "< 50% decrease from baseline in SPD of up to 6 dominant, measurable nodes and extranodal sites; no
      criteria for progressive disease are met".

    Not applied: the spleen and organ-enlargement criteria and the nonmeasured lesions (no such columns).

    Parameters
    ----------
    f : CTFindings
        The scan's findings.

    Returns
    -------
    LuganoCT
        CR, PR, SD or PD.
    """
    if f.any_lesion_progression or f.new_lesions or f.new_bone_marrow:
        return LuganoCT.PD
    pairs = list(zip(f.target_ldi_mm, f.target_extranodal, strict=True))
    nodes_ok = all(ldi <= ABNORMAL_LDI_MM for ldi, extra in pairs if not extra)
    extranodal_gone = all(ldi == 0 for ldi, extra in pairs if extra)
    if nodes_ok and extranodal_gone:
        return LuganoCT.CR
    if f.spd_change_from_baseline <= -50.0:
        return LuganoCT.PR
    return LuganoCT.SD


@dataclass(frozen=True, slots=True)
class PETFindings:
    """What the PET-based rule needs of one follow-up scan.

    Attributes
    ----------
    deauville : int or None
        Overall Deauville score (the highest of the scan's sites); ``None``: not scored.
    uptake_change : float
        Change of the highest SUVmax from baseline, percent (``nan`` when SUVmax was not measured).
    new_avid_lesions : bool
        New FDG-avid foci consistent with lymphoma.
    bone_marrow : bool
        FDG-avid bone-marrow disease on this scan.
    bone_marrow_new : bool
        The marrow disease is new or recurrent (not present on the previous scan).
    """

    deauville: int | None
    uptake_change: float
    new_avid_lesions: bool
    bone_marrow: bool = False
    bone_marrow_new: bool = False


def pet_response(f: PETFindings, *, uptake_margin: float = 10.0) -> LuganoPET:
    """Lugano 2014 PET-based response of one follow-up scan.

    - CMR: "Score 1, 2, or 3 with or without a residual mass on 5PS"; no new lesions; "no evidence of
      FDG-avid disease in marrow".
    - PMR: "Score 4 or 5 with reduced uptake compared with baseline and residual mass(es) of any size".
    - NMR: "Score 4 or 5 with no significant change in FDG uptake from baseline at interim or end of
      treatment".
    - PMD: "Score 4 or 5 with an increase in intensity of uptake from baseline and/or new FDG-avid foci
      consistent with lymphoma"; "new or recurrent FDG-avid foci" in bone marrow.

    Lugano gives no number for a "significant" change of uptake; pofa compares the highest SUVmax with
    baseline and calls a change within +/- ``uptake_margin`` percent "no significant change" (a setting).
    Without SUVmax, a score of 4-5 is NMR unless new foci make it PMD.

    Parameters
    ----------
    f : PETFindings
        The scan's findings.
    uptake_margin : float
        Percent change of SUVmax below which uptake is "not significantly changed" (pofa's default 10).

    Returns
    -------
    LuganoPET
        CMR, PMR, NMR, PMD, or NE without a Deauville score.
    """
    if f.new_avid_lesions or f.bone_marrow_new:
        return LuganoPET.PMD
    if f.deauville is None:
        return LuganoPET.NE
    if f.deauville <= 3 and not f.bone_marrow:
        return LuganoPET.CMR
    change = f.uptake_change
    if change == change and change >= uptake_margin and f.deauville >= 4:
        return LuganoPET.PMD
    if change == change and change <= -uptake_margin:
        return LuganoPET.PMR
    return LuganoPET.NMR  # also scores 1-3 with persisting marrow uptake not reduced from baseline
