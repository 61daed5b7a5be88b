"""The ``pofa match`` command: baseline and failure lesion label maps in, a failures table out.

A plain function with typer annotations; the CLI registers it (``app.command("match")(match_command)``).
Every user error is a :class:`~pofa.errors.PofaError`, which the CLI prints without a traceback.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pofa.errors import SettingsError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pofa.imaging.features import LesionFeatures
    from pofa.imaging.volume import Volume

__all__ = ["match_command"]


def _strip_nifti(name: str) -> str:
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def match_command(
    baseline_lesions: Annotated[
        Path,
        typer.Argument(
            help="Baseline lesion label map (NIfTI; 0 = background, one positive integer per lesion)."
        ),
    ],
    followup_lesions: Annotated[
        Path, typer.Argument(help="Failure-scan lesion label map (NIfTI), on the failure scan's own grid.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Failures table to write (CSV).")],
    transform: Annotated[
        Path | None,
        typer.Option(
            "--transform",
            help="ITK transform file (.tfm, .txt, .h5) mapping baseline LPS points to failure-scan "
            "points (baseline = fixed image). Default: register --baseline-image to --followup-image if "
            "given, "
            "else the identity (the scans share scanner coordinates).",
        ),
    ] = None,
    tolerance_mm: Annotated[
        float,
        typer.Option(
            "--tolerance-mm",
            help="A failure lesion within this distance of a baseline lesion is local (0 = voxel overlap).",
        ),
    ] = 0.0,
    margin_mm: Annotated[
        float,
        typer.Option(
            "--margin-mm",
            help="A non-local failure lesion within this distance is marginal; beyond it, de novo.",
        ),
    ] = 10.0,
    patient_id: Annotated[
        str | None,
        typer.Option(
            "--patient-id", help="Patient identifier for the rows (default: the baseline file name)."
        ),
    ] = None,
    scan_date: Annotated[
        str | None, typer.Option("--scan-date", help="Date of the failure scan, YYYY-MM-DD.")
    ] = None,
    baseline_image: Annotated[
        Path | None,
        typer.Option("--baseline-image", help="Baseline CT or PET (NIfTI) to register the failure scan to."),
    ] = None,
    followup_image: Annotated[
        Path | None,
        typer.Option(
            "--followup-image", help="Failure-scan CT or PET (NIfTI), same modality as --baseline-image."
        ),
    ] = None,
    modality: Annotated[
        str, typer.Option("--modality", help="Modality of the registration images: CT or PET.")
    ] = "CT",
    deformable: Annotated[
        bool, typer.Option("--deformable", help="Add a B-spline stage after rigid and affine registration.")
    ] = False,
    save_transform: Annotated[
        Path | None,
        typer.Option("--save-transform", help="Write the registration transform to this file (.tfm or .h5)."),
    ] = None,
    followup_pet: Annotated[
        Path | None,
        typer.Option(
            "--followup-pet",
            help="Failure-scan PET (NIfTI, SUV) for lesion features; without it only the "
            "geometry (diameter) is measured.",
        ),
    ] = None,
    organs: Annotated[
        Path | None,
        typer.Option(
            "--organs",
            help="Organ label map of the failure scan (NIfTI, or a TotalSegmentator folder) for site "
            "and nodal/extranodal of failure lesions.",
        ),
    ] = None,
    organ_names: Annotated[
        str | None,
        typer.Option(
            "--organ-names",
            help="Names of the organ labels: totalsegmentator (default), totalsegmentator-v1, or "
            "a JSON/CSV table.",
        ),
    ] = None,
    components: Annotated[
        bool,
        typer.Option("--components", help="Treat every connected component as a lesion (for binary masks)."),
    ] = False,
    assign_by: Annotated[
        str, typer.Option("--assign-by", help="One-to-one identity maximises 'overlap' (volume) or 'dice'.")
    ] = "overlap",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out file.")] = False,
) -> None:
    """Match failure-scan lesions to baseline lesions and write a failures table.

    Each failure lesion is local (it overlaps a baseline lesion grown by the
    tolerance), marginal (within the margin) or de novo. Local rows name the
    baseline lesion: lesion_id is the label number, as pofa extract numbers
    lesions. Coordinates are in baseline patient LPS mm.
    """
    from rich.console import Console
    from rich.table import Table

    from pofa.cli.extras import require

    require("imaging", command="pofa match")
    from pofa.atomic import refuse_special_file
    from pofa.imaging.matching import match_patient, match_to_failures_rows, write_failures_csv
    from pofa.imaging.registration import RegistrationSettings, register, transform_from_file
    from pofa.imaging.volume import Volume

    for what, path in (("the baseline lesions", baseline_lesions), ("the failure lesions", followup_lesions),
                       ("--transform", transform), ("--baseline-image", baseline_image),
                       ("--followup-image", followup_image), ("--followup-pet", followup_pet),
                       ("--organs", organs)):
        if path is not None:
            refuse_special_file(path, what)
    console = Console(highlight=False)
    out = Path(out)
    if out.exists() and not force:
        raise SettingsError(f"{out} exists; choose another --out, or add --force to replace it.")
    if out.suffix.lower() != ".csv":
        raise SettingsError(f"--out must be a .csv file; got {out}.")
    if scan_date:
        try:
            dt.date.fromisoformat(scan_date)
        except ValueError as exc:
            raise SettingsError(f"--scan-date must be a date as YYYY-MM-DD; got {scan_date!r}.") from exc
    if (baseline_image is None) != (followup_image is None):
        raise SettingsError("Give both --baseline-image and --followup-image (or neither).")
    if transform is not None and baseline_image is not None:
        raise SettingsError(
            "Give either --transform or registration images (--baseline-image, --followup-image), not both."
        )
    if modality.upper() not in ("CT", "PET"):
        raise SettingsError(f"--modality must be CT or PET; got {modality!r}.")

    base = Volume.from_nifti(baseline_lesions, units="label")
    fu = Volume.from_nifti(followup_lesions, units="label")
    reg = None
    if transform is not None:
        reg = transform_from_file(transform)
    elif baseline_image is not None and followup_image is not None:
        console.print(f"Registering {followup_image.name} to {baseline_image.name} ({modality.upper()}) ...")
        reg = register(
            Volume.from_nifti(baseline_image),
            Volume.from_nifti(followup_image),
            modality.upper(),
            RegistrationSettings(deformable=deformable),
            baseline_lesions=base,
            followup_lesions=fu,
        )
        console.print(reg.summary())
        if save_transform is not None:
            reg.save(save_transform)
            console.print(f"Transform written to {save_transform}")
    elif deformable or save_transform is not None:
        raise SettingsError("--deformable and --save-transform need --baseline-image and --followup-image.")

    result = match_patient(
        base,
        fu,
        reg,
        tolerance_mm=tolerance_mm,
        margin_mm=margin_mm,
        assign_by=assign_by,
        components=components,
    )
    feats = _followup_features(fu, followup_pet, organs, organ_names, components)
    pid = patient_id or _strip_nifti(Path(baseline_lesions).name)
    rows = match_to_failures_rows(result, patient_id=pid, scan_date=scan_date or "", followup_features=feats)
    write_failures_csv(rows, out)

    table = Table(title=f"Failure lesions of {pid}", title_justify="left")
    for col in ("label", "class", "baseline lesion", "overlap ml", "Dice", "distance mm", "group"):
        table.add_column(col)
    for r in result.followup:
        table.add_row(
            str(r.followup_label),
            r.match_class.value,
            "" if r.baseline_label is None else str(r.baseline_label) + ("" if r.assigned else " *"),
            f"{r.overlap_ml:.2f}",
            f"{r.dice:.3f}",
            "" if r.distance_mm != r.distance_mm else f"{r.distance_mm:.1f}",
            str(r.group_id),
        )
    console.print(table)
    first, second, _ = result.summary().split("\n", 2)
    console.print(f"{first} {second}")
    console.print("(* = attributed by overlap, not the one-to-one identity: a split or a merge)")
    if not scan_date:
        console.print("[yellow]note:[/] no --scan-date given; fill in scan_date before pofa validate.")
    console.print(f"Wrote {len(rows)} row(s) to {out}")


def _followup_features(
    fu: Volume, pet: Path | None, organs: Path | None, organ_names: str | None, components: bool
) -> tuple[LesionFeatures, ...]:
    """Lesion features of the failure scan (pofa.imaging.features), for diameter, site and extranodal."""
    import numpy as np

    from pofa.imaging.features import lesion_features
    from pofa.imaging.matching import as_label_map
    from pofa.imaging.organs import load_organ_map
    from pofa.imaging.volume import Volume, resample_to

    labels = as_label_map(fu, "follow-up")
    if components:
        import cc3d

        labels = labels.with_voxels(
            cc3d.connected_components(np.ascontiguousarray(labels.voxels) > 0, connectivity=26).astype(
                np.int32
            )
        )
    if pet is not None:
        suv = Volume.from_nifti(pet, units="SUV")
        if not suv.same_grid(labels):
            suv = resample_to(suv, labels, "linear")
    else:
        # geometry only: diameters and centres do not depend on the voxel values
        suv = labels.with_voxels(np.zeros(labels.shape, dtype=np.float32), units="none")
    organ_map = None
    if organs is not None:
        organ_map = load_organ_map(organs, organ_names)
    return tuple(lesion_features(suv, labels, organ_map))
