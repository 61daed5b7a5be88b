"""Split/merge groups (connected components of the "local to" graph) and one-to-one identity inside them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pofa.imaging.matching.labels import _Foreground
from pofa.imaging.matching.results import AssignBy, GroupKind, MatchGroup

__all__ = ["Groups", "assign_identities", "find_groups"]

#: Weight of a "within tolerance, no voxel overlap" edge in the assignment: far below one voxel of overlap, so
#: such an edge is used only when no overlapping pair competes for the same lesions.
TOL_EDGE_WEIGHT = 1e-3


@dataclass(frozen=True, slots=True)
class Groups:
    """Connected components of the bipartite graph baseline -- follow-up lesions.

    Attributes
    ----------
    groups : tuple of MatchGroup
        In order of their smallest follow-up label (then baseline label); ids 1, 2, ...
    baseline_group : ndarray of int
        Group id of every baseline lesion code.
    followup_group : ndarray of int
        Group id of every follow-up lesion code.
    members : tuple of (tuple of int, tuple of int)
        Baseline and follow-up lesion codes of each group, in the order of :attr:`groups`.
    """

    groups: tuple[MatchGroup, ...]
    baseline_group: NDArray[np.int64]
    followup_group: NDArray[np.int64]
    members: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]


def _components(n_nodes: int, edges: list[tuple[int, int]]) -> NDArray[np.int64]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not edges:
        return np.arange(n_nodes, dtype=np.int64)
    e = np.asarray(edges, dtype=np.int64)
    g = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n_nodes, n_nodes))
    _, comp = connected_components(g, directed=False)
    return np.asarray(comp, dtype=np.int64)


def _kind(n_baseline: int, n_followup: int) -> GroupKind:
    if not n_baseline:
        return GroupKind.NEW
    if not n_followup:
        return GroupKind.VANISHED
    if n_baseline == 1 and n_followup == 1:
        return GroupKind.ONE_TO_ONE
    if n_baseline == 1:
        return GroupKind.SPLIT
    if n_followup == 1:
        return GroupKind.MERGE
    return GroupKind.SPLIT_MERGE


def find_groups(bfg: _Foreground, ffg: _Foreground, edges: list[tuple[int, int]]) -> Groups:
    """Connected components (``scipy.sparse.csgraph``) over baseline and follow-up lesion codes.

    Parameters
    ----------
    bfg, ffg : _Foreground
        Baseline and follow-up lesions (codes 0..nb-1 and 0..nf-1).
    edges : list of (int, int)
        (baseline code, follow-up code) pairs where the follow-up lesion is local to the baseline lesion.

    Returns
    -------
    Groups
        The groups (members of each) and the group of each lesion.
    """
    nb, nf = bfg.labels.size, ffg.labels.size
    comp = _components(nb + nf, [(i, nb + j) for (i, j) in edges])
    members: dict[int, tuple[list[int], list[int]]] = {}
    for i in range(nb):
        members.setdefault(int(comp[i]), ([], []))[0].append(i)
    for j in range(nf):
        members.setdefault(int(comp[nb + j]), ([], []))[1].append(j)

    def _order(key: int) -> tuple[float, float]:
        bs, fs = members[key]
        return (
            float(ffg.labels[min(fs)]) if fs else math.inf,
            float(bfg.labels[min(bs)]) if bs else math.inf,
        )

    keys = sorted(members, key=_order)
    group_of_comp = {key: n + 1 for n, key in enumerate(keys)}
    groups = tuple(
        MatchGroup(
            group_of_comp[key],
            _kind(len(members[key][0]), len(members[key][1])),
            tuple(int(bfg.labels[i]) for i in sorted(members[key][0])),
            tuple(int(ffg.labels[j]) for j in sorted(members[key][1])),
        )
        for key in keys
    )
    gid = np.array([group_of_comp[int(c)] for c in comp], dtype=np.int64)
    return Groups(
        groups,
        gid[:nb],
        gid[nb:],
        tuple((tuple(sorted(members[k][0])), tuple(sorted(members[k][1]))) for k in keys),
    )


def assign_identities(
    groups: Groups,
    bfg: _Foreground,
    ffg: _Foreground,
    overlap: dict[tuple[int, int], int],
    tolerance_pairs: frozenset[tuple[int, int]],
    assign_by: AssignBy,
) -> set[tuple[int, int]]:
    """One-to-one identity inside every group by linear assignment (``scipy.optimize.linear_sum_assignment``).

    Parameters
    ----------
    groups : Groups
        The groups of :func:`find_groups`.
    bfg, ffg : _Foreground
        Baseline and follow-up lesions (voxel counts for the Dice).
    overlap : dict
        Voxel counts of the overlapping (baseline code, follow-up code) pairs.
    tolerance_pairs : frozenset
        Pairs local through the tolerance only (weight far below one voxel of overlap).
    assign_by : AssignBy
        Maximise the overlap volume or the Dice.

    Returns
    -------
    set of (int, int)
        Assigned (baseline code, follow-up code) pairs; each lesion in at most one.
    """
    from scipy.optimize import linear_sum_assignment

    assigned: set[tuple[int, int]] = set()
    for bs, fs in groups.members:
        if not bs or not fs:
            continue
        w = np.zeros((len(bs), len(fs)))
        for r, i in enumerate(bs):
            for c, j in enumerate(fs):
                if (i, j) in overlap:
                    ov = overlap[(i, j)]
                    w[r, c] = (
                        ov if assign_by is AssignBy.OVERLAP else 2.0 * ov / (bfg.counts[i] + ffg.counts[j])
                    )
                elif (i, j) in tolerance_pairs:
                    w[r, c] = TOL_EDGE_WEIGHT * (1e-3 if assign_by is AssignBy.DICE else 1.0)
        rows, cols = linear_sum_assignment(w, maximize=True)
        for ra, ca in zip(rows, cols, strict=True):
            if w[ra, ca] > 0:
                assigned.add((bs[ra], fs[ca]))
    return assigned
