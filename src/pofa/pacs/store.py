"""Sending DICOM objects to a DICOMweb server with STOW-RS, and the UIDs of pofa's SEG objects.

:func:`store_instances` posts instances with the client of :func:`pofa.pacs.client.connect` (credentials,
TLS, timeout and retries with back-off are the client's) and checks the server's answer: an instance listed
in the answer's FailedSOPSequence is an error, as is any failed request (a typed
:class:`~pofa.pacs.errors.PacsError` naming what was stored and the server, never a patient identifier).

:func:`seg_uids` derives a SEG's series and instance UIDs from its source series and content, so that
storing the same results again sends the same instance (a PACS keeps one copy per SOP instance UID) and
changed results a new one. What is stored after a batch is :mod:`pofa.batch.writeback`'s business.
"""

from __future__ import annotations

import hashlib
import uuid
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from pydicom.dataset import Dataset

    from pofa.pacs.seg import LesionSegment

__all__ = ["seg_uids", "store_instances"]


def seg_uids(source_series_uid: str, labels: Any, segments: Sequence[LesionSegment]) -> tuple[str, str]:
    """Derive the series and SOP instance UIDs of a SEG from its source series and content.

    Parameters
    ----------
    source_series_uid : str
        The PET series the SEG references.
    labels : numpy.ndarray
        The label map.
    segments : sequence of LesionSegment
        The segments.

    Returns
    -------
    tuple of (str, str)
        ``2.25.`` UIDs (name-based UUIDs of a SHA-256 of the inputs and pofa's version).
    """
    import numpy as np

    import pofa

    h = hashlib.sha256()
    arr = np.ascontiguousarray(labels)
    for part in (source_series_uid, pofa.__version__, str(arr.shape), str(arr.dtype)):
        h.update(part.encode() + b"\0")
    h.update(arr.tobytes())
    for s in segments:
        h.update(repr(s).encode() + b"\0")
    digest = h.hexdigest()
    return (f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, 'pofa SEG series ' + digest).int}",
            f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, 'pofa SEG instance ' + digest).int}")


def store_instances(client: Any, datasets: Sequence[Dataset], *, url: str, what: str) -> None:
    """Send instances with STOW-RS and check that the server kept every one.

    Parameters
    ----------
    client : dicomweb_client.DICOMwebClient
        From :func:`pofa.pacs.client.connect`.
    datasets : sequence of pydicom.Dataset
        The instances.
    url : str
        The server (for messages).
    what : str
        What is stored (for messages; UIDs and pofa ids, never patient identifiers).

    Raises
    ------
    pofa.pacs.errors.PacsError
        When the request fails after the client's retries, or the server lists an instance as failed.
    pofa.pacs.errors.SegEncodingError
        When pydicom or dicomweb-client fail otherwise (encoding the instance): the error class only.
    """
    import requests

    from pofa.pacs.client import as_pacs_error
    from pofa.pacs.errors import PacsError, SegEncodingError

    try:
        with warnings.catch_warnings():  # pydicom's warnings on writing quote values (patient identity)
            warnings.simplefilter("ignore")
            answer = client.store_instances(datasets=list(datasets))
    except (requests.RequestException, PacsError) as exc:  # mapped to a typed error naming the server
        raise as_pacs_error(exc, url=url, what=what) from exc
    except Exception as exc:  # pydicom encoding the instance, or dicomweb-client: a message may quote a value
        raise SegEncodingError(f"{what} on {url}: the instance could not be encoded or sent "
                               f"({type(exc).__name__})") from None
    failed = answer.get("FailedSOPSequence") if answer is not None else None
    if failed:
        reasons = sorted({str(item.get("FailureReason", "?")) for item in failed})
        raise PacsError(f"{what} on {url}: the server refused {len(failed)} instance(s) (STOW-RS failure "
                        f"reason {', '.join(reasons)})")
