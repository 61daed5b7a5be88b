"""The report's tables: Table 1, patient flow, failure patterns, lesion-level models, survival, Cox models and
competing risks.

Each builder returns a :class:`ReportTable` with two views of the same content:

* ``rows``: what the HTML shows, cell by cell. A cell is a tuple of :class:`Frag` fragments; a fragment that
  shows a number of results.json carries its path and exact value (the HTML writes them into ``data-result``
  and ``data-value`` attributes, which the browser test compares with results.json);
* ``data``: a tidy DataFrame written to ``tables/<name>.csv`` and ``.xlsx`` (full-precision numbers).

Numbers from results.json are only ever formatted, never recomputed. Table 1 summarises the input tables
(median (IQR) for numbers, n (%) for yes/no and categories). Date columns and text columns with many distinct
values (names, record numbers) are never summarised, so no identifier or calendar date reaches a table.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pofa.atomic import write_bytes
from pofa.io.writers import append_xlsx_row, csv_text
from pofa.report.format import (
    DASH,
    NOT_ESTIMABLE,
    fmt_count,
    fmt_months,
    fmt_p,
    fmt_pct,
    fmt_prob,
    fmt_ratio,
    lookup,
    term_label,
)
from pofa.report.model import PATTERN_KEYS, PATTERNS, ReportInput

__all__ = [
    "Frag",
    "ReportTable",
    "build_tables",
    "competing_risks_table",
    "cutpoint_table",
    "flow_table",
    "lesion_model_table",
    "patient_model_table",
    "pattern_table",
    "survival_table",
    "table1",
    "write_table",
]

#: Categorical covariates with more distinct values than this are not summarised (they may identify people).
MAX_LEVELS = 12


@dataclass(frozen=True, slots=True)
class Frag:
    """A piece of a table cell: text, and for a number from results.json its path and exact value."""

    text: str
    path: str | None = None
    value: Any = None


Cell = tuple[Frag, ...]


@dataclass(frozen=True, slots=True)
class ReportTable:
    """A table of the report.

    Parameters
    ----------
    name : str
        File stem (``tables/<name>.csv``) and HTML anchor.
    title : str
        Table title (``"Table 1. Cohort characteristics"``).
    header : tuple of str
        Column headings of the HTML view.
    rows : tuple of tuple of Cell
        HTML view.
    data : DataFrame
        CSV/XLSX view.
    note : str
        Footnote: definitions, methods, abbreviations.
    heading_rows : frozenset of int
        Rows of ``rows`` that are section headings (one cell spanning the table).
    """

    name: str
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    data: pd.DataFrame
    note: str = ""
    heading_rows: frozenset[int] = field(default_factory=frozenset)


def _t(text: str) -> Cell:
    return (Frag(text),)


def num(results: Mapping[str, Any], path: str, fmt: Callable[[Any], str]) -> Frag:
    """A fragment showing the results.json number at ``path`` formatted by ``fmt`` (``NE`` when missing)."""
    try:
        v = lookup(results, path)
    except KeyError:
        return Frag(NOT_ESTIMABLE)
    return Frag(fmt(v), path, v)


def _ratio_ci(results: Mapping[str, Any], base: str, est_key: str) -> Cell:
    """``2.34 (1.55–3.55)`` from the estimate and CI keys under ``base``."""
    return (
        num(results, f"{base}.{est_key}", fmt_ratio),
        Frag(" ("),
        num(results, f"{base}.ci_low", fmt_ratio),
        Frag(DASH),
        num(results, f"{base}.ci_high", fmt_ratio),
        Frag(")"),
    )


# ------------------------------------------------------------------------------------------------------
# Table 1
# ------------------------------------------------------------------------------------------------------

_DATE_TEXT = re.compile(r"^\s*\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|^\s*\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\s*$")


def _q(x: np.ndarray) -> tuple[float, float, float]:
    """Median and quartiles (R ``quantile`` type 7, numpy's default)."""
    return (float(np.median(x)), float(np.percentile(x, 25)), float(np.percentile(x, 75)))


def _fmt_num(v: float) -> str:
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}" if v != round(v) else f"{v:.0f}"
    return f"{v:.1f}" if abs(v * 10 - round(v * 10)) < 1e-9 or a >= 1 else f"{v:.2f}"


class _T1:
    def __init__(self) -> None:
        self.rows: list[tuple[Cell, ...]] = []
        self.records: list[dict[str, Any]] = []
        self.headings: set[int] = set()
        self.section = ""
        self.skipped: list[str] = []

    def heading(self, text: str) -> None:
        self.section = text
        self.headings.add(len(self.rows))
        self.rows.append((_t(text), _t("")))

    def median(self, label: str, values: pd.Series, unit: str = "", total: int | None = None) -> None:
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        ok = x[np.isfinite(x)]
        missing = int(x.size - ok.size)
        if ok.size == 0:
            text = "no values"
            med = q1 = q3 = math.nan
        else:
            med, q1, q3 = _q(ok)
            text = f"{_fmt_num(med)} ({_fmt_num(q1)}{DASH}{_fmt_num(q3)})"
            if missing:
                text += f"; missing {missing}"
        lab = f"{label}{', ' + unit if unit else ''}, median (IQR)"
        self.rows.append((_t("\u2003" + lab), _t(text)))
        self.records.append(
            {
                "section": self.section,
                "characteristic": lab,
                "summary": text,
                "n": int(ok.size),
                "denominator": total if total is not None else int(x.size),
                "percent": None,
                "median": med,
                "q1": q1,
                "q3": q3,
                "missing": missing,
            }
        )

    def count(self, label: str, k: int, denom: int, missing: int = 0) -> None:
        pct = 100.0 * k / denom if denom else math.nan
        text = f"{k} ({fmt_pct(k, denom)})" + (f"; missing {missing}" if missing else "")
        self.rows.append((_t("\u2003" + label + ", n (%)"), _t(text)))
        self.records.append(
            {
                "section": self.section,
                "characteristic": f"{label}, n (%)",
                "summary": text,
                "n": int(k),
                "denominator": int(denom),
                "percent": pct,
                "median": None,
                "q1": None,
                "q3": None,
                "missing": missing,
            }
        )

    def plain(self, label: str, text: str, n: int | None = None) -> None:
        self.rows.append((_t("\u2003" + label), _t(text)))
        self.records.append(
            {
                "section": self.section,
                "characteristic": label,
                "summary": text,
                "n": n,
                "denominator": None,
                "percent": None,
                "median": None,
                "q1": None,
                "q3": None,
                "missing": 0,
            }
        )

    def covariate(self, name: str, s: pd.Series) -> None:
        """Summarise one covariate by its type; dates and identifier-like text are skipped."""
        s = s.copy()
        if pd.api.types.is_datetime64_any_dtype(s) or any(
            isinstance(v, (pd.Timestamp, np.datetime64)) for v in s.dropna().tolist()[:50]
        ):
            self.skipped.append(f"{name} (a date)")
            return
        nonmissing = s.dropna()
        missing = int(len(s) - len(nonmissing))
        if str(s.dtype) == "boolean" or s.dtype == bool:
            self.count(name, int(nonmissing.astype(bool).sum()), len(nonmissing), missing)
            return
        if pd.api.types.is_numeric_dtype(s):
            vals = pd.to_numeric(nonmissing, errors="coerce")
            levels = sorted(pd.unique(vals).tolist())
            if len(levels) <= 5 and all(float(v).is_integer() for v in levels):
                self._levels(name, nonmissing.astype("int64").astype(str), missing, sort_numeric=True)
            else:
                self.median(name, s, total=len(s))
            return
        text = nonmissing.astype(str).str.strip()
        if text.str.match(_DATE_TEXT).any():
            self.skipped.append(f"{name} (holds dates)")
            return
        n_levels = text.nunique()
        if n_levels > MAX_LEVELS or (len(text) >= 10 and n_levels > 0.5 * len(text)):
            self.skipped.append(f"{name} ({n_levels} distinct values: may identify patients)")
            return
        self._levels(name, text, missing)

    def _levels(self, name: str, text: pd.Series, missing: int, sort_numeric: bool = False) -> None:
        counts = text.value_counts()
        if sort_numeric:
            counts = counts.sort_index(key=lambda ix: ix.astype(int))
        else:
            counts = counts.sort_values(ascending=False, kind="mergesort")
        self.rows.append((_t("\u2003" + name + ", n (%)"), _t("" if not missing else f"missing {missing}")))
        self.records.append(
            {
                "section": self.section,
                "characteristic": f"{name}, n (%)",
                "summary": "",
                "n": None,
                "denominator": None,
                "percent": None,
                "median": None,
                "q1": None,
                "q3": None,
                "missing": missing,
            }
        )
        denom = int(counts.sum())
        for level, k in counts.items():
            txt = f"{int(k)} ({fmt_pct(int(k), denom)})"
            self.rows.append((_t("\u2003\u2003" + str(level)), _t(txt)))
            self.records.append(
                {
                    "section": self.section,
                    "characteristic": f"{name}: {level}",
                    "summary": txt,
                    "n": int(k),
                    "denominator": denom,
                    "percent": 100.0 * int(k) / denom,
                    "median": None,
                    "q1": None,
                    "q3": None,
                    "missing": 0,
                }
            )


def table1(inp: ReportInput) -> ReportTable:
    """Table 1: the cohort (patients, lesions per patient, sites, sizes, SUVmax, extranodal, bridging,
    covariates) as median (IQR) or n (%)."""
    p, les = inp.patients, inp.lesions
    t = _T1()
    n_p, n_l = len(p), len(les)
    t.heading(f"Patients (n = {n_p})")
    per = les.groupby("patient_id").size().reindex(p["patient_id"], fill_value=0)
    t.median("Baseline lesions per patient", per, total=n_p)
    t.plain("Baseline lesions per patient, range", f"{int(per.min())}{DASH}{int(per.max())}" if n_p else "")
    for term in inp.patient_terms():
        try:
            g = inp.patient_group(term)
        except Exception:  # noqa: BLE001 - a missing factor is reported in the survival section
            continue
        t.count(term_label(term), int(g.sum()), n_p)
    ext_any = les.assign(e=les["extranodal"].fillna(False).astype(bool)).groupby("patient_id")["e"].any()
    t.count("Any extranodal lesion", int(ext_any.reindex(p["patient_id"], fill_value=False).sum()), n_p)
    if "bridging_rt" in les.columns:
        br = les.assign(b=les["bridging_rt"].fillna(False).astype(bool)).groupby("patient_id")["b"].any()
        t.count(
            "Bridging radiotherapy to any lesion",
            int(br.reindex(p["patient_id"], fill_value=False).sum()),
            n_p,
        )
    for c in inp.patient_covariates:
        t.covariate(c, p[c])

    t.heading(f"Baseline lesions (n = {n_l})")
    t.median("Longest diameter", les["diameter_cm"], "cm", n_l)
    th = {}
    for term in inp.settings.risk_factors.lesion:
        m = re.match(r"^\s*(diameter_cm|suvmax)\s*>=\s*([-+0-9.eE]+)\s*$", term)
        if m:
            th.setdefault(m.group(1), float(m.group(2)))
    if "diameter_cm" in th:
        d = les["diameter_cm"]
        t.count(
            term_label(f"diameter_cm>={th['diameter_cm']:g}"),
            int((d >= th["diameter_cm"]).sum()),
            int(d.notna().sum()),
            int(d.isna().sum()),
        )
    t.median("SUVmax", les["suvmax"], "", n_l)
    if "suvmax" in th:
        s = les["suvmax"]
        t.count(
            term_label(f"suvmax>={th['suvmax']:g}"),
            int((s >= th["suvmax"]).sum()),
            int(s.notna().sum()),
            int(s.isna().sum()),
        )
    e = les["extranodal"]
    t.count("Extranodal", int(e.fillna(False).astype(bool).sum()), int(e.notna().sum()), int(e.isna().sum()))
    if "bridging_rt" in les.columns:
        b = les["bridging_rt"]
        t.count(
            "Bridging radiotherapy",
            int(b.fillna(False).astype(bool).sum()),
            int(b.notna().sum()),
            int(b.isna().sum()),
        )
    sites = les["site"].dropna().astype(str).str.strip().str.lower()
    counts = sites.value_counts().sort_values(ascending=False, kind="mergesort")
    t.rows.append((_t("\u2003Site, n (%)"), _t("")))
    t.records.append(
        {
            "section": t.section,
            "characteristic": "Site, n (%)",
            "summary": "",
            "n": None,
            "denominator": None,
            "percent": None,
            "median": None,
            "q1": None,
            "q3": None,
            "missing": int(les["site"].isna().sum()),
        }
    )
    shown = counts.iloc[:10]
    other = int(counts.iloc[10:].sum())
    denom = int(counts.sum())
    for level, k in list(shown.items()) + ([("other sites", other)] if other else []):
        txt = f"{int(k)} ({fmt_pct(int(k), denom)})"
        t.rows.append((_t("\u2003\u2003" + str(level)), _t(txt)))
        t.records.append(
            {
                "section": t.section,
                "characteristic": f"site: {level}",
                "summary": txt,
                "n": int(k),
                "denominator": denom,
                "percent": 100.0 * int(k) / denom if denom else None,
                "median": None,
                "q1": None,
                "q3": None,
                "missing": 0,
            }
        )
    for c in inp.lesion_covariates:
        t.covariate(c, les[c])
    note = (
        "IQR: interquartile range (25th-75th percentile, R quantile type 7). Percentages are of patients or "
        "lesions with a known value."
    )
    if t.skipped:
        note += (
            " Not summarised, to keep identifiers and calendar dates out of the report: "
            + "; ".join(t.skipped)
            + "."
        )
    return ReportTable(
        "table1_cohort",
        "Table 1. Cohort characteristics",
        ("Characteristic", "Value"),
        tuple(t.rows),
        pd.DataFrame.from_records(t.records),
        note,
        frozenset(t.headings),
    )


# ------------------------------------------------------------------------------------------------------
# tables of results.json numbers
# ------------------------------------------------------------------------------------------------------


def flow_table(results: Mapping[str, Any]) -> ReportTable:
    """Patient flow: included, eligible for survival analysis, recurred, pattern known."""
    rows, recs = [], []

    def add(label: str, frags: Cell, n: Any) -> None:
        rows.append((_t(label), frags))
        recs.append({"step": label, "patients": n})

    for label, path in (
        ("Patients included", "patterns.patients"),
        ("Eligible for survival analysis (PFS)", "survival.pfs.n"),
        ("Eligible for survival analysis (OS)", "survival.os.n"),
        ("Recurred (first progression)", "patterns.recurred"),
    ):
        f = num(results, path, fmt_count)
        add(label, (f,), f.value)
    rec = _get(results, "patterns.recurred")
    unk = _get(results, "patterns.unknown")
    known = rec - unk if isinstance(rec, int) and isinstance(unk, int) else None
    add("Recurred with the pattern known", (Frag(fmt_count(known)),), known)
    add(
        "Recurred, pattern unknown (no failure lesions recorded)",
        (num(results, "patterns.unknown", fmt_count),),
        unk,
    )
    return ReportTable(
        "patient_flow",
        "Patient flow",
        ("Step", "Patients"),
        tuple(rows),
        pd.DataFrame.from_records(recs),
        "Pattern known = recurred minus unknown. Survival eligibility as in results.json 'survival'.",
    )


def _get(results: Mapping[str, Any], path: str) -> Any:
    try:
        return lookup(results, path)
    except KeyError:
        return None


def pattern_table(results: Mapping[str, Any]) -> ReportTable:
    """Failure patterns at first progression: counts and % of recurred patients."""
    rec = _get(results, "patterns.recurred")
    rows, recs = [], []
    labels = {
        "strictly local": "Strictly local",
        "mixed": "Mixed (local and de novo)",
        "strictly de novo": "Strictly de novo",
        "unknown": "Unknown (no failure lesions recorded)",
    }
    for p in PATTERNS:
        path = f"patterns.{PATTERN_KEYS[p]}"
        f = num(results, path, fmt_count)
        rows.append((_t(labels[p]), (f,), _t(fmt_pct(f.value, rec))))
        recs.append(
            {
                "pattern": p,
                "key": PATTERN_KEYS[p],
                "patients": f.value,
                "percent_of_recurred": (100.0 * f.value / rec) if isinstance(f.value, int) and rec else None,
            }
        )
    for label, key, denom_path in (
        ("All recurred patients", "recurred", "patterns.patients"),
        ("Local component (strictly local or mixed)", "local_component", "patterns.recurred"),
        ("Maintained control of at least one baseline lesion", "maintained_control", "patterns.recurred"),
        ("Baseline lesions with local failure", "local_failure_lesions", "patterns.lesions"),
    ):
        f = num(results, f"patterns.{key}", fmt_count)
        d = _get(results, denom_path)
        rows.append((_t(label), (f,), _t(fmt_pct(f.value, d))))
        recs.append(
            {
                "pattern": label,
                "key": key,
                "patients": f.value,
                "percent_of_recurred": (100.0 * f.value / d) if isinstance(f.value, int) and d else None,
            }
        )
    return ReportTable(
        "failure_patterns",
        "Pattern of failure at first progression",
        ("Pattern", "n", "%"),
        tuple(rows),
        pd.DataFrame.from_records(recs),
        "Percentages are of recurred patients, except all recurred (of all patients) and lesions with "
        "local failure (of all baseline lesions).",
    )


def lesion_model_table(results: Mapping[str, Any]) -> ReportTable:
    """Lesion-level odds ratios: univariable and multivariable, logistic and GEE (and Firth) side by side."""
    rows_in = [r for r in results.get("lesion_models") or [] if isinstance(r, Mapping)]
    methods = [m for m in ("logistic", "gee", "firth") if any(r.get("method") == m for r in rows_in)]
    names = {"logistic": "Logistic", "gee": "GEE", "firth": "Firth"}
    header = ["Risk factor", "Model"]
    for m in methods:
        header += [f"{names[m]} OR (95% CI)", f"{names[m]} p"]
    header += ["Lesions / patients"]
    terms = list(dict.fromkeys(str(r.get("term")) for r in rows_in))
    rows: list[tuple[Cell, ...]] = []
    for model in ("univariable", "multivariable"):
        for term in terms:
            idx = {
                r.get("method"): i
                for i, r in enumerate(results.get("lesion_models") or [])
                if isinstance(r, Mapping) and r.get("model") == model and str(r.get("term")) == term
            }
            if not idx:
                continue
            cells: list[Cell] = [
                (Frag(term_label(term)), Frag(f" [{term}]" if term_label(term) != term else "")),
                _t(model),
            ]
            nl = ""
            for m in methods:
                if m in idx:
                    base = f"lesion_models[{idx[m]}]"
                    cells.append(_ratio_ci(results, base, "or"))
                    cells.append((num(results, f"{base}.p", fmt_p),))
                    if not nl:
                        nl = base
                else:
                    cells += [_t("\u2014"), _t("\u2014")]
            cells.append(
                (
                    num(results, f"{nl}.n_lesions", fmt_count),
                    Frag(" / "),
                    num(results, f"{nl}.n_patients", fmt_count),
                )
                if nl
                else _t("")
            )
            rows.append(tuple(cells))
    data = pd.DataFrame.from_records([dict(r) for r in rows_in])
    if not data.empty:
        data.insert(3, "label", [term_label(str(t)) for t in data["term"]])
    note = (
        "OR: odds ratio of local failure of a baseline lesion at first progression; CI: Wald 95% confidence "
        "interval (Firth: profile penalized likelihood). Logistic: lesions treated as independent (R glm). "
        "GEE: patients as clusters, exchangeable working correlation, robust sandwich SE (R "
        "geepack::geeglm). NE: not estimable (see results.json). \u2014: not fitted."
    )
    info = results.get("lesion_models_info") if isinstance(results.get("lesion_models_info"), Mapping) else {}
    if info.get("n_lesions_unknown_outcome"):
        note += (
            f" {info['n_lesions_unknown_outcome']} lesion(s) of patients whose pattern is unknown have no "
            "outcome and are left out."
        )
    notes = [str(n) for n in info.get("notes") or []]
    if notes:
        note += " Notes: " + "; ".join(notes) + "."
    return ReportTable(
        "lesion_models", "Lesion-level risk factors of local failure", tuple(header), tuple(rows), data, note
    )


def _landmark_months(entries: Sequence[Any]) -> list[float]:
    out: list[float] = []
    for e in entries:
        if isinstance(e, Mapping) and isinstance(e.get("months"), (int, float)) and e["months"] not in out:
            out.append(float(e["months"]))
    return out


def _prob_ci(results: Mapping[str, Any], base: str, key: str) -> Cell:
    """``51.8% (37.6%–64.2%)`` from ``base.key``, ``base.ci_low``, ``base.ci_high`` (the interval left out
    when neither limit is estimable, e.g. an incidence of 0)."""
    est = num(results, f"{base}.{key}", fmt_prob)
    lo, hi = num(results, f"{base}.ci_low", fmt_prob), num(results, f"{base}.ci_high", fmt_prob)
    if lo.value is None and hi.value is None:
        return (est,)
    return (est, Frag(" ("), lo, Frag(DASH), hi, Frag(")"))


def survival_table(results: Mapping[str, Any]) -> ReportTable:
    """PFS and OS: patients, events, median (95% CI), survival at the landmarks; median follow-up."""
    rows, recs = [], []
    surv = results.get("survival") or {}
    months = _landmark_months(
        [
            lm
            for e in ("pfs", "os")
            if isinstance(surv.get(e), Mapping)
            for lm in surv[e].get("landmarks") or []
        ]
    )
    for e, label in (("pfs", "Progression-free survival"), ("os", "Overall survival")):
        if not isinstance(surv.get(e), Mapping):
            continue
        b = f"survival.{e}"
        cells: list[Cell] = [
            _t(label),
            (num(results, f"{b}.n", fmt_count),),
            (num(results, f"{b}.events", fmt_count),),
            (
                num(results, f"{b}.median_months", fmt_months),
                Frag(" ("),
                num(results, f"{b}.ci_low", fmt_months),
                Frag(DASH),
                num(results, f"{b}.ci_high", fmt_months),
                Frag(")"),
            ),
        ]
        lms = surv[e].get("landmarks") or []
        for m in months:
            k = next(
                (i for i, lm in enumerate(lms) if isinstance(lm, Mapping) and lm.get("months") == m), None
            )
            cells.append(
                _prob_ci(results, f"{b}.landmarks[{k}]", "survival") if k is not None else _t("\u2014")
            )
        cells.append((num(results, f"{b}.ci_method", lambda v: str(v) if v else ""),))
        rows.append(tuple(cells))
        rec = {
            "endpoint": e,
            **{k: surv[e].get(k) for k in ("n", "events", "median_months", "ci_low", "ci_high", "ci_method")},
        }
        for lm in lms:
            if isinstance(lm, Mapping):
                rec[f"survival_{lm.get('months'):g}m"] = lm.get("survival")
                rec[f"survival_{lm.get('months'):g}m_ci_low"] = lm.get("ci_low")
                rec[f"survival_{lm.get('months'):g}m_ci_high"] = lm.get("ci_high")
        recs.append(rec)
    if isinstance(results.get("followup"), Mapping):
        rows.append(
            (
                _t("Median follow-up (reverse Kaplan-Meier)"),
                _t(""),
                _t(""),
                (
                    num(results, "followup.median_months", fmt_months),
                    Frag(" ("),
                    num(results, "followup.ci_low", fmt_months),
                    Frag(DASH),
                    num(results, "followup.ci_high", fmt_months),
                    Frag(")"),
                ),
            )
            + tuple(_t("") for _ in months)
            + (_t(""),)
        )
        f = results["followup"]
        recs.append(
            {
                "endpoint": "followup",
                "median_months": f.get("median_months"),
                "ci_low": f.get("ci_low"),
                "ci_high": f.get("ci_high"),
            }
        )
    header = (
        "Endpoint",
        "Patients",
        "Events",
        "Median, months (95% CI)",
        *(f"At {m:g} months (95% CI)" for m in months),
        "CI method",
    )
    return ReportTable(
        "survival",
        "Survival from CAR T infusion",
        header,
        tuple(rows),
        pd.DataFrame.from_records(recs),
        "Kaplan-Meier estimates with pointwise 95% CI (R survival::survfit; medians as quantile.survfit; "
        "NE: not reached or not estimable, e.g. a landmark beyond the last follow-up). PFS event: "
        "progression or death; OS event: death. Months = days / 30.4375.",
    )


def patient_model_table(results: Mapping[str, Any]) -> ReportTable:
    """Patient-level hazard ratios (Cox, Efron ties) and log-rank p per endpoint and factor."""
    rows, recs = [], []
    info = (
        results.get("patient_models_info") if isinstance(results.get("patient_models_info"), Mapping) else {}
    )
    reasons = []
    for i, r in enumerate(results.get("patient_models") or []):
        if not isinstance(r, Mapping):
            continue
        b = f"patient_models[{i}]"
        k = next(
            (
                j
                for j, c in enumerate(info.get("ph_checks") or [])
                if isinstance(c, Mapping)
                and c.get("endpoint") == r.get("endpoint")
                and c.get("term") == r.get("term")
            ),
            None,
        )
        rows.append(
            (
                _t(str(r.get("endpoint", "")).upper()),
                (Frag(term_label(str(r.get("term")))),),
                (num(results, f"{b}.n_with", fmt_count),),
                _ratio_ci(results, b, "hr"),
                (num(results, f"{b}.p", fmt_p),),
                (num(results, f"{b}.logrank_p", fmt_p),),
                (num(results, f"patient_models_info.ph_checks[{k}].p", fmt_p),) if k is not None else _t(""),
            )
        )
        recs.append({**dict(r), "label": term_label(str(r.get("term")))})
        if r.get("reason"):
            reasons.append(f"{str(r.get('endpoint')).upper()} {r.get('term')}: {r.get('reason')}")
    note = (
        "HR: hazard ratio, Cox proportional hazards with Efron ties, Wald CI and p (R survival::coxph); "
        "log-rank test as R survival::survdiff; PH check: global test of proportional hazards on scaled "
        "Schoenfeld residuals (R survival::cox.zph)."
    )
    if reasons:
        note += " Not estimable: " + "; ".join(reasons) + "."
    header = (
        "Endpoint",
        "Factor",
        "Patients with factor",
        "HR (95% CI)",
        "p (Wald)",
        "Log-rank p",
        "PH check p",
    )
    return ReportTable(
        "patient_models",
        "Patient-level risk factors of progression and death",
        header,
        tuple(rows),
        pd.DataFrame.from_records(recs),
        note,
    )


def _fmt_generic(key: str, v: Any) -> str:
    k = key.lower()
    if v is None:
        return NOT_ESTIMABLE
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if k == "p" or k.endswith("_p") or "gray" in k or k.startswith("p_"):
        return fmt_p(v)
    if "month" in k or k in ("time", "t", "landmark"):
        return fmt_months(v)
    if k in ("estimate", "ci_low", "ci_high", "cif", "cuminc", "incidence", "lower", "upper"):
        return fmt_prob(v)
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _generic_table(results: Mapping[str, Any], key: str, title: str, note: str) -> ReportTable:
    """Any results.json object as a table: lists of records become rows (their keys the columns); other
    scalars are listed as "item: value"."""
    records: list[tuple[str, Mapping[str, Any]]] = []
    scalars: list[tuple[str, Any]] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            leaf = {k: v for k, v in node.items() if not isinstance(v, (Mapping, list))}
            nested = {k: v for k, v in node.items() if isinstance(v, (Mapping, list))}
            if leaf and not nested and path.endswith("]"):
                records.append((path, node))
                return
            for k, v in leaf.items():
                scalars.append((f"{path}.{k}", v))
            for k, v in nested.items():
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                if isinstance(v, (Mapping, list)):
                    walk(v, f"{path}[{i}]")
                else:
                    scalars.append((f"{path}[{i}]", v))
        else:
            scalars.append((path, node))

    walk(results.get(key), key)
    keys = list(dict.fromkeys(k for _, r in records for k in r))
    width = max(len(keys), 2)
    rows: list[tuple[Cell, ...]] = []
    for path, r in records:
        rows.append(
            tuple(
                (Frag(_fmt_generic(k, r.get(k)), f"{path}.{k}", r.get(k)),) if k in r else _t("")
                for k in keys
            )
        )
    heading_rows = set()
    if scalars:
        if rows:
            heading_rows.add(len(rows))
            rows.append((_t("Other results"),) + tuple(_t("") for _ in range(width - 1)))
        for path, v in scalars:
            item = path[len(key) + 1 :] if path.startswith(key + ".") else path
            rows.append(
                (_t(item), (Frag(_fmt_generic(item.rsplit(".", 1)[-1], v), path, v),))
                + tuple(_t("") for _ in range(width - 2))
            )
    header = tuple(keys) if keys else ("Item", "Value")
    header = header + ("",) * (width - len(header))
    flat = [{"path": p, **dict(r)} for p, r in records] + [{"path": p, "value": v} for p, v in scalars]
    return ReportTable(
        key, title, header, tuple(rows), pd.DataFrame.from_records(flat), note, frozenset(heading_rows)
    )


_CAUSE_LABELS = {
    "local component": "Local component (strictly local or mixed)",
    "strictly de novo": "Strictly de novo",
    "death without progression": "Death without progression",
    "progression, pattern unknown": "Progression, pattern unknown",
    "local failure": "Local failure",
    "death without local failure": "Death without local failure",
}


def _cif_block(
    results: Mapping[str, Any],
    base: str,
    population: str,
    months: list[float],
    rows: list[tuple[Cell, ...]],
    recs: list[dict[str, Any]],
    factor: str | None,
) -> None:
    block = lookup(results, base)
    for i, cause in enumerate(block.get("causes") or []):
        if not isinstance(cause, Mapping):
            continue
        cb = f"{base}.causes[{i}]"
        gray = cause.get("gray") if isinstance(cause.get("gray"), Mapping) else None
        for j, curve in enumerate(cause.get("curves") or []):
            if not isinstance(curve, Mapping):
                continue
            vb = f"{cb}.curves[{j}]"
            group = curve.get("group")
            glabel = (
                "all"
                if group is None
                else (
                    f"{term_label(factor)}: {'yes' if str(group) in ('1', '1.0', 'True') else 'no'}"
                    if factor and str(group) in ("0", "1", "0.0", "1.0", "True", "False")
                    else str(group)
                )
            )
            cells: list[Cell] = [
                _t(population),
                _t(_CAUSE_LABELS.get(str(cause.get("cause")), str(cause.get("cause")))),
                _t(glabel),
                (num(results, f"{vb}.n", fmt_count),),
                (num(results, f"{vb}.events", fmt_count),),
            ]
            lms = curve.get("landmarks") or []
            for m in months:
                k = next(
                    (x for x, lm in enumerate(lms) if isinstance(lm, Mapping) and lm.get("months") == m), None
                )
                cells.append(
                    _prob_ci(results, f"{vb}.landmarks[{k}]", "incidence") if k is not None else _t("")
                )
            cells.append((num(results, f"{cb}.gray.p", fmt_p),) if gray is not None and j == 0 else _t(""))
            rows.append(tuple(cells))
            rec: dict[str, Any] = {
                "population": population,
                "cause": cause.get("cause"),
                "group": group,
                "n": curve.get("n"),
                "events": curve.get("events"),
                "gray_p": gray.get("p") if gray else None,
            }
            for lm in lms:
                if isinstance(lm, Mapping):
                    for key in ("incidence", "ci_low", "ci_high"):
                        rec[f"{key}_{lm.get('months'):g}m"] = lm.get(key)
            recs.append(rec)


def competing_risks_table(results: Mapping[str, Any]) -> ReportTable | None:
    """Cumulative incidence (with CI) at the landmarks per cause, overall and by group, with Gray's p.

    Reads the ``competing_risks`` object of results.json as :mod:`pofa.stats.study_stats` writes it
    (``patients`` / ``lesions``, each ``overall`` and by group or factor); any other shape is shown as a
    generic table of its numbers.
    """
    cr = results.get("competing_risks")
    if cr is None:
        return None
    title = "Competing risks: cumulative incidence of local and de novo failure"
    note = (
        "Cumulative incidence (Aalen-Johansen) with pointwise 95% CI at each landmark, death without "
        "progression (or without local failure) competing; Gray's test between the groups (R "
        "cmprsk::cuminc)."
    )
    pats = cr.get("patients") if isinstance(cr, Mapping) else None
    if not isinstance(pats, Mapping) or not isinstance(pats.get("overall"), Mapping):
        return _generic_table(results, "competing_risks", title, note)
    months = _landmark_months(
        [
            lm
            for block in _cif_blocks(cr)
            for cause in block.get("causes") or []
            if isinstance(cause, Mapping)
            for curve in cause.get("curves") or []
            if isinstance(curve, Mapping)
            for lm in curve.get("landmarks") or []
        ]
    )
    rows: list[tuple[Cell, ...]] = []
    recs: list[dict[str, Any]] = []
    _cif_block(results, "competing_risks.patients.overall", "Patients", months, rows, recs, None)
    by = pats.get("by_group")
    if isinstance(by, Mapping):
        factor = next(
            (
                c["gray"].get("by")
                for c in by.get("causes") or []
                if isinstance(c, Mapping) and isinstance(c.get("gray"), Mapping) and c["gray"].get("by")
            ),
            None,
        )
        _cif_block(results, "competing_risks.patients.by_group", "Patients", months, rows, recs, factor)
    les = cr.get("lesions")
    if isinstance(les, Mapping):
        if isinstance(les.get("overall"), Mapping):
            _cif_block(results, "competing_risks.lesions.overall", "Lesions", months, rows, recs, None)
        for i, f in enumerate(les.get("by_factor") or []):
            if isinstance(f, Mapping):
                _cif_block(
                    results,
                    f"competing_risks.lesions.by_factor[{i}]",
                    "Lesions",
                    months,
                    rows,
                    recs,
                    str(f.get("term")),
                )
        if les.get("note"):
            note += f" Lesions: {les['note']}."
    header = (
        "Population",
        "Cause",
        "Group",
        "n",
        "Events",
        *(f"At {m:g} months, % (95% CI)" for m in months),
        "Gray p",
    )
    return ReportTable("competing_risks", title, header, tuple(rows), pd.DataFrame.from_records(recs), note)


def _cif_blocks(cr: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    out: list[Mapping[str, Any]] = []
    for pop in ("patients", "lesions"):
        node = cr.get(pop)
        if not isinstance(node, Mapping):
            continue
        for key in ("overall", "by_group"):
            if isinstance(node.get(key), Mapping):
                out.append(node[key])
        out.extend(f for f in node.get("by_factor") or [] if isinstance(f, Mapping))
    return out


def cutpoint_table(results: Mapping[str, Any]) -> ReportTable | None:
    """Exploratory cut-points (maximally selected log-rank statistics) with corrected p-values."""
    cps = results.get("cutpoints")
    if not isinstance(cps, list) or not cps:
        return None
    rows, recs, notes = [], [], []
    for i, c in enumerate(cps):
        if not isinstance(c, Mapping):
            continue
        b = f"cutpoints[{i}]"
        feature = str(c.get("feature"))
        rows.append(
            (
                _t(
                    {"max_diameter_cm": "Largest lesion diameter, cm", "max_suvmax": "Highest SUVmax"}.get(
                        feature, feature
                    )
                ),
                _t(str(c.get("endpoint", "")).upper()),
                (num(results, f"{b}.cutpoint", lambda v: NOT_ESTIMABLE if v is None else f"{v:g}"),),
                (num(results, f"{b}.n_low", fmt_count), Frag(" / "), num(results, f"{b}.n_high", fmt_count)),
                (num(results, f"{b}.statistic", lambda v: fmt_ratio(v)),),
                (num(results, f"{b}.p_lau92", fmt_p),),
                (num(results, f"{b}.p_lau94", fmt_p),),
            )
        )
        recs.append(dict(c))
        for k in ("note", "reason"):
            if c.get(k) and str(c[k]) not in notes:
                notes.append(str(c[k]))
    note = (
        "EXPLORATORY. Maximally selected log-rank statistic over the observed values (R "
        "maxstat::maxstat.test); p-values corrected for choosing the cut-point on the same data (Lausen & "
        "Schumacher 1992, Lau92; Lausen, Sauerbrei & Schumacher 1994, Lau94). A cut-point chosen this way "
        "overstates its effect."
    )
    if notes:
        note += " " + " ".join(notes)
    return ReportTable(
        "cutpoints",
        "Exploratory cut-points for progression-free survival",
        (
            "Feature",
            "Endpoint",
            "Cut-point",
            "Patients at or below / above the cut-point",
            "Statistic",
            "p (Lau92)",
            "p (Lau94)",
        ),
        tuple(rows),
        pd.DataFrame.from_records(recs),
        note,
    )


def build_tables(inp: ReportInput) -> tuple[ReportTable, ...]:
    """Every table of the report, in report order (tables whose results are absent are left out)."""
    r = inp.results
    out = [table1(inp)]
    if isinstance(r.get("patterns"), Mapping):
        out += [flow_table(r), pattern_table(r)]
    if r.get("lesion_models"):
        out.append(lesion_model_table(r))
    if isinstance(r.get("survival"), Mapping) or isinstance(r.get("followup"), Mapping):
        out.append(survival_table(r))
    if r.get("patient_models"):
        out.append(patient_model_table(r))
    cr = competing_risks_table(r)
    if cr is not None:
        out.append(cr)
    cp = cutpoint_table(r)
    if cp is not None:
        out.append(cp)
    return tuple(out)


# ------------------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------------------

_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _xlsx_bytes(table: ReportTable) -> bytes:
    """The table as an XLSX workbook, reproducible byte for byte and free of dates.

    openpyxl stamps the save time into docProps/core.xml and every zip entry; both are removed here (a
    report must carry no calendar dates, and the same analysis must give the same files).
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = table.name[:31]
    for c in append_xlsx_row(ws, [str(c) for c in table.data.columns]):
        c.font = Font(bold=True)
    for rec in table.data.itertuples(index=False, name=None):
        append_xlsx_row(ws, [_xlsx_value(v) for v in rec])
    about = wb.create_sheet("about")
    append_xlsx_row(about, ["title", table.title])
    append_xlsx_row(about, ["note", table.note])
    append_xlsx_row(about, ["made by", "pofa"])
    buf = io.BytesIO()
    wb.save(buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in sorted(src.infolist(), key=lambda i: i.filename):
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = data.decode("utf-8")
                text = re.sub(r"<dcterms:(created|modified)[^>]*>[^<]*</dcterms:\1>", "", text)
                data = text.encode("utf-8")
            zi = zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            dst.writestr(zi, data)
    return out.getvalue()


def _xlsx_value(v: Any) -> Any:
    if v is None or v is pd.NA:
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, np.generic):
        v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            return None
    if isinstance(v, (list, tuple, dict)):
        return str(v)
    return v


def table_csv_bytes(table: ReportTable) -> bytes:
    """The table's data as UTF-8 CSV (full precision; blank = missing)."""
    return csv_text(table.data).encode("utf-8")


def write_table(table: ReportTable, folder: Path) -> list[Path]:
    """Write ``<name>.csv`` and ``<name>.xlsx`` into ``folder`` (atomically); returns the paths."""
    folder = Path(folder)
    csv_path = folder / f"{table.name}.csv"
    xlsx_path = folder / f"{table.name}.xlsx"
    write_bytes(csv_path, table_csv_bytes(table))
    write_bytes(xlsx_path, _xlsx_bytes(table))
    return [csv_path, xlsx_path]


def cell_text(cell: Sequence[Frag]) -> str:
    """The text of a cell as shown."""
    return "".join(f.text for f in cell)
