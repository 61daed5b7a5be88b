"""The risk model: an immutable lesion-level logistic model of local failure, ready to score new lesions.

A :class:`RiskModel` holds what prediction needs and what a reader needs to judge it: the coefficients
(log-odds, intercept first) and their covariance, the feature definitions (:class:`Feature`: a
:class:`~pofa.stats.factors.RiskFactor` plus, for per-SD terms, the training SD), a training summary, the
cross-validation summary, the limitations in words, the pofa version and the file-format version.

It is made by :func:`pofa.riskmodel.fit.fit_risk_model` (a study's own GEE or Firth model) or
:func:`pofa.riskmodel.published.published_model` (the published odds ratios), saved and read as plain JSON by
:mod:`pofa.riskmodel.fileio`, and applied by :func:`pofa.riskmodel.predict.predict_lesions`.

Every model is checked when it is made (so also when a file is read): the coefficient names are the
intercept followed by the feature terms, the covariance is square, of the right size, finite, symmetric and
positive semi-definite. A model that fails a check raises :class:`~pofa.errors.ModelFileError`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from pofa.errors import ModelFileError
from pofa.stats.factors import INTERCEPT, FactorKind, RiskFactor, Scale

#: The ``format`` value of every model file.
FORMAT_NAME = "pofa-risk-model"
#: The file-format version this pofa writes and the newest it reads.
FORMAT_VERSION = 1

#: Relative tolerance of the symmetry check, ``|C - C'| <= SYMMETRY_RTOL * max|C|``. pofa writes exactly
#: symmetric matrices (``(C + C') / 2`` is exactly symmetric in floating point) and JSON keeps every bit, so
#: any asymmetry beyond rounding means the file was edited.
SYMMETRY_RTOL = 1e-12
#: Relative tolerance of the positive semi-definiteness check: the smallest eigenvalue must be at least
#: ``-PSD_RTOL * largest eigenvalue`` (eigenvalues of an exactly PSD matrix come out with rounding error of
#: about machine epsilon times the largest one).
PSD_RTOL = 1e-10


class ModelKind(enum.Enum):
    """How a model was made (the value is what model files and users see)."""

    GEE = "gee"
    FIRTH = "firth"
    PUBLISHED = "published"


@dataclass(frozen=True, slots=True)
class Feature:
    """One term of a risk model: its definition and, for a per-SD term, the SD the column is divided by.

    Attributes
    ----------
    factor : RiskFactor
        The term definition (threshold, column as it is, or continuous per unit / per SD).
    sd : float or None
        For a per-SD term, the sample SD (n - 1) of the column in the training lesions; new lesions are
        divided by this same number. ``None`` for every other term.
    """

    factor: RiskFactor
    sd: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.factor, RiskFactor):
            raise ModelFileError(f"a feature must be a RiskFactor, got {self.factor!r}")
        needs_sd = self.factor.scale is Scale.SD
        if needs_sd:
            if self.sd is None or isinstance(self.sd, bool) or not isinstance(self.sd, int | float):
                raise ModelFileError(f"feature {self.term!r} is per SD but has no training SD")
            if not (math.isfinite(float(self.sd)) and float(self.sd) > 0):
                raise ModelFileError(
                    f"feature {self.term!r}: the training SD must be a positive number, got {self.sd!r}"
                )
            object.__setattr__(self, "sd", float(self.sd))
        elif self.sd is not None:
            raise ModelFileError(
                f"feature {self.term!r} is not per SD, so it must not carry an SD (got {self.sd!r})"
            )

    @property
    def term(self) -> str:
        """The term name (``"diameter_cm>=5"``, ``"extranodal"``, ``"suvmax (per SD)"``).

        Returns
        -------
        str
            The term name (``"diameter_cm>=5"``, ``"extranodal"``, ``"suvmax (per SD)"``).
        """
        return self.factor.name

    @property
    def column(self) -> str:
        """The lesion column the term is computed from.

        Returns
        -------
        str
            The lesion column the term is computed from.
        """
        return self.factor.column

    @property
    def kind(self) -> FactorKind:
        """Kind of the term (threshold, per-SD scale or as-is).

        Returns
        -------
        FactorKind
            The factor's kind.
        """
        return self.factor.kind

    @property
    def is_binary(self) -> bool:
        """Whether the term is 0/1 by construction (a threshold); an as-is column may also be yes/no.

        Returns
        -------
        bool
            Whether the term is 0/1 by construction (a threshold); an as-is column may also be yes/no.
        """
        return self.factor.kind is FactorKind.THRESHOLD


@dataclass(frozen=True, slots=True)
class TermSummary:
    """The training distribution of one term.

    Attributes
    ----------
    term : str
        Term name.
    mean : float or None
        Mean of the term value over the training lesions (the proportion with the factor for a 0/1 term).
    column_min, column_max : float or None
        Range of the raw column in the training lesions: new lesions outside it are flagged as extrapolation
        for continuous terms. ``None`` when not known (published model).
    """

    term: str
    mean: float | None
    column_min: float | None
    column_max: float | None


@dataclass(frozen=True, slots=True)
class TrainingSummary:
    """What the model was fitted to (counts only: no patient or lesion ids).

    Attributes
    ----------
    data : str
        The study name, or the publication for the published model.
    n_lesions, n_patients, n_events : int or None
        Lesions and patients in the fit and lesions with local failure (``None`` when not known).
    n_left_out : int or None
        Lesions of the study left out of the fit (unknown outcome, a missing value, bridging radiotherapy).
    outcome_definition : str
        The outcome in words.
    working_correlation : float or None
        The GEE exchangeable working correlation (alpha); ``None`` for other models.
    terms : tuple of TermSummary
        One per feature, in model order.
    notes : tuple of str
        Caveats (few clusters, lesions left out and why ...).
    input_sha256 : tuple of (str, str)
        File name and SHA-256 of each input file read.
    """

    data: str
    n_lesions: int | None
    n_patients: int | None
    n_events: int | None
    n_left_out: int | None
    outcome_definition: str
    working_correlation: float | None
    terms: tuple[TermSummary, ...]
    notes: tuple[str, ...] = ()
    input_sha256: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ValidationSummary:
    """Patient-grouped cross-validation of the model (see :mod:`pofa.riskmodel.validate`).

    Attributes
    ----------
    method : str
        The procedure in words.
    folds, seed : int
        Number of folds and the seed of the fold assignment.
    n_lesions, n_patients, n_events : int
        Lesions (with an out-of-fold prediction), patients and local failures behind the metrics.
    auc : float or None
        Area under the ROC curve of the pooled out-of-fold predictions (``None`` when one class is absent).
    calibration_slope : float or None
        Slope of ``logit P(y) = a + b * logit(p)`` (1 is ideal; < 1 means predictions too extreme).
    calibration_intercept : float or None
        Calibration-in-the-large: ``a`` in ``logit P(y) = a + logit(p)`` (slope fixed at 1; 0 is ideal).
    brier : float or None
        Mean squared difference between out-of-fold probability and outcome.
    apparent_auc, apparent_brier : float or None
        The same on the training data with the final model (optimistic).
    notes : tuple of str
        Folds that could not be fitted, lesions without an out-of-fold prediction, caveats.
    """

    method: str
    folds: int
    seed: int
    n_lesions: int
    n_patients: int
    n_events: int
    auc: float | None
    calibration_slope: float | None
    calibration_intercept: float | None
    brier: float | None
    apparent_auc: float | None
    apparent_brier: float | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RiskModel:
    """A lesion-level logistic model of local failure.

    ``logit P(local failure) = coefficients[0] + sum_j coefficients[j] * term_j(lesion)``.

    Attributes
    ----------
    kind : ModelKind
        GEE or Firth fitted to a study, or the published model.
    label : str
        One line saying what the model is (shown with every prediction).
    method : str
        The estimation method in words, with the R function its numbers match.
    covariance_type : str
        What the covariance is (robust sandwich, model-based, assumed ...).
    outcome : str
        Outcome column the model was fitted to (``"local_failure"``).
    features : tuple of Feature
        The terms, in coefficient order (after the intercept).
    coefficients : tuple of float
        Log-odds coefficients, ``"(Intercept)"`` first.
    covariance : tuple of tuple of float
        Covariance of the coefficients (same order).
    intercept_known : bool
        ``False`` only for the published model without a stated baseline risk: the intercept (and its row
        and column of the covariance) is then 0 and only relative odds and ranks can be computed.
    intercept_basis : str
        How the intercept was obtained.
    training : TrainingSummary
    validation : ValidationSummary or None
        ``None`` when the model was not cross-validated (the published model).
    limitations : tuple of str
        What the model cannot do, in words (printed with predictions).
    pofa_version : str
        pofa version that made the model.
    format_version : int
        File-format version (:data:`FORMAT_VERSION`).
    """

    kind: ModelKind
    label: str
    method: str
    covariance_type: str
    outcome: str
    features: tuple[Feature, ...]
    coefficients: tuple[float, ...]
    covariance: tuple[tuple[float, ...], ...]
    intercept_known: bool
    intercept_basis: str
    training: TrainingSummary
    validation: ValidationSummary | None
    limitations: tuple[str, ...]
    pofa_version: str
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        problems = structure_problems(self)
        if problems:
            raise ModelFileError("the risk model is not valid: " + "; ".join(problems))

    # ---- views
    @property
    def terms(self) -> tuple[str, ...]:
        """Term names, without the intercept.

        Returns
        -------
        tuple of str
            Term names, without the intercept.
        """
        return tuple(f.term for f in self.features)

    @property
    def names(self) -> tuple[str, ...]:
        """Coefficient names: ``"(Intercept)"`` then the terms.

        Returns
        -------
        tuple of str
            Coefficient names: ``"(Intercept)"`` then the terms.
        """
        return (INTERCEPT, *self.terms)

    @property
    def columns(self) -> tuple[str, ...]:
        """The lesion columns the model reads (each once, in term order).

        Returns
        -------
        tuple of str
            The lesion columns the model reads (each once, in term order).
        """
        return tuple(dict.fromkeys(f.column for f in self.features))

    @property
    def coef(self) -> np.ndarray:
        """Return the coefficients as a new array (log-odds scale).

        Returns
        -------
        numpy.ndarray
            Intercept then one coefficient per term.
        """
        return np.array(self.coefficients, dtype=float)

    @property
    def cov(self) -> np.ndarray:
        """Covariance as a new array.

        Returns
        -------
        numpy.ndarray
            Covariance of the coefficients as a new array.
        """
        return np.array(self.covariance, dtype=float).reshape(len(self.coefficients), len(self.coefficients))

    @property
    def se(self) -> np.ndarray:
        """Standard errors of the coefficients.

        Returns
        -------
        numpy.ndarray
            Standard errors of the coefficients (square roots of the covariance diagonal).
        """
        return np.sqrt(np.diag(self.cov))

    def odds_ratios(self) -> tuple[tuple[str, float, float, float], ...]:
        """``(term, OR, lower, upper)`` per term: Wald 95% limits from the stored covariance.

        Returns
        -------
        tuple of tuple of (str, float, float, float)
            ``(term, OR, lower, upper)`` per term: Wald 95% limits from the stored covariance.
        """
        z = 1.959963984540054
        b, se = self.coef, self.se
        return tuple(
            (t, math.exp(b[j + 1]), math.exp(b[j + 1] - z * se[j + 1]), math.exp(b[j + 1] + z * se[j + 1]))
            for j, t in enumerate(self.terms)
        )

    def summary(self) -> str:
        """A short text description: label, method, odds ratios, training and validation.

        Returns
        -------
        str
            A short text description: label, method, odds ratios, training and validation.
        """
        lines = [self.label, f"  method: {self.method}", f"  covariance: {self.covariance_type}"]
        lines.append(f"  intercept: {self.intercept_basis}")
        if self.intercept_known:
            b0, se0 = self.coef[0], self.se[0]
            lines.append(
                f"  {INTERCEPT:<24} {b0:8.4f} (SE {se0:.4f}); risk of a reference lesion "
                f"{1.0 / (1.0 + math.exp(-b0)):.3f}"
            )
        for t, o, lo, hi in self.odds_ratios():
            lines.append(f"  {t:<24} OR {o:7.3f} (95% CI {lo:.3f}-{hi:.3f})")
        tr = self.training
        counts = ", ".join(
            f"{v} {k}"
            for k, v in (
                ("lesions", tr.n_lesions),
                ("patients", tr.n_patients),
                ("local failures", tr.n_events),
            )
            if v is not None
        )
        lines.append(f"  training: {tr.data}" + (f" ({counts})" if counts else ""))
        v = self.validation
        if v is not None:
            lines.append(
                f"  validation: {v.method}: AUC {_fmt(v.auc)}, "
                f"calibration slope {_fmt(v.calibration_slope)}, "
                f"calibration intercept {_fmt(v.calibration_intercept)}, Brier {_fmt(v.brier)} "
                f"({v.n_lesions} lesions, {v.n_patients} patients)"
            )
        lines += [f"  note: {n}" for n in (*tr.notes, *(v.notes if v else ()))]
        lines += [f"  limitation: {x}" for x in self.limitations]
        return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def structure_problems(model: RiskModel) -> list[str]:
    """Every structural problem of ``model`` (empty when it is valid).

    Parameters
    ----------
    model : RiskModel
        The model to check (e.g. as read from a file).

    Returns
    -------
    list of str
        Every structural problem of ``model`` (empty when it is valid).
    """
    problems: list[str] = []
    if not isinstance(model.kind, ModelKind):
        problems.append(f"unknown model kind {model.kind!r}")
    if model.format_version != FORMAT_VERSION:
        problems.append(f"format version {model.format_version!r} is not {FORMAT_VERSION}")
    feats = model.features
    if not isinstance(feats, tuple) or not feats or not all(isinstance(f, Feature) for f in feats):
        problems.append("a model needs at least one feature (a tuple of Feature)")
        return problems
    terms = [f.term for f in feats]
    if len(set(terms)) != len(terms):
        problems.append(f"the features repeat a term: {terms}")
    p = 1 + len(feats)
    coef = model.coefficients
    if not isinstance(coef, tuple) or len(coef) != p:
        problems.append(
            f"{p} coefficients expected (intercept + {len(feats)} features), got "
            f"{len(coef) if isinstance(coef, tuple) else type(coef).__name__}"
        )
        return problems
    if not all(isinstance(c, float) for c in coef) or not all(math.isfinite(c) for c in coef):
        problems.append("every coefficient must be a finite float")
    cov = model.covariance
    if (
        not isinstance(cov, tuple)
        or len(cov) != p
        or not all(isinstance(r, tuple) and len(r) == p for r in cov)
    ):
        problems.append(f"the covariance must be a {p} x {p} matrix (one row and column per coefficient)")
        return problems
    if not all(isinstance(x, float) and math.isfinite(x) for r in cov for x in r):
        problems.append("every covariance entry must be a finite float")
        return problems
    c = np.array(cov, dtype=float)
    scale = float(np.max(np.abs(c))) if c.size else 0.0
    asym = np.abs(c - c.T)
    if float(asym.max()) > SYMMETRY_RTOL * scale:
        i, j = np.unravel_index(int(np.argmax(asym)), asym.shape)
        problems.append(
            f"the covariance is not symmetric (entry [{i}][{j}] = {c[i, j]!r} but [{j}][{i}] = {c[j, i]!r})"
        )
        return problems
    if np.any(np.diag(c) < 0):
        problems.append("the covariance has a negative variance on its diagonal")
        return problems
    eig = np.linalg.eigvalsh((c + c.T) / 2.0)
    if eig[0] < -PSD_RTOL * max(float(eig[-1]), 0.0):
        problems.append(f"the covariance is not positive semi-definite (smallest eigenvalue {eig[0]:.3g})")
    if not model.intercept_known and (coef[0] != 0.0 or any(c[0, :] != 0.0)):
        problems.append(
            "a model without a known intercept must have intercept 0 and a zero first row and "
            "column of the covariance"
        )
    tr = model.training
    if not isinstance(tr, TrainingSummary):
        problems.append("the training summary is missing")
    elif tuple(t.term for t in tr.terms) != tuple(terms):
        problems.append(
            f"the training summary lists terms {[t.term for t in tr.terms]} but the model has {terms}"
        )
    if model.validation is not None and not isinstance(model.validation, ValidationSummary):
        problems.append("the validation summary has the wrong type")
    return problems


__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Feature",
    "ModelKind",
    "RiskModel",
    "TermSummary",
    "TrainingSummary",
    "ValidationSummary",
    "structure_problems",
]
