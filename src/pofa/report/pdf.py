"""Print report.pdf with headless Chromium (A4 or Letter), driven over the DevTools protocol.

Chromium is driven through ``--remote-debugging-pipe`` (file descriptors 3 and 4, NUL-separated JSON
messages): no driver, no websocket library, no network port. The page is printed with ``Page.printToPDF``;
the report's print style keeps each figure with its caption and each table row whole.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from pofa.atomic import write_bytes
from pofa.report.model import ReportError

__all__ = [
    "PAPER_SIZES",
    "PDF_NAME",
    "DevTools",
    "find_chromium",
    "pdf_page_count",
    "pdf_writer",
    "print_pdf",
]

#: The file written next to report.html.
PDF_NAME = "report.pdf"
#: Paper sizes (width, height) in inches.
PAPER_SIZES: dict[str, tuple[float, float]] = {"A4": (8.27, 11.69), "Letter": (8.5, 11.0)}
#: Page margins, inches (12 mm).
MARGIN_IN = 0.47


def find_chromium() -> str | None:
    """The path of a Chromium or Chrome executable, or ``None``.

    Returns
    -------
    str or None
        The first of ``chromium``, ``chromium-browser``, ``google-chrome`` on the ``PATH``, else
        ``/usr/bin/chromium`` when executable, else ``None``.
    """
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


class DevTools:
    """A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe``.

    Parameters
    ----------
    exe : str
        The Chromium executable.
    profile : Path
        A fresh user-data folder.
    """

    def __init__(self, exe: str, profile: Path) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # park the child's ends on high descriptors first, so the dup2 calls below cannot clobber them
        hi_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 100)
        hi_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 100)
        os.close(to_child_r)
        os.close(from_child_w)

        def child_fds() -> None:  # runs in the child between fork and exec
            os.dup2(hi_r, 3)  # Chromium reads commands from fd 3 ...
            os.dup2(hi_w, 4)  # ... and writes replies and events to fd 4

        args = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--mute-audio",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            close_fds=False,
            preexec_fn=child_fds,
        )
        os.close(hi_r)
        os.close(hi_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def read_message(self, deadline: float) -> dict[str, Any]:
        """Read the next message from Chromium.

        Parameters
        ----------
        deadline : float
            ``time.monotonic()`` by which it must arrive.

        Returns
        -------
        dict
            The decoded JSON message (a method's answer or an event).

        Raises
        ------
        TimeoutError
            When nothing arrives in time.
        RuntimeError
            When Chromium closed the pipe.
        """
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                    raise RuntimeError(f"Chromium closed the DevTools pipe: {err[-2000:]}")
                self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        out: dict[str, Any] = json.loads(msg)
        return out

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        """Call a DevTools method and return its result (events that arrive meanwhile are kept).

        Parameters
        ----------
        method : str
            The DevTools method name (``"Page.printToPDF"``).
        params : dict, optional
            The method's parameters (default: none).
        session : str, optional
            The target session (flattened).
        timeout : float
            Seconds.

        Returns
        -------
        dict
            The method's ``result`` object.

        Raises
        ------
        RuntimeError
            When the method fails.
        """
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self.read_message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method} failed: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def drain(self, seconds: float) -> None:
        """Collect late events for a while.

        Parameters
        ----------
        seconds : float
            How long to keep reading events.
        """
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self.read_message(deadline))
        except TimeoutError:
            pass

    def open_page(self, url: str, timeout: float = 60.0) -> str:
        """Open ``url`` in a new target and wait until it has loaded.

        Parameters
        ----------
        url : str
            The address to load (a ``file://`` URL of the report).
        timeout : float
            Seconds to wait for the page's load event.

        Returns
        -------
        str
            The session id of the new target.

        Raises
        ------
        TimeoutError
            When the page does not load in time.
        RuntimeError
            When a DevTools call fails or Chromium closes the pipe.
        """
        target = self.send("Target.createTarget", {"url": "about:blank"})
        session = str(
            self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})["sessionId"]
        )
        self.send("Page.enable", session=session)
        first = len(self.events)
        self.send("Page.navigate", {"url": url}, session=session)
        deadline = time.monotonic() + timeout
        while not any(ev.get("method") == "Page.loadEventFired" for ev in self.events[first:]):
            self.events.append(self.read_message(deadline))
        return session

    def close(self) -> None:
        """Close the browser and the pipe."""
        # the browser may already be gone
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close", timeout=10)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.proc.stderr:
            self.proc.stderr.close()


def print_params(paper: str) -> dict[str, Any]:
    """``Page.printToPDF`` parameters for a paper size.

    Parameters
    ----------
    paper : {"A4", "Letter"}

    Returns
    -------
    dict
        The parameters: background printed, paper width and height and margins in inches, no header or
        footer.

    Raises
    ------
    ReportError
        For another paper size.
    """
    if paper not in PAPER_SIZES:
        raise ReportError(f"paper size {paper!r} is not one of {', '.join(PAPER_SIZES)}")
    w, h = PAPER_SIZES[paper]
    return {
        "printBackground": True,
        "preferCSSPageSize": False,
        "paperWidth": w,
        "paperHeight": h,
        "marginTop": MARGIN_IN,
        "marginBottom": MARGIN_IN,
        "marginLeft": MARGIN_IN,
        "marginRight": MARGIN_IN,
        "displayHeaderFooter": False,
    }


def pdf_page_count(data: bytes) -> int:
    """Count the pages of a PDF (its ``/Type /Page`` objects).

    Parameters
    ----------
    data : bytes
        The PDF file's contents.

    Returns
    -------
    int
        The number of page objects.
    """
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))


def print_pdf(html: str | Path, pdf: str | Path, *, paper: str = "A4", chromium: str | None = None) -> int:
    """Print a report.html to PDF with headless Chromium; returns the number of pages.

    Parameters
    ----------
    html : str or Path
        The report.
    pdf : str or Path
        The PDF to write (atomically).
    paper : {"A4", "Letter"}
        Paper size.
    chromium : str, optional
        The browser (default: :func:`find_chromium`).

    Returns
    -------
    int
        Pages printed.

    Raises
    ------
    ReportError
        When no Chromium is installed or printing fails.
    """
    exe = chromium or find_chromium()
    if exe is None:
        raise ReportError(
            "report.pdf needs Chromium (Debian: apt-get install chromium); report.html is written without it"
        )
    params = print_params(paper)
    with tempfile.TemporaryDirectory(prefix="pofa-chromium-") as profile:
        dt = DevTools(exe, Path(profile))
        try:
            session = dt.open_page(Path(html).absolute().as_uri())
            data = base64.b64decode(dt.send("Page.printToPDF", params, session=session, timeout=120)["data"])
        except (RuntimeError, TimeoutError, OSError) as exc:
            raise ReportError(f"Chromium could not print the report: {exc}") from None
        finally:
            dt.close()
    write_bytes(Path(pdf), data)
    return pdf_page_count(data)


def pdf_writer(result: Any, folder: Path, paper: str = "A4") -> list[str]:
    """A writer of :func:`pofa.analysis.write_outputs` (after the report's): report.pdf from report.html.

    Parameters
    ----------
    result : AnalysisResult
        Unused (the report is already written).
    folder : Path
        The output folder being written.
    paper : {"A4", "Letter"}

    Returns
    -------
    list of str
        ``["report.pdf"]``.
    """
    print_pdf(folder / "report.html", folder / PDF_NAME, paper=paper)
    return [PDF_NAME]
