"""The Orthanc fixture itself: exposed on 127.0.0.1 only, authentication, DICOMweb, the uploaded study."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
from orthanc_server import OrthancServer, isolation_unavailable, listening_sockets
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


def test_only_127_0_0_1_is_exposed_and_orthanc_has_no_socket_in_this_namespace(orthanc: OrthancServer
                                                                                 ) -> None:
    if not orthanc.isolated:
        pytest.skip(f"Orthanc runs without a network namespace of its own: {isolation_unavailable()}")
    assert orthanc.url.startswith(f"http://127.0.0.1:{orthanc.port}/")
    # In the test's namespace the exposed port listens on 127.0.0.1 only (the forwarder) ...
    assert orthanc.listening_addresses() == [f"127.0.0.1:{orthanc.port}"]
    # ... and Orthanc itself lives in another namespace: none of its sockets is in this namespace's tables.
    pid = orthanc.pid
    assert pid is not None and os.readlink(f"/proc/{pid}/exe").endswith("Orthanc")
    assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    mine = {inode for _, _, inode in listening_sockets()}
    inodes = orthanc.socket_inodes()
    assert inodes and not inodes & mine
    # There it listens on its HTTP port alone: no DICOM (DIMSE) port.
    inside = listening_sockets(f"/proc/{pid}/net")
    assert {p for _, p, _ in inside} == {orthanc.inner_port}
    config = orthanc._configuration()
    assert config["RemoteAccessAllowed"] is False and config["DicomServerEnabled"] is False


def test_remote_clients_are_refused_in_either_mode(orthanc: OrthancServer) -> None:
    # The fallback (no unshare) and the isolated mode share these guards; the port listens in either mode.
    assert orthanc.listening_addresses(), "the HTTP port is not listening"
    config = orthanc._configuration()
    assert config["RemoteAccessAllowed"] is False and config["AuthenticationEnabled"] is True


@pytest.mark.slow
def test_stop_ends_the_orthanc_process_and_the_forwarder_then_connections_are_refused(
        orthanc_fresh: OrthancServer) -> None:
    pid = orthanc_fresh.pid
    forwarder = orthanc_fresh.forwarder
    assert pid is not None
    session = requests.Session()
    session.auth = (orthanc_fresh.user, orthanc_fresh.password)
    assert session.get(f"{orthanc_fresh.rest}/system", timeout=10).status_code == 200  # kept alive
    orthanc_fresh.stop()
    assert orthanc_fresh.pid is None and orthanc_fresh.forwarder is None
    assert not os.path.exists(f"/proc/{pid}") or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    if forwarder is not None:
        assert not forwarder.running and not forwarder.thread.is_alive()
    assert orthanc_fresh.listening_addresses() == []
    with pytest.raises(requests.ConnectionError):
        session.get(f"{orthanc_fresh.rest}/system", timeout=10)
    orthanc_fresh.start()
    assert session.get(f"{orthanc_fresh.rest}/system", timeout=10).status_code == 200
    session.close()


@pytest.mark.slow
def test_an_upstream_that_dies_looks_like_a_dropped_connection(orthanc_fresh: OrthancServer) -> None:
    if not orthanc_fresh.isolated:
        pytest.skip(f"no forwarder without a network namespace: {isolation_unavailable()}")
    proc = orthanc_fresh._proc
    assert proc is not None
    proc.kill()  # Orthanc dies on its own; the forwarder still listens
    proc.wait(timeout=20)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{orthanc_fresh.rest}/system", timeout=10,
                     auth=(orthanc_fresh.user, orthanc_fresh.password))


@pytest.mark.slow
def test_without_namespaces_orthanc_runs_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import orthanc_server

    orthanc_server.require_orthanc()
    monkeypatch.setattr(orthanc_server, "isolation_unavailable", lambda: "unshare refused (test)")
    server = OrthancServer(tmp_path / "plain")
    assert not server.isolated and server.inner_port == server.port
    server.start()
    try:
        assert server.forwarder is None and server.series_uids() == []
        assert server.listening_addresses() == [f"0.0.0.0:{server.port}"]  # what the namespace avoids
        pid = server.pid
        assert pid is not None and os.readlink(f"/proc/{pid}/ns/net") == os.readlink("/proc/self/ns/net")
    finally:
        server.close()
    assert server.pid is None


@pytest.mark.slow
def test_fresh_server_stops_and_starts_by_its_own_process(orthanc_fresh: OrthancServer) -> None:
    pid = orthanc_fresh.pid
    assert pid is not None and os.path.exists(f"/proc/{pid}")
    orthanc_fresh.stop()
    assert orthanc_fresh.pid is None
    assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower()
    orthanc_fresh.start()
    assert orthanc_fresh.pid not in (None, pid)
    assert orthanc_fresh.series_uids() == []


def test_without_orthanc_tests_skip_locally_and_fail_under_ci(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    import orthanc_server

    monkeypatch.setattr(orthanc_server, "ORTHANC", tmp_path / "no-orthanc")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Orthanc is not installed"):
        orthanc_server.require_orthanc()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must install it"):
        orthanc_server.require_orthanc()
