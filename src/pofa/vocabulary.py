"""The closed vocabularies of pofa: enums whose values are the strings users see.

Every table, results.json and the report spell a lesion outcome, a failure class or a patient pattern with
the values below, and code compares against the members, never against a bare string. The enums are
:class:`enum.StrEnum`, so a member equals its string (``PatientPattern.MIXED == "mixed"``), formats as it
(``f"{PatientPattern.MIXED}"`` is ``"mixed"``) and is written to JSON and CSV unchanged.

This module imports nothing from pofa (and nothing heavy), so every layer may use it.
"""

from __future__ import annotations

import enum

__all__ = [
    "AssignmentBasis",
    "FailureClass",
    "FailureTiming",
    "LesionOutcome",
    "MatchClass",
    "PatientPattern",
    "PatternComponent",
]


class LesionOutcome(enum.StrEnum):
    """Outcome of a baseline lesion at the patient's first progression (``lesion_outcome``)."""

    LOCAL_FAILURE = "local failure"
    #: The patient progressed (with failure rows in the window) and this lesion did not fail.
    CONTROLLED = "controlled"
    NO_PROGRESSION = "no progression"
    #: The patient progressed but no failure row lies in the window: the lesion's outcome is not known.
    UNKNOWN = "unknown"


class FailureClass(enum.StrEnum):
    """Class of one failure row, a lesion seen at a failure scan (``failure_class``)."""

    LOCAL = "local"
    MARGINAL = "marginal"
    DE_NOVO = "de novo"


class PatternComponent(enum.StrEnum):
    """What a failure row contributes to the patient pattern (a marginal row maps by setting)."""

    LOCAL = "local"
    DE_NOVO = "de novo"


class FailureTiming(enum.StrEnum):
    """Whether a failure row belongs to first progression or is a later event (``timing``)."""

    FIRST_PROGRESSION = "first progression"
    LATER = "later"


class AssignmentBasis(enum.StrEnum):
    """How a failure row's class was decided (``assigned_by``)."""

    ID = "baseline_lesion_id"
    GEOMETRY = "geometry"
    NEW_LESION = "blank baseline_lesion_id"


class PatientPattern(enum.StrEnum):
    """Pattern of failure of a patient at first progression (``pattern``)."""

    NO_PROGRESSION = "no progression"
    STRICTLY_LOCAL = "strictly local"
    STRICTLY_DE_NOVO = "strictly de novo"
    MIXED = "mixed"
    #: Progression recorded but no failure row in the window: counted apart, never called de novo.
    UNKNOWN = "unknown"


class MatchClass(enum.StrEnum):
    """Class of a follow-up lesion matched on images: the failure classes plus a lesion outside the scan."""

    LOCAL = FailureClass.LOCAL.value
    MARGINAL = FailureClass.MARGINAL.value
    DE_NOVO = FailureClass.DE_NOVO.value
    OUTSIDE = "outside baseline scan"
