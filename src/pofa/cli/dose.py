"""``pofa dose``: dose to failure lesions from a plan's RTDOSE, with their field classes.

Heavy imports (numpy, pydicom, SimpleITK) load only when the command runs. The table is written atomically,
and only when every input was read and every lesion lies inside the dose grid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pofa.cli.output import console, err_console, error_message, fail
from pofa.errors import PofaError

__all__ = ["dose_command"]


def dose_command(
    failure_labels: Annotated[Path, typer.Argument(
        help="Failure lesions: NIfTI label map, DICOM SEG or RTSTRUCT (one label per lesion).")],
    rtdose: Annotated[Path, typer.Option("--rtdose", help="The plan's RTDOSE file.")],
    out: Annotated[Path, typer.Option("--out", help="CSV to write, one row per failure lesion.")],
    prescription_gy: Annotated[float | None, typer.Option(
        "--prescription-gy", help="Prescription dose in Gy (default: the RTPLAN's).")] = None,
    fractions: Annotated[int | None, typer.Option(
        "--fractions", help="Number of fractions (default: the RTPLAN's).")] = None,
    rtplan: Annotated[Path | None, typer.Option(
        "--rtplan", help="The RTPLAN: prescription, fractions, frame of reference checked.")] = None,
    transform: Annotated[Path | None, typer.Option(
        "--transform", help="ITK transform from registration: planning scan (fixed) -> failure scan.")
    ] = None,
    settings: Annotated[Path | None, typer.Option(
        "--settings", help="A study.toml whose \\[radiotherapy] section sets the thresholds.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out file.")] = False,
) -> None:
    """Dose to each failure lesion (Dmin, Dmean, Dmax, D95, V95, centroid dose) and its field class."""
    from rich.text import Text

    from pofa.cli.extras import require

    require("imaging", command="pofa dose")
    from pofa.atomic import write_text
    from pofa.io.toml import TomlFileError, read_toml_text
    from pofa.rt.lesion import dose_csv, dose_for_failures
    from pofa.settings import parse_settings

    if out.is_dir():
        raise fail(f"{out} is a folder; give the CSV file's name, e.g. --out {out / 'dose.csv'}")
    if (out.exists() or out.is_symlink()) and not force:
        raise fail(f"{out} exists; choose another --out, or add --force to replace it")
    try:
        from pofa.atomic import refuse_special_file

        for what, path in (("the failure labels", failure_labels), ("--rtdose", rtdose), ("--rtplan", rtplan),
                           ("--transform", transform), ("--settings", settings)):
            if path is not None:
                refuse_special_file(path, what)
        rt_settings = None
        if settings is not None:
            try:
                data, text = read_toml_text(settings)
            except TomlFileError as exc:
                raise fail(f"cannot read the settings: {exc}") from exc
            parsed, findings = parse_settings(data, text)
            if findings:
                raise fail("; ".join(f"{settings}: {f.message} ({f.hint})" for f in findings))
            rt_settings = parsed.radiotherapy
        if fractions is not None and fractions <= 0:
            raise fail("--fractions must be a whole number above 0")
        run = dose_for_failures(failure_labels, rtdose, prescription_gy, fractions, rtplan, transform,
                                rt_settings)
        for w in run.warnings:
            err_console.print(Text.assemble(("warning: ", "yellow"), w))
        write_text(out, dose_csv(run.lesions))
    except PofaError as exc:
        raise fail(error_message(exc)) from exc
    agree = sum(r.classes_agree for r in run.lesions)
    console.print(Text(f"{len(run.lesions)} failure lesion(s) written to {out}; prescription "
                       f"{run.prescription_gy:g} Gy, isodose {run.isodose_gy:g} Gy; "
                       f"the two rules agree on {agree}."))
