"""RECIL 2017: response by the sum of longest diameters of up to three target lesions.

Source: Younes A, Hilden P, Coiffier B, et al. International Working Group consensus response evaluation
criteria in lymphoma (RECIL 2017). Ann Oncol 2017;28:1436-1447.

What was checked against what (docs/response.md, "Sources"): only that RECIL measures "the sum of longest
diameters of a maximum of three target lesions" and adds "a novel provisional category of minor response" (the
ASCO Post's summary of the paper). The percentages below (PR >= 30% decrease, MR 10-29%, SD, PD > 20% increase
from the nadir, CR with long axes < 10 mm or a negative PET) are as RECIL is commonly summarised: neither the
paper nor a verbatim reproduction of its table could be read, so check them against your protocol.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

#: RECIL's number of target lesions.
RECIL_TARGETS = 3
#: RECIL CR: "all nodes with long axis < 10 mm" (mm).
RECIL_NODE_NORMAL_MM = 10.0


class RecilResponse(enum.StrEnum):
    """RECIL 2017 response categories (MR: minor response). NE: not evaluable."""

    CR = "CR"
    PR = "PR"
    MR = "MR"
    SD = "SD"
    PD = "PD"
    NE = "NE"


@dataclass(frozen=True, slots=True)
class RecilFindings:
    """What the RECIL rule needs of one follow-up scan.

    Attributes
    ----------
    sld_change_from_baseline : float
        Change of the sum of longest diameters from baseline, percent.
    sld_change_from_nadir : float
        Change from the smallest sum so far (baseline included), percent.
    target_ldi_mm : tuple of float
        Current LDi of the (up to three) target lesions.
    target_extranodal : tuple of bool
        Whether each is extranodal.
    deauville : int or None
        Overall Deauville score, when PET was read.
    new_lesions : bool
        A new lesion.
    """

    sld_change_from_baseline: float
    sld_change_from_nadir: float
    target_ldi_mm: tuple[float, ...]
    target_extranodal: tuple[bool, ...]
    deauville: int | None
    new_lesions: bool


def recil_response(f: RecilFindings) -> RecilResponse:
    """RECIL 2017 response of one follow-up scan (wording as RECIL is commonly summarised; see the module).

    - CR: "complete disappearance of all target lesions and all nodes with long axis < 10 mm", or a >= 30%
      decrease in the sum of longest diameters with a negative PET (Deauville 1-3).
    - PR: ">= 30% decrease in the sum of longest diameters of target lesions" (PET positive or not done).
    - MR (minor response): ">= 10% decrease but < 30%".
    - SD: "< 10% decrease or <= 20% increase".
    - PD: "> 20% increase in the sum of longest diameters of target lesions" (pofa measures the increase from
      the nadir, as RECIST does, and applies no absolute minimum such as RECIST 1.1's 5 mm), or "appearance
      of a new lesion".

    Parameters
    ----------
    f : RecilFindings
        The scan's findings.

    Returns
    -------
    RecilResponse
        CR, PR, MR, SD or PD.
    """
    if f.new_lesions or f.sld_change_from_nadir > 20.0:
        return RecilResponse.PD
    gone = all((ldi < RECIL_NODE_NORMAL_MM) if not extra else ldi == 0
               for ldi, extra in zip(f.target_ldi_mm, f.target_extranodal, strict=True))
    if gone:
        return RecilResponse.CR
    if f.sld_change_from_baseline <= -30.0:
        if f.deauville is not None and f.deauville <= 3:
            return RecilResponse.CR
        return RecilResponse.PR
    if f.sld_change_from_baseline <= -10.0:
        return RecilResponse.MR
    return RecilResponse.SD
