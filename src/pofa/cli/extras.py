"""Optional parts of pofa: a command that needs an extra says exactly what to install.

The base install (``pip install pofa``) analyses study folders and writes the report. Reading scans needs
``pofa[imaging]`` and running on a Dask cluster ``pofa[cluster]``; :func:`require` checks that the modules
of an extra can be found (:func:`importlib.util.find_spec`, nothing is imported) before a command starts, and
otherwise exits with code 2 and the ``pip install`` line.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping

__all__ = ["EXTRAS", "available", "install_line", "missing_modules", "require"]

#: Each optional extra and the top-level modules it provides (import names, not distribution names).
EXTRAS: Mapping[str, tuple[str, ...]] = {
    "imaging": ("pydicom", "highdicom", "SimpleITK", "nibabel", "cc3d"),
    "cluster": ("dask", "distributed"),
    "pacs": ("dicomweb_client", "requests", "highdicom"),
}

#: What each extra is for, in the error message.
_PURPOSE: Mapping[str, str] = {
    "imaging": "reading PET/CT scans and masks",
    "cluster": "running on a Dask cluster",
    "pacs": "a PACS through DICOMweb",
}


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be found.

    Parameters
    ----------
    extra : str
        A key of :data:`EXTRAS`.

    Returns
    -------
    list of str
        Module names not installed (empty when the extra is complete).
    """
    missing = []
    for module in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module)
    return missing


def available(extra: str) -> bool:
    """Return whether every module of ``extra`` is installed.

    Parameters
    ----------
    extra : str
        A key of :data:`EXTRAS`.

    Returns
    -------
    bool
        True when none of its modules is missing.
    """
    return not missing_modules(extra)


def install_line(extra: str) -> str:
    """Return the command that installs ``extra``: ``pip install "pofa[imaging]"`` (quoted for every shell).

    Parameters
    ----------
    extra : str
        A key of :data:`EXTRAS`.

    Returns
    -------
    str
        The pip command line.
    """
    return f'pip install "pofa[{extra}]"'


def require(*extras: str, command: str) -> None:
    """Exit with code 2 and the ``pip install`` line when a module of ``extras`` is missing.

    Parameters
    ----------
    *extras : str
        Keys of :data:`EXTRAS` the command needs.
    command : str
        The command's name, for the message (e.g. ``"pofa extract"``).

    Raises
    ------
    typer.Exit
        With code 2 after printing the message, when an extra is incomplete.
    """
    from pofa.cli.output import fail

    for extra in extras:
        missing = missing_modules(extra)
        if missing:
            raise fail(f"{command} needs the optional {extra} dependencies ({_PURPOSE[extra]}; missing: "
                       f"{', '.join(missing)}). Install them with:\n\n    {install_line(extra)}\n")
