"""Simulated cohorts in the study-folder format, calibrated to Figura et al. (IJROBP 2021).

>>> from pofa.simulate import preset, simulate, write_study
>>> sim = simulate(preset("figura2021"), seed=2021)           # doctest: +SKIP
>>> write_study(sim, "my_simulated_study/")                    # doctest: +SKIP

The generative model and its calibration are described in docs/simulation.md. Importing this package is
light (standard library only); numpy, scipy and pandas are imported when a simulation runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pofa.simulate.params import (
    PRESETS,
    CohortParams,
    CovariateParams,
    FailureParams,
    FollowupParams,
    LesionParams,
    SimulationParams,
    SiteSpec,
    SurvivalParams,
    apply_overrides,
    load_params,
    preset,
)

if TYPE_CHECKING:
    from pofa.simulate.generator import SimulatedStudy, simulate
    from pofa.simulate.writer import write_study

__all__ = [
    "PRESETS",
    "CohortParams",
    "CovariateParams",
    "FailureParams",
    "FollowupParams",
    "LesionParams",
    "SimulatedStudy",
    "SimulationParams",
    "SiteSpec",
    "SurvivalParams",
    "apply_overrides",
    "load_params",
    "preset",
    "simulate",
    "write_study",
]

_LAZY = {"simulate": "pofa.simulate.generator", "SimulatedStudy": "pofa.simulate.generator",
         "write_study": "pofa.simulate.writer"}


def __getattr__(name: str) -> Any:
    """Import the numerical modules only when they are used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pofa.simulate' has no attribute {name!r}")
