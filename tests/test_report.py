"""The report's output folder: files, privacy, numbers equal to results.json, tables, manifest, methods."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import subprocess
import sys
import zipfile
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pofa
from pofa.examples import analyse, simulated_analysis
from pofa.report import ReportError, ReportInput, report_writer, write_report, write_run_manifest
from pofa.report.format import displayed_matches, fmt_p, fmt_pct, p_phrase
from pofa.report.methods import methods_text
from pofa.report.model import as_report_input, sequence_numbers
from pofa.settings import Settings
from pofa.stats.study_stats import lesion_term_label
from results_path import lookup

VERSIONS = {"pofa": "0.1.0", "python": "3.11", "numpy": "2", "matplotlib": "3"}


# -----------------------------------------------------------------------------------------------------------
# a study whose identifiers, names and dates are distinctive, so that a leak is found by searching for them


class Secrets:
    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.names: set[str] = set()
        self.dates: set[str] = set()


def make_distinctive(secrets: Secrets):
    def edit(folder: Path) -> None:
        date_re = re.compile(r"\b(20\d\d)-(\d\d)-(\d\d)\b")

        def shift(m: re.Match[str]) -> str:  # 28 years back keeps leap days valid
            return f"{int(m.group(1)) - 28}-{m.group(2)}-{m.group(3)}"

        for name in ("patients.csv", "lesions.csv", "failures.csv"):
            path = folder / name
            text = re.sub(r"(?m)^P(\d+),", r"MRN-8675\1,", path.read_text(encoding="utf-8"))
            path.write_text(date_re.sub(shift, text), encoding="utf-8")
        path = folder / "patients.csv"
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
        rows[0] += ["full_name", "hospital_number", "birth_date"]
        for k, row in enumerate(rows[1:], start=1):
            row += [f"Zebulon Quixote-{k:03d}", f"HN{k:06d}77", f"1931-{1 + k % 12:02d}-{1 + k % 27:02d}"]
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        path.write_text(buf.getvalue(), encoding="utf-8")
        for name in ("patients.csv", "failures.csv"):
            for line in (folder / name).read_text(encoding="utf-8").splitlines()[1:]:
                cells = line.split(",")
                secrets.ids.add(cells[0])
                secrets.dates.update(c for c in cells if re.fullmatch(r"\d{4}-\d\d-\d\d", c))
                secrets.names.update(c for c in cells if c.startswith(("Zebulon", "HN")))

    return edit


@pytest.fixture(scope="module")
def secrets() -> Secrets:
    return Secrets()


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory, secrets: Secrets):
    # 50 patients: few enough for the swimmer plot to label every patient (by sequence number)
    return simulated_analysis(
        tmp_path_factory.mktemp("study") / "study", 50, seed=2021, edit=make_distinctive(secrets)
    )


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory, analysed) -> Path:
    folder = tmp_path_factory.mktemp("report") / "out"
    write_report(analysed, folder, png=True)  # the PNGs too: every file is searched for identifiers
    return folder


def _date_forms(iso: str) -> list[str]:
    y, m, d = iso.split("-")
    return [iso, f"{y}/{m}/{d}", f"{d}/{m}/{y}", f"{m}/{d}/{y}", f"{d}.{m}.{y}", f"{y}{m}{d}"]


def _contents(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    return data.decode("latin-1")  # PNG metadata and all text files, byte for byte


# -----------------------------------------------------------------------------------------------------------


def test_output_folder_holds_report_figures_tables_manifest(out: Path) -> None:
    assert (
        (out / "report.html").is_file()
        and (out / "results.json").is_file()
        and (out / "manifest.json").is_file()
    )
    pngs = {p.stem for p in (out / "figures").glob("*.png")}
    svgs = {p.stem for p in (out / "figures").glob("*.svg")}
    assert (
        pngs == svgs
        and {
            "failure_patterns",
            "forest_lesion_models",
            "km_overall",
            "cumulative_incidence",
            "swimmer",
            "lesion_scatter",
            "km_by_any_diameter_cm_ge_5",
        }
        <= pngs
    )
    csvs = {p.stem for p in (out / "tables").glob("*.csv")}
    assert csvs == {p.stem for p in (out / "tables").glob("*.xlsx")}
    assert {
        "table1_cohort",
        "patient_flow",
        "failure_patterns",
        "lesion_models",
        "survival",
        "patient_models",
        "competing_risks",
        "cutpoints",
    } <= csvs
    for p in (out / "figures").glob("*.png"):
        data = p.read_bytes()
        i = data.index(b"pHYs")
        assert round(int.from_bytes(data[i + 4 : i + 8], "big") * 0.0254) == 300  # 300 dpi


@pytest.mark.slow
def test_no_identifier_name_or_date_in_any_output(out: Path, secrets: Secrets) -> None:
    assert len(secrets.ids) == 50 and len(secrets.dates) > 80 and len(secrets.names) == 100
    needles = set(secrets.ids) | set(secrets.names)
    needles |= {form for d in secrets.dates for form in _date_forms(d)}
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 30
    for p in files:
        text = _contents(p)
        leaked = sorted(n for n in needles if n in text)
        assert leaked == [], f"{p.relative_to(out)} shows {leaked[:5]}"
        if p.suffix in (".html", ".csv", ".svg", ".json", ".xlsx"):
            assert not re.search(r"\b(19|20)\d\d-[01]\d-[0-3]\d\b", text), p
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "study sequence numbers" in html
    # identifying columns are withheld before the analysis (docs/security.md): neither shown nor summarised,
    # and recorded by name in the manifest's privacy entry
    t1 = (out / "tables" / "table1_cohort.csv").read_text(encoding="utf-8")
    assert "birth_date" not in t1 and "full_name" not in t1
    withheld = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["privacy"]["withheld_columns"]
    assert {("patients", "birth_date"), ("patients", "full_name")} <= {(w["table"], w["column"])
                                                                        for w in withheld}
    swimmer = (out / "figures" / "swimmer.svg").read_text(encoding="utf-8")
    assert all(f">{k}<" in swimmer for k in range(1, 51))  # labelled 1..n (svg.fonttype none: text)


@pytest.mark.slow
def test_show_ids_labels_patients_by_identifier(analysed, secrets: Secrets, tmp_path: Path) -> None:
    write_report(analysed, tmp_path / "ids", show_ids=True)
    svg = (tmp_path / "ids" / "figures" / "swimmer.svg").read_text(encoding="utf-8")
    assert all(pid in svg for pid in secrets.ids)  # svg.fonttype none: labels are text
    html = (tmp_path / "ids" / "report.html").read_text(encoding="utf-8")
    assert "shows patient identifiers" in html
    assert json.loads((tmp_path / "ids" / "manifest.json").read_text())["report"] == {"show_ids": True}


class _Numbers(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict[str, str]] = []
        self._open: list[dict[str, str] | None] = []
        self.img: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.img.append(a)
        if tag == "span":
            rec = (
                {"path": a["data-result"], "value": a["data-value"], "text": ""}
                if "data-result" in a
                else None
            )
            self._open.append(rec)

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self._open:
            rec = self._open.pop()
            if rec is not None:
                self.found.append(rec)

    def handle_data(self, data: str) -> None:
        for rec in self._open:
            if rec is not None:
                rec["text"] += data


def test_every_number_shown_equals_results_json(out: Path) -> None:
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    parser = _Numbers()
    parser.feed((out / "report.html").read_text(encoding="utf-8"))
    assert len(parser.found) > 150
    for rec in parser.found:
        expected = lookup(results, rec["path"])
        assert json.loads(rec["value"]) == expected, rec
        assert displayed_matches(rec["text"], expected), rec
    shown = {r["path"] for r in parser.found}
    assert {f"patterns.{k}" for k in results["patterns"]} <= shown
    assert {f"lesion_models[{i}].or" for i in range(len(results["lesion_models"]))} <= shown
    assert {"survival.pfs.median_months", "survival.os.median_months", "followup.median_months"} <= shown
    assert {f"patient_models[{i}].hr" for i in range(len(results["patient_models"]))} <= shown
    assert any(p.startswith("competing_risks.patients.overall.causes[0].curves[0].landmarks") for p in shown)
    assert any(p.startswith("competing_risks.patients.by_group.causes[0].gray.p") for p in shown)
    # images: SVG data URIs (the drawing the PNG files are rendered from), each with alt text
    assert len(parser.img) >= 7
    assert all(
        str(i["src"]).startswith("data:image/svg+xml;base64,") and len(str(i["alt"])) > 30 for i in parser.img
    )


def test_report_makes_no_request(out: Path) -> None:
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "default-src 'none'" in html  # the Content-Security-Policy forbids any request
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:|//)""", html)
    assert "<script" not in html and "@import" not in html and "url(" not in html


def test_displayed_matches_can_fail() -> None:
    assert displayed_matches("2.34", 2.3449) and displayed_matches("p < 0.001", 0.0004)
    assert displayed_matches("34.9%", 0.3492) and displayed_matches("NE", None)
    for text, value in (
        ("2.34", 2.3349),
        ("p < 0.001", 0.002),
        ("12.6", 12.7),
        ("NE", 1.0),
        ("57", 58),
        ("34.9%", 0.3501),
        ("log", "log-log"),
    ):
        assert not displayed_matches(text, value)


def test_results_json_must_equal_the_results_given(analysed, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    doc = analysed.to_json(["lesions.csv"])
    doc["patterns"]["recurred"] += 1
    (folder / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ReportError, match="differs from the results"):
        write_report(analysed, folder, versions=VERSIONS)
    assert sorted(p.name for p in folder.iterdir()) == ["results.json"]  # refused before writing anything


@pytest.mark.slow
def test_results_json_may_differ_only_in_its_files_list(analysed, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(analysed.to_json(["lesions.csv"])), encoding="utf-8")
    files = write_report(analysed, folder, versions=VERSIONS)
    assert files.results == folder.absolute() / "results.json" and files.report.is_file()


@pytest.mark.slow
def test_outputs_are_reproducible_and_inputs_unchanged(analysed, out: Path, tmp_path: Path) -> None:
    inp = as_report_input(analysed)
    patients, lesions = inp.patients.copy(), inp.lesions.copy()
    b = tmp_path / "b"
    write_report(inp, b, png=True)
    pd.testing.assert_frame_equal(inp.patients, patients)  # the input is not modified
    pd.testing.assert_frame_equal(inp.lesions, lesions)
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:  # byte for byte, manifest included
        assert (out / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_manifest_records_versions_inputs_settings_and_files(out: Path, analysed) -> None:
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert m["pofa_version"] == pofa.__version__ and m["dependencies"]["matplotlib"]
    study = pofa.load_study(analysed.study_path)
    assert m["inputs"]["sha256"] == study.input_hashes()
    for name, digest in m["inputs"]["sha256"].items():
        assert hashlib.sha256((study.path / name).read_bytes()).hexdigest() == digest
    assert m["settings"] == analysed.settings.to_json()
    assert m["random_seeds"] == {} and m["report"] == {"show_ids": False}
    listed = {f["path"]: f for f in m["files"]}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(listed) == on_disk
    for rel, f in listed.items():
        data = (out / rel).read_bytes()
        assert f["bytes"] == len(data) and f["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.slow
def test_writer_protocol_of_the_analysis(analysed, tmp_path: Path) -> None:
    folder = tmp_path / "tmp-out"
    folder.mkdir()
    names = report_writer(analysed, folder)
    assert "report.html" in names and all((folder / n).is_file() for n in names)
    assert not (folder / "results.json").exists() and not (folder / "manifest.json").exists()
    # the analysis writes results.json (listing the files) after its writers, then the manifest
    (folder / "results.json").write_text(
        json.dumps(analysed.to_json([*names, "results.json"])), encoding="utf-8"
    )
    manifest = json.loads(write_run_manifest(analysed, folder).read_text(encoding="utf-8"))
    assert "results.json" in {f["path"] for f in manifest["files"]}


def test_tables_hold_the_results_and_the_cohort(out: Path, analysed) -> None:
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    lm = pd.read_csv(out / "tables" / "lesion_models.csv")
    assert len(lm) == len(results["lesion_models"])
    for row, ref in zip(lm.to_dict("records"), results["lesion_models"], strict=True):
        assert row["term"] == ref["term"] and row["method"] == ref["method"]
        assert row["or"] == ref["or"]  # full precision: the CSV holds the stored number
    xl = pd.read_excel(out / "tables" / "lesion_models.xlsx", sheet_name="lesion_models")
    pd.testing.assert_frame_equal(xl, lm, check_dtype=False)
    t1 = pd.read_csv(out / "tables" / "table1_cohort.csv")
    per = analysed.lesions.groupby("patient_id").size().reindex(analysed.patients["patient_id"], fill_value=0)
    row = t1.loc[t1["characteristic"] == "Baseline lesions per patient, median [Q1,Q3]"].iloc[0]
    q = per.quantile([0.5, 0.25, 0.75]).to_numpy()
    assert row["Overall"] == f"{q[0]:.1f} [{q[1]:.1f},{q[2]:.1f}]" and row["Test"] == "Kruskal-Wallis"
    les = pd.read_csv(out / "tables" / "table1_lesions.csv", keep_default_na=False)
    ext = les.loc[(les["characteristic"] == "Extranodal, n (%)") & (les["level"] == "yes")].iloc[0]
    n_ext = int(analysed.lesions["extranodal"].sum())
    assert ext["Overall"] == f"{n_ext} ({100 * n_ext / len(analysed.lesions):.1f})"
    chars = set(t1["characteristic"])
    assert "Age, median [Q1,Q3]" in chars and "Sex, n (%)" in chars
    assert {"No progression", "Mixed", "Missing", "p", "Test"} <= set(t1.columns)
    pats = pd.read_csv(out / "tables" / "failure_patterns.csv")
    assert dict(zip(pats["key"], pats["count"], strict=True))["mixed"] == results["patterns"]["mixed"]
    xlsx = zipfile.ZipFile(out / "tables" / "table1_cohort.xlsx")
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in xlsx.infolist())
    core = xlsx.read("docProps/core.xml").decode()  # the only time in a workbook: the zip epoch
    assert "1980-01-01T00:00:00Z" in core and "dcterms:created" in core
    assert not re.search(r"(19[89][1-9]|20\d\d)-\d\d-\d\d", core)


def test_methods_follow_the_settings(analysed) -> None:
    base = as_report_input(analysed)
    s = base.settings
    changed = replace(
        s,
        classification=replace(
            s.classification, window_days=14, use_geometry=True, local_margin_mm=2.0, marginal_margin_mm=15.0
        ),
        survival=replace(s.survival, ci_method="log", landmarks_months=(3.0, 9.0)),
        lesion_models=replace(s.lesion_models, small_sample=True, firth=True),
    )
    text = methods_text(replace(base, settings=changed), VERSIONS)
    for phrase in (
        "14 days",
        "grown by 2 mm",
        "within 15 mm",
        "on the log scale",
        "3, 9 months",
        "Mancl-DeRouen",
        "Firth-penalized",
        "pofa 0.1.0",
    ):
        assert phrase in text
    default = methods_text(replace(base, settings=Settings()), VERSIONS)
    assert "30 days" in default and "log-log scale" in default and "Mancl-DeRouen" not in default
    assert "geometry" not in default


def test_clear_errors_for_bad_input(analysed) -> None:
    inp = as_report_input(analysed)
    with pytest.raises(ReportError, match="lacks column.*pfs_months"):
        ReportInput(inp.results, inp.patients.drop(columns="pfs_months"), inp.lesions)
    with pytest.raises(ReportError, match="patients.pattern"):
        ReportInput(inp.results, inp.patients.assign(pattern="sometimes"), inp.lesions)
    with pytest.raises(ReportError, match="needs the analysis"):
        as_report_input(object())
    with pytest.raises(ReportError, match="more than once"):
        ReportInput(inp.results, pd.concat([inp.patients, inp.patients.iloc[:1]]), inp.lesions)


def test_sequence_numbers_are_stable() -> None:
    seq = sequence_numbers(["P10", "P2", "P1", "A7"])
    assert seq == {"A7": 1, "P1": 2, "P2": 3, "P10": 4}
    assert sequence_numbers(["P1", "P10", "A7", "P2"]) == seq
    # each call numbers the ids it is given; a caller's change to a returned mapping reaches no other answer
    seq["P1"] = 99
    assert sequence_numbers(["P2", "P10", "P1", "A7", "P1"]) == {"A7": 1, "P1": 2, "P2": 3, "P10": 4}
    assert sequence_numbers(["P10", "P2"]) == {"P2": 1, "P10": 2}
    assert sequence_numbers(["P10", "P2", "P3"]) == {"P2": 1, "P3": 2, "P10": 3}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (pd.Series([1, 0, 1]), [True, False, True]),
        (pd.Series([1.0, np.nan, 0.0]), [True, pd.NA, False]),
        (pd.Series([1, None, 0], dtype="Int64"), [True, pd.NA, False]),
        (pd.Series([True, None, False], dtype="boolean"), [True, pd.NA, False]),
        (pd.Series(["yes", " No ", "", None, "1", "f"], dtype=object),
         [True, False, pd.NA, pd.NA, True, False]),
    ],
)
def test_yes_no_columns_of_every_dtype(values: pd.Series, expected: list[object]) -> None:
    from pofa.report.model import _bool_column

    got = _bool_column(values, "lesions.local_failure")
    assert str(got.dtype) == "boolean"
    assert [pd.NA if v is pd.NA else bool(v) for v in got.tolist()] == expected


@pytest.mark.parametrize("values", [pd.Series([1, 2]), pd.Series([0.5]), pd.Series(["maybe"], dtype=object)])
def test_yes_no_column_refuses_other_values(values: pd.Series) -> None:
    from pofa.report.model import _bool_column

    with pytest.raises(ReportError, match=r"lesions\.local_failure must be yes/no .*found"):
        _bool_column(values, "lesions.local_failure")


def test_sequence_numbers_of_prefixed_numbers_follow_the_natural_order() -> None:
    # ids "prefix + number" take a quicker sort; it must give the general natural order, ties by the text
    from pofa.privacy import _natural_key

    rng = np.random.default_rng(7)
    for _ in range(200):
        ids = {"".join(rng.choice(list("aAbB_-. "), rng.integers(0, 4)))
               + "".join(rng.choice(list("0123456789"), rng.integers(1, 6)))
               for _ in range(rng.integers(1, 60))}
        expected = sorted(ids, key=lambda s: (_natural_key(s), s))
        seq = sequence_numbers(ids)
        assert sorted(ids, key=seq.__getitem__) == expected
    mixed = ["P2", "P10", "2", "p2", "P02", "Q1", "P2x"]  # "P2x" is not prefix + number: the general sort
    assert sequence_numbers(mixed) == {s: k for k, s in enumerate(
        sorted(mixed, key=lambda s: (_natural_key(s), s)), start=1)}


def test_importing_pofa_does_not_import_matplotlib() -> None:
    code = "import sys, pofa, pofa.report, pofa.report.model; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_writing_a_report_leaves_pyplot_and_the_backend_alone(tmp_path: Path) -> None:
    """Figures are matplotlib.figure.Figure objects: no pyplot (its import and global figure list), and the
    backend a user chose (here: svg) is still the backend afterwards."""
    code = (
        "import sys, matplotlib; matplotlib.use('svg')\n"
        "from pofa.examples import simulated_analysis\n"
        "from pofa.report import write_report\n"
        f"res = simulated_analysis({str(tmp_path / 'study')!r}, 40, seed=5)\n"
        f"write_report(res, {str(tmp_path / 'out')!r}, png=True)\n"
        "print('matplotlib.pyplot' in sys.modules, matplotlib.get_backend())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "svg"]
    assert any((tmp_path / "out" / "figures").glob("*.png"))


def test_number_formats() -> None:
    assert [fmt_p(x) for x in (0.0004, 0.004, 0.0449, 0.63, 0.999, None)] == [
        "<0.001",
        "0.004",
        "0.04",
        "0.63",
        ">0.99",
        "NE",
    ]
    assert p_phrase(0.0004) == "p < 0.001" and p_phrase(0.02) == "p = 0.02"
    assert [fmt_pct(13, 40), fmt_pct(31, 36), fmt_pct(5, 36), fmt_pct(1, 0)] == ["33%", "86%", "14%", "NE"]
    s = Settings()
    assert lesion_term_label("diameter_cm>=5", s) == "Diameter \u2265 5 cm"
    assert lesion_term_label("suvmax>=10", s) == "SUVmax \u2265 10"
    assert lesion_term_label("extranodal", s) == "Extranodal"


def test_analyse_adds_the_statistics(analysed) -> None:
    doc = analysed.to_json()
    for key in ("patterns", "lesion_models", "survival", "followup", "patient_models", "competing_risks"):
        assert key in doc
    again = analyse(pofa.load_study(analysed.study_path))
    assert again.to_json() == doc
