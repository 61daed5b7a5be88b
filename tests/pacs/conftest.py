"""Fixtures of the DICOMweb tests: a real Orthanc server (Debian's ``orthanc`` and ``orthanc-dicomweb``).

Interface
---------
``orthanc_server`` (session)
    An :class:`orthanc_server.OrthancServer`, started once per test session and stopped (by its process id)
    at the end (with its 127.0.0.1 forwarder; Orthanc itself runs in a network namespace of its own where
    ``unshare --net`` is permitted, see :mod:`orthanc_server`). Attributes and methods: ``url`` (DICOMweb
    root, ``http://127.0.0.1:<port>/dicom-web``), ``isolated``,
    ``rest`` (REST root), ``user``/``password``/``env()`` (HTTP basic credentials as pofa's
    ``POFA_DICOMWEB_USER``/``POFA_DICOMWEB_PASSWORD``), ``pid``, ``start()``, ``stop()``,
    ``upload(paths) -> Orthanc ids``, ``delete_series(series_uid)``, ``series_uids()``, ``clear()``,
    ``listening_addresses()``, ``socket_inodes()``, ``log_tail()``. Tests must leave it running and must not
    delete from it.
``orthanc`` (function)
    The session server, started if a test stopped it, with the credential variables set for the test.
``orthanc_fresh`` (function)
    A server of the test's own (empty, own storage and port), credential variables set; for tests that stop
    it, delete from it or need isolation. Stopped and removed after the test.
``pacs_study`` (session)
    :class:`pacs_data.DicomStudy`: three patients (P000 and P002 with a failure scan, P001 without) as DICOM
    PET/CT series with local ``manifest.csv``/``patients.csv``, uploaded to ``orthanc_server``.
``upload_study`` (function)
    ``upload_study(server, root) -> DicomStudy``: writes the same study under ``root`` and uploads it to
    ``server`` (for ``orthanc_fresh``).

Without Orthanc (or its DICOMweb plugin) the tests are skipped, except when the environment variable ``CI`` is
``true``: then they fail, so that a CI machine without the packages cannot pass silently.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from orthanc_server import OrthancServer, require_orthanc
from pacs_data import DicomStudy, make_dicom_study

N_PATIENTS = 3


@pytest.fixture(scope="session")
def orthanc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """The session's Orthanc server (see the module docstring)."""
    require_orthanc()
    server = OrthancServer(tmp_path_factory.mktemp("orthanc"))
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def orthanc(orthanc_server: OrthancServer, monkeypatch: pytest.MonkeyPatch) -> OrthancServer:
    """The session server, running, with pofa's credential variables set for this test."""
    orthanc_server.start()
    _credentials(monkeypatch, orthanc_server)
    return orthanc_server


@pytest.fixture
def orthanc_fresh(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
                  ) -> Iterator[OrthancServer]:
    """A server of this test's own, empty (see the module docstring)."""
    require_orthanc()
    server = OrthancServer(tmp_path_factory.mktemp("orthanc-fresh"))
    server.start()
    _credentials(monkeypatch, server)
    try:
        yield server
    finally:
        server.close()


def _credentials(monkeypatch: pytest.MonkeyPatch, server: OrthancServer) -> None:
    monkeypatch.delenv("POFA_DICOMWEB_TOKEN", raising=False)
    monkeypatch.setenv("NETRC", os.devnull)  # the tester's own ~/.netrc never takes part
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def pacs_study(orthanc_server: OrthancServer, tmp_path_factory: pytest.TempPathFactory) -> DicomStudy:
    """The synthetic study, written once and uploaded to the session server."""
    study = make_dicom_study(tmp_path_factory.mktemp("pacs-study"), N_PATIENTS)
    orthanc_server.upload(study.files())
    return study


@pytest.fixture
def upload_study() -> Callable[[OrthancServer, Path], DicomStudy]:
    """``upload_study(server, root)``: write the synthetic study under ``root``, upload it to ``server``."""

    def load(server: OrthancServer, root: Path) -> DicomStudy:
        study = make_dicom_study(root, N_PATIENTS)
        server.upload(study.files())
        return study

    return load
