"""Shared fixtures: the bundled example study and a helper to write small studies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pofa.data import bundled_study


@pytest.fixture
def example_study(tmp_path: Path) -> Path:
    """A private copy of the bundled example study (tests may edit it)."""
    dest = tmp_path / "example"
    shutil.copytree(bundled_study("example"), dest)
    return dest
