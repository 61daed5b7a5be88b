"""Pull a project's records export and data dictionary over the REDCap API (optional: PyCap).

``pip install "pofa[redcap]"`` installs PyCap. The API token is read from an environment variable by the
caller and passed here; it is held only in memory: never written to a file, a log, a manifest or a message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pofa.redcap.dictionary import RedcapError

DEFAULT_TOKEN_ENV = "POFA_REDCAP_TOKEN"


@dataclass(frozen=True, slots=True)
class Pulled:
    """A project's flat records export and data dictionary as CSV text (raw codes and field names)."""

    export_csv: str
    dictionary_csv: str


def token_from_env(name: str = DEFAULT_TOKEN_ENV) -> str:
    """The API token from the environment variable ``name``.

    Parameters
    ----------
    name : str
        The variable's name.

    Returns
    -------
    str
        The token.

    Raises
    ------
    RedcapError
        When the variable is not set or blank (the message names the variable, never a value).
    """
    token = os.environ.get(name, "").strip()
    if not token:
        raise RedcapError(f"the environment variable {name} holds no REDCap API token; set it (e.g. "
                          f"export {name}=...) in the shell that runs pofa, never in a file of the study")
    return token


def pull(url: str, token: str) -> Pulled:
    """Export the records (flat CSV, raw) and the data dictionary of a project over its API (PyCap).

    Parameters
    ----------
    url : str
        The project's API URL (``https://redcap.example.org/api/``).
    token : str
        The API token (kept in memory only).

    Returns
    -------
    Pulled
        The export's CSV text and the data dictionary's CSV text.

    Raises
    ------
    RedcapError
        When PyCap is not installed or the server refuses the request (the message never holds the token).
    """
    try:
        from redcap import Project  # PyCap
    except ImportError:
        raise RedcapError('pulling from the REDCap API needs PyCap: pip install "pofa[redcap]"') from None
    try:
        project = Project(url, token)
        export = project.export_records(format_type="csv", raw_or_label="raw", record_type="flat")
        dictionary = project.export_metadata(format_type="csv")
    except Exception as exc:  # PyCap and requests raise many types (connection, HTTP, REDCap errors)
        message = str(exc).replace(token, "***") if token else str(exc)
        raise RedcapError(f"the REDCap API at {url} refused the request ({type(exc).__name__}: "
                          f"{message[:200]}); check the URL and the token's rights (API export)") from None
    if not isinstance(export, str) or not isinstance(dictionary, str):
        raise RedcapError(f"the REDCap API at {url} did not answer with CSV text")
    return Pulled(export, dictionary)
