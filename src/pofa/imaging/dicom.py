"""Read a single-frame DICOM image series (PET or CT) from a folder into a Volume.

The result is a :class:`~pofa.imaging.volume.Volume`.

- Files may be in any order and in sub-folders; files that are not DICOM are ignored.
- Slices are sorted by their position along the normal of ImageOrientationPatient (not by InstanceNumber).
- RescaleSlope / RescaleIntercept are applied per instance (GE writes a different slope on every PET slice).
- A folder holding several series of the requested modality is refused with a list of the series (UID,
  description, number of images) unless one is chosen with ``series_uid``.
- Missing slices (a gap in the slice positions), duplicate positions, mixed orientations or matrix sizes, and
  gantry tilt are refused with :class:`~pofa.errors.ImagingError`.

Identifying attributes (names, IDs, dates) are kept only in the in-memory headers that the SUV calculation
needs; nothing here writes them anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pofa.errors import ImagingError
from pofa.imaging.volume import Volume

if TYPE_CHECKING:  # pragma: no cover
    from pydicom.dataset import Dataset

__all__ = ["DicomSeries", "SeriesInfo", "list_series", "read_series"]

# Relative tolerance on the spacing between consecutive slices before a gap counts as a missing slice.
_SLICE_GAP_RTOL = 0.1
# Orientation cosines must agree to this absolute tolerance across a series.
_ORIENT_ATOL = 1e-4


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """What a folder holds: one row per series (no patient information)."""

    series_uid: str
    modality: str
    description: str
    series_number: str
    n_files: int

    def line(self) -> str:
        """One human-readable line for an error message or a listing.

        Returns
        -------
        str
            Modality, series number and description, instance count and UID on one line.
        """
        desc = self.description or "(no description)"
        return (
            f"  {self.series_uid}  modality={self.modality}  #{self.series_number}  {desc!r}  "
            f"{self.n_files} files"
        )


@dataclass(frozen=True, slots=True, eq=False)
class DicomSeries:
    """A read image series.

    Attributes
    ----------
    volume : Volume
        Rescaled values (``stored * RescaleSlope + RescaleIntercept`` per instance) as float32, slices sorted
        along the slice normal; ``units`` is the DICOM Units (0054,1001) for PET, ``"HU"`` for CT.
    headers : tuple of pydicom.Dataset
        Per-slice headers without pixel data, in the volume's slice order (index ``a0``). They contain
        identifying attributes: never write them out.
    files : tuple of Path
        The files in the same order.
    info : SeriesInfo
        Series UID, modality, description.
    """

    volume: Volume
    headers: tuple[Dataset, ...]
    files: tuple[Path, ...]
    info: SeriesInfo


def _iter_files(folder: Path) -> list[Path]:
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise ImagingError(f"DICOM folder not found: {folder}.")
    out = []
    for root, _dirs, names in os.walk(folder):
        for n in names:
            if n.upper() == "DICOMDIR" or n.startswith("."):
                continue
            out.append(Path(root) / n)
    out.sort()
    return out


def _read_headers(files: Sequence[Path]) -> list[tuple[Path, Dataset]]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    found: list[tuple[Path, Dataset]] = []
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError):
            continue
        if "SeriesInstanceUID" not in ds or "SOPClassUID" not in ds:
            continue
        found.append((f, ds))
    return found


def _group(found: list[tuple[Path, Dataset]]) -> dict[str, list[tuple[Path, Dataset]]]:
    groups: dict[str, list[tuple[Path, Dataset]]] = {}
    for f, ds in found:
        groups.setdefault(str(ds.SeriesInstanceUID), []).append((f, ds))
    return groups


def _info(uid: str, members: list[tuple[Path, Dataset]]) -> SeriesInfo:
    ds = members[0][1]
    return SeriesInfo(
        series_uid=uid,
        modality=str(ds.get("Modality", "")),
        description=str(ds.get("SeriesDescription", "")),
        series_number=str(ds.get("SeriesNumber", "")),
        n_files=len(members),
    )


def list_series(folder: str | os.PathLike[str]) -> tuple[SeriesInfo, ...]:
    """List the DICOM series found under ``folder`` (recursively), sorted by modality then series number.

    Parameters
    ----------
    folder : str or PathLike
        Folder searched recursively (or a single DICOM file).

    Returns
    -------
    tuple of SeriesInfo
        One entry per series, sorted by modality then series number.
    """
    groups = _group(_read_headers(_iter_files(Path(folder))))
    infos = [_info(uid, m) for uid, m in groups.items()]
    return tuple(sorted(infos, key=lambda i: (i.modality, i.series_number, i.series_uid)))


def read_series(
    folder: str | os.PathLike[str],
    modality: str | Sequence[str] = "PT",
    series_uid: str | None = None,
) -> DicomSeries:
    """Read one image series of the given modality from a folder.

    Parameters
    ----------
    folder : path
        Folder (searched recursively) or a single DICOM file.
    modality : str or sequence of str
        Accepted Modality (0008,0060) values, e.g. ``"PT"`` or ``"CT"``.
    series_uid : str, optional
        SeriesInstanceUID to read when the folder holds several series of that modality.

    Returns
    -------
    DicomSeries
        Voxels in (slice, row, column) order with the geometry and the headers of the series.

    Raises
    ------
    ImagingError
        No series of that modality (the message lists what was found), several series and no ``series_uid``
        (the message lists them), or an inconsistent/incomplete series.
    """
    folder = Path(folder)
    modalities = (modality,) if isinstance(modality, str) else tuple(modality)
    found = _read_headers(_iter_files(folder))
    if not found:
        raise ImagingError(f"No DICOM image files found in {folder}.")
    groups = _group(found)
    if series_uid is not None:
        if series_uid not in groups:
            listing = "\n".join(_info(u, m).line() for u, m in groups.items())
            raise ImagingError(f"Series {series_uid} is not in {folder}. Series found:\n{listing}")
        chosen = groups[series_uid]
        info = _info(series_uid, chosen)
        if info.modality not in modalities:
            raise ImagingError(
                f"Series {series_uid} has modality {info.modality!r}; expected {' or '.join(modalities)}."
            )
    else:
        wanted = {u: m for u, m in groups.items() if _info(u, m).modality in modalities}
        if not wanted:
            listing = "\n".join(_info(u, m).line() for u, m in groups.items())
            raise ImagingError(
                f"No {' or '.join(modalities)} series in {folder} (Modality (0008,0060)). Series "
                f"found:\n{listing}"
            )
        if len(wanted) > 1:
            listing = "\n".join(sorted(_info(u, m).line() for u, m in wanted.items()))
            raise ImagingError(
                f"{folder} holds {len(wanted)} {' or '.join(modalities)} series:\n{listing}",
                advice="choose one by its SeriesInstanceUID ({series_uid})",
            )
        series_uid, chosen = next(iter(wanted.items()))
        info = _info(series_uid, chosen)
    return _assemble(chosen, info)


def _float_list(ds: Dataset, keyword: str, n: int, where: Path) -> np.ndarray:
    if keyword not in ds or ds.get(keyword) is None:
        raise ImagingError(f"{where.name}: {keyword} is missing; cannot place the slice in space.")
    try:
        vals = np.asarray([float(v) for v in ds.get(keyword)], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ImagingError(f"{where.name}: {keyword} is not numeric: {ds.get(keyword)!r}.") from exc
    if vals.shape != (n,):
        raise ImagingError(f"{where.name}: {keyword} must have {n} values; got {vals.size}.")
    return vals


def _assemble(members: list[tuple[Path, Dataset]], info: SeriesInfo) -> DicomSeries:
    import pydicom

    for f, ds in members:
        nframes = int(ds.get("NumberOfFrames", 1) or 1)
        if nframes > 1:
            raise ImagingError(
                f"{f.name} is a multi-frame image ({nframes} frames); pofa reads single-frame series only. "
                "Convert it to NIfTI (e.g. with dcm2niix) and pass the NIfTI file."
            )
    f0, ds0 = members[0]
    iop0 = _float_list(ds0, "ImageOrientationPatient", 6, f0)
    ps0 = _float_list(ds0, "PixelSpacing", 2, f0)
    rows, cols = int(ds0.get("Rows", 0)), int(ds0.get("Columns", 0))
    positions = []
    for f, ds in members:
        iop = _float_list(ds, "ImageOrientationPatient", 6, f)
        if not np.allclose(iop, iop0, atol=_ORIENT_ATOL):
            raise ImagingError(
                f"Series {info.series_uid} mixes image orientations ({f.name}); it is not one volume."
            )
        if int(ds.get("Rows", 0)) != rows or int(ds.get("Columns", 0)) != cols:
            raise ImagingError(
                f"Series {info.series_uid} mixes matrix sizes ({f.name}); it is not one volume."
            )
        if not np.allclose(_float_list(ds, "PixelSpacing", 2, f), ps0, rtol=1e-5, atol=1e-6):
            raise ImagingError(f"Series {info.series_uid} mixes pixel spacings ({f.name}).")
        positions.append(_float_list(ds, "ImagePositionPatient", 3, f))
    row_dir = iop0[:3] / np.linalg.norm(iop0[:3])  # direction of increasing column index
    col_dir = iop0[3:] / np.linalg.norm(iop0[3:])  # direction of increasing row index
    normal = np.cross(row_dir, col_dir)
    pos = np.asarray(positions)
    dist = pos @ normal
    order = np.argsort(dist, kind="stable")
    dist = dist[order]
    pos = pos[order]
    members = [members[i] for i in order]
    n = len(members)
    if n > 1:
        steps = np.diff(dist)
        if np.any(steps < 1e-3):
            i = int(np.argmin(steps))
            raise ImagingError(
                f"Series {info.series_uid}: two images at the same slice position ({members[i][0].name}, "
                f"{members[i + 1][0].name}). The folder mixes series or time frames; keep one series per "
                "folder."
            )
        dz = float(np.median(steps))
        bad = np.flatnonzero(np.abs(steps - dz) > _SLICE_GAP_RTOL * dz)
        if bad.size:
            i = int(bad[0])
            missing = int(round(steps[i] / dz)) - 1
            what = f"about {missing} slice(s) missing" if missing >= 1 else "uneven slice spacing"
            raise ImagingError(
                f"Series {info.series_uid}: {what} between slice positions {dist[i]:.2f} mm and "
                f"{dist[i + 1]:.2f} mm (gap {steps[i]:.2f} mm; usual spacing {dz:.2f} mm). "
                "Export the complete series."
            )
        step_vec = (pos[-1] - pos[0]) / (n - 1)
        in_plane = step_vec - (step_vec @ normal) * normal
        if np.linalg.norm(in_plane) > 1e-3 * dz + 1e-4:
            raise ImagingError(
                f"Series {info.series_uid}: slices are sheared (gantry tilt); resample it to an orthogonal "
                "grid first (e.g. dcm2niix) and pass the NIfTI file."
            )
    else:
        dz = float(ds0.get("SliceThickness", 0) or 0) or float(ds0.get("SpacingBetweenSlices", 0) or 0)
        if dz <= 0:
            raise ImagingError(f"Series {info.series_uid} has a single slice and no SliceThickness.")
    affine = np.eye(4)
    affine[:3, 0] = normal * dz
    affine[:3, 1] = col_dir * ps0[0]  # PixelSpacing[0] = distance between rows
    affine[:3, 2] = row_dir * ps0[1]  # PixelSpacing[1] = distance between columns
    affine[:3, 3] = pos[0]

    arr = np.empty((n, rows, cols), dtype=np.float32)
    headers = []
    for k, (f, _hdr) in enumerate(members):
        try:
            full = pydicom.dcmread(f)
            stored = full.pixel_array
        except Exception as exc:  # pixel decoding raises many types (missing codec, truncated file)
            raise ImagingError(f"Cannot decode the pixel data of {f.name}: {exc}") from exc
        if stored.shape != (rows, cols):
            raise ImagingError(f"{f.name}: pixel data shape {stored.shape} does not match Rows x Columns.")
        slope = _number(full, "RescaleSlope", 1.0, f)
        intercept = _number(full, "RescaleIntercept", 0.0, f)
        arr[k] = stored.astype(np.float64) * slope + intercept
        del full.PixelData
        headers.append(full)
    modality = info.modality
    units = str(ds0.get("Units", "")) if modality == "PT" else ("HU" if modality == "CT" else "")
    vol = Volume(arr, affine, units=units, _owned=True)
    return DicomSeries(volume=vol, headers=tuple(headers), files=tuple(f for f, _ in members), info=info)


def _number(ds: Any, keyword: str, default: float, where: Path) -> float:
    v = ds.get(keyword)
    if v is None or v == "":
        return default
    try:
        x = float(v)
    except (TypeError, ValueError) as exc:
        raise ImagingError(f"{where.name}: {keyword} is not a number: {v!r}.") from exc
    if not np.isfinite(x):
        raise ImagingError(f"{where.name}: {keyword} is not finite: {v!r}.")
    return x
