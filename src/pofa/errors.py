"""Exceptions raised by pofa.

Every error a user can cause derives from :class:`PofaError`. The command-line program catches it, prints its
message (which says what is wrong and what to do next) and exits with a non-zero code instead of a traceback.
"""

from __future__ import annotations

import string
from collections.abc import Callable

__all__ = [
    "EstimationError",
    "ImagingError",
    "ModelFileError",
    "PofaError",
    "SettingsError",
    "StudyError",
    "option_as_parameter",
]


def option_as_parameter(name: str) -> str:
    """Return how the Python API names an option in advice: its parameter name (``weight_kg``).

    Parameters
    ----------
    name : str
        The option's parameter name.

    Returns
    -------
    str
        ``name`` unchanged.
    """
    return name


class PofaError(Exception):
    """Base class of every error pofa raises on bad input or settings.

    The library says what is wrong; what to do about an option goes in ``advice``, a text whose ``{fields}``
    are option names (the functions' parameter names, e.g. ``"give {weight_kg} or use {suv} bw"``). ``str()``
    of the error spells them as parameter names; the command-line program spells them as its flags
    (``--weight-kg``), so only the CLI speaks of flags.

    Parameters
    ----------
    message : str
        What is wrong.
    advice : str, optional
        What to do, naming options as ``{name}`` fields.
    """

    def __init__(self, message: str = "", *, advice: str | None = None) -> None:
        self.message = message
        self.advice = advice
        super().__init__(self.render(option_as_parameter))

    @property
    def options(self) -> tuple[str, ...]:
        """The option names the advice refers to, in order.

        Returns
        -------
        tuple of str
            The ``{name}`` fields of the advice (empty when the advice is plain text).
        """
        if not self.advice:
            return ()
        try:
            return tuple(dict.fromkeys(f for _, f, _, _ in string.Formatter().parse(self.advice) if f))
        except ValueError:  # an unbalanced brace: the advice is plain text
            return ()

    def render(self, spell: Callable[[str], str]) -> str:
        """Return the message with its advice, each option spelled by ``spell`` (e.g. as a command-line flag).

        Parameters
        ----------
        spell : callable
            Option name -> how to show it.

        Returns
        -------
        str
            ``"message; advice"`` (the message alone without advice).
        """
        if not self.advice:
            return self.message
        try:
            advice = self.advice.format_map({name: spell(name) for name in self.options})
        except (ValueError, KeyError, IndexError):  # not a template (e.g. a brace in a file name)
            advice = self.advice
        return f"{self.message}; {advice}" if self.message else advice


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
