"""Errors of the DICOMweb client: each names the server and, for a series, its study and series instance UIDs.

None of them carries credentials or patient identifiers: a PACS error message may be printed, logged and
written into a batch's status files.
"""

from __future__ import annotations

from pofa.errors import ImagingError

__all__ = [
    "PacsAuthError",
    "PacsConfigError",
    "PacsError",
    "PacsUnavailableError",
    "SegEncodingError",
    "SeriesIncompleteError",
    "SeriesNotFoundError",
]


class PacsError(ImagingError):
    """A DICOMweb server cannot be used, or a series cannot be found, fetched or stored."""


class PacsConfigError(PacsError):
    """A DICOMweb URL, reference or credential setting is refused before any request is made."""


class PacsUnavailableError(PacsError):
    """The server is down, too slow (timeout) or answers with server errors, after every retry."""


class PacsAuthError(PacsError):
    """The server refuses the request (HTTP 401 or 403): missing or wrong credentials."""


class SeriesNotFoundError(PacsError):
    """The server does not have the series (HTTP 404, or a series without instances)."""


class SeriesIncompleteError(PacsError):
    """A series could not be received whole (connection dropped, instances missing, a checksum differs)."""


class SegEncodingError(PacsError):
    """A DICOM SEG cannot be built or encoded: highdicom or pydicom refused it.

    The message names the PET series (its UID) and the library's error class only: the library's own message
    may quote a header value (a patient's name or id) and is never passed on.
    """
