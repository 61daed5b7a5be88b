"""Write report.html and the output files around it: the report's entry point, :func:`write_report`.

The HTML file is self-contained: figures are embedded as base64 SVG data URIs, CSS is inline, there is no
script, and a Content-Security-Policy forbids every request except ``data:`` images, so the file opens offline
and never contacts a server. Every number from results.json is written inside an element carrying
``data-result="<path>"`` and ``data-value="<exact JSON value>"`` (see :mod:`pofa.report.tables`), which is how
the browser test proves that the report shows exactly the numbers of results.json.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pofa.atomic import write_bytes, write_text
from pofa.report.format import DASH, fmt_count, fmt_months, fmt_pct, fmt_ratio, p_phrase
from pofa.report.model import ReportError, ReportInput, as_report_input
from pofa.report.tables import Frag, ReportTable, num

if TYPE_CHECKING:
    import jinja2

    from pofa.settings import Settings

__all__ = ["ReportFiles", "render_html", "report_writer", "write_report", "write_run_manifest"]

REPORT_NAME = "report.html"
RESULTS_NAME = "results.json"
FIGURES_DIR = "figures"
TABLES_DIR = "tables"
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """Paths written by :func:`write_report` (absolute).

    Attributes
    ----------
    folder : Path
        The output folder.
    report : Path
        report.html.
    figures : tuple of Path
        The figure files written (SVG, and PNG when asked for).
    tables : tuple of Path
        The table files written (CSV and XLSX).
    manifest : Path or None
        manifest.json, or ``None`` when it was not written.
    results : Path or None
        results.json, or ``None`` when it was not written.
    """

    folder: Path
    report: Path
    figures: tuple[Path, ...]
    tables: tuple[Path, ...]
    manifest: Path | None
    results: Path | None

    def names(self) -> list[str]:
        """List report.html, the figures and the tables written, relative to the folder.

        Returns
        -------
        list of str
            POSIX paths relative to ``folder`` (results.json and the manifest are not included).
        """
        return [p.relative_to(self.folder).as_posix() for p in (self.report, *self.figures, *self.tables)]


def _json_attr(v: Any) -> str:
    return json.dumps(v, allow_nan=False, ensure_ascii=False)


def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pofa.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=True, default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["json_attr"] = _json_attr
    return env


# ------------------------------------------------------------------------------------------------------
# the summary sentences and the patient flow (fragments of results.json numbers)
# ------------------------------------------------------------------------------------------------------


def _pct(k: int, d: int) -> Frag:
    return Frag(fmt_pct(k, d))


def summary_sentences(inp: ReportInput) -> list[list[Frag]]:
    """Key findings as sentences of fragments (numbers carry their results.json paths).

    Parameters
    ----------
    inp : ReportInput
        The report input (pattern counts and typed statistics).

    Returns
    -------
    list of list of Frag
        One list of text and number fragments per sentence; empty when there is nothing to summarise.
    """
    out: list[list[Frag]] = []
    c = inp.pattern_counts
    st = inp.statistics
    if c is not None:
        s = [
            num(c.patients, "patterns.patients", fmt_count),
            Frag(" patients with "),
            num(c.lesions, "patterns.lesions", fmt_count),
            Frag(" baseline lesions were analysed"),
        ]
        if st is not None and st.survival is not None:
            f = st.survival.followup
            s += [
                Frag("; median follow-up "),
                num(f.median, "followup.median_months", fmt_months),
                Frag(" months (95% CI "),
                num(f.ci_low, "followup.ci_low", fmt_months),
                Frag(DASH),
                num(f.ci_high, "followup.ci_high", fmt_months),
                Frag(")"),
            ]
        out.append(s + [Frag(".")])

        def n(key: str) -> Frag:
            return num(getattr(c, key), f"patterns.{key}", fmt_count)

        out.append(
            [
                n("recurred"),
                Frag(" patients recurred ("),
                _pct(c.recurred, c.patients),
                Frag("). Of them, "),
                n("local_component"),
                Frag(" ("),
                _pct(c.local_component, c.recurred),
                Frag(") had a component of local failure: "),
                n("strictly_local"),
                Frag(" ("),
                _pct(c.strictly_local, c.recurred),
                Frag(") strictly local and "),
                n("mixed"),
                Frag(" ("),
                _pct(c.mixed, c.recurred),
                Frag(") mixed; "),
                n("strictly_de_novo"),
                Frag(" ("),
                _pct(c.strictly_de_novo, c.recurred),
                Frag(") failed strictly de novo and "),
                n("unknown"),
                Frag(" had an unknown pattern. "),
                n("maintained_control"),
                Frag(" ("),
                _pct(c.maintained_control, c.recurred),
                Frag(") kept at least one baseline lesion controlled; "),
                n("local_failure_lesions"),
                Frag(" of "),
                n("lesions"),
                Frag(" baseline lesions failed locally at first progression."),
            ]
        )
    if st is None:
        return out
    lm = st.lesion_models
    if lm is not None:
        multi = [(i, x) for i, x in enumerate(lm.rows) if x.method == "gee" and x.model == "multivariable"]
        if not multi:
            multi = [(i, x) for i, x in enumerate(lm.rows) if x.method == "gee"]
        if multi:
            s = [Frag(f"Lesion-level risk of local failure ({multi[0][1].model} GEE): ")]
            for k, (i, x) in enumerate(multi):
                b = f"lesion_models[{i}]"
                s += [
                    Frag("; " if k else ""),
                    Frag(x.label),
                    Frag(" OR "),
                    num(x.odds_ratio, f"{b}.or", fmt_ratio),
                    Frag(" (95% CI "),
                    num(x.ci_low, f"{b}.ci_low", fmt_ratio),
                    Frag(DASH),
                    num(x.ci_high, f"{b}.ci_high", fmt_ratio),
                    Frag(", "),
                    num(x.p, f"{b}.p", p_phrase),
                    Frag(")"),
                ]
            out.append(s + [Frag(".")])
    if st.survival is not None:
        for e, word in (("pfs", "PFS"), ("os", "OS")):
            km = st.survival.endpoint(e)
            b = f"survival.{e}"
            out.append(
                [
                    Frag(f"Median {word} "),
                    num(km.median, f"{b}.median_months", fmt_months),
                    Frag(" months (95% CI "),
                    num(km.ci_low, f"{b}.ci_low", fmt_months),
                    Frag(DASH),
                    num(km.ci_high, f"{b}.ci_high", fmt_months),
                    Frag("); "),
                    num(km.events, f"{b}.events", fmt_count),
                    Frag(" events in "),
                    num(km.n, f"{b}.n", fmt_count),
                    Frag(" patients."),
                ]
            )
    if st.patient_models is not None:
        for i, cox in enumerate(st.patient_models.rows):
            b = f"patient_models[{i}]"
            s = [Frag(cox.label)]
            if cox.binary:
                s += [Frag(" ("), num(cox.n_with, f"{b}.n_with", fmt_count), Frag(" patients)")]
            s += [
                Frag(f", {cox.endpoint.upper()}: HR "),
                num(cox.hr, f"{b}.hr", fmt_ratio),
                Frag(" (95% CI "),
                num(cox.ci_low, f"{b}.ci_low", fmt_ratio),
                Frag(DASH),
                num(cox.ci_high, f"{b}.ci_high", fmt_ratio),
                Frag(", Cox "),
                num(cox.p, f"{b}.p", p_phrase),
            ]
            if cox.binary:
                s += [Frag("; log-rank "), num(cox.logrank_p, f"{b}.logrank_p", p_phrase)]
            out.append(s + [Frag(").")])
    return out


def flow_boxes(inp: ReportInput) -> list[tuple[str, list[Frag], list[Frag]]]:
    """Build the boxes of the patient-flow diagram.

    Parameters
    ----------
    inp : ReportInput
        The report input (pattern counts and survival results).

    Returns
    -------
    list of tuple
        ``(label, number fragments, side-note fragments)`` per box, top to bottom.
    """
    c = inp.pattern_counts
    st = inp.statistics
    boxes: list[tuple[str, list[Frag], list[Frag]]] = []
    if c is not None:
        boxes.append(("Patients included", [num(c.patients, "patterns.patients", fmt_count)], []))
    if st is not None and st.survival is not None:
        boxes.append(
            (
                "Eligible for survival",
                [num(st.survival.pfs.n, "survival.pfs.n", fmt_count)],
                [Frag("PFS; OS: "), num(st.survival.os.n, "survival.os.n", fmt_count)],
            )
        )
    if c is not None:
        boxes.append(("Recurred", [num(c.recurred, "patterns.recurred", fmt_count)], []))
        boxes.append(
            (
                "Pattern known",
                [Frag(fmt_count(c.recurred - c.unknown))],
                [Frag("unknown: "), num(c.unknown, "patterns.unknown", fmt_count)],
            )
        )
    return boxes


# ------------------------------------------------------------------------------------------------------
# rendering
# ------------------------------------------------------------------------------------------------------


def render_html(
    inp: ReportInput,
    figures: Sequence[Any],
    tables: Sequence[ReportTable],
    methods: Sequence[str],
    *,
    show_ids: bool,
    versions: Mapping[str, str],
    files: Sequence[str],
) -> str:
    """Render the report as one HTML string.

    Parameters
    ----------
    inp : ReportInput
        The report input.
    figures : Sequence of RenderedFigure
        The rendered figures (:class:`~pofa.report.figures.RenderedFigure`), embedded as SVG data URIs in
        this order.
    tables : Sequence of ReportTable
        The report's tables, numbered in this order.
    methods : Sequence of str
        The paragraphs of the methods section.
    show_ids : bool
        Whether patients are labelled by their study identifiers (stated in the report).
    versions : Mapping[str, str]
        Software versions shown in the report.
    files : Sequence of str
        Names of the files written beside the report, relative to the output folder.

    Returns
    -------
    str
        The complete, self-contained HTML document.
    """
    env = _environment()
    tpl = env.get_template("report.html.j2")
    figs = []
    for k, f in enumerate(figures, start=1):
        figs.append(
            {
                "number": k,
                "name": f.spec.name,
                "title": f.spec.title,
                "caption": f.spec.caption,
                "alt": f.spec.alt,
                "how": f.spec.how,
                "src": "data:image/svg+xml;base64," + base64.b64encode(f.svg).decode("ascii"),
                # shown at the size it was drawn (points -> CSS pixels), at most the page width
                "width": round(f.width_pt * 96 / 72),
                "height": round(f.height_pt * 96 / 72),
                "png": bool(f.png),
            }
        )
    fig_by = {f["name"]: f for f in figs}
    tab_by = {t.name: (k, t) for k, t in enumerate(tables, start=1)}
    return tpl.render(
        title=inp.study_label,
        show_ids=show_ids,
        versions=versions,
        summary=summary_sentences(inp),
        flow=flow_boxes(inp),
        simulated=inp.simulated,
        paper_demo=inp.paper_demo,
        figures=figs,
        fig_by=fig_by,
        tables=tab_by,
        km_figs=[f for f in figs if f["name"].startswith("km_")],
        scan_figs=[f for f in figs if f["name"].startswith("scans_")],
        methods=list(methods),
        settings_json=json.dumps(inp.settings.to_json(), indent=2, ensure_ascii=False),
        input_hashes=sorted(inp.input_hashes.items()),
        seeds=sorted(inp.seeds.items()),
        files=list(files),
        has_results=bool(inp.results),
    )


def _comparable(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The results document without its ``files`` list (the analysis writes that list last)."""
    return {k: v for k, v in doc.items() if k != "files"}


def _check_results_file(out_dir: Path, inp: ReportInput, write_results: bool) -> Path | None:
    """Check results.json of ``out_dir`` against the results given (they must agree, ``files`` aside);
    write it when it is missing and ``write_results``."""
    path = out_dir / RESULTS_NAME
    if path.is_file():
        try:
            on_disk = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ReportError(f"{path} cannot be read as JSON ({exc}); re-run the analysis") from None
        from pofa.report.model import normalise_results

        if _comparable(normalise_results(on_disk)) != _comparable(inp.results):
            raise ReportError(
                f"{path} differs from the results given to the report; write the report from the same "
                "results that were written to results.json"
            )
        return path
    if write_results:
        write_text(path, json.dumps(inp.results, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
        return path
    return None


def _show_ids(result_like: Any, settings: Settings, show_ids: bool | None) -> bool:
    if show_ids is not None:
        return bool(show_ids)
    options = getattr(result_like, "options", None)
    if options is not None and isinstance(getattr(options, "show_ids", None), bool):
        return bool(options.show_ids)
    return bool(settings.report.show_ids)


def write_report(
    result_like: Any,
    out_dir: str | Path,
    *,
    show_ids: bool | None = None,
    versions: Mapping[str, str] | None = None,
    manifest: bool = True,
    write_results: bool = True,
    study_folder: str | Path | None = None,
    png: bool | None = None,
) -> ReportFiles:
    """Write report.html, figures/, tables/ (CSV + XLSX) and manifest.json.

    Each figure is drawn once and written as SVG (the image embedded in the report); with ``png`` also as a
    300-dpi PNG of the same drawing.

    Parameters
    ----------
    result_like : ReportInput or analysis result
        What to report (see :func:`pofa.report.model.as_report_input`; a
        :class:`pofa.analysis.AnalysisResult` works as it is).
    out_dir : str or Path
        Output folder (created if needed). When it already holds results.json, that file must equal the
        results given (its ``files`` list aside).
    show_ids : bool, optional
        Label patients by their study identifiers instead of sequence numbers 1..n (``--show-ids``). Default:
        the result's ``options.show_ids`` if it has one, else the settings' ``[report] show_ids`` (false).
    versions : Mapping, optional
        Software versions to record (default: those installed).
    manifest : bool
        Write manifest.json last, listing and hashing every file of the folder. An analysis that writes
        results.json after its writers calls :func:`pofa.report.write_run_manifest` itself instead.
    write_results : bool
        Write results.json from the results given when the folder has none (standalone use).
    study_folder : str or Path, optional
        The analysed study folder (default: the result's ``study_path``). When it was built from images
        (``imaging.json`` with figure data), the report gets a section "Baseline and failure scans" with one
        figure per patient with a failure scan (:func:`pofa.report.plots.build_scan_figures`).
    png : bool, optional
        Also write each figure as a 300-dpi PNG (rendered from the drawing the SVG was made of). Default: the
        settings' ``[report] png`` (false: SVG only).

    Returns
    -------
    ReportFiles
        The paths written.

    Raises
    ------
    ReportError
        When ``out_dir`` exists and is not a folder, when an existing results.json cannot be read or differs
        from the results given, or when the input is not a valid report input.
    """
    from pofa.report.manifest import dependency_versions, write_manifest
    from pofa.report.methods import methods_paragraphs
    from pofa.report.plots import (
        BuiltFigure,
        RenderedFigure,
        build_scan_figures,
        iter_figures,
        rc_context,
        release_figure,
        render_figure,
        settled_heap,
    )
    from pofa.report.tables import build_tables, write_table

    inp = as_report_input(result_like)
    ids = _show_ids(result_like, inp.settings, show_ids)
    out = Path(out_dir).absolute()
    if out.exists() and not out.is_dir():
        raise ReportError(f"{out} exists and is not a folder; choose another output folder")
    out.mkdir(parents=True, exist_ok=True)
    v = dict(versions) if versions is not None else dependency_versions()
    results_path = _check_results_file(out, inp, write_results)
    if study_folder is None:
        study_folder = getattr(result_like, "study_path", None)

    if png is None:
        png = bool(inp.settings.report.png)
    statistics = inp.statistics
    lesions = getattr(result_like, "lesions", inp.lesions)
    fig_paths: list[Path] = []
    rendered = []

    def write_figure(rf: RenderedFigure) -> None:
        for ext, data in (("svg", rf.svg), ("png", rf.png)):
            if data:
                p = out / FIGURES_DIR / f"{rf.spec.name}.{ext}"
                write_bytes(p, data)
                fig_paths.append(p)

    with rc_context(), settled_heap():
        # one drawing at a time: each figure is built, rendered and cleared before the next is built
        def scan_figures() -> Iterator[BuiltFigure]:
            yield from build_scan_figures(inp, study_folder, show_ids=ids, versions=v)

        for built in itertools.chain(iter_figures(inp, show_ids=ids, versions=v), scan_figures()):
            rf = render_figure(built, png=png)
            release_figure(built.figure)
            rendered.append(rf)
            write_figure(rf)
        # the sections' figures, drawn once too: written here, embedded by the sections below
        from pofa.report.radiotherapy import render_dose_response_figure  # radiotherapy figure hook

        dose_figure = render_dose_response_figure(statistics, lesions, inp.settings, png=png)
        if dose_figure is not None:
            write_figure(dose_figure)
        from pofa.report.response import render_response_section_figures  # response figures hook

        response_figures = render_response_section_figures(statistics, png=png)
        for rf in response_figures:
            write_figure(rf)
    tables = build_tables(inp)
    tab_paths: list[Path] = []
    for t in tables:
        tab_paths += write_table(t, out / TABLES_DIR)
    methods = methods_paragraphs(inp, v)
    listed = sorted(p.relative_to(out).as_posix() for p in (*fig_paths, *tab_paths))
    html = render_html(
        inp,
        rendered,
        tables,
        methods,
        show_ids=ids,
        versions=v,
        files=[REPORT_NAME, RESULTS_NAME, *listed, MANIFEST_NAME],
    )
    from pofa.report.radiotherapy import insert_radiotherapy_section  # radiotherapy section hook

    html = insert_radiotherapy_section(html, statistics, lesions, getattr(result_like, "failures", None),
                                       inp.settings, figure=dose_figure)
    from pofa.report.response import insert_response_section  # response section hook

    html = insert_response_section(html, statistics, figures=response_figures)
    report_path = out / REPORT_NAME
    write_text(report_path, html)
    manifest_path = None
    if manifest:
        manifest_path = write_manifest(
            out,
            settings=inp.settings.to_json(),
            input_hashes=inp.input_hashes,
            seeds=inp.seeds,
            report_options={"show_ids": ids},
            versions=v,
        )
    return ReportFiles(out, report_path, tuple(fig_paths), tuple(tab_paths), manifest_path, results_path)


def report_writer(result: Any, folder: Path) -> list[str]:
    """Write the report as a writer of :func:`pofa.analysis.write_outputs` (``WRITERS``).

    Writes report.html, figures/ (SVG; PNG too with the settings' ``[report] png``) and tables/ into
    ``folder`` and returns their names relative to it. It does not write results.json or manifest.json: the
    analysis writes results.json after its writers, then calls :func:`write_run_manifest`.

    Parameters
    ----------
    result : Any
        The analysis result (anything :func:`pofa.report.model.as_report_input` accepts).
    folder : Path
        The output folder.

    Returns
    -------
    list of str
        The files written, relative to ``folder``.
    """
    files = write_report(result, folder, manifest=False, write_results=False)
    return files.names()


def write_run_manifest(
    result_like: Any,
    out_dir: str | Path,
    *,
    show_ids: bool | None = None,
    versions: Mapping[str, str] | None = None,
) -> Path:
    """Write manifest.json of an output folder (versions, input and file SHA-256, settings, seeds).

    Call it last, after results.json is written.

    Parameters
    ----------
    result_like : Any
        The analysis result (anything :func:`pofa.report.model.as_report_input` accepts).
    out_dir : str or Path
        The output folder whose files are listed and hashed.
    show_ids : bool, optional
        Whether patients were labelled by their identifiers (default: the result's or the settings' choice).
    versions : Mapping[str, str], optional
        Software versions to record (default: those installed).

    Returns
    -------
    Path
        The path of manifest.json.
    """
    from pofa.report.manifest import write_manifest
    from pofa.report.model import run_provenance

    settings, hashes, seeds = run_provenance(result_like)
    return write_manifest(
        Path(out_dir),
        settings=settings.to_json(),
        input_hashes=hashes,
        seeds=seeds,
        report_options={"show_ids": _show_ids(result_like, settings, show_ids)},
        versions=versions,
    )
