"""LYRIC 2016: Lugano's response refined for immunomodulatory therapy, with the indeterminate response (IR).

Source: Cheson BD, Ansell S, Schwartz L, et al. Refinement of the Lugano Classification lymphoma response
criteria in the era of immunomodulatory therapy. Blood 2016;128:2489-2496, Table 2.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

#: LYRIC IR1's window: "in the first 12 weeks of therapy" (days).
IR1_WINDOW_DAYS = 84
#: LYRIC's confirmation of an IR as progression: a further SPD increase of at least 10% from the IR scan.
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

    - IR1: ">= 50% increase in SPD in the first 12 weeks" of therapy, "without clinical deterioration".
    - IR2: "< 50% increase in SPD with (a) new lesion(s), or (b) >= 50% increase in PPD of a lesion or set of
      lesions at any time during treatment".
    - IR3: "increase in FDG uptake of 1 or more lesion(s) without a concomitant increase in lesion size or
      number meeting PD criteria".
    - Otherwise Lugano's category (PD when the SPD rose >= 50% after 12 weeks or with clinical deterioration).

    The 12 weeks are read as day <= 84 from the index date.

    Parameters
    ----------
    f : LyricFindings
        The scan's findings.

    Returns
    -------
    LyricResponse
        IR1, IR2, IR3, or the Lugano category.
    """
    growth = f.spd_change_from_nadir >= 50.0
    if growth:
        if f.day <= IR1_WINDOW_DAYS and not f.clinical_deterioration:
            return LyricResponse.IR1
        return LyricResponse.PD
    if f.new_lesions or f.lesion_growth:
        return LyricResponse.IR2
    if f.lugano == "PD" and f.uptake_increase_only:
        return LyricResponse.IR3
    return LyricResponse(f.lugano)


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

    LYRIC: an IR is kept "until confirmed as flare/pseudo-progression or true PD by either biopsy or
    subsequent imaging". For IR1 and IR2, PD is confirmed by "an increase in SPD of >= 10% from the first IR
    time point" (new measurable lesions add to it), or by new lesions; for IR3, by growth or new lesions
    meeting PD.
    Otherwise the IR is resolved and the scan keeps its own category (it may be IR again, which is resolution
    of the earlier IR but a new indeterminate finding).

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
