"""Property-based fuzzing of ``pofa simulate --config`` (hypothesis; docs/security.md, untrusted inputs).

A parameter file with any keys and any values (wrong types, NaN, infinities, huge and negative numbers,
nested lists) gives either parameters the simulator runs on, or a :class:`pofa.errors.PofaError` (a clear
message and exit code 2 at the command line) -- never another exception.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pofa.errors import PofaError
from pofa.simulate import simulate
from pofa.simulate.params import all_keys, load_params

pytestmark = pytest.mark.slow
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                print_blob=True)

_SCALARS = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.text(max_size=8), st.dates(min_value=dt.date(1, 1, 1)),
    st.sampled_from([0, 1, 2, 0.5, -1, 1e308, float("nan"), float("inf"), "", "yes"]))
_VALUES = st.one_of(_SCALARS, st.lists(_SCALARS, max_size=4),
                    st.lists(st.dictionaries(st.text(max_size=6), _SCALARS, max_size=3), max_size=3))
_REAL = st.sampled_from(sorted(all_keys()))
_KEYS = st.one_of(_REAL, _REAL, _REAL, st.text(min_size=1, max_size=10))


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def _toml(doc: dict[str, Any]) -> str:
    lines = [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for name, keys in doc.items():
        if isinstance(keys, dict):
            lines.append(f"[{json.dumps(name)}]")
            lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in flat.items():
        section, _, name = key.partition(".")
        if name:
            sub = doc.setdefault(section, {})
            if isinstance(sub, dict):
                sub[name] = value
        else:
            doc[section] = value
    return doc


@FUZZ
@given(st.dictionaries(_KEYS, _VALUES, max_size=5))
@example({"cohort.n_patients": float("nan")})
@example({"cohort.n_patients": float("inf")})
@example({"failure.failure_growth_log_mean": 710})  # exp(710) overflowed in the generator
@example({"lesions.diameter_median_cm": 1e308, "lesions.diameter_log_sd": 5.0})
@example({"failure.log_or_bulky": float("nan")})
@example({"cohort.n_patients": 20, "failure.log_or_bulky": 0.5})
def test_config_is_used_or_refused_clearly(flat: dict[str, Any]) -> None:
    text = _toml(_nested(flat))
    with tempfile.TemporaryDirectory(prefix="pofa-fuzz-sim-") as tmp:
        path = Path(tmp) / "params.toml"
        path.write_text(text, encoding="utf-8")
        try:
            params = load_params("figura2021", config=path, n_patients=12)
        except PofaError:
            return
    try:
        study = simulate(params, 1, preset="figura2021")
    except PofaError:
        return
    assert len(study.patients) == 12
    assert all(math.isfinite(v) for v in study.patients.select_dtypes("number").to_numpy().ravel()
               if v == v)
