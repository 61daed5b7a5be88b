"""REDCap: the data dictionary pofa writes, and records exports read as the same study as a CSV folder."""

from __future__ import annotations

import hashlib
import sys
import types
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import pofa
from pofa.cli import app
from pofa.redcap import (
    DICTIONARY_COLUMNS,
    RedcapError,
    default_dictionary_rows,
    dictionary_csv,
    import_export,
    parse_dictionary,
    parse_redcap_settings,
    write_study,
)

sys.path.insert(0, str(Path(__file__).parent))
from redcap_build import Project, dictionary_text, equivalent_folder, export_text  # noqa: E402

MODES = {"raw": (False, False), "labels": (True, False), "labels-header": (True, True)}


def _write(folder: Path, export: str, dictionary: str) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    e, d = folder / "export.csv", folder / "dictionary.csv"
    e.write_text(export, encoding="utf-8")
    d.write_text(dictionary, encoding="utf-8")
    return e, d


def _assert_same_study(a: pofa.Study, b: pofa.Study, same_rows: bool = True) -> None:
    for name in ("patients", "lesions", "failures"):
        fa, fb = getattr(a, name), getattr(b, name)
        if not same_rows:
            fa, fb = fa.reset_index(drop=True), fb.reset_index(drop=True)
        pd.testing.assert_frame_equal(fa, fb, check_exact=True)
    for table in ("patients", "lesions"):
        assert a.covariates(table) == b.covariates(table)


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> pofa.Study:
    study = pofa.load_study(equivalent_folder(tmp_path_factory.mktemp("csv")))
    assert not study.validate().findings
    return study


# -- the dictionary -------------------------------------------------------------------------------------


def test_dictionary_has_redcaps_columns_and_forms() -> None:
    text = dictionary_csv()
    header = text.splitlines()[0]
    assert header == ",".join(f'"{c}"' for c in DICTIONARY_COLUMNS)
    rows = default_dictionary_rows()
    assert rows[0]["Variable / Field Name"] == "record_id" and rows[0]["Form Name"] == "patients"
    forms = [r["Form Name"] for r in rows]
    assert list(dict.fromkeys(forms)) == ["patients", "lesions", "failures"]
    assert forms == sorted(forms, key=["patients", "lesions", "failures"].index)  # each form contiguous
    by = {r["Variable / Field Name"]: r for r in rows}
    assert len(by) == len(rows)  # field names unique in the project
    assert by["index_date"]["Text Validation Type OR Show Slider Number"] == "date_ymd"
    assert by["suvmax"]["Text Validation Type OR Show Slider Number"] == "number"
    assert by["lesion_extranodal"]["Field Type"] == "yesno"
    assert by["failure_extranodal"]["Field Type"] == "yesno"
    assert by["lesion_id"]["Field Type"] == "text" and by["lesion_id"]["Required Field?"] == "y"
    assert all(len(n) <= 26 and n.isidentifier() and n == n.lower() for n in by)  # REDCap's name rules
    d = parse_dictionary(text, "dictionary.csv")
    assert d.record_id == "record_id" and d.forms == ("patients", "lesions", "failures")
    assert d.field("bridging_rt") is not None and d.field("bridging_rt").is_yes_no  # type: ignore[union-attr]


def test_dictionary_api_headers_and_refusals() -> None:
    api = "field_name,form_name,field_type,field_label,select_choices_or_calculations\n" \
          "record_id,patients,text,ID,\nsex,patients,radio,Sex,\"1, M | 2, F\"\n"
    d = parse_dictionary(api, "meta.csv")
    assert d.field("sex").choices == (("1", "M"), ("2", "F"))  # type: ignore[union-attr]
    with pytest.raises(RedcapError, match="not a REDCap data dictionary"):
        parse_dictionary("a,b\n1,2\n", "x.csv")
    with pytest.raises(RedcapError, match="empty"):
        parse_dictionary("", "x.csv")


# -- the same study as the CSV folder, cell for cell -------------------------------------------------------


@pytest.mark.parametrize("longitudinal", [False, True], ids=["classic", "longitudinal"])
@pytest.mark.parametrize("mode", list(MODES))
def test_export_imports_as_the_csv_study(tmp_path: Path, expected: pofa.Study, longitudinal: bool,
                                         mode: str) -> None:
    labels, label_header = MODES[mode]
    project = Project(longitudinal)
    export, dictionary = _write(tmp_path / "rc", export_text(project, labels, label_header),
                                dictionary_text(project))
    before = hashlib.sha256(export.read_bytes()).hexdigest()
    imported, report = import_export(export, dictionary)
    assert report.findings == ()
    out = write_study(imported, tmp_path / "study")
    got = pofa.load_study(out)
    assert not got.validate().findings
    _assert_same_study(got, expected)
    # By reference from study.toml: validate/analyze read the export itself.
    (tmp_path / "rc" / "study.toml").write_text(
        '[redcap]\nexport = "export.csv"\ndictionary = "dictionary.csv"\n', encoding="utf-8")
    direct = pofa.load_study(tmp_path / "rc")
    assert not direct.validate().findings
    _assert_same_study(direct, expected, same_rows=False)
    assert {p.name for p in direct.files} >= {"export.csv", "dictionary.csv", "study.toml"}
    assert hashlib.sha256(export.read_bytes()).hexdigest() == before  # the export is never changed


def test_cli_import_writes_the_study(tmp_path: Path, expected: pofa.Study) -> None:
    export, dictionary = _write(tmp_path / "rc", export_text(Project()), dictionary_text(Project()))
    res = CliRunner().invoke(app, ["import", "redcap", str(export), "--dictionary", str(dictionary),
                                   "--out", str(tmp_path / "study")])
    assert res.exit_code == 0, res.output
    assert "63 patients, 465 lesions, 191 failure lesions" in res.output
    _assert_same_study(pofa.load_study(tmp_path / "study"), expected)
    again = CliRunner().invoke(app, ["import", "redcap", str(export), "--dictionary", str(dictionary),
                                     "--out", str(tmp_path / "study")])
    assert again.exit_code == 2 and "is not empty" in " ".join(again.output.split())


# -- every problem located by record, instrument, instance and field ---------------------------------------


def _lines(text: str) -> list[str]:
    return text.splitlines()


def _edit(text: str, line: int, column: str, value: str) -> str:
    """Set one cell of a CSV text (line = 1-based line, column = header name of a raw export)."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO(text)))
    j = rows[0].index(column)
    rows[line - 1][j] = value
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _line_of(text: str, record: str, instrument: str = "", instance: str = "") -> int:
    import csv
    import io

    rows = list(csv.reader(io.StringIO(text)))
    h = rows[0]
    for i, r in enumerate(rows[1:], start=2):
        if (r[0] == record and r[h.index("redcap_repeat_instrument")] == instrument
                and r[h.index("redcap_repeat_instance")] == instance):
            return i
    raise AssertionError("no such row")


def _import(tmp_path: Path, text: str, project: Project | None = None) -> pofa.ValidationReport:
    export, dictionary = _write(tmp_path, text, dictionary_text(project or Project()))
    return import_export(export, dictionary)[1]


def _only(report: pofa.ValidationReport, code: str) -> pofa.Finding:
    hits = [f for f in report.findings if f.code == code]
    assert len(hits) == 1, report.findings
    return hits[0]


def test_unknown_choice_code(tmp_path: Path) -> None:
    text = export_text(Project())
    line = _line_of(text, "P002")
    report = _import(tmp_path, _edit(text, line, "sex", "7"))
    f = _only(report, "redcap-unknown-choice")
    assert (f.file, f.row, f.column) == ("export.csv", line, "sex")
    assert f.message.startswith("record P002, patients: '7' is not a choice of the field 'sex'")
    assert f.severity is pofa.Severity.ERROR


def test_bad_date_is_located_in_the_export(tmp_path: Path) -> None:
    text = export_text(Project())
    line = _line_of(text, "P003", "failures", "2")
    report = _import(tmp_path, _edit(text, line, "scan_date", "2020-13-02"))
    f = _only(report, "bad-date")
    assert (f.file, f.row, f.column) == ("export.csv", line, "scan_date")
    assert f.message.startswith("record P003, failures instance 2: ")


def test_bad_patient_date_in_a_longitudinal_event(tmp_path: Path) -> None:
    project = Project(longitudinal=True)
    text = export_text(project)
    import csv
    import io

    rows = list(csv.reader(io.StringIO(text)))
    h = rows[0]
    line = next(i for i, r in enumerate(rows[1:], start=2)
                if r[0] == "P004" and r[h.index("redcap_event_name")] == "follow_up_arm_1")
    report = _import(tmp_path, _edit(text, line, "last_followup_date", "20/10/2016"), project)
    bad = [f for f in report.errors if f.code == "bad-date"]
    assert bad and all((f.file, f.row, f.column) == ("export.csv", line, "last_followup_date") for f in bad)
    assert bad[0].message.startswith("record P004: ")


def test_missing_record(tmp_path: Path) -> None:
    text = export_text(Project())
    line = _line_of(text, "P005")
    lines = _lines(text)
    del lines[line - 1]
    report = _import(tmp_path, "\n".join(lines) + "\n")
    f = _only(report, "redcap-missing-record")
    assert f.file == "export.csv" and f.row == line and f.column == "record_id"  # the first lesion's line
    assert f.message.startswith("record P005, lesions instance 1: the record has lesions but no patients")
    assert not [x for x in report.findings if x.code == "unknown-patient"]  # one root cause, one finding


def test_incomplete_form_is_a_warning(tmp_path: Path) -> None:
    report = _import(tmp_path, export_text(Project(), incomplete=frozenset({"P002"})))
    f = _only(report, "redcap-incomplete-form")
    assert f.severity is pofa.Severity.WARNING and f.column == "patients_complete"
    assert f.message == "record P002, patients: the form 'patients' is marked Incomplete"
    assert not report.errors


def test_incomplete_form_in_a_labels_export(tmp_path: Path) -> None:
    report = _import(tmp_path, export_text(Project(), True, True, incomplete=frozenset({"P007"})))
    f = _only(report, "redcap-incomplete-form")
    assert f.message.startswith("record P007")


def test_orphan_repeating_instances(tmp_path: Path) -> None:
    text = export_text(Project())
    bad_form = _line_of(text, "P001", "lesions", "2")
    bad_instance = _line_of(text, "P001", "lesions", "3")
    text = _edit(text, bad_form, "redcap_repeat_instrument", "adverse_events")
    text = _edit(text, bad_instance, "redcap_repeat_instance", "0")
    report = _import(tmp_path, text)
    orphans = sorted((f for f in report.findings if f.code == "redcap-orphan-instance"),
                     key=lambda f: f.row or 0)
    assert [(f.row, f.column) for f in orphans] == [(bad_form, "redcap_repeat_instrument"),
                                                     (bad_instance, "redcap_repeat_instance")]
    assert "record P001, adverse_events instance 2: the repeating instrument 'adverse_events'" in \
        orphans[0].message
    assert "the repeat instance '0' is not a whole number" in orphans[1].message


def test_custom_instrument_label_in_a_labels_export(tmp_path: Path, expected: pofa.Study) -> None:
    text = export_text(Project(), True, True).replace(",Lesions,", ",Baseline lesions (PET),")
    assert "Baseline lesions (PET)" in text
    export, dictionary = _write(tmp_path, text, dictionary_text(Project()))
    imported, report = import_export(export, dictionary)
    assert report.findings == ()
    _assert_same_study(pofa.load_study(write_study(imported, tmp_path / "study")), expected)


def test_duplicate_instance_and_not_repeating(tmp_path: Path) -> None:
    text = export_text(Project())
    line = _line_of(text, "P001", "lesions", "2")
    text = _edit(text, line, "redcap_repeat_instance", "1")
    own = _line_of(text, "P002")
    text = _edit(text, own, "lesion_id", "L99")
    report = _import(tmp_path, text)
    dup = _only(report, "redcap-duplicate-instance")
    assert dup.row == line and "already on line" in dup.message
    nr = _only(report, "redcap-not-repeating")
    assert nr.row == own and nr.severity is pofa.Severity.WARNING
    assert "make 'lesions' a repeating instrument" in nr.hint


def test_conflicting_values_across_events(tmp_path: Path) -> None:
    project = Project(longitudinal=True)
    text = export_text(project)
    import csv
    import io

    rows = list(csv.reader(io.StringIO(text)))
    h = rows[0]
    line = next(i for i, r in enumerate(rows[1:], start=2)
                if r[0] == "P006" and r[h.index("redcap_event_name")] == "follow_up_arm_1")
    report = _import(tmp_path, _edit(text, line, "index_date", "2001-01-01"), project)
    f = _only(report, "redcap-conflict")
    assert (f.row, f.column) == (line, "index_date")
    assert f.message.startswith("record P006, event follow_up_arm_1, patients: '2001-01-01' differs")


def test_cross_table_finding_names_the_instance(tmp_path: Path) -> None:
    text = export_text(Project())
    line = _line_of(text, "P003", "failures", "1")
    report = _import(tmp_path, _edit(text, line, "baseline_lesion_id", "L77"))
    f = _only(report, "unknown-lesion")
    assert (f.file, f.row, f.column) == ("export.csv", line, "baseline_lesion_id")
    assert f.message.startswith("record P003, failures instance 1: ")


def test_cli_prints_one_line_per_finding_and_writes_nothing(tmp_path: Path) -> None:
    text = export_text(Project())
    line = _line_of(text, "P002")
    export, dictionary = _write(tmp_path / "rc", _edit(text, line, "sex", "7"), dictionary_text(Project()))
    res = CliRunner().invoke(app, ["import", "redcap", str(export), "--dictionary", str(dictionary),
                                   "--out", str(tmp_path / "study")])
    assert res.exit_code == 2
    assert f"export.csv:{line}:sex: error: record P002, patients: '7' is not a choice" in res.output
    assert not (tmp_path / "study").exists()


# -- mapping and settings ------------------------------------------------------------------------------


def test_mapping_from_study_toml(tmp_path: Path, expected: pofa.Study) -> None:
    project = Project()
    text = export_text(project).replace("lesion_site", "where_is_it", 1)
    dictionary = dictionary_text(project).replace('"lesion_site"', '"where_is_it"', 1)
    folder = tmp_path / "rc"
    _write(folder, text, dictionary)
    (folder / "study.toml").write_text('[redcap]\nexport = "export.csv"\ndictionary = "dictionary.csv"\n'
                                       '[redcap.lesions]\nsite = "where_is_it"\n', encoding="utf-8")
    study = pofa.load_study(folder)
    assert not study.validate().findings
    _assert_same_study(study, expected, same_rows=False)


def test_missing_field_is_one_finding(tmp_path: Path) -> None:
    export, dictionary = _write(tmp_path, export_text(Project()),
                                dictionary_text(Project()).replace('"lesion_site"', '"where"'))
    report = import_export(export, dictionary)[1]
    f = _only(report, "redcap-missing-field")
    assert (f.file, f.column) == ("dictionary.csv", "lesion_site")
    assert "for lesions.site" in f.message and "[redcap.lesions]" in f.hint
    assert not [x for x in report.findings if x.code == "missing-column"]


def test_cli_settings_map_fields_and_carry_the_analysis_settings(tmp_path: Path) -> None:
    project = Project()
    text = export_text(project).replace("lesion_site", "where_is_it", 1)
    export, dictionary = _write(tmp_path / "rc", text,
                                dictionary_text(project).replace('"lesion_site"', '"where_is_it"', 1))
    toml = tmp_path / "rc" / "study.toml"
    toml.write_text('[study]\nname = "from redcap"\n[redcap]\nignore = ["age"]\n'
                    '[redcap.lesions]\nsite = "where_is_it"\n[classification]\nwindow_days = 45\n',
                    encoding="utf-8")
    res = CliRunner().invoke(app, ["import", "redcap", str(export), "--dictionary", str(dictionary),
                                   "--settings", str(toml), "--out", str(tmp_path / "study")])
    assert res.exit_code == 0, res.output
    study = pofa.load_study(tmp_path / "study")
    assert not study.validate().findings
    assert study.name == "from redcap" and study.settings.classification.window_days == 45
    assert "[redcap" not in (tmp_path / "study" / "study.toml").read_text()
    assert "age" not in study.covariates("patients")  # ignored
    assert study.lesions["site"].iloc[0] == "mediastinum"


def test_redcap_settings_are_checked() -> None:
    settings, findings = parse_redcap_settings({"export": "e.csv", "lesion": {}, "lesions": {"sight": "x"}})
    messages = [f.message for f in findings]
    assert "unknown setting redcap.lesion" in messages
    assert any("lesions has no column 'sight'" in m for m in messages)
    assert any("needs redcap.dictionary" in m for m in messages)
    assert settings.export == "e.csv"
    s, none = parse_redcap_settings({"dictionary": "d.csv", "failures": {"site": "where"}, "ignore": ["a"]})
    assert not none and s.fields[pofa.schema.TableName.FAILURES]["site"] == "where" and s.ignore == ("a",)


def test_redcap_section_is_not_an_unknown_setting(tmp_path: Path) -> None:
    folder = equivalent_folder(tmp_path / "csv")
    (folder / "study.toml").write_text('[redcap]\ndictionary = "dictionary.csv"\n', encoding="utf-8")
    assert not pofa.load_study(folder).validate().findings


def test_unreadable_referenced_export_is_a_finding(tmp_path: Path) -> None:
    folder = tmp_path / "rc"
    folder.mkdir()
    (folder / "study.toml").write_text('[redcap]\nexport = "nope.csv"\ndictionary = "nope.csv"\n',
                                       encoding="utf-8")
    report = pofa.load_study(folder).validate()
    assert any(f.code == "redcap-bad-export" and "cannot read the data dictionary" in f.message
               for f in report.errors)


# -- the API (PyCap), with no network ---------------------------------------------------------------------

TOKEN = "0123456789ABCDEF0123456789ABCDEF"


def _fake_pycap(monkeypatch: pytest.MonkeyPatch, export: str, dictionary: str,
                fail: bool = False) -> list[str]:
    calls: list[str] = []

    class Project:
        def __init__(self, url: str, token: str) -> None:
            calls.append(url)
            assert token == TOKEN
            self.token = token

        def export_records(self, **kw: object) -> str:
            assert kw["format_type"] == "csv" and kw["raw_or_label"] == "raw"
            if fail:
                raise RuntimeError(f"403 Forbidden for token {self.token}")
            return export

        def export_metadata(self, **kw: object) -> str:
            return dictionary

    monkeypatch.setitem(sys.modules, "redcap", types.SimpleNamespace(Project=Project))
    return calls


def test_api_pull_never_writes_the_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         expected: pofa.Study) -> None:
    calls = _fake_pycap(monkeypatch, export_text(Project()), dictionary_text(Project()))
    monkeypatch.setenv("MY_REDCAP_TOKEN", TOKEN)
    out = tmp_path / "study"
    res = CliRunner().invoke(app, ["import", "redcap", "--api-url", "https://redcap.example.org/api/",
                                   "--token-env", "MY_REDCAP_TOKEN", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert calls == ["https://redcap.example.org/api/"]
    _assert_same_study(pofa.load_study(out), expected)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) == 4  # the three tables and pofa's record of them (docs/security.md)
    for p in written:
        assert TOKEN.encode() not in p.read_bytes(), p
    assert TOKEN not in res.output


@pytest.mark.slow
def test_api_pull_then_analysis_never_writes_the_token(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_pycap(monkeypatch, export_text(Project()), dictionary_text(Project()))
    monkeypatch.setenv("POFA_REDCAP_TOKEN", TOKEN)
    out = tmp_path / "study"
    res = CliRunner().invoke(app, ["import", "redcap", "--api-url", "https://redcap.example.org/api/",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["analyze", str(out), "--out", str(tmp_path / "results")])
    assert res.exit_code == 0, res.output
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) > 10  # the study, the report, results.json, manifest.json, tables, figures
    for p in written:
        assert TOKEN.encode() not in p.read_bytes(), p
    assert TOKEN not in res.output


def test_api_errors_hide_the_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_pycap(monkeypatch, "", "", fail=True)
    monkeypatch.setenv("POFA_REDCAP_TOKEN", TOKEN)
    res = CliRunner().invoke(app, ["import", "redcap", "--api-url", "https://redcap.example.org/api/",
                                   "--out", str(tmp_path / "s")])
    assert res.exit_code == 2
    assert "refused the request" in res.output and TOKEN not in res.output
    monkeypatch.delenv("POFA_REDCAP_TOKEN")
    res = CliRunner().invoke(app, ["import", "redcap", "--api-url", "https://x/api/", "--out",
                                   str(tmp_path / "s")])
    assert res.exit_code == 2 and "POFA_REDCAP_TOKEN holds no REDCap API token" in res.output


def test_docs_list_every_redcap_code() -> None:
    from pofa.redcap import REDCAP_CODES

    text = (Path(__file__).resolve().parents[1] / "docs" / "data-entry.md").read_text(encoding="utf-8")
    for code, (severity, meaning) in REDCAP_CODES.items():
        assert f"| `{code}` | {severity.value} | {meaning} |" in text
