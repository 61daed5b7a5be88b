"""Risk-model files: plain JSON, written atomically, read back with strict checks. Never pickle.

A model file is one JSON object (format ``"pofa-risk-model"``, version :data:`FORMAT_VERSION`)::

    {"format": "pofa-risk-model", "format_version": 1, "pofa_version": "0.1.0",
     "kind": "gee" | "firth" | "published", "label": ..., "method": ..., "covariance_type": ...,
     "outcome": "local_failure",
     "features": [{"term": "diameter_cm>=5", "column": "diameter_cm", "kind": "threshold",
                   "threshold": 5.0, "scale": null, "sd": null}, ...],
     "coefficients": {"names": ["(Intercept)", "diameter_cm>=5", ...], "values": [...]},
     "covariance": [[...], ...],
     "intercept": {"known": true, "basis": "..."},
     "training": {...}, "validation": {...} | null, "limitations": [...]}

Floats are written by Python's ``repr`` (the shortest text that reads back to the same double), so a model
read back equals the model written, bit for bit. ``NaN`` and ``Infinity`` are never written and refused on
reading.

Reading refuses, with a :class:`~pofa.errors.ModelFileError` that says what is wrong and what to do: text that
is not JSON, duplicate keys, another format, a newer format version, missing or unknown keys, values of the
wrong type, features pofa does not know (an unknown kind, or a term name that does not match its definition),
coefficient names that do not match the features, and a covariance of the wrong size or that is not
symmetric or not positive semi-definite.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from pofa.atomic import read_regular_bytes, write_text
from pofa.errors import ModelFileError, PofaError
from pofa.riskmodel.model import (
    FORMAT_NAME,
    FORMAT_VERSION,
    Feature,
    ModelKind,
    RiskModel,
    TermSummary,
    TrainingSummary,
    ValidationSummary,
)
from pofa.stats.factors import INTERCEPT, FactorKind, RiskFactor, Scale

TOP_KEYS = (
    "format",
    "format_version",
    "pofa_version",
    "kind",
    "label",
    "method",
    "covariance_type",
    "outcome",
    "features",
    "coefficients",
    "covariance",
    "intercept",
    "training",
    "validation",
    "limitations",
)
FEATURE_KEYS = ("term", "column", "kind", "threshold", "scale", "sd")
COEFFICIENT_KEYS = ("names", "values")
INTERCEPT_KEYS = ("known", "basis")
TRAINING_KEYS = (
    "data",
    "n_lesions",
    "n_patients",
    "n_events",
    "n_left_out",
    "outcome_definition",
    "working_correlation",
    "terms",
    "notes",
    "input_sha256",
)
TERM_KEYS = ("term", "mean", "column_min", "column_max")
VALIDATION_KEYS = (
    "method",
    "folds",
    "seed",
    "n_lesions",
    "n_patients",
    "n_events",
    "auc",
    "calibration_slope",
    "calibration_intercept",
    "brier",
    "apparent_auc",
    "apparent_brier",
    "notes",
)

#: Largest coefficient (log odds ratio) a model file may hold: exp(700) is near the largest float; no fit
#: gives an odds ratio anywhere near it, and a larger one would overflow when scores are computed.
MAX_COEFFICIENT = 700.0
#: Largest covariance entry (variance of a log odds ratio) a model file may hold.
MAX_COVARIANCE = 1e6
#: Largest model file read (pofa's are a few kilobytes).
MAX_MODEL_BYTES = 16 << 20
_HINT = "fit the model again (pofa model fit) or restore the file as pofa wrote it"


# ---------------------------------------------------------------------------------------------------------
# Writing


def _feature_json(f: Feature) -> dict[str, Any]:
    return {
        "term": f.term,
        "column": f.column,
        "kind": f.kind.value,
        "threshold": f.factor.threshold,
        "scale": None if f.factor.scale is None else f.factor.scale.value,
        "sd": f.sd,
    }


def model_to_dict(model: RiskModel) -> dict[str, Any]:
    """Return the model as a plain JSON-ready dict (the file's content).

    Parameters
    ----------
    model : RiskModel
        The model to write.

    Returns
    -------
    dict of str to Any
        Format and versions, kind, features, coefficients and covariance, intercept, training and validation
        records.
    """
    tr = model.training
    v = model.validation
    return {
        "format": FORMAT_NAME,
        "format_version": model.format_version,
        "pofa_version": model.pofa_version,
        "kind": model.kind.value,
        "label": model.label,
        "method": model.method,
        "covariance_type": model.covariance_type,
        "outcome": model.outcome,
        "features": [_feature_json(f) for f in model.features],
        "coefficients": {"names": list(model.names), "values": list(model.coefficients)},
        "covariance": [list(r) for r in model.covariance],
        "intercept": {"known": model.intercept_known, "basis": model.intercept_basis},
        "training": {
            "data": tr.data,
            "n_lesions": tr.n_lesions,
            "n_patients": tr.n_patients,
            "n_events": tr.n_events,
            "n_left_out": tr.n_left_out,
            "outcome_definition": tr.outcome_definition,
            "working_correlation": tr.working_correlation,
            "terms": [
                {"term": t.term, "mean": t.mean, "column_min": t.column_min, "column_max": t.column_max}
                for t in tr.terms
            ],
            "notes": list(tr.notes),
            "input_sha256": dict(tr.input_sha256),
        },
        "validation": None
        if v is None
        else {k: (list(getattr(v, k)) if k == "notes" else getattr(v, k)) for k in VALIDATION_KEYS},
        "limitations": list(model.limitations),
    }


def dumps_model(model: RiskModel) -> str:
    """Return the model file's text (JSON, 2-space indent, floats by ``repr``, no NaN).

    Parameters
    ----------
    model : RiskModel
        The model to write.

    Returns
    -------
    str
        The JSON text, ending with a newline.
    """
    return json.dumps(model_to_dict(model), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def save_model(model: RiskModel, path: str | Path, *, force: bool = False) -> Path:
    """Write ``model`` to ``path`` atomically (the file appears complete or not at all).

    Parameters
    ----------
    model : RiskModel
        The model to write.
    path : str or pathlib.Path
        The model file (e.g. ``model.json``).
    force : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    PofaError
        ``path`` exists and ``force`` is false, or is a folder.
    """
    p = Path(path)
    if p.is_dir():
        raise PofaError(f"{p} is a folder, not a model file's name such as {p / 'model.json'}",
                        advice="give the model file's name with {out}")
    if p.exists() and not force:
        raise PofaError(f"{p} exists", advice="choose another {out}, or add {force} to replace it")
    write_text(p, dumps_model(model))
    return p


# ---------------------------------------------------------------------------------------------------------
# Reading


class _Reader:
    """Typed access to a parsed JSON document; every failure is a ModelFileError naming the path in it."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, message: str, hint: str = _HINT) -> ModelFileError:
        return ModelFileError(f"{self.where}: {message}; {hint}")

    def t_obj(self, value: Any, path: str, keys: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{path} must be a JSON object, got {_type(value)}")
        missing = [k for k in keys if k not in value]
        if missing:
            raise self.fail(f"{path} lacks the key{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        extra = [k for k in value if k not in keys]
        if extra:
            raise self.fail(
                f"{path} has unknown key{'s' if len(extra) > 1 else ''} {', '.join(extra)} "
                "(not part of this format version)"
            )
        return value

    def t_list(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(f"{path} must be a JSON array, got {_type(value)}")
        return value

    def t_str(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(f"{path} must be text, got {_type(value)}")
        return value

    def t_bool(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(f"{path} must be true or false, got {_type(value)}")
        return value

    def t_int(self, value: Any, path: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{path} must be a whole number, got {_type(value)}")
        if value < minimum:
            raise self.fail(f"{path} must be at least {minimum}, got {value}")
        return value

    def t_opt_int(self, value: Any, path: str) -> int | None:
        return None if value is None else self.t_int(value, path)

    def t_float(self, value: Any, path: str, limit: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"{path} must be a number, got {_type(value)}")
        try:
            x = float(value)
        except OverflowError:
            raise self.fail(f"{path} is a whole number too large for a model "
                            f"({len(str(value))} digits)") from None
        if not math.isfinite(x):
            raise self.fail(f"{path} must be a finite number")
        if limit is not None and abs(x) > limit:
            raise self.fail(f"{path} = {x:.3g} is outside the range a fitted model can hold (at most "
                            f"{limit:g} in absolute value)")
        return x

    def t_opt_float(self, value: Any, path: str) -> float | None:
        return None if value is None else self.t_float(value, path)

    def t_strs(self, value: Any, path: str) -> tuple[str, ...]:
        return tuple(self.t_str(x, f"{path}[{i}]") for i, x in enumerate(self.t_list(value, path)))


def _type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "true/false",
        int: "a number",
        float: "a number",
        str: "text",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"the key {k!r} appears twice in one object")
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _feature(r: _Reader, value: Any, path: str) -> Feature:
    d = r.t_obj(value, path, FEATURE_KEYS)
    term = r.t_str(d["term"], f"{path}.term")
    column = r.t_str(d["column"], f"{path}.column")
    kind_text = r.t_str(d["kind"], f"{path}.kind")
    kinds = {k.value: k for k in FactorKind}
    if kind_text not in kinds:
        raise r.fail(
            f"feature {term!r} has the unknown kind {kind_text!r} (this pofa knows "
            f"{', '.join(map(repr, kinds))})",
            "fit the model again with this pofa, or upgrade pofa",
        )
    kind = kinds[kind_text]
    threshold = r.t_opt_float(d["threshold"], f"{path}.threshold")
    scale_text = None if d["scale"] is None else r.t_str(d["scale"], f"{path}.scale")
    sd = r.t_opt_float(d["sd"], f"{path}.sd")
    try:
        if kind is FactorKind.THRESHOLD:
            if threshold is None or scale_text is not None:
                raise r.fail(f"feature {term!r} is a threshold but its threshold is null or it has a scale")
            factor = RiskFactor(column, threshold=threshold)
        elif kind is FactorKind.CONTINUOUS:
            if scale_text not in {s.value for s in Scale} or threshold is not None:
                raise r.fail(
                    f"feature {term!r} is continuous but its scale is {scale_text!r} (must be 'unit' "
                    "or 'sd') or it has a threshold"
                )
            factor = RiskFactor(column, scale=Scale(scale_text))
        else:
            if threshold is not None or scale_text is not None:
                raise r.fail(f"feature {term!r} is used as it is, so its threshold and scale must be null")
            factor = RiskFactor(column)
    except PofaError as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise r.fail(f"feature {term!r} is not a valid feature: {exc}") from None
    if factor.name != term:
        raise r.fail(
            f"unknown feature {term!r}: its definition (column {column!r}, kind {kind_text!r}) makes "
            f"the term {factor.name!r}"
        )
    try:
        return Feature(factor, sd)
    except ModelFileError as exc:
        raise r.fail(str(exc)) from None


def _training(r: _Reader, value: Any) -> TrainingSummary:
    d = r.t_obj(value, "training", TRAINING_KEYS)
    terms = []
    for i, t in enumerate(r.t_list(d["terms"], "training.terms")):
        path = f"training.terms[{i}]"
        td = r.t_obj(t, path, TERM_KEYS)
        terms.append(
            TermSummary(
                term=r.t_str(td["term"], f"{path}.term"),
                mean=r.t_opt_float(td["mean"], f"{path}.mean"),
                column_min=r.t_opt_float(td["column_min"], f"{path}.column_min"),
                column_max=r.t_opt_float(td["column_max"], f"{path}.column_max"),
            )
        )
    hashes = d["input_sha256"]
    if not isinstance(hashes, dict):
        raise r.fail(f"training.input_sha256 must be a JSON object, got {_type(hashes)}")
    return TrainingSummary(
        data=r.t_str(d["data"], "training.data"),
        n_lesions=r.t_opt_int(d["n_lesions"], "training.n_lesions"),
        n_patients=r.t_opt_int(d["n_patients"], "training.n_patients"),
        n_events=r.t_opt_int(d["n_events"], "training.n_events"),
        n_left_out=r.t_opt_int(d["n_left_out"], "training.n_left_out"),
        outcome_definition=r.t_str(d["outcome_definition"], "training.outcome_definition"),
        working_correlation=r.t_opt_float(d["working_correlation"], "training.working_correlation"),
        terms=tuple(terms),
        notes=r.t_strs(d["notes"], "training.notes"),
        input_sha256=tuple((str(k), r.t_str(v, f"training.input_sha256.{k}")) for k, v in hashes.items()),
    )


def _validation(r: _Reader, value: Any) -> ValidationSummary | None:
    if value is None:
        return None
    d = r.t_obj(value, "validation", VALIDATION_KEYS)
    return ValidationSummary(
        method=r.t_str(d["method"], "validation.method"),
        folds=r.t_int(d["folds"], "validation.folds"),
        seed=r.t_int(d["seed"], "validation.seed"),
        n_lesions=r.t_int(d["n_lesions"], "validation.n_lesions"),
        n_patients=r.t_int(d["n_patients"], "validation.n_patients"),
        n_events=r.t_int(d["n_events"], "validation.n_events"),
        auc=r.t_opt_float(d["auc"], "validation.auc"),
        calibration_slope=r.t_opt_float(d["calibration_slope"], "validation.calibration_slope"),
        calibration_intercept=r.t_opt_float(d["calibration_intercept"], "validation.calibration_intercept"),
        brier=r.t_opt_float(d["brier"], "validation.brier"),
        apparent_auc=r.t_opt_float(d["apparent_auc"], "validation.apparent_auc"),
        apparent_brier=r.t_opt_float(d["apparent_brier"], "validation.apparent_brier"),
        notes=r.t_strs(d["notes"], "validation.notes"),
    )


def model_from_dict(data: Any, where: str = "the model file") -> RiskModel:
    """Check a parsed model file and build the :class:`RiskModel`.

    Parameters
    ----------
    data : Any
        The parsed JSON of the file.
    where : str
        How to name the file in error messages.

    Returns
    -------
    RiskModel
        The model, checked.

    Raises
    ------
    ModelFileError
        Anything that is not a model file of a format version this pofa reads, with what is wrong.
    """
    r = _Reader(where)
    if not isinstance(data, dict):
        raise r.fail(
            f"a model file holds one JSON object, got {_type(data)}",
            "give the model.json that 'pofa model fit' wrote",
        )
    if data.get("format") != FORMAT_NAME:
        raise r.fail(
            f'not a pofa risk-model file (its "format" is {data.get("format")!r}, not {FORMAT_NAME!r})',
            "give the model.json that 'pofa model fit' wrote",
        )
    version = data.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise r.fail(f"format_version must be a whole number, got {_type(version)}")
    if version > FORMAT_VERSION:
        raise r.fail(
            f"the file has format version {version}, newer than the version {FORMAT_VERSION} this pofa "
            "reads (it was written by a newer pofa)",
            "upgrade pofa (python3 -m pip install -U pofa)",
        )
    if version < 1:
        raise r.fail(f"format_version {version} does not exist (versions start at 1)")
    d = r.t_obj(data, "the file", TOP_KEYS)
    kinds = {k.value: k for k in ModelKind}
    kind_text = r.t_str(d["kind"], "kind")
    if kind_text not in kinds:
        raise r.fail(f"unknown model kind {kind_text!r} (this pofa knows {', '.join(map(repr, kinds))})")
    features = tuple(
        _feature(r, f, f"features[{i}]") for i, f in enumerate(r.t_list(d["features"], "features"))
    )
    if not features:
        raise r.fail("the model has no features")
    coefs = r.t_obj(d["coefficients"], "coefficients", COEFFICIENT_KEYS)
    names = r.t_strs(coefs["names"], "coefficients.names")
    expected = (INTERCEPT, *(f.term for f in features))
    if names != expected:
        raise r.fail(
            f"the coefficient names {list(names)} do not match the features (expected {list(expected)})"
        )
    values = tuple(
        r.t_float(v, f"coefficients.values[{i}]", MAX_COEFFICIENT)
        for i, v in enumerate(r.t_list(coefs["values"], "coefficients.values"))
    )
    if len(values) != len(names):
        raise r.fail(f"{len(names)} coefficient names but {len(values)} values")
    rows = r.t_list(d["covariance"], "covariance")
    cov = tuple(
        tuple(r.t_float(x, f"covariance[{i}][{j}]", MAX_COVARIANCE)
              for j, x in enumerate(r.t_list(row, f"covariance[{i}]")))
        for i, row in enumerate(rows)
    )
    p = len(values)
    if len(cov) != p or any(len(row) != p for row in cov):
        shape = f"{len(cov)} rows of lengths {sorted({len(row) for row in cov})}" if cov else "empty"
        raise r.fail(f"the covariance must be {p} x {p} (one row and column per coefficient), got {shape}")
    intercept = r.t_obj(d["intercept"], "intercept", INTERCEPT_KEYS)
    try:
        return RiskModel(
            kind=kinds[kind_text],
            label=r.t_str(d["label"], "label"),
            method=r.t_str(d["method"], "method"),
            covariance_type=r.t_str(d["covariance_type"], "covariance_type"),
            outcome=r.t_str(d["outcome"], "outcome"),
            features=features,
            coefficients=values,
            covariance=cov,
            intercept_known=r.t_bool(intercept["known"], "intercept.known"),
            intercept_basis=r.t_str(intercept["basis"], "intercept.basis"),
            training=_training(r, d["training"]),
            validation=_validation(r, d["validation"]),
            limitations=r.t_strs(d["limitations"], "limitations"),
            pofa_version=r.t_str(d["pofa_version"], "pofa_version"),
            format_version=version,
        )
    except ModelFileError as exc:
        if str(exc).startswith(where):
            raise
        raise r.fail(str(exc).removeprefix("the risk model is not valid: ")) from None
    except (ArithmeticError, ValueError, np.linalg.LinAlgError) as exc:  # numbers no fit can produce
        raise r.fail(f"the model's numbers cannot be used ({type(exc).__name__}: {exc})") from None


def loads_model(text: str, where: str = "the model file") -> RiskModel:
    """Read a model from its JSON text (see :func:`model_from_dict` for the checks).

    Parameters
    ----------
    text : str
        The file's text.
    where : str
        How to name the file in error messages.

    Returns
    -------
    RiskModel
        The model, checked.

    Raises
    ------
    ModelFileError
        When the text is not valid JSON (or repeats a key, holds NaN, nests too deeply) or is refused.
    """
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ModelFileError(
            f"{where}: not a model file: not valid JSON (line {exc.lineno}, column "
            f"{exc.colno}: {exc.msg}); give the model.json that 'pofa model fit' wrote, or "
            "'published' for the built-in model"
        ) from None
    except ValueError as exc:
        raise ModelFileError(f"{where}: {exc}; {_HINT}") from None
    except RecursionError:
        raise ModelFileError(f"{where}: not a model file: its JSON is nested too deeply; {_HINT}") from None
    try:
        return model_from_dict(data, where)
    except RecursionError:
        raise ModelFileError(f"{where}: not a model file: nested too deeply; {_HINT}") from None


def load_model(path: str | Path) -> RiskModel:
    """Read a model file written by :func:`save_model`.

    Parameters
    ----------
    path : str or pathlib.Path
        The model file.

    Returns
    -------
    RiskModel
        The model, checked.

    Raises
    ------
    ModelFileError
        The file cannot be read or is refused (see :func:`model_from_dict`).
    """
    p = Path(path)
    try:
        raw = read_regular_bytes(p, "the model file", MAX_MODEL_BYTES)
    except PofaError as exc:
        raise ModelFileError(f"{exc} (or use 'published' for the built-in model)") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFileError(
            f"{p}: not a text (UTF-8 JSON) file; give the model.json that 'pofa model fit' "
            "wrote (pofa never reads pickled models)"
        ) from None
    return loads_model(text, str(p))


__all__ = ["dumps_model", "load_model", "loads_model", "model_from_dict", "model_to_dict", "save_model"]
