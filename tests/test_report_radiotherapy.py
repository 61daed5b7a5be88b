"""The report's radiotherapy section, rendered from the statistics of the R-checked synthetic study."""

from __future__ import annotations

import base64
import functools
import json
import re
from html import unescape
from pathlib import Path

import pandas as pd
import pytest

from pofa.report.format import displayed_matches
from pofa.report.radiotherapy import dose_response_png, insert_radiotherapy_section, radiotherapy_section
from pofa.settings import RiskFactorSettings, Settings
from pofa.stats.radiotherapy import radiotherapy_statistics
from pofa.stats.results import RadiotherapyResults, StudyResults
from results_path import lookup

REF = Path(__file__).parent / "reference" / "radiotherapy"
_SPAN = re.compile(r'<span data-result="([^"]+)" data-value="([^"]*)">([^<]*)</span>')


def _check_numbers(html: str, results: dict) -> set[str]:
    """Every number of the section equals results.json at its path, at the shown precision."""
    found = _SPAN.findall(html)
    for path, value, text in found:
        expected = lookup(results, unescape(path))
        assert json.loads(unescape(value)) == expected, path
        assert displayed_matches(unescape(text), expected), (path, text, expected)
    return {unescape(p) for p, _, _ in found}


@functools.cache
def _study() -> tuple[pd.DataFrame, pd.DataFrame, RadiotherapyResults]:
    les = pd.read_csv(REF / "lesions.csv", dtype={"patient_id": str, "lesion_id": str})
    for c in ("bridging_rt", "extranodal"):
        les[c] = les[c].map({"yes": True, "no": False}).astype("boolean")
    pat = pd.read_csv(REF / "patients.csv", dtype={"patient_id": str})
    factors = ("diameter_cm>=5", "suvmax>=10", "extranodal")
    settings = Settings(risk_factors=RiskFactorSettings(lesion=factors))
    res = radiotherapy_statistics(les, None, pat, settings)
    assert res is not None
    return les, pat, res


def test_section_shows_the_numbers_and_the_figure() -> None:
    les, _, rt = _study()
    failures = pd.DataFrame({"class_volume": ["in-field", "marginal", "<b>x</b>"],
                             "class_centroid": ["in-field", "in-field", "out-of-field"]})
    frag = radiotherapy_section(rt, les, failures)
    n_irr, lf = rt.n_irradiated, rt.local_failures_rt
    assert f"({100 * lf / n_irr:.1f}%) of irradiated" in frag
    gee_adj = rt.odds_ratios[3]
    assert gee_adj.method == "gee" and gee_adj.adjusted_for
    shown = _check_numbers(frag, json.loads(json.dumps({"radiotherapy": rt.to_json()})))
    assert {"radiotherapy.n_irradiated", "radiotherapy.local_failures_rt",
            "radiotherapy.odds_ratios[3].estimate", "radiotherapy.odds_ratios[3].p",
            "radiotherapy.in_field.ci_high", "radiotherapy.pfs.hr"} <= shown
    assert "agree for 1 of 3 failure lesions" in frag
    assert "&lt;b&gt;x&lt;/b&gt;" in frag and "<b>x</b>" not in frag  # study text is escaped
    assert 'id="fig-dose-response"' in frag and "data:image/svg+xml;base64," in frag  # one drawing path
    assert "a/b = 10 Gy" in frag
    png = dose_response_png(rt, les, 10.0)
    assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n"


def test_insertion_before_methods_and_nothing_without_results() -> None:
    les, _, rt = _study()
    page = '<main><section id="survival"></section><section id="methods"></section></main>'
    out = insert_radiotherapy_section(page, StudyResults(radiotherapy=rt), les)
    assert out.index('id="survival"') < out.index('id="radiotherapy"') < out.index('id="methods"')
    assert insert_radiotherapy_section(page, StudyResults(), les) == page
    assert insert_radiotherapy_section(page, None, les) == page
    assert radiotherapy_section(None) == ""


@pytest.mark.slow
def test_analyze_carries_radiotherapy_into_results_and_report(example_study: Path, tmp_path: Path) -> None:
    """The bundled example has one irradiated lesion: results.json gets ``radiotherapy``, the report its
    section, and an rt_field column of the failures table is counted."""
    from typer.testing import CliRunner

    from pofa.cli import app

    fail = pd.read_csv(example_study / "failures.csv", dtype=str, keep_default_na=False)
    fail["rt_field"] = ["in-field"] + [""] * (len(fail) - 1)
    fail.to_csv(example_study / "failures.csv", index=False)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["analyze", str(example_study), "--out", str(out)])
    assert res.exit_code == 0, res.output
    rt = json.loads((out / "results.json").read_text())["radiotherapy"]
    les = pd.read_csv(example_study / "lesions.csv", dtype=str)
    assert rt["n_irradiated"] == int((les["bridging_rt"] == "yes").sum()) == 1
    assert rt["field_classes"] == {"in-field": 1, "marginal": 0, "out-of-field": 0}
    assert rt["odds_ratios"][0]["estimate"] is None and "separation" in rt["odds_ratios"][0]["notes"][0]
    page = (out / "report.html").read_text()
    assert page.index('id="radiotherapy"') < page.index('id="methods"')
    # the section is rendered from the same typed results as results.json: every number equals it
    section = page[page.index('<section id="radiotherapy"'):]
    results = json.loads((out / "results.json").read_text())
    assert "radiotherapy.n_irradiated" in _check_numbers(section[:section.index("</section>")], results)


def test_dose_response_figure_is_written_to_figures(tmp_path: Path) -> None:
    from pofa.report.radiotherapy import write_dose_response_figure

    les, _, rt = _study()
    only_svg = write_dose_response_figure(tmp_path / "svg", StudyResults(radiotherapy=rt), les)
    assert [p.name for p in only_svg] == ["dose_response.svg"]  # the PNG only on demand
    paths = write_dose_response_figure(tmp_path / "figures", StudyResults(radiotherapy=rt), les, png=True)
    assert [p.name for p in paths] == ["dose_response.svg", "dose_response.png"]
    svg, png = (p.read_bytes() for p in paths)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"<svg" in svg
    assert svg == only_svg[0].read_bytes()  # one drawing, whether or not its PNG is written
    width = int.from_bytes(png[16:20], "big")
    assert width >= 1000  # 300 dpi like the report's other figures (a 5-inch figure)
    again = write_dose_response_figure(tmp_path / "again", StudyResults(radiotherapy=rt), les, png=True)
    assert [p.read_bytes() for p in again] == [svg, png]  # reproducible bytes (no dates)
    assert write_dose_response_figure(tmp_path / "none", StudyResults(), les) == []
    assert not (tmp_path / "none").exists()


@pytest.mark.slow
def test_analyze_writes_and_lists_the_dose_response_figure(example_study: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pofa.cli import app

    les = pd.read_csv(example_study / "lesions.csv", dtype=str, keep_default_na=False)
    les["bridging_rt"] = "yes"
    les["rt_dose_gy"] = ["20", "30"] * (len(les) // 2) + ["30"] * (len(les) % 2)
    les["rt_fractions"] = ["5", "10"] * (len(les) // 2) + ["10"] * (len(les) % 2)
    les.to_csv(example_study / "lesions.csv", index=False)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["analyze", str(example_study), "--out", str(out), "--png"])
    assert res.exit_code == 0, res.output
    for ext in ("png", "svg"):
        name = f"figures/dose_response.{ext}"
        assert (out / name).is_file()
        assert name in json.loads((out / "results.json").read_text())["files"]
        assert name in (out / "manifest.json").read_text()
    # the section embeds the SVG written to figures/ (one drawing), not a second rendering
    page = (out / "report.html").read_text()
    svg = base64.b64encode((out / "figures" / "dose_response.svg").read_bytes()).decode("ascii")
    assert f'<figure class="fig" id="fig-dose-response"><img src="data:image/svg+xml;base64,{svg}"' in page
