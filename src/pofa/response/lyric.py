"""LYRIC 2016: Lugano's response refined for immunomodulatory therapy, with the indeterminate response (IR).

Source: Cheson BD, Ansell S, Schwartz L, et al. Refinement of the Lugano Classification lymphoma response
criteria in the era of immunomodulatory therapy. Blood 2016;128:2489-2496 (its LYRIC table).

What was checked against what (docs/response.md, "Sources"): the IR1-IR3 definitions against a verbatim
reproduction of the LYRIC table (J Nucl Med review, Table 2: "IR1: >=50% increase in SPD in first 12 wk; IR2a:
<50% increase in SPD with new lesions; IR2b: <50% increase in SPD with >=50% increase in PPD of lesion or set
of lesions at any time during treatment; IR3: increase in 18F-FDG uptake without concomitant increase in
lesion size meeting criteria for PD") and the purpose of IR against the paper's abstract ("until confirmed as
flare/pseudo-progression or true PD by either biopsy or subsequent imaging"). Three details could not be
checked against the paper's text: IR1's "without clinical deterioration", the SPD reference of IR1 (pofa: the
nadir), and the confirmation at the next scan (pofa: SPD up >= 10% from the IR scan, or new lesions).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

#: LYRIC IR1's window: "in the first 12 weeks of therapy" (days).
IR1_WINDOW_DAYS = 84
#: pofa's confirmation of an IR as progression: a further SPD increase of at least 10% from the IR scan (not
#: checked against the paper's text: docs/response.md).
CONFIRMATION_INCREASE = 10.0


class LyricResponse(enum.StrEnum):
    """LYRIC categories: Lugano's (CR/PR/SD/PD) plus the indeterminate responses IR1-IR3."""

    CR = "CR"
    PR = "PR"
    SD = "SD"
    PD = "PD"
    IR1 = "IR1"
    IR2 = "IR2"
    IR3 = "IR3"
    NE = "NE"


class IRStatus(enum.StrEnum):
    """What became of an indeterminate response at the next scan."""

    CONFIRMED = "confirmed"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class LyricFindings:
    """What LYRIC needs of one follow-up scan.

    Attributes
    ----------
    day : int
        Days from the start of therapy (the index date).
    lugano : str
        The scan's Lugano category without LYRIC ("CR", "PR", "SD", "PD" or "NE"; PET-based where PET was
        read, else CT-based).
    spd_change_from_nadir : float
        Change of the target SPD from its nadir, percent.
    lesion_growth : bool
        ">= 50% increase in PPD" of a lesion or set of lesions (from its nadir).
    new_lesions : bool
        New lesions.
    uptake_increase_only : bool
        Lugano's progression is only by increased FDG uptake, without growth or new lesions meeting PD.
    clinical_deterioration : bool
        Clinical deterioration at this time point.
    """

    day: int
    lugano: str
    spd_change_from_nadir: float
    lesion_growth: bool
    new_lesions: bool
    uptake_increase_only: bool
    clinical_deterioration: bool


def lyric_response(f: LyricFindings) -> LyricResponse:
    """LYRIC category of one scan, before confirmation.

    LYRIC, as its table is reproduced verbatim (J Nucl Med review, Table 2): "PD: per Lugano with following
    exceptions":

    - "IR1: >=50% increase in SPD in first 12 wk";
    - "IR2a: <50% increase in SPD with new lesions";
    - "IR2b: <50% increase in SPD with >=50% increase in PPD of lesion or set of lesions at any time during
      treatment";
    - "IR3: increase in 18F-FDG uptake without concomitant increase in lesion size meeting criteria for PD".
    - CR, PR, SD: "per Lugano"; an IR is therefore only ever assigned where Lugano calls PD (a lesion whose
      PPD rose >= 50% while Lugano calls the scan PR keeps PR).

    pofa's reading: the 12 weeks are day <= 84 from the index date; the SPD change is from the nadir (baseline
    included); IR1 also requires no clinical deterioration (as LYRIC is commonly summarised; the paper's own
    wording of this was not checked), else PD; "a lesion or set of lesions" is read as any single lesion whose
    PPD rose >= 50% from its nadir (a set of lesions summed is not tested).

    Parameters
    ----------
    f : LyricFindings
        The scan's findings.

    Returns
    -------
    LyricResponse
        IR1, IR2, IR3, or the Lugano category.
    """
    # the IRs are exceptions to Lugano's PD only ("PD: per Lugano with following exceptions")
    if f.lugano != "PD":
        return LyricResponse(f.lugano)
    if f.spd_change_from_nadir >= 50.0:
        if f.day <= IR1_WINDOW_DAYS and not f.clinical_deterioration:
            return LyricResponse.IR1
        return LyricResponse.PD
    if f.new_lesions or f.lesion_growth:
        return LyricResponse.IR2
    if f.uptake_increase_only:
        return LyricResponse.IR3
    return LyricResponse.PD


@dataclass(frozen=True, slots=True)
class FollowUpOfIR:
    """The scan after an indeterminate response.

    Attributes
    ----------
    previous : LyricResponse
        The category of the previous scan (IR1, IR2 or IR3).
    spd_change_from_ir : float
        Change of the target SPD from the IR scan, percent.
    new_lesions : bool
        New lesions on this scan.
    size_progression : bool
        This scan meets Lugano's CT progression by size (a lesion progresses).
    current : LyricResponse
        This scan's own category by :func:`lyric_response`.
    """

    previous: LyricResponse
    spd_change_from_ir: float
    new_lesions: bool
    size_progression: bool
    current: LyricResponse


def resolve_ir(f: FollowUpOfIR) -> tuple[LyricResponse, IRStatus | None]:
    """Confirm or resolve an indeterminate response at the next scan.

    LYRIC (Blood 2016, abstract): an IR identifies lesions "until confirmed as flare/pseudo-progression or
    true PD by either biopsy or subsequent imaging". pofa confirms IR1 and IR2 as PD at the next scan by an
    SPD increase of >= 10% from the IR scan, or by new lesions; IR3 by growth meeting Lugano's lesion
    progression or new lesions. This confirmation rule follows how LYRIC is commonly summarised; the paper's
    own wording could not be checked (docs/response.md), so check it against your protocol. Otherwise the IR
    is resolved and the scan keeps its own category (it may be IR again, which is resolution of the earlier IR
    but a new indeterminate finding).

    Parameters
    ----------
    f : FollowUpOfIR
        The next scan after the IR.

    Returns
    -------
    tuple
        ``(category, status)``: PD with ``CONFIRMED``, or the scan's own category with ``RESOLVED``; status is
        ``None`` when the previous scan was not an IR.
    """
    if f.previous not in (LyricResponse.IR1, LyricResponse.IR2, LyricResponse.IR3):
        return f.current, None
    if f.previous is LyricResponse.IR3:
        confirmed = f.size_progression or f.new_lesions
    else:
        confirmed = f.spd_change_from_ir >= CONFIRMATION_INCREASE or f.new_lesions
    if confirmed:
        return LyricResponse.PD, IRStatus.CONFIRMED
    return f.current, IRStatus.RESOLVED
