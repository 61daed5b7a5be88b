"""The report's figures, kept for imports written before the figures moved to :mod:`pofa.report.plots`.

:mod:`pofa.report.plots` has one module per figure.
"""

from __future__ import annotations

from pofa.report.plots import *  # noqa: F403
from pofa.report.plots import __all__ as __all__  # noqa: PLC0414
