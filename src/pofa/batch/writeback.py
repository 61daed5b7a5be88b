"""Write back: each patient's lesions as DICOM SEG objects, sent to a DICOMweb server with STOW-RS.

After ``pofa batch``, ``pofa build-study`` or ``pofa analyze MANIFEST.csv`` with ``--store-results URL``,
:func:`store_results` takes every processed patient's result (its lesion and failure rows) and label maps (the
work folder's ``baseline_labels.nii.gz`` and ``failure_<date>_labels.nii.gz``) and stores **one SEG per
scan**, each referencing the PET series it was drawn on:

- the **baseline PET**: one segment per baseline lesion, ``lesion <id>: baseline`` (the ``lesion_id`` of
  lesions.csv);
- each **failure PET**: one segment per failure lesion, labelled with its class: ``lesion <n>: local
  failure``, ``marginal failure``, ``de novo`` or ``outside baseline scan`` (``n`` = the lesion's label, as in
  the ``failure_id`` ``S<k>-F<n>`` of failures.csv). A local failure of one baseline lesion carries that
  lesion's tracking id and UID, so viewers that follow findings over time link the two.

So a reader opening either scan sees pofa's lesions on it, in the scan's own geometry (no resampling). SEG
UIDs are derived from the source series and the SEG's content: storing the same results again sends the same
instance (a PACS keeps one copy); changed results give a new series beside the old one.

Failures are per patient: a patient whose PET is not a DICOM series (NIfTI), whose label map does not fit its
PET, or whose SEG the server refuses is reported (:class:`StoredSeg`, with the patient's sequence number in
the manifest, the scan and the PET series UID) and the other patients are still stored.

The SEG carries the patient's and the study's identity from the PET (see :mod:`pofa.pacs.seg`); it is sent to
the server only and never written into pofa's output folders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pofa.errors import PofaError
from pofa.pacs.seg import LesionSegment, SegmentKind, build_seg, tracking_uid
from pofa.pacs.store import seg_uids, store_instances

if TYPE_CHECKING:  # pragma: no cover
    from pydicom.dataset import Dataset

    from pofa.batch.job import PatientOutcome
    from pofa.batch.manifest import Manifest, PatientScans, ScanSpec
    from pofa.batch.pipeline import PatientResult
    from pofa.pacs.fetch import FetchOptions

__all__ = [
    "STORE_COLUMNS",
    "StoreReport",
    "StoredSeg",
    "baseline_segments",
    "failure_segments",
    "label_map_name",
    "store_results",
]

#: Columns of :meth:`StoreReport.csv_text`.
STORE_COLUMNS: tuple[str, ...] = ("patient", "patient_id", "scan", "status", "segments", "seg_series_uid",
                                  "reason")
#: SeriesNumber of the SEG of the baseline scan; the k-th failure scan's SEG gets this + k.
SERIES_NUMBER = 9100


@dataclass(frozen=True, slots=True)
class StoredSeg:
    """What became of one scan's SEG.

    Attributes
    ----------
    seq : int
        The patient's sequence number in the manifest (1-based).
    patient_id : str
        pofa's patient id (the manifest's).
    scan : str
        Which scan (role, date and manifest row, as in a batch's errors).
    status : str
        ``stored``, ``failed`` or ``skipped`` (nothing to store: no lesion on the scan).
    n_segments : int
        Segments in the SEG (0 when none was built).
    seg_series_uid : str
        SeriesInstanceUID of the stored SEG ("" when none).
    reason : str
        Why it failed or was skipped; names the PET series when known.
    """

    seq: int
    patient_id: str
    scan: str
    status: str
    n_segments: int = 0
    seg_series_uid: str = ""
    reason: str = ""

    def line(self) -> str:
        """One line for the terminal.

        Returns
        -------
        str
            Patient number and id, scan, and the status or error.
        """
        head = f"patient #{self.seq} ({self.patient_id}), {self.scan}"
        if self.status == "stored":
            return f"{head}: SEG with {self.n_segments} segment(s) stored (series {self.seg_series_uid})"
        return f"{head}: {self.status}: {self.reason}"


@dataclass(frozen=True, slots=True)
class StoreReport:
    """Every scan's SEG of a run: stored, failed or skipped.

    Attributes
    ----------
    url : str
        The DICOMweb server (no credentials).
    items : tuple of StoredSeg
        One per scan of each processed patient, in manifest order.
    """

    url: str
    items: tuple[StoredSeg, ...]

    @property
    def failed(self) -> tuple[StoredSeg, ...]:
        """The scans whose SEG could not be built or stored.

        Returns
        -------
        tuple of StoredSeg
            Their records.
        """
        return tuple(i for i in self.items if i.status == "failed")

    @property
    def n_stored(self) -> int:
        """Number of SEG objects stored.

        Returns
        -------
        int
            Scans with status ``stored``.
        """
        return sum(i.status == "stored" for i in self.items)

    def summary(self) -> str:
        """One line for the terminal.

        Returns
        -------
        str
            Counts of SEG objects stored, skipped and failed, and the server.
        """
        skipped = sum(i.status == "skipped" for i in self.items)
        return (f"{self.n_stored} lesion segmentation(s) (DICOM SEG) stored on {self.url}, {skipped} scan(s) "
                f"without lesions skipped, {len(self.failed)} failed.")

    def csv_text(self) -> str:
        """The records as CSV text (columns :data:`STORE_COLUMNS`).

        Returns
        -------
        str
            The CSV text.
        """
        from pofa.batch.study import csv_text

        return csv_text(STORE_COLUMNS, [(i.seq, i.patient_id, i.scan, i.status, i.n_segments,
                                         i.seg_series_uid, i.reason) for i in self.items])


def label_map_name(scan: ScanSpec) -> str:
    """The file name of a scan's label map in the patient's work folder.

    Parameters
    ----------
    scan : ScanSpec
        The scan.

    Returns
    -------
    str
        ``baseline_labels.nii.gz`` or ``failure_<date>_labels.nii.gz`` (as :func:`pofa.batch.pipeline`
        writes them).
    """
    from pofa.batch.manifest import Role

    if scan.role is Role.BASELINE:
        return "baseline_labels.nii.gz"
    return f"failure_{scan.scan_date}_labels.nii.gz"


def baseline_segments(result: PatientResult, n_labels: int, baseline_series_uid: str) -> list[LesionSegment]:
    """The baseline lesions as segments: label ``k`` is the ``k``-th row of the patient's lesion table.

    Parameters
    ----------
    result : PatientResult
        The patient's result.
    n_labels : int
        The highest label of the baseline label map.
    baseline_series_uid : str
        The baseline PET's SeriesInstanceUID (seeds the tracking UIDs).

    Returns
    -------
    list of LesionSegment
        One per baseline lesion, in label order.

    Raises
    ------
    PofaError
        When the label map and the lesion table disagree on the number of lesions.
    """
    ids = [str(r["lesion_id"]) for r in result.lesions.records()]
    if len(ids) != n_labels:
        raise PofaError(f"the baseline label map has {n_labels} label(s) but the lesion table {len(ids)} "
                        "lesion(s); the work folder does not belong to this result")
    return [LesionSegment(label=k, kind=SegmentKind.BASELINE, lesion_id=lid, tracking_id=f"lesion {lid}",
                          tracking_uid=tracking_uid(baseline_series_uid, lid))
            for k, lid in enumerate(ids, start=1)]


def failure_segments(result: PatientResult, scan_date: str, baseline_series_uid: str,
                     series_uid: str) -> list[LesionSegment]:
    """The lesions of one failure scan as segments, with their class, from the patient's failure rows.

    A follow-up lesion covering several baseline lesions (a merge) has one row per covered lesion; it is one
    segment naming them all.

    Parameters
    ----------
    result : PatientResult
        The patient's result.
    scan_date : str
        The failure scan's date (its rows' ``scan_date``).
    baseline_series_uid : str
        The baseline PET's SeriesInstanceUID ("" when the baseline is not DICOM).
    series_uid : str
        This failure PET's SeriesInstanceUID.

    Returns
    -------
    list of LesionSegment
        One per follow-up lesion, by label.

    Raises
    ------
    PofaError
        When a row has an unknown class or no label.
    """
    groups: dict[int, list[dict[str, Any]]] = {}
    for r in result.failures.records():
        if str(r.get("scan_date")) != scan_date:
            continue
        try:
            lab = int(r["followup_label"])  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):
            raise PofaError(f"failure row {r.get('failure_id')!r} has no follow-up label") from None
        groups.setdefault(lab, []).append(r)
    out = []
    for lab, rows in sorted(groups.items()):
        try:
            kind = SegmentKind(str(rows[0]["match_class"]))
        except ValueError:
            raise PofaError(f"failure row {rows[0].get('failure_id')!r} has an unknown class "
                            f"{rows[0].get('match_class')!r}") from None
        fid = str(rows[0]["failure_id"])
        base = tuple(str(r["baseline_lesion_id"]) for r in rows
                     if kind is SegmentKind.LOCAL and r.get("baseline_lesion_id") not in (None, ""))
        if kind is SegmentKind.LOCAL and len(base) == 1 and baseline_series_uid:
            tid, tuid = f"lesion {base[0]}", tracking_uid(baseline_series_uid, base[0])
        else:
            tid, tuid = f"failure {fid}", tracking_uid(series_uid, fid)
        out.append(LesionSegment(label=lab, kind=kind, lesion_id=fid, tracking_id=tid, tracking_uid=tuid,
                                 baseline_ids=base))
    return out


def _scan_name(scan: ScanSpec) -> str:
    return f"SEG of the {scan.where()}"


def _pet_headers(scan: ScanSpec) -> Sequence[Dataset]:
    """The PET's headers, read as the extraction read the PET (a local DICOM folder; slice order)."""
    from pofa.imaging.dicom import read_series

    p = Path(scan.pet)
    if p.is_file() and p.name.endswith((".nii", ".nii.gz")):
        raise PofaError("the PET is a NIfTI file; a DICOM SEG must reference a DICOM PET series")
    return read_series(p, "PT").headers


def _patient(seq: int, scans: PatientScans, result: PatientResult, folder: Path, client: Any, url: str,
             pet_headers: Callable[[ScanSpec], Sequence[Dataset]]) -> list[StoredSeg]:
    from pofa.errors import ImagingError
    from pofa.imaging.volume import Volume

    pid = scans.patient_id
    out: list[StoredSeg] = []
    base_uid = ""
    for k, scan in enumerate(scans.scans):
        name = _scan_name(scan)
        series = ""
        try:
            headers = pet_headers(scan)
            series = str(headers[0].SeriesInstanceUID)
            if k == 0:
                base_uid = series
            path = folder / label_map_name(scan)
            if not path.is_file():
                raise PofaError(f"the label map {path.name} is missing from the patient's work folder")
            labels = Volume.from_nifti(path)
            arr = labels.voxels
            if k == 0:
                segs = baseline_segments(result, int(arr.max()) if arr.size else 0, base_uid)
            else:
                segs = failure_segments(result, scan.scan_date, base_uid, series)
            if not segs:
                out.append(StoredSeg(seq, pid, name, "skipped", reason=f"no lesion on PET series {series}"))
                continue
            s_uid, i_uid = seg_uids(series, arr, segs)
            what = "baseline scan" if k == 0 else f"failure scan {k}"
            seg = build_seg(labels, headers, segs, series_description=f"pofa lesions, {what}",
                            series_number=SERIES_NUMBER + k, segmentation_method=_method(result, k),
                            automatic=scan.mask is None, series_uid=s_uid, sop_uid=i_uid)
            store_instances(client, [seg], url=url, what=f"the SEG of PET series {series}")
        except (PofaError, ImagingError) as exc:  # pofa's own messages: UIDs and pofa ids, no header value
            where = f" (PET series {series})" if series and series not in str(exc) else ""
            out.append(StoredSeg(seq, pid, name, "failed", reason=f"{exc}{where}"))
            continue
        except OSError as exc:  # its message names a path, which may hold a name: the reason only
            where = f" (PET series {series})" if series else ""
            out.append(StoredSeg(seq, pid, name, "failed", reason=f"a file cannot be read or written "
                                 f"({exc.strerror or type(exc).__name__}){where}"))
            continue
        except Exception as exc:  # noqa: BLE001 - isolation: one scan's unexpected failure never stops the rest
            # a library's message (highdicom, pydicom) may quote a header value: the error's class only
            where = f" (PET series {series})" if series else ""
            out.append(StoredSeg(seq, pid, name, "failed", reason=f"unexpected {type(exc).__name__}{where}"))
            continue
        out.append(StoredSeg(seq, pid, name, "stored", len(segs), s_uid))
    return out


def _method(result: PatientResult, k: int) -> str:
    prov = result.provenance
    return str(prov[k].get("segmentation", "")) if k < len(prov) else ""


def store_results(
    url: str,
    manifest: Manifest,
    outcomes: Sequence[PatientOutcome],
    work: str | Path,
    *,
    client: Any = None,
    fetch: FetchOptions | None = None,
    pet_headers: Callable[[ScanSpec], Sequence[Dataset]] | None = None,
    on_patient: Callable[[list[StoredSeg]], None] | None = None,
) -> StoreReport:
    """Store the lesions of every processed patient as DICOM SEG objects on a DICOMweb server.

    Parameters
    ----------
    url : str
        The server's DICOMweb root (credentials from the environment or netrc, never in the URL).
    manifest : Manifest
        The imaging manifest the patients came from (gives each patient's scans and sequence number).
    outcomes : sequence of PatientOutcome
        The patients' outcomes (those that failed are left out: they have no result).
    work : path
        The work folder holding each patient's ``result.json`` and label maps.
    client : dicomweb_client.DICOMwebClient, optional
        A connected client (default: :func:`pofa.pacs.client.connect` of ``url`` with the TLS setting,
        timeout, retries and back-off of ``fetch``).
    fetch : FetchOptions, optional
        How the run fetched ``dicomweb:`` series: a PET given as a reference is read from that cache
        (fetched again if it is no longer there); also the TLS setting and timeout of the connection.
    pet_headers : callable, optional
        Scan (with a local PET path) -> the PET's headers; default: read the scan's DICOM folder.
    on_patient : callable, optional
        Called with each patient's records as they are done (progress).

    Returns
    -------
    StoreReport
        One record per scan of each processed patient.

    Raises
    ------
    pofa.pacs.errors.PacsConfigError
        When the URL or the credential settings are refused (before anything is sent).
    """
    from pofa.batch.cache import Status, folder_name
    from pofa.batch.job import fetch_references, load_result
    from pofa.pacs.client import connect, normalise_url
    from pofa.pacs.fetch import FetchOptions

    root = normalise_url(url)
    opts = fetch if fetch is not None else FetchOptions()
    cl = client if client is not None else connect(root, verify_tls=opts.verify_tls, timeout=opts.timeout,
                                                   retries=opts.retries, backoff=opts.backoff)
    read = pet_headers if pet_headers is not None else _pet_headers
    by_id = {o.patient_id: o for o in outcomes}
    items: list[StoredSeg] = []
    for seq, scans in enumerate(manifest.patients(), start=1):
        o = by_id.get(scans.patient_id)
        if o is None or o.status is not Status.OK or not o.key:
            continue
        folder = Path(work) / folder_name(scans.patient_id)
        try:
            result = load_result(folder, o.key)
            local = fetch_references(scans, opts)  # dicomweb: PETs -> their folders in the cache
        except Exception as exc:  # noqa: BLE001 - isolation: this patient fails, the others are stored
            why = str(exc) if isinstance(exc, PofaError) else type(exc).__name__  # not a library's message
            recs = [StoredSeg(seq, scans.patient_id, _scan_name(s), "failed",
                              reason=f"the patient's result or scans cannot be read: {why}")
                    for s in scans.scans]
        else:
            recs = _patient(seq, local, result, folder, cl, root, read)
        items.extend(recs)
        if on_patient is not None:
            on_patient(recs)
    return StoreReport(root, tuple(items))
