"""The Orthanc fixture itself: local-only access, authentication, the DICOMweb plugin, the uploaded study."""

from __future__ import annotations

import requests
from orthanc_server import OrthancServer
from pacs_data import DicomStudy


def test_server_answers_dicomweb_with_the_uploaded_series(orthanc: OrthancServer, pacs_study: DicomStudy
                                                          ) -> None:
    from pofa.pacs.client import connect

    client = connect(orthanc.url)
    found = {s["0020000E"]["Value"][0] for s in client.search_for_series()}
    expected = {u for s in pacs_study.scans for u in (s.pet_uid, s.ct_uid)}
    assert expected <= found
    assert set(orthanc.series_uids()) >= expected


def test_server_refuses_anonymous_requests(orthanc: OrthancServer) -> None:
    assert requests.get(f"{orthanc.url}/studies", timeout=10).status_code == 401
    assert requests.get(f"{orthanc.url}/studies", timeout=10, auth=(orthanc.user, "wrong")).status_code == 401


def test_only_the_http_port_listens_and_only_local_clients_are_served(orthanc: OrthancServer) -> None:
    # Orthanc 1.10 cannot bind to one address: it listens on every interface, and RemoteAccessAllowed=false
    # makes it refuse clients that are not on this machine. No DICOM (DIMSE) port is opened.
    assert orthanc.listening_addresses(), "the HTTP port is not listening"
    config = orthanc._configuration()
    assert config["RemoteAccessAllowed"] is False and config["DicomServerEnabled"] is False
    assert orthanc.url.startswith("http://127.0.0.1:")


def test_fresh_server_stops_and_starts_by_its_own_process(orthanc_fresh: OrthancServer) -> None:
    import os

    pid = orthanc_fresh.pid
    assert pid is not None and os.path.exists(f"/proc/{pid}")
    orthanc_fresh.stop()
    assert orthanc_fresh.pid is None
    assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower()
    orthanc_fresh.start()
    assert orthanc_fresh.pid not in (None, pid)
    assert orthanc_fresh.series_uids() == []
