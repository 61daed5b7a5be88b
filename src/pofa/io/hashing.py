"""SHA-256 of files and folders: the one digest behind pofa's records, manifests, caches and input keys."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["sha256_file", "sha256_path"]

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Compute the SHA-256 of a file's bytes (read in 1 MiB chunks).

    Parameters
    ----------
    path : str or PathLike
        The file.

    Returns
    -------
    str
        The hex digest.
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_path(path: str | os.PathLike[str]) -> str:
    """Compute the SHA-256 of a file, or of a folder's content (its files' bytes, not their names).

    Hidden files and folders (names starting with ``.``) are included: a DICOM reader may read them. Names
    are left out, so a series whose files are renamed (a PACS export, pofa's cache) keeps its hash.

    Parameters
    ----------
    path : str or PathLike
        The file or folder.

    Returns
    -------
    str
        The hex digest (for a folder: of the sorted ``sha256\\n`` lines of all its files, at any depth).

    Raises
    ------
    FileNotFoundError
        When ``path`` is neither a file nor a folder.
    """
    p = Path(path)
    if p.is_file():
        return sha256_file(p)
    if not p.is_dir():
        raise FileNotFoundError(f"{p} is neither a file nor a folder")
    lines = sorted(f"{sha256_file(f)}\n" for f in p.rglob("*") if f.is_file())
    return hashlib.sha256("".join(lines).encode("ascii")).hexdigest()
