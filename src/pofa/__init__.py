"""Patterns-of-failure analysis after CAR T-cell therapy (pofa).

The Python API mirrors the command-line program::

    import pofa
    study = pofa.load_study("study_folder")
    report = study.validate()
"""

from __future__ import annotations

from pofa.findings import Finding, Severity, ValidationReport
from pofa.settings import Settings
from pofa.study import Study, load_study

__version__ = "0.1.0"

__all__ = ["Finding", "Settings", "Severity", "Study", "ValidationReport", "__version__", "load_study"]
