"""Command-line functions ``pofa model fit`` and ``pofa predict`` (registered by :mod:`pofa.cli`).

Plain functions with typer annotations: a thin layer over :mod:`pofa.riskmodel`. Every
:class:`~pofa.errors.PofaError` is printed as ``error: ...`` (what is wrong and what to do) with exit code 2;
no traceback. Outputs are written atomically. Light to import: numpy, pandas and statsmodels load only when a
command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pofa import __version__
from pofa.cli.output import error_message
from pofa.errors import PofaError, SettingsError
from pofa.io.hashing import sha256_file

if TYPE_CHECKING:
    from pofa.findings import Finding
    from pofa.riskmodel.model import RiskModel
    from pofa.riskmodel.predict import LesionScores

__all__ = ["model_fit_command", "output_paths", "predict_command"]

_console = Console(highlight=False)
_err = Console(stderr=True, highlight=False)


def _fail(message: str) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(2)


def _print_findings(title: str, findings: tuple[Finding, ...] | list[Finding], limit: int = 30) -> None:
    from rich.text import Text

    table = Table(title=Text(title), title_justify="left")
    for col in ("", "file", "row", "column", "problem", "what to do"):
        table.add_column(col, overflow="fold")
    for f in list(findings)[:limit]:
        mark = Text(f.severity.value, "red" if f.severity.value == "error" else "yellow")
        table.add_row(
            mark,
            Text(f.file),
            "" if f.row is None else str(f.row),
            Text(f.column or ""),
            Text(f.message),
            Text(f.hint),
        )
    _err.print(table)
    if len(findings) > limit:
        _err.print(f"... and {len(findings) - limit} more")


def output_paths(out: Path) -> dict[str, Path]:
    """List the files ``pofa model fit --out OUT`` writes: the model, its calibration plot, its CV table.

    ``model.json`` -> ``model.json``, ``model.calibration.png``, ``model.cv.csv``.

    Parameters
    ----------
    out : pathlib.Path
        The model file asked for.

    Returns
    -------
    dict of {str: pathlib.Path}
        Paths under the keys ``model``, ``calibration_plot`` and ``cross_validation``.
    """
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    return {
        "model": out,
        "calibration_plot": out.with_name(f"{stem}.calibration.png"),
        "cross_validation": out.with_name(f"{stem}.cv.csv"),
    }


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def model_fit_command(
    study: Annotated[Path, typer.Argument(help="Study folder (CSV/Parquet tables) or Excel workbook.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Model file to write (JSON), e.g. model.json. The "
            "calibration plot (.calibration.png) and out-of-fold predictions "
            "(.cv.csv) are written beside it.",
        ),
    ],
    features: Annotated[
        list[str] | None,
        typer.Option(
            "--feature",
            "-f",
            help="A model term, repeatable: 'diameter_cm>=5' (threshold), 'extranodal' (column "
            "as it is), 'suvmax/sd' or 'suvmax/unit' (continuous). Default: the study's "
            "\\[risk_factors] lesion terms (diameter_cm>=5, suvmax>=10, extranodal).",
        ),
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="'gee' (patients as clusters, R geepack::geeglm) or 'firth' (Firth-penalized "
            "logistic regression, R logistf; for small cohorts or separation).",
        ),
    ] = "gee",
    folds: Annotated[
        int, typer.Option("--folds", min=2, help="Folds of the patient-grouped cross-validation.")
    ] = 5,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the fold assignment.")] = 2021,
    force: Annotated[bool, typer.Option("--force", help="Replace existing output files.")] = False,
    show_ids: Annotated[bool, typer.Option(
        "--show-ids", help="Write patient ids in the out-of-fold predictions (default: the study sequence "
                           "numbers of pofa analyze, column patient_seq).")] = False,
    keep_irradiated: Annotated[
        bool,
        typer.Option(
            "--keep-irradiated", help="Also fit lesions that had bridging radiotherapy (left out by default)."
        ),
    ] = False,
) -> None:
    """Fit a lesion-level local-failure model to a study, cross-validate it by patient and save it as JSON.

    The outcome is each baseline lesion's local failure at first progression (as 'pofa analyze' classifies
    it). The model file holds coefficients, covariance, feature definitions, training and validation
    summaries; never patient ids. Score new lesions with 'pofa predict MODEL LESIONS'.
    """
    try:
        code = _model_fit(study, out, features, method, folds, seed, force, keep_irradiated, show_ids)
    except PofaError as exc:
        raise _fail(error_message(exc)) from None
    raise typer.Exit(code)


def _model_fit(
    study: Path,
    out: Path,
    features: list[str] | None,
    method: str,
    folds: int,
    seed: int,
    force: bool,
    keep_irradiated: bool,
    show_ids: bool = False,
) -> int:
    from pofa.atomic import write_bytes, write_text
    from pofa.classify import classify
    from pofa.riskmodel.fileio import save_model
    from pofa.riskmodel.fit import FIT_METHODS
    from pofa.riskmodel.validate import calibration_png, fit_validated_model
    from pofa.study import load_study

    method = method.strip().lower()
    if method not in FIT_METHODS:
        raise SettingsError(f"--method {method!r} is not known; use 'gee' or 'firth'")
    paths = output_paths(out)
    if out.is_dir():
        raise PofaError(f"{out} is a folder; give the model file's name, e.g. --out {out / 'model.json'}")
    existing = [p for p in paths.values() if p.exists()]
    if existing and not force:
        raise PofaError(
            f"{', '.join(map(str, existing))} already exist{'s' if len(existing) == 1 else ''}; "
            "choose another --out, or add --force to replace"
        )
    loaded = load_study(study)
    report = loaded.validate()
    if report.errors:
        _print_findings(f"Findings for {report.study}", report.errors)
        _err.print(
            "The study has errors, so no model was fitted. Fix them (pofa validate lists them all), then "
            "run pofa model fit again."
        )
        return 2
    terms = list(features) if features else list(loaded.settings.risk_factors.lesion)
    lesions = classify(loaded).lesions
    fit = fit_validated_model(
        lesions,
        terms,
        method=method,
        small_sample=loaded.settings.lesion_models.small_sample,
        exclude_irradiated=not keep_irradiated,
        folds=folds,
        seed=seed,
        data_label=loaded.name,
        input_sha256=tuple(loaded.input_hashes().items()),
    )
    save_model(fit.model, paths["model"], force=True)
    write_bytes(
        paths["calibration_plot"],
        calibration_png(fit.cross_validation, title=f"Cross-validated calibration: {loaded.name}"),
    )
    from pofa.io.writers import csv_text

    oof = fit.cross_validation.table
    if not show_ids:
        from pofa.privacy import pseudonymise_ids, sequence_numbers

        oof = pseudonymise_ids(oof, sequence_numbers(loaded.patients["patient_id"]))
    write_text(paths["cross_validation"], csv_text(oof))
    _print_model(fit.model)
    _console.print(
        f"Wrote [bold]{escape(str(paths['model']))}[/] (model), "
        f"{escape(paths['calibration_plot'].name)} (calibration plot), "
        f"{escape(paths['cross_validation'].name)} (out-of-fold predictions).",
        soft_wrap=True,
    )
    return 0


def _print_model(model: RiskModel) -> None:
    table = Table(title=escape(model.label), title_justify="left")
    for col in ("term", "OR", "95% CI"):
        table.add_column(col, justify="right" if col != "term" else "left")
    for t, o, lo, hi in model.odds_ratios():
        table.add_row(escape(t), f"{o:.3f}", f"{lo:.3f}-{hi:.3f}")
    _console.print(table)
    _console.print(f"method: {escape(model.method)}", soft_wrap=True)
    v = model.validation
    if v is not None:
        _console.print(
            f"cross-validated ({v.folds} folds by patient, {v.n_lesions} lesions): AUC {_fmt(v.auc)}, "
            f"calibration slope {_fmt(v.calibration_slope)}, calibration intercept "
            f"{_fmt(v.calibration_intercept)}, Brier {_fmt(v.brier)} (apparent AUC {_fmt(v.apparent_auc)})"
        )
        for n in v.notes:
            _console.print(f"[yellow]note:[/] {escape(n)}", soft_wrap=True)
    for n in model.training.notes:
        _console.print(f"[yellow]note:[/] {escape(n)}", soft_wrap=True)


def _parse_range(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.replace(";", ",").split(",")]
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise SettingsError(
            f"--baseline-risk-range {text!r}: write two probabilities, low,high (e.g. 0.1,0.3)"
        ) from None
    return lo, hi


def predict_command(
    model: Annotated[
        str,
        typer.Argument(
            help="A model file written by 'pofa model fit', or 'published' for the "
            "built-in model of the published odds ratios (Figura et al. "
            "2021)."
        ),
    ],
    lesions: Annotated[
        Path,
        typer.Argument(
            help="The lesions to score: a lesions table in the study format "
            "(.csv, .xlsx with a 'lesions' sheet, .parquet) or a study "
            "folder."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Scores file to write (CSV), e.g. scores.csv; a .manifest.json is written beside it.",
        ),
    ],
    baseline_risk: Annotated[
        float | None,
        typer.Option(
            "--baseline-risk",
            help="Published model only: the risk of local failure of a reference lesion "
            "(< 5 cm, SUVmax < 10, nodal) in your setting, e.g. 0.2. The paper does not "
            "report it; without it the published model gives ranks and odds ratios, not "
            "probabilities.",
        ),
    ] = None,
    baseline_risk_range: Annotated[
        str | None,
        typer.Option(
            "--baseline-risk-range",
            help="Published model only: a 95% range low,high for --baseline-risk "
            "(e.g. 0.1,0.3), carried into the CIs.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing output files.")] = False,
    show_ids: Annotated[bool, typer.Option(
        "--show-ids", help="Write and show patient ids (default: sequence numbers 1..n in the natural "
                           "order of the ids, column patient_seq).")] = False,
) -> None:
    """Score lesions: each lesion's probability of local failure with a 95% CI, its risk factors, and its rank
    within the patient (1 = highest risk).

    The lesions table is checked first; missing feature columns and unusable cells are reported with file,
    row and column, and nothing is written.
    """
    try:
        code = _predict(model, lesions, out, baseline_risk, baseline_risk_range, force, show_ids)
    except PofaError as exc:
        raise _fail(error_message(exc)) from None
    raise typer.Exit(code)


def _load_any_model(
    model: str, baseline_risk: float | None, baseline_risk_range: str | None
) -> tuple[RiskModel, dict[str, Any]]:
    from pofa.riskmodel.fileio import load_model
    from pofa.riskmodel.published import PUBLISHED_NAME, published_model

    if model.strip().lower() == PUBLISHED_NAME:
        m = published_model(baseline_risk, _parse_range(baseline_risk_range))
        return m, {
            "source": "built-in published model",
            "baseline_risk": baseline_risk,
            "baseline_risk_range": baseline_risk_range,
        }
    if baseline_risk is not None or baseline_risk_range is not None:
        raise SettingsError(
            "--baseline-risk and --baseline-risk-range apply to the published model only; a "
            "fitted model has its own intercept"
        )
    path = Path(model)
    m = load_model(path)
    return m, {"source": "file", "file": path.name, "sha256": sha256_file(path)}


def _predict(
    model: str,
    lesions: Path,
    out: Path,
    baseline_risk: float | None,
    baseline_risk_range: str | None,
    force: bool,
    show_ids: bool = False,
) -> int:
    from pofa.atomic import write_text
    from pofa.riskmodel.predict import load_lesions, predict_lesions

    manifest_path = out.with_name(f"{out.name[: -len(out.suffix)] if out.suffix else out.name}.manifest.json")
    if out.is_dir():
        raise PofaError(f"{out} is a folder; give the scores file's name, e.g. --out {out / 'scores.csv'}")
    for p in (out, manifest_path):
        for other in (Path(model), lesions):
            if other.exists() and p.exists() and p.resolve() == other.resolve():
                raise PofaError(f"--out would overwrite the input {other}; choose another --out")
    existing = [p for p in (out, manifest_path) if p.exists()]
    if existing and not force:
        raise PofaError(
            f"{', '.join(map(str, existing))} already exist{'s' if len(existing) == 1 else ''}; "
            "choose another --out, or add --force to replace"
        )
    m, model_info = _load_any_model(model, baseline_risk, baseline_risk_range)
    loaded = load_lesions(lesions, m)
    if not loaded.report.ok:
        _print_findings(f"Problems in the lesions to score ({loaded.source})", loaded.report.findings)
        _err.print("Nothing was written. Fix the errors above, then run pofa predict again.")
        return 2
    if loaded.ignored:
        _console.print(
            f"[yellow]{len(loaded.ignored)} problem(s) in columns the model does not use were "
            f"ignored[/] (e.g. {escape(loaded.ignored[0].location())}: "
            f"{escape(loaded.ignored[0].message)}).",
            soft_wrap=True,
        )
    for w in loaded.report.warnings:
        _console.print(f"[yellow]warning:[/] {escape(w.location())}: {escape(w.message)}", soft_wrap=True)
    scores = predict_lesions(m, loaded.frame)
    if show_ids:
        write_text(out, scores.to_csv_text())
    else:
        from pofa.io.writers import csv_text
        from pofa.privacy import pseudonymise_ids

        write_text(out, csv_text(pseudonymise_ids(scores.table)))
    manifest = {
        "pofa_version": __version__,
        "command": "pofa predict",
        "model": {
            **model_info,
            "label": m.label,
            "kind": m.kind.value,
            "method": m.method,
            "covariance_type": m.covariance_type,
            "intercept": m.intercept_basis,
            "features": list(m.terms),
            "limitations": list(m.limitations),
        },
        "lesions": {"file": loaded.source, "sha256": sha256_file(lesions) if lesions.is_file() else None},
        "prediction_method": scores.method,
        "counts": {"lesions": scores.n_lesions, "scored": scores.n_scored, "patients": scores.n_patients},
        "notes": list(scores.notes),
        "ignored_findings": [f.to_json() for f in loaded.ignored],
        "files": [out.name],
    }
    write_text(manifest_path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    _print_scores(m, scores, show_ids)
    patients = f"{scores.n_patients} patient{'s' if scores.n_patients != 1 else ''}"
    _console.print(
        f"Wrote [bold]{escape(str(out))}[/] ({scores.n_scored} of {scores.n_lesions} lesions scored, "
        f"{patients}) and {escape(manifest_path.name)}.",
        soft_wrap=True,
    )
    return 0


def _print_scores(model: RiskModel, scores: LesionScores, show_ids: bool, max_rows: int = 40) -> None:
    from pofa.privacy import pseudonymise_ids

    t = scores.table
    if not show_ids:  # sequence numbers in the patient column
        t = pseudonymise_ids(t).rename(columns={"patient_seq": "patient_id"})
    _console.print(f"[bold]{escape(model.label)}[/]", soft_wrap=True)
    if len(t) <= max_rows:
        table = Table(
            title="Lesions ranked within each patient (1 = highest risk of local failure)",
            title_justify="left",
        )
        prob = model.intercept_known
        cols = [
            "patient",
            "lesion",
            "rank",
            "probability (95% CI)" if prob else "OR vs reference (95% CI)",
            "risk factors",
        ]
        for c in cols:
            table.add_column(c, overflow="fold")
        for d in t.to_dict("records"):
            rank = d.get("rank_in_patient")
            rank_text = "" if rank is None or rank != rank else str(int(rank))
            if prob:
                val = (
                    f"{d['probability']:.2f} ({d['ci_low']:.2f}-{d['ci_high']:.2f})"
                    if d["probability"] == d["probability"]
                    else "not scored"
                )
            else:
                val = (
                    f"{d['odds_ratio_vs_reference']:.2f} ({d['or_ci_low']:.2f}-{d['or_ci_high']:.2f})"
                    if d["odds_ratio_vs_reference"] == d["odds_ratio_vs_reference"]
                    else "not scored"
                )
            table.add_row(
                escape(str(d["patient_id"])),
                escape(str(d["lesion_id"])),
                rank_text,
                val,
                escape(str(d["risk_factors"]) or str(d.get("note", ""))),
            )
        _console.print(table)
    for n in scores.notes:
        _console.print(f"[yellow]note:[/] {escape(n)}", soft_wrap=True)
    for x in model.limitations:
        _console.print(f"[yellow]limitation:[/] {escape(x)}", soft_wrap=True)
