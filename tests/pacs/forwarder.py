"""A TCP forwarder from 127.0.0.1 of the test's network namespace into the namespace of a test server.

:class:`Forwarder` listens on ``127.0.0.1:<port>`` in the namespace of the test process. For each connection
it opens the upstream socket inside the server process's own network namespace (``setns`` is per thread on
Linux: the accepting thread enters ``/proc/<pid>/ns/net``, creates the socket, and returns to its own
namespace before connecting it to ``127.0.0.1:<target port>`` there), then copies bytes both ways. When the
upstream cannot be reached (the server stopped or died), the client's connection is reset at once, as a
refused or dropped connection would be.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import socket
import struct
import threading

CLONE_NEWNET = 0x40000000
_BUFFER = 1 << 16

_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)
_libc.setns.restype = ctypes.c_int


def setns(fd: int) -> None:
    """Move the calling thread into the network namespace open as ``fd`` (libc ``setns``)."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def socket_in_namespace(pid: int) -> socket.socket:
    """Create a TCP socket in process ``pid``'s network namespace (the calling thread returns to its own).

    Raises
    ------
    OSError
        When the process is gone, still shares the caller's namespace, or its namespace cannot be entered.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if os.fstat(target).st_ino == os.fstat(own).st_ino:  # not unshared yet: never connect here
                raise OSError(f"process {pid} has no network namespace of its own (yet)")
            setns(target)
            try:
                return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            finally:
                setns(own)  # a failure here leaves the thread elsewhere: it raises, the forwarder stops
        finally:
            os.close(target)
    finally:
        os.close(own)


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0): the client sees a dropped connection, not an empty answer."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Forwarder:
    """Forward ``127.0.0.1:port`` (here) to ``127.0.0.1:target_port`` in process ``pid``'s network namespace.

    Parameters
    ----------
    port : int
        The port to listen on, on 127.0.0.1 only.
    pid : int
        The process whose network namespace holds the server.
    target_port : int
        The server's port in that namespace.
    """

    def __init__(self, port: int, pid: int, target_port: int) -> None:
        self.port = port
        self.pid = pid
        self.target_port = target_port
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._pumps: list[threading.Thread] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind(("127.0.0.1", port))
            self._listener.listen(64)
        except OSError:
            self._listener.close()
            raise
        self._listener.settimeout(0.1)
        self.thread = threading.Thread(target=self._serve, name=f"forwarder-127.0.0.1:{port}", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket_in_namespace(self.pid)
            except OSError:
                _reset(client)  # the server's process (and its namespace) is gone
                continue
            try:
                upstream.settimeout(10)
                upstream.connect(("127.0.0.1", self.target_port))
                upstream.settimeout(None)
            except OSError:
                upstream.close()
                _reset(client)
                continue
            with self._lock:
                if self._stopping.is_set():
                    upstream.close()
                    _reset(client)
                    return
                self._open.update((client, upstream))
                pump = threading.Thread(target=self._pump, args=(client, upstream), daemon=True,
                                        name=f"forwarder-pump-{self.port}")
                self._pumps = [t for t in self._pumps if t.is_alive()] + [pump]
            pump.start()
        self._listener.close()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        """Copy bytes both ways until either side closes; then close both."""
        other = {a: b, b: a}
        sel = selectors.DefaultSelector()
        try:
            sel.register(a, selectors.EVENT_READ)
            sel.register(b, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in sel.select(timeout=0.2):
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = src.recv(_BUFFER)
                    if not data:
                        return
                    other[src].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            sel.close()
            with self._lock:
                self._open.difference_update((a, b))
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    @property
    def running(self) -> bool:
        """Whether the accepting thread or a connection's thread is still running."""
        return self.thread.is_alive() or any(t.is_alive() for t in self._pumps)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening, close every forwarded connection and wait for the threads to end."""
        self._stopping.set()
        with self._lock:
            sockets = list(self._open)
            pumps = list(self._pumps)
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        self.thread.join(timeout)
        for t in pumps:
            t.join(timeout)
        with contextlib.suppress(OSError):
            self._listener.close()
