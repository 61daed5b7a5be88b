"""Read a DICOM SEG back into a label map without trusting its frame order (for the SEG tests).

Each frame is placed by its own PlanePositionSequence's ImagePositionPatient (matched to a source slice's
position) and given its segment from SegmentIdentificationSequence; its DerivationImageSequence must name the
source instance at that position. So a SEG whose frames were written in another order, or attached to the
wrong slices, does not read back equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydicom.dataset import Dataset


def source_positions(headers: Sequence[Dataset]) -> tuple[np.ndarray, list[str]]:
    """Positions (n, 3) and SOP instance UIDs of the source slices, sorted along the slice normal."""
    iop = np.asarray([float(v) for v in headers[0].ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    pos = np.asarray([[float(v) for v in h.ImagePositionPatient] for h in headers])
    order = np.argsort(pos @ normal, kind="stable")
    return pos[order], [str(headers[int(i)].SOPInstanceUID) for i in order]


def label_map_from_seg(seg: Dataset, headers: Sequence[Dataset]) -> tuple[np.ndarray, dict[str, Any]]:
    """The label map (slice, row, column on the sources' grid; label = segment number) of a BINARY SEG.

    Also returns facts for the tests: frames per segment and whether every frame named its source slice.
    Overlapping segments raise (pofa's segments never overlap).
    """
    pos, uids = source_positions(headers)
    rows, cols = int(seg.Rows), int(seg.Columns)
    frames = seg.pixel_array  # (frames, rows, cols) of 0/1 for a BINARY SEG
    n_frames = int(seg.NumberOfFrames)
    if n_frames == 1:
        frames = frames.reshape(1, rows, cols)
    out = np.zeros((len(uids), rows, cols), dtype=np.int64)
    per_segment: dict[int, int] = {}
    derivation_ok = True
    for f, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        p = np.asarray([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient])
        dist = np.linalg.norm(pos - p, axis=1)
        k = int(np.argmin(dist))
        assert dist[k] < 1e-3, f"frame {f + 1} lies at no source slice position ({p})"
        seg_no = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        per_segment[seg_no] = per_segment.get(seg_no, 0) + 1
        src = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        derivation_ok &= str(src) == uids[k]
        mask = frames[f].astype(bool)
        assert not np.any(out[k][mask]), f"segment {seg_no} overlaps another segment on slice {k}"
        out[k][mask] = seg_no
    return out, {"frames_per_segment": per_segment, "derivation_ok": derivation_ok, "n_frames": n_frames}
