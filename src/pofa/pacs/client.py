"""Connecting to a DICOMweb server: URL checks, credentials, TLS, timeouts and retries with back-off.

Credentials never come from a URL (a URL with ``user:password@`` is refused: URLs end up in manifests, logs
and error messages). They come, in this order, from

1. ``POFA_DICOMWEB_TOKEN``: a bearer token (Google Cloud Healthcare API, Azure DICOM service, a proxy);
2. ``POFA_DICOMWEB_USER`` and ``POFA_DICOMWEB_PASSWORD``: HTTP basic authentication (Orthanc, dcm4chee
   behind a reverse proxy);
3. the netrc file (``$NETRC``, else ``~/.netrc``) entry of the server's host name (read with the standard
   library's :mod:`netrc` module);

else the requests are anonymous. The credentials sit on the HTTP session (never in per-request headers,
which dicomweb-client writes to its debug log), and no object pofa prints or stores holds them.

Every request has a timeout; connection errors, read errors and the HTTP statuses 429, 500, 502, 503 and 504
are retried with exponential back-off (urllib3's ``Retry`` on the session, honouring ``Retry-After``).
dicomweb-client's own retry loop is switched off so that the two do not multiply.
"""

from __future__ import annotations

import logging
import netrc
import os
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import requests
import requests.auth
from dicomweb_client import DICOMwebClient
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from pofa.pacs.errors import (
    PacsAuthError,
    PacsConfigError,
    PacsError,
    PacsUnavailableError,
    SeriesNotFoundError,
)
from pofa.pacs.reference import ENV_PASSWORD, ENV_TOKEN, ENV_USER, normalise_url

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "ENV_PASSWORD",
    "ENV_TOKEN",
    "ENV_USER",
    "RETRY_STATUSES",
    "as_pacs_error",
    "connect",
    "normalise_url",
    "open_session",
]

log = logging.getLogger(__name__)


DEFAULT_TIMEOUT = 60.0
"""Seconds to wait for the server to accept a connection and, then, between two bytes of an answer."""
DEFAULT_RETRIES = 4
"""Retries after a first failed attempt (so up to five attempts)."""
DEFAULT_BACKOFF = 0.5
"""Back-off factor in seconds: waits of 0.5, 1, 2, 4 s between attempts (urllib3 doubles it each time)."""
RETRY_STATUSES = (429, 500, 502, 503, 504)
"""HTTP statuses that are retried: the server is busy or briefly failing, the request itself is fine."""

_TLS_WARNING = (
    "TLS CERTIFICATE VERIFICATION IS OFF for {url}: anyone on the network path can read and change what is "
    "sent and received, credentials and patient data included. Use this only against a test server."
)


def _netrc_credentials(host: str) -> tuple[str, str] | None:
    """Return the (login, password) of ``host`` in the netrc file, or None."""
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    if not path.is_file():
        return None
    try:
        entry = netrc.netrc(str(path)).authenticators(host)
    except (netrc.NetrcParseError, OSError) as exc:
        # The parse error quotes the file's line, which may hold a password: name the file and line only.
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise PacsConfigError(f"netrc file {path} cannot be read{where}") from None
    if entry is None:
        return None
    login, _account, password = entry
    return (login, password or "") if login else None


def _auth(url: str) -> requests.auth.AuthBase | None:
    """Return the session's authentication for ``url`` from the environment or netrc (never from the URL)."""
    token = os.environ.get(ENV_TOKEN, "").strip()
    user = os.environ.get(ENV_USER, "")
    password = os.environ.get(ENV_PASSWORD)
    if token:
        return _BearerAuth(token)
    if user:
        if password is None:
            raise PacsConfigError(f"{ENV_USER} is set but {ENV_PASSWORD} is not")
        return requests.auth.HTTPBasicAuth(user, password)
    host = urlsplit(url).hostname or ""
    pair = _netrc_credentials(host)
    if pair is not None:
        return requests.auth.HTTPBasicAuth(*pair)
    return None


class _BearerAuth(requests.auth.AuthBase):
    """Bearer-token authentication whose repr does not show the token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    def __repr__(self) -> str:
        return "_BearerAuth(***)"


def open_session(url: str, *, verify_tls: bool = True, retries: int = DEFAULT_RETRIES,
                 backoff: float = DEFAULT_BACKOFF) -> requests.Session:
    """Return a requests session for a DICOMweb server: credentials, TLS setting and retry policy set.

    Parameters
    ----------
    url : str
        The server's DICOMweb root (checked: credentials in it are refused).
    verify_tls : bool, default True
        Verify the server's TLS certificate (turning it off warns loudly).
    retries : int, default 4
        Retries of a failed request (connection error, read error, HTTP 429/5xx).
    backoff : float, default 0.5
        Back-off factor in seconds.

    Returns
    -------
    requests.Session
        The session (close it when done).

    Raises
    ------
    PacsConfigError
        When the URL, the retry settings or the credential settings are refused.
    """
    url = normalise_url(url)
    if retries < 0 or backoff < 0:
        raise PacsConfigError("DICOMweb retries and back-off must not be negative")
    if not verify_tls:
        message = _TLS_WARNING.format(url=url)
        log.warning(message)
        warnings.warn(message, stacklevel=3)
    session = requests.Session()
    # trust_env stays on (proxies from HTTPS_PROXY/NO_PROXY); requests would otherwise fall back to
    # ~/.netrc by itself: pofa sets the authentication explicitly, so the order above is the only one.
    session.auth = _auth(url)
    session.verify = verify_tls
    policy = Retry(
        total=retries, connect=retries, read=retries, status=retries, other=0,
        backoff_factor=backoff, backoff_max=30.0,
        status_forcelist=RETRY_STATUSES,
        # STOW-RS (POST) of the same instances is idempotent: a server keeps one copy per SOP instance UID.
        allowed_methods=frozenset({"GET", "HEAD", "POST"}),
        respect_retry_after_header=True,
        raise_on_status=False,  # hand back the last answer: its status makes a clearer error than "too many"
    )
    adapter = HTTPAdapter(max_retries=policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def connect(url: str, *, verify_tls: bool = True, timeout: float = DEFAULT_TIMEOUT,
            retries: int = DEFAULT_RETRIES, backoff: float = DEFAULT_BACKOFF,
            session: requests.Session | None = None) -> DICOMwebClient:
    """Return a DICOMweb client for ``url`` with credentials, TLS verification, timeout and retries set.

    Parameters
    ----------
    url : str
        The server's DICOMweb root (``https://pacs.example.org/dicom-web``); never with credentials.
    verify_tls : bool, default True
        Verify the server's TLS certificate. Turning it off logs and warns loudly.
    timeout : float, default 60
        Seconds to wait for a connection and for each part of an answer.
    retries : int, default 4
        Retries of a failed request (connection error, read error, HTTP 429/5xx) before giving up.
    backoff : float, default 0.5
        Back-off factor in seconds (waits of backoff, 2 x backoff, 4 x backoff, ... capped at 30 s).
    session : requests.Session, optional
        A session from :func:`open_session` to share (then ``verify_tls``, ``retries`` and ``backoff`` are
        the session's).

    Returns
    -------
    dicomweb_client.DICOMwebClient
        The client; its requests go through a session holding the credentials and the retry policy.

    Raises
    ------
    PacsConfigError
        When the URL is refused (credentials in it, not http/https), ``timeout`` is not positive or the
        credential settings are incomplete.
    """
    root = normalise_url(url)
    if not timeout > 0:
        raise PacsConfigError(f"DICOMweb timeout must be positive, got {timeout}")
    if session is None:
        session = open_session(root, verify_tls=verify_tls, retries=retries, backoff=backoff)
    client = DICOMwebClient(url=root, session=session, timeout=timeout)
    client.set_http_retry_params(retry=False)  # the session's urllib3 Retry does it (with Retry-After)
    return client


def as_pacs_error(exc: BaseException, *, url: str, what: str) -> PacsError:
    """Return the typed pofa error for a failed DICOMweb request.

    Parameters
    ----------
    exc : BaseException
        The exception requests or dicomweb-client raised.
    url : str
        The server's DICOMweb root (already checked: no credentials).
    what : str
        What was asked for, e.g. ``"series 1.2.3 of study 1.2"`` (UIDs, never patient identifiers).

    Returns
    -------
    PacsError
        :class:`SeriesNotFoundError` for HTTP 404, :class:`PacsAuthError` for 401/403,
        :class:`PacsUnavailableError` for connection errors, timeouts and other HTTP errors,
        ``exc`` itself when it already is a :class:`PacsError`.
    """
    if isinstance(exc, PacsError):
        return exc
    where = f"{what} on {url}"
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        status = exc.response.status_code
        if status == 404:
            return SeriesNotFoundError(f"{where}: the server does not have it (HTTP 404)")
        if status in (401, 403):
            return PacsAuthError(
                f"{where}: the server refuses the request (HTTP {status})",
                advice=f"set {ENV_USER} and {ENV_PASSWORD}, or {ENV_TOKEN}, or a ~/.netrc entry for the host")
        reason = exc.response.reason or ""
        return PacsUnavailableError(f"{where}: the server answers HTTP {status} {reason}".rstrip())
    if isinstance(exc, requests.exceptions.SSLError):
        return PacsUnavailableError(
            f"{where}: TLS verification failed ({type(exc).__name__})",
            advice="install the hospital's CA certificate (REQUESTS_CA_BUNDLE) "
                   "rather than turning verification off")
    if isinstance(exc, requests.Timeout):
        return PacsUnavailableError(f"{where}: the server did not answer in time, after retries")
    if isinstance(exc, requests.ConnectionError):
        return PacsUnavailableError(f"{where}: cannot connect to the server, after retries")
    if isinstance(exc, requests.RequestException):
        return PacsUnavailableError(f"{where}: the request failed ({type(exc).__name__})")
    return PacsError(f"{where}: {type(exc).__name__}: {exc}")
