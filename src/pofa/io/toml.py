"""The one TOML reader of pofa: a file (``study.toml``, a simulation configuration) to a dict.

Every file read is untrusted: the bytes must be UTF-8 and valid TOML 1.0 (:mod:`tomllib`); anything else
raises :class:`TomlFileError` whose message names the file and what is wrong, and whose ``reason`` tells a
missing file from an unreadable or an invalid one, so that each caller can add its own advice.
"""

from __future__ import annotations

import enum
import tomllib
from pathlib import Path
from typing import Any

from pofa.errors import SettingsError

__all__ = ["TomlFileError", "TomlProblem", "parse_toml_value", "read_toml"]


class TomlProblem(enum.StrEnum):
    """Why a TOML file could not be read."""

    MISSING = "missing"
    UNREADABLE = "unreadable"
    INVALID = "invalid"


class TomlFileError(SettingsError):
    """A TOML file is missing, unreadable, or not valid UTF-8 TOML.

    Parameters
    ----------
    path : Path
        The file.
    reason : TomlProblem
        Which of the three problems.
    detail : str
        The parser's or the operating system's words.
    """

    def __init__(self, path: Path, reason: TomlProblem, detail: str) -> None:
        self.path = path
        self.reason = reason
        self.detail = detail
        what = {TomlProblem.MISSING: "does not exist", TomlProblem.UNREADABLE: f"cannot be read ({detail})",
                TomlProblem.INVALID: f"is not valid TOML ({detail})"}[reason]
        super().__init__(f"{path} {what}")


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file.

    Parameters
    ----------
    path : str or Path
        The file; it is only read.

    Returns
    -------
    dict
        The document's tables and values as :func:`tomllib.loads` returns them.

    Raises
    ------
    TomlFileError
        When the file does not exist, cannot be read, is not UTF-8 or is not valid TOML.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise TomlFileError(path, TomlProblem.MISSING, "no such file") from None
    except OSError as exc:
        raise TomlFileError(path, TomlProblem.UNREADABLE, exc.strerror or str(exc)) from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise TomlFileError(path, TomlProblem.INVALID, f"not UTF-8 text: {exc.reason}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TomlFileError(path, TomlProblem.INVALID, str(exc)) from None


def parse_toml_value(text: str) -> Any:
    """One value written as in TOML (``1.2``, ``true``, ``[5, 7.5]``, ``"text"``), or the text itself.

    Parameters
    ----------
    text : str
        The value's text, e.g. the right-hand side of ``key=value``.

    Returns
    -------
    Any
        The TOML value, or ``text`` unchanged when it is not a TOML value (a bare word).
    """
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
