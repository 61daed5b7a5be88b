"""Bundled studies: ``example`` (five invented patients) and ``demo`` (a simulated 63-patient study)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def bundled_study(name: str) -> Path:
    """Path of a bundled study folder (``"example"`` or ``"demo"``)."""
    path = Path(str(resources.files("pofa.data") / name))
    if not (path / "patients.csv").is_file():
        raise FileNotFoundError(f"pofa ships no study called {name!r}")
    return path
