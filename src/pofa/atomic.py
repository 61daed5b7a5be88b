"""Atomic outputs: a file or folder appears complete or not at all.

Files are written to a temporary sibling and moved into place with :func:`os.replace`. Output folders are
built in a temporary sibling folder ``.NAME.<random>.partial`` (marked by a ``.pofa-partial`` file naming the
process) and then swapped with the existing folder in one step (Linux ``renameat2(RENAME_EXCHANGE)``), so
that the output folder is never missing, not even for a moment; elsewhere the old folder is first renamed
aside and the new one renamed into place. A run killed at any moment leaves the previous output intact; its
leftovers (hidden ``.NAME.*.partial`` and ``.NAME.old-*`` folders) are recognised by their name and by the
marker, pofa's manifest.json or pofa's record inside them, and removed by the next run. pofa removes nothing
else.

With ``force``, an existing folder is replaced only when pofa wrote it: for analysis outputs
(:func:`is_pofa_output`) a folder holding pofa's manifest.json and only the files it lists; for every other
folder pofa writes (study folders of ``pofa simulate``, ``pofa build-study``, ``pofa import redcap``,
``pofa template --csv``) a folder holding pofa's record ``.pofa-written.json`` (the SHA-256 of every file
pofa wrote into it) whose files are all unchanged and which holds no other file (:func:`is_pofa_folder`).
A folder edited since, or holding a file pofa did not write, is refused whatever ``force`` says.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pofa.errors import PofaError
from pofa.io.hashing import sha256_file

__all__ = [
    "MANIFEST_NAME",
    "PARTIAL_MARKER",
    "check_output_dir",
    "WRITTEN_RECORD",
    "clean_leftovers",
    "foreign_files",
    "is_pofa_folder",
    "is_pofa_output",
    "output_dir",
    "read_regular_bytes",
    "refuse_special_file",
    "write_bytes",
    "write_text",
]

#: The manifest every analysis output folder holds (written by :mod:`pofa.report.manifest`).
MANIFEST_NAME = "manifest.json"
#: The file that marks a folder pofa is building (holds the builder's process id).
PARTIAL_MARKER = ".pofa-partial"
#: The record pofa keeps in a folder it writes without a manifest (a study folder): each file's SHA-256.
WRITTEN_RECORD = ".pofa-written.json"
#: Files an operating system or desktop may add to any folder; they do not make a folder "not pofa's".
_SYSTEM_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", PARTIAL_MARKER})
#: A manifest larger than this is not pofa's (pofa's list the files of one output folder).
_MAX_MANIFEST_BYTES = 64 << 20


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically.

    Parameters
    ----------
    path : pathlib.Path
        The file; its folder is created if needed.
    data : bytes
        The file's content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_files(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
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


def _clean_stale_files(path: Path) -> None:
    """Remove the temporary files of earlier writes of ``path`` killed before their rename.

    They are named ``.NAME.PID-<random>.tmp`` by :func:`write_bytes`; only regular files of processes no
    longer running are removed.
    """
    prefix = f".{path.name}."
    try:
        siblings = [p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(".tmp")]
    except OSError:
        return
    for p in siblings:
        pid_text = p.name[len(prefix):].split("-", 1)[0]
        if not pid_text.isdigit() or "-" not in p.name[len(prefix):]:
            continue
        try:
            if p.is_symlink() or not p.is_file() or _alive(int(pid_text)):
                continue
            p.unlink()
        except (OSError, ValueError, OverflowError):
            continue


def write_text(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically.

    Parameters
    ----------
    path : pathlib.Path
        The file; its folder is created if needed.
    text : str
        The file's content.
    """
    write_bytes(path, text.encode("utf-8"))


def read_regular_bytes(path: str | Path, what: str, limit: int | None = None) -> bytes:
    """Return the bytes of ``path``, refusing anything but a regular file (a FIFO, device or folder).

    A FIFO would block the reader forever and a device could be read without end; both are refused before
    the file is opened for reading.

    Parameters
    ----------
    path : str or pathlib.Path
        The file to read.
    what : str
        What the file is, for the message (``"the model file"``).
    limit : int, optional
        Refuse a file larger than this many bytes.

    Returns
    -------
    bytes
        The file's content.

    Raises
    ------
    PofaError
        When the file is missing, not a regular file, too large or unreadable.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        raise PofaError(f"cannot read {what} {p}: {exc.strerror or exc}; check the path") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a pipe, device or socket)"
        raise PofaError(f"{what} {p} is {kind}; give an ordinary file")
    if limit is not None and st.st_size > limit:
        raise PofaError(f"{what} {p} is {st.st_size} bytes, more than the {limit} pofa reads; give the "
                        "file pofa wrote")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)  # never block on a pipe swapped in after stat
    try:
        fd = os.open(p, flags)
    except OSError as exc:
        raise PofaError(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped for a pipe between stat and open
            raise PofaError(f"{what} {p} is not a regular file; give an ordinary file")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read() if limit is None else fh.read(limit + 1)
    except OSError as exc:
        raise PofaError(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if limit is not None and len(data) > limit:
        raise PofaError(f"{what} {p} is larger than the {limit} bytes pofa reads")
    return data


def refuse_special_file(path: str | Path, what: str) -> None:
    """Refuse a path that is a pipe, device or socket (a reader would block on it, or never reach its end).

    A missing path, a regular file and a folder (a DICOM series) pass: the reader says what is wrong with
    them.

    Parameters
    ----------
    path : str or pathlib.Path
        The input path.
    what : str
        What the file is, for the message (``"--rtdose"``).

    Raises
    ------
    PofaError
        When ``path`` exists and is neither a regular file nor a folder.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise PofaError(f"{what} {path} is not a regular file (a pipe, device or socket); give an ordinary "
                        "file")


def _manifest_files(folder: Path) -> set[str] | None:
    """The files listed by ``folder/manifest.json`` when it is pofa's manifest, else ``None``."""
    path = folder / MANIFEST_NAME
    try:
        data: Any = json.loads(read_regular_bytes(path, "the manifest", _MAX_MANIFEST_BYTES).decode("utf-8"))
    except (PofaError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("manifest_version"), int) \
            or not isinstance(data.get("pofa_version"), str) or not isinstance(data.get("files"), list):
        return None
    listed = set()
    for entry in data["files"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            return None
        listed.add(entry["path"])
    return listed


def _unlisted(folder: Path, listed: set[str]) -> list[str]:
    """Files and folders under ``folder`` that the manifest does not list (system files aside)."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        rel_dir = Path(dirpath).relative_to(folder)
        for name in filenames:
            rel = (rel_dir / name).as_posix()
            if rel == MANIFEST_NAME or name in _SYSTEM_FILES or rel in listed:
                continue
            out.append(rel)
        for name in dirnames:
            p = Path(dirpath) / name
            if p.is_symlink():
                out.append((rel_dir / name).as_posix())
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) / d).is_symlink()]
    return out


def is_pofa_output(folder: str | Path) -> bool:
    """Return whether ``folder`` is an output folder pofa wrote.

    It must hold pofa's manifest.json and no file the manifest does not list (besides system files such as
    ``.DS_Store``).

    Parameters
    ----------
    folder : str or pathlib.Path
        The folder to examine (a symbolic link is never one).

    Returns
    -------
    bool
        True when pofa wrote the folder; false also when it cannot be read.
    """
    p = Path(folder)
    try:
        if p.is_symlink() or not p.is_dir():
            return False
        listed = _manifest_files(p)
        return listed is not None and not _unlisted(p, listed)
    except OSError:
        return False


def _walk_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """``(relative path, path)`` of every file under ``folder`` (symbolic links included, not followed)."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(filenames) + [d for d in dirnames if (base / d).is_symlink()]:
            yield (base / name).relative_to(folder).as_posix(), base / name
        dirnames[:] = [d for d in dirnames if not (base / d).is_symlink()]


def _write_record(folder: Path) -> None:
    """Write pofa's record of the files of ``folder`` (:data:`WRITTEN_RECORD`), sorted, one SHA-256 each."""
    files = [{"path": rel, "sha256": sha256_file(p)} for rel, p in _walk_files(folder)
             if rel != WRITTEN_RECORD and p.name not in _SYSTEM_FILES and not p.is_symlink()]
    body = {"written_by": "pofa", "record_version": 1,
            "about": "the files pofa wrote into this folder; pofa replaces the folder (--force) only while "
                     "they are unchanged and no other file was added",
            "files": files}
    (folder / WRITTEN_RECORD).write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")


def _record_files(folder: Path) -> dict[str, str] | None:
    """The files and SHA-256 listed by ``folder``'s record when it is pofa's, else ``None``."""
    try:
        data: Any = json.loads(read_regular_bytes(folder / WRITTEN_RECORD, "the record",
                                                  _MAX_MANIFEST_BYTES).decode("utf-8"))
    except (PofaError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("written_by") != "pofa" \
            or not isinstance(data.get("record_version"), int) or not isinstance(data.get("files"), list):
        return None
    files: dict[str, str] = {}
    for entry in data["files"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) \
                or not isinstance(entry.get("sha256"), str):
            return None
        files[entry["path"]] = entry["sha256"]
    return files


def foreign_files(folder: str | Path) -> list[str]:
    """Say what in ``folder`` pofa did not write, one entry per file; empty for a folder pofa wrote.

    A folder is pofa's when it holds pofa's manifest.json and only the files it lists (an analysis output),
    or pofa's record :data:`WRITTEN_RECORD` and only the files it lists, each unchanged (its SHA-256 equal
    to the recorded one). System files such as ``.DS_Store`` are ignored.

    Parameters
    ----------
    folder : str or pathlib.Path
        The folder to examine.

    Returns
    -------
    list of str
        ``"thesis.docx (not written by pofa)"``, ``"patients.csv (changed since pofa wrote it)"``, or one
        entry saying that the folder holds neither a manifest nor a record of pofa's.
    """
    p = Path(folder)
    try:
        if p.is_symlink() or not p.is_dir():
            return [f"{p.name} (not a folder)"]
        listed = _manifest_files(p)
        if listed is not None:
            return [f"{rel} (not listed in pofa's {MANIFEST_NAME})" for rel in _unlisted(p, listed)]
        record = _record_files(p)
        out: list[str] = [] if record is not None else [f"no {MANIFEST_NAME} or {WRITTEN_RECORD} of pofa's"]
        for rel, path in _walk_files(p):
            if rel == WRITTEN_RECORD or path.name in _SYSTEM_FILES:
                continue
            if record is None or path.is_symlink() or rel not in record:
                out.append(f"{rel} (not written by pofa)")
            elif sha256_file(path) != record[rel]:
                out.append(f"{rel} (changed since pofa wrote it)")
        return out if len(out) != 1 or record is not None else []  # only system files: as good as empty
    except OSError as exc:
        return [f"cannot be read: {exc.strerror or exc}"]


def is_pofa_folder(folder: str | Path) -> bool:
    """Return whether pofa wrote ``folder`` and nobody added or changed a file since.

    Parameters
    ----------
    folder : str or pathlib.Path
        The folder to examine (a symbolic link is never one).

    Returns
    -------
    bool
        True for an analysis output (:func:`is_pofa_output`) or a folder whose record lists all its files,
        unchanged (:func:`foreign_files` is empty).
    """
    return not foreign_files(folder)


def check_output_dir(path: Path, force: bool,
                     recognise: Callable[[Path], bool] | None = None) -> None:
    """Refuse an existing output ``path`` that may not be replaced.

    Parameters
    ----------
    path : pathlib.Path
        The output folder.
    force : bool
        Replace a non-empty folder (only one ``recognise`` accepts, when given).
    recognise : callable, optional
        Says whether a folder is one pofa wrote: :func:`is_pofa_folder` when not given (any folder pofa
        wrote and nobody changed), :func:`is_pofa_output` for analysis outputs.

    Raises
    ------
    PofaError
        When ``path`` is a file, or a non-empty folder without ``force``, or with ``force`` a folder that
        ``recognise`` refuses.
    """
    path = Path(path)
    if path.is_symlink():
        raise PofaError(f"{path} is a symbolic link (the output folder is replaced as a whole, which would "
                        "replace the link)", advice="give the folder itself as {out}")
    if path.exists() and not path.is_dir():
        raise PofaError(f"{path} exists and is not a folder", advice="choose another {out}")
    if not path.is_dir():
        return
    try:
        empty = not any(path.iterdir())
    except OSError as exc:
        raise PofaError(f"cannot list the output folder {path}: {exc.strerror or exc}") from None
    if empty:
        return
    if not force:
        raise PofaError(f"the output folder {path} is not empty",
                        advice="choose another {out}, or add {force} to replace a folder pofa wrote")
    if not (recognise or is_pofa_folder)(path):
        foreign = foreign_files(path) or [f"no {MANIFEST_NAME} of an analysis output"]
        shown = "; ".join(foreign[:5]) + (f"; and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise PofaError(f"the output folder {path} was not written by pofa, or was changed since: {shown}",
                        advice="{force} replaces only folders pofa wrote, unchanged, so choose another "
                               "{out} (pofa never deletes files it did not write)")


def _marker_pid(folder: Path) -> int | None:
    try:
        text = read_regular_bytes(folder / PARTIAL_MARKER, "the marker", 64).decode("ascii").strip()
        return int(text)
    except (PofaError, UnicodeDecodeError, ValueError):
        return None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def clean_leftovers(path: Path) -> list[Path]:
    """Remove the leftovers of interrupted runs that built ``path``.

    A leftover is a hidden sibling named ``.NAME.*.partial`` or ``.NAME.old-*`` that either carries the
    marker of a process no longer running, or holds pofa's manifest.json or record (an old output swapped
    aside).
    Nothing else is touched.

    Parameters
    ----------
    path : pathlib.Path
        The output folder (absolute).

    Returns
    -------
    list of pathlib.Path
        The leftovers removed.
    """
    path = Path(path)
    removed: list[Path] = []
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return removed
    prefix = f".{path.name}."
    for p in siblings:
        name = p.name
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix):]
        if not (rest.endswith(".partial") or rest.startswith("old-")):
            continue
        try:
            if p.is_symlink() or not p.is_dir():
                continue
        except OSError:
            continue
        pid = _marker_pid(p)
        if pid is not None:
            ours = not _alive(pid)
        else:
            ours = _manifest_files(p) is not None or _record_files(p) is not None
        if ours:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where it is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (38, 22, 95):  # ENOSYS, EINVAL, EOPNOTSUPP: the file system cannot exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_into_place(tmp: Path, path: Path) -> None:
    """Put the finished folder ``tmp`` at ``path``; the previous folder (if any) is removed afterwards."""
    if not path.exists() and not path.is_symlink():
        os.replace(tmp, path)
        return
    if _exchange(tmp, path):
        # tmp now holds the previous output; it is pofa's (checked before) and is removed
        shutil.rmtree(tmp, ignore_errors=True)
        return
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def output_dir(path: Path, force: bool = False,
               recognise: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Build an output folder atomically.

    Yields a temporary folder beside ``path``; when the block ends without an exception the temporary folder
    replaces ``path`` in one step. An existing non-empty folder is replaced only with ``force`` and only if
    ``recognise`` accepts it (:func:`check_output_dir`). Without ``recognise`` the folder gets pofa's record
    (:data:`WRITTEN_RECORD`), by which :func:`is_pofa_folder` recognises it later. On an exception nothing
    at ``path`` changes and the temporary folder is removed; a killed run leaves ``path`` as it was, and its
    leftovers are removed by the next run (:func:`clean_leftovers`).

    Parameters
    ----------
    path : pathlib.Path
        The output folder.
    force : bool
        Replace an existing non-empty folder.
    recognise : callable, optional
        Which folders ``force`` may replace (default :func:`is_pofa_folder`; the built folder then gets
        pofa's record).

    Yields
    ------
    pathlib.Path
        The temporary folder to write into.
    """
    path = Path(path).absolute()
    check_output_dir(path, force, recognise)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; the finished folder gets the usual mode
    try:
        (tmp / PARTIAL_MARKER).write_text(f"{os.getpid()}\n", encoding="ascii")
        yield tmp
        # the folder may have changed while the output was built: check again just before replacing it
        check_output_dir(path, force, recognise)
        (tmp / PARTIAL_MARKER).unlink()
        if recognise is None:
            _write_record(tmp)
        _swap_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    clean_leftovers(path)
