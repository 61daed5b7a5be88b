"""Property-based fuzzing (hypothesis) of the files pofa reads besides the tables: model.json, study.toml and
the imaging manifest. Whatever their structure and values, pofa gives a clear error (a PofaError, exit 2 at
the command line) or works; never a traceback. For study.toml the property is stronger: settings that
``pofa validate`` passes are settings ``pofa analyze`` can use.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import pofa
from pofa.data import bundled_study
from pofa.errors import ModelFileError, PofaError

pytestmark = pytest.mark.slow
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)
EXAMPLE = bundled_study("example")
PAYLOADS = ["=1+1", "@SUM(1)", "-", "+", "nosuchcov", "diameter_cm>=abc", "any x>=1", "suvmax/sd", "", " ",
            "\x00", "x" * 300, "age", "any diameter_cm>=5", "extranodal", "1e309", "sex", "site"]

JSON_SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1e308, -1e308, 5e-324, 0.0, -0.0]),
    st.text(max_size=20), st.sampled_from(PAYLOADS),
)
JSON = st.recursive(
    JSON_SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=20)


@contextmanager
def study_folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pofa-fuzz-") as tmp:
        folder = Path(tmp) / "study"
        shutil.copytree(EXAMPLE, folder)
        yield folder


# ---------------------------------------------------------------------------------------------------------
# model.json


def _model_doc() -> dict[str, Any]:
    from pofa.riskmodel import published_model
    from pofa.riskmodel.fileio import dumps_model

    doc: dict[str, Any] = json.loads(dumps_model(published_model()))
    return doc


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


MODEL_PATHS = _paths(_model_doc())[1:]


@FUZZ
@given(edits=st.lists(st.tuples(st.sampled_from(MODEL_PATHS), JSON), min_size=1, max_size=3))
@example(edits=[(("coefficients", "values", 1), 10**399)])
@example(edits=[(("coefficients", "values", 2), 1e308)])
@example(edits=[(("features", 0, "threshold"), 1e308)])
@example(edits=[(("features", 0, "threshold"), 5e-324)])
@example(edits=[(("covariance", 1, 1), 1e300)])
def test_model_json_values(edits: list[tuple[tuple[Any, ...], Any]]) -> None:
    """A model file with values replaced anywhere loads and scores, or is refused with ModelFileError."""
    import pandas as pd

    from pofa.riskmodel.fileio import loads_model
    from pofa.riskmodel.predict import predict_lesions

    doc = _model_doc()
    for path, value in edits:
        node = doc
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed the place
    try:
        model = loads_model(json.dumps(doc))
    except ModelFileError as exc:
        assert str(exc)
        return
    lesions = pd.read_csv(EXAMPLE / "lesions.csv", dtype={"patient_id": str, "lesion_id": str})
    try:
        scores = predict_lesions(model, lesions)
    except PofaError:
        return
    assert scores is not None


@FUZZ
@given(doc=JSON, depth=st.integers(0, 3000))
def test_model_json_structure(doc: Any, depth: int) -> None:
    """Any JSON document, possibly nested deeply, is refused with ModelFileError."""
    from pofa.riskmodel.fileio import loads_model

    text = "[" * depth + json.dumps(doc) + "]" * depth
    with pytest.raises(ModelFileError):
        loads_model(text)


# ---------------------------------------------------------------------------------------------------------
# study.toml


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(type(v))


def _toml(sections: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, keys in sections.items():
        lines.append(f"[{json.dumps(name)}]")
        lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


KNOWN = {"classification": ["window_days", "use_geometry", "local_margin_mm", "marginal_margin_mm",
                            "marginal_counts_as"],
         "features": ["diameter_cm_thresholds", "suvmax_thresholds"],
         "risk_factors": ["lesion", "patient"], "survival": ["ci_method", "landmarks_months"],
         "lesion_models": ["small_sample", "firth"], "report": ["show_ids"], "study": ["name", "description"]}
TOML_SCALAR = st.one_of(st.booleans(), st.integers(-(10**20), 10**20), st.floats(), st.sampled_from(PAYLOADS),
                        st.sampled_from([0, 1, 5, 30, 10.0, 0.5, -1, "log", "plain", "local", "de novo"]))
TOML_VALUE = st.one_of(TOML_SCALAR, st.lists(TOML_SCALAR, max_size=4),
                       st.lists(st.sampled_from(PAYLOADS), max_size=3))
SECTIONS = st.dictionaries(
    st.one_of(st.sampled_from(list(KNOWN)), st.text(min_size=1, max_size=6)),
    st.dictionaries(st.one_of(st.sampled_from([k for ks in KNOWN.values() for k in ks]),
                              st.text(min_size=1, max_size=6)), TOML_VALUE, max_size=4),
    max_size=4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)
@given(sections=SECTIONS)
@example(sections={"risk_factors": {"patient": ["nosuchcov"]}})
@example(sections={"risk_factors": {"lesion": ["diameter_cm>=abc"]}})
@example(sections={"risk_factors": {"patient": ["sex"], "lesion": ["site"]}})
@example(sections={"features": {"suvmax_thresholds": [1e308]}})
@example(sections={"survival": {"landmarks_months": [1e308]}})
def test_study_toml_validate_agrees_with_analyze(sections: dict[str, dict[str, Any]]) -> None:
    """Random settings: validate never raises; its study.toml findings are located; settings it passes
    are settings the analysis can use (no error, no traceback)."""
    from pofa.analysis import run_analysis

    with study_folder() as folder:
        (folder / "study.toml").write_text(_toml(sections), encoding="utf-8")
        study = pofa.load_study(folder)
        report = study.validate()
        for f in report.findings:
            if f.code == "bad-setting":
                assert f.file == "study.toml" and f.message and f.hint
        if report.errors:
            return
        run_analysis(study)  # must not raise: validate found nothing wrong


@FUZZ
@given(data=st.binary(max_size=200), depth=st.integers(0, 5000))
def test_study_toml_bytes(data: bytes, depth: int) -> None:
    with study_folder() as folder:
        (folder / "study.toml").write_bytes(b"[study]\nx = " + b"[" * depth + b"]" * depth + b"\n" + data)
        report = pofa.load_study(folder).validate()
        assert all(f.file == "study.toml" for f in report.findings if f.code == "bad-setting")


# ---------------------------------------------------------------------------------------------------------
# The imaging manifest

MANIFEST_HEADER = ["patient_id", "role", "scan_date", "pet", "ct", "mask", "organs", "threshold", "transform"]
MANIFEST_CELL = st.one_of(st.text(max_size=12), st.sampled_from(
    ["P001", "baseline", "failure", "2019-01-03", "2019-02-30", "x.nii.gz", "../../etc/passwd", "/dev/zero",
     "suv4", "41pct", "-1", "1e309", "=1+1", "", "\x00", "a,b", '"']))


@FUZZ
@given(header=st.one_of(st.just(MANIFEST_HEADER), st.lists(st.sampled_from(MANIFEST_HEADER + ["x", ""]),
                                                           max_size=10)),
       rows=st.lists(st.lists(MANIFEST_CELL, max_size=10), max_size=6),
       threshold=st.one_of(st.none(), st.sampled_from(["suv4", "nonsense", "-3", "1e309", ""])))
def test_imaging_manifest(header: list[str], rows: list[list[str]], threshold: str | None) -> None:
    """read_manifest never raises on content; every finding names a file and says what to do."""
    import csv
    import io

    from pofa.batch.manifest import read_manifest

    with study_folder() as folder:
        buf = io.StringIO()
        csv.writer(buf).writerows([header, *rows])
        (folder / "manifest.csv").write_text(buf.getvalue(), encoding="utf-8")
        m = read_manifest(folder / "manifest.csv", threshold=threshold)
        for f in m.report.findings:
            assert f.file and f.message and f.hint
