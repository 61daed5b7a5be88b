"""Writing a simulated study as a study folder (patients.csv, lesions.csv, failures.csv, study.toml).

The files are byte-for-byte reproducible: fixed column order, ISO dates, yes/no booleans, numbers with a
fixed number of decimals, ``\\n`` line ends, UTF-8. The folder is written atomically (built beside the
destination, then renamed into place).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pofa.atomic import output_dir
from pofa.errors import SettingsError
from pofa.simulate.generator import SimulatedStudy
from pofa.simulate.params import PRESETS, format_value

__all__ = ["study_files", "write_study"]

#: Decimals written per numeric column (all simulated values are already rounded to these).
_DECIMALS = {"diameter_cm": 1, "suvmax": 1, "x_mm": 1, "y_mm": 1, "z_mm": 1, "mtv_ml": 1, "tlg": 1}


def _cell_text(s: pd.Series) -> pd.Series:
    """One column as the text written to the CSV file."""
    name = str(s.name)
    if pd.api.types.is_datetime64_any_dtype(s):
        dates: pd.Series = s.dt.strftime("%Y-%m-%d").fillna("")
        return dates
    if pd.api.types.is_bool_dtype(s):
        return s.map({True: "yes", False: "no"})
    if name in _DECIMALS:
        fmt = f"{{:.{_DECIMALS[name]}f}}"
        return s.map(lambda v: "" if pd.isna(v) else fmt.format(v))
    if pd.api.types.is_integer_dtype(s):
        return s.map(str)
    return s.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))


def _csv(df: pd.DataFrame) -> str:
    from pofa.io.writers import csv_text

    text = pd.DataFrame({c: _cell_text(df[c]) for c in df.columns})
    return csv_text(text)  # a site named =cmd in --config is written inert (numbers stay as they are)


def study_toml(sim: SimulatedStudy) -> str:
    """Write the study.toml of a simulated study.

    Parameters
    ----------
    sim : SimulatedStudy
        The simulated study.

    Returns
    -------
    str
        A comment header (simulated, seed, preset, any parameters that differ from the preset) and a
        ``[study]`` table.
    """
    n = sim.params.cohort.n_patients
    preset_name = sim.preset
    lines = [
        "# SIMULATED study written by pofa.simulate: invented patients, not real data.",
        f"# Seed {sim.seed}, preset {preset_name or '(none)'}, {n} patients. To regenerate exactly:",
        f"#   pofa simulate --preset {preset_name or 'figura2021'} --seed {sim.seed} --patients {n} "
        "--out FOLDER" + (" --config PARAMS.toml" if preset_name in PRESETS and sim.params.differences(
            PRESETS[preset_name].with_values({"cohort.n_patients": n})) else ""),
    ]
    if preset_name in PRESETS:
        diff = sim.params.differences(PRESETS[preset_name].with_values({"cohort.n_patients": n}))
        if diff:
            lines.append("# Parameters that differ from the preset (put them in PARAMS.toml):")
            lines.extend(f"#   {k} = {format_value(v)}" for k, (v, _) in sorted(diff.items()))
    label = preset_name or "custom"
    name = f"simulated-{label}-seed{sim.seed}"
    description = (f"Simulated cohort of {n} patients (pofa.simulate, preset {preset_name or 'none'}, "
                   f"seed {sim.seed}); not real patients.")
    lines += [
        "[study]",
        f"name = {format_value(name)}",
        f"description = {format_value(description)}",
        "simulated = true",
        f"seed = {sim.seed}",
        f"preset = {format_value(preset_name)}",
        "",
    ]
    return "\n".join(lines)


def study_files(sim: SimulatedStudy, followup: bool = False) -> dict[str, str]:
    """The text of each file of the study folder, by file name.

    Parameters
    ----------
    sim : SimulatedStudy
        The simulated study.
    followup : bool
        Also the measurements and scans of a multi-scan follow-up
        (:func:`pofa.simulate.followup.simulate_followup`).

    Returns
    -------
    dict of {str: str}
        The text of each file of the study folder, by file name.
    """
    files = {
        "patients.csv": _csv(sim.patients),
        "lesions.csv": _csv(sim.lesions),
        "failures.csv": _csv(sim.failures),
        "study.toml": study_toml(sim),
    }
    if followup:
        from pofa.simulate.followup import simulate_followup

        measurements, scans = simulate_followup(sim)
        files["measurements.csv"] = _csv(measurements)
        files["scans.csv"] = _csv(scans)
    return files


def write_study(sim: SimulatedStudy, folder: str | Path, force: bool = False,
                followup: bool = False) -> Path:
    """Write a simulated study as a study folder.

    Parameters
    ----------
    sim : SimulatedStudy
        From :func:`pofa.simulate.simulate`.
    folder : str or pathlib.Path
        Destination folder; created (with its parents) if needed.
    force : bool
        Replace a non-empty existing folder. Without it a non-empty folder is refused.
    followup : bool
        Also write a multi-scan follow-up (``measurements.csv``, ``scans.csv``; docs/response.md).

    Returns
    -------
    pathlib.Path
        The folder written (absolute).

    Raises
    ------
    PofaError
        When ``folder`` is a file, or a non-empty folder and ``force`` is false.
    """
    if not isinstance(sim, SimulatedStudy):
        raise SettingsError("write_study needs a SimulatedStudy from pofa.simulate.simulate")
    files = study_files(sim, followup)
    path = Path(folder).absolute()
    with output_dir(path, force=force) as tmp:
        for name, text in files.items():
            (tmp / name).write_bytes(text.encode("utf-8"))
    return path
