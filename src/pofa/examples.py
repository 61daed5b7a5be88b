"""A simulated, fully analysed study for the report's tests, benchmark and previews.

:func:`simulated_analysis` runs the real pipeline: :func:`pofa.simulate.simulate` (preset ``figura2021``)
writes a study folder, :func:`pofa.load_study` reads it, :func:`pofa.analysis.run_analysis` classifies it, and
the statistics of :func:`pofa.stats.study_stats.study_statistics` are added under their results.json keys
(when the analysis' own steps have not already added them). Invented patients only.

Preview a report from the command line::

    python3 -m pofa.examples OUT_DIR [N_PATIENTS] [SEED]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["analyse", "simulated_analysis"]


def analyse(study: Any) -> Any:
    """Analyse a study with :func:`pofa.analysis.run_analysis` (every statistic of the study_stats module).

    Parameters
    ----------
    study : pofa.study.Study
        The study to analyse.

    Returns
    -------
    pofa.analysis.AnalysisResult
        The analysis.
    """
    from pofa.analysis import run_analysis

    return run_analysis(study)


def simulated_analysis(
    folder: str | Path, n_patients: int = 63, seed: int = 2021, *, edit: Callable[[Path], None] | None = None
) -> Any:
    """Simulate a study into ``folder`` (replaced if it exists), optionally edit its files, and analyse it.

    Parameters
    ----------
    folder : str or Path
        Where the study folder is written.
    n_patients : int
        Patients of the simulated cohort (preset ``figura2021`` otherwise).
    seed : int
        Simulation seed.
    edit : callable, optional
        Called with the study folder before it is read (e.g. to make ids or dates distinctive).

    Returns
    -------
    pofa.analysis.AnalysisResult
        The analysis of the simulated study.
    """
    import pofa
    from pofa.simulate import apply_overrides, preset, simulate, write_study

    params = preset("figura2021")
    if n_patients != params.cohort.n_patients:
        params = apply_overrides(params, {"cohort.n_patients": int(n_patients)})
    path = write_study(simulate(params, seed=seed), folder, force=True)
    if edit is not None:
        edit(path)
    return analyse(pofa.load_study(path))


def main(argv: list[str] | None = None) -> int:
    """Write a report of a simulated study: ``python3 -m pofa.examples OUT_DIR [N] [SEED]``.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: the command line's).

    Returns
    -------
    int
        The exit code: 0 when the report was written, 2 without arguments.
    """
    import tempfile

    from pofa.report import write_report

    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(main.__doc__)
        return 2
    out = Path(args[0])
    n = int(args[1]) if len(args) > 1 else 63
    seed = int(args[2]) if len(args) > 2 else 2021
    with tempfile.TemporaryDirectory() as tmp:
        result = simulated_analysis(Path(tmp) / "study", n, seed)
    files = write_report(result, out)
    print(f"report: {files.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
