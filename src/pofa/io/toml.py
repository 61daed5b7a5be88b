"""The one TOML reader of pofa: a file (``study.toml``, a simulation configuration) to a dict.

Every file read is untrusted: the bytes must be UTF-8 and valid TOML 1.0 (:mod:`tomllib`); anything else
raises :class:`TomlFileError` whose message names the file and what is wrong, and whose ``reason`` tells a
missing file from an unreadable or an invalid one, so that each caller can add its own advice.
"""

from __future__ import annotations

import enum
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from pofa.errors import SettingsError

__all__ = ["MAX_TOML_BYTES", "TomlFileError", "TomlProblem", "parse_toml_value", "read_toml",
           "read_toml_text"]

#: Largest TOML file read (settings and configurations are a few kilobytes).
MAX_TOML_BYTES = 1 << 20


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
        When the file does not exist, is not a regular file, is too large, cannot be read, is not UTF-8 or is
        not valid TOML.
    """
    return read_toml_text(path)[0]


def read_toml_text(path: str | Path) -> tuple[dict[str, Any], str]:
    """Read a TOML file and keep its text (for findings that point at a line).

    Only a regular file of at most :data:`MAX_TOML_BYTES` is read: a FIFO would block the reader and a device
    could be read without end. A document nested too deeply for the parser is invalid, not a crash.

    Parameters
    ----------
    path : str or Path
        The file; it is only read.

    Returns
    -------
    tuple of (dict, str)
        The document as :func:`tomllib.loads` returns it, and its text.

    Raises
    ------
    TomlFileError
        As :func:`read_toml`.
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise TomlFileError(path, TomlProblem.MISSING, "no such file") from None
    except OSError as exc:
        raise TomlFileError(path, TomlProblem.UNREADABLE, exc.strerror or str(exc)) from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a pipe, device or socket)"
        raise TomlFileError(path, TomlProblem.UNREADABLE, kind)
    if st.st_size > MAX_TOML_BYTES:
        raise TomlFileError(path, TomlProblem.UNREADABLE, f"{st.st_size} bytes, more than {MAX_TOML_BYTES}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TomlFileError(path, TomlProblem.UNREADABLE, exc.strerror or str(exc)) from None
    try:
        text = raw.decode("utf-8")
        return tomllib.loads(text), text
    except UnicodeDecodeError as exc:
        raise TomlFileError(path, TomlProblem.INVALID, f"not UTF-8 text: {exc.reason}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TomlFileError(path, TomlProblem.INVALID, str(exc)) from None
    except RecursionError:
        raise TomlFileError(path, TomlProblem.INVALID, "nested too deeply") from None


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
