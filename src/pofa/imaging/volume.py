"""One image type for pofa: voxels plus their geometry in patient LPS millimetres.

Conventions (stable API, relied on by lesion matching):

- ``Volume.voxels`` is a 3-D array in **(z, y, x) order**: axis 0 = slice, axis 1 = row, axis 2 = column. This
  is the order of ``SimpleITK.GetArrayFromImage`` and of a DICOM series stacked slice by slice.
- ``Volume.affine`` (4 x 4) maps an **array index** ``(a0, a1, a2)`` -- the index you use for
  ``voxels[a0, a1, a2]``, i.e. ``(slice, row, column)`` -- to a point ``(x, y, z)`` in patient **LPS**
  millimetres (DICOM's patient coordinate system: x to the patient's left, y to posterior, z to head).
  Column ``a`` of ``affine[:3, :3]`` is the step in mm of one voxel along array axis ``a``;
  ``affine[:3, 3]`` is the centre of voxel ``(0, 0, 0)``. (ITK and NIfTI index in the reverse order
  ``(i, j, k) = (a2, a1, a0)``; :meth:`Volume.to_sitk`, :meth:`Volume.from_sitk`, :meth:`Volume.from_nifti`
  and :meth:`Volume.to_nifti` convert. NIfTI files are RAS: the conversion flips x and y.)
- ``Volume.spacing`` is in the same array-axis order ``(dz, dy, dx)`` in mm, as scikit-image's ``spacing=``.

Immutability: the constructor copies the voxels and marks them read-only, so ``vol.voxels`` is a read-only
view (no copy: copying an 80 MB PET volume on every access would dominate lesion feature extraction). Use
:meth:`Volume.voxels_copy` for a writable copy and :meth:`Volume.with_voxels` for a new image on the same
grid. ``vol.affine`` returns a copy.
"""

from __future__ import annotations

import os
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pofa.errors import ImagingError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import SimpleITK as sitk

__all__ = ["Volume", "atomic_path", "resample_to"]

# LPS <-> RAS: flip the first two patient axes.
_LPS_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# array index (a0, a1, a2) <-> ITK/NIfTI index (i, j, k) = (a2, a1, a0): reverse the first three affine
# columns.
_REVERSE = [2, 1, 0, 3]


@dataclass(frozen=True, slots=True, eq=False)
class Volume:
    """A 3-D image: voxels in (z, y, x) order and a 4 x 4 affine from array index to patient LPS mm.

    Parameters
    ----------
    voxels : array_like
        3-D array, axis order (slice, row, column). Copied and made read-only.
    affine : array_like, shape (4, 4)
        Maps ``(a0, a1, a2, 1)`` (array index) to ``(x, y, z, 1)`` in LPS mm. Last row must be ``0 0 0 1`` and
        the 3 x 3 part invertible.
    units : str, optional
        What the voxel values are (``"SUVbw"``, ``"BQML"``, ``"HU"``, ``"label"``, ...); informative only.
    _owned : bool, optional
        Internal: ``voxels`` is a fresh array nobody else references (not copied).

    Examples
    --------
    >>> v = Volume.from_spacing(np.zeros((4, 5, 6)), spacing=(3.0, 2.0, 2.0), origin=(-10.0, -20.0, 5.0))
    >>> v.shape, v.spacing
    ((4, 5, 6), (3.0, 2.0, 2.0))
    >>> v.index_to_lps([1, 0, 2]).tolist()
    [-6.0, -20.0, 8.0]
    """

    voxels: NDArray[Any]
    _affine: NDArray[np.float64] = field(repr=False)
    units: str = ""

    def __init__(
        self, voxels: ArrayLike, affine: ArrayLike, units: str = "", *, _owned: bool = False
    ) -> None:
        # _owned (internal): ``voxels`` is a fresh array nobody else references, so it need not be copied
        arr = np.asarray(voxels) if _owned and isinstance(voxels, np.ndarray) else np.array(voxels, copy=True)
        if arr.ndim != 3:
            raise ImagingError(f"A volume must be 3-D; got an array of shape {arr.shape}.")
        if arr.size == 0:
            raise ImagingError(f"A volume must not be empty; got shape {arr.shape}.")
        aff = np.array(affine, dtype=np.float64, copy=True)
        if aff.shape != (4, 4):
            raise ImagingError(f"The affine must be 4 x 4; got shape {aff.shape}.")
        if not np.all(np.isfinite(aff)):
            raise ImagingError("The affine contains NaN or infinite values.")
        if not np.allclose(aff[3], [0.0, 0.0, 0.0, 1.0]):
            raise ImagingError(f"The affine's last row must be 0 0 0 1; got {aff[3].tolist()}.")
        if abs(np.linalg.det(aff[:3, :3])) < 1e-12:
            raise ImagingError("The affine is singular (a voxel has zero size or two axes coincide).")
        arr.flags.writeable = False
        aff.flags.writeable = False
        object.__setattr__(self, "voxels", arr)
        object.__setattr__(self, "_affine", aff)
        object.__setattr__(self, "units", str(units))

    def __getstate__(self) -> tuple[NDArray[Any], NDArray[np.float64], str]:
        return (self.voxels, self._affine, self.units)

    def __setstate__(self, state: tuple[NDArray[Any], NDArray[np.float64], str]) -> None:
        # pickle and deepcopy give fresh arrays: make them read-only again
        voxels, affine, units = state
        voxels.flags.writeable = False
        affine.flags.writeable = False
        object.__setattr__(self, "voxels", voxels)
        object.__setattr__(self, "_affine", affine)
        object.__setattr__(self, "units", units)

    def __repr__(self) -> str:
        return (
            f"Volume(shape={self.shape}, spacing={tuple(round(s, 4) for s in self.spacing)}, "
            f"origin={tuple(round(o, 3) for o in self.origin)}, dtype={self.voxels.dtype}, "
            f"units={self.units!r})"
        )

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_spacing(
        cls,
        voxels: ArrayLike,
        spacing: ArrayLike = (1.0, 1.0, 1.0),
        origin: ArrayLike = (0.0, 0.0, 0.0),
        direction: ArrayLike | None = None,
        units: str = "",
    ) -> Volume:
        """Build a volume from spacing, origin and direction, all in array-axis order.

        Parameters
        ----------
        voxels : array_like
            3-D array in (z, y, x) order.
        spacing : array_like of 3 floats
            ``(dz, dy, dx)`` in mm.
        origin : array_like of 3 floats
            LPS position (x, y, z) in mm of the centre of voxel ``(0, 0, 0)``.
        direction : array_like, shape (3, 3), optional
            Column ``a`` is the unit LPS direction of array axis ``a``. Default: axis 0 along +z (head), axis
            1 along +y (posterior), axis 2 along +x (left), i.e. an axial DICOM series with identity
            ImageOrientationPatient.
        units : str, optional
            See :class:`Volume`.

        Returns
        -------
        Volume
            The volume.

        Raises
        ------
        ImagingError
            When the spacing is not three positive numbers.
        """
        sp = np.asarray(spacing, dtype=np.float64).reshape(3)
        if np.any(sp <= 0) or not np.all(np.isfinite(sp)):
            raise ImagingError(f"Spacing must be three positive numbers; got {sp.tolist()}.")
        d = (
            np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
            if direction is None
            else np.asarray(direction, dtype=np.float64).reshape(3, 3)
        )
        aff = np.eye(4)
        aff[:3, :3] = d * sp[None, :]
        aff[:3, 3] = np.asarray(origin, dtype=np.float64).reshape(3)
        return cls(voxels, aff, units)

    @classmethod
    def from_sitk(cls, image: sitk.Image, units: str = "") -> Volume:
        """Build a volume from a 3-D SimpleITK image (geometry in ITK's LPS convention).

        Parameters
        ----------
        image : SimpleITK.Image
            The SimpleITK image.
        units : str, optional
            What the voxel values are.

        Returns
        -------
        Volume
            The volume (voxels copied).

        Raises
        ------
        ImagingError
            When the image is not a 3-D scalar image.
        """
        import SimpleITK as sitk

        if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
            raise ImagingError(
                f"Expected a 3-D scalar image; got dimension {image.GetDimension()} with "
                f"{image.GetNumberOfComponentsPerPixel()} components per voxel."
            )
        arr = sitk.GetArrayFromImage(image)  # (z, y, x)
        d = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
        sp = np.asarray(image.GetSpacing(), dtype=np.float64)
        itk_aff = np.eye(4)
        itk_aff[:3, :3] = d * sp[None, :]
        itk_aff[:3, 3] = image.GetOrigin()
        return cls(arr, itk_aff[:, _REVERSE], units, _owned=True)

    @classmethod
    def from_nifti(cls, source: str | os.PathLike[str] | Any, units: str = "") -> Volume:
        """Read a NIfTI-1/2 file (or take a nibabel image) and convert RAS to LPS and (x, y, z) to (z, y, x).

        A 4-D image with a single volume is accepted; more volumes are refused. Scaling (scl_slope/scl_inter)
        is applied as nibabel does.

        Parameters
        ----------
        source : str or PathLike or object
            NIfTI file, or a nibabel image.
        units : str, optional
            What the voxel values are.

        Returns
        -------
        Volume
            The volume in LPS (converted from NIfTI's RAS).

        Raises
        ------
        ImagingError
            When the file is missing, unreadable, truncated or not a 3-D image.
        """
        import nibabel as nib

        img: Any
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.is_file():
                raise ImagingError(f"NIfTI file not found: {path}.")
            try:
                img = nib.load(str(path))
            except Exception as exc:  # nibabel raises several types for a bad file
                raise ImagingError(f"Cannot read {path} as NIfTI: {exc}") from exc
        else:
            img = source
        try:
            data = np.asanyarray(img.dataobj)
        except (OSError, EOFError, ValueError, zlib.error) as exc:  # truncated or corrupt voxel data
            raise ImagingError(f"Cannot read the voxels of {source}: the file is truncated or corrupt "
                               f"({type(exc).__name__}: {exc}). Export the image again.") from exc
        if data.ndim == 4 and data.shape[3] == 1:
            data = data[..., 0]
        if data.ndim != 3:
            raise ImagingError(f"Expected a 3-D NIfTI image; got shape {data.shape}.")
        ras = np.asarray(img.affine, dtype=np.float64)
        aff = _LPS_RAS @ ras[:, _REVERSE]
        return cls(np.ascontiguousarray(data.transpose(2, 1, 0)), aff, units)

    # ------------------------------------------------------------------ geometry
    @property
    def affine(self) -> NDArray[np.float64]:
        """4 x 4 array-index -> LPS mm matrix (a writable copy).

        Returns
        -------
        numpy.ndarray
            4 x 4 array-index -> LPS mm matrix (a writable copy).
        """
        return np.array(self._affine, copy=True)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(nz, ny, nx)``.

        Returns
        -------
        tuple of (int, int, int)
            Array shape ``(nz, ny, nx)``.
        """
        s = self.voxels.shape
        return (int(s[0]), int(s[1]), int(s[2]))

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along array axes ``(dz, dy, dx)``.

        Returns
        -------
        tuple of (float, float, float)
            Voxel size in mm along array axes (a0, a1, a2).
        """
        n = np.linalg.norm(self._affine[:3, :3], axis=0)
        return (float(n[0]), float(n[1]), float(n[2]))

    @property
    def origin(self) -> tuple[float, float, float]:
        """LPS position (x, y, z) in mm of the centre of voxel ``(0, 0, 0)``.

        Returns
        -------
        tuple of (float, float, float)
            LPS position (x, y, z) in mm of the centre of voxel ``(0, 0, 0)``.
        """
        o = self._affine[:3, 3]
        return (float(o[0]), float(o[1]), float(o[2]))

    @property
    def direction(self) -> NDArray[np.float64]:
        """3 x 3 matrix whose column ``a`` is the unit LPS direction of array axis ``a`` (a copy).

        Returns
        -------
        numpy.ndarray
            3 x 3 matrix whose column ``a`` is the unit LPS direction of array axis ``a`` (a copy).
        """
        direction: NDArray[np.float64] = self._affine[:3, :3] / np.asarray(self.spacing)[None, :]
        return direction

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in ml (|det| of the 3 x 3 affine / 1000).

        Returns
        -------
        float
            Volume of one voxel in ml (|det| of the 3 x 3 affine / 1000).
        """
        return float(abs(np.linalg.det(self._affine[:3, :3])) / 1000.0)

    def index_to_lps(self, index: ArrayLike) -> NDArray[np.float64]:
        """Map array indices ``(a0, a1, a2)`` (shape (3,) or (n, 3), may be fractional) to LPS mm.

        Parameters
        ----------
        index : array_like
            Array indices, shape (3,) or (n, 3); may be fractional.

        Returns
        -------
        numpy.ndarray
            LPS mm, same shape.

        Raises
        ------
        pofa.errors.ImagingError
            When the last axis does not have 3 components.
        """
        idx = np.asarray(index, dtype=np.float64)
        if idx.shape[-1:] != (3,):
            raise ImagingError(f"Indices must have 3 components in the last axis; got shape {idx.shape}.")
        return idx @ self._affine[:3, :3].T + self._affine[:3, 3]

    def lps_to_index(self, xyz: ArrayLike) -> NDArray[np.float64]:
        """Map LPS points in mm (shape (3,) or (n, 3)) to fractional array indices ``(a0, a1, a2)``.

        Round with ``np.rint`` to get the nearest voxel; check bounds with :meth:`contains_index`.

        Parameters
        ----------
        xyz : array_like
            LPS points in mm, shape (3,) or (n, 3).

        Returns
        -------
        numpy.ndarray
            Fractional array indices, same shape.

        Raises
        ------
        pofa.errors.ImagingError
            When the last axis does not have 3 components.
        """
        p = np.asarray(xyz, dtype=np.float64)
        if p.shape[-1:] != (3,):
            raise ImagingError(f"Points must have 3 components in the last axis; got shape {p.shape}.")
        inv = np.linalg.inv(self._affine)
        index: NDArray[np.float64] = p @ inv[:3, :3].T + inv[:3, 3]
        return index

    def contains_index(self, index: ArrayLike) -> NDArray[np.bool_]:
        """True where a (rounded) array index lies inside the volume.

        Parameters
        ----------
        index : array_like
            Array indices, shape (3,) or (n, 3) (rounded).

        Returns
        -------
        numpy.ndarray
            True where the index lies inside the volume.
        """
        idx = np.rint(np.asarray(index, dtype=np.float64))
        inside: NDArray[np.bool_] = np.all((idx >= 0) & (idx <= np.asarray(self.shape) - 1), axis=-1)
        return inside

    def same_grid(self, other: Volume, atol_mm: float = 1e-3) -> bool:
        """True when ``other`` has the same shape and an affine equal within ``atol_mm``.

        Parameters
        ----------
        other : Volume
            The other volume.
        atol_mm : float, optional
            Tolerance on the affines, in mm.

        Returns
        -------
        bool
            Whether shapes are equal and affines agree within ``atol_mm``.
        """
        return self.shape == other.shape and bool(np.allclose(self._affine, other._affine, atol=atol_mm))

    # ------------------------------------------------------------------ data
    def voxels_copy(self) -> NDArray[Any]:
        """A writable copy of the voxels, (z, y, x) order.

        Returns
        -------
        numpy.ndarray
            A writable copy of the voxels.
        """
        return np.array(self.voxels, copy=True)

    def with_voxels(self, voxels: ArrayLike, units: str | None = None) -> Volume:
        """A new volume on the same grid with other voxels (same shape required), e.g. a label map.

        Parameters
        ----------
        voxels : array_like
            New voxels of the same shape.
        units : str or None, optional
            Their units (default: the same).

        Returns
        -------
        Volume
            A volume on the same grid.

        Raises
        ------
        ImagingError
            When the voxels do not have the shape of this grid.
        """
        arr = np.asarray(voxels)
        if arr.shape != self.shape:
            raise ImagingError(f"New voxels have shape {arr.shape}; this grid is {self.shape}.")
        return Volume(arr, self._affine, self.units if units is None else units)

    def _with_owned_voxels(self, voxels: NDArray[Any], units: str | None = None) -> Volume:
        """Internal: :meth:`with_voxels` for a freshly made array (no copy; it becomes read-only)."""
        if voxels.shape != self.shape:
            raise ImagingError(f"New voxels have shape {voxels.shape}; this grid is {self.shape}.")
        return Volume(voxels, self._affine, self.units if units is None else units, _owned=True)

    # ------------------------------------------------------------------ conversions
    def to_sitk(self) -> sitk.Image:
        """A SimpleITK image with the same voxels and geometry (ITK stores LPS, index order (x, y, z)).

        Returns
        -------
        SimpleITK.Image
            The SimpleITK image (voxels copied).
        """
        import SimpleITK as sitk

        arr = self.voxels
        if arr.dtype == np.bool_:
            arr = arr.astype(np.uint8)
        img = sitk.GetImageFromArray(np.ascontiguousarray(arr))
        itk = self._affine[:, _REVERSE]
        sp = np.linalg.norm(itk[:3, :3], axis=0)
        img.SetSpacing([float(s) for s in sp])
        img.SetOrigin([float(o) for o in itk[:3, 3]])
        img.SetDirection([float(v) for v in (itk[:3, :3] / sp[None, :]).ravel()])
        return img

    def to_nifti_image(self) -> Any:
        """A ``nibabel.Nifti1Image`` (RAS affine, data in (x, y, z) order, qform/sform code 1 = scanner).

        Returns
        -------
        nibabel.Nifti1Image
            The image in RAS.
        """
        import nibabel as nib

        arr = self.voxels
        if arr.dtype == np.bool_:
            arr = arr.astype(np.uint8)
        ras = _LPS_RAS @ self._affine[:, _REVERSE]
        img = nib.Nifti1Image(np.asarray(arr).transpose(2, 1, 0), ras)
        img.set_qform(ras, code=1)
        img.set_sform(ras, code=1)
        return img

    def to_nifti(self, path: str | os.PathLike[str]) -> Path:
        """Write a NIfTI file (``.nii`` or ``.nii.gz``) atomically; return its path.

        Parameters
        ----------
        path : str or PathLike
            The NIfTI file written.

        Returns
        -------
        pathlib.Path
            ``path`` as written.
        """
        import nibabel as nib

        out = Path(path)
        img = self.to_nifti_image()
        with atomic_path(out) as tmp:
            nib.save(img, str(tmp))
        return out


def resample_to(
    volume: Volume, reference: Volume, interpolation: str = "nearest", default: float = 0.0
) -> Volume:
    """Resample ``volume`` onto the grid of ``reference`` (both in LPS mm; identity transform).

    Parameters
    ----------
    volume : Volume
        Image to resample (e.g. an organ label map on the CT grid).
    reference : Volume
        Image whose grid (shape and affine) the result takes (e.g. the PET); its voxels are not used.
    interpolation : {"nearest", "linear"}
        ``"nearest"`` for label maps (keeps label values), ``"linear"`` for intensities (SUV, HU).
    default : float
        Value outside ``volume``'s field of view.

    Returns
    -------
    Volume
        Same dtype as ``volume`` for ``"nearest"``, float32 for ``"linear"``. When the grids are already the
        same the voxels are returned unchanged (no interpolation).

    Raises
    ------
    ImagingError
        When ``interpolation`` is neither ``'nearest'`` nor ``'linear'``.
    """
    import SimpleITK as sitk

    if volume.same_grid(reference):
        return Volume(
            volume.voxels, reference._affine, volume.units, _owned=True
        )  # shares the read-only array
    if interpolation not in ("nearest", "linear"):
        raise ImagingError(f"interpolation must be 'nearest' or 'linear'; got {interpolation!r}.")
    src = volume.voxels
    if interpolation == "linear":
        src = src.astype(np.float32)
    moving = Volume(src, volume._affine).to_sitk() if src is not volume.voxels else volume.to_sitk()
    ref = sitk.Image([int(n) for n in reference.shape[::-1]], sitk.sitkUInt8)
    itk = reference._affine[:, _REVERSE]
    sp = np.linalg.norm(itk[:3, :3], axis=0)
    ref.SetSpacing([float(s) for s in sp])
    ref.SetOrigin([float(o) for o in itk[:3, 3]])
    ref.SetDirection([float(v) for v in (itk[:3, :3] / sp[None, :]).ravel()])
    interp = sitk.sitkNearestNeighbor if interpolation == "nearest" else sitk.sitkLinear
    out = sitk.Resample(moving, ref, sitk.Transform(), interp, float(default), moving.GetPixelID())
    arr = sitk.GetArrayFromImage(out)
    if interpolation == "nearest" and volume.voxels.dtype == np.bool_:
        arr = arr.astype(np.bool_)
    return Volume(arr, reference._affine, volume.units, _owned=True)


class atomic_path:  # noqa: N801 - used as a context manager, reads like a function
    """Context manager yielding a temporary path next to ``target``; renamed onto it on success.

    The target's folder is created if needed. The temporary name keeps the target's suffixes (``.nii.gz``) so
    that writers choosing a format from the extension work. On error the temporary file is removed and
    ``target`` is untouched.

    Parameters
    ----------
    target : str or PathLike
        The file finally written.
    """

    def __init__(self, target: str | os.PathLike[str]) -> None:
        self.target = Path(target)
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        parent = self.target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ImagingError(f"Cannot create the output folder {parent}: {exc}") from exc
        suffix = "".join(self.target.suffixes)
        fd, name = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=f".tmp{suffix}", dir=parent)
        os.close(fd)
        self.tmp = Path(name)
        return self.tmp

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self.tmp is not None
        if exc_type is None:
            os.replace(self.tmp, self.target)
        else:
            self.tmp.unlink(missing_ok=True)
