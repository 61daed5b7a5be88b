"""Lesion-level odds ratios of a lesion outcome (e.g. local failure): univariable and multivariable models.

:func:`lesion_models` fits, for each requested method, one univariable model per risk factor and one
multivariable model of all of them:

* ``"logistic"``: lesions treated as independent (R ``glm(binomial)``), Wald CIs;
* ``"gee"``: patients as clusters, exchangeable working correlation, robust sandwich SE
  (R ``geepack::geeglm``), optionally the Mancl-DeRouen small-sample sandwich;
* ``"firth"``: Firth-penalised logistic regression with profile penalised-likelihood CIs (R ``logistf``).

Every design is first checked for (quasi-)complete separation. Where it is found, the maximum-likelihood
``logistic`` and ``gee`` models are reported as not estimable (the estimates are infinite) with the reason,
and a Firth model of the same terms is added automatically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from pofa.errors import SettingsError
from pofa.stats.factors import LesionDesign, RiskFactor, build_design, estimability_problems, parse_factor
from pofa.stats.firth import FIRTH_METHOD, fit_firth
from pofa.stats.gee import GEE_MD_METHOD, GEE_METHOD, fit_gee
from pofa.stats.logistic import LOGISTIC_METHOD, CoefficientTable, fit_logistic
from pofa.stats.results import Estimate, json_number
from pofa.stats.separation import check_separation

METHODS = ("logistic", "gee", "firth")
ROW_KEYS = ("model", "method", "term", "or", "ci_low", "ci_high", "p", "n_lesions", "n_patients")


@dataclass(frozen=True, slots=True)
class TermResult:
    """Odds ratio of one term.

    Attributes
    ----------
    term : str
        Term name (``"diameter_cm>=5"``).
    odds_ratio : float
        ``exp(coef)`` (the ``"or"`` of :meth:`LesionModel.to_rows`); ``nan`` when not estimable.
    ci_low, ci_high : float
        95% confidence limits of the odds ratio.
    p : float
        Two-sided p-value.
    coef, se : float
        Log-odds coefficient and its standard error.
    """

    term: str
    odds_ratio: float
    ci_low: float
    ci_high: float
    p: float
    coef: float
    se: float

    @property
    def estimable(self) -> bool:
        """Whether the odds ratio is estimated.

        Returns
        -------
        bool
            True when :attr:`odds_ratio` is finite.
        """
        return math.isfinite(self.odds_ratio)


@dataclass(frozen=True, slots=True)
class LesionModel:
    """One fitted lesion-level model.

    Attributes
    ----------
    model : str
        ``"univariable"`` or ``"multivariable"``.
    method : str
        ``"logistic"``, ``"gee"`` or ``"firth"``.
    terms : tuple of TermResult
        One per risk factor (the intercept is not reported).
    n_lesions, n_patients : int
        Lesions and patients in the model (after leaving out lesions with missing values).
    notes : tuple of str
        Caveats and reasons: separation, few clusters, lesions left out, why a model is not estimable.
    method_description : str
        The method in words with the R function its numbers match.
    """

    model: str
    method: str
    terms: tuple[TermResult, ...]
    n_lesions: int
    n_patients: int
    notes: tuple[str, ...]
    method_description: str

    @property
    def estimable(self) -> bool:
        """Whether every term has an estimate.

        Returns
        -------
        bool
            True when every term is estimable.
        """
        return all(t.estimable for t in self.terms)

    def term(self, name: str) -> TermResult:
        """Return the result of the term called ``name``.

        Parameters
        ----------
        name : str
            The term name (e.g. ``"diameter_cm>=5"``).

        Returns
        -------
        TermResult
            The term's odds ratio.

        Raises
        ------
        KeyError
            When the model has no such term.
        """
        for t in self.terms:
            if t.term == name:
                return t
        raise KeyError(f"no term {name!r} in this model; terms: {[t.term for t in self.terms]}")

    def estimates(self) -> tuple[Estimate, ...]:
        """Return the odds ratios as the shared :class:`~pofa.stats.results.Estimate` shape.

        Returns
        -------
        tuple of Estimate
            One per term, with the model's notes as the reason when not estimable.
        """
        reason = "; ".join(self.notes) if not self.estimable else ""
        return tuple(
            Estimate(
                t.odds_ratio,
                t.ci_low,
                t.ci_high,
                t.p,
                self.n_lesions,
                self.method_description,
                reason if not t.estimable else "",
            )
            for t in self.terms
        )

    def to_rows(self) -> list[dict[str, object]]:
        """Return one plain dict per term.

        Keys model, method, term, or, ci_low, ci_high, p, n_lesions, n_patients (floats; ``None`` where not
        estimable).

        Returns
        -------
        list of dict of str to object
            The rows, in term order.
        """
        return [
            {
                "model": self.model,
                "method": self.method,
                "term": t.term,
                "or": json_number(t.odds_ratio),
                "ci_low": json_number(t.ci_low),
                "ci_high": json_number(t.ci_high),
                "p": json_number(t.p),
                "n_lesions": self.n_lesions,
                "n_patients": self.n_patients,
            }
            for t in self.terms
        ]

    def summary(self) -> str:
        """Return a short text table of the model.

        Returns
        -------
        str
            The method, counts, one line per term and the notes.
        """
        lines = [
            f"{self.model} {self.method}: {self.method_description}",
            f"  {self.n_lesions} lesions in {self.n_patients} patients",
        ]
        for t in self.terms:
            lines.append(
                f"  {t.term:<24} OR {t.odds_ratio:8.3f} (95% CI {t.ci_low:.3f}-{t.ci_high:.3f}), "
                f"p = {t.p:.4g}"
            )
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _exp(x: float) -> float:
    """exp on the odds-ratio scale: ``nan`` stays ``nan``, overflow gives ``inf`` (not an exception)."""
    if math.isnan(x):
        return math.nan
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _to_model(
    model: str, method: str, design: LesionDesign, table: CoefficientTable, extra_notes: Sequence[str]
) -> LesionModel:
    terms = [
        TermResult(
            term=name,
            odds_ratio=_exp(table.coef[j]),
            ci_low=_exp(table.ci_low[j]),
            ci_high=_exp(table.ci_high[j]),
            p=table.p[j],
            coef=table.coef[j],
            se=table.se[j],
        )
        for j, name in enumerate(table.names)
        if j > 0  # the intercept is not reported
    ]
    notes = tuple(dict.fromkeys(n for n in (*table.notes, *extra_notes) if n))
    return LesionModel(
        model=model,
        method=method,
        terms=tuple(terms),
        n_lesions=design.n_lesions,
        n_patients=design.n_patients,
        notes=notes,
        method_description=table.method,
    )


def lesion_models(
    lesions: pd.DataFrame,
    *,
    outcome: str,
    cluster: str,
    factors: Sequence[RiskFactor | str],
    methods: Sequence[str] = ("logistic", "gee"),
    small_sample: bool = False,
    firth: bool = False,
) -> tuple[LesionModel, ...]:
    """Univariable and multivariable lesion-level odds ratios.

    Each method equals an R function (docs/statistics-lesion.md): ``"logistic"`` R ``glm(..., family =
    binomial)``, ``"gee"`` R ``geepack::geeglm(..., family = binomial, corstr = "exchangeable")`` (robust
    sandwich SE, or the Mancl-DeRouen one with ``small_sample``), ``"firth"`` R ``logistf::logistf(pl =
    TRUE)``.

    Parameters
    ----------
    lesions : DataFrame
        One row per lesion (not modified).
    outcome : str
        0/1 or yes/no outcome column (e.g. local failure of the lesion).
    cluster : str
        Patient id column (compared as text).
    factors : sequence of RiskFactor or str
        Risk factors (text is read by :func:`~pofa.stats.factors.parse_factor`); one univariable model each
        and, with two or more, one multivariable model of all.
    methods : sequence of {"logistic", "gee", "firth"}
        Methods to fit, in the order results are returned.
    small_sample : bool
        GEE standard errors from the Mancl-DeRouen bias-reduced sandwich (recommended below ~50 patients).
    firth : bool
        Also fit Firth-penalised logistic regression for every model (same as adding ``"firth"`` to methods).

    Returns
    -------
    tuple of LesionModel
        For each method, the univariable models in factor order, then the multivariable model. Firth models
        added because of separation follow the method's models they replace. Models that cannot be estimated
        (no events, a constant term, separation for maximum likelihood, non-convergence) have ``nan`` terms
        and say why in ``notes``.

    Raises
    ------
    SettingsError
        Unknown method, missing column, text where numbers are needed, or repeated terms.
    """
    methods = tuple(methods)
    if not methods:
        raise SettingsError("Give at least one method: 'logistic', 'gee' or 'firth'.")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SettingsError(f"Unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}.")
    if firth and "firth" not in methods:
        methods = (*methods, "firth")
    methods = tuple(dict.fromkeys(methods))
    parsed: tuple[RiskFactor, ...] = tuple(parse_factor(f) if isinstance(f, str) else f for f in factors)
    specs: list[tuple[str, tuple[RiskFactor, ...]]] = [("univariable", (f,)) for f in parsed]
    if len(parsed) > 1:
        specs.append(("multivariable", parsed))
    designs = [build_design(lesions, fs, outcome=outcome, cluster=cluster) for _, fs in specs]

    # Separation check once per design (it does not depend on the method).
    separation_notes: list[str] = []
    for d in designs:
        note = ""
        if not estimability_problems(d):
            note = check_separation(d.X, d.y, d.columns).note()
        separation_notes.append(note)

    out: list[LesionModel] = []
    fallback_done: set[int] = set()
    for method in methods:
        for i, ((model, _), design) in enumerate(zip(specs, designs, strict=True)):
            sep = separation_notes[i]
            dropped = design.dropped_note
            if method == "firth":
                if i in fallback_done:
                    continue
                fallback_done.add(i)
                out.append(_to_model(model, "firth", design, fit_firth(design), [sep, dropped]))
                continue
            if sep:
                desc = {"logistic": LOGISTIC_METHOD, "gee": GEE_MD_METHOD if small_sample else GEE_METHOD}[
                    method
                ]
                table = CoefficientTable.not_estimable(
                    design.columns,
                    method=desc,
                    notes=(
                        sep,
                        "maximum-likelihood estimates do not exist; Firth-penalized logistic "
                        "regression (lesions treated as independent) is reported instead (method 'firth')",
                    ),
                )
                out.append(_to_model(model, method, design, table, [dropped]))
                if i not in fallback_done:
                    fallback_done.add(i)
                    out.append(
                        _to_model(
                            model,
                            "firth",
                            design,
                            fit_firth(design),
                            [sep, "automatic fallback because of separation", dropped],
                        )
                    )
                continue
            if method == "logistic":
                table = fit_logistic(design)
            else:
                table = fit_gee(design, small_sample=small_sample)
            out.append(_to_model(model, method, design, table, [dropped]))
    return tuple(out)


__all__ = ["FIRTH_METHOD", "LesionModel", "TermResult", "lesion_models", "ROW_KEYS"]
