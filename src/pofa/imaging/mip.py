"""Per-patient figure: coronal maximum-intensity projections of baseline and failure PET, lesions outlined.

Baseline lesions are outlined by outcome (local failure, no failure, not in the failure scan), failure lesions
by class (local, marginal, de novo, outside the baseline scan), in the Okabe-Ito colour-blind-safe palette.
The functions draw into given axes or return a new :class:`matplotlib.figure.Figure` (never ``plt.show()``; no
pyplot state, so any backend -- Agg on servers -- works).

The figure is made in two steps, so that it can be drawn long after the images are gone (the study report):

1. :func:`match_mip` computes what the figure shows -- a :class:`MatchMip`: per panel the projection (the
   256 grey levels of the colour map, from 0 to a shared SUV maximum), its extent in mm, and each lesion's
   projected mask with its outcome or class and colour, plus how the scans were registered and matched.
   :meth:`MatchMip.to_json` stores it as plain JSON (images zlib-compressed, base64);
   :meth:`MatchMip.from_json` reads it back exactly.
2. :func:`draw_match_mip` draws a :class:`MatchMip`. :func:`plot_match_mip` does both.

Orientation: anterior view, patient's head at the top and the patient's right on the viewer's left
(radiological convention); the axes are patient LPS millimetres (x, z).
"""

from __future__ import annotations

import base64
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import NDArray

from pofa.errors import ImagingError
from pofa.imaging.matching import MatchClass, MatchResult
from pofa.imaging.volume import Volume

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "BASELINE_COLOURS",
    "CLASS_COLOURS",
    "MIP_FORMAT",
    "MatchMip",
    "MipOutline",
    "MipPanel",
    "coronal_mip",
    "draw_match_mip",
    "match_mip",
    "mip_panel",
    "plot_match_mip",
    "plot_mip",
    "plot_mip_panel",
]

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
#: Version of the JSON written by :meth:`MatchMip.to_json`.
MIP_FORMAT = 1
#: Grey levels of a stored projection: level ``q = min(floor(256 v / vmax), 255)`` (v clipped to 0..vmax),
#: which is the entry of a 256-colour matplotlib map that ``imshow(v, vmin=0, vmax=vmax)`` picks for ``v``;
#: drawn with ``vmin=-0.5, vmax=255.5`` it gets that same entry. So the stored image draws exactly as the
#: floating-point projection does.
_LEVELS = 256
#: Upsampling of a lesion mask before its outline is traced (see :func:`plot_mip_panel`).
_UP = 4


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

    Parameters
    ----------
    volume : Volume
        The image projected (e.g. SUV).

    Returns
    -------
    tuple of (numpy.ndarray, tuple of float)
        The 2-D image (rows: head at the top to feet; columns: patient right to patient left) and its
        ``extent`` for ``imshow(origin="upper")`` in LPS mm: ``(x_min_edge, x_max_edge, z_min_edge,
        z_max_edge)``.
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


def _label_projections(labels: Volume) -> dict[int, tuple[int, int, NDArray[np.bool_]]]:
    """Per label, its coronal projection cropped to its box: ``(top row, left column, mask)`` in the layout
    of :func:`coronal_mip`."""
    from scipy import ndimage

    lr, ap, si = _axes_roles(labels)
    arr = np.asarray(labels.voxels)
    if not np.issubdtype(arr.dtype, np.integer):
        arr = np.rint(arr).astype(np.int64)
    dirs = labels.direction
    rest = [a for a in range(3) if a != ap]
    flip_rows = dirs[2, si] > 0
    flip_cols = dirs[0, lr] < 0
    n_rows, n_cols = arr.shape[si], arr.shape[lr]
    out: dict[int, tuple[int, int, NDArray[np.bool_]]] = {}
    for lab, sl in enumerate(ndimage.find_objects(arr), start=1):
        if sl is None:
            continue
        proj = (arr[sl] == lab).any(axis=ap)
        sub = np.transpose(proj, (rest.index(si), rest.index(lr)))
        top, left = sl[si].start, sl[lr].start
        if flip_rows:
            sub, top = sub[::-1, :], n_rows - sl[si].stop
        if flip_cols:
            sub, left = sub[:, ::-1], n_cols - sl[lr].stop
        out[lab] = (int(top), int(left), np.ascontiguousarray(sub))
    return out


# ---------------------------------------------------------------------------------------------- data
def _frozen(a: NDArray[Any]) -> NDArray[Any]:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def _pack(a: NDArray[Any]) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(a).tobytes(), 9)).decode("ascii")


def _unpack(text: str, dtype: Any, count: int) -> NDArray[Any]:
    try:
        raw = zlib.decompress(base64.b64decode(text.encode("ascii"), validate=True))
    except (ValueError, zlib.error) as exc:
        raise ImagingError(f"The stored figure data are damaged ({exc}); build the study again.") from None
    a = np.frombuffer(raw, dtype=dtype)
    if a.size != count:
        raise ImagingError("The stored figure data are damaged (wrong size); build the study again.")
    return a


@dataclass(frozen=True, slots=True, eq=False)
class MipOutline:
    """One lesion's outline on a projection: its label, what it is, its colour and its projected mask.

    ``mask`` (read-only, boolean) covers image rows ``top .. top + h`` and columns ``left .. left + w``.
    """

    label: int
    outcome: str
    colour: str
    top: int
    left: int
    mask: NDArray[np.bool_]

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask", _frozen(np.asarray(self.mask, dtype=bool)))

    def to_json(self) -> dict[str, Any]:
        """Plain JSON of the outline.

        Returns
        -------
        dict of {str: object}
            The fields by name (the mask as run-length rows).
        """
        h, w = self.mask.shape
        return {
            "label": int(self.label),
            "outcome": self.outcome,
            "colour": self.colour,
            "top": int(self.top),
            "left": int(self.left),
            "shape": [int(h), int(w)],
            "mask": _pack(np.packbits(self.mask, axis=None)),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> MipOutline:
        """Read :meth:`to_json` output.

        Parameters
        ----------
        d : mapping of {str: object}
            The JSON object.

        Returns
        -------
        MipOutline
            The outline.
        """
        h, w = (int(v) for v in d["shape"])
        bits = _unpack(str(d["mask"]), np.uint8, (h * w + 7) // 8)
        mask = np.unpackbits(bits, count=h * w).astype(bool).reshape(h, w)
        return cls(int(d["label"]), str(d["outcome"]), str(d["colour"]), int(d["top"]), int(d["left"]), mask)


@dataclass(frozen=True, slots=True, eq=False)
class MipPanel:
    """One panel: a coronal projection in 256 grey levels and the outlines.

    Attributes
    ----------
    title : str
        Panel title (``Baseline``, ``Failure``).
    image : ndarray of uint8, (rows, columns)
        The projection, head at the top, patient's right on the left (read-only).
    vmax : float
        Top of the grey scale (SUV): values from ``vmax * 255 / 256`` up are level 255.
    extent : tuple of 4 float
        ``(x_min_edge, x_max_edge, z_min_edge, z_max_edge)`` in LPS mm.
    outlines : tuple of MipOutline
        One per lesion, by label.
    """

    title: str
    image: NDArray[np.uint8]
    vmax: float
    extent: tuple[float, float, float, float]
    outlines: tuple[MipOutline, ...]

    def __post_init__(self) -> None:
        img = np.asarray(self.image)
        if img.ndim != 2 or img.dtype != np.uint8:
            raise ImagingError(f"A projection must be a 2-D uint8 image; got {img.dtype} {img.shape}.")
        object.__setattr__(self, "image", _frozen(img))
        object.__setattr__(self, "extent", tuple(float(v) for v in self.extent))
        object.__setattr__(self, "outlines", tuple(self.outlines))

    def outcomes(self) -> dict[int, str]:
        """Label -> outcome (baseline) or class (failure) as drawn.

        Returns
        -------
        dict of {int: str}
            Label -> outcome (baseline) or class (failure) as drawn.
        """
        return {o.label: o.outcome for o in self.outlines}

    def to_json(self) -> dict[str, Any]:
        """Plain JSON of the panel.

        Returns
        -------
        dict of {str: object}
            The fields by name.
        """
        h, w = self.image.shape
        return {
            "title": self.title,
            "shape": [int(h), int(w)],
            "image": _pack(self.image),
            "vmax": float(self.vmax),
            "extent": [float(v) for v in self.extent],
            "outlines": [o.to_json() for o in self.outlines],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> MipPanel:
        """Read :meth:`to_json` output.

        Parameters
        ----------
        d : mapping of {str: object}
            The JSON object.

        Returns
        -------
        MipPanel
            The panel.
        """
        h, w = (int(v) for v in d["shape"])
        image = _unpack(str(d["image"]), np.uint8, h * w).reshape(h, w)
        ext = tuple(float(v) for v in d["extent"])
        return cls(
            str(d["title"]),
            image,
            float(d["vmax"]),
            (ext[0], ext[1], ext[2], ext[3]),
            tuple(MipOutline.from_json(o) for o in d["outlines"]),
        )


@dataclass(frozen=True, slots=True, eq=False)
class MatchMip:
    """What the baseline-and-failure figure of one patient shows (see :func:`match_mip`).

    Attributes
    ----------
    baseline, failure : MipPanel
        The two panels; baseline outlines carry the outcome (``local failure``, ``no failure``, ``not in
        failure scan``), failure outlines the :class:`~pofa.imaging.matching.MatchClass` value.
    registration : str
        How the failure scan was brought to baseline space, in words (method, body-mask Dice; no file
        names).
    tolerance_mm, margin_mm : float
        Local tolerance and marginal margin of the matching.
    baseline_date, failure_date : str
        Scan dates (``YYYY-MM-DD``; "" when unknown). Reports show them only when identifiers are shown.
    """

    baseline: MipPanel
    failure: MipPanel
    registration: str
    tolerance_mm: float
    margin_mm: float
    baseline_date: str = ""
    failure_date: str = ""

    def counts(self) -> dict[str, dict[str, int]]:
        """Count lesions per outcome (baseline) and per class (failure), every key present.

        Returns
        -------
        dict of {str: dict of {str: int}}
            ``{"baseline": {outcome: n}, "failure": {class: n}}``.
        """
        b = {k: 0 for k in BASELINE_COLOURS}
        for o in self.baseline.outlines:
            b[o.outcome] = b.get(o.outcome, 0) + 1
        f = {c.value: 0 for c in MatchClass}
        for o in self.failure.outlines:
            f[o.outcome] = f.get(o.outcome, 0) + 1
        return {"baseline": b, "failure": f}

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (exact: :meth:`from_json` gives back the same data).

        Returns
        -------
        dict of {str: object}
            Plain JSON (exact: :meth:`from_json` gives back the same data).
        """
        return {
            "format": MIP_FORMAT,
            "baseline": self.baseline.to_json(),
            "failure": self.failure.to_json(),
            "registration": self.registration,
            "tolerance_mm": float(self.tolerance_mm),
            "margin_mm": float(self.margin_mm),
            "baseline_date": self.baseline_date,
            "failure_date": self.failure_date,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> MatchMip:
        """Read :meth:`to_json` output.

        Parameters
        ----------
        d : mapping of {str: object}
            The JSON object.

        Returns
        -------
        MatchMip
            The figure data.

        Raises
        ------
        pofa.errors.ImagingError
            For another format.
        """
        if not isinstance(d, Mapping) or d.get("format") != MIP_FORMAT:
            got = d.get("format") if isinstance(d, Mapping) else type(d).__name__
            raise ImagingError(
                f"The stored figure data have format {got!r}; this pofa reads format {MIP_FORMAT}. Build the "
                "study again with this version."
            )
        try:
            return cls(
                MipPanel.from_json(d["baseline"]),
                MipPanel.from_json(d["failure"]),
                str(d["registration"]),
                float(d["tolerance_mm"]),
                float(d["margin_mm"]),
                str(d.get("baseline_date", "")),
                str(d.get("failure_date", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ImagingError(
                f"The stored figure data are incomplete ({exc}); build the study again."
            ) from None


def mip_panel(
    pet: Volume,
    labels: Volume | None = None,
    outcomes: Mapping[int, str] | None = None,
    colours: Mapping[int, str] | None = None,
    vmax: float | None = None,
    title: str = "",
) -> MipPanel:
    """One panel: the coronal MIP of ``pet`` and the projection of each lesion of ``labels``.

    Parameters
    ----------
    pet : Volume
        PET (SUV).
    labels : Volume, optional
        Lesion label map (resampled onto the PET grid by nearest neighbour if it is on another grid).
    outcomes : mapping, optional
        Label -> what the lesion is (outcome or class); default "".
    colours : mapping, optional
        Label -> outline colour; default black.
    vmax : float, optional
        SUV of the top grey level (default: the projection's 99.5th percentile, or 1 when that is 0).
    title : str
        Panel title.

    Returns
    -------
    MipPanel
        The projection in 256 grey levels with one outline per lesion.
    """
    img, extent = coronal_mip(pet)
    img = np.asarray(img, dtype=np.float64)
    top = float(vmax) if vmax is not None else float(np.percentile(img, 99.5))
    if not (math.isfinite(top) and top > 0):
        top = 1.0
    scaled = np.clip(np.nan_to_num(img, nan=0.0) / top, 0.0, 1.0) * _LEVELS
    grey = np.minimum(np.floor(scaled), _LEVELS - 1).astype(np.uint8)
    outlines: list[MipOutline] = []
    if labels is not None:
        if not labels.same_grid(pet):
            from pofa.imaging.matching import resample_label_map

            labels = resample_label_map(labels, pet)
        for lab, (r0, c0, mask) in sorted(_label_projections(labels).items()):
            outlines.append(
                MipOutline(
                    lab,
                    (outcomes or {}).get(lab, ""),
                    (colours or {}).get(lab, "#000000"),
                    r0,
                    c0,
                    mask,
                )
            )
    return MipPanel(title, grey, top, extent, tuple(outlines))


def match_mip(
    result: MatchResult,
    baseline_pet: Volume,
    followup_pet: Volume,
    baseline_labels: Volume,
    followup_labels: Volume,
    vmax: float | None = None,
    *,
    baseline_date: str = "",
    failure_date: str = "",
) -> MatchMip:
    """What the baseline-and-failure figure shows: both projections, each lesion's outcome or class.

    Parameters
    ----------
    result : MatchResult
        The match of ``baseline_labels`` and ``followup_labels`` (same label numbers).
    baseline_pet, followup_pet : Volume
        PET of each scan (SUV); each label map is resampled onto its PET's grid if needed.
    baseline_labels, followup_labels : Volume
        Lesion label maps of each scan, in that scan's own space.
    vmax : float, optional
        Top of the grey scale, shared by both panels (default: the baseline MIP's 99.5th percentile).
    baseline_date, failure_date : str
        Scan dates to keep with the data (shown by reports only with identifiers).

    Returns
    -------
    MatchMip
        Both panels with each lesion's outcome (baseline) or class (failure), and the scan dates.
    """
    if vmax is None:
        vmax = float(np.percentile(coronal_mip(baseline_pet)[0], 99.5))
        if not (math.isfinite(vmax) and vmax > 0):
            vmax = 1.0
    b_out: dict[int, str] = {}
    for b in result.baseline:
        b_out[b.baseline_label] = (
            ("local failure" if b.failed else "no failure") if b.in_followup_scan else "not in failure scan"
        )
    f_out = {r.followup_label: r.match_class.value for r in result.followup}
    b_col = {k: BASELINE_COLOURS[v] for k, v in b_out.items()}
    f_col = {k: CLASS_COLOURS[MatchClass(v)] for k, v in f_out.items()}
    base = mip_panel(baseline_pet, baseline_labels, b_out, b_col, vmax, "Baseline")
    fail = mip_panel(followup_pet, followup_labels, f_out, f_col, vmax, "Failure")
    reg = _registration_text(result)
    return MatchMip(base, fail, reg, result.tolerance_mm, result.margin_mm, baseline_date, failure_date)


def _registration_text(result: MatchResult) -> str:
    """How the failure scan was brought to baseline space, in words, without file names (a transform file's
    name may hold a patient identifier, and the text goes into reports)."""
    reg = result.registration
    if reg is None:
        return "none (the two scans were taken to share scanner coordinates)."
    if reg.stages in (("precomputed",), ("given",)):
        t = reg.transform
        name = t.Downcast().GetName() if hasattr(t, "Downcast") else t.GetName()
        given = reg.stages == ("given",)
        what = "a transform given by the caller" if given else "a precomputed transform"
        text = f"{what} ({name})."
    else:
        text = reg.method
    if not math.isnan(reg.body_dice_after):
        text += (
            f" Body-mask Dice {reg.body_dice_before:.3f} before and {reg.body_dice_after:.3f} after "
            "registration."
        )
    return text


# ---------------------------------------------------------------------------------------------- drawing
def plot_mip_panel(ax: Axes, panel: MipPanel) -> dict[int, str]:
    """Draw a panel on ``ax``: the projection in inverted grey, each lesion outlined in its colour.

    Each outline is one contour set whose SVG id (``gid``) is ``lesion:<title>:<label>:<outcome>`` (title in
    lower case, spaces of the outcome as ``_``, e.g. ``lesion:failure:7:de_novo``), so the SVG file says which
    lesion each outline is. Returns label -> colour drawn.

    Parameters
    ----------
    ax : Axes
        The axes drawn on.
    panel : MipPanel
        The panel drawn.

    Returns
    -------
    dict of {int: str}
        Label -> colour drawn.
    """
    img = panel.image
    extent = panel.extent
    ax.imshow(
        img,
        cmap="gray_r",
        vmin=-0.5,
        vmax=_LEVELS - 0.5,
        extent=extent,
        origin="upper",
        interpolation="nearest",
        aspect="equal",
    )
    n_rows, n_cols = img.shape
    dx = (extent[1] - extent[0]) / n_cols
    dz = (extent[3] - extent[2]) / n_rows
    drawn: dict[int, str] = {}
    for o in panel.outlines:
        # the mask upsampled 4 x (and padded): the 0.5 contour then follows the voxel edges, cutting only a
        # quarter voxel at each corner, instead of running through the voxel centres
        up = np.pad(np.kron(o.mask, np.ones((_UP, _UP))), 1)
        h, w = up.shape
        xs = extent[0] + o.left * dx + (np.arange(w) - 0.5) * (dx / _UP)
        zs = extent[3] - o.top * dz - (np.arange(h) - 0.5) * (dz / _UP)
        cs = ax.contour(xs, zs, up, levels=[0.5], colors=[o.colour], linewidths=1.2)
        cs.set_gid(f"lesion:{panel.title.lower()}:{o.label}:{o.outcome.replace(' ', '_')}")
        drawn[o.label] = o.colour
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("x (mm, patient right to left)")
    ax.set_ylabel("z (mm, feet to head)")
    if panel.title:
        ax.set_title(panel.title)
    return drawn


def plot_mip(
    ax: Axes,
    pet: Volume,
    labels: Volume | None = None,
    colours: Mapping[int, str] | None = None,
    vmax: float | None = None,
    title: str = "",
) -> None:
    """Draw a coronal PET MIP on ``ax`` (inverted grey, 0 to ``vmax``), each label outlined in its colour.

    Parameters
    ----------
    ax : Axes
        The axes drawn on.
    pet : Volume
        PET (SUV).
    labels : Volume or None, optional
        Lesion label map outlined.
    colours : mapping of {int: str} or None, optional
        Label -> outline colour; default black.
    vmax : float or None, optional
        SUV of the top grey level.
    title : str, optional
        Panel title.
    """
    plot_mip_panel(ax, mip_panel(pet, labels, None, colours, vmax, title))


def draw_match_mip(mip: MatchMip, axes: Sequence[Axes] | None = None, title: str = "") -> Figure:
    """Draw a :class:`MatchMip`: baseline and failure side by side, legends below the panels.

    Parameters
    ----------
    mip : MatchMip
        From :func:`match_mip` (or :meth:`MatchMip.from_json`).
    axes : sequence of two Axes, optional
        Where to draw; by default a new Figure (no pyplot) with two panels.
    title : str
        Figure title (e.g. the patient's study number).

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on (the one of ``axes`` when given).

    Raises
    ------
    ImagingError
        When ``axes`` is not two axes (baseline, failure).
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
    plot_mip_panel(ax_b, mip.baseline)
    plot_mip_panel(ax_f, mip.failure)
    # legends below the panels (under the x label), so that they never hide a lesion
    for ax, handles in (
        (ax_b, [Line2D([], [], color=c, lw=2, label=k) for k, c in BASELINE_COLOURS.items()]),
        (ax_f, [Line2D([], [], color=c, lw=2, label=k.value) for k, c in CLASS_COLOURS.items()]),
    ):
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            borderaxespad=4.0,
            ncol=2,
            fontsize="small",
            frameon=False,
        )
    if title:
        fig.suptitle(title)
    return fig


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

    ``draw_match_mip(match_mip(result, ...), axes, title)``; see :func:`match_mip` and :func:`draw_match_mip`.

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
        The figure drawn on (the one of ``axes`` when given).

    Raises
    ------
    ImagingError
        When given axes are not two (baseline, failure).
    """
    if axes is not None and len(axes) != 2:
        raise ImagingError(f"plot_match_mip needs two axes (baseline, failure); got {len(axes)}.")
    mip = match_mip(result, baseline_pet, followup_pet, baseline_labels, followup_labels, vmax)
    return draw_match_mip(mip, axes, title)
