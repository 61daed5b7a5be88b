"""A real Orthanc DICOMweb server for the tests: Debian's ``orthanc`` with its ``orthanc-dicomweb`` plugin.

:class:`OrthancServer` writes a JSON configuration into a temporary folder and starts ``/usr/sbin/Orthanc``:

- HTTP on a free port of 127.0.0.1. Orthanc 1.10 has no option naming the address to bind (it listens on
  every interface), so ``"RemoteAccessAllowed": false`` makes it refuse any client that is not on this
  machine, and HTTP basic authentication with a random password (``RegisteredUsers``) guards it from other
  users of the machine; :meth:`OrthancServer.listening_addresses` reads /proc/net/tcp so that a test can show
  what is exposed.
- no DICOM (DIMSE) server (``"DicomServerEnabled": false``): nothing listens on port 4242;
- storage and index in the temporary folder; the DICOMweb plugin at ``/dicom-web/``.

The server is stopped through the process the object started (``Popen``: terminate, wait, kill), never by
name.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import requests

ORTHANC = Path(os.environ.get("POFA_TEST_ORTHANC", "/usr/sbin/Orthanc"))
DICOMWEB_PLUGIN = Path(os.environ.get("POFA_TEST_ORTHANC_DICOMWEB",
                                      "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"))
USER = "pofa-test"


def missing() -> str | None:
    """Return why Orthanc cannot run here (None when it can)."""
    if not (ORTHANC.is_file() and os.access(ORTHANC, os.X_OK)):
        return f"Orthanc is not installed ({ORTHANC}; Debian package orthanc)"
    if not DICOMWEB_PLUGIN.is_file():
        return (f"the Orthanc DICOMweb plugin is not installed ({DICOMWEB_PLUGIN}; "
                "Debian package orthanc-dicomweb)")
    return None


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OrthancServer:
    """One Orthanc process with its own storage folder.

    Attributes
    ----------
    root : Path
        The temporary folder (configuration, storage, index, log).
    port : int
        The HTTP port (kept across :meth:`stop` and :meth:`start`).
    rest : str
        The REST root, ``http://127.0.0.1:<port>``.
    url : str
        The DICOMweb root, ``http://127.0.0.1:<port>/dicom-web``.
    user, password : str
        The HTTP basic credentials (random password); :meth:`env` gives them as pofa's variables.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.rest = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.rest}/dicom-web"
        self.user = USER
        self.password = secrets.token_urlsafe(16)
        self._proc: subprocess.Popen[bytes] | None = None
        self._http = requests.Session()
        self._http.auth = (self.user, self.password)
        (root / "storage").mkdir(parents=True, exist_ok=True)
        self.config = root / "orthanc.json"
        self.config.write_text(json.dumps(self._configuration(), indent=2), encoding="utf-8")

    def _configuration(self) -> dict[str, Any]:
        return {
            "Name": "pofa-test",
            "StorageDirectory": str(self.root / "storage"),
            "IndexDirectory": str(self.root / "storage"),
            "HttpServerEnabled": True,
            "HttpPort": self.port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {self.user: self.password},
            "DicomServerEnabled": False,
            "HttpsCACertificates": "",
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False,
                         "StudiesMetadata": "Full", "SeriesMetadata": "Full"},
            "ConcurrentJobs": 1,
            "HttpThreadsCount": 8,
            "StableAge": 1,
        }

    # ------------------------------------------------------------------------------------------ process
    @property
    def pid(self) -> int | None:
        """The process id of the running server (None when stopped)."""
        return None if self._proc is None or self._proc.poll() is not None else self._proc.pid

    def env(self) -> dict[str, str]:
        """Return pofa's credential variables for this server."""
        return {"POFA_DICOMWEB_USER": self.user, "POFA_DICOMWEB_PASSWORD": self.password}

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until ``/system`` answers."""
        if self.pid is not None:
            return
        log = (self.root / "orthanc.log").open("ab")
        try:
            self._proc = subprocess.Popen([str(ORTHANC), str(self.config)], cwd=self.root, stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited with code {self._proc.returncode}:\n{self.log_tail()}")
            try:
                r = self._http.get(f"{self.rest}/system", timeout=2)
                if r.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the process this object started (terminate, wait, then kill)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)

    def log_tail(self, n: int = 40) -> str:
        """Return the end of the server's log."""
        path = self.root / "orthanc.log"
        if not path.is_file():
            return ""
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:])

    def listening_addresses(self) -> list[str]:
        """Return the local addresses (``ip:port``) where the server's port is listening (/proc/net)."""
        out = []
        for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
            try:
                lines = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                local, state = fields[1], fields[3]
                addr, port = local.split(":")
                if state == "0A" and int(port, 16) == self.port and len(addr) == width:
                    if width == 8:
                        ip = ".".join(str(b) for b in reversed(bytes.fromhex(addr)))
                    else:
                        ip = "::" if int(addr, 16) == 0 else addr
                    out.append(f"{ip}:{self.port}")
        return out

    # ------------------------------------------------------------------------------------------ content
    def upload(self, paths: Iterable[Path]) -> list[str]:
        """Store DICOM files through the REST API (``POST /instances``); return their Orthanc instance ids."""
        ids = []
        for p in paths:
            r = self._http.post(f"{self.rest}/instances", data=Path(p).read_bytes(), timeout=60,
                                headers={"Content-Type": "application/dicom"})
            r.raise_for_status()
            ids.append(str(r.json()["ID"]))
        return ids

    def _orthanc_id(self, level: str, uid: str) -> str:
        r = self._http.post(f"{self.rest}/tools/lookup", data=uid, timeout=30)
        r.raise_for_status()
        for hit in r.json():
            if hit["Type"] == level:
                return str(hit["ID"])
        raise KeyError(f"{level} {uid} is not on the server")

    def delete_series(self, series_uid: str) -> None:
        """Delete a series (by its SeriesInstanceUID) from the server."""
        r = self._http.delete(f"{self.rest}/series/{self._orthanc_id('Series', series_uid)}", timeout=30)
        r.raise_for_status()

    def clear(self) -> None:
        """Delete every study on the server."""
        r = self._http.get(f"{self.rest}/studies", timeout=30)
        r.raise_for_status()
        for sid in r.json():
            self._http.delete(f"{self.rest}/studies/{sid}", timeout=30).raise_for_status()

    def series_uids(self) -> list[str]:
        """Return the SeriesInstanceUID of every series on the server."""
        r = self._http.get(f"{self.rest}/series", params={"expand": ""}, timeout=30)
        r.raise_for_status()
        return sorted(str(s["MainDicomTags"]["SeriesInstanceUID"]) for s in r.json())

    def close(self) -> None:
        """Stop the server and remove its folder."""
        self.stop()
        self._http.close()
        shutil.rmtree(self.root, ignore_errors=True)
