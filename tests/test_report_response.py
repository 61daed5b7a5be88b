"""The report's response section: table with disagreements, spider plot, waterfall; pofa analyze."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pofa.report.response import (
    disagree,
    incidence_png,
    insert_response_section,
    response_section,
    spider_png,
    swimmer_png,
    waterfall_png,
)
from response_data import write_response_study

PNG = b"\x89PNG"
ENTRIES = [
    {"patient": 1, "day": 30, "lugano_ct": "PR", "lugano_pet": "CMR", "lyric": "PR", "recil": "MR",
     "lyric_ir_status": None, "spd_change_baseline_pct": -60.0},
    {"patient": 1, "day": 90, "lugano_ct": "PD", "lugano_pet": "PMD", "lyric": "IR1", "recil": "PD",
     "lyric_ir_status": None, "spd_change_baseline_pct": 80.0},
    {"patient": 2, "day": 30, "lugano_ct": "NE", "lugano_pet": "NE", "lyric": "NE", "recil": "NE",
     "lyric_ir_status": None, "spd_change_baseline_pct": None},
]


def test_disagreement_is_by_family() -> None:
    assert disagree(ENTRIES[0])  # PR/CR/PR/MR(=SD)
    assert not disagree(ENTRIES[1])  # IR1 reads as PD
    assert not disagree(ENTRIES[2])  # NE is not compared


def test_figures_and_section() -> None:
    assert (spider_png(ENTRIES) or b"").startswith(PNG)
    assert (waterfall_png(ENTRIES) or b"").startswith(PNG)
    assert spider_png(ENTRIES[2:]) is None and waterfall_png([]) is None
    assert (swimmer_png(ENTRIES) or b"").startswith(PNG) and swimmer_png([]) is None
    curve = {"cumulative_incidence_curve": {"months": [1.0, 3.0], "estimate": [0.1, 0.25],
                                            "last_months": 9.0}}
    assert (incidence_png(curve) or b"").startswith(PNG) and incidence_png({}) is None
    html = response_section({"responses": ENTRIES, "lesion_cox": [
        {"term": "suvmax", "hr": 1.1, "ci_low": 1.0, "ci_high": 1.2, "p": 0.0004}]})
    assert html.count("<td>&#9888;</td>") == 1
    assert 'id="fig-spider"' in html and 'id="fig-waterfall"' in html and "&lt; 0.001" in html
    assert response_section({}) == ""
    page = "<main><section id=\"methods\"></section></main>"
    assert insert_response_section(page, {"responses": ENTRIES}).index('id="response"') < 60
    assert insert_response_section(page, {}) == page


@pytest.mark.slow
def test_analyze_writes_responses_and_the_section(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pofa.cli import app

    study = write_response_study(tmp_path / "study")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["analyze", str(study), "--out", str(out)])
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    assert results["responses"] and results["lesion_cox"]
    page = (out / "report.html").read_text()
    assert page.index('id="response"') < page.index('id="methods"')
