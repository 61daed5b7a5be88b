"""Lesion tracks from label maps: axial diameters and baseline lesions followed across scans."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from pofa.errors import ImagingError
from pofa.response.tracks import axial_diameters, track_lesions

SHAPE = (80, 80, 10)


def ellipse(centre: tuple[float, float], a: float, b: float, z: range = range(3, 7)) -> np.ndarray:
    """An axis-aligned elliptic cylinder with semi-axes a (along i) and b (along j), 1 mm voxels."""
    i, j = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    disc = ((i - centre[0]) / a) ** 2 + ((j - centre[1]) / b) ** 2 <= 1.0
    m = np.zeros(SHAPE, bool)
    for k in z:
        m[:, :, k] = disc
    return m


def test_axial_diameters_of_an_ellipse() -> None:
    # semi-axes 15 and 10 voxels: the extreme voxels' outlines span 31 x 21 voxels along the axes; the longest
    # segment corner to corner is a little longer (docs/response.md): within one voxel diagonal of 30 x 20
    ldi, sdi = axial_diameters(ellipse((40, 40), 15, 10), (1.0, 1.0, 3.0))
    assert 31.0 <= ldi <= 30.0 + np.sqrt(2) and 21.0 <= sdi <= 20.0 + np.sqrt(2)
    assert axial_diameters(ellipse((40, 40), 15, 10), (0.5, 0.5, 3.0)) == (ldi / 2, sdi / 2)  # scale
    assert axial_diameters(np.zeros(SHAPE, bool), (1, 1, 1)) == (0.0, 0.0)
    with pytest.raises(ImagingError):
        axial_diameters(np.zeros((3, 3), bool), (1, 1))


def test_axial_diameters_rotated_lesion() -> None:
    """A lesion oblique in the slice: the LDi is along its own axis, not the array axes."""
    i, j = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    u = ((i - 40) + (j - 40)) / np.sqrt(2)
    v = ((i - 40) - (j - 40)) / np.sqrt(2)
    m = np.zeros(SHAPE, bool)
    m[:, :, 5] = (u / 20) ** 2 + (v / 8) ** 2 <= 1
    ldi, sdi = axial_diameters(m, (1.0, 1.0, 1.0))
    ii, jj = np.nonzero(m[:, :, 5])
    corners = (np.column_stack([ii, jj]).astype(float)[:, None, :]
               + np.array([[0.5, 0.5], [0.5, -0.5], [-0.5, 0.5], [-0.5, -0.5]])).reshape(-1, 2)
    brute = np.sqrt(((corners[:, None] - corners[None]) ** 2).sum(axis=2)).max()  # all pairs, no hull
    assert ldi == pytest.approx(brute, abs=1e-12)
    assert abs(ldi - 40) <= np.sqrt(2) and abs(sdi - 16) <= np.sqrt(2)  # within a voxel diagonal


def test_tracks_shrink_vanish_and_split() -> None:
    base = np.zeros(SHAPE, np.int32)
    base[ellipse((20, 20), 12, 8)] = 1
    base[ellipse((55, 55), 10, 10)] = 2
    fu1 = np.zeros(SHAPE, np.int32)
    fu1[ellipse((20, 20), 6, 4)] = 1  # lesion 1 shrinks
    fu1[ellipse((50, 55), 3, 3)] = 2  # lesion 2 splits in two
    fu1[ellipse((60, 55), 3, 3)] = 3
    fu2 = np.zeros(SHAPE, np.int32)
    fu2[ellipse((20, 20), 3, 3)] = 1  # lesion 2 has vanished
    d0, d1, d2 = dt.date(2022, 1, 1), dt.date(2022, 2, 1), dt.date(2022, 4, 1)
    rows = track_lesions(base, [(d2, fu2), (d1, fu1)], np.eye(4), {1: "L1", 2: "L2"}, d0)
    by = {(r.lesion_id, r.scan_date): r for r in rows}
    assert len(rows) == 6
    tol = np.sqrt(2)  # one voxel diagonal (1 mm voxels)
    assert abs(by[("L1", d0)].ldi_mm - 24) <= tol and by[("L1", d0)].event == "baseline"
    assert abs(by[("L1", d1)].ldi_mm - 12) <= tol and by[("L1", d1)].event == "continues"
    assert by[("L2", d1)].event == "split"
    assert abs(by[("L2", d1)].ldi_mm - 12) <= 2 * tol  # the two parts' LDi (6 mm each) added
    assert (by[("L2", d2)].ldi_mm, by[("L2", d2)].sdi_mm, by[("L2", d2)].event) == (0.0, 0.0, "disappeared")


def test_measurements_table_marks_the_largest_targets() -> None:
    from pofa.response.tracks import TrackPoint, measurements_table

    d0 = dt.date(2022, 1, 1)
    pts = [TrackPoint(f"L{k}", d0, 10.0 + k, 8.0, "baseline") for k in range(8)]
    pts.append(TrackPoint("L0", dt.date(2022, 2, 1), 0.0, 0.0, "vanished"))
    t = measurements_table("P1", pts)
    assert list(t.columns) == ["patient_id", "lesion_id", "scan_date", "ldi_mm", "sdi_mm", "target",
                              "track_event"]
    baseline = t[t["track_event"] == "baseline"].set_index("lesion_id")["target"]
    assert (baseline == "yes").sum() == 6 and baseline["L0"] == "no" and baseline["L7"] == "yes"
