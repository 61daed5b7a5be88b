"""Analytic PET/CT phantoms with lesions, rendered at baseline and at follow-up through a known deformation.

Everything is defined in *baseline anatomy* coordinates (LPS mm). A follow-up image is rendered by mapping
each follow-up voxel centre ``q`` to the anatomy point ``p = G(q)`` with a known map ``G`` (follow-up ->
baseline) and evaluating the anatomy there, so there is no resampling blur and the true registration
transform is ``G^-1`` (baseline -> follow-up, the direction ITK registration estimates). Labels are rendered
exactly (a voxel belongs to a lesion when its mapped centre lies inside it); CT and PET have soft edges
(logistic, 1.5 mm) so that registration metrics are smooth; a smooth texture inside the body makes
deformations observable away from
organ edges.

The lesion scenario (:func:`scenario`) has a lesion that grows, one that shrinks, one that splits in two, two
that merge, one that vanishes, one unchanged, two new distant lesions and one new lesion a few mm from a
baseline lesion (marginal). The expected class, attribution and one-to-one identity of every follow-up
lesion are listed with it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from numpy.typing import NDArray

from pofa.imaging.volume import Volume

PointMap = Callable[[NDArray[np.float64]], NDArray[np.float64]]
EDGE_MM = 1.5


@dataclass(frozen=True)
class Ellipsoid:
    """An ellipsoid in anatomy coordinates with a CT value (HU) and a PET value (SUV)."""

    centre: tuple[float, float, float]
    radii: tuple[float, float, float]
    hu: float
    suv: float

    def signed_mm(self, p: NDArray[np.float64]) -> NDArray[np.float64]:
        """Approximate signed distance in mm (negative inside)."""
        d = (p - np.asarray(self.centre)) / np.asarray(self.radii)
        return (np.sqrt(np.sum(d * d, axis=-1)) - 1.0) * min(self.radii)


@dataclass(frozen=True)
class Sphere:
    """A lesion: a ball (centre in LPS mm, radius in mm)."""

    label: int
    centre: tuple[float, float, float]
    radius: float


# Body and organs (values: HU, SUV). Left/right and anterior/posterior asymmetric so rotations are observable.
ANATOMY: tuple[Ellipsoid, ...] = (
    Ellipsoid((0.0, 0.0, 0.0), (105.0, 75.0, 125.0), 20.0, 1.0),  # body (soft tissue)
    Ellipsoid((-45.0, -5.0, 55.0), (30.0, 38.0, 48.0), -800.0, 0.4),  # right lung (patient right = -x)
    Ellipsoid((45.0, -5.0, 58.0), (27.0, 36.0, 45.0), -800.0, 0.4),  # left lung
    Ellipsoid((15.0, -30.0, 45.0), (28.0, 24.0, 26.0), 40.0, 3.0),  # heart (anterior, left)
    Ellipsoid((-40.0, 0.0, -10.0), (45.0, 40.0, 30.0), 60.0, 2.2),  # liver (right)
    Ellipsoid((55.0, 15.0, -5.0), (18.0, 15.0, 25.0), 50.0, 1.8),  # spleen (left, posterior)
    Ellipsoid((0.0, 50.0, 0.0), (12.0, 12.0, 120.0), 600.0, 1.2),  # spine (posterior)
    Ellipsoid((-25.0, 35.0, -45.0), (12.0, 10.0, 20.0), 35.0, 2.0),  # right kidney
    Ellipsoid((30.0, 38.0, -40.0), (12.0, 10.0, 20.0), 35.0, 2.0),  # left kidney
    Ellipsoid((0.0, -20.0, -100.0), (25.0, 20.0, 18.0), 10.0, 6.0),  # bladder
)
AIR_HU = -1000.0
# Tissue texture: a fixed sum of plane waves (wavelengths 15-50 mm) inside the body, so that a deformation is
# observable everywhere and not only at organ edges (real CT/PET have such texture). Amplitudes: 40 HU, 0.25
# SUV.
_TEX_RNG = np.random.default_rng(7)
_TEX_DIRS = _TEX_RNG.normal(size=(40, 3))
_TEX_DIRS /= np.linalg.norm(_TEX_DIRS, axis=1, keepdims=True)
_TEX_K = (2.0 * np.pi / _TEX_RNG.uniform(15.0, 50.0, size=40))[:, None] * _TEX_DIRS
_TEX_PHASE = _TEX_RNG.uniform(0.0, 2.0 * np.pi, size=40)
TEXTURE_HU = 40.0
TEXTURE_SUV = 0.25


def texture(p: NDArray[np.float64]) -> NDArray[np.float64]:
    """A deterministic smooth texture with unit standard deviation, evaluated at LPS points (n, 3)."""
    return np.cos(p @ _TEX_K.T + _TEX_PHASE).sum(axis=1) / np.sqrt(20.0)


LESION_HU = 45.0
LESION_SUV = 8.0


def _smooth_inside(signed: NDArray[np.float64]) -> NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(np.clip(signed / (EDGE_MM / 2.0), -50, 50)))


def grid_points(
    shape: tuple[int, int, int], spacing: tuple[float, float, float], origin: tuple[float, float, float]
) -> tuple[Volume, NDArray[np.float64]]:
    """An empty volume with the default axial direction and the LPS centres of its voxels, shape (n, 3)."""
    vol = Volume.from_spacing(np.zeros(shape, dtype=np.uint8), spacing=spacing, origin=origin)
    idx = np.indices(shape, dtype=np.float64).reshape(3, -1).T
    return vol, vol.index_to_lps(idx)


def render(
    grid: Volume, pts_lps: NDArray[np.float64], spheres: tuple[Sphere, ...], g: PointMap | None = None
) -> tuple[Volume, Volume, Volume]:
    """CT (HU), PET (SUV) and lesion labels on ``grid``, the anatomy seen through ``g`` (None = identity)."""
    p = pts_lps if g is None else g(pts_lps)
    ct = np.full(p.shape[0], AIR_HU)
    pet = np.zeros(p.shape[0])
    for i, e in enumerate(ANATOMY):
        w = _smooth_inside(e.signed_mm(p))
        if i == 0:
            ct = AIR_HU + w * (e.hu - AIR_HU)
            pet = w * e.suv
        else:
            ct = ct + w * (e.hu - ct)
            pet = pet + w * (e.suv - pet)
    inside = _smooth_inside(ANATOMY[0].signed_mm(p))
    tex = texture(p) * inside
    ct = ct + TEXTURE_HU * tex
    pet = np.maximum(pet + TEXTURE_SUV * tex, 0.0)
    labels = np.zeros(p.shape[0], dtype=np.uint16)
    for s in spheres:
        r = np.linalg.norm(p - np.asarray(s.centre), axis=1)
        w = _smooth_inside(r - s.radius)
        ct = ct + w * (LESION_HU - ct)
        pet = pet + w * (LESION_SUV - pet)
        labels[r <= s.radius] = s.label
    shape = grid.shape
    aff = grid.affine
    return (
        Volume(ct.reshape(shape).astype(np.float32), aff, "HU"),
        Volume(pet.reshape(shape).astype(np.float32), aff, "SUVbw"),
        Volume(labels.reshape(shape), aff, "label"),
    )


# ---------------------------------------------------------------------------------------------- known maps
def rotation(rx_deg: float, ry_deg: float, rz_deg: float) -> NDArray[np.float64]:
    """Rotation matrix R = Rz @ Ry @ Rx (angles in degrees)."""
    ax, ay, az = np.radians([rx_deg, ry_deg, rz_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass(frozen=True)
class KnownMap:
    """``G``: follow-up LPS -> baseline anatomy LPS, ``p = R q + t + u(q)`` with a smooth displacement ``u``.

    ``amplitude_mm`` = 0 gives a rigid map. ``u`` is a sum of sinusoids with wavelength ``wavelength_mm``.
    """

    rot_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    amplitude_mm: float = 0.0
    wavelength_mm: float = 220.0
    _r: NDArray[np.float64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_r", rotation(*self.rot_deg))

    def displacement(self, q: NDArray[np.float64]) -> NDArray[np.float64]:
        k = 2.0 * np.pi / self.wavelength_mm
        x, y, z = q[:, 0], q[:, 1], q[:, 2]
        a = self.amplitude_mm
        return np.stack(
            [
                a * np.sin(k * z + 0.3) * np.cos(k * y),
                0.6 * a * np.sin(k * x + 1.1),
                0.8 * a * np.cos(k * x) * np.sin(k * y + 0.5),
            ],
            axis=1,
        )

    def __call__(self, q: NDArray[np.float64]) -> NDArray[np.float64]:
        q = np.atleast_2d(np.asarray(q, dtype=np.float64))
        return q @ self._r.T + np.asarray(self.shift_mm) + self.displacement(q)

    def inverse(self, p: NDArray[np.float64], iterations: int = 40) -> NDArray[np.float64]:
        """``G^-1(p)``: the follow-up point whose anatomy is ``p`` (fixed-point iteration; exact if rigid)."""
        p = np.atleast_2d(np.asarray(p, dtype=np.float64))
        q = (p - np.asarray(self.shift_mm)) @ self._r  # R^-1 = R^T
        for _ in range(iterations):
            q = (p - np.asarray(self.shift_mm) - self.displacement(q)) @ self._r
        return q

    def truth_transform(self, reference: Volume) -> sitk.Transform:
        """The true baseline -> follow-up transform as SimpleITK (affine when rigid, else a displacement field
        sampled on ``reference``'s grid)."""
        if self.amplitude_mm == 0.0:
            rinv = self._r.T
            t = sitk.AffineTransform(3)
            t.SetMatrix([float(v) for v in rinv.ravel()])
            t.SetTranslation([float(v) for v in (-rinv @ np.asarray(self.shift_mm))])
            return t
        # the field is smooth (wavelength 220 mm): sampling it every 2 voxels, one sample beyond each edge,
        # interpolates it to < 0.05 mm
        shape = tuple(int(np.ceil(n / 2)) + 3 for n in reference.shape)
        grid = Volume(
            np.zeros(shape, dtype=np.uint8), reference.affine @ np.diag([2.0, 2.0, 2.0, 1.0]) @ _shift(-0.5)
        )
        idx = np.indices(shape, dtype=np.float64).reshape(3, -1).T
        p = grid.index_to_lps(idx)
        disp = (self.inverse(p) - p).reshape(*shape, 3)
        img = sitk.GetImageFromArray(disp.astype(np.float64), isVector=True)
        img.CopyInformation(grid.to_sitk())
        return sitk.DisplacementFieldTransform(img)


def _shift(by: float) -> NDArray[np.float64]:
    m = np.eye(4)
    m[:3, 3] = by
    return m


# ---------------------------------------------------------------------------------------------- lesion
# scenario
@dataclass(frozen=True)
class Expected:
    """Expected outcome for one follow-up lesion."""

    match_class: str
    baseline_label: int | None
    assigned: bool
    group: frozenset[int]  # baseline labels in its group


BASELINE_LESIONS: tuple[Sphere, ...] = (
    Sphere(1, (-30.0, -40.0, 80.0), 10.0),  # grows
    Sphere(2, (-45.0, 5.0, -15.0), 14.0),  # shrinks (in the liver)
    Sphere(3, (10.0, 20.0, 20.0), 15.0),  # splits in two
    Sphere(4, (-15.0, 20.0, -60.0), 9.0),  # merges with 5
    Sphere(5, (11.0, 20.0, -60.0), 9.0),
    Sphere(6, (60.0, 10.0, 40.0), 10.0),  # vanishes
    Sphere(7, (40.0, -45.0, -60.0), 8.0),  # unchanged
)

FOLLOWUP_LESIONS: tuple[Sphere, ...] = (
    Sphere(1, (-30.0, -40.0, 80.0), 14.0),
    Sphere(2, (-45.0, 5.0, -15.0), 8.0),
    Sphere(3, (0.0, 20.0, 20.0), 6.5),  # split part, larger
    Sphere(4, (21.0, 20.0, 20.0), 5.0),  # split part, smaller; the gap between the parts is 9.5 mm
    Sphere(5, (-4.0, 20.0, -60.0), 17.0),  # covers 4 (more) and 5: a merge
    Sphere(6, (40.0, -45.0, -60.0), 8.0),
    Sphere(7, (-60.0, -25.0, -75.0), 8.0),  # new, far from every baseline lesion
    Sphere(8, (45.0, 25.0, -35.0), 7.0),  # new, far
    Sphere(9, (40.0, -45.0, -78.5), 4.5),  # new, 6 mm from lesion 7's surface: marginal
)

EXPECTED: dict[int, Expected] = {
    1: Expected("local", 1, True, frozenset({1})),
    2: Expected("local", 2, True, frozenset({2})),
    3: Expected("local", 3, True, frozenset({3})),
    4: Expected("local", 3, False, frozenset({3})),
    5: Expected("local", 4, True, frozenset({4, 5})),
    6: Expected("local", 7, True, frozenset({7})),
    7: Expected("de novo", None, False, frozenset()),
    8: Expected("de novo", None, False, frozenset()),
    9: Expected("marginal", None, False, frozenset()),
}
VANISHED = (6,)


def scenario() -> tuple[tuple[Sphere, ...], tuple[Sphere, ...], dict[int, Expected]]:
    """Baseline and follow-up lesions (anatomy coordinates), and the expected outcome per follow-up label."""
    return BASELINE_LESIONS, FOLLOWUP_LESIONS, EXPECTED


@dataclass(frozen=True)
class PhantomPair:
    """Baseline and follow-up CT, PET and labels plus the map used to make the follow-up."""

    baseline_ct: Volume
    baseline_pet: Volume
    baseline_labels: Volume
    followup_ct: Volume
    followup_pet: Volume
    followup_labels: Volume
    g: KnownMap


BASE_SHAPE = (72, 56, 64)  # (z, y, x)
BASE_SPACING = (4.0, 4.0, 4.0)


def _centred_origin(
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> tuple[float, float, float]:
    # origin is LPS (x, y, z) of voxel (0, 0, 0); array axes are (z, y, x)
    ext = [-(n - 1) * s / 2.0 for n, s in zip(shape, spacing, strict=True)]
    return (ext[2] + offset[0], ext[1] + offset[1], ext[0] + offset[2])


@functools.cache
def baseline_images() -> tuple[Volume, Volume, Volume]:
    """Baseline CT, PET and labels (rendered once; Volumes are immutable, so sharing them is safe)."""
    bgrid, bpts = grid_points(BASE_SHAPE, BASE_SPACING, _centred_origin(BASE_SHAPE, BASE_SPACING))
    return render(bgrid, bpts, BASELINE_LESIONS)


def make_pair(
    g: KnownMap,
    followup_shape: tuple[int, int, int] = (70, 58, 62),
    followup_spacing: tuple[float, float, float] = (4.0, 4.2, 4.2),
    followup_offset: tuple[float, float, float] = (3.0, -2.0, 5.0),
) -> PhantomPair:
    """Render the scenario at baseline (identity) and at follow-up through ``g`` on a different grid."""
    bct, bpet, blab = baseline_images()
    fgrid, fpts = grid_points(
        followup_shape, followup_spacing, _centred_origin(followup_shape, followup_spacing, followup_offset)
    )
    fct, fpet, flab = render(fgrid, fpts, FOLLOWUP_LESIONS, g)
    return PhantomPair(bct, bpet, blab, fct, fpet, flab, g)


def lesion_centres(spheres: tuple[Sphere, ...]) -> NDArray[np.float64]:
    """Sphere centres (n, 3) in anatomy (baseline) LPS mm."""
    return np.array([s.centre for s in spheres], dtype=np.float64)


#: A rigid follow-up map used by several tests: 3, -2, 5 degree rotations and an (8, -6, 12) mm shift.
RIGID_DEMO = KnownMap(rot_deg=(3.0, -2.0, 5.0), shift_mm=(8.0, -6.0, 12.0))
