"""``pofa extract``: the command-line wrapper over :func:`pofa.imaging.extract.extract`.

A plain function with typer annotations, registered in :mod:`pofa.cli`
(``app.command("extract")(extract_command)``). Every :class:`~pofa.errors.PofaError` is printed as
"error: ..." (what is wrong and what to do) with exit code 2, never a traceback. Importing this module is
light: numpy, SimpleITK, nibabel, pydicom and highdicom load only when the command runs. Outputs are written
atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pofa.cli.output import error_message
from pofa.errors import PofaError

__all__ = ["extract_command"]


def _fail(message: str) -> typer.Exit:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(2)


def extract_command(
    pet: Annotated[
        Path, typer.Argument(help="PET: DICOM folder, or NIfTI (SUV, or activity + JSON sidecar).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Lesion table to write (CSV, study lesions format).")],
    ct: Annotated[
        Path | None, typer.Option("--ct", help="CT: DICOM folder or NIfTI (adds ct_hu_mean).")
    ] = None,
    mask: Annotated[
        Path | None, typer.Option("--mask", help="Lesion mask: NIfTI label map, DICOM SEG or RTSTRUCT file.")
    ] = None,
    threshold: Annotated[
        str | None,
        typer.Option("--threshold", help="suv4 | suv2.5 | 41pct | percist | a number (SUV >= number)."),
    ] = None,
    organs: Annotated[
        Path | None,
        typer.Option("--organs", help="Organ label map (NIfTI) or folder of organ masks (TotalSegmentator)."),
    ] = None,
    organ_names: Annotated[
        str | None,
        typer.Option(
            "--organ-names",
            help="Organ label names: totalsegmentator (v2, default), totalsegmentator-v1, or a JSON/CSV "
            "table.",
        ),
    ] = None,
    liver: Annotated[
        Path | None, typer.Option("--liver", help="Liver mask (NIfTI) for --threshold percist.")
    ] = None,
    patient_id: Annotated[
        str | None,
        typer.Option(
            "--patient-id", help="Patient id written in the table (default: the PET file/folder name)."
        ),
    ] = None,
    seeds: Annotated[
        Path | None,
        typer.Option(
            "--seeds",
            help="CSV of reader-confirmed lesion points: x_mm,y_mm,z_mm (patient LPS) [,lesion_id].",
        ),
    ] = None,
    min_volume_ml: Annotated[
        float, typer.Option("--min-volume-ml", help="Drop lesions smaller than this (ml).")
    ] = 0.0,
    label_map: Annotated[
        Path | None, typer.Option("--label-map", help="Also write the lesion label map (.nii.gz).")
    ] = None,
    seg: Annotated[
        Path | None, typer.Option("--seg", help="Also write the lesion label map as DICOM SEG (.dcm).")
    ] = None,
    suv: Annotated[str, typer.Option("--suv", help="bw | lbm-james | lbm-janmahasatian.")] = "bw",
    weight_kg: Annotated[
        float | None, typer.Option("--weight-kg", help="Body weight (kg) if the header lacks it.")
    ] = None,
    height_m: Annotated[
        float | None, typer.Option("--height-m", help="Height (m) for SUL if the header lacks it.")
    ] = None,
    sex: Annotated[str | None, typer.Option("--sex", help="M or F for SUL if the header lacks it.")] = None,
    pet_series: Annotated[
        str | None,
        typer.Option("--pet-series", help="SeriesInstanceUID of the PET when the folder holds several."),
    ] = None,
    ct_series: Annotated[
        str | None,
        typer.Option("--ct-series", help="SeriesInstanceUID of the CT when the folder holds several."),
    ] = None,
    roi: Annotated[
        list[str] | None, typer.Option("--roi", help="RTSTRUCT ROI name to use (repeatable).")
    ] = None,
    seed_tolerance_mm: Annotated[
        float, typer.Option("--seed-tolerance-mm", help="A seed this close (mm) to a lesion selects it.")
    ] = 5.0,
    force: Annotated[bool, typer.Option("--force", help="Replace existing output files.")] = False,
) -> None:
    """Compute SUV, segment lesions, write one row per lesion (SUVmax, SUVpeak, MTV, TLG, diameters)."""
    from pofa.cli.extras import require

    require("imaging", command="pofa extract")
    from pofa.atomic import refuse_special_file
    from pofa.imaging.extract import extract

    for what, path in (("the PET", pet), ("--ct", ct), ("--mask", mask), ("--organs", organs),
                       ("--liver", liver), ("--seeds", seeds)):
        if path is not None:
            try:
                refuse_special_file(path, what)
            except PofaError as exc:
                raise _fail(error_message(exc)) from None
    manifest = out.with_name(out.name.removesuffix(".csv") + ".manifest.json")
    targets = [t for t in (out, label_map, seg, manifest) if t is not None]
    existing = [str(t) for t in targets if t.exists() or t.is_symlink()]
    if existing and not force:
        raise _fail(f"{', '.join(existing)} already exist(s); choose another --out, or add --force to "
                    "replace")
    folders = [str(t) for t in targets if t.is_dir()]
    if folders:
        raise _fail(f"{', '.join(folders)} is a folder; give a file name")
    try:
        result = extract(
            pet,
            ct=ct,
            mask=mask,
            threshold=threshold,
            organs=organs,
            organ_names=organ_names,
            liver_mask=liver,
            patient_id=patient_id,
            seeds=seeds,
            min_volume_ml=min_volume_ml,
            suv=suv,
            weight_kg=weight_kg,
            height_m=height_m,
            sex=sex,
            pet_series=pet_series,
            ct_series=ct_series,
            roi_names=roi or None,
            seed_tolerance_mm=seed_tolerance_mm,
        )
        written = [result.write_csv(out)]
        if label_map is not None:
            written.append(result.write_label_map(label_map))
        if seg is not None:
            written.append(result.write_seg(seg))
        result.write_manifest(manifest, written)
    except PofaError as exc:
        raise _fail(error_message(exc)) from None
    p = result.patient
    for w in result.warnings:
        typer.echo(f"warning: {w}", err=True)
    typer.echo(
        f"{result.patient_id}: {p.n_lesions} lesion(s), total MTV {p.total_mtv_ml:.1f} ml, "
        f"total TLG {p.total_tlg:.1f}, {result.suv.factors.units}; wrote "
        + ", ".join(str(w) for w in [*written, manifest])
    )
