"""Fetching through faults, against a small scripted DICOMweb server (no Orthanc needed).

The server (http.server in a thread, on 127.0.0.1) lists a series of three instances (QIDO-RS) and serves each
(WADO-RS, multipart/related) the way a test scripts it: answer, HTTP 404, 503, wait past the client's timeout,
or drop the connection halfway through the body.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from pofa.pacs.errors import PacsUnavailableError, SeriesIncompleteError, SeriesNotFoundError
from pofa.pacs.fetch import COMPLETE_FILE, FetchOptions, _multipart_parts, fetch_series
from pofa.pacs.reference import SeriesRef

STUDY, SERIES = "1.2.3.4", "1.2.3.4.5"
SOPS = ("1.2.3.4.5.1", "1.2.3.4.5.2", "1.2.3.4.5.3")
BOUNDARY = "pofa-test-boundary"


def _instance(sop: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.128"
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("x", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = STUDY, SERIES, "PT"
    ds.PatientID = "MRN-DO-NOT-PRINT"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


class Script:
    """What the server does: per SOP instance UID, actions used one per request (the last repeats)."""

    def __init__(self) -> None:
        self.actions: dict[str, list[str]] = {}
        self.requests: list[str] = []
        self.lock = threading.Lock()

    def next(self, sop: str) -> str:
        with self.lock:
            self.requests.append(sop)
            todo = self.actions.get(sop, ["ok"])
            return todo.pop(0) if len(todo) > 1 else todo[0]


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path, _, query = self.path.partition("?")
            if path == f"/dicom-web/studies/{STUDY}/series/{SERIES}/instances":
                offset = int(parse_qs(query).get("offset", ["0"])[0])  # QIDO-RS paging
                listed = [{"00080018": {"vr": "UI", "Value": [s]}} for s in SOPS[offset:]]
                return self._send(200, "application/dicom+json", json.dumps(listed).encode())
            if path.endswith("/instances") and "/series/" in path:  # another series: none listed
                return self._send(200, "application/dicom+json", b"[]")
            prefix = f"/dicom-web/studies/{STUDY}/series/{SERIES}/instances/"
            if not path.startswith(prefix):
                return self._send(404, "text/plain", b"no")
            sop = path[len(prefix):]
            action = script.next(sop)
            if action == "404":
                return self._send(404, "text/plain", b"not here")
            if action == "503":
                return self._send(503, "text/plain", b"busy")
            if action == "slow":
                time.sleep(1.5)
            part = _instance(sop)
            body = (f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part
                    + f"\r\n--{BOUNDARY}--\r\n".encode())
            ctype = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
            if action == "drop":  # promise the whole body, send half, close
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return None
            return self._send(200, ctype, body)

        def _send(self, code: int, ctype: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Script]]:
    for name in ("POFA_DICOMWEB_TOKEN", "POFA_DICOMWEB_USER", "POFA_DICOMWEB_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", "/dev/null")
    script = Script()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/dicom-web", script
    finally:
        httpd.shutdown()
        httpd.server_close()


def _opts(tmp_path: Path, **kw: float) -> FetchOptions:
    return FetchOptions(cache=str(tmp_path / "cache"), timeout=kw.get("timeout", 5.0),
                        retries=int(kw.get("retries", 3)), backoff=kw.get("backoff", 0.01))


def test_a_series_is_fetched_whole_and_checked(server: tuple[str, Script], tmp_path: Path) -> None:
    url, script = server
    folder = fetch_series(SeriesRef.of(url, STUDY, SERIES), _opts(tmp_path))
    got = sorted(pydicom.dcmread(p).SOPInstanceUID for p in folder.iterdir())
    assert got == sorted(SOPS)
    record = json.loads((folder.parent / COMPLETE_FILE).read_text(encoding="utf-8"))
    assert record["instances"] == 3 and "MRN" not in json.dumps(record)
    assert sorted(script.requests) == sorted(SOPS)
    script.requests.clear()
    assert fetch_series(SeriesRef.of(url, STUDY, SERIES), _opts(tmp_path)) == folder
    assert script.requests == []  # from the cache


def test_server_errors_and_dropped_connections_are_retried(server: tuple[str, Script], tmp_path: Path
                                                           ) -> None:
    url, script = server
    script.actions = {SOPS[0]: ["503", "503", "ok"], SOPS[1]: ["drop", "drop", "ok"]}
    folder = fetch_series(SeriesRef.of(url, STUDY, SERIES), _opts(tmp_path))
    assert len(list(folder.iterdir())) == 3
    assert script.requests.count(SOPS[0]) == 3 and script.requests.count(SOPS[1]) == 3


def test_a_connection_dropped_every_time_names_the_series_and_resumes_later(
        server: tuple[str, Script], tmp_path: Path) -> None:
    url, script = server
    ref = SeriesRef.of(url, STUDY, SERIES)
    script.actions = {SOPS[1]: ["drop"]}
    with pytest.raises(SeriesIncompleteError) as err:
        fetch_series(ref, _opts(tmp_path, retries=2))
    assert f"series {SERIES} of study {STUDY}" in str(err.value) and "dropped" in str(err.value)
    assert "MRN" not in str(err.value)
    cache = tmp_path / "cache"
    assert not (cache / "series" / ref.key).exists()  # never a half-written series
    assert len(list((cache / "partial" / ref.key).glob("*.dcm"))) == 1  # the first instance is kept
    assert not list((cache / "partial" / ref.key).glob(".*"))  # no partial file of the dropped one
    script.actions, script.requests = {}, []
    folder = fetch_series(ref, _opts(tmp_path))
    assert len(list(folder.iterdir())) == 3
    assert SOPS[0] not in script.requests  # resumed: the instance received before is not fetched again
    assert not (cache / "partial" / ref.key).exists() and not any((cache / "tmp").iterdir())


def test_404_for_an_instance_names_the_series(server: tuple[str, Script], tmp_path: Path) -> None:
    url, script = server
    script.actions = {SOPS[2]: ["404"]}
    with pytest.raises(SeriesNotFoundError, match=f"series {SERIES} of study {STUDY}.*HTTP 404"):
        fetch_series(SeriesRef.of(url, STUDY, SERIES), _opts(tmp_path))
    assert not (tmp_path / "cache" / "series" / SeriesRef.of(url, STUDY, SERIES).key).exists()


def test_an_unknown_series_is_not_found(server: tuple[str, Script], tmp_path: Path) -> None:
    url, _ = server
    with pytest.raises(SeriesNotFoundError, match="series 9.9 of study 1.2.3.4"):
        fetch_series(SeriesRef.of(url, STUDY, "9.9"), _opts(tmp_path))


def test_a_slow_server_times_out_with_a_clear_error(server: tuple[str, Script], tmp_path: Path) -> None:
    url, script = server
    script.actions = {SOPS[0]: ["slow"]}
    t0 = time.perf_counter()
    match = f"series {SERIES} of study {STUDY}.*did not answer in time"
    with pytest.raises(PacsUnavailableError, match=match):
        fetch_series(SeriesRef.of(url, STUDY, SERIES), _opts(tmp_path, timeout=0.3, retries=1))
    assert time.perf_counter() - t0 < 10


def test_a_server_that_is_down_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setenv("NETRC", "/dev/null")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ref = SeriesRef.of(f"http://127.0.0.1:{port}/dicom-web", STUDY, SERIES)
    with pytest.raises(PacsUnavailableError, match=f"series {SERIES} of study {STUDY}.*cannot connect"):
        fetch_series(ref, _opts(tmp_path, retries=2))


def test_a_truncated_multipart_message_is_refused() -> None:
    ctype = f"multipart/related; boundary={BOUNDARY}"
    whole = f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\nDATA\r\n--{BOUNDARY}--\r\n".encode()
    assert _multipart_parts(whole, ctype) == [b"DATA"]
    with pytest.raises(ValueError, match="truncated"):
        _multipart_parts(whole[:-12], ctype)
    with pytest.raises(ValueError, match="boundary"):
        _multipart_parts(whole, "application/dicom")
