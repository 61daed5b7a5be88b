"""report.html in a real browser: Debian's headless Chromium, driven over the DevTools protocol.

The test talks to Chromium (pofa.report.pdf's client, the one ``pofa analyze --pdf`` uses) through
``--remote-debugging-pipe`` (file descriptors 3 and 4, NUL-separated JSON
messages), so it needs no driver, no websocket library and no network port. It checks that every image
loads, that the console shows no error, that no request leaves the file, and that every number the report
shows equals results.json. A full-page screenshot and a PDF print are saved under the test's temporary folder
(the CI artifacts).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from pofa.examples import simulated_analysis
from pofa.report import write_report
from pofa.report.format import displayed_matches
from pofa.report.pdf import DevTools, find_chromium
from results_path import lookup

SKIP_REASON = "Debian package chromium not installed (.ci/run installs it)"


_PAGE_PROBE = """
(() => {
  const imgs = Array.from(document.images).map(i => ({
    scheme: i.currentSrc.split(':')[0], complete: i.complete, w: i.naturalWidth, h: i.naturalHeight,
    alt: i.getAttribute('alt') || ''}));
  const nums = Array.from(document.querySelectorAll('[data-result]')).map(e => ({
    path: e.dataset.result, value: e.dataset.value, text: e.textContent}));
  const figs = Array.from(document.querySelectorAll('figure.fig')).map(f => f.id);
  return JSON.stringify({imgs, nums, figs, title: document.title, text: document.body.innerText});
})()
"""


def check_shown_number(text: str, value: Any) -> None:
    """The text shown for a results.json value is that value, rounded as displayed."""
    assert displayed_matches(text, value), (text, value)


def require_chromium() -> str:
    """Chromium's path; skip without it, except on CI (CI=true), where its absence is a failure."""
    exe = find_chromium()
    if exe is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{SKIP_REASON}; CI must have it")
        pytest.skip(SKIP_REASON)
    return exe


def console_errors(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Console errors and warnings, uncaught exceptions and browser log errors (e.g. CSP violations)."""
    errors = []
    for ev in events:
        m, p = ev.get("method"), ev.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert", "warning"):
            errors.append(p)
        elif m == "Runtime.exceptionThrown":
            errors.append(p)
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
            errors.append(p["entry"])
    return errors


def requested_urls(events: list[dict[str, Any]]) -> list[str]:
    return [
        ev["params"]["request"]["url"] for ev in events if ev.get("method") == "Network.requestWillBeSent"
    ]


def visit(dt: DevTools, session: str, url: str) -> list[dict[str, Any]]:
    """Load ``url`` and return the events it caused."""
    first = len(dt.events)
    dt.send("Page.navigate", {"url": url}, session=session)
    deadline = time.monotonic() + 60
    while not any(ev.get("method") == "Page.loadEventFired" for ev in dt.events[first:]):
        dt.events.append(dt.read_message(deadline))
    dt.drain(0.5)
    return dt.events[first:]


def test_chromium_is_required_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium not installed"):
        require_chromium()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match=re.escape(SKIP_REASON)):
        require_chromium()


@pytest.mark.browser
@pytest.mark.slow
def test_report_in_headless_chromium(tmp_path: Path) -> None:
    chromium = require_chromium()
    out = tmp_path / "out"
    result = simulated_analysis(tmp_path / "study", 63, seed=7)
    write_report(result, out)
    report = out / "report.html"
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    url = report.as_uri()
    # a control page that does what the report must not: the checks below must see it
    control = tmp_path / "control.html"
    control.write_text(
        '<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png" alt="x">'
        '<script>console.error("control error")</script></body></html>',
        encoding="utf-8",
    )

    dt = DevTools(chromium, tmp_path / "profile")
    try:
        target = dt.send("Target.createTarget", {"url": "about:blank"})
        session = dt.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            dt.send(f"{domain}.enable", session=session)
        dt.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1100, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        control_events = visit(dt, session, control.as_uri())
        first_report_event = len(dt.events)
        visit(dt, session, url)
        probe = dt.send(
            "Runtime.evaluate", {"expression": _PAGE_PROBE, "returnByValue": True}, session=session
        )
        page = json.loads(probe["result"]["value"])
        size = dt.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
        shot = dt.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            },
            session=session,
        )
        screenshot = tmp_path / "report-screenshot.png"
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        pdf = dt.send(
            "Page.printToPDF", {"printBackground": True, "preferCSSPageSize": True}, session=session
        )
        (tmp_path / "report-print.pdf").write_bytes(base64.b64decode(pdf["data"]))
        dt.drain(0.3)
        report_events = dt.events[first_report_event:]
    finally:
        dt.close()

    # the checks can fail: they see the control page's request and console error
    assert "http://127.0.0.1:9/x.png" in requested_urls(control_events)
    assert any("control error" in json.dumps(e) for e in console_errors(control_events))

    # the artifacts exist (CI keeps tmp_path)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "report-print.pdf").read_bytes()[:5] == b"%PDF-"

    # every image loads and has alt text
    assert len(page["imgs"]) == len(page["figs"]) >= 7
    for img in page["imgs"]:
        assert img["scheme"] == "data", img
        assert img["complete"] and img["w"] > 0 and img["h"] > 0, img
        assert len(img["alt"]) > 30, img

    # no console error, no exception, no CSP violation, during loading or afterwards
    assert console_errors(report_events) == []

    # no request leaves the file: only the report itself and data: URIs
    requested = requested_urls(report_events)
    assert url in requested
    assert [u for u in requested if u != url and not u.startswith("data:")] == []
    assert [ev for ev in report_events if ev.get("method") == "Network.loadingFailed"] == []

    # every number shown equals results.json, and the key numbers are all shown
    shown_paths = set()
    for n in page["nums"]:
        expected = lookup(results, n["path"])
        assert json.loads(n["value"]) == expected, n
        check_shown_number(n["text"], expected)
        shown_paths.add(n["path"])
    must = {f"patterns.{k}" for k in results["patterns"]}
    must |= {
        f"survival.{e}.{k}"
        for e in ("pfs", "os")
        for k in ("n", "events", "median_months", "ci_low", "ci_high")
    }
    must |= {"followup.median_months", "followup.ci_low", "followup.ci_high"}
    must |= {
        f"lesion_models[{i}].{k}"
        for i in range(len(results["lesion_models"]))
        for k in ("or", "ci_low", "ci_high", "p")
    }
    must |= {
        f"patient_models[{i}].{k}"
        for i in range(len(results["patient_models"]))
        for k in ("hr", "ci_low", "ci_high", "p", "logrank_p", "n_with")
    }
    assert must <= shown_paths, sorted(must - shown_paths)

    # the page is what it says: title, sections, no identifiers or dates
    assert "Patterns of failure" in page["title"]
    for heading in (
        "Key findings",
        "Patient flow",
        "Table 1",
        "Lesion-level risk factors",
        "Statistical methods",
    ):
        assert heading in page["text"]
    assert not re.search(r"\b(19|20)\d\d-\d\d-\d\d\b", page["text"])
    assert not any(pid in page["text"] for pid in result.patients["patient_id"])


def _pdf_pages_text(pdf: Path) -> list[str]:
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True)
    return out.stdout.split("\f")


@pytest.mark.browser
@pytest.mark.slow
def test_demo_report_prints_to_few_pages_with_each_figure_beside_its_caption(tmp_path: Path) -> None:
    """The bundled demo printed by Chromium (``pofa analyze --pdf``'s writer): at most 10 A4 pages, and each
    figure's caption on the page of its figure.

    Each figure of a simulated study carries "SIMULATED DATA, NOT PATIENTS" in its footer (text of the SVG,
    so pdftotext reads it on the page where the figure is drawn): on every page, the figure captions
    ("Figure N.") and the figure footers must be as many. A caption pushed to another page than its figure
    breaks the count on both pages.
    """
    import pofa
    from pofa.analysis import WRITERS, run_analysis, write_outputs
    from pofa.data import bundled_study
    from pofa.report.pdf import PDF_NAME, pdf_page_count, pdf_writer, print_pdf

    chromium = require_chromium()
    if shutil.which("pdftotext") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("pdftotext (poppler-utils) not installed; .ci/run installs it")
        pytest.skip("pdftotext (poppler-utils) not installed")
    result = run_analysis(pofa.load_study(bundled_study("demo")))
    out = write_outputs(result, tmp_path / "out", writers=(*WRITERS, pdf_writer))
    pdf = out / PDF_NAME
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-"
    assert PDF_NAME in json.loads((out / "results.json").read_text(encoding="utf-8"))["files"]
    n_pages = pdf_page_count(data)
    # At most 10 A4 pages for the analysis of the defining study, and at most 2 more for the
    # response-over-time section that the demo's multi-scan follow-up adds (its full per-scan table folds
    # away in print).
    assert 3 <= n_pages <= 12, n_pages
    pages = _pdf_pages_text(pdf)
    assert "SIMULATED DATA, NOT PATIENTS. This study" in pages[0]  # the first screen says so
    n_figures = 0
    for k, page in enumerate(pages, start=1):
        captions = len(re.findall(r"Figure \d+\. ", page))
        footers = len(re.findall(r"SIMULATED DATA, NOT PATIENTS\s*$", page, flags=re.MULTILINE))
        assert captions == footers, (k, captions, footers)
        n_figures += captions
    assert n_figures >= 7
    # Letter paper too, within one page of A4
    letter = tmp_path / "letter.pdf"
    assert print_pdf(out / "report.html", letter, paper="Letter", chromium=chromium) <= n_pages + 1
