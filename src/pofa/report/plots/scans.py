"""Figures: each patient's baseline and failure scans (coronal MIPs with lesion outlines).

Drawn for a study built from images (``imaging.json``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from pofa.report.model import ReportInput
from pofa.report.plots.base import BuiltFigure, FigureSpec, add_footer, software_line

if TYPE_CHECKING:
    from pofa.imaging.mip import MatchMip

__all__ = ["IMAGING_JSON", "build_scan_figures", "scan_figure_data"]


#: The file of a study folder built from images (``pofa build-study``, ``pofa analyze MANIFEST.csv``) that
#: holds each patient's baseline-and-failure figure data (:mod:`pofa.batch.study`).
IMAGING_JSON = "imaging.json"


def scan_figure_data(study_folder: str | Path | None) -> dict[str, tuple[MatchMip, int]]:
    """Read each patient's baseline-and-failure figure data from ``study_folder/imaging.json``.

    A damaged file is an error, never a silent gap in the report.

    Parameters
    ----------
    study_folder : str or Path or None
        The analysed study folder (``None``: no figure data).

    Returns
    -------
    dict[str, tuple[MatchMip, int]]
        Patient id -> (figure data, number of failure scans); empty when there is no such file (a study
        not built from images) or it holds no figure data.

    Raises
    ------
    ReportError
        When imaging.json cannot be read or a patient's figure data is damaged.
    """
    if study_folder is None:
        return {}
    path = Path(study_folder) / IMAGING_JSON
    if not path.is_file():
        return {}  # a study not built from images: pofa.imaging is not imported
    from pofa.errors import ImagingError
    from pofa.imaging.mip import MatchMip
    from pofa.report.model import ReportError

    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path} cannot be read ({exc}); build the study from the manifest again") from None
    entries = info.get("patients") if isinstance(info, Mapping) else None
    out: dict[str, tuple[MatchMip, int]] = {}
    for entry in entries if isinstance(entries, list) else []:
        data = entry.get("figure") if isinstance(entry, Mapping) else None
        if not data:
            continue
        try:
            n_scans = sum(1 for sc in entry.get("scans") or [] if sc.get("role") == "failure")
            out[str(entry["patient_id"])] = (MatchMip.from_json(data), n_scans)
        except (ImagingError, KeyError, AttributeError) as exc:
            raise ReportError(f"{path}: the figure data of a patient cannot be read ({exc})") from None
    return out


def _counted(counts: Mapping[str, int], keys: Sequence[str]) -> str:
    """``"2 local, 1 de novo"``: the non-zero counts (or ``"none"``)."""
    parts = [f"{counts[k]} {k}" for k in keys if counts.get(k)]
    return ", ".join(parts) or "none"


def build_scan_figures(
    inp: ReportInput,
    study_folder: str | Path | None,
    *,
    show_ids: bool = False,
    versions: Mapping[str, str] | None = None,
) -> tuple[BuiltFigure, ...]:
    """Build one figure per patient with a failure scan, from the study's imaging.json.

    Each figure shows coronal MIPs of the baseline and first failure PET, lesions outlined by outcome
    (baseline) and class (failure). Only patients of the analysed patients table are drawn, in
    study-sequence order; they are labelled by sequence number (``show_ids``: by identifier, and the scan
    dates are given). ``drawn`` of each figure holds ``patient_id``, ``baseline`` (label -> outcome) and
    ``failure`` (label -> class) as drawn.

    Parameters
    ----------
    inp : ReportInput
        The report input (the analysed patients and the simulated mark).
    study_folder : str or Path or None
        The analysed study folder holding imaging.json.
    show_ids : bool
        Label patients by their identifiers and give the scan dates.
    versions : Mapping[str, str], optional
        Software versions named in the notes (default: those installed).

    Returns
    -------
    tuple of BuiltFigure
        The figures, empty for a study without imaging figure data.

    Raises
    ------
    ReportError
        When imaging.json is damaged.
    """
    data = scan_figure_data(study_folder)
    if not data:
        return ()
    from pofa.imaging.matching import MatchClass
    from pofa.imaging.mip import BASELINE_COLOURS, draw_match_mip
    from pofa.report.manifest import dependency_versions
    from pofa.report.model import sequence_numbers

    v = dict(versions) if versions is not None else dependency_versions()
    sw = f"Drawn with {software_line(v)}."
    labels = inp.patient_labels(show_ids)
    seq = sequence_numbers(inp.patients["patient_id"])
    out = []
    for pid in sorted((p for p in data if p in seq), key=lambda p: seq[p]):
        mip, n_scans = data[pid]
        label = labels[pid]
        # panels of about 2.6 inches across, as tall as the projections are (head to feet), plus room for the
        # title, axis labels and legends
        aspect = max(
            (p.extent[3] - p.extent[2]) / (p.extent[1] - p.extent[0]) for p in (mip.baseline, mip.failure)
        )
        fig = Figure(figsize=(6.5, min(9.5, max(3.5, 2.6 * aspect + 1.8))), layout="constrained")
        axes = fig.subplots(1, 2)
        draw_match_mip(mip, axes, title=f"Patient {label}")
        if show_ids:
            for ax, date in zip(axes, (mip.baseline_date, mip.failure_date), strict=True):
                if date:
                    ax.set_title(f"{ax.get_title()}, {date}")
        counts = mip.counts()
        b_keys = list(BASELINE_COLOURS)
        f_keys = [c.value for c in MatchClass]
        n_b, n_f = len(mip.baseline.outlines), len(mip.failure.outlines)
        which = "the failure PET" if n_scans <= 1 else f"the first of {n_scans} failure PETs"
        dates = (
            f" (baseline {mip.baseline_date}, failure {mip.failure_date})"
            if show_ids and (mip.baseline_date or mip.failure_date)
            else ""
        )
        caption = (
            "Coronal maximum-intensity projections of the baseline PET and "
            f"{which} of patient {label}{dates}. Baseline lesions ({n_b}) are outlined by outcome: "
            f"{_counted(counts['baseline'], b_keys)}; failure lesions ({n_f}) by class: "
            f"{_counted(counts['failure'], f_keys)}."
        )
        alt = (
            f"Two grey-scale PET projections of patient {label}, baseline on the left and failure on the "
            f"right, with {n_b} baseline lesion outlines ({_counted(counts['baseline'], b_keys)}) and {n_f} "
            f"failure lesion outlines ({_counted(counts['failure'], f_keys)})."
        )
        no_dates = " except the scan dates (--show-ids)" if show_ids else ""
        how = (
            "Maximum-intensity projections of the SUV images along the anterior-posterior axis (anterior "
            "view: head at the top, the patient's right on the left), one grey scale for both panels from 0 "
            f"to SUV {mip.baseline.vmax:.3g} (the 99.5th percentile of the baseline projection). Each "
            "lesion's projection is outlined in Okabe-Ito colours; a baseline lesion is a local failure when "
            "a failure lesion is local to it. Registration of the failure scan to the baseline: "
            f"{mip.registration} Lesion matching: local = overlap with a baseline lesion grown by "
            f"{mip.tolerance_mm:g} mm, marginal = within {mip.margin_mm:g} mm, de novo = farther "
            f"(match_class of failures.csv). No calendar dates are shown{no_dates}. {sw}"
        )
        spec = FigureSpec(
            f"scans_{seq[pid]:03d}", f"Baseline and failure scans of patient {label}", caption, alt, how
        )
        drawn = {
            "patient_id": pid,
            "baseline": mip.baseline.outcomes(),
            "failure": mip.failure.outcomes(),
        }
        add_footer(fig, inp.simulated)
        out.append(BuiltFigure(spec, fig, drawn))
    return tuple(out)
