"""Simulation-based power and sample size, and a simulation study of the statistics themselves.

Power and sample size for lesion-level and patient-level studies; coverage of GEE and logistic confidence
intervals.

>>> from pofa.power import LesionOutcome, PlannedStudy             # doctest: +SKIP
>>> from pofa.power.power import power, sample_size                # doctest: +SKIP
>>> study = PlannedStudy(63, LesionOutcome(odds_ratio=2.0))        # doctest: +SKIP
>>> power(study, replicates=1000, seed=1).tests[0].power           # doctest: +SKIP

The functions ``power`` and ``coverage`` live in the submodules of the same names
(:mod:`pofa.power.power`, :mod:`pofa.power.coverage`); the package does not re-export them because a
submodule attribute would shadow them. See docs/power.md. Importing this package is light: numpy, scipy
and dask load when something runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pofa.power.design import (
    EffectScale,
    LesionDistribution,
    LesionOutcome,
    PlannedStudy,
    SimulatorOutcome,
    SurvivalOutcome,
)

if TYPE_CHECKING:
    from pofa.power.coverage import CoverageResult, MethodCoverage
    from pofa.power.power import PowerEstimate, PowerResult, SampleSizeResult, sample_size

__all__ = [
    "CoverageResult",
    "EffectScale",
    "LesionDistribution",
    "LesionOutcome",
    "MethodCoverage",
    "PlannedStudy",
    "PowerEstimate",
    "PowerResult",
    "SampleSizeResult",
    "SimulatorOutcome",
    "SurvivalOutcome",
    "sample_size",
]

_LAZY = {
    "CoverageResult": "pofa.power.coverage",
    "MethodCoverage": "pofa.power.coverage",
    "PowerResult": "pofa.power.power",
    "SampleSizeResult": "pofa.power.power",
    "PowerEstimate": "pofa.power.power",
    "sample_size": "pofa.power.power",
}


def __getattr__(name: str) -> Any:
    """Import the numerical modules only when they are used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pofa.power' has no attribute {name!r}")
