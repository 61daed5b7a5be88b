"""Patterns-of-failure analysis after CAR T-cell therapy (pofa).

The Python API mirrors the command-line program::

    import pofa
    study = pofa.load_study("study_folder")
    report = study.validate()

The names below load on first use (PEP 562), so ``import pofa`` and ``pofa --help`` do not pay for pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Finding", "Settings", "Severity", "Study", "ValidationReport", "__version__", "load_study"]

#: Public name -> the module that defines it.
_LAZY = {
    "Finding": "pofa.findings",
    "Severity": "pofa.findings",
    "ValidationReport": "pofa.findings",
    "Settings": "pofa.settings",
    "Study": "pofa.study",
    "load_study": "pofa.study",
}

if TYPE_CHECKING:
    from pofa.findings import Finding, Severity, ValidationReport
    from pofa.settings import Settings
    from pofa.study import Study, load_study


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pofa' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
