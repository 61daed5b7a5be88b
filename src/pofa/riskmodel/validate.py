"""Patient-grouped cross-validation of a risk model: AUC, calibration slope and intercept, Brier score, plot.

**Folds.** Patients, never lesions, are assigned to folds, so a patient's lesions are all in the training part
or all in the test part of every fold. The assignment depends only on the patient ids and the seed (not on
row order or the numpy version): patients are ordered by ``SHA-256(seed, patient id)`` within two strata
(patients with and without a local failure) and dealt to folds in turn, so every fold gets about the same
number of patients and of patients with a failure.

**Metrics** of the pooled out-of-fold predictions (every lesion is predicted by the model fitted without its
patient):

* AUC: the Mann-Whitney form, ``P(p_event > p_non-event) + 0.5 P(tie)`` (R ``wilcox.test`` statistic /
  ``(n1 n0)``; pROC ``auc``; scikit-learn ``roc_auc_score``).
* Calibration slope ``b`` of ``logit P(y = 1) = a + b logit(p)`` (R ``glm(y ~ qlogis(p), binomial)``):
  1 is ideal, below 1 the predictions are too extreme (overfitting).
* Calibration intercept (calibration-in-the-large) ``a`` of ``logit P(y = 1) = a + logit(p)`` (R
  ``glm(y ~ offset(qlogis(p)), binomial)``): 0 is ideal, above 0 the risks are underestimated on average.
* Brier score ``mean((p - y)^2)`` (scikit-learn ``brier_score_loss``).

Lesions of one patient are correlated, so these metrics treat lesions as the units; they describe lesion-level
discrimination and calibration, and no CI is attached to them.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.special import expit, logit
from scipy.stats import rankdata

from pofa.atomic import write_bytes
from pofa.errors import EstimationError, SettingsError
from pofa.riskmodel.fit import TrainingData, model_from_training, prepare_training
from pofa.riskmodel.model import RiskModel, ValidationSummary
from pofa.riskmodel.predict import linear_predictor
from pofa.stats.factors import DEFAULT_FACTORS, RiskFactor

if TYPE_CHECKING:
    from matplotlib.axes import Axes

DEFAULT_FOLDS = 5
DEFAULT_SEED = 2021


# ---------------------------------------------------------------------------------------------------------
# Folds


def _patient_key(seed: int, patient: str) -> bytes:
    return hashlib.sha256(f"{int(seed)}\x00{patient}".encode()).digest()


def assign_folds(
    groups: Sequence[object] | np.ndarray, y: Sequence[float] | np.ndarray | None, folds: int, seed: int
) -> np.ndarray:
    """The test fold (0 .. folds-1) of each row, assigning whole patients to folds.

    Parameters
    ----------
    groups : sequence
        Patient id of each row (compared as text).
    y : sequence of 0/1, optional
        Outcome of each row; when given, patients with and without an event are dealt separately so that
        every fold has about the same number of patients with an event.
    folds : int
        Number of folds, from 2 to the number of patients.
    seed : int
        Seed of the assignment (same ids and seed, same folds, on any machine).

    Returns
    -------
    numpy.ndarray
        The test fold (0 .. folds-1) of each row.

    Raises
    ------
    SettingsError
        Fewer than 2 folds, or more folds than patients.
    """
    ids = np.asarray([str(g) for g in groups], dtype=object)
    patients = list(dict.fromkeys(ids))
    if isinstance(folds, bool) or not isinstance(folds, int | np.integer) or folds < 2:
        raise SettingsError(f"Cross-validation needs at least 2 folds, got {folds!r}.")
    if folds > len(patients):
        raise SettingsError(
            f"{folds} folds need at least {folds} patients; the data have {len(patients)}",
            advice="use fewer folds ({folds})",
        )
    if y is not None:
        yy = np.asarray(y, dtype=float)
        with_event = set(ids[yy == 1.0])
    else:
        with_event = set()
    ordered = sorted(patients, key=lambda pid: (pid not in with_event, _patient_key(seed, pid)))
    fold_of = {pid: i % int(folds) for i, pid in enumerate(ordered)}
    return np.array([fold_of[g] for g in ids], dtype=int)


# ---------------------------------------------------------------------------------------------------------
# Metrics


def _check_yp(
    y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    yy = np.asarray(y, dtype=float)
    pp = np.asarray(p, dtype=float)
    if yy.shape != pp.shape or yy.ndim != 1:
        raise SettingsError(
            f"outcomes and probabilities must be two arrays of the same length, got {yy.shape} and {pp.shape}"
        )
    if not np.all(np.isin(yy, (0.0, 1.0))):
        raise SettingsError("outcomes must be 0 or 1")
    if not np.all((pp >= 0.0) & (pp <= 1.0)):
        raise SettingsError("probabilities must lie in [0, 1] (no missing values)")
    return yy, pp


def roc_auc(y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray) -> float | None:
    """Area under the ROC curve, ``P(p_1 > p_0) + 0.5 P(p_1 = p_0)`` (Mann-Whitney with mid-ranks).

    Equals scikit-learn ``roc_auc_score`` and R ``wilcox.test(p[y == 1], p[y == 0])$statistic / (n1 * n0)``.
    ``None`` when only one outcome class is present.

    Parameters
    ----------
    y : sequence of float or numpy.ndarray
        Outcome (0/1) of each row.
    p : sequence of float or numpy.ndarray
        Predicted probability of each row.

    Returns
    -------
    float or None
        The AUC, or ``None`` when only one outcome class is present.
    """
    yy, pp = _check_yp(y, p)
    n1 = int(yy.sum())
    n0 = yy.shape[0] - n1
    if n1 == 0 or n0 == 0:
        return None
    r = rankdata(pp)  # mid-ranks for ties
    return float((r[yy == 1.0].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def brier_score(y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray) -> float | None:
    """Mean squared difference ``mean((p - y)^2)`` (R ``mean((p - y)^2)``; scikit-learn ``brier_score_loss``).

    Parameters
    ----------
    y : sequence of float or numpy.ndarray
        Outcome (0/1) of each row.
    p : sequence of float or numpy.ndarray
        Predicted probability of each row.

    Returns
    -------
    float or None
        The Brier score, or ``None`` when there are no rows.
    """
    yy, pp = _check_yp(y, p)
    if yy.shape[0] == 0:
        return None
    return float(np.mean((pp - yy) ** 2))


@dataclass(frozen=True, slots=True)
class CalibrationFit:
    """Logistic recalibration of predicted probabilities.

    Attributes
    ----------
    slope : float or None
        ``b`` of ``logit P(y) = a + b logit(p)`` (R ``glm(y ~ qlogis(p), binomial)``).
    slope_model_intercept : float or None
        ``a`` of that same model (draws the recalibration curve).
    intercept : float or None
        Calibration-in-the-large ``a`` of ``logit P(y) = a + logit(p)`` (R
        ``glm(y ~ offset(qlogis(p)), binomial)``).
    notes : tuple of str
        Why a value is missing.
    method : str
    """

    slope: float | None
    slope_model_intercept: float | None
    intercept: float | None
    notes: tuple[str, ...] = ()
    method: str = (
        "logistic recalibration: slope from glm(y ~ logit(p)), calibration-in-the-large intercept "
        "from glm(y ~ offset(logit(p))) (R glm, binomial)"
    )


def _glm(y: np.ndarray, X: np.ndarray, offset: np.ndarray | None) -> np.ndarray | None:
    model = sm.GLM(y, X, family=sm.families.Binomial(), offset=offset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = model.fit(method="IRLS", maxiter=100, tol=1e-12)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            return None
    params = np.asarray(res.params, dtype=float)
    if not (res.converged and np.all(np.isfinite(params)) and np.max(np.abs(params)) < 1e6):
        return None
    return params


def calibration(y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray) -> CalibrationFit:
    """Calibration slope and intercept of probabilities ``p`` for outcomes ``y``.

    Matches R ``glm(y ~ qlogis(p), family = binomial)`` (slope) and ``glm(y ~ offset(qlogis(p)), family =
    binomial)`` (intercept); statsmodels ``GLM`` is used. Values are ``None`` (with a note) when a class is
    absent, a probability is exactly 0 or 1, or the logistic fit does not converge (separation).

    Parameters
    ----------
    y : sequence of float or numpy.ndarray
        Outcome (0/1) of each row.
    p : sequence of float or numpy.ndarray
        Predicted probability of each row, in (0, 1).

    Returns
    -------
    CalibrationFit
        Slope and intercept (with their notes) of the logistic recalibration.
    """
    yy, pp = _check_yp(y, p)
    n1 = int(yy.sum())
    if n1 == 0 or n1 == yy.shape[0]:
        return CalibrationFit(None, None, None, ("only one outcome class: calibration not estimable",))
    if np.any((pp <= 0.0) | (pp >= 1.0)):
        return CalibrationFit(None, None, None, ("a probability of exactly 0 or 1: its logit is infinite",))
    lp = logit(pp)
    notes: list[str] = []
    slope_fit = _glm(yy, np.column_stack([np.ones_like(lp), lp]), None) if np.ptp(lp) > 0 else None
    if slope_fit is None:
        notes.append(
            "calibration slope not estimable (all predictions equal, or the logistic fit did not converge)"
        )
    citl = _glm(yy, np.ones((lp.shape[0], 1)), lp)
    if citl is None:
        notes.append("calibration intercept not estimable (the logistic fit did not converge)")
    return CalibrationFit(
        slope=None if slope_fit is None else float(slope_fit[1]),
        slope_model_intercept=None if slope_fit is None else float(slope_fit[0]),
        intercept=None if citl is None else float(citl[0]),
        notes=tuple(notes),
    )


# ---------------------------------------------------------------------------------------------------------
# Cross-validation


@dataclass(frozen=True, slots=True)
class CrossValidation:
    """Out-of-fold predictions and their metrics.

    Attributes
    ----------
    summary : ValidationSummary
        The metrics (stored in the model file).
    calibration : CalibrationFit
        The recalibration fit of the out-of-fold predictions (for the plot).
    """

    summary: ValidationSummary
    calibration: CalibrationFit
    _table: pd.DataFrame = field(repr=False)

    @property
    def table(self) -> pd.DataFrame:
        """Out-of-fold predictions as a table.

        Returns
        -------
        pandas.DataFrame
            One row per fitted lesion: ``patient_id``, ``lesion_id`` (when known), ``fold`` (1-based),
            ``outcome`` and ``oof_probability`` (blank when the fold's model could not be fitted).
        """
        return self._table.copy()

    @property
    def y(self) -> np.ndarray:
        """Outcome of each fitted lesion.

        Returns
        -------
        numpy.ndarray
            0/1 per lesion, in table order.
        """
        return self._table["outcome"].to_numpy(dtype=float)

    @property
    def oof(self) -> np.ndarray:
        """Out-of-fold predicted probability of each fitted lesion.

        Returns
        -------
        numpy.ndarray
            Probability per lesion, ``nan`` when the fold's model could not be fitted.
        """
        return self._table["oof_probability"].to_numpy(dtype=float)


def _method_text(folds: int, seed: int) -> str:
    return (
        f"patient-grouped {folds}-fold cross-validation (whole patients assigned to folds, stratified by "
        f"whether the patient has a local failure; seed {seed}); pooled out-of-fold predictions: AUC "
        "(Mann-Whitney), calibration slope and calibration-in-the-large intercept (logistic recalibration, "
        "R glm), Brier score; lesions treated as the units"
    )


def cross_validate(
    data: TrainingData,
    *,
    method: str = "gee",
    small_sample: bool = False,
    folds: int = DEFAULT_FOLDS,
    seed: int = DEFAULT_SEED,
    final_model: RiskModel | None = None,
) -> CrossValidation:
    """Patient-grouped cross-validation of the model that :func:`model_from_training` fits to ``data``.

    In each fold the model is fitted (same features, method and options; a per-SD term uses the training
    part's SD) to the lesions of the patients outside the fold and predicts the lesions of the patients in it.

    Parameters
    ----------
    data : TrainingData
        From :func:`pofa.riskmodel.fit.prepare_training`.
    method : {"gee", "firth"}
    small_sample : bool
        GEE Mancl-DeRouen covariance (does not change predictions).
    folds, seed : int
        See :func:`assign_folds`.
    final_model : RiskModel, optional
        The model fitted to all of ``data``, for the apparent (training) AUC and Brier score.

    Returns
    -------
    CrossValidation
        A fold whose training part cannot be fitted (e.g. separation) leaves its lesions without an
        out-of-fold prediction; a note says so and the metrics use the other lesions.
    """
    d = data.design
    fold = assign_folds(d.groups, d.y, folds, seed)
    frame = data.lesions
    n = d.n_lesions
    oof = np.full(n, np.nan)
    notes: list[str] = []
    for k in range(folds):
        test = fold == k
        try:
            part = prepare_training(
                frame.iloc[~test],
                data.factors,
                outcome=data.outcome,
                cluster=data.cluster,
                exclude_irradiated=False,
            )
            m = model_from_training(part, method=method, small_sample=small_sample)
        except EstimationError as exc:
            notes.append(
                f"fold {k + 1}: the model could not be fitted without its patients ({exc}); its "
                f"{int(test.sum())} lesions have no out-of-fold prediction"
            )
            continue
        lp = linear_predictor(m, frame.iloc[test])
        oof[test] = expit(lp.eta)
    ok = np.isfinite(oof)
    y_ok, p_ok = d.y[ok], oof[ok]
    cal = (
        calibration(y_ok, p_ok)
        if ok.any()
        else CalibrationFit(None, None, None, ("no out-of-fold predictions",))
    )
    notes += list(cal.notes)
    if ok.any() and roc_auc(y_ok, p_ok) is None:
        notes.append("the predicted lesions have only one outcome class: AUC not defined")
    apparent_auc = apparent_brier = None
    if final_model is not None:
        p_app = expit(d.X @ final_model.coef)
        apparent_auc, apparent_brier = roc_auc(d.y, p_app), brier_score(d.y, p_app)
    summary = ValidationSummary(
        method=_method_text(folds, seed),
        folds=int(folds),
        seed=int(seed),
        n_lesions=int(ok.sum()),
        n_patients=int(np.unique(d.groups[ok]).shape[0]),
        n_events=int(y_ok.sum()),
        auc=roc_auc(y_ok, p_ok) if ok.any() else None,
        calibration_slope=cal.slope,
        calibration_intercept=cal.intercept,
        brier=brier_score(y_ok, p_ok) if ok.any() else None,
        apparent_auc=apparent_auc,
        apparent_brier=apparent_brier,
        notes=tuple(notes),
    )
    table = pd.DataFrame({"patient_id": d.groups.astype(object)})
    if "lesion_id" in frame.columns:
        table["lesion_id"] = frame["lesion_id"].astype("string").to_numpy(dtype=object)
    table["fold"] = fold + 1
    table["outcome"] = d.y.astype(int)
    table["oof_probability"] = oof
    return CrossValidation(summary=summary, calibration=cal, _table=table)


@dataclass(frozen=True, slots=True)
class ValidatedFit:
    """A fitted model with its cross-validation.

    Attributes
    ----------
    model : RiskModel
        Fitted to all training lesions; ``model.validation`` is ``cross_validation.summary``.
    cross_validation : CrossValidation
    training : TrainingData
    """

    model: RiskModel
    cross_validation: CrossValidation
    training: TrainingData


def fit_validated_model(
    lesions: pd.DataFrame,
    features: Sequence[RiskFactor | str] = DEFAULT_FACTORS,
    *,
    method: str = "gee",
    outcome: str = "local_failure",
    cluster: str = "patient_id",
    small_sample: bool = False,
    exclude_irradiated: bool = True,
    folds: int = DEFAULT_FOLDS,
    seed: int = DEFAULT_SEED,
    data_label: str = "",
    input_sha256: Sequence[tuple[str, str]] = (),
) -> ValidatedFit:
    """Fit the risk model to all lesions and cross-validate it.

    Parameters
    ----------
    lesions : DataFrame
        One row per baseline lesion with the outcome column (``Classification.lesions``); not modified.
    features : sequence of RiskFactor or str
        Model terms, as :func:`~pofa.riskmodel.fit.fit_risk_model`.
    method : {"gee", "firth"}
        GEE (R ``geepack::geeglm``, exchangeable) or Firth-penalized logistic regression (R ``logistf``).
    outcome, cluster : str
        Outcome (0/1) and patient-id columns.
    small_sample : bool
        GEE covariance by the Mancl-DeRouen bias-reduced sandwich.
    exclude_irradiated : bool
        Leave out lesions with ``bridging_rt`` true.
    folds : int
        Number of cross-validation folds (whole patients per fold; see :func:`cross_validate`).
    seed : int
        Seed of the fold assignment.
    data_label : str
        Name of the training data (the study name) for the model's label.
    input_sha256 : sequence of (str, str)
        File names and hashes of the inputs, kept in the training summary.

    Returns
    -------
    ValidatedFit
        The model fitted to all lesions (with its validation summary) and the cross-validation.

    Raises
    ------
    SettingsError, EstimationError
        As :func:`~pofa.riskmodel.fit.fit_risk_model`; also too many folds for the patients.
    """
    data = prepare_training(
        lesions, features, outcome=outcome, cluster=cluster, exclude_irradiated=exclude_irradiated
    )
    model = model_from_training(
        data, method=method, small_sample=small_sample, data_label=data_label, input_sha256=input_sha256
    )
    cv = cross_validate(
        data, method=method, small_sample=small_sample, folds=folds, seed=seed, final_model=model
    )
    return ValidatedFit(model=replace(model, validation=cv.summary), cross_validation=cv, training=data)


# ---------------------------------------------------------------------------------------------------------
# Calibration plot


def _wilson(k: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wilson 95% interval of k / n (statsmodels ``proportion_confint(method="wilson")``)."""
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    return np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)


def calibration_bins(
    y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray, bins: int = 10
) -> pd.DataFrame:
    """Observed vs predicted by groups of predicted risk (quantile groups; ties kept together).

    Returns one row per group: ``n``, ``events``, ``mean_predicted``, ``observed``, ``ci_low``, ``ci_high``
    (Wilson 95% interval of the observed proportion, R ``prop.test(events, n, correct = FALSE)$conf.int``).

    Parameters
    ----------
    y : sequence of float or numpy.ndarray
        Outcome (0/1) of each row.
    p : sequence of float or numpy.ndarray
        Predicted probability of each row.
    bins : int, optional
        Number of quantile groups.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``n``, ``events``, ``mean_predicted``, ``observed``, ``ci_low``, ``ci_high``
        (Wilson 95% interval of the observed proportion).
    """
    yy, pp = _check_yp(y, p)
    if yy.shape[0] == 0:
        return pd.DataFrame(columns=["n", "events", "mean_predicted", "observed", "ci_low", "ci_high"])
    q = min(int(bins), int(np.unique(pp).shape[0]))
    groups = (
        pd.qcut(pd.Series(pp), q=max(q, 1), duplicates="drop", labels=False)
        if q > 1
        else pd.Series(np.zeros(pp.shape[0], dtype=int))
    )
    df = pd.DataFrame({"g": groups.to_numpy(), "y": yy, "p": pp})
    agg = df.groupby("g", sort=True).agg(n=("y", "size"), events=("y", "sum"), mean_predicted=("p", "mean"))
    agg["observed"] = agg["events"] / agg["n"]
    lo, hi = _wilson(agg["events"].to_numpy(), agg["n"].to_numpy())
    agg["ci_low"], agg["ci_high"] = lo, hi
    agg["events"] = agg["events"].astype(int)
    return agg.reset_index(drop=True)


def plot_calibration(
    ax: Axes,
    y: Sequence[float] | np.ndarray,
    p: Sequence[float] | np.ndarray,
    *,
    bins: int = 10,
    summary: ValidationSummary | None = None,
    fit: CalibrationFit | None = None,
    title: str | None = None,
) -> Axes:
    """Draw a calibration plot on ``ax`` (a matplotlib Axes) and return it; never shows a window.

    Grouped observed proportions (quantile groups of predicted risk, Wilson 95% intervals), the logistic
    recalibration curve ``expit(a + b logit p)``, the diagonal of perfect calibration, a rug of the
    predictions, and the metrics of ``summary`` when given.

    Parameters
    ----------
    ax : Axes
        The axes drawn on.
    y : sequence of float or numpy.ndarray
        Outcome (0/1) of each row.
    p : sequence of float or numpy.ndarray
        Predicted probability of each row.
    bins : int, optional
        Number of quantile groups.
    summary : ValidationSummary or None, optional
        Validation metrics written on the plot.
    fit : CalibrationFit or None, optional
        Recalibration fit drawn as a curve (computed from ``y`` and ``p`` when not given).
    title : str or None, optional
        Title of the plot.

    Returns
    -------
    Axes
        ``ax``, drawn on.
    """
    yy, pp = _check_yp(y, p)
    fit = fit if fit is not None else calibration(yy, pp)
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.55", linewidth=1, label="perfect calibration")
    tab = calibration_bins(yy, pp, bins)
    if len(tab):
        err = np.vstack([tab["observed"] - tab["ci_low"], tab["ci_high"] - tab["observed"]])
        ax.errorbar(
            tab["mean_predicted"],
            tab["observed"],
            yerr=err,
            fmt="o",
            color="C0",
            capsize=3,
            label=f"observed ({len(tab)} groups of predicted risk, Wilson 95% CI)",
        )
    if fit.slope is not None and fit.slope_model_intercept is not None and pp.size:
        lo, hi = max(float(pp.min()), 1e-6), min(float(pp.max()), 1 - 1e-6)
        grid = np.linspace(lo, hi, 200)
        ax.plot(
            grid,
            expit(fit.slope_model_intercept + fit.slope * logit(grid)),
            color="C1",
            label="logistic recalibration",
        )
    if pp.size:
        ax.plot(pp, np.full(pp.shape, 0.01), "|", color="0.3", markersize=6, alpha=0.5)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("Predicted probability of local failure (out-of-fold)")
    ax.set_ylabel("Observed proportion with local failure")
    if summary is not None:

        def f(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.3f}"

        text = (
            f"AUC {f(summary.auc)}\ncalibration slope {f(summary.calibration_slope)}\n"
            f"calibration intercept {f(summary.calibration_intercept)}\nBrier {f(summary.brier)}\n"
            f"{summary.n_lesions} lesions, {summary.n_patients} patients, {summary.folds} folds"
        )
        ax.text(
            0.97,
            0.05,
            text,
            transform=ax.transAxes,
            va="bottom",
            ha="right",
            fontsize=8,
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": "0.8"},
        )
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def calibration_png(cv: CrossValidation, *, title: str | None = None, dpi: int = 150) -> bytes:
    """The calibration plot of ``cv`` as PNG bytes (matplotlib's Agg canvas; no window, no global state).

    Parameters
    ----------
    cv : CrossValidation
        Cross-validation whose out-of-fold predictions are plotted.
    title : str or None, optional
        Title of the plot.
    dpi : int, optional
        Resolution of the image.

    Returns
    -------
    bytes
        The PNG file contents.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 5.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ok = np.isfinite(cv.oof)
    plot_calibration(ax, cv.y[ok], cv.oof[ok], summary=cv.summary, fit=cv.calibration, title=title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def save_calibration_plot(cv: CrossValidation, path: str | Path, *, title: str | None = None) -> Path:
    """Write the calibration plot as PNG, atomically.

    Parameters
    ----------
    cv : CrossValidation
        Cross-validation whose out-of-fold predictions are plotted.
    path : str or pathlib.Path
        The PNG file written.
    title : str or None, optional
        Title of the plot.

    Returns
    -------
    pathlib.Path
        ``path`` as written.
    """
    p = Path(path)
    write_bytes(p, calibration_png(cv, title=title))
    return p


__all__ = [
    "CalibrationFit",
    "CrossValidation",
    "DEFAULT_FOLDS",
    "DEFAULT_SEED",
    "ValidatedFit",
    "assign_folds",
    "brier_score",
    "calibration",
    "calibration_bins",
    "calibration_png",
    "cross_validate",
    "fit_validated_model",
    "plot_calibration",
    "roc_auc",
    "save_calibration_plot",
]
