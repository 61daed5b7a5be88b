"""Exceptions raised by pofa.

Every error a user can cause derives from :class:`PofaError`. The command-line program catches it, prints its
message (which says what is wrong and what to do next) and exits with a non-zero code instead of a traceback.
"""

from __future__ import annotations


class PofaError(Exception):
    """Base class of every error pofa raises on bad input or settings."""


class StudyError(PofaError):
    """A study folder cannot be read or is not valid."""


class SettingsError(PofaError):
    """An analysis setting (study.toml or a command-line option) is invalid."""


class EstimationError(PofaError):
    """A statistical model cannot be estimated from the data given (with the reason)."""


class ImagingError(PofaError):
    """An image, DICOM series or mask cannot be read or used."""


class ModelFileError(PofaError):
    """A saved risk-model file is refused (unknown format, version or features)."""
