"""Analysis settings: ``study.toml`` beside the tables, with documented defaults.

Every setting has a default, so a study without ``study.toml`` is analysed as the defining study was. Unknown
sections or keys are errors (a misspelt key must not silently fall back to a default).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pofa.covariates import Covariate, parse_declarations
from pofa.findings import Finding, Severity
from pofa.io.toml import TomlFileError, TomlProblem, read_toml_text
from pofa.vocabulary import PatternComponent

SETTINGS_FILE = "study.toml"


@dataclass(frozen=True, slots=True)
class StudyInfo:
    """Free description of the study (``[study]``); any further keys are kept as metadata."""

    name: str = ""
    description: str = ""
    #: The decimal separator of numbers in the study's CSV files: ``"."`` or ``","`` (European exports).
    decimal: str = "."
    extra: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class ClassificationSettings:
    """How lesion outcomes and failure patterns are decided (``[classification]``).

    Attributes
    ----------
    window_days : int
        Failure rows dated from ``progression_date`` to ``progression_date + window_days`` (both included)
        belong to first progression.
    use_geometry : bool
        Assign failure rows without ``baseline_lesion_id`` by lesion coordinates.
    local_margin_mm : float
        A failure sphere overlapping a baseline sphere grown by this margin is local.
    marginal_margin_mm : float
        Within this margin (and not local) it is marginal; beyond it, de novo.
    marginal_counts_as : str
        ``"de novo"`` (default: the defining study's de novo lesion "does not overlap any pretreatment
        lesion") or ``"local"`` (a marginal failure fails the nearest baseline lesion) for lesion outcomes
        and patient patterns. Marginal failures are reported as their own class either way
        (docs/patterns.md).
    """

    window_days: int = 30
    use_geometry: bool = False
    local_margin_mm: float = 0.0
    marginal_margin_mm: float = 10.0
    marginal_counts_as: str = PatternComponent.DE_NOVO.value


@dataclass(frozen=True, slots=True)
class FeatureSettings:
    """Derived patient features (``[features]``, docs/patterns.md).

    Attributes
    ----------
    diameter_cm_thresholds : tuple of float
        One ``any_diameter_cm_ge_X`` column per threshold: any lesion with ``diameter_cm >= X``.
    suvmax_thresholds : tuple of float
        One ``any_suvmax_ge_X`` column per threshold: any lesion with ``suvmax >= X``.
    """

    diameter_cm_thresholds: tuple[float, ...] = (5.0,)
    suvmax_thresholds: tuple[float, ...] = (10.0,)


@dataclass(frozen=True, slots=True)
class RiskFactorSettings:
    """Risk factors analysed (``[risk_factors]``).

    ``lesion`` terms are lesion columns, thresholded (``"diameter_cm>=5"``) or continuous (``"suvmax"`` per
    unit, ``"suvmax/sd"`` per SD). ``patient`` terms are ``"any COLUMN>=X"`` over a patient's lesions or
    patient covariates.
    """

    lesion: tuple[str, ...] = ("diameter_cm>=5", "suvmax>=10", "extranodal")
    patient: tuple[str, ...] = ("any diameter_cm>=5",)


@dataclass(frozen=True, slots=True)
class SurvivalSettings:
    """Time-to-event settings (``[survival]``)."""

    ci_method: str = "log-log"
    landmarks_months: tuple[float, ...] = (6.0, 12.0, 24.0)


@dataclass(frozen=True, slots=True)
class LesionModelSettings:
    """Lesion-level models (``[lesion_models]``)."""

    small_sample: bool = False
    firth: bool = False


@dataclass(frozen=True, slots=True)
class RadiotherapySettings:
    """Radiotherapy dose and failure location (``[radiotherapy]``, docs/radiotherapy.md).

    Attributes
    ----------
    alpha_beta_gy : float
        alpha/beta of the linear-quadratic model for EQD2 and BED (10 Gy: lymphoma, an early-responding
        tissue).
    isodose_pct : float
        The isodose (% of the prescription) that defines "inside the field" (95%: Dawson et al. 2000).
    in_field_volume_pct : float
        In-field by volume when at least this % of the failure volume is inside the isodose (95%).
    marginal_volume_pct : float
        Marginal by volume from this % up to ``in_field_volume_pct``; out-of-field below it (20%).
    centroid_margin_mm : float
        By centroid: marginal when the centroid (outside the isodose) lies within this distance of the
        isodose surface (10 mm); in-field when the centroid dose reaches the isodose.
    """

    alpha_beta_gy: float = 10.0
    isodose_pct: float = 95.0
    in_field_volume_pct: float = 95.0
    marginal_volume_pct: float = 20.0
    centroid_margin_mm: float = 10.0


@dataclass(frozen=True, slots=True)
class ResponseSettings:
    """Response assessment over time (``[response]``, docs/response.md).

    Attributes
    ----------
    too_small_mm : float
        Lugano's default size of a lesion too small to measure (5 mm x 5 mm).
    uptake_margin : float
        Percent change of the highest SUVmax from baseline within which PET uptake is "not significantly
        changed" (Lugano gives no number; 10).
    lesion_rule : str
        Lesion progression for lesion-level time to failure: ``"lugano"`` (Lugano's single-lesion rule) or
        ``"ppd50"`` (PPD up >= 50% from the lesion's nadir).
    """

    too_small_mm: float = 5.0
    uptake_margin: float = 10.0
    lesion_rule: str = "lugano"


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """Report settings (``[report]``).

    Attributes
    ----------
    show_ids : bool
        Show patient ids in the report (default: study sequence numbers).
    png : bool
        Also write each figure as a 300-dpi PNG beside its SVG (``pofa analyze --png``; default: SVG only).
    """

    show_ids: bool = False
    png: bool = False


@dataclass(frozen=True, slots=True)
class Settings:
    """All analysis settings of a study."""

    study: StudyInfo = field(default_factory=StudyInfo)
    classification: ClassificationSettings = field(default_factory=ClassificationSettings)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    risk_factors: RiskFactorSettings = field(default_factory=RiskFactorSettings)
    survival: SurvivalSettings = field(default_factory=SurvivalSettings)
    lesion_models: LesionModelSettings = field(default_factory=LesionModelSettings)
    radiotherapy: RadiotherapySettings = field(default_factory=RadiotherapySettings)
    response: ResponseSettings = field(default_factory=ResponseSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    # Declared covariates (``[covariates.NAME]``, pofa.covariates) and header renaming (``[columns]``,
    # file header -> the format's column name). Not sections of fixed keys: parsed apart from the others.
    covariates: tuple[Covariate, ...] = ()
    columns: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, dict[str, Any]]:
        """Return the settings as plain JSON (tuples as lists).

        Returns
        -------
        dict of str to dict of str to Any
            One dict per section (declared covariates and columns left out).
        """
        out: dict[str, dict[str, Any]] = {}
        for f in fields(self):
            if f.name in ("covariates", "columns"):
                continue
            section = getattr(self, f.name)
            vals: dict[str, Any] = {}
            for sf in fields(section):
                v = getattr(section, sf.name)
                if sf.name == "extra":
                    vals.update(dict(v))
                    continue
                vals[sf.name] = list(v) if isinstance(v, tuple) else v
            out[f.name] = vals
        return out


CI_METHODS = ("log-log", "log", "plain")
#: Sections read by other modules (``[redcap]``: pofa.redcap.config), skipped here.
EXTERNAL_SECTIONS = ("redcap",)
DECIMAL_SEPARATORS = (".", ",")
#: What a marginal failure may count as (``classification.marginal_counts_as``).
MARGINAL_COUNTS_AS = (PatternComponent.DE_NOVO.value, PatternComponent.LOCAL.value)


def _check_type(value: Any, default: Any) -> Any:
    """Coerce a TOML value to the type of the default, or raise TypeError with what was expected."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise TypeError("true or false")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError("a whole number")
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise TypeError("a finite number")
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        raise TypeError("text in quotes")
    if isinstance(default, tuple):
        if not isinstance(value, list):
            raise TypeError("a list, e.g. [1, 2]")
        if default and isinstance(default[0], float):
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                       for v in value):
                raise TypeError("a list of finite numbers")
            return tuple(float(v) for v in value)
        if not all(isinstance(v, str) for v in value):
            raise TypeError("a list of texts in quotes")
        return tuple(value)
    raise TypeError(type(default).__name__)


def _finding(message: str, hint: str, column: str | None = None) -> Finding:
    return Finding(Severity.ERROR, "bad-setting", SETTINGS_FILE, None, column, message, hint)


def parse_settings(data: dict[str, Any], text: str = "") -> tuple[Settings, list[Finding]]:
    """Read settings from a parsed TOML document, with a finding for each unknown or ill-typed entry.

    Parameters
    ----------
    data : dict
        The parsed TOML document.
    text : str
        The TOML text, used only to locate problems of ``[covariates]`` and ``[columns]`` by line.

    Returns
    -------
    tuple of Settings and list of Finding
        The settings (defaults where a value is missing or bad) and the problems.
    """
    findings: list[Finding] = []
    defaults = Settings()
    sections = {f.name: f for f in fields(Settings) if f.name not in ("covariates", "columns")}
    updates: dict[str, Any] = {}
    covariates, columns, problems = parse_declarations(data.get("covariates"), data.get("columns"), text)
    findings.extend(Finding(Severity.ERROR, "bad-setting", SETTINGS_FILE, p.line, p.key, p.message, p.hint)
                    for p in problems)
    updates["covariates"], updates["columns"] = covariates, columns
    for sec_name, sec_value in data.items():
        if sec_name in ("covariates", "columns", *EXTERNAL_SECTIONS):
            continue
        if sec_name not in sections:
            known_sections = [*sections, "covariates", "columns", *EXTERNAL_SECTIONS]
            close = difflib.get_close_matches(sec_name, known_sections, n=1)
            findings.append(_finding(f"unknown section [{sec_name}]",
                                     f"did you mean [{close[0]}]?" if close else
                                     f"known sections: {', '.join(known_sections)}"))
            continue
        if not isinstance(sec_value, dict):
            findings.append(_finding(f"'{sec_name}' must be a section [{sec_name}]",
                                     "see docs/study-format.md"))
            continue
        section_default = getattr(defaults, sec_name)
        known = {f.name: f for f in fields(section_default) if f.name != "extra"}
        vals: dict[str, Any] = {}
        extra: list[tuple[str, Any]] = []
        for key, value in sec_value.items():
            if key not in known:
                if sec_name == "study":
                    extra.append((key, value))
                    continue
                close = difflib.get_close_matches(key, known, n=1)
                findings.append(_finding(f"unknown setting {sec_name}.{key}",
                                         f"did you mean {sec_name}.{close[0]}?" if close else
                                         f"known settings of [{sec_name}]: {', '.join(known)}", column=key))
                continue
            try:
                vals[key] = _check_type(value, getattr(section_default, key))
            except TypeError as exc:
                findings.append(_finding(f"{sec_name}.{key} = {value!r} is not {exc}",
                                         f"write {sec_name}.{key} as {exc}", column=key))
        if extra:
            vals["extra"] = tuple(extra)
        if vals:
            updates[sec_name] = replace(section_default, **vals)
    settings = replace(defaults, **updates)
    if settings.study.decimal not in DECIMAL_SEPARATORS:
        findings.append(_finding(f"study.decimal = {settings.study.decimal!r} is not a decimal separator",
                                 'write decimal = "." (the default) or decimal = ","', "decimal"))
        settings = replace(settings, study=replace(settings.study, decimal="."))
    c = settings.classification
    if c.window_days < 0:
        findings.append(_finding("classification.window_days must be 0 or more", "e.g. window_days = 30",
                                 "window_days"))
    if c.local_margin_mm < 0 or c.marginal_margin_mm < c.local_margin_mm:
        findings.append(_finding("margins must satisfy 0 <= local_margin_mm <= marginal_margin_mm",
                                 "e.g. local_margin_mm = 0, marginal_margin_mm = 10", "marginal_margin_mm"))
    if c.marginal_counts_as not in MARGINAL_COUNTS_AS:
        findings.append(_finding(f"classification.marginal_counts_as = {c.marginal_counts_as!r} is not known",
                                 'use "de novo" or "local"', "marginal_counts_as"))
    for key in ("diameter_cm_thresholds", "suvmax_thresholds"):
        if not all(math.isfinite(t) and t > 0 for t in getattr(settings.features, key)):
            findings.append(_finding(f"features.{key} must hold positive numbers", "e.g. [5, 7.5]", key))
    if settings.survival.ci_method not in CI_METHODS:
        findings.append(_finding(f"survival.ci_method = {settings.survival.ci_method!r} is not known",
                                 f"use one of {', '.join(CI_METHODS)}", "ci_method"))
    if any(t <= 0 for t in settings.survival.landmarks_months):
        findings.append(_finding("survival.landmarks_months must be positive", "e.g. [6, 12, 24]",
                                 "landmarks_months"))
    r = settings.radiotherapy
    if r.alpha_beta_gy <= 0 or r.isodose_pct <= 0 or r.centroid_margin_mm < 0:
        findings.append(_finding("radiotherapy.alpha_beta_gy and isodose_pct must be > 0, "
                                 "centroid_margin_mm >= 0", "e.g. alpha_beta_gy = 10", "alpha_beta_gy"))
    if not 0 <= r.marginal_volume_pct <= r.in_field_volume_pct <= 100:
        findings.append(_finding("radiotherapy: need 0 <= marginal_volume_pct <= in_field_volume_pct <= 100",
                                 "e.g. in_field_volume_pct = 95, marginal_volume_pct = 20",
                                 "marginal_volume_pct"))
    s = settings.response
    if s.lesion_rule not in ("lugano", "ppd50") or s.too_small_mm <= 0 or s.uptake_margin < 0:
        findings.append(_finding("response: lesion_rule must be \"lugano\" or \"ppd50\", too_small_mm > 0, "
                                 "uptake_margin >= 0", 'e.g. lesion_rule = "lugano"', "lesion_rule"))
    return settings, findings


def load_settings(folder: Path | None) -> tuple[Settings, list[Finding]]:
    """Read ``study.toml`` from a study folder; defaults when there is none.

    Parameters
    ----------
    folder : pathlib.Path or None
        The study folder (``None``: defaults).

    Returns
    -------
    tuple of Settings and list of Finding
        The settings (defaults where a value is missing or bad) and the problems, one finding each.
    """
    if folder is None:
        return Settings(), []
    path = folder / SETTINGS_FILE
    if not path.is_file():
        if not path.exists() and not path.is_symlink():
            return Settings(), []
        return Settings(), [_finding("study.toml is not a regular file (a folder, pipe or device)",
                                     "make study.toml an ordinary text file, or remove it")]
    try:
        data, text = read_toml_text(path)
    except TomlFileError as exc:
        if exc.reason is TomlProblem.INVALID:
            return Settings(), [_finding(f"not valid TOML: {exc.detail}",
                                         "fix the syntax of study.toml (see docs)")]
        return Settings(), [_finding(f"cannot read study.toml: {exc.detail}",
                                     "check the file and its permissions")]
    return parse_settings(data, text)
