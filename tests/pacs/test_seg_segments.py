"""pofa.batch.writeback: a patient's result rows become SEG segments (classes, merges, tracking, UIDs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pofa.batch.pipeline import PatientResult, Table
from pofa.batch.writeback import baseline_segments, failure_segments
from pofa.errors import PofaError
from pofa.pacs.seg import SegmentKind, tracking_uid
from pofa.pacs.store import seg_uids


def _result(rows: list[dict]) -> PatientResult:
    lesions = Table.from_records([{"patient_id": "P1", "lesion_id": str(k)} for k in (1, 2, 3)])
    return PatientResult("P1", lesions, Table.from_records(rows), json.dumps([]))


def _row(label: int, cls: str, base: str = "", date: str = "2020-02-02") -> dict:
    return {"patient_id": "P1", "failure_id": f"S1-F{label}", "scan_date": date, "baseline_lesion_id": base,
            "match_class": cls, "followup_label": label}


def test_failure_segments_classes_merge_and_tracking() -> None:
    rows = [_row(1, "local", "2"), _row(2, "local", "1"), _row(2, "local", "3"), _row(3, "marginal"),
            _row(4, "de novo"), _row(5, "outside baseline scan"), _row(1, "de novo", date="2021-01-01")]
    segs = failure_segments(_result(rows), "2020-02-02", "BASE", "FU")
    assert [(s.label, s.kind, s.lesion_id, s.baseline_ids) for s in segs] == [
        (1, SegmentKind.LOCAL, "S1-F1", ("2",)), (2, SegmentKind.LOCAL, "S1-F2", ("1", "3")),
        (3, SegmentKind.MARGINAL, "S1-F3", ()), (4, SegmentKind.DE_NOVO, "S1-F4", ()),
        (5, SegmentKind.OUTSIDE, "S1-F5", ())]
    # a local failure of one baseline lesion is the same tracked finding as that lesion
    base = baseline_segments(_result(rows), 3, "BASE")
    assert segs[0].tracking_uid == base[1].tracking_uid == tracking_uid("BASE", "2")
    assert segs[0].tracking_id == base[1].tracking_id == "lesion 2"
    # a merge, and new lesions, are findings of their own
    assert segs[1].tracking_id == "failure S1-F2" and segs[1].tracking_uid == tracking_uid("FU", "S1-F2")
    assert segs[1].segment_label() == "lesion 2: local failure"
    assert "baseline lesion(s) 1, 3" in segs[1].description()
    assert [s.segment_label() for s in base] == [f"lesion {k}: baseline" for k in (1, 2, 3)]


def test_refusals() -> None:
    with pytest.raises(PofaError, match="has 4 label"):
        baseline_segments(_result([]), 4, "BASE")
    with pytest.raises(PofaError, match="unknown class"):
        failure_segments(_result([_row(1, "remote")]), "2020-02-02", "BASE", "FU")
    bad = _row(1, "local", "1")
    bad["followup_label"] = None
    with pytest.raises(PofaError, match="no follow-up label"):
        failure_segments(_result([bad]), "2020-02-02", "BASE", "FU")


def test_seg_uids_follow_the_content() -> None:
    lab = np.zeros((3, 4, 5), np.uint16)
    lab[1, 2, 3] = 1
    segs = baseline_segments(_result([]), 3, "BASE")
    a = seg_uids("PET", lab, segs)
    assert a == seg_uids("PET", lab.copy(), segs)
    assert a[0] != a[1] and all(u.startswith("2.25.") and len(u) <= 64 for u in a)
    lab[0, 0, 0] = 2
    assert seg_uids("PET", lab, segs) != a
    assert seg_uids("PET2", lab, segs) != seg_uids("PET", lab, segs)


class _Client:
    """A stand-in for dicomweb_client's client: answers STOW-RS with ``answer`` or raises ``error``."""

    def __init__(self, answer: object = None, error: Exception | None = None) -> None:
        self.answer, self.error, self.sent = answer, error, []

    def store_instances(self, datasets: list) -> object:
        self.sent.extend(datasets)
        if self.error is not None:
            raise self.error
        return self.answer


def test_store_instances_checks_the_servers_answer() -> None:
    import requests
    from pydicom.dataset import Dataset

    from pofa.pacs.errors import PacsError, PacsUnavailableError
    from pofa.pacs.store import store_instances

    ds = Dataset()
    ok = _Client(Dataset())
    store_instances(ok, [ds], url="http://pacs/dicom-web", what="the SEG of PET series 1.2")
    assert ok.sent == [ds]
    item = Dataset()
    item.FailureReason = 0xA700
    refused = Dataset()
    refused.FailedSOPSequence = [item]
    with pytest.raises(PacsError, match=r"the SEG of PET series 1\.2 on http://pacs/dicom-web: the server "
                                        r"refused 1 instance\(s\) \(STOW-RS failure reason 42752\)"):
        store_instances(_Client(refused), [ds], url="http://pacs/dicom-web", what="the SEG of PET series 1.2")
    response = requests.Response()
    response.status_code, response.reason = 503, "Service Unavailable"
    with pytest.raises(PacsUnavailableError, match="HTTP 503"):
        store_instances(_Client(error=requests.HTTPError(response=response)), [ds], url="http://pacs/dicom-web",
                        what="the SEG of PET series 1.2")


def test_nifti_pets_and_unexpected_errors_fail_per_scan(tmp_path: Path) -> None:
    """A NIfTI PET has no series to reference; an unexpected exception fails its scan only (no server)."""
    from batch_data import make_study
    from pofa.batch.manifest import load_manifest
    from pofa.batch.study import build_study_from_manifest
    from pofa.batch.writeback import _pet_headers, store_results

    files = make_study(tmp_path / "data", 2, failure_every=2)
    outcomes: list = []
    build_study_from_manifest(files.manifest, tmp_path / "study", work=tmp_path / "work",
                              on_outcome=outcomes.append)
    client = _Client()
    report = store_results("http://pacs.example.org/dicom-web", load_manifest(files.manifest), outcomes,
                           tmp_path / "work", client=client)
    assert [(i.seq, i.status) for i in report.items] == [(1, "failed"), (1, "failed"), (2, "failed")]
    assert all("the PET is a NIfTI file" in i.reason for i in report.items) and client.sent == []

    def headers(scan):  # the first patient's baseline raises something unforeseen
        if scan.patient_id == "P000" and scan.role.value == "baseline":
            raise RuntimeError("boom")
        return _pet_headers(scan)

    report = store_results("http://pacs.example.org/dicom-web", load_manifest(files.manifest), outcomes,
                           tmp_path / "work", client=client, pet_headers=headers)
    assert report.items[0].reason == "unexpected RuntimeError" and len(report.items) == 3  # never its message
    assert "NIfTI" in report.items[1].reason and "NIfTI" in report.items[2].reason
