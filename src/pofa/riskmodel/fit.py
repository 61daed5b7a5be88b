"""Fit a lesion-level local-failure risk model to a study's lesions.

Two methods, both on the same design (:func:`pofa.stats.factors.build_design`):

* ``"gee"`` (default): GEE, logit link, exchangeable working correlation, patients as clusters
  (:func:`pofa.stats.gee.gee_exchangeable_logit`, which matches R ``geepack::geeglm``). The covariance is the
  robust sandwich (``geeglm(...)$geese$vbeta``), or with ``small_sample=True`` the Mancl-DeRouen bias-reduced
  sandwich. GEE coefficients are population-averaged: they describe the risk of a lesion of a patient drawn
  from the cohort, which is what a risk score for a new patient needs.
* ``"firth"``: Firth-penalized logistic regression (firthmodels; the estimates of R ``logistf`` and
  ``brglm2`` ``type = "AS_mean"``), for small cohorts or separated data. Lesions are treated as independent;
  the covariance is the inverse Fisher information ``(X' W X)^-1`` at the estimate (``vcov`` of logistf and
  brglm2), which ignores the clustering of lesions within patients.

A GEE design with (quasi-)complete separation is refused (the estimates would be infinite) with the advice to
use ``"firth"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit

from pofa import __version__
from pofa.errors import EstimationError, SettingsError
from pofa.riskmodel.model import (
    Feature,
    ModelKind,
    RiskModel,
    TermSummary,
    TrainingSummary,
)
from pofa.riskmodel.terms import term_values
from pofa.stats.factors import (
    DEFAULT_FACTORS,
    FactorKind,
    LesionDesign,
    RiskFactor,
    build_design,
    estimability_problems,
    numeric_column,
    parse_factor,
)
from pofa.stats.firth import firth_estimates
from pofa.stats.gee import GEE_MD_METHOD, GEE_METHOD, few_clusters_note, gee_exchangeable_logit
from pofa.stats.separation import check_separation

FIT_METHODS = ("gee", "firth")

#: The column of the lesion table (after :func:`pofa.classify.classify`) that marks bridging radiotherapy.
IRRADIATED_COLUMN = "bridging_rt"

OUTCOME_DEFINITION = (
    "local failure of the baseline lesion at the patient's first progression (pofa.classify: 1 = the "
    "lesion failed, 0 = it did not fail or the patient did not progress); lesions with an unknown outcome "
    "are left out"
)

FIRTH_RISK_METHOD = (
    "Firth-penalized logistic regression, lesions treated as independent (firthmodels; estimates as R "
    'logistf / brglm2 type = "AS_mean")'
)
GEE_COVARIANCE = "robust sandwich (geepack::geeglm $geese$vbeta), no small-sample correction"
GEE_MD_COVARIANCE = "Mancl-DeRouen bias-reduced sandwich (small-sample correction)"
FIRTH_COVARIANCE = (
    "model-based: inverse Fisher information (X'WX)^-1 at the Firth estimate (vcov of logistf / brglm2); "
    "ignores the clustering of lesions within patients"
)


@dataclass(frozen=True, slots=True)
class TrainingData:
    """The lesions a model is fitted to, and why the others were left out.

    Attributes
    ----------
    design : LesionDesign
        Outcome, design matrix and patient ids of the fitted lesions.
    factors : tuple of RiskFactor
        The model's terms.
    outcome, cluster : str
        Outcome and patient-id columns.
    n_left_out : int
        Lesions of the input left out (bridging radiotherapy, unknown outcome, a missing value).
    notes : tuple of str
        One sentence per reason lesions were left out.
    """

    design: LesionDesign
    factors: tuple[RiskFactor, ...]
    outcome: str
    cluster: str
    n_left_out: int
    notes: tuple[str, ...]
    _lesions: pd.DataFrame = field(repr=False)

    @property
    def lesions(self) -> pd.DataFrame:
        """The fitted lesions (input rows, input index), as a copy.

        Returns
        -------
        pandas.DataFrame
            The fitted lesions (input rows, input index), as a copy.
        """
        return self._lesions.copy()


def _factors(features: Sequence[RiskFactor | str]) -> tuple[RiskFactor, ...]:
    out: list[RiskFactor] = []
    for f in features:
        f = parse_factor(f) if isinstance(f, str) else f
        if not isinstance(f, RiskFactor):
            raise SettingsError(
                f"Features must be RiskFactor objects or text such as 'diameter_cm>=5', got {f!r}."
            )
        out.append(f)
    if not out:
        raise SettingsError("Give at least one feature (e.g. diameter_cm>=5).")
    names = [f.name for f in out]
    if len(set(names)) != len(names):
        raise SettingsError(f"The features repeat a term: {names}.")
    return tuple(out)


def prepare_training(
    lesions: pd.DataFrame,
    features: Sequence[RiskFactor | str] = DEFAULT_FACTORS,
    *,
    outcome: str = "local_failure",
    cluster: str = "patient_id",
    exclude_irradiated: bool = True,
) -> TrainingData:
    """Select the lesions to fit and build their design.

    Parameters
    ----------
    lesions : DataFrame
        One row per baseline lesion with the outcome (e.g. ``Classification.lesions``); not modified.
    features : sequence of RiskFactor or str
        Model terms (text read by :func:`~pofa.stats.factors.parse_factor`).
    outcome, cluster : str
        Outcome (0/1) and patient-id columns.
    exclude_irradiated : bool
        Leave out lesions with ``bridging_rt`` true: radiotherapy changes a lesion's risk, and the model is
        meant for the choice of which untreated lesions to irradiate.

    Returns
    -------
    TrainingData
        The selected lesions, their design and the counts of lesions left out.

    Raises
    ------
    SettingsError
        A column is missing or holds text, or the features repeat a term.
    """
    if not isinstance(lesions, pd.DataFrame):
        raise SettingsError("The lesions must be a pandas DataFrame with one row per lesion.")
    factors = _factors(features)
    frame = lesions.copy()
    notes: list[str] = []
    n_rt = 0
    if exclude_irradiated and IRRADIATED_COLUMN in frame.columns:
        rt = numeric_column(frame[IRRADIATED_COLUMN], f"Column {IRRADIATED_COLUMN!r}")
        irradiated = (rt.fillna(0.0) != 0.0).to_numpy()
        n_rt = int(irradiated.sum())
        if n_rt:
            frame = frame.loc[~irradiated]
            notes.append(
                f"{n_rt} lesion{'s' if n_rt != 1 else ''} with bridging radiotherapy left out "
                "(the model is for unirradiated lesions)"
            )
    used = list(dict.fromkeys([outcome, cluster, *(f.column for f in factors)]))
    missing_cols = [c for c in used if c not in frame.columns]
    if missing_cols:
        raise SettingsError(
            f"The lesions table has no column {', '.join(map(repr, missing_cols))}. "
            f"Columns present: {', '.join(map(str, frame.columns))}."
        )
    na = frame[used].isna().any(axis=1).to_numpy()
    n_na = int(na.sum())
    if n_na:
        cols = [c for c in used if frame.loc[na, c].isna().any()]
        what = {outcome: f"{outcome} (outcome unknown)"}
        notes.append(
            f"{n_na} lesion{'s' if n_na != 1 else ''} with a missing value "
            f"({', '.join(what.get(c, c) for c in cols)}) left out"
        )
        frame = frame.loc[~na]
    design = build_design(frame, factors, outcome=outcome, cluster=cluster)
    assert design.n_dropped == 0
    return TrainingData(design, factors, outcome, cluster, n_rt + n_na, tuple(notes), frame)


@dataclass(frozen=True, slots=True)
class _Estimates:
    coef: np.ndarray
    cov: np.ndarray
    alpha: float | None
    method: str
    covariance_type: str
    notes: tuple[str, ...]


def _fit_gee(design: LesionDesign, small_sample: bool) -> _Estimates:
    fit = gee_exchangeable_logit(design.y, design.X, design.groups, bias_reduced=small_sample)
    if not fit.converged:
        raise EstimationError(
            f"the GEE model cannot be estimated: {fit.message}",
            advice="try {method} firth, or fewer or coarser features",
        )
    cov = fit.cov_md if small_sample else fit.cov
    assert cov is not None
    notes = [n for n in (few_clusters_note(fit.n_clusters, small_sample),) if n]
    if fit.n_clusters == fit.n_obs:
        notes.append("every patient has one lesion: GEE equals logistic regression with robust (HC0) SEs")
    return _Estimates(
        coef=np.asarray(fit.params, dtype=float),
        cov=np.asarray(cov, dtype=float),
        alpha=float(fit.alpha),
        method=GEE_MD_METHOD if small_sample else GEE_METHOD,
        covariance_type=GEE_MD_COVARIANCE if small_sample else GEE_COVARIANCE,
        notes=tuple(notes),
    )


def _fit_firth(design: LesionDesign) -> _Estimates:
    beta, cov = firth_estimates(design)
    return _Estimates(
        coef=beta,
        cov=cov,
        alpha=None,
        method=FIRTH_RISK_METHOD,
        covariance_type=FIRTH_COVARIANCE,
        notes=(
            "Firth treats lesions as independent: the 95% CIs of predictions do not account for the "
            "correlation of lesions within a patient and are too narrow when it is strong",
        ),
    )


def estimate(design: LesionDesign, method: str = "gee", *, small_sample: bool = False) -> _Estimates:
    """Estimate the coefficients and covariance of a design by ``method`` (``"gee"`` or ``"firth"``).

    Parameters
    ----------
    design : LesionDesign
        Lesion-level design (outcome, terms, clusters).
    method : str, optional
        ``"gee"`` (R ``geepack::geeglm``, exchangeable) or ``"firth"`` (R ``logistf::logistf``).
    small_sample : bool, optional
        GEE covariance by the Mancl-DeRouen bias-reduced sandwich.

    Returns
    -------
    _Estimates
        Coefficients, covariance and notes of the fit.

    Raises
    ------
    SettingsError
        Unknown method.
    EstimationError
        No events, a constant or collinear term, separation (GEE), or no convergence; the message says why.
    """
    if method not in FIT_METHODS:
        raise SettingsError(f"Unknown model method {method!r}; choose 'gee' or 'firth'.")
    problems = estimability_problems(design)
    if problems:
        raise EstimationError("the model cannot be estimated: " + "; ".join(problems) + ".")
    if method == "firth":
        return _fit_firth(design)
    sep = check_separation(design.X, design.y, design.columns)
    if sep.separated:
        raise EstimationError(
            f"{sep.note()}: the GEE estimates would be infinite",
            advice="use {method} firth (Firth-penalized logistic regression gives finite estimates), or drop "
                   "the separating feature",
        )
    return _fit_gee(design, small_sample)


def _term_summaries(data: TrainingData, features: tuple[Feature, ...]) -> tuple[TermSummary, ...]:
    raw = term_values(data._lesions, features).raw
    out = []
    for j, f in enumerate(features, start=1):
        col = raw[f.column].to_numpy(dtype=float)
        out.append(
            TermSummary(
                term=f.term,
                mean=float(np.mean(data.design.X[:, j])),
                column_min=float(np.min(col)),
                column_max=float(np.max(col)),
            )
        )
    return tuple(out)


def model_from_training(
    data: TrainingData,
    *,
    method: str = "gee",
    small_sample: bool = False,
    data_label: str = "",
    input_sha256: Sequence[tuple[str, str]] = (),
    extra_notes: Sequence[str] = (),
    n_left_out_before: int = 0,
) -> RiskModel:
    """Fit the risk model to prepared training data (see :func:`fit_risk_model`).

    Parameters
    ----------
    data : TrainingData
        Prepared training data (:func:`prepare_training`).
    method : str, optional
        ``"gee"`` or ``"firth"``, as :func:`fit_risk_model`.
    small_sample : bool, optional
        GEE small-sample correction, as :func:`fit_risk_model`.
    data_label : str, optional
        Label of the training data, kept in the model.
    input_sha256 : sequence of tuple of (str, str), optional
        ``(file name, SHA-256)`` of each input file, kept in the model.
    extra_notes : sequence of str, optional
        Further notes kept in the model.
    n_left_out_before : int, optional
        Lesions left out before ``data`` was prepared (counted in the training summary).

    Returns
    -------
    RiskModel
        The fitted model with its training summary.
    """
    est = estimate(data.design, method, small_sample=small_sample)
    features = tuple(Feature(f, sd) for f, sd in zip(data.factors, data.design.sd, strict=True))
    d = data.design
    training = TrainingSummary(
        data=data_label or "the study's lesions",
        n_lesions=d.n_lesions,
        n_patients=d.n_patients,
        n_events=int(d.y.sum()),
        n_left_out=int(data.n_left_out + n_left_out_before),
        outcome_definition=OUTCOME_DEFINITION,
        working_correlation=est.alpha,
        terms=_term_summaries(data, features),
        notes=tuple(dict.fromkeys((*extra_notes, *data.notes, *est.notes))),
        input_sha256=tuple((str(a), str(b)) for a, b in input_sha256),
    )
    kind = ModelKind.GEE if method == "gee" else ModelKind.FIRTH
    label = (
        f"{'GEE' if kind is ModelKind.GEE else 'Firth-penalized'} lesion-level model of local failure "
        f"fitted to {training.data} ({d.n_lesions} lesions, {d.n_patients} patients, "
        f"{training.n_events} local failures)"
    )
    cov = est.cov
    cov = (cov + cov.T) / 2.0
    return RiskModel(
        kind=kind,
        label=label,
        method=est.method,
        covariance_type=est.covariance_type,
        outcome=data.outcome,
        features=features,
        coefficients=tuple(float(v) for v in est.coef),
        covariance=tuple(tuple(float(v) for v in row) for row in cov),
        intercept_known=True,
        intercept_basis="estimated from the training lesions",
        training=training,
        validation=None,
        limitations=_limitations(kind, d, features),
        pofa_version=__version__,
    )


def _limitations(kind: ModelKind, design: LesionDesign, features: tuple[Feature, ...]) -> tuple[str, ...]:
    out = [
        "Fitted to one cohort: predictions for patients unlike the training cohort (other CAR T products, "
        "imaging protocols, SUV calibration or bridging practice) may be off; check the cross-validated "
        "calibration and recalibrate on local data when possible.",
        "The outcome is local failure at first progression; it does not include later failures, and lesions "
        "of patients who did not progress count as not failed.",
    ]
    if kind is ModelKind.GEE:
        out.append(
            "GEE gives population-averaged risks (the average over patients with the same lesion "
            "features), not the risk conditional on a patient's other lesions."
        )
    else:
        out.append(
            "Firth-penalized logistic regression treats lesions as independent; the covariance and "
            "the CIs of predictions ignore the correlation of a patient's lesions."
        )
    if any(f.kind is not FactorKind.THRESHOLD for f in features):
        out.append(
            "Continuous terms are linear on the log-odds scale; values outside the training range are "
            "extrapolation (flagged in the scores)."
        )
    if design.n_patients < 50:
        out.append(f"Only {design.n_patients} patients: the coefficients and their covariance are imprecise.")
    return tuple(out)


def fit_risk_model(
    lesions: pd.DataFrame,
    features: Sequence[RiskFactor | str] = DEFAULT_FACTORS,
    *,
    method: str = "gee",
    outcome: str = "local_failure",
    cluster: str = "patient_id",
    small_sample: bool = False,
    exclude_irradiated: bool = True,
    data_label: str = "",
    input_sha256: Sequence[tuple[str, str]] = (),
) -> RiskModel:
    """Fit a lesion-level local-failure model.

    No cross-validation: see :func:`pofa.riskmodel.validate.fit_validated_model` for that.

    Parameters
    ----------
    lesions : DataFrame
        One row per baseline lesion with the outcome column (``Classification.lesions``); not modified.
    features : sequence of RiskFactor or str
        Model terms, e.g. ``("diameter_cm>=5", "suvmax>=10", "extranodal")`` (the default).
    method : {"gee", "firth"}
        GEE with patients as clusters (R ``geepack::geeglm``, exchangeable) or Firth-penalized logistic
        regression (R ``logistf``).
    outcome, cluster : str
        Outcome (0/1) and patient-id columns.
    small_sample : bool
        GEE covariance by the Mancl-DeRouen bias-reduced sandwich (advised below ~50 patients).
    exclude_irradiated : bool
        Leave out lesions with ``bridging_rt`` true.
    data_label : str
        Name of the training data (the study name) for the model's label.
    input_sha256 : sequence of (str, str)
        File names and hashes of the inputs, kept in the training summary.

    Returns
    -------
    RiskModel
        ``validation`` is ``None``.

    Raises
    ------
    SettingsError
        Bad features or columns.
    EstimationError
        The model cannot be estimated (no events, constant term, separation with GEE, no convergence).
    """
    data = prepare_training(
        lesions, features, outcome=outcome, cluster=cluster, exclude_irradiated=exclude_irradiated
    )
    return model_from_training(
        data, method=method, small_sample=small_sample, data_label=data_label, input_sha256=input_sha256
    )


def fitted_probabilities(model: RiskModel, data: TrainingData) -> np.ndarray:
    """``expit(X beta)`` for the training lesions (the GEE fitted values, ``fitted(geeglm(...))``).

    Parameters
    ----------
    model : RiskModel
        The fitted model.
    data : TrainingData
        Its training data.

    Returns
    -------
    numpy.ndarray
        ``expit(X beta)`` for the training lesions (the GEE fitted values, ``fitted(geeglm(...))``).
    """
    fitted: np.ndarray = expit(data.design.X @ model.coef)
    return fitted


__all__ = [
    "FIT_METHODS",
    "OUTCOME_DEFINITION",
    "TrainingData",
    "estimate",
    "firth_estimates",
    "fit_risk_model",
    "fitted_probabilities",
    "model_from_training",
    "prepare_training",
]
