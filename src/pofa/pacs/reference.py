"""``dicomweb:`` series references: the text a manifest's ``pet``/``ct`` cell holds for a series on a PACS.

Syntax (one line, no spaces)::

    dicomweb:<DICOMweb root URL>?study=<StudyInstanceUID>&series=<SeriesInstanceUID>

for example ``dicomweb:https://pacs.example.org/dicom-web?study=1.2.840.1&series=1.2.840.1.2``. The root URL
is the server's DICOMweb base (the URL QIDO-RS, WADO-RS and STOW-RS paths are appended to); it has no query,
no fragment and never credentials (a ``user:password@`` URL is refused). UIDs are DICOM UIDs (digits and
dots, at most 64 characters). Both parameters are required, in any order; no other parameter is allowed.

This module is light (standard library only), so reading a manifest does not need the ``pacs`` extra.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from pofa.pacs.errors import PacsConfigError

__all__ = ["ENV_PASSWORD", "ENV_TOKEN", "ENV_USER", "PREFIX", "SeriesRef", "is_reference", "normalise_url"]

PREFIX = "dicomweb:"
ENV_TOKEN = "POFA_DICOMWEB_TOKEN"
ENV_USER = "POFA_DICOMWEB_USER"
ENV_PASSWORD = "POFA_DICOMWEB_PASSWORD"
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def is_reference(text: str | None) -> bool:
    """Return whether a manifest cell is a ``dicomweb:`` reference (rather than a path).

    Parameters
    ----------
    text : str or None
        The cell.

    Returns
    -------
    bool
        True when it starts with ``dicomweb:`` (case-insensitive, after leading spaces).
    """
    return text is not None and text.strip()[: len(PREFIX)].lower() == PREFIX


def check_uid(uid: str, what: str) -> str:
    """Return a DICOM UID unchanged, or raise when it is not one.

    Parameters
    ----------
    uid : str
        The UID.
    what : str
        Its name for the message (``study``, ``series``).

    Returns
    -------
    str
        ``uid``.

    Raises
    ------
    PacsConfigError
        When ``uid`` is not digits and dots (no leading zero in a component) of at most 64 characters.
    """
    if not (0 < len(uid) <= 64 and _UID.match(uid)):
        raise PacsConfigError(f"{what} {uid!r} is not a DICOM UID (digits and dots, at most 64 characters)")
    return uid


@dataclass(frozen=True, slots=True)
class SeriesRef:
    """A series on a DICOMweb server.

    Attributes
    ----------
    url : str
        The server's DICOMweb root (checked by :func:`normalise_url`).
    study_uid : str
        StudyInstanceUID.
    series_uid : str
        SeriesInstanceUID.
    """

    url: str
    study_uid: str
    series_uid: str

    def __str__(self) -> str:
        return f"{PREFIX}{self.url}?study={self.study_uid}&series={self.series_uid}"

    @classmethod
    def of(cls, url: str, study_uid: str, series_uid: str) -> SeriesRef:
        """Make a checked reference.

        Parameters
        ----------
        url : str
            The DICOMweb root.
        study_uid, series_uid : str
            The UIDs.

        Returns
        -------
        SeriesRef
            With the URL normalised.

        Raises
        ------
        PacsConfigError
            When the URL or a UID is refused.
        """
        return cls(normalise_url(url), check_uid(study_uid.strip(), "study"),
                   check_uid(series_uid.strip(), "series"))

    @classmethod
    def parse(cls, text: str) -> SeriesRef:
        """Read a ``dicomweb:`` reference.

        Parameters
        ----------
        text : str
            ``dicomweb:<root URL>?study=<UID>&series=<UID>``.

        Returns
        -------
        SeriesRef
            The reference.

        Raises
        ------
        PacsConfigError
            When the text does not follow the syntax (the message says which part).
        """
        body = text.strip()
        if not is_reference(body):
            raise PacsConfigError(f"{body[:80]!r} is not a dicomweb: reference")
        body = body[len(PREFIX):]
        url, sep, query = body.partition("?")
        if not sep:
            raise PacsConfigError("a dicomweb: reference needs ?study=<StudyInstanceUID>&series=<SeriesUID>")
        params: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
            if name not in ("study", "series"):
                raise PacsConfigError(f"a dicomweb: reference has only study= and series=, not {name}=")
            if name in params:
                raise PacsConfigError(f"a dicomweb: reference gives {name}= twice")
            params[name] = value
        for name in ("study", "series"):
            if not params.get(name):
                raise PacsConfigError(f"the dicomweb: reference has no {name}=<UID>")
        return cls.of(url, params["study"], params["series"])

    @property
    def key(self) -> str:
        """The SHA-256 (hex) of the reference's text: the series' folder name in the cache.

        Returns
        -------
        str
            64 hex digits.
        """
        return hashlib.sha256(str(self).encode("utf-8")).hexdigest()

    def describe(self) -> str:
        """Name the series for messages: its UIDs and server (never a patient identifier).

        Returns
        -------
        str
            ``series <UID> of study <UID> on <URL>``.
        """
        return f"series {self.series_uid} of study {self.study_uid} on {self.url}"


def normalise_url(url: str) -> str:
    """Return a DICOMweb root URL checked and without its trailing slash.

    Parameters
    ----------
    url : str
        The server's DICOMweb root, e.g. ``http://localhost:8042/dicom-web``.

    Returns
    -------
    str
        The URL with scheme and host in lower case and no trailing slash.

    Raises
    ------
    PacsConfigError
        When the URL is not ``http``/``https``, has no host, holds credentials (``user:password@``), a query
        or a fragment.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise PacsConfigError(f"DICOMweb URL {_redacted(text)!r} cannot be parsed: {exc}") from None
    if parts.scheme.lower() not in {"http", "https"}:
        raise PacsConfigError(
            f"DICOMweb URL {_redacted(text)!r} must start with https:// "
            "(or http:// for a server on this machine)")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise PacsConfigError(
            f"DICOMweb URL {_redacted(text)!r} holds credentials; "
            "URLs are written into manifests and messages",
            advice=f"remove 'user:password@' and set {ENV_USER} and {ENV_PASSWORD} (or {ENV_TOKEN}, "
                   "or a ~/.netrc entry for the host) instead")
    if not parts.hostname:
        raise PacsConfigError(f"DICOMweb URL {text!r} has no host name")
    if parts.query or parts.fragment:
        raise PacsConfigError(f"DICOMweb URL {text!r} must not have a query (?...) or fragment (#...)")
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))


def _redacted(text: str) -> str:
    """Return ``text`` with anything before an ``@`` in its network location replaced by ``***``."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return "***" if "@" in text else text
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    return f"{scheme}://{netloc}{slash}{path}"
