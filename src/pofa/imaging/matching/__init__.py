"""Baseline-to-failure lesion matching on label maps: local, marginal and de novo failures.

Pipeline (Santoro-Fernandes et al. PMB 2021; Huff et al. PMB 2023):

1. The follow-up (failure) lesion label map is resampled onto the baseline grid with nearest-neighbour
   interpolation through the registration transform (baseline LPS -> follow-up LPS): for a linear transform
   only near the follow-up lesions, with the result of SimpleITK's whole-grid resampling
   (:func:`resample_label_map`, module ``resample``).
2. The overlap matrix of the two label maps is built in one pass: for every voxel where both maps are
   non-zero, a pair key ``baseline_label * K + followup_label``; ``np.unique`` counts each pair (``core``,
   ``labels``).
3. The distance from every follow-up lesion to the nearest baseline lesion is the gap between their surfaces
   (voxel faces) in mm, as a reader measures it: touching lesions are 0 mm apart (module ``distance``, which
   explains why the computation is exact). It gives the class (``classify``): **local** when the lesion
   overlaps a baseline lesion grown by ``tolerance_mm`` (0 = a shared voxel), **marginal** when it is not
   local but within ``margin_mm``, **de novo** otherwise. A follow-up lesion that falls outside the baseline
   scan is **outside baseline scan** (it cannot be judged).
4. The bipartite graph baseline -- follow-up (an edge where a follow-up lesion is local to a baseline lesion)
   falls into connected components: one-to-one, split (one baseline, several follow-up lesions), merge,
   split-and-merge, new (follow-up only) and vanished (baseline only) groups (``groups``).
5. Inside every group, a linear assignment (``scipy.optimize.linear_sum_assignment``) maximising the overlap
   volume (or the Dice) gives each baseline lesion at most one follow-up lesion as its identity (``groups``).

Modules: ``results`` (typed results), ``labels`` (label-map primitives), ``distance``, ``groups``,
``classify``, ``core`` (:func:`match_label_arrays` and :class:`MatchOptions`), ``resample``, ``patient``
(:func:`match_patient`), ``failures`` (failure rows and their CSV).
"""

from __future__ import annotations

from pofa.imaging.matching.core import MatchOptions, match_label_arrays
from pofa.imaging.matching.failures import FAILURE_COLUMNS, match_to_failures_rows, write_failures_csv
from pofa.imaging.matching.labels import as_label_map, overlap_pairs
from pofa.imaging.matching.patient import match_patient
from pofa.imaging.matching.resample import resample_label_map
from pofa.imaging.matching.results import (
    AssignBy,
    BaselineLesionStatus,
    FollowupLesionMatch,
    GroupKind,
    MatchClass,
    MatchGroup,
    MatchResult,
)

__all__ = [
    "AssignBy",
    "BaselineLesionStatus",
    "FollowupLesionMatch",
    "GroupKind",
    "MatchClass",
    "MatchGroup",
    "MatchOptions",
    "MatchResult",
    "match_label_arrays",
    "match_patient",
    "overlap_pairs",
    "as_label_map",
    "FAILURE_COLUMNS",
    "match_to_failures_rows",
    "write_failures_csv",
    "resample_label_map",
]
