"""A real Orthanc DICOMweb server for the tests: Debian's ``orthanc`` with its ``orthanc-dicomweb`` plugin.

:class:`OrthancServer` writes a JSON configuration into a temporary folder and starts ``/usr/sbin/Orthanc``:

- HTTP on a free port of 127.0.0.1, and nowhere else. Orthanc 1.10 has no option naming the address to bind
  (it listens on every interface), so it is started in a network namespace of its own (``unshare --net``; a
  short Python prelude brings that namespace's loopback up, then ``exec``s Orthanc, so the process id is
  Orthanc's): no interface of the machine reaches it. A :class:`forwarder.Forwarder` thread of the test
  process listens on ``127.0.0.1:<free port>`` and opens each upstream connection inside Orthanc's namespace;
  when Orthanc is stopped the forwarder is stopped too, so clients see a refused connection, and a connection
  open at that moment is dropped. :meth:`OrthancServer.listening_addresses` reads /proc/net/tcp so that a test
  can show what is exposed.
- Where network namespaces cannot be made (``unshare`` refused: not root, or a container without
  CAP_SYS_ADMIN; or ``POFA_TEST_ORTHANC_NETNS=0``), Orthanc runs as before in the test's namespace on the free
  port, listening on every interface but serving only local clients. :attr:`OrthancServer.isolated` says
  which; the test that the port is bound to 127.0.0.1 only is then skipped with the reason (locally and under
  ``CI=true`` alike: CI fails only when Orthanc itself cannot run).
- In both modes ``"RemoteAccessAllowed": false`` refuses clients that are not on this machine, and HTTP basic
  authentication with a random password (``RegisteredUsers``) guards the server from other local users.
- no DICOM (DIMSE) server (``"DicomServerEnabled": false``): nothing listens on port 4242;
- storage and index in the temporary folder; the DICOMweb plugin at ``/dicom-web/``.

The server is stopped through the process the object started (``Popen``: terminate, wait, kill), never by
name, and its forwarder thread with it.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import requests
from forwarder import Forwarder

ORTHANC = Path(os.environ.get("POFA_TEST_ORTHANC", "/usr/sbin/Orthanc"))
DICOMWEB_PLUGIN = Path(os.environ.get("POFA_TEST_ORTHANC_DICOMWEB",
                                      "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"))
USER = "pofa-test"
UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"
#: Orthanc's port inside its own network namespace (nothing else listens there).
INNER_PORT = 8042
#: Run in the new namespace before Orthanc: bring the loopback interface up (SIOCGIFFLAGS, then SIOCSIFFLAGS
#: with IFF_UP), then exec Orthanc in this same process.
_PRELUDE = """
import fcntl, os, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sH14s", fcntl.ioctl(s, 0x8913, struct.pack("16sH14s", b"lo", 0, b"")))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", flags | 0x1, b""))
s.close()
os.execv(sys.argv[1], sys.argv[1:])
"""


@functools.cache
def isolation_unavailable() -> str | None:
    """Return why Orthanc cannot get a network namespace of its own here (None when it can)."""
    if os.environ.get("POFA_TEST_ORTHANC_NETNS", "") == "0":
        return "POFA_TEST_ORTHANC_NETNS=0"
    if not os.path.exists("/proc/thread-self/ns/net"):
        return "no network namespaces (/proc/thread-self/ns/net)"
    try:
        r = subprocess.run([UNSHARE, "--net", "--", sys.executable, "-c", _PRELUDE, "/bin/true"],
                           capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare --net cannot run ({type(exc).__name__})"
    if r.returncode != 0:
        return f"unshare --net is not permitted here ({r.stderr.decode(errors='replace').strip()[:200]})"
    return None


def missing() -> str | None:
    """Return why Orthanc cannot run here (None when it can)."""
    if not (ORTHANC.is_file() and os.access(ORTHANC, os.X_OK)):
        return f"Orthanc is not installed ({ORTHANC}; Debian package orthanc)"
    if not DICOMWEB_PLUGIN.is_file():
        return (f"the Orthanc DICOMweb plugin is not installed ({DICOMWEB_PLUGIN}; "
                "Debian package orthanc-dicomweb)")
    return None


def require_orthanc() -> None:
    """Skip the calling test when Orthanc is missing; fail it instead when the variable CI is ``true``."""
    import pytest

    why = missing()
    if why is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{why}: CI must install it (.ci/run)")
    pytest.skip(why)


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening_sockets(net: str = "/proc/net") -> list[tuple[str, int, int]]:
    """Return ``(ip, port, inode)`` of every listening TCP socket in ``net``'s ``tcp`` and ``tcp6`` tables."""
    out = []
    for table, width in ("tcp", 8), ("tcp6", 32):
        try:
            lines = Path(net, table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            addr, port = fields[1].split(":")
            if fields[3] != "0A" or len(addr) != width:
                continue
            if width == 8:
                ip = ".".join(str(b) for b in reversed(bytes.fromhex(addr)))
            else:
                ip = "::" if int(addr, 16) == 0 else addr
            out.append((ip, int(port, 16), int(fields[9])))
    return out


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
    isolated : bool
        Orthanc runs in its own network namespace behind the 127.0.0.1 forwarder (see the module docstring).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.isolated = isolation_unavailable() is None
        self.inner_port = INNER_PORT if self.isolated else self.port
        self.forwarder: Forwarder | None = None
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
            "HttpPort": self.inner_port,
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
        command = [str(ORTHANC), str(self.config)]
        if self.isolated:
            command = [UNSHARE, "--net", "--", sys.executable, "-c", _PRELUDE, *command]
        log = (self.root / "orthanc.log").open("ab")
        try:
            self._proc = subprocess.Popen(command, cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL)
        finally:
            log.close()
        if self.isolated:
            try:
                self.forwarder = Forwarder(self.port, self._proc.pid, self.inner_port)
            except OSError:
                self.stop()
                raise
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
        """Stop the process this object started (terminate, wait, then kill), then its forwarder thread."""
        proc, self._proc = self._proc, None
        try:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=20)
        finally:
            forwarder, self.forwarder = self.forwarder, None
            if forwarder is not None:
                forwarder.stop()

    def log_tail(self, n: int = 40) -> str:
        """Return the end of the server's log."""
        path = self.root / "orthanc.log"
        if not path.is_file():
            return ""
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:])

    def listening_addresses(self, port: int | None = None, net: str = "/proc/net") -> list[str]:
        """Return the addresses (``ip:port``) listening on ``port`` (default: the exposed port).

        Read from ``net``'s ``tcp`` and ``tcp6`` tables: ``/proc/net`` is the test process's own namespace,
        ``/proc/<pid>/net`` the namespace of process ``pid``.
        """
        want = self.port if port is None else port
        return [f"{ip}:{p}" for ip, p, _ in listening_sockets(net) if p == want]

    def socket_inodes(self) -> set[int]:
        """Return the inodes of the sockets the Orthanc process holds open (empty when it is stopped)."""
        pid = self.pid
        out = set()
        if pid is None:
            return out
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                out.add(int(target[8:-1]))
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
