"""Command-line entry for the simulator (registered as ``pofa simulate`` by pofa.cli).

Light to import: numpy, scipy and pandas load only when the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["simulate_command"]


def simulate_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the simulated study into.")],
    preset: Annotated[str, typer.Option("--preset", help="Parameter preset to start from.")] = "figura2021",
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed (same seed, same study).")] = 2021,
    patients: Annotated[int | None, typer.Option("--patients", min=1,
                                                 help="Number of patients (default: the preset's).")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Change one parameter, e.g. --set failure.log_or_bulky=1.2 (repeatable; see "
                      "docs/simulation.md for every key).")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", help="TOML file of parameters (\\[cohort], \\[lesions], \\[failure], \\[survival], "
                         "\\[followup], \\[covariates]); applied before --set.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty --out folder that pofa wrote "
                                        "(recognised by its record, every file unchanged); any other "
                                        "folder is refused.")] = False,
    followup: Annotated[bool, typer.Option(
        "--followup", help="Also write multi-scan follow-up imaging (measurements.csv, scans.csv; "
                           "docs/response.md).")] = False,
) -> None:
    """Simulate a study (patients, lesions, failures) calibrated to Figura et al. 2021 and write it.

    The data are invented: the folder's study.toml says so, with the seed and preset to regenerate it.
    """
    from pofa.cli.output import error_message, fail
    from pofa.errors import PofaError
    from pofa.simulate.generator import simulate
    from pofa.simulate.params import load_params
    from pofa.simulate.writer import write_study

    try:
        params = load_params(preset, config=config, assignments=set_ or (), n_patients=patients)
        sim = simulate(params, seed, preset=preset)
        path = write_study(sim, out, force=force, followup=followup)
    except PofaError as exc:
        raise fail(error_message(exc)) from None
    typer.echo(sim.summary())
    typer.echo(f"Wrote {path} (simulated data, not real patients).")
