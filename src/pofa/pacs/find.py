"""Finding PET/CT series on a DICOMweb server (QIDO-RS) and writing them as an imaging manifest to edit.

:func:`find_series` asks the server for the studies (optionally of one patient, from a date on) and, in each,
the PT and CT series. :func:`manifest_rows` makes one manifest row per PET series: ``patient_id`` (the
PACS's PatientID), ``scan_date`` (the study date), ``pet`` (a ``dicomweb:`` reference) and ``ct``: the CT
series of the same study when there is one, or among several the one in the PET's frame of reference
(FrameOfReferenceUID); otherwise blank with a note. ``role`` is left blank (baseline or failure is a reader's
decision), and ``mask``, ``organs``, ``threshold`` and ``transform`` too.

The manifest necessarily holds patient identifiers (PatientID, the dates): it is a working file to edit and
keep with the other clinical inputs, never an output to share. The notes returned name manifest rows, never
patient identifiers.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pofa.pacs.errors import PacsConfigError
from pofa.pacs.reference import SeriesRef, check_uid, normalise_url

__all__ = ["FOUND_MODALITIES", "FindResult", "FoundSeries", "find_series", "manifest_rows", "manifest_text"]

#: The modalities a manifest can use: PET series become rows, CT series their ``ct``.
FOUND_MODALITIES = ("PT", "CT")
_MANIFEST_HEADER = ("patient_id", "role", "scan_date", "pet", "ct", "mask", "organs", "threshold",
                    "transform")

# DICOM tags (QIDO-RS JSON keys)
_PATIENT_ID = "00100020"
_STUDY_UID = "0020000D"
_STUDY_DATE = "00080020"
_SERIES_UID = "0020000E"
_MODALITY = "00080060"
_SERIES_NUMBER = "00200011"
_SERIES_DATE = "00080021"
_N_INSTANCES = "00201209"
_FRAME_UID = "00200052"


@dataclass(frozen=True, slots=True)
class FoundSeries:
    """One series the server lists.

    Attributes
    ----------
    patient_id : str
        PatientID of its study.
    study_uid, series_uid : str
        Its UIDs.
    modality : str
        ``PT`` or ``CT``.
    date : str
        Study date (else series date) as ``YYYY-MM-DD``, or ``""``.
    series_number : int or None
        SeriesNumber.
    instances : int or None
        NumberOfSeriesRelatedInstances, when the server gives it.
    frame_uid : str
        FrameOfReferenceUID of its first instance (``""`` when not asked for or not given).
    """

    patient_id: str
    study_uid: str
    series_uid: str
    modality: str
    date: str
    series_number: int | None = None
    instances: int | None = None
    frame_uid: str = ""


@dataclass(frozen=True, slots=True)
class FindResult:
    """The rows of the manifest and what a reader should know about them.

    Attributes
    ----------
    rows : tuple of dict of str to str
        The manifest rows (keys: the manifest columns).
    studies : int
        Studies examined.
    pet_series, ct_series : int
        Series found of each modality.
    notes : tuple of str
        Rows to look at (``row N: ...``; header = row 1) and series left out, without patient identifiers.
    """

    rows: tuple[dict[str, str], ...]
    studies: int
    pet_series: int
    ct_series: int
    notes: tuple[str, ...] = field(default=())


def _value(item: dict[str, Any], tag: str) -> str:
    values = item.get(tag, {}).get("Value") or []
    if not values:
        return ""
    v = values[0]
    if isinstance(v, dict):  # a person name
        return str(v.get("Alphabetic", ""))
    return str(v).strip()


def _date(text: str) -> str:
    try:
        return dt.datetime.strptime(text[:8], "%Y%m%d").date().isoformat() if len(text) >= 8 else ""
    except ValueError:
        return ""


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _since(since: str | dt.date | None) -> str | None:
    if since is None or since == "":
        return None
    if isinstance(since, dt.date):
        return since.strftime("%Y%m%d") + "-"
    try:
        return dt.date.fromisoformat(str(since).strip()).strftime("%Y%m%d") + "-"
    except ValueError:
        raise PacsConfigError(f"since {since!r} is not a date YYYY-MM-DD") from None


def find_series(url: str, *, patient: str | None = None, modalities: Sequence[str] = FOUND_MODALITIES,
                since: str | dt.date | None = None, verify_tls: bool = True, timeout: float = 60.0,
                client: Any = None) -> tuple[list[FoundSeries], int]:
    """List the PET and CT series of a DICOMweb server (QIDO-RS).

    Parameters
    ----------
    url : str
        The server's DICOMweb root.
    patient : str, optional
        Only this PatientID (QIDO matching: ``*`` and ``?`` are wildcards).
    modalities : sequence of str, default ("PT", "CT")
        The modalities to list (each ``PT`` or ``CT``).
    since : str or datetime.date, optional
        Only studies from this date on (``YYYY-MM-DD``).
    verify_tls : bool, default True
        Verify the server's TLS certificate.
    timeout : float, default 60
        Seconds to wait for each answer.
    client : dicomweb_client.DICOMwebClient, optional
        A client to use (default: :func:`pofa.pacs.client.connect`).

    Returns
    -------
    list of FoundSeries
        The series, with the FrameOfReferenceUID of CT and PET series in studies holding several CT series.
    int
        The number of studies examined.

    Raises
    ------
    PacsConfigError
        A bad URL, modality or date.
    PacsError
        The server cannot be queried (down, refusing, erroring), after retries.
    """
    from pofa.pacs.client import as_pacs_error, connect

    root = normalise_url(url)
    wanted = tuple(dict.fromkeys(m.strip().upper() for m in modalities))
    bad = [m for m in wanted if m not in FOUND_MODALITIES]
    if bad or not wanted:
        raise PacsConfigError(f"modality {', '.join(bad) or '(none)'}: pofa finds PT and CT series only")
    filters: dict[str, Any] = {}
    if patient:
        filters["PatientID"] = patient
    date_range = _since(since)
    if date_range:
        filters["StudyDate"] = date_range
    cl = client if client is not None else connect(root, verify_tls=verify_tls, timeout=timeout)
    try:
        studies = cl.search_for_studies(search_filters=filters, get_remaining=True,
                                        fields=["PatientID", "StudyDate", "StudyInstanceUID"])
    except Exception as exc:  # noqa: BLE001 - every failure becomes a typed error
        raise as_pacs_error(exc, url=root, what="the study search") from None
    found: list[FoundSeries] = []
    n_studies = 0
    for st in studies:
        study_uid = _value(st, _STUDY_UID)
        try:
            check_uid(study_uid, "study")
        except PacsConfigError:
            continue
        n_studies += 1
        pid, date = _value(st, _PATIENT_ID), _date(_value(st, _STUDY_DATE))
        in_study: list[FoundSeries] = []
        for modality in wanted:
            try:
                series = cl.search_for_series(study_uid, search_filters={"Modality": modality},
                                              get_remaining=True,
                                              fields=["SeriesNumber", "SeriesDate",
                                                      "NumberOfSeriesRelatedInstances"])
            except Exception as exc:  # noqa: BLE001
                raise as_pacs_error(exc, url=root, what=f"the series search of study {study_uid}") from None
            for se in series:
                uid = _value(se, _SERIES_UID)
                if _value(se, _MODALITY).upper() != modality:
                    continue
                try:
                    check_uid(uid, "series")
                except PacsConfigError:
                    continue
                in_study.append(FoundSeries(pid, study_uid, uid, modality,
                                            date or _date(_value(se, _SERIES_DATE)),
                                            _int(_value(se, _SERIES_NUMBER)), _int(_value(se, _N_INSTANCES))))
        if sum(s.modality == "CT" for s in in_study) > 1:
            in_study = [_with_frame(cl, root, s) for s in in_study]
        found.extend(in_study)
    return found, n_studies


def _with_frame(client: Any, root: str, s: FoundSeries) -> FoundSeries:
    """The series with the FrameOfReferenceUID of its first instance (QIDO-RS instance level)."""
    from dataclasses import replace

    from pofa.pacs.client import as_pacs_error

    try:
        items = client.search_for_instances(s.study_uid, s.series_uid, limit=1,
                                            fields=["FrameOfReferenceUID"])
    except Exception as exc:  # noqa: BLE001
        raise as_pacs_error(exc, url=root, what=f"the instance search of series {s.series_uid}") from None
    return replace(s, frame_uid=_value(items[0], _FRAME_UID) if items else "")


def manifest_rows(url: str, series: Iterable[FoundSeries]) -> FindResult:
    """Make the manifest rows: one per PET series, its study's CT paired when the choice is clear.

    Parameters
    ----------
    url : str
        The server's DICOMweb root (written into the references).
    series : iterable of FoundSeries
        What :func:`find_series` found.

    Returns
    -------
    FindResult
        Rows sorted by patient, date and series number, with notes naming rows (header = row 1).
    """
    from pofa.io.writers import is_live_formula, neutralise

    root = normalise_url(url)
    by_study: dict[str, list[FoundSeries]] = {}
    for s in series:
        by_study.setdefault(s.study_uid, []).append(s)
    entries: list[tuple[tuple[str, str, int, str], dict[str, str], list[str]]] = []
    notes: list[str] = []
    orphans = 0
    for study_uid, members in by_study.items():
        pets = [s for s in members if s.modality == "PT"]
        cts = [s for s in members if s.modality == "CT"]
        if not pets:
            orphans += len(cts)
            continue
        for pet in pets:
            row_notes: list[str] = []
            ct: FoundSeries | None = None
            if len(cts) == 1:
                ct = cts[0]
            elif len(cts) > 1:
                same = [c for c in cts if pet.frame_uid and c.frame_uid == pet.frame_uid]
                if len(same) == 1:
                    ct = same[0]
                else:
                    row_notes.append(f"its study has {len(cts)} CT series and none is the only one in the "
                                     "PET's frame of reference: ct left blank, choose one")
            if len(pets) > 1:
                row_notes.append(f"its study has {len(pets)} PET series (e.g. attenuation-corrected and "
                                 "not): keep the attenuation-corrected one")
            if not pet.date:
                row_notes.append("the server gives no study date: fill in scan_date")
            pid = pet.patient_id
            if is_live_formula(pid):
                row_notes.append("patient_id starts with a formula character: written with a leading quote, "
                                 "check it")
                pid = neutralise(pid)
            row = dict.fromkeys(_MANIFEST_HEADER, "")
            row.update(patient_id=pid, scan_date=pet.date,
                       pet=str(SeriesRef.of(root, study_uid, pet.series_uid)),
                       ct=str(SeriesRef.of(root, study_uid, ct.series_uid)) if ct is not None else "")
            key = (pet.patient_id, pet.date, pet.series_number if pet.series_number is not None else 0,
                   pet.series_uid)
            entries.append((key, row, row_notes))
    entries.sort(key=lambda e: e[0])
    for n, (_, _, row_notes) in enumerate(entries, start=2):
        notes.extend(f"row {n}: {text}" for text in row_notes)
    if orphans:
        notes.append(f"{orphans} CT series in studies without a PET series were left out")
    rows = tuple(e[1] for e in entries)
    return FindResult(rows, len(by_study), sum(s.modality == "PT" for m in by_study.values() for s in m),
                      sum(s.modality == "CT" for m in by_study.values() for s in m), tuple(notes))


def manifest_text(rows: Iterable[dict[str, str]]) -> str:
    """Return the manifest CSV text (UTF-8, header first, ``\\n`` line ends).

    Parameters
    ----------
    rows : iterable of dict of str to str
        The rows (:attr:`FindResult.rows`).

    Returns
    -------
    str
        The CSV text.
    """
    buf = io.StringIO()
    w = csv.DictWriter(buf, _MANIFEST_HEADER, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()
