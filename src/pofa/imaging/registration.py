"""Registration of a follow-up (failure) PET/CT to the baseline scan with SimpleITK.

The recipe (Santoro-Fernandes et al. PMB 2021; Huff et al. PMB 2023; the SimpleITK registration notebooks):

1. **Rigid**: an ``Euler3DTransform`` started by ``CenteredTransformInitializer`` (centres of mass of the two
   body masks by default, so that CT air at -1000 HU does not pull the start), then optimised.
2. **Affine**: an ``AffineTransform`` started from the rigid result, optimised.
3. **Deformable** (optional): a cubic ``BSplineTransform`` on top of the affine one, optimised with L-BFGS-B.

Every stage uses a multi-resolution pyramid (shrink factors 4, 2, 1 with Gaussian smoothing 2, 1, 0 mm),
linear interpolation and random metric sampling with a fixed seed (20% of the voxels; 5% for the B-spline
stage, whose cost per sample grows with its number of parameters). The rigid and affine stages use
regular-step gradient descent with optimizer scales from the physical shift of each parameter. CT drives the
registration when both scans have a CT (mean squares by default, Mattes mutual information as an option);
otherwise the PET does (Mattes mutual information). Images finer than 4 mm are smoothed and resampled to 4 mm
first. Only the body counts: both images are cropped to their body's box and the metric samples the baseline
body grown by 10 mm (its outline included), not the air of the field of view -- on a 110 x 90 x 120 PET of
4 mm voxels that is a tenth of the samples and of the CPU time. Lesion label maps, when given, take the
lesions (grown by 10 mm) out of the metric. With one ITK thread (the default) the same inputs give a
bit-identical transform.

Direction convention: as in ITK, the transform maps **baseline (fixed) LPS points to follow-up (moving) LPS
points**. That is what resampling the follow-up onto the baseline grid needs (for each baseline voxel, where
to look in the follow-up image).

Quality: the final metric value of every stage and the Dice overlap of the two body masks before (identity)
and after registration. A body-mask Dice well below 0.9 after registration means: check the result.
"""

from __future__ import annotations

import enum
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pofa.errors import ImagingError
from pofa.imaging.volume import Volume, atomic_path

if TYPE_CHECKING:  # pragma: no cover - typing only
    import SimpleITK as sitk

__all__ = [
    "Initializer",
    "Modality",
    "RegistrationMetric",
    "RegistrationSettings",
    "RegistrationResult",
    "body_mask",
    "dice",
    "load_transform",
    "register",
    "register_scans",
    "resample_volume",
    "transform_from_file",
    "transform_points",
    "invert_points",
]

#: The follow-up image is cropped to its body's box grown by ``body_margin_mm`` plus this much, so that the
#: baseline sampling region still maps inside it while the transform is wrong by up to this much.
MOVING_CROP_EXTRA_MM = 30.0

#: Transform files SimpleITK reads and writes.
TRANSFORM_SUFFIXES = (".tfm", ".txt", ".h5", ".hdf5", ".mat", ".xfm")


class Modality(enum.StrEnum):
    """Which image drives the registration."""

    CT = "CT"
    PET = "PET"


class RegistrationMetric(enum.StrEnum):
    """Similarity metric (the value is the name users see)."""

    MEAN_SQUARES = "mean squares"
    MATTES_MI = "Mattes mutual information"


class Initializer(enum.StrEnum):
    """How the rigid stage is started."""

    MOMENTS = "moments"  # centres of mass of the body masks coincide
    GEOMETRY = "geometry"  # centres of the two fields of view coincide
    NONE = "none"  # identity in scanner coordinates


@dataclass(frozen=True, slots=True)
class RegistrationSettings:
    """Options of :func:`register` (defaults follow the published recipe).

    Attributes
    ----------
    deformable : bool
        Add a B-spline stage after the affine one.
    metric : RegistrationMetric or None
        None: mean squares for CT, Mattes mutual information for PET.
    histogram_bins : int
        Bins of Mattes mutual information.
    sampling_percentage : float
        Fraction (0-1] of voxels sampled at random for the metric at every level (published: 5-20%).
    shrink_factors : tuple of int
        Pyramid shrink factors, coarse to fine.
    smoothing_sigmas_mm : tuple of float
        Gaussian smoothing per level, in mm.
    iterations : int
        Maximum gradient-descent iterations per level (rigid and affine).
    step_mm : float
        First step of the regular-step gradient descent, in mm of the largest voxel shift (the optimizer
        scales come from the physical shift of each parameter); halved at every change of direction.
    affine : bool
        Run the affine stage after the rigid one.
    bspline_grid_mm : float
        B-spline control-point spacing in mm (deformable stage).
    bspline_iterations : int
        Maximum L-BFGS-B iterations per level.
    bspline_sampling_percentage : float
        Metric sampling of the B-spline stage (smaller than for the linear stages: the cost of every sample
        grows with the number of B-spline parameters in ITK).
    lesion_margin_mm : float
        When lesion label maps are given to :func:`register`, their lesions grown by this margin are left out
        of the metric (a lesion that grows, shrinks or splits must not drive the deformation).
    initializer : str
        ``"moments"`` (body-mask centres of mass), ``"geometry"`` (field-of-view centres) or ``"none"``.
    seed : int
        Seed of the random metric sampling (fixed: the same inputs give the same transform).
    threads : int
        Threads of ITK during the registration (the global default is set for its duration and restored).
        With 1 thread (the default) the same inputs give a bit-identical transform; with more, ITK adds
        per-thread partial sums in the order the threads finish and the parameters can differ in the last
        bits (about 1e-15 seen here) -- faster, not bit-reproducible.
    working_spacing_mm : float or None
        Images with finer voxels are smoothed (Gaussian, sigma = half this spacing) and resampled to this
        isotropic spacing before registration (a full-resolution CT would cost minutes for no gain in
        lesion-level accuracy). None: register on the native grids.
    body_margin_mm : float or None
        The metric samples only the baseline body (:func:`body_mask`) grown by this margin, so that its
        outline counts but the air around it does not, and both images are cropped to their body's box
        (plus this margin; the follow-up plus 30 mm more) before the pyramid is built. On a 110 x 90 x 120
        PET of 4 mm voxels this cut the CPU time of a rigid + affine registration about ninefold with the
        same accuracy (benchmarks/registration.py). None: sample the whole field of view, uncropped (the
        behaviour before; kept for comparison).
    """

    deformable: bool = False
    metric: RegistrationMetric | None = None
    histogram_bins: int = 50
    sampling_percentage: float = 0.2
    shrink_factors: tuple[int, ...] = (4, 2, 1)
    smoothing_sigmas_mm: tuple[float, ...] = (2.0, 1.0, 0.0)
    iterations: int = 200
    step_mm: float = 2.0
    affine: bool = True
    bspline_grid_mm: float = 80.0
    bspline_iterations: int = 50
    bspline_sampling_percentage: float = 0.05
    lesion_margin_mm: float = 10.0
    initializer: str = "moments"
    seed: int = 20210601
    threads: int = 1
    working_spacing_mm: float | None = 4.0
    body_margin_mm: float | None = 10.0

    def __post_init__(self) -> None:
        if not 0.0 < self.sampling_percentage <= 1.0:
            raise ImagingError(f"sampling_percentage must be in (0, 1]; got {self.sampling_percentage}.")
        if len(self.shrink_factors) != len(self.smoothing_sigmas_mm) or not self.shrink_factors:
            raise ImagingError(
                "shrink_factors and smoothing_sigmas_mm must be non-empty and of the same length."
            )
        if any(int(f) < 1 for f in self.shrink_factors) or any(s < 0 for s in self.smoothing_sigmas_mm):
            raise ImagingError("shrink factors must be >= 1 and smoothing sigmas >= 0.")
        if self.iterations < 1 or self.bspline_iterations < 1 or self.histogram_bins < 4:
            raise ImagingError("iterations must be >= 1 and histogram_bins >= 4.")
        if not 0.0 < self.bspline_sampling_percentage <= 1.0:
            raise ImagingError(
                f"bspline_sampling_percentage must be in (0, 1]; got {self.bspline_sampling_percentage}."
            )
        if self.lesion_margin_mm < 0:
            raise ImagingError(f"lesion_margin_mm must be >= 0; got {self.lesion_margin_mm}.")
        if self.step_mm <= 0:
            raise ImagingError(f"step_mm must be > 0; got {self.step_mm}.")
        if self.bspline_grid_mm <= 0:
            raise ImagingError(f"bspline_grid_mm must be > 0; got {self.bspline_grid_mm}.")
        if self.initializer not in {i.value for i in Initializer}:
            raise ImagingError(
                f"initializer must be one of moments, geometry, none; got {self.initializer!r}."
            )
        if self.threads < 1:
            raise ImagingError(f"threads must be >= 1; got {self.threads}.")
        if self.working_spacing_mm is not None and not self.working_spacing_mm > 0:
            raise ImagingError(f"working_spacing_mm must be > 0 or None; got {self.working_spacing_mm}.")
        if self.body_margin_mm is not None and not self.body_margin_mm >= 0:
            raise ImagingError(f"body_margin_mm must be >= 0 or None; got {self.body_margin_mm}.")


@dataclass(frozen=True, slots=True, eq=False)
class RegistrationResult:
    """A baseline <- follow-up registration (immutable; :attr:`transform` returns a copy).

    Attributes
    ----------
    stages : tuple of str
        Stages run, in order (``"rigid"``, ``"affine"``, ``"bspline"``, or ``"precomputed"``).
    metric_values : tuple of float
        Final metric value of each stage (finest level); empty for a precomputed transform.
    stop_conditions : tuple of str
        The optimizer's stop condition per stage.
    modality : Modality or None
        Image that drove the registration (None for a precomputed transform).
    metric : RegistrationMetric or None
        Similarity metric used.
    body_dice_before, body_dice_after : float
        Dice of the two body masks with the identity and with :attr:`transform` (NaN without images).
    method : str
        What was done, in words.
    """

    _transform: Any
    stages: tuple[str, ...]
    metric_values: tuple[float, ...]
    stop_conditions: tuple[str, ...]
    modality: Modality | None
    metric: RegistrationMetric | None
    body_dice_before: float
    body_dice_after: float
    method: str

    @property
    def transform(self) -> sitk.Transform:
        """The transform, baseline LPS point -> follow-up LPS point (a copy).

        Returns
        -------
        SimpleITK.Transform
            The transform, baseline LPS point -> follow-up LPS point (a copy).
        """
        import SimpleITK as sitk

        return sitk.Transform(self._transform)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the transform (``.tfm``/``.txt`` text or ``.h5`` HDF5) atomically.

        Parameters
        ----------
        path : str or PathLike
            The transform file written.

        Returns
        -------
        pathlib.Path
            ``path`` as written.

        Raises
        ------
        ImagingError
            When the file name has no transform suffix pofa writes.
        """
        import SimpleITK as sitk

        out = Path(path)
        if "".join(out.suffixes[-1:]).lower() not in TRANSFORM_SUFFIXES:
            raise ImagingError(
                f"Transform files must end in one of {', '.join(TRANSFORM_SUFFIXES)}; got {out}."
            )
        with atomic_path(out) as tmp:
            sitk.WriteTransform(self._transform, str(tmp))
        return out

    def summary(self) -> str:
        """One paragraph for a report.

        Returns
        -------
        str
            Method, metric and the body-mask Dice before and after, in words.
        """
        vals = ", ".join(f"{s} {v:.4g}" for s, v in zip(self.stages, self.metric_values, strict=False))
        parts = [self.method]
        if vals:
            parts.append(f"Final metric values: {vals}.")
        if not math.isnan(self.body_dice_after):
            parts.append(
                f"Body-mask Dice {self.body_dice_before:.3f} before, {self.body_dice_after:.3f} after."
            )
        return " ".join(parts)


# ---------------------------------------------------------------------------------------------- helpers
def dice(a: NDArray[Any], b: NDArray[Any]) -> float:
    """Dice overlap 2|A and B| / (|A| + |B|) of two boolean masks (NaN when both are empty).

    Parameters
    ----------
    a, b : ndarray
        Masks of the same shape (non-zero = inside).

    Returns
    -------
    float
        The Dice coefficient in [0, 1], NaN when both masks are empty.
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    n = int(a.sum()) + int(b.sum())
    return float("nan") if n == 0 else 2.0 * int(np.count_nonzero(a & b)) / n


def body_mask(volume: Volume, modality: Modality | str) -> Volume:
    """The patient's body: a threshold, the largest 26-connected component, holes filled slice by slice.

    CT: HU > -500. PET: 30% of the median uptake of the voxels above Otsu's threshold (SimpleITK; computed on
    the image clipped at its 99th percentile so that hot lesions and the bladder do not move it).

    Parameters
    ----------
    volume : Volume
        A CT (HU) or PET (SUV or activity) image.
    modality : {"CT", "PET"}
        Which rule to use.

    Returns
    -------
    Volume
        A uint8 mask (1 = body) on ``volume``'s grid.

    Raises
    ------
    ImagingError
        No voxel above the threshold.
    """
    import cc3d
    import SimpleITK as sitk
    from scipy import ndimage

    mod = Modality(modality)
    arr = np.asarray(volume.voxels, dtype=np.float32)
    if mod is Modality.CT:
        mask = arr > -500.0
    else:
        hi = float(np.percentile(arr, 99.0))
        clipped = np.minimum(arr, hi)
        img = sitk.GetImageFromArray(clipped)
        f = sitk.OtsuThresholdImageFilter()
        f.SetInsideValue(0)
        f.SetOutsideValue(1)
        f.Execute(img)
        # Otsu separates air from "body" but, with lungs and fat at intermediate uptake, it cuts into the
        # body; the body edge is where uptake falls well below typical soft tissue: 30% of the median body
        # value
        body_level = float(np.median(clipped[clipped > f.GetThreshold()]))
        mask = clipped > 0.3 * body_level
    if not mask.any():
        raise ImagingError(
            f"No body found in the {mod.value} image (all voxels are background); check the image."
        )
    mask = cc3d.largest_k(mask.astype(np.uint8), k=1, connectivity=26) > 0
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    mask = ndimage.binary_fill_holes(mask, structure=in_plane)
    return volume.with_voxels(mask.astype(np.uint8), units="mask")


def resample_volume(
    moving: Volume,
    reference: Volume,
    transform: sitk.Transform | None = None,
    interpolation: str = "nearest",
    default: float = 0.0,
) -> Volume:
    """Resample ``moving`` onto ``reference``'s grid through ``transform`` (reference LPS -> moving LPS).

    ``"nearest"`` keeps the dtype (label maps); ``"linear"`` gives float32 (SUV, HU). ``transform=None`` is
    the identity; when the grids are also the same the voxels are returned without interpolation.

    Parameters
    ----------
    moving : Volume
        The image resampled.
    reference : Volume
        The image whose grid is used.
    transform : SimpleITK.Transform or None, optional
        Reference LPS -> moving LPS (``None`` is the identity).
    interpolation : str, optional
        ``"nearest"`` or ``"linear"``.
    default : float, optional
        Value outside ``moving``.

    Returns
    -------
    Volume
        ``moving`` on ``reference``'s grid.

    Raises
    ------
    ImagingError
        When ``interpolation`` is neither ``'nearest'`` nor ``'linear'``.
    """
    import SimpleITK as sitk

    if interpolation not in ("nearest", "linear"):
        raise ImagingError(f"interpolation must be 'nearest' or 'linear'; got {interpolation!r}.")
    if transform is None and moving.same_grid(reference, atol_mm=1e-6):
        return Volume(moving.voxels, reference.affine, moving.units)
    src = moving if interpolation == "nearest" else moving.with_voxels(moving.voxels.astype(np.float32))
    ref = _geometry_image(reference)
    interp = sitk.sitkNearestNeighbor if interpolation == "nearest" else sitk.sitkLinear
    out = sitk.Resample(
        src.to_sitk(),
        ref,
        transform if transform is not None else sitk.Transform(),
        interp,
        float(default),
        sitk.sitkUnknown,
    )
    arr = sitk.GetArrayFromImage(out)
    if interpolation == "nearest":
        arr = arr.astype(moving.voxels.dtype, copy=False)
    return Volume(arr, reference.affine, moving.units)


def _geometry_image(reference: Volume) -> sitk.Image:
    """An empty uint8 image with ``reference``'s grid (size, origin, spacing, direction)."""
    import SimpleITK as sitk

    img = sitk.Image([int(n) for n in reference.shape[::-1]], sitk.sitkUInt8)
    itk = reference.affine[:, [2, 1, 0, 3]]
    sp = np.linalg.norm(itk[:3, :3], axis=0)
    img.SetSpacing([float(s) for s in sp])
    img.SetOrigin([float(o) for o in itk[:3, 3]])
    img.SetDirection([float(v) for v in (itk[:3, :3] / sp[None, :]).ravel()])
    return img


def transform_points(transform: sitk.Transform | None, points: ArrayLike) -> NDArray[np.float64]:
    """Apply ``transform`` (baseline -> follow-up) to LPS points, shape (n, 3).

    Parameters
    ----------
    transform : SimpleITK.Transform or None
        None is the identity.
    points : array_like, shape (n, 3) or (3,)
        LPS mm.

    Returns
    -------
    ndarray, shape (n, 3)
        The transformed points in LPS mm.
    """
    pts = np.atleast_2d(np.asarray(points, dtype=np.float64))
    if transform is None:
        return pts.copy()
    return np.array([transform.TransformPoint([float(v) for v in p]) for p in pts], dtype=np.float64).reshape(
        -1, 3
    )


def invert_points(
    transform: sitk.Transform | None, points: ArrayLike, tol_mm: float = 1e-4, max_iter: int = 50
) -> NDArray[np.float64]:
    """Follow-up LPS points -> baseline LPS points, i.e. solve ``transform(p) = q`` for each ``q``.

    Uses the transform's exact inverse when SimpleITK has one (rigid, affine); otherwise (B-spline,
    displacement field) Newton iterations with a finite-difference Jacobian (converges for the smooth,
    invertible transforms registration produces). Points not converging to ``tol_mm`` are returned as NaN.

    Parameters
    ----------
    transform : SimpleITK.Transform or None
        Baseline -> follow-up (None: identity).
    points : array_like, shape (n, 3) or (3,)
        Follow-up LPS mm.
    tol_mm : float
        Newton convergence tolerance (mm).
    max_iter : int
        Newton iterations at most.

    Returns
    -------
    ndarray, shape (n, 3)
        Baseline LPS mm (NaN rows where Newton did not converge).
    """

    q = np.atleast_2d(np.asarray(points, dtype=np.float64))
    if transform is None:
        return q.copy()
    inv: sitk.Transform | None
    try:
        inv = transform.GetInverse()
    except RuntimeError:
        inv = None
    if inv is not None:
        return transform_points(inv, q)
    out = np.empty_like(q)
    h = 0.5
    for n, target in enumerate(q):
        p = target.copy()
        ok = False
        for _ in range(max_iter):
            f = np.asarray(transform.TransformPoint(p.tolist())) - target
            if np.linalg.norm(f) < tol_mm:
                ok = True
                break
            jac = np.empty((3, 3))
            for k in range(3):
                d = np.zeros(3)
                d[k] = h
                jac[:, k] = (
                    np.asarray(transform.TransformPoint((p + d).tolist()))
                    - np.asarray(transform.TransformPoint((p - d).tolist()))
                ) / (2 * h)
            try:
                p = p - np.linalg.solve(jac, f)
            except np.linalg.LinAlgError:
                break
        out[n] = p if ok else np.nan
    return out


def load_transform(path: str | os.PathLike[str]) -> sitk.Transform:
    """Read a SimpleITK/ITK transform file (``.tfm``, ``.txt``, ``.h5``, ``.mat``).

    The transform must map baseline LPS points to follow-up LPS points (ITK's fixed -> moving convention, what
    ``elastix``/``ANTs``/SimpleITK write when the baseline is the fixed image).

    Parameters
    ----------
    path : str or PathLike
        The transform file.

    Returns
    -------
    SimpleITK.Transform
        The transform.

    Raises
    ------
    pofa.errors.ImagingError
        When the file cannot be read as a 3-D ITK transform.
    """
    import SimpleITK as sitk

    p = Path(path)
    if not p.is_file():
        raise ImagingError(f"Transform file not found: {p}.")
    try:
        t: sitk.Transform = sitk.ReadTransform(str(p))
    except RuntimeError as exc:
        raise ImagingError(
            f"Cannot read {p} as an ITK transform file (.tfm, .txt, .h5, .mat): "
            f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}"
        ) from exc
    if t.GetDimension() != 3:
        raise ImagingError(f"The transform in {p} is {t.GetDimension()}-D; a 3-D transform is needed.")
    return t


def transform_from_file(
    path: str | os.PathLike[str],
    baseline: Volume | None = None,
    followup: Volume | None = None,
    modality: Modality | str = Modality.CT,
) -> RegistrationResult:
    """Make a :class:`RegistrationResult` for a precomputed transform file.

    Parameters
    ----------
    path : str or PathLike
        The transform file (baseline LPS -> follow-up LPS).
    baseline : Volume or None, optional
        Baseline image, for the body-mask Dice.
    followup : Volume or None, optional
        Follow-up image, for the body-mask Dice.
    modality : Modality or str, optional
        Modality of the two images.

    Returns
    -------
    RegistrationResult
        The transform with the body-mask Dice when both images are given.
    """
    t = load_transform(path)
    before = after = float("nan")
    if baseline is not None and followup is not None:
        before, after = _body_dice(baseline, followup, t, Modality(modality))
    return RegistrationResult(
        t,
        ("precomputed",),
        (),
        (),
        None,
        None,
        before,
        after,
        f"Precomputed transform read from {Path(path).name} ({t.GetName()}).",
    )


def _body_dice(
    baseline: Volume, followup: Volume, transform: sitk.Transform, modality: Modality
) -> tuple[float, float]:
    bm = body_mask(baseline, modality)
    fm = body_mask(followup, modality)
    before = resample_volume(fm, bm, None, "nearest")
    after = resample_volume(fm, bm, transform, "nearest")
    return dice(bm.voxels, before.voxels), dice(bm.voxels, after.voxels)


# ---------------------------------------------------------------------------------------------- registration
def _method(
    settings: RegistrationSettings,
    metric: RegistrationMetric,
    sampling: float,
    masks: tuple[sitk.Image | None, sitk.Image | None],
    initial: sitk.Transform | None = None,
) -> Any:
    import SimpleITK as sitk

    reg = sitk.ImageRegistrationMethod()
    if metric is RegistrationMetric.MEAN_SQUARES:
        reg.SetMetricAsMeanSquares()
    else:
        reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=settings.histogram_bins)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(sampling, settings.seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetShrinkFactorsPerLevel([int(f) for f in settings.shrink_factors])
    reg.SetSmoothingSigmasPerLevel([float(s) for s in settings.smoothing_sigmas_mm])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetNumberOfThreads(settings.threads)
    if masks[0] is not None:
        reg.SetMetricFixedMask(masks[0])
    if masks[1] is not None:
        reg.SetMetricMovingMask(masks[1])
    if initial is not None:
        reg.SetMovingInitialTransform(initial)
    return reg


def _execute(reg: Any, fixed: sitk.Image, moving: sitk.Image, stage: str) -> tuple[float, str]:
    try:
        reg.Execute(fixed, moving)
    except RuntimeError as exc:
        raise ImagingError(
            f"The {stage} registration stage failed ({_short(exc)})",
            advice="check that the two scans show the same body region, or give a precomputed transform "
                   "with {transform}"
        ) from exc
    return float(reg.GetMetricValue()), str(reg.GetOptimizerStopConditionDescription())


def _linear_stage(
    fixed: sitk.Image,
    moving: sitk.Image,
    transform: sitk.Transform,
    settings: RegistrationSettings,
    metric: RegistrationMetric,
    masks: tuple[sitk.Image | None, sitk.Image | None],
    stage: str,
) -> tuple[float, str]:
    reg = _method(settings, metric, settings.sampling_percentage, masks)
    # Regular-step gradient descent: plain gradient descent with a learning rate estimated once per level
    # overshot and diverged on phantoms here (TRE 10-60 mm); regular steps that halve on every reversal
    # converge (TRE < 0.3 mm on the same phantoms).
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=settings.step_mm,
        minStep=1e-3,
        numberOfIterations=settings.iterations,
        relaxationFactor=0.5,
        gradientMagnitudeTolerance=1e-8,
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetInitialTransform(transform, inPlace=True)
    return _execute(reg, fixed, moving, stage)


def _short(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def _exclusion_mask(labels: Volume | None, image: Volume, margin_mm: float) -> sitk.Image | None:
    """1 where the metric may sample: outside every lesion of ``labels`` grown by ``margin_mm``."""
    from scipy import ndimage

    if labels is None:
        return None
    lab = labels if labels.same_grid(image) else resample_volume(labels, image, None, "nearest")
    fg = np.asarray(lab.voxels) != 0
    if not fg.any():
        return None
    if margin_mm > 0:
        keep = ndimage.distance_transform_edt(~fg, sampling=lab.spacing) > margin_mm
    else:
        keep = ~fg
    return image.with_voxels(keep.astype(np.uint8), units="mask").to_sitk()


def _crop_to_body(image: sitk.Image, body: Volume, margin_mm: float) -> tuple[sitk.Image, Volume, Volume]:
    """``image`` (on ``body``'s grid), as a Volume, and ``body`` cropped to the body's box grown by
    ``margin_mm``."""
    inside = np.asarray(body.voxels) != 0
    lo: list[int] = []
    hi: list[int] = []
    for axis, sp in enumerate(body.spacing):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(inside.any(axis=other))
        pad = int(math.ceil(margin_mm / sp))
        lo.append(max(int(idx[0]) - pad, 0))
        hi.append(min(int(idx[-1]) + pad + 1, inside.shape[axis]))
    cropped = image[lo[2] : hi[2], lo[1] : hi[1], lo[0] : hi[0]]  # SimpleITK indexes (x, y, z)
    vol = Volume.from_sitk(cropped)
    box = inside[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    return cropped, vol, vol.with_voxels(box.astype(np.uint8), units="mask")


def _sampling_mask(
    body: Volume, margin_mm: float | None, lesions_out: sitk.Image | None
) -> sitk.Image | None:
    """1 where the metric samples the fixed image: the body grown by ``margin_mm``, minus the lesions."""
    import SimpleITK as sitk
    from scipy import ndimage

    if margin_mm is None:
        return lesions_out
    inside = np.asarray(body.voxels) != 0
    grown = ndimage.distance_transform_edt(~inside, sampling=body.spacing) <= margin_mm
    if lesions_out is not None:
        grown &= sitk.GetArrayViewFromImage(lesions_out) != 0
    return body.with_voxels(grown.astype(np.uint8), units="mask").to_sitk()


def _working_image(image: sitk.Image, spacing_mm: float | None) -> sitk.Image:
    """``image`` as float32, smoothed and resampled to an isotropic ``spacing_mm`` grid when it is finer."""
    import SimpleITK as sitk

    img: sitk.Image = sitk.Cast(image, sitk.sitkFloat32)
    sp = np.asarray(img.GetSpacing(), dtype=np.float64)
    if spacing_mm is None or np.all(sp >= spacing_mm * (1 - 1e-6)):
        return img
    sigma = [float(np.sqrt(max(spacing_mm**2 - s**2, 0.0)) / 2.0) for s in sp]  # no extra blur where coarse
    if min(sigma) > 0:
        smooth = sitk.SmoothingRecursiveGaussian(img, sigma)
    else:  # an axis already coarse enough (e.g. 5 mm CT slices): smooth the others (ITK refuses sigma 0)
        smooth = img
        for axis, sg in enumerate(sigma):
            if sg > 0:
                f = sitk.RecursiveGaussianImageFilter()
                f.SetDirection(axis)
                f.SetSigma(sg)
                smooth = f.Execute(smooth)
    new_sp = [float(max(s, spacing_mm)) for s in sp]
    size = [max(1, int(round(n * s / t))) for n, s, t in zip(img.GetSize(), sp, new_sp, strict=True)]
    # same physical extent: the first voxel centre moves by half the change of voxel size along each axis
    d = np.asarray(img.GetDirection()).reshape(3, 3)
    origin = np.asarray(img.GetOrigin()) + d @ ((np.asarray(new_sp) - sp) / 2.0)
    ref = sitk.Image(size, sitk.sitkFloat32)
    ref.SetSpacing(new_sp)
    ref.SetOrigin([float(o) for o in origin])
    ref.SetDirection(img.GetDirection())
    return sitk.Resample(
        smooth,
        ref,
        sitk.Transform(),
        sitk.sitkLinear,
        float(np.min(sitk.GetArrayViewFromImage(img))),
        sitk.sitkFloat32,
    )


def register(
    baseline: Volume,
    followup: Volume,
    modality: Modality | str,
    settings: RegistrationSettings | None = None,
    *,
    baseline_lesions: Volume | None = None,
    followup_lesions: Volume | None = None,
) -> RegistrationResult:
    """Register ``followup`` to ``baseline`` (same modality): rigid, affine, optional B-spline.

    Parameters
    ----------
    baseline, followup : Volume
        The fixed (baseline) and moving (follow-up) images: CT in HU or PET (SUV or activity).
    modality : {"CT", "PET"}
        Decides the default metric (mean squares / Mattes MI) and the body-mask rule.
    settings : RegistrationSettings, optional
        Options; the defaults follow the published recipe.
    baseline_lesions, followup_lesions : Volume, optional
        Lesion label maps of the two scans (any grid in the same scanner coordinates). Their lesions, grown by
        ``settings.lesion_margin_mm``, are left out of the metric so that lesion change does not drive the
        registration.

    Returns
    -------
    RegistrationResult
        Transform baseline LPS -> follow-up LPS, stages, final metric values, body-mask Dice.
    """
    import SimpleITK as sitk

    st = settings or RegistrationSettings()
    old_threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(st.threads)
    try:
        return _register(baseline, followup, Modality(modality), st, baseline_lesions, followup_lesions)
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(old_threads)


def _register(
    baseline: Volume,
    followup: Volume,
    mod: Modality,
    st: RegistrationSettings,
    baseline_lesions: Volume | None,
    followup_lesions: Volume | None,
) -> RegistrationResult:
    import SimpleITK as sitk

    metric = st.metric or (
        RegistrationMetric.MEAN_SQUARES if mod is Modality.CT else RegistrationMetric.MATTES_MI
    )
    fixed = _working_image(baseline.to_sitk(), st.working_spacing_mm)
    moving = _working_image(followup.to_sitk(), st.working_spacing_mm)
    fixed_v = Volume.from_sitk(fixed)
    moving_v = Volume.from_sitk(moving)
    bm = body_mask(fixed_v, mod)
    fm = body_mask(moving_v, mod)

    init = Initializer(st.initializer)
    if init is Initializer.NONE:
        rigid = sitk.Euler3DTransform()
        centre = bm.index_to_lps((np.asarray(bm.shape, dtype=np.float64) - 1.0) / 2.0)
        rigid.SetCenter([float(c) for c in centre])
    elif init is Initializer.MOMENTS:
        rigid = sitk.Euler3DTransform(
            sitk.CenteredTransformInitializer(
                sitk.Cast(bm.to_sitk(), sitk.sitkFloat32),
                sitk.Cast(fm.to_sitk(), sitk.sitkFloat32),
                sitk.Euler3DTransform(),
                sitk.CenteredTransformInitializerFilter.MOMENTS,
            )
        )
    else:
        rigid = sitk.Euler3DTransform(
            sitk.CenteredTransformInitializer(
                fixed, moving, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY
            )
        )

    # Only the body matters: both images are cropped to their body's box (plus a margin) and the metric
    # samples the baseline body grown by body_margin_mm (its outline included), not the air around it.
    if st.body_margin_mm is not None:
        fixed, fixed_v, bm_w = _crop_to_body(fixed, bm, st.body_margin_mm + 2.0 * max(bm.spacing))
        moving, moving_v, _ = _crop_to_body(moving, fm, st.body_margin_mm + MOVING_CROP_EXTRA_MM)
    else:
        bm_w = bm
    masks = (
        _sampling_mask(
            bm_w, st.body_margin_mm, _exclusion_mask(baseline_lesions, fixed_v, st.lesion_margin_mm)
        ),
        _exclusion_mask(followup_lesions, moving_v, st.lesion_margin_mm),
    )

    stages: list[str] = []
    values: list[float] = []
    stops: list[str] = []
    v, s = _linear_stage(fixed, moving, rigid, st, metric, masks, "rigid")
    stages.append("rigid")
    values.append(v)
    stops.append(s)
    final: sitk.Transform = sitk.Euler3DTransform(rigid)
    if st.affine:
        affine = sitk.AffineTransform(3)
        affine.SetCenter(rigid.GetCenter())
        affine.SetMatrix(rigid.GetMatrix())
        affine.SetTranslation(rigid.GetTranslation())
        v, s = _linear_stage(fixed, moving, affine, st, metric, masks, "affine")
        stages.append("affine")
        values.append(v)
        stops.append(s)
        final = sitk.AffineTransform(affine)
    if st.deformable:
        size_mm = np.asarray(fixed.GetSize(), dtype=np.float64) * np.asarray(fixed.GetSpacing())
        mesh = [max(1, int(math.ceil(d / st.bspline_grid_mm))) for d in size_mm]
        bspline = sitk.BSplineTransformInitializer(fixed, mesh, 3)
        reg = _method(st, metric, st.bspline_sampling_percentage, masks, initial=final)
        reg.SetOptimizerAsLBFGSB(
            gradientConvergenceTolerance=1e-5,
            numberOfIterations=st.bspline_iterations,
            maximumNumberOfCorrections=5,
            maximumNumberOfFunctionEvaluations=4 * st.bspline_iterations,
            costFunctionConvergenceFactor=1e7,
        )
        reg.SetInitialTransform(bspline, inPlace=True)
        v, s = _execute(reg, fixed, moving, "B-spline")
        stages.append("bspline")
        values.append(v)
        stops.append(s)
        # CompositeTransform applies the last-added transform first: p -> affine(bspline(p)), as the
        # registration evaluated it (the moving initial transform after the optimised one).
        final = sitk.CompositeTransform([final, bspline])

    before = dice(bm.voxels, resample_volume(fm, bm, None, "nearest").voxels)
    after = dice(bm.voxels, resample_volume(fm, bm, final, "nearest").voxels)
    method = (
        f"SimpleITK {mod.value}-based registration of the follow-up to the baseline: "
        + " -> ".join(stages)
        + f"; {metric.value}, random sampling {st.sampling_percentage:.0%} (seed {st.seed}), shrink factors "
        + f"{list(st.shrink_factors)}, smoothing {list(st.smoothing_sigmas_mm)} mm; "
        + f"{init.value} initialisation; regular-step gradient descent with scales from physical shift"
        + (
            f"; metric sampled in the baseline body grown by {st.body_margin_mm:g} mm, images cropped to the "
            "body"
            if st.body_margin_mm is not None
            else ""
        )
        + (
            f"; images finer than {st.working_spacing_mm:g} mm smoothed and resampled to it"
            if st.working_spacing_mm is not None
            else ""
        )
        + (
            f"; cubic B-spline, grid {st.bspline_grid_mm:g} mm, L-BFGS-B, sampling "
            f"{st.bspline_sampling_percentage:.0%}"
            if st.deformable
            else ""
        )
        + (
            "; lesions (grown by " + f"{st.lesion_margin_mm:g} mm) left out of the metric"
            if any(m is not None for m in masks)
            else ""
        )
        + "."
    )
    return RegistrationResult(
        final, tuple(stages), tuple(values), tuple(stops), mod, metric, before, after, method
    )


def register_scans(
    baseline_pet: Volume,
    followup_pet: Volume,
    baseline_ct: Volume | None = None,
    followup_ct: Volume | None = None,
    settings: RegistrationSettings | None = None,
    *,
    baseline_lesions: Volume | None = None,
    followup_lesions: Volume | None = None,
) -> RegistrationResult:
    """Register the follow-up scan to the baseline: on the CTs when both exist, otherwise on the PETs.

    The PET and CT of one scan share scanner coordinates (a PET/CT), so a transform found on the CTs applies
    to the PETs and to label maps drawn on either.

    Parameters
    ----------
    baseline_pet, followup_pet : Volume
        The PETs (used when a CT is missing).
    baseline_ct, followup_ct : Volume, optional
        The CTs (used when both are given).
    settings : RegistrationSettings, optional
        Options of :func:`register`.
    baseline_lesions, followup_lesions : Volume, optional
        Lesion label maps, left out of the metric (see :func:`register`).

    Returns
    -------
    RegistrationResult
        The transform, its method and the body-mask Dice before and after.
    """
    kw = {"baseline_lesions": baseline_lesions, "followup_lesions": followup_lesions}
    if baseline_ct is not None and followup_ct is not None:
        return register(baseline_ct, followup_ct, Modality.CT, settings, **kw)
    return register(baseline_pet, followup_pet, Modality.PET, settings, **kw)
