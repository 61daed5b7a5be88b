"""Atomic outputs: a file or folder appears complete or not at all.

Files are written to a temporary sibling and moved into place with :func:`os.replace`; output folders are
built in a temporary sibling folder and renamed, so an interrupted run never leaves half a report.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pofa.errors import PofaError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file 0600; give it the mode an ordinary open() would (0666 less the umask).
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def check_output_dir(path: Path, force: bool) -> None:
    """Refuse a non-empty existing output folder unless ``force``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PofaError(f"{path} exists and is not a folder", advice="choose another {out}")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise PofaError(f"the output folder {path} is not empty",
                        advice="choose another {out}, or add {force} to replace its contents")


@contextlib.contextmanager
def output_dir(path: Path, force: bool = False) -> Iterator[Path]:
    """Build an output folder atomically.

    Yields a temporary folder beside ``path``; when the block ends without an exception the temporary folder
    replaces ``path`` (an existing folder is replaced only with ``force``). On an exception nothing
    at ``path`` changes and the temporary folder is removed.
    """
    path = Path(path).absolute()
    check_output_dir(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; the finished folder gets the usual mode
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old: Path | None = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        if old is not None:
            os.replace(old, path)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
