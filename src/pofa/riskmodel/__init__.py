"""Lesion risk scores: fit a local-failure model to a study, validate it, save it as JSON, score new lesions.

>>> import pofa
>>> from pofa.classify import classify
>>> from pofa.riskmodel import fit_validated_model, save_model, load_model, predict_lesions
>>> study = pofa.load_study("my_study/")                                          # doctest: +SKIP
>>> fit = fit_validated_model(classify(study).lesions, method="gee", folds=5)   # doctest: +SKIP
>>> save_model(fit.model, "model.json")                                          # doctest: +SKIP
>>> scores = predict_lesions(load_model("model.json"), new_lesions)              # doctest: +SKIP

See docs/risk-model.md. Importing this package is light: the numerical modules load when one of their names
is first used, and the command functions in :mod:`pofa.cli.model` load them only when they run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pofa.riskmodel.fileio import (
        dumps_model,
        load_model,
        loads_model,
        model_from_dict,
        model_to_dict,
        save_model,
    )
    from pofa.riskmodel.fit import fit_risk_model, prepare_training
    from pofa.riskmodel.model import (
        FORMAT_VERSION,
        Feature,
        ModelKind,
        RiskModel,
        TermSummary,
        TrainingSummary,
        ValidationSummary,
    )
    from pofa.riskmodel.predict import LesionScores, load_lesions, predict_lesions
    from pofa.riskmodel.published import published_model
    from pofa.riskmodel.validate import (
        CrossValidation,
        assign_folds,
        brier_score,
        calibration,
        cross_validate,
        fit_validated_model,
        plot_calibration,
        roc_auc,
    )

_LAZY = {
    **dict.fromkeys(
        ("dumps_model", "load_model", "loads_model", "model_from_dict", "model_to_dict", "save_model"),
        "pofa.riskmodel.fileio",
    ),
    **dict.fromkeys(("fit_risk_model", "prepare_training"), "pofa.riskmodel.fit"),
    **dict.fromkeys(
        (
            "FORMAT_VERSION",
            "Feature",
            "ModelKind",
            "RiskModel",
            "TermSummary",
            "TrainingSummary",
            "ValidationSummary",
        ),
        "pofa.riskmodel.model",
    ),
    **dict.fromkeys(("LesionScores", "load_lesions", "predict_lesions"), "pofa.riskmodel.predict"),
    "published_model": "pofa.riskmodel.published",
    **dict.fromkeys(
        (
            "CrossValidation",
            "assign_folds",
            "brier_score",
            "calibration",
            "cross_validate",
            "fit_validated_model",
            "plot_calibration",
            "roc_auc",
        ),
        "pofa.riskmodel.validate",
    ),
}


def __getattr__(name: str) -> Any:
    """Import the numerical modules only when one of their names is used (keeps ``pofa --help`` quick)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pofa.riskmodel' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "FORMAT_VERSION",
    "CrossValidation",
    "Feature",
    "LesionScores",
    "ModelKind",
    "RiskModel",
    "TermSummary",
    "TrainingSummary",
    "ValidationSummary",
    "assign_folds",
    "brier_score",
    "calibration",
    "cross_validate",
    "dumps_model",
    "fit_risk_model",
    "fit_validated_model",
    "load_lesions",
    "load_model",
    "loads_model",
    "model_from_dict",
    "model_to_dict",
    "plot_calibration",
    "predict_lesions",
    "prepare_training",
    "published_model",
    "roc_auc",
    "save_model",
]
