"""Per-patient figure: coronal maximum-intensity projections of baseline and failure PET, lesions outlined.

Baseline lesions are outlined by outcome (local failure, no failure, not in the failure scan), failure lesions
by class (local, marginal, de novo, outside the baseline scan), in the Okabe-Ito colour-blind-safe palette.
The functions draw into given axes or return a new :class:`matplotlib.figure.Figure` (never ``plt.show()``; no
pyplot state, so any backend -- Agg on servers -- works).

Orientation: anterior view, patient's head at the top and the patient's right on the viewer's left
(radiological convention); the axes are patient LPS millimetres (x, z).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import NDArray

from pofa.errors import ImagingError
from pofa.imaging.matching import MatchClass, MatchResult
from pofa.imaging.volume import Volume

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["BASELINE_COLOURS", "CLASS_COLOURS", "coronal_mip", "plot_match_mip", "plot_mip"]

#: Okabe-Ito colours (Okabe & Ito 2008), distinguishable with the common colour-vision deficiencies.
CLASS_COLOURS: dict[MatchClass, str] = {
    MatchClass.LOCAL: "#D55E00",  # vermillion
    MatchClass.MARGINAL: "#E69F00",  # orange
    MatchClass.DE_NOVO: "#0072B2",  # blue
    MatchClass.OUTSIDE: "#999999",  # grey
}
BASELINE_COLOURS: dict[str, str] = {
    "local failure": "#D55E00",  # vermillion
    "no failure": "#009E73",  # bluish green
    "not in failure scan": "#999999",
}


def _axes_roles(volume: Volume) -> tuple[int, int, int]:
    """Array axes along patient (left-right, anterior-posterior, inferior-superior)."""
    d = np.abs(volume.direction)  # column a = LPS direction of array axis a
    lr, ap, si = int(np.argmax(d[0])), int(np.argmax(d[1])), int(np.argmax(d[2]))
    if len({lr, ap, si}) != 3:
        raise ImagingError(
            "Cannot tell the image's left-right, front-back and head-foot axes apart (oblique "
            "orientation); resample it to an axial grid first."
        )
    return lr, ap, si


def coronal_mip(volume: Volume) -> tuple[NDArray[Any], tuple[float, float, float, float]]:
    """Maximum-intensity projection along the anterior-posterior axis.

    Returns the 2-D image (rows: head at the top to feet; columns: patient right to patient left) and its
    ``extent`` for ``imshow(origin="upper")`` in LPS mm: ``(x_min_edge, x_max_edge, z_min_edge, z_max_edge)``.
    """
    lr, ap, si = _axes_roles(volume)
    arr = np.asarray(volume.voxels)
    mip = arr.max(axis=ap)
    rest = [a for a in range(3) if a != ap]
    img = np.transpose(mip, (rest.index(si), rest.index(lr)))
    dirs = volume.direction
    if dirs[2, si] > 0:  # index grows toward the head: flip so the head is the first row
        img = img[::-1, :]
    if dirs[0, lr] < 0:  # index grows toward the patient's right: flip so x (toward left) grows to the right
        img = img[:, ::-1]
    return np.ascontiguousarray(img), _extent(volume, lr, si)


def _extent(volume: Volume, lr: int, si: int) -> tuple[float, float, float, float]:
    corners = np.array(
        [
            [i, j, k]
            for i in (0, volume.shape[0] - 1)
            for j in (0, volume.shape[1] - 1)
            for k in (0, volume.shape[2] - 1)
        ],
        dtype=np.float64,
    )
    pts = volume.index_to_lps(corners)
    sp = volume.spacing
    x0, x1 = pts[:, 0].min() - sp[lr] / 2, pts[:, 0].max() + sp[lr] / 2
    z0, z1 = pts[:, 2].min() - sp[si] / 2, pts[:, 2].max() + sp[si] / 2
    return (float(x0), float(x1), float(z0), float(z1))


def _label_projections(labels: Volume) -> dict[int, NDArray[np.bool_]]:
    """Per label, its coronal projection (boolean, same layout as :func:`coronal_mip`)."""
    from scipy import ndimage

    lr, ap, si = _axes_roles(labels)
    arr = np.asarray(labels.voxels)
    if not np.issubdtype(arr.dtype, np.integer):
        arr = np.rint(arr).astype(np.int64)
    dirs = labels.direction
    rest = [a for a in range(3) if a != ap]
    out: dict[int, NDArray[np.bool_]] = {}
    shape2 = (arr.shape[si], arr.shape[lr])
    for lab, sl in enumerate(ndimage.find_objects(arr), start=1):
        if sl is None:
            continue
        proj = (arr[sl] == lab).any(axis=ap)
        full = np.zeros(shape2, dtype=bool)
        sub = np.transpose(proj, (rest.index(si), rest.index(lr)))
        full[sl[si], sl[lr]] = sub
        if dirs[2, si] > 0:
            full = full[::-1, :]
        if dirs[0, lr] < 0:
            full = full[:, ::-1]
        out[lab] = full
    return out


def plot_mip(
    ax: Axes,
    pet: Volume,
    labels: Volume | None = None,
    colours: Mapping[int, str] | None = None,
    vmax: float | None = None,
    title: str = "",
) -> None:
    """Draw a coronal PET MIP on ``ax`` (inverted grey, 0 to ``vmax``), each label outlined in its colour."""
    img, extent = coronal_mip(pet)
    top = float(vmax) if vmax is not None else float(np.percentile(img, 99.5)) or 1.0
    ax.imshow(
        img,
        cmap="gray_r",
        vmin=0.0,
        vmax=top,
        extent=extent,
        origin="upper",
        interpolation="nearest",
        aspect="equal",
    )
    if labels is not None:
        if not labels.same_grid(pet):
            from pofa.imaging.registration import resample_volume

            labels = resample_volume(labels, pet, None, "nearest")
        xs = np.linspace(extent[0], extent[1], img.shape[1] + 1)
        zs = np.linspace(extent[3], extent[2], img.shape[0] + 1)
        xc, zc = (xs[:-1] + xs[1:]) / 2, (zs[:-1] + zs[1:]) / 2
        for lab, proj in _label_projections(labels).items():
            colour = (colours or {}).get(lab, "#000000")
            padded = np.pad(proj.astype(float), 1)
            xp = np.concatenate(([xc[0] - (xc[1] - xc[0])], xc, [xc[-1] + (xc[1] - xc[0])]))
            zp = np.concatenate(([zc[0] - (zc[1] - zc[0])], zc, [zc[-1] + (zc[1] - zc[0])]))
            ax.contour(xp, zp, padded, levels=[0.5], colors=[colour], linewidths=1.2)
    ax.set_xlabel("x (mm, patient right to left)")
    ax.set_ylabel("z (mm, feet to head)")
    if title:
        ax.set_title(title)


def plot_match_mip(
    result: MatchResult,
    baseline_pet: Volume,
    followup_pet: Volume,
    baseline_labels: Volume,
    followup_labels: Volume,
    axes: Sequence[Axes] | None = None,
    vmax: float | None = None,
    title: str = "",
) -> Figure:
    """Baseline and failure coronal PET MIPs side by side, lesions outlined and coloured by outcome/class.

    Parameters
    ----------
    result : MatchResult
        The match of ``baseline_labels`` and ``followup_labels`` (same label numbers).
    baseline_pet, followup_pet : Volume
        PET of each scan (SUV); each label map is resampled onto its PET's grid if needed.
    baseline_labels, followup_labels : Volume
        Lesion label maps of each scan, in that scan's own space.
    axes : sequence of two Axes, optional
        Where to draw; by default a new Figure (no pyplot) with two panels.
    vmax : float, optional
        Top of the grey scale, shared by both panels (default: the baseline MIP's 99.5th percentile).
    title : str
        Figure title (e.g. the patient id).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    if axes is None:
        fig = Figure(figsize=(9.0, 6.0), layout="constrained")
        ax_b, ax_f = fig.subplots(1, 2)
    else:
        if len(axes) != 2:
            raise ImagingError(f"plot_match_mip needs two axes (baseline, failure); got {len(axes)}.")
        ax_b, ax_f = axes[0], axes[1]
        fig = cast("Figure", ax_b.figure)
    if vmax is None:
        vmax = float(np.percentile(coronal_mip(baseline_pet)[0], 99.5)) or 1.0
    b_col: dict[int, str] = {}
    for b in result.baseline:
        key = ("local failure" if b.failed else "no failure") if b.in_followup_scan else "not in failure scan"
        b_col[b.baseline_label] = BASELINE_COLOURS[key]
    f_col = {r.followup_label: CLASS_COLOURS[r.match_class] for r in result.followup}
    plot_mip(ax_b, baseline_pet, baseline_labels, b_col, vmax, "Baseline")
    plot_mip(ax_f, followup_pet, followup_labels, f_col, vmax, "Failure")
    # legends below the panels, so that they never hide a lesion
    ax_b.legend(
        handles=[Line2D([], [], color=c, lw=2, label=k) for k, c in BASELINE_COLOURS.items()],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12),
        ncol=2,
        fontsize="small",
        frameon=False,
    )
    ax_f.legend(
        handles=[Line2D([], [], color=c, lw=2, label=k.value) for k, c in CLASS_COLOURS.items()],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12),
        ncol=2,
        fontsize="small",
        frameon=False,
    )
    if title:
        fig.suptitle(title)
    return fig
