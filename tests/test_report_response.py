"""The report's response section, rendered from the typed results: table with disagreements, spider plot,
waterfalls per rule, swimmer plot, lesion-level incidence; and pofa analyze end to end."""

from __future__ import annotations

import base64
import json
import math
import re
from html import unescape
from pathlib import Path

import pytest

from pofa.report.format import displayed_matches
from pofa.report.response import (
    CATEGORY_COLOURS,
    RESPONSE_FIGURES,
    best_categories,
    disagree,
    incidence_png,
    insert_response_section,
    response_section,
    spider_png,
    swimmer_png,
    waterfall_png,
)
from pofa.report.style import OKABE_ITO
from pofa.stats.results import (
    Estimate,
    LesionCoxRow,
    LesionFailureSummary,
    ResponseOverTime,
    ScanResponseRow,
    StudyResults,
)
from response_data import write_response_study
from results_path import lookup

PNG = b"\x89PNG"
NAN = math.nan


def _row(patient: int, day: int, ct: str, pet: str, lyric: str, recil: str, spd: float, sld: float = NAN,
         status: str | None = None) -> ScanResponseRow:
    return ScanResponseRow(patient, day, ct, pet, lyric, status, recil, NAN, spd, NAN, NAN, 0, sld)


ROWS = (
    _row(1, 30, "PR", "CMR", "PR", "MR", -60.0, -25.0),
    _row(1, 90, "PD", "PMD", "IR1", "PD", 80.0, 30.0),
    _row(2, 30, "NE", "NE", "NE", "NE", NAN),
    _row(3, 30, "SD", "NMR", "SD", "SD", -20.0, -5.0),
    _row(3, 120, "PD", "PMD", "PD", "PD", 70.0, 25.0, status="confirmed"),
)
FAILURE = LesionFailureSummary(
    "lugano", 10, 3, 2, 1, ("a note",), (),
    ((6.0, Estimate(0.2, 0.05, 0.4, NAN, 10, "Aalen-Johansen")),
     (24.0, Estimate(NAN, NAN, NAN, NAN, 10, "Aalen-Johansen", "beyond the last follow-up"))),
    (1.0, 3.0), (0.1, 0.25), 9.0)
COX = LesionCoxRow("suvmax", 1.1, 1.0, 1.2, 0.0004, 0.05, 10, 2, 3, "m")
RESULT = ResponseOverTime(ROWS, FAILURE, (COX,))


def test_disagreement_is_by_family() -> None:
    assert disagree(ROWS[0])  # PR/CR/PR/MR(=SD)
    assert not disagree(ROWS[1])  # IR1 reads as PD
    assert not disagree(ROWS[2])  # NE is not compared


def test_best_category_per_rule() -> None:
    assert best_categories(ROWS, "lugano_ct") == {1: "PR", 2: "NE", 3: "SD"}
    assert best_categories(ROWS, "lugano_pet") == {1: "CMR", 2: "NE", 3: "NMR"}
    assert best_categories(ROWS, "recil") == {1: "MR", 2: "NE", 3: "SD"}
    # an indeterminate response ranks above PD (it may turn out not to be progression)
    assert best_categories([ROWS[1], _row(1, 120, "PD", "PMD", "PD", "PD", 90.0)], "lyric") == {1: "IR1"}


def test_category_colours_are_okabe_ito_and_one_per_family() -> None:
    palette = {*OKABE_ITO.values(), "#999999"}
    assert set(CATEGORY_COLOURS.values()) <= palette
    assert CATEGORY_COLOURS["CR"] == CATEGORY_COLOURS["CMR"] != CATEGORY_COLOURS["PR"]
    assert CATEGORY_COLOURS["PD"] == CATEGORY_COLOURS["PMD"] != CATEGORY_COLOURS["IR1"]
    assert CATEGORY_COLOURS["MR"] not in (CATEGORY_COLOURS["PR"], CATEGORY_COLOURS["SD"])


def test_legend_merges_categories_of_one_colour() -> None:
    from pofa.report.response import _legend_groups

    assert _legend_groups({"PD", "IR2", "IR1", "CR"}) == [
        (CATEGORY_COLOURS["CR"], "CR"), (CATEGORY_COLOURS["IR1"], "IR2/IR1"), (CATEGORY_COLOURS["PD"], "PD")]


def test_waterfall_has_one_panel_per_rule_coloured_by_its_best_category() -> None:
    import matplotlib.colors

    from pofa.report.response import _waterfall_figure

    assert (waterfall_png(ROWS) or b"").startswith(PNG)
    fig = _waterfall_figure(ROWS)  # the drawing waterfall_png renders (matplotlib's object API, no pyplot)
    assert fig is not None
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["Lugano 2014 CT (SPD)", "Lugano 2014 PET (SPD)", "LYRIC (SPD)", "RECIL 2017 (SLD)"]
    recil = fig.axes[3]
    bars = [p for p in recil.patches if p.get_width() > 0]
    # patients 3 (SLD -5%, best SD) and 1 (SLD -25%, best MR), tallest first
    assert [round(b.get_height()) for b in bars] == [-5, -25]
    hexes = [matplotlib.colors.to_hex(b.get_facecolor()).upper() for b in bars]
    assert hexes == [CATEGORY_COLOURS["SD"].upper(), CATEGORY_COLOURS["MR"].upper()]
    assert [t.get_text() for t in recil.get_legend().get_texts()] == ["MR", "SD"]  # from the data
    pet = fig.axes[1]
    assert [t.get_text() for t in pet.get_legend().get_texts()] == ["CMR", "NMR"]


def test_figures_and_section() -> None:
    assert (spider_png(ROWS) or b"").startswith(PNG)
    assert spider_png(ROWS[2:3]) is None and waterfall_png(()) is None
    assert (swimmer_png(ROWS) or b"").startswith(PNG) and swimmer_png(()) is None
    assert (incidence_png(FAILURE) or b"").startswith(PNG)
    assert incidence_png(LesionFailureSummary("lugano", 0, 0, 0, 0)) is None
    html = response_section(RESULT)
    assert html.count("<td>&#9888;</td>") == 1  # patient 1 at day 30 (NMR reads as SD: patient 3 agrees)
    assert re.search(r">PD</span> \(<span [^>]*>confirmed</span>\)", html)
    for name in RESPONSE_FIGURES:
        assert f'id="fig-{name}"><img src="data:image/svg+xml;base64,' in html
    assert "&lt;0.001" in html and "20.0%</span> (" in html and "a note" in html
    assert "NE</span> (beyond the last follow-up)" in html
    _check_numbers(html, {"responses": [r.to_json() for r in ROWS], **RESULT.json_entries()})
    # each figure says how it was made: rule, thresholds, confirmation, software
    assert "one panel per rule" in html and "-30% (RECIL PR)" in html and "pofa " in html
    assert "confirmed as PD" in html and "10%" in html and "at least 10%, a pofa setting" in html
    assert response_section(None) == ""
    assert response_section(ResponseOverTime((), FAILURE)) == ""
    page = "<main><section id=\"methods\"></section></main>"
    assert insert_response_section(page, StudyResults(response=RESULT)).index('id="response"') < 60
    assert insert_response_section(page, StudyResults()) == page
    assert insert_response_section(page, None) == page


_SPAN = re.compile(r'<span data-result="([^"]+)" data-value="([^"]*)">([^<]*)</span>')


def _check_numbers(html: str, results: dict) -> int:
    """Every number and category of the section equals results.json at its path, at the shown precision."""
    found = _SPAN.findall(html)
    for path, value, text in found:
        expected = lookup(results, unescape(path))
        assert json.loads(unescape(value)) == expected, path
        assert displayed_matches(unescape(text), expected), (path, text, expected)
    return len(found)


def test_figures_are_written_once_with_reproducible_bytes(tmp_path: Path) -> None:
    from pofa.report.response import write_response_figures

    svg_only = write_response_figures(tmp_path / "svg", StudyResults(response=RESULT))
    assert sorted(p.name for p in svg_only) == sorted(f"{n}.svg" for n in RESPONSE_FIGURES)  # PNG on demand
    paths = write_response_figures(tmp_path / "a", StudyResults(response=RESULT), png=True)
    expected = sorted(f"{n}.{e}" for n in RESPONSE_FIGURES for e in ("svg", "png"))
    assert sorted(p.name for p in paths) == expected
    assert all((tmp_path / "a" / p.name).read_bytes() == p.read_bytes() for p in svg_only)  # one drawing
    again = write_response_figures(tmp_path / "b", StudyResults(response=RESULT), png=True)
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in again]
    assert write_response_figures(tmp_path / "c", StudyResults()) == [] and not (tmp_path / "c").exists()


def test_results_json_entries_are_written_from_the_typed_result() -> None:
    entries = RESULT.json_entries()
    assert set(entries) == {"responses", "lesion_failure", "lesion_cox"}
    first = entries["responses"][0]
    for key in ("patient", "day", "lugano_ct", "lugano_pet", "lyric", "recil"):
        assert key in first
    assert first["spd_mm2"] is None and first["sld_change_baseline_pct"] == -25.0
    assert entries["lesion_cox"] == [{"term": "suvmax", "hr": 1.1, "ci_low": 1.0, "ci_high": 1.2, "p": 0.0004,
                                      "robust_se": 0.05, "n_lesions": 10, "n_events": 2, "n_patients": 3,
                                      "method": "m"}]
    lf = entries["lesion_failure"]
    assert lf["cumulative_incidence_curve"] == {"months": [1.0, 3.0], "estimate": [0.1, 0.25],
                                                "last_months": 9.0}
    assert lf["cumulative_incidence"][0]["months"] == 6.0 and "freedom_from_local_failure" not in lf


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
    for e in results["responses"]:
        assert {"patient", "day", "lugano_ct", "lugano_pet", "lyric", "recil"} <= set(e)
    for c in results["lesion_cox"]:
        assert {"term", "hr", "ci_low", "ci_high", "p"} <= set(c)
    page = (out / "report.html").read_text()
    assert page.index('id="response"') < page.index('id="methods"')
    for name in RESPONSE_FIGURES:  # written to figures/ like the report's other figures, and listed
        name_ext = f"figures/{name}.svg"
        assert name_ext in results["files"] and (out / name_ext).is_file()
        assert not (out / f"figures/{name}.png").exists()  # PNG only with --png
        # the section embeds the SVG written to figures/: one drawing
        svg = base64.b64encode((out / name_ext).read_bytes()).decode("ascii")
        assert f'id="fig-{name}"><img src="data:image/svg+xml;base64,{svg}"' in page
    section = page[page.index('<section id="response"'):]
    section = section[:section.index("</section>")]
    # every scan's day and four categories, the incidence and the Cox model: each equal to results.json
    assert _check_numbers(section, results) >= 5 * len(results["responses"]) + 5 * len(results["lesion_cox"])
