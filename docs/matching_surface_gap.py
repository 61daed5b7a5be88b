"""Draw docs/matching_surface_gap.png: the gap between two lesions as pofa measures it (voxel faces).

Run ``PYTHONPATH=src python3 docs/matching_surface_gap.py``. One axial slice of a 4 mm grid: a baseline
lesion, and a failure lesion drawn 7 mm beyond its edge (a voxel belongs to a lesion when its centre lies
inside, so the drawn gap is 8 mm). The distance printed in the figure is the one ``match_label_arrays``
returns for these voxels (the surface gap, 8 mm: marginal with the default 10 mm margin); the dashed line
shows the distance between the nearest voxel centres (12 mm: it counts one voxel more, and would call the
lesion de novo).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from pofa.imaging.matching import match_label_arrays  # noqa: E402
from pofa.imaging.volume import Volume  # noqa: E402

VOXEL = 4.0
GAP_MM = 7.0
OUT = Path(__file__).with_suffix(".png")


def main() -> None:
    ny, nx = 9, 14
    centres_x = (np.arange(nx) + 0.5) * VOXEL
    edge = 5 * VOXEL  # the baseline lesion covers x in [4, 20] mm: voxels 1..4
    base_x = (centres_x > VOXEL) & (centres_x < edge)
    fail_x = (centres_x >= edge + GAP_MM) & (centres_x < edge + GAP_MM + 12.0)
    b2 = np.zeros((ny, nx), dtype=np.uint8)
    f2 = np.zeros((ny, nx), dtype=np.uint8)
    b2[2:6, base_x] = 1
    f2[3:6, fail_x] = 1
    b = np.repeat(b2[None], 3, axis=0)  # three slices: the middle one is drawn
    f = np.repeat(f2[None], 3, axis=0)
    aff = Volume.from_spacing(b, spacing=(VOXEL, VOXEL, VOXEL)).affine
    row = match_label_arrays(b, f, aff).followup_lesion(1)
    fb = np.flatnonzero(base_x)[-1]
    ff = np.flatnonzero(fail_x)[0]
    centre_gap = (ff - fb) * VOXEL

    fig, ax = plt.subplots(figsize=(6.4, 3.4), dpi=100)
    for (y, x), v in np.ndenumerate(b2 + 2 * f2):
        colour = {0: "white", 1: "#009E73", 2: "#0072B2"}[int(v)]
        ax.add_patch(
            Rectangle((x * VOXEL, y * VOXEL), VOXEL, VOXEL, facecolor=colour, edgecolor="0.8", lw=0.6)
        )
    y_line = 4.5 * VOXEL
    x0, x1 = (fb + 1) * VOXEL, ff * VOXEL
    ax.annotate("", (x1, y_line), (x0, y_line), arrowprops={"arrowstyle": "<->", "color": "black", "lw": 1.6})
    ax.text((x0 + x1) / 2, 6.4 * VOXEL, f"surface gap {row.distance_mm:.0f} mm ({row.match_class.value})",
            ha="center", va="center", fontsize=9)
    yc = 5.5 * VOXEL
    ax.plot([(fb + 0.5) * VOXEL, (ff + 0.5) * VOXEL], [yc, yc], ls="--", color="#D55E00", lw=1.2)
    ax.plot([(fb + 0.5) * VOXEL, (ff + 0.5) * VOXEL], [yc, yc], "o", color="white", mec="#D55E00", ms=4)
    ax.text((fb + ff + 1) / 2 * VOXEL, 7.6 * VOXEL, f"between voxel centres: {centre_gap:.0f} mm (not used)",
            ha="center", va="center", fontsize=8, color="#D55E00")
    ax.axvline(edge + GAP_MM, color="0.4", lw=0.8, ls=":")
    ax.text(edge + GAP_MM + 0.4, 0.6, f"failure lesion edge, {GAP_MM:g} mm\nfrom the baseline edge",
            fontsize=7, color="0.3", va="top")
    ax.text(1.5 * VOXEL, 1.6 * VOXEL, "baseline lesion", color="#009E73", fontsize=8)
    ax.text(ff * VOXEL, 2.6 * VOXEL, "failure lesion", color="#0072B2", fontsize=8)
    ax.set_xlim(0, nx * VOXEL)
    ax.set_ylim(ny * VOXEL, 0)
    ax.set_aspect("equal")
    ax.set_xlabel("mm (4 mm voxels)")
    ax.set_yticks([])
    ax.set_title("Distance between lesions = gap between their voxel faces", fontsize=10)
    fig.tight_layout()
    fig.savefig(OUT, metadata={"Software": None})
    plt.close(fig)
    print(
        f"wrote {OUT} (surface gap {row.distance_mm:g} mm, {row.match_class.value}; "
        f"centres {centre_gap:g} mm)"
    )


if __name__ == "__main__":
    main()
