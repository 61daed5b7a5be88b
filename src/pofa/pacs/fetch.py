"""Fetching series from a DICOMweb server (WADO-RS) into a local, checked, content-addressed cache.

Layout of the cache folder (``--cache``; default :func:`default_cache_dir`)::

    series/<key>/dicom/<sha256>.dcm  one file per instance, as the server sent it, named by its SHA-256
    series/<key>/complete.json       the completion record: reference, instance count, each file's SHA-256
    partial/<key>/*.dcm         instances received so far of a series being fetched (resume)
    tmp/                        folders being assembled; renamed into series/ when complete

``<key>`` is the SHA-256 of the reference's text (:attr:`SeriesRef.key`: server URL, study and series UIDs). A
series folder is only used when its completion record lists exactly the files present, each with the
recorded SHA-256; anything else is set aside and fetched again. A series is assembled in its own folder under
``tmp/`` and renamed into place in one step (``os.rename``), so a reader sees either no folder or a whole one;
when two processes (Dask workers) fetch the same series at once, the first rename wins and the other checks
the winner's folder and discards its own copy.

Instances are retrieved one by one (``GET .../studies/<study>/series/<series>/instances/<sop>``, the bytes
kept exactly as sent). Instances already received survive an interrupted run in ``partial/<key>/`` and are
not fetched again (each is written under a temporary name and renamed, so a partial file is never one of
them). A connection dropped in the middle of an answer is retried with exponential back-off, on top of the
session's own retries of connection errors and HTTP 429/5xx.

No record of the cache holds credentials (URLs with credentials are refused) or patient identifiers.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pofa.io.hashing import sha256_file
from pofa.pacs.errors import PacsError, SeriesIncompleteError, SeriesNotFoundError
from pofa.pacs.reference import SeriesRef

__all__ = ["COMPLETE_FILE", "DICOM_DIR", "FetchOptions", "cached_series", "default_cache_dir", "fetch_series"]

log = logging.getLogger(__name__)

COMPLETE_FILE = "complete.json"
DICOM_DIR = "dicom"
CACHE_FORMAT = 1
_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def default_cache_dir() -> Path:
    """Return the default cache folder: ``$XDG_CACHE_HOME/pofa/dicomweb``, else ``~/.cache/pofa/dicomweb``.

    Returns
    -------
    pathlib.Path
        The folder (not created here).
    """
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / "pofa" / "dicomweb"


@dataclass(frozen=True, slots=True)
class FetchOptions:
    """How to fetch ``dicomweb:`` series (small and picklable: it travels with each patient's task).

    Attributes
    ----------
    cache : str or None
        The cache folder; None = :func:`default_cache_dir` of the machine that fetches.
    verify_tls : bool
        Verify the server's TLS certificate.
    timeout : float
        Seconds to wait for a connection and for each part of an answer.
    retries : int
        Retries of a failed request or of a dropped instance, with exponential back-off.
    backoff : float
        Back-off factor in seconds.
    """

    cache: str | None = None
    verify_tls: bool = True
    timeout: float = 60.0
    retries: int = 4
    backoff: float = 0.5

    def cache_dir(self) -> Path:
        """Return the cache folder (absolute).

        Returns
        -------
        pathlib.Path
            ``cache``, else :func:`default_cache_dir`.
        """
        return Path(self.cache).expanduser().absolute() if self.cache else default_cache_dir()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _valid(folder: Path, ref: SeriesRef) -> bool:
    """Whether ``folder`` holds the complete series: record, files and checksums agree."""
    try:
        rec = json.loads((folder / COMPLETE_FILE).read_text(encoding="utf-8"))
        files = rec["files"]
        if (rec.get("format") != CACHE_FORMAT or rec.get("reference") != str(ref)
                or rec.get("instances") != len(files) or not files):
            return False
        present = {p.name for p in (folder / DICOM_DIR).iterdir()}
        if present != set(files) or {p.name for p in folder.iterdir()} != {COMPLETE_FILE, DICOM_DIR}:
            return False
        return all(sha256_file(folder / DICOM_DIR / name) == digest for name, digest in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def cached_series(ref: SeriesRef, options: FetchOptions | None = None) -> Path | None:
    """Return the cache folder of a complete, checked series, or None when it is not (wholly) there.

    Parameters
    ----------
    ref : SeriesRef
        The series.
    options : FetchOptions, optional
        Where the cache is.

    Returns
    -------
    pathlib.Path or None
        The folder holding the series' files (``<cache>/series/<key>/dicom``).
    """
    folder = (options or FetchOptions()).cache_dir() / "series" / ref.key
    return folder / DICOM_DIR if _valid(folder, ref) else None


def fetch_series(ref: SeriesRef, options: FetchOptions | None = None) -> Path:
    """Return the local folder of a series, fetching it (WADO-RS) into the cache unless already there.

    Parameters
    ----------
    ref : SeriesRef
        The series.
    options : FetchOptions, optional
        Cache folder, TLS, timeout and retries.

    Returns
    -------
    pathlib.Path
        ``<cache>/series/<key>/dicom``: the series' DICOM files, as the server sent them (the completion
        record is ``<cache>/series/<key>/complete.json``).

    Raises
    ------
    SeriesNotFoundError
        The server does not have the series (or it has no instance).
    PacsUnavailableError
        The server is down, too slow or answers with errors, after every retry.
    PacsAuthError
        The server refuses the credentials.
    SeriesIncompleteError
        The series could not be received whole (an instance dropped after every retry, or not the instance
        asked for).
    """
    opts = options or FetchOptions()
    root = opts.cache_dir()
    final = root / "series" / ref.key
    if _valid(final, ref):
        return final / DICOM_DIR
    from pofa.pacs.client import as_pacs_error, connect, open_session

    for sub in ("series", "partial", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    session = open_session(ref.url, verify_tls=opts.verify_tls, retries=opts.retries, backoff=opts.backoff)
    try:
        client = connect(ref.url, timeout=opts.timeout, session=session)
        try:
            found = client.search_for_instances(ref.study_uid, ref.series_uid, fields=["00080018"],
                                                get_remaining=True)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a typed error naming the series
            raise as_pacs_error(exc, url=ref.url, what=ref.what()) from None
        sops = sorted({str(item["00080018"]["Value"][0]) for item in found
                       if item.get("00080018", {}).get("Value")})
        if not sops:
            raise SeriesNotFoundError(f"{ref.describe()}: the server lists no instance of it")
        partial = root / "partial" / ref.key
        partial.mkdir(parents=True, exist_ok=True)
        for n, sop in enumerate(sops):
            target = partial / f"{hashlib.sha256(sop.encode('ascii')).hexdigest()[:40]}.dcm"
            if target.is_file() and _instance_ok(target.read_bytes(), ref, sop):
                continue
            data = _retrieve_instance(session, ref, sop, opts, n, len(sops))
            try:
                _write_atomically(target, data)
            except FileNotFoundError:  # another process finished the series and removed partial/<key>
                if _valid(final, ref):
                    return final / DICOM_DIR
                partial.mkdir(parents=True, exist_ok=True)
                _write_atomically(target, data)
        return _publish(ref, partial, sops, root, final) / DICOM_DIR
    finally:
        session.close()


def _instance_ok(data: bytes, ref: SeriesRef, sop: str) -> bool:
    """Whether ``data`` is a DICOM instance of the series with the SOP instance UID asked for."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=False)
    except (InvalidDicomError, OSError, ValueError, TypeError, AttributeError, KeyError, EOFError):
        return False
    return (str(ds.get("SOPInstanceUID", "")) == sop
            and str(ds.get("SeriesInstanceUID", "")) == ref.series_uid
            and str(ds.get("StudyInstanceUID", "")) == ref.study_uid)


def _retrieve_instance(session: Any, ref: SeriesRef, sop: str, opts: FetchOptions, n: int, total: int
                       ) -> bytes:
    """One instance's bytes; a dropped or garbled answer is retried with back-off."""
    import requests

    from pofa.pacs.client import as_pacs_error

    url = f"{ref.url}/studies/{ref.study_uid}/series/{ref.series_uid}/instances/{sop}"
    what = f"instance {n + 1} of {total} of {ref.what()}"
    last = ""
    for attempt in range(opts.retries + 1):
        if attempt:
            time.sleep(min(30.0, opts.backoff * 2 ** (attempt - 1)))
        try:
            r = session.get(url, headers={"Accept": _ACCEPT}, timeout=opts.timeout)
            r.raise_for_status()
            parts = _multipart_parts(r.content, r.headers.get("Content-Type", ""))
        except requests.HTTPError as exc:
            raise as_pacs_error(exc, url=ref.url, what=what) from None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
            last = f"the connection dropped in the middle of the answer ({type(exc).__name__})"
            continue
        except requests.ConnectionError as exc:
            if attempt < opts.retries:  # e.g. a reset after the session's own retries
                last = f"cannot connect ({type(exc).__name__})"
                continue
            raise as_pacs_error(exc, url=ref.url, what=what) from None
        except requests.RequestException as exc:
            raise as_pacs_error(exc, url=ref.url, what=what) from None
        except ValueError as exc:
            last = f"the answer is not a DICOM multipart message ({exc})"
            continue
        if len(parts) == 1 and _instance_ok(parts[0], ref, sop):
            return parts[0]
        last = f"the answer holds {len(parts)} part(s), not the one instance asked for"
    raise SeriesIncompleteError(f"{what} on {ref.url} could not be received after {opts.retries + 1} "
                                f"attempt(s): {last}")


def _multipart_parts(body: bytes, content_type: str) -> list[bytes]:
    """The bodies of a ``multipart/related`` message (RFC 2046), in order."""
    params = {}
    for piece in content_type.split(";")[1:]:
        name, _, value = piece.strip().partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    if not content_type.lower().startswith("multipart/") or not params.get("boundary"):
        raise ValueError(f"Content-Type {content_type.split(';')[0]!r} without a multipart boundary")
    delimiter = b"--" + params["boundary"].encode("ascii")
    chunks = body.split(b"\r\n" + delimiter)
    first = chunks[0]
    if not first.startswith(delimiter):
        raise ValueError("the message does not start with its boundary")
    chunks[0] = first[len(delimiter):]
    if not chunks[-1].startswith(b"--"):
        raise ValueError("the message ends before its closing boundary (truncated)")
    parts = []
    for chunk in chunks[:-1]:
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("a part has no header end")
        parts.append(content)
    return parts


def _write_atomically(target: Path, data: bytes) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def _staging(root: Path, key: str) -> Iterator[Path]:
    tmp = root / "tmp" / f"{key}.{os.getpid()}.{secrets.token_hex(4)}"
    tmp.mkdir(parents=True)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish(ref: SeriesRef, partial: Path, sops: list[str], root: Path, final: Path) -> Path:
    """Assemble the series under tmp/, check it, and rename it to ``final`` (or use a winner's copy)."""
    with _staging(root, ref.key) as tmp:
        (tmp / DICOM_DIR).mkdir()
        files: dict[str, str] = {}
        for sop in sops:
            src = partial / f"{hashlib.sha256(sop.encode('ascii')).hexdigest()[:40]}.dcm"
            data = src.read_bytes() if src.is_file() else b""
            if not data and _valid(final, ref):  # another process published it and removed partial/<key>
                return final
            if not _instance_ok(data, ref, sop):
                raise SeriesIncompleteError(f"{ref.describe()}: an instance received is unreadable; "
                                            "fetch again")
            digest = _sha256(data)
            name = f"{digest}.dcm"
            if name in files:
                raise SeriesIncompleteError(f"{ref.describe()}: two instances have the same bytes")
            (tmp / DICOM_DIR / name).write_bytes(data)
            files[name] = digest
        record = {"format": CACHE_FORMAT, "reference": str(ref), "instances": len(files),
                  "files": dict(sorted(files.items())),
                  "fetched_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        text = json.dumps(record, indent=1, sort_keys=True) + "\n"
        (tmp / COMPLETE_FILE).write_text(text, encoding="utf-8")
        if final.exists() and not _valid(final, ref):
            _set_aside(final, root)
        try:
            os.rename(tmp, final)
        except OSError:
            if not _valid(final, ref):  # another process won, but with a broken folder: cannot happen
                raise PacsError(f"{ref.describe()}: the cache folder {final} is in the way; "
                                "remove it") from None
            log.debug("another process fetched %s first", ref.key)
    shutil.rmtree(partial, ignore_errors=True)
    return final


def _set_aside(folder: Path, root: Path) -> None:
    """Move a broken series folder out of the way (then delete it), tolerating a concurrent move."""
    trash = root / "tmp" / f"broken.{folder.name}.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        os.rename(folder, trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)
