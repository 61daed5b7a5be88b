"""Typed results of lesion matching: match classes, groups, per-lesion rows and the whole result."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pofa.errors import ImagingError
from pofa.imaging.registration import RegistrationResult
from pofa.vocabulary import MatchClass

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

__all__ = [
    "AssignBy",
    "BaselineLesionStatus",
    "FollowupLesionMatch",
    "GroupKind",
    "MatchClass",
    "MatchGroup",
    "MatchResult",
]


class GroupKind(enum.StrEnum):
    """Shape of a connected component of the baseline -- follow-up overlap graph."""

    ONE_TO_ONE = "one-to-one"
    SPLIT = "split"
    MERGE = "merge"
    SPLIT_MERGE = "split and merge"
    NEW = "new"
    VANISHED = "vanished"


class AssignBy(enum.StrEnum):
    """What the one-to-one assignment maximises."""

    OVERLAP = "overlap"
    DICE = "dice"


@dataclass(frozen=True, slots=True)
class MatchGroup:
    """One connected component of the overlap graph."""

    group_id: int
    kind: GroupKind
    baseline_labels: tuple[int, ...]
    followup_labels: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FollowupLesionMatch:
    """The outcome for one follow-up (failure) lesion. Volumes and positions are in baseline space.

    Attributes
    ----------
    followup_label : int
        Label value in the follow-up label map.
    match_class : MatchClass
        local, marginal, de novo, or outside baseline scan.
    baseline_label : int or None
        The baseline lesion it is attributed to (local lesions only): its one-to-one identity when it has one,
        else the baseline lesion it overlaps most.
    assigned : bool
        ``baseline_label`` comes from the one-to-one assignment.
    overlap_voxels, overlap_ml : int, float
        Overlap with ``baseline_label`` (0 for a lesion local only through the tolerance).
    dice : float
        Dice of the lesion with ``baseline_label`` (0 when none).
    distance_mm : float
        Distance to the nearest baseline lesion (0 when overlapping; ``inf`` when the baseline has no lesion;
        NaN when outside the baseline scan).
    nearest_baseline_label : int or None
        The nearest baseline lesion.
    group_id : int
        Its group (:class:`MatchGroup`).
    local_to : tuple of (int, int)
        Every baseline lesion it is local to, as ``(baseline label, overlap voxels)``, most overlap first.
    volume_ml : float
        Its volume on the baseline grid.
    centre_lps : tuple of float
        Centre of mass (x, y, z) in baseline LPS mm (NaN when outside the baseline scan).
    voxels_in_baseline : int
        Voxels on the baseline grid; a lesion smaller than a baseline voxel that nearest-neighbour resampling
        missed is placed as one voxel at its mapped centre (1), and one outside the baseline scan has 0.
    """

    followup_label: int
    match_class: MatchClass
    baseline_label: int | None
    assigned: bool
    overlap_voxels: int
    overlap_ml: float
    dice: float
    distance_mm: float
    nearest_baseline_label: int | None
    group_id: int
    local_to: tuple[tuple[int, int], ...]
    volume_ml: float
    centre_lps: tuple[float, float, float]
    voxels_in_baseline: int


@dataclass(frozen=True, slots=True)
class BaselineLesionStatus:
    """The outcome for one baseline lesion.

    ``failed`` is True when a follow-up lesion is local to it (a local failure). ``in_followup_scan`` is False
    when its centre maps outside the follow-up scan: then "not failed" only means "not seen".
    """

    baseline_label: int
    volume_ml: float
    centre_lps: tuple[float, float, float]
    failed: bool
    assigned_followup_label: int | None
    followup_labels: tuple[int, ...]
    group_id: int
    in_followup_scan: bool


@dataclass(frozen=True, slots=True, eq=False)
class MatchResult:
    """Lesion matching of one patient's baseline and follow-up label maps (immutable).

    Attributes
    ----------
    followup : tuple of FollowupLesionMatch
        One per follow-up lesion, by label.
    baseline : tuple of BaselineLesionStatus
        One per baseline lesion, by label.
    groups : tuple of MatchGroup
        Connected components of the overlap graph.
    tolerance_mm, margin_mm : float
        Local tolerance and marginal margin used.
    assign_by : AssignBy
        What the one-to-one assignment maximised.
    voxel_volume_ml : float
        Volume of one baseline voxel.
    registration : RegistrationResult or None
        How the follow-up was brought to baseline space (None: the identity).
    method : str
        What was done, in words.
    """

    followup: tuple[FollowupLesionMatch, ...]
    baseline: tuple[BaselineLesionStatus, ...]
    groups: tuple[MatchGroup, ...]
    tolerance_mm: float
    margin_mm: float
    assign_by: AssignBy
    voxel_volume_ml: float
    registration: RegistrationResult | None
    method: str

    def followup_lesion(self, label: int) -> FollowupLesionMatch:
        """The row of follow-up lesion ``label``.

        Parameters
        ----------
        label : int
            Label of the follow-up lesion.

        Returns
        -------
        FollowupLesionMatch
            Its class, attribution, overlap, distance and group.

        Raises
        ------
        ImagingError
            When no follow-up lesion has that label.
        """
        for r in self.followup:
            if r.followup_label == label:
                return r
        raise ImagingError(
            f"Follow-up lesion {label} is not in this result; labels are "
            f"{[r.followup_label for r in self.followup]}."
        )

    def baseline_lesion(self, label: int) -> BaselineLesionStatus:
        """The status of baseline lesion ``label``.

        Parameters
        ----------
        label : int
            Label of the baseline lesion.

        Returns
        -------
        BaselineLesionStatus
            Whether it failed, its identity and group.

        Raises
        ------
        ImagingError
            When no baseline lesion has that label.
        """
        for b in self.baseline:
            if b.baseline_label == label:
                return b
        raise ImagingError(
            f"Baseline lesion {label} is not in this result; labels are "
            f"{[b.baseline_label for b in self.baseline]}."
        )

    def counts(self) -> dict[MatchClass, int]:
        """Number of follow-up lesions per class.

        Returns
        -------
        dict of MatchClass to int
            Every class present as a key.
        """
        out = {c: 0 for c in MatchClass}
        for r in self.followup:
            out[r.match_class] += 1
        return out

    @property
    def assignments(self) -> dict[int, int]:
        """One-to-one identities: baseline label -> follow-up label.

        Returns
        -------
        dict of int to int
            Only lesions with an identity appear.
        """
        return {
            r.baseline_label: r.followup_label
            for r in self.followup
            if r.assigned and r.baseline_label is not None
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per follow-up lesion (a pandas DataFrame).

        Returns
        -------
        pandas.DataFrame
            Columns as :class:`FollowupLesionMatch` fields.
        """
        import pandas as pd

        rows = []
        for r in self.followup:
            rows.append(
                {
                    "followup_label": r.followup_label,
                    "match_class": r.match_class.value,
                    "baseline_label": r.baseline_label,
                    "assigned": r.assigned,
                    "overlap_voxels": r.overlap_voxels,
                    "overlap_ml": r.overlap_ml,
                    "dice": r.dice,
                    "distance_mm": r.distance_mm,
                    "nearest_baseline_label": r.nearest_baseline_label,
                    "group_id": r.group_id,
                    "local_to": ";".join(str(b) for b, _ in r.local_to),
                    "volume_ml": r.volume_ml,
                    "x_mm": r.centre_lps[0],
                    "y_mm": r.centre_lps[1],
                    "z_mm": r.centre_lps[2],
                }
            )
        return pd.DataFrame(rows)

    def summary(self) -> str:
        """A few lines for the terminal or a report.

        Returns
        -------
        str
            Counts per class and the settings, in words.
        """
        c = self.counts()
        failed = sum(b.failed for b in self.baseline)
        lines = [
            f"{len(self.followup)} follow-up lesion(s): {c[MatchClass.LOCAL]} local, "
            f"{c[MatchClass.MARGINAL]} "
            f"marginal, {c[MatchClass.DE_NOVO]} de novo"
            + (f", {c[MatchClass.OUTSIDE]} outside the baseline scan" if c[MatchClass.OUTSIDE] else "")
            + ".",
            f"{len(self.baseline)} baseline lesion(s), {failed} with a local failure.",
            self.method,
        ]
        return "\n".join(lines)
