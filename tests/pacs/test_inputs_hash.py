"""imaging.json's ``inputs_sha256`` and each scan's ``inputs``: content, never location.

The same scans moved to another folder under other file names give the same hash; one changed input byte or
one changed manifest cell gives another. The hash is computed from the manifest and the per-scan input hashes
(:func:`pofa.batch.job.with_input_hashes`), so no image is processed here.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from batch_data import make_study
from pofa.batch.cache import input_hashes
from pofa.batch.job import with_input_hashes
from pofa.batch.manifest import load_manifest
from pofa.batch.pipeline import PatientResult, Table
from pofa.batch.study import inputs_sha256


def _hash(manifest: Path) -> tuple[str, list[dict[str, object]]]:
    m = load_manifest(manifest)
    assert m.ok, m.report
    results = []
    for p in m.patients():
        bare = PatientResult(p.patient_id, Table((), ()), Table((), ()),
                             '[' + ",".join(f'{{"role": "{s.role.value}", "scan_date": "{s.scan_date}"}}'
                                            for s in p.scans) + ']')
        results.append(with_input_hashes(bare, input_hashes(p)))
    return inputs_sha256(m, results), [rec for r in results for rec in r.provenance]


def _rewrite(manifest: Path, change: dict[str, str], row: int = 0) -> None:
    with manifest.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows[row].update(change)
    with manifest.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_inputs_hash_follows_content_not_location(tmp_path: Path) -> None:
    study = make_study(tmp_path / "a", 2)
    first, recs = _hash(study.manifest)
    assert all(len(r["inputs"]["pet"]) == 64 for r in recs)
    assert not any(str(tmp_path) in str(v) for r in recs for v in r["inputs"].values())
    # the same files elsewhere, the PET under another name: same hash
    moved = tmp_path / "elsewhere"
    shutil.copytree(study.root, moved)
    with (moved / "manifest.csv").open(encoding="utf-8", newline="") as fh:
        pet = next(csv.DictReader(fh))["pet"]
    old = moved / pet
    new = old.with_name("renamed_" + old.name)
    old.rename(new)
    _rewrite(moved / "manifest.csv", {"pet": str(new.relative_to(moved))})
    assert _hash(moved / "manifest.csv")[0] == first
    # one changed manifest cell: another hash
    _rewrite(moved / "manifest.csv", {"threshold": "suv2.5"})
    assert _hash(moved / "manifest.csv")[0] != first
    _rewrite(moved / "manifest.csv", {"threshold": next(iter(csv.DictReader(
        study.manifest.open(encoding="utf-8", newline=""))))["threshold"]})
    assert _hash(moved / "manifest.csv")[0] == first
    # one changed input byte: another hash
    data = bytearray(new.read_bytes())
    data[-1] ^= 1
    new.write_bytes(bytes(data))
    assert _hash(moved / "manifest.csv")[0] != first
