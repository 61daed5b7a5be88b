"""Write manifest.json: what made an output folder (versions, input checksums, settings, seeds, files).

The manifest lets anyone check, later, that a report came from given input files and settings and that no
file of the folder has changed since. It records what the outputs withheld (``privacy``: identifying columns
read but never written, patients as sequence numbers, dates as days), and it is how pofa recognises its own
output folders: ``--force`` replaces only a folder holding pofa's manifest
(:func:`pofa.atomic.is_pofa_output`). It contains no calendar dates (not even the run's), so the same analysis
of the same files gives the same manifest, byte for byte.
"""

from __future__ import annotations

import functools
import json
import platform
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from pofa.atomic import write_text
from pofa.io.hashing import sha256_file

__all__ = [
    "DEPENDENCIES",
    "MANIFEST_NAME",
    "build_manifest",
    "dependency_versions",
    "file_entries",
    "write_manifest",
]

MANIFEST_NAME = "manifest.json"
#: Distributions whose versions are recorded (those installed).
DEPENDENCIES = (
    "numpy",
    "pandas",
    "scipy",
    "statsmodels",
    "matplotlib",
    "jinja2",
    "openpyxl",
    "pyarrow",
    "firthmodels",
    "pydicom",
    "highdicom",
    "SimpleITK",
    "nibabel",
    "connected-components-3d",
    "dask",
    "distributed",
    "typer",
    "rich",
)
#: Manifest format version (bumped when keys change).
MANIFEST_VERSION = 1


def dependency_versions() -> dict[str, str]:
    """Collect the versions of pofa, Python and the installed dependencies.

    Returns
    -------
    dict[str, str]
        ``{"pofa": "0.1.0", "python": ..., <dependency>: <version>}``; dependencies that are not installed
        are left out.
    """
    return dict(_versions())


@functools.cache
def _versions() -> tuple[tuple[str, str], ...]:
    # looked up once per process: each lookup searches every folder of sys.path (a hundredth of a second
    # for the list), and a run asks twice (the report's provenance and manifest.json)
    from pofa import __version__

    out = [("pofa", __version__), ("python", platform.python_version())]
    for name in DEPENDENCIES:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return tuple(out)


def file_entries(out_dir: Path) -> list[dict[str, Any]]:
    """List every file under ``out_dir`` except the manifest itself and hidden files.

    Parameters
    ----------
    out_dir : Path
        The output folder.

    Returns
    -------
    list of dict
        ``{"path", "bytes", "sha256"}`` per file (POSIX path relative to ``out_dir``), sorted by path.
    """
    out_dir = Path(out_dir)
    entries = []
    for p in sorted(out_dir.rglob("*")):
        rel = p.relative_to(out_dir)
        if (
            not p.is_file()
            or rel.as_posix() == MANIFEST_NAME
            or any(part.startswith(".") for part in rel.parts)
        ):
            continue
        entries.append({"path": rel.as_posix(), "bytes": p.stat().st_size, "sha256": sha256_file(p)})
    return entries


def build_manifest(
    out_dir: Path,
    *,
    settings: Mapping[str, Any],
    input_hashes: Mapping[str, str],
    seeds: Mapping[str, int],
    report_options: Mapping[str, Any] | None = None,
    versions: Mapping[str, str] | None = None,
    privacy: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the manifest document of ``out_dir`` (its files are hashed as they are now).

    Parameters
    ----------
    out_dir : Path
        The output folder.
    settings : Mapping[str, Any]
        The analysis settings as JSON (``Settings.to_json()``).
    input_hashes : Mapping[str, str]
        SHA-256 of each input file.
    seeds : Mapping[str, int]
        Random seeds of every random step (empty when nothing random was done).
    report_options : Mapping[str, Any], optional
        Options the report was written with (``{"show_ids": False}``).
    versions : Mapping[str, str], optional
        Software versions to record (default: :func:`dependency_versions`).
    privacy : Mapping[str, Any], optional
        Which columns were withheld and how patients and dates appear. Defaults to the ``privacy`` entry
        of ``out_dir/results.json`` when that file exists (written before the manifest).

    Returns
    -------
    dict[str, Any]
        The manifest: versions, platform, input checksums, settings, seeds, report options, privacy and
        the files of the folder.
    """
    v = dict(versions) if versions is not None else dependency_versions()
    if privacy is None:
        privacy = _results_privacy(Path(out_dir))
    return {
        "manifest_version": MANIFEST_VERSION,
        "pofa_version": v.get("pofa"),
        "python": v.get("python"),
        "platform": f"{platform.system()} {platform.machine()}",
        "dependencies": {k: val for k, val in v.items() if k not in ("pofa", "python")},
        "inputs": {"sha256": dict(sorted(input_hashes.items()))},
        "settings": settings,
        "random_seeds": dict(seeds),
        "random_seeds_note": (
            "the analysis used no random numbers" if not seeds else "seeds of every random step, by step"
        ),
        "report": dict(report_options or {}),
        "privacy": dict(privacy or {}),
        "files": file_entries(out_dir),
    }


def _results_privacy(out_dir: Path) -> dict[str, Any]:
    path = out_dir / "results.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    privacy = data.get("privacy") if isinstance(data, dict) else None
    return dict(privacy) if isinstance(privacy, dict) else {}


def write_manifest(out_dir: Path, **kwargs: Any) -> Path:
    """Write ``out_dir/manifest.json`` (atomically).

    Parameters
    ----------
    out_dir : Path
        The output folder.
    **kwargs : Any
        The keyword arguments of :func:`build_manifest`.

    Returns
    -------
    Path
        The path of manifest.json.
    """
    doc = build_manifest(out_dir, **kwargs)
    path = Path(out_dir) / MANIFEST_NAME
    write_text(path, json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    return path
