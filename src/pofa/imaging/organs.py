"""Organ label maps (e.g. TotalSegmentator output) and the organ -> site / nodal table used for lesion sites.

A lesion's site comes from the organ label map by majority of its voxels:

- voxels in an **extranodal** organ (liver, lung, bone, kidney, bowel, ...) are counted together; if they are
  more than half of the lesion, the lesion is extranodal and its site is the extranodal site with most voxels;
- otherwise the lesion is **nodal**: site ``"spleen"`` when the spleen holds more of its voxels than the
  unlabelled soft tissue, else ``"lymph node"``. The spleen counts as nodal (Lugano 2014), as do tonsils,
  Waldeyer's ring and the thymus if a label map has them.
- Vessel labels (aorta, venae cavae, iliac and subclavian vessels, ...) are *ignored* (counted as unlabelled
  soft tissue): nodes lie against vessels and a coarse organ map often gives their edge to the vessel.

Label names follow TotalSegmentator (v2 task ``total``; v1 table also built in). Other label maps need a names
table (JSON ``{"1": "liver", ...}`` or CSV ``label,name``). A folder of one binary mask per organ
(TotalSegmentator's default output, ``<organ>.nii.gz``) is also accepted.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pofa.errors import ImagingError
from pofa.imaging.volume import Volume, resample_to

__all__ = [
    "NODAL",
    "OrganMap",
    "SiteRule",
    "TOTALSEGMENTATOR_V1",
    "TOTALSEGMENTATOR_V2",
    "load_organ_map",
    "site_of",
]

_V2_NAMES = (
    "spleen kidney_right kidney_left gallbladder liver stomach pancreas adrenal_gland_right "
    "adrenal_gland_left "
    "lung_upper_lobe_left lung_lower_lobe_left lung_upper_lobe_right lung_middle_lobe_right "
    "lung_lower_lobe_right "
    "esophagus trachea thyroid_gland small_bowel duodenum colon urinary_bladder prostate kidney_cyst_left "
    "kidney_cyst_right sacrum vertebrae_S1 vertebrae_L5 vertebrae_L4 vertebrae_L3 vertebrae_L2 vertebrae_L1 "
    "vertebrae_T12 vertebrae_T11 vertebrae_T10 vertebrae_T9 vertebrae_T8 vertebrae_T7 vertebrae_T6 "
    "vertebrae_T5 "
    "vertebrae_T4 vertebrae_T3 vertebrae_T2 vertebrae_T1 vertebrae_C7 vertebrae_C6 vertebrae_C5 vertebrae_C4 "
    "vertebrae_C3 vertebrae_C2 vertebrae_C1 heart aorta pulmonary_vein brachiocephalic_trunk "
    "subclavian_artery_right subclavian_artery_left common_carotid_artery_right common_carotid_artery_left "
    "brachiocephalic_vein_left brachiocephalic_vein_right atrial_appendage_left superior_vena_cava "
    "inferior_vena_cava portal_vein_and_splenic_vein iliac_artery_left iliac_artery_right iliac_vena_left "
    "iliac_vena_right humerus_left humerus_right scapula_left scapula_right clavicula_left clavicula_right "
    "femur_left femur_right hip_left hip_right spinal_cord gluteus_maximus_left gluteus_maximus_right "
    "gluteus_medius_left gluteus_medius_right gluteus_minimus_left gluteus_minimus_right autochthon_left "
    "autochthon_right iliopsoas_left iliopsoas_right brain skull "
    + " ".join(f"rib_left_{i}" for i in range(1, 13))
    + " "
    + " ".join(f"rib_right_{i}" for i in range(1, 13))
    + " sternum costal_cartilages"
)
#: TotalSegmentator v2, task "total": label value -> name (117 classes).
TOTALSEGMENTATOR_V2: dict[int, str] = {i + 1: n for i, n in enumerate(_V2_NAMES.split())}

_V1_NAMES = (
    "spleen kidney_right kidney_left gallbladder liver stomach aorta inferior_vena_cava "
    "portal_vein_and_splenic_vein pancreas adrenal_gland_right adrenal_gland_left lung_upper_lobe_left "
    "lung_lower_lobe_left lung_upper_lobe_right lung_middle_lobe_right lung_lower_lobe_right vertebrae_L5 "
    "vertebrae_L4 vertebrae_L3 vertebrae_L2 vertebrae_L1 vertebrae_T12 vertebrae_T11 vertebrae_T10 "
    "vertebrae_T9 "
    "vertebrae_T8 vertebrae_T7 vertebrae_T6 vertebrae_T5 vertebrae_T4 vertebrae_T3 vertebrae_T2 vertebrae_T1 "
    "vertebrae_C7 vertebrae_C6 vertebrae_C5 vertebrae_C4 vertebrae_C3 vertebrae_C2 vertebrae_C1 esophagus "
    "trachea "
    "heart_myocardium heart_atrium_left heart_ventricle_left heart_atrium_right heart_ventricle_right "
    "pulmonary_artery brain iliac_artery_left iliac_artery_right iliac_vena_left iliac_vena_right "
    "small_bowel "
    "duodenum colon "
    + " ".join(f"rib_left_{i}" for i in range(1, 13))
    + " "
    + " ".join(f"rib_right_{i}" for i in range(1, 13))
    + " humerus_left humerus_right scapula_left scapula_right clavicula_left clavicula_right femur_left "
    "femur_right hip_left hip_right sacrum face gluteus_maximus_left gluteus_maximus_right "
    "gluteus_medius_left "
    "gluteus_medius_right gluteus_minimus_left gluteus_minimus_right autochthon_left autochthon_right "
    "iliopsoas_left iliopsoas_right urinary_bladder"
)
#: TotalSegmentator v1 (104 classes): label value -> name.
TOTALSEGMENTATOR_V1: dict[int, str] = {i + 1: n for i, n in enumerate(_V1_NAMES.split())}

BUILTIN_TABLES: dict[str, dict[int, str]] = {
    "totalsegmentator": TOTALSEGMENTATOR_V2,
    "totalsegmentator-v2": TOTALSEGMENTATOR_V2,
    "totalsegmentator-v1": TOTALSEGMENTATOR_V1,
}

NODAL = "lymph node"  # site of a lesion outside every (non-ignored) organ label


@dataclass(frozen=True, slots=True)
class SiteRule:
    """How an organ name maps to a lesion site. ``kind`` is "extranodal", "nodal" or "ignore"."""

    pattern: str
    site: str
    kind: str


#: The documented organ-name table, first match wins (regular expressions on lower-case names).
SITE_RULES: tuple[SiteRule, ...] = (
    SiteRule(r"^spleen$", "spleen", "nodal"),
    SiteRule(r"tonsil|waldeyer|adenoid|thymus|lymph|node", NODAL, "nodal"),
    SiteRule(
        r"aorta|vena|vein|artery|arteries|brachiocephalic_trunk|pulmonary_artery|vessel", "vessel", "ignore"
    ),
    SiteRule(r"^lung", "lung", "extranodal"),
    SiteRule(r"^liver$", "liver", "extranodal"),
    SiteRule(r"^kidney", "kidney", "extranodal"),
    SiteRule(r"^adrenal", "adrenal", "extranodal"),
    SiteRule(r"^stomach$", "stomach", "extranodal"),
    SiteRule(r"^pancreas$", "pancreas", "extranodal"),
    SiteRule(r"^gallbladder$", "gallbladder", "extranodal"),
    SiteRule(r"^(small_bowel|duodenum|colon)$", "bowel", "extranodal"),
    SiteRule(r"^esophagus$", "esophagus", "extranodal"),
    SiteRule(r"^trachea$", "trachea", "extranodal"),
    SiteRule(r"^thyroid", "thyroid", "extranodal"),
    SiteRule(r"^urinary_bladder$", "bladder", "extranodal"),
    SiteRule(r"^prostate$", "prostate", "extranodal"),
    SiteRule(r"^(brain|spinal_cord)$", "central nervous system", "extranodal"),
    SiteRule(r"^(heart|atrial_appendage|heart_)", "heart", "extranodal"),
    SiteRule(
        r"^(vertebrae|sacrum|rib_|sternum|costal_cartilages|hip_|femur|humerus|scapula|clavicula|skull)",
        "bone",
        "extranodal",
    ),
    SiteRule(r"^(gluteus|autochthon|iliopsoas)", "muscle", "extranodal"),
    SiteRule(r"^face$", "face", "extranodal"),
)


def site_of(name: str) -> tuple[str, str]:
    """Site and kind ("extranodal", "nodal", "ignore") of an organ label name.

    Names the table does not know count as extranodal organs with the name as site (an organ that is not a
    lymphatic structure is extranodal under Lugano).

    Parameters
    ----------
    name : str
        Organ label name.

    Returns
    -------
    tuple of (str, str)
        ``(site, kind)``, kind one of "extranodal", "nodal", "ignore".
    """
    low = name.strip().lower()
    for rule in SITE_RULES:
        if re.search(rule.pattern, low):
            return rule.site, rule.kind
    return low.replace("_", " "), "extranodal"


@dataclass(frozen=True, slots=True, eq=False)
class OrganMap:
    """An organ label map with the name of each label value.

    Attributes
    ----------
    labels : Volume
        Integer organ labels, 0 = no organ.
    names : Mapping[int, str]
        Label value -> organ name.
    source : str
        Where the names come from (e.g. ``"TotalSegmentator v2 (task total)"``).
    """

    labels: Volume
    names: Mapping[int, str]
    source: str

    def on_grid(self, reference: Volume) -> OrganMap:
        """The same map resampled (nearest neighbour) onto ``reference``'s grid.

        Parameters
        ----------
        reference : Volume
            The grid resampled onto.

        Returns
        -------
        OrganMap
            The same map resampled (nearest neighbour) onto ``reference``'s grid.
        """
        return OrganMap(resample_to(self.labels, reference, "nearest"), self.names, self.source)

    def mask_of(self, organ: str) -> np.ndarray:
        """Boolean mask of all labels whose name is ``organ`` (case-insensitive).

        Parameters
        ----------
        organ : str
            Organ name (case-insensitive).

        Returns
        -------
        numpy.ndarray
            Boolean mask of all labels whose name is ``organ``.

        Raises
        ------
        ImagingError
            When the organ map has no label of that name.
        """
        values = [v for v, n in self.names.items() if n.lower() == organ.lower()]
        if not values:
            raise ImagingError(f"The organ map ({self.source}) has no label named {organ!r}.")
        return np.isin(self.labels.voxels, values)


def _read_names(path: Path) -> dict[int, str]:
    if not path.is_file():
        raise ImagingError(f"Organ names table not found: {path}.")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ImagingError(f"{path} must hold an object mapping label values to organ names.")
            return {int(k): str(v) for k, v in data.items()}
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        if not rows or not {"label", "name"} <= set(rows[0]):
            raise ImagingError(f"{path} must be a CSV with columns label,name.")
        return {int(r["label"]): str(r["name"]) for r in rows}
    except (ValueError, json.JSONDecodeError) as exc:
        raise ImagingError(f"Cannot read the organ names table {path}: {exc}") from exc


def load_organ_map(
    source: str | os.PathLike[str] | Volume, names: str | os.PathLike[str] | Mapping[int, str] | None = None
) -> OrganMap:
    """Read an organ label map.

    Parameters
    ----------
    source : path or Volume
        A multi-label NIfTI file, a folder of binary ``<organ>.nii.gz`` masks (TotalSegmentator's default
        output), or a label Volume.
    names : path, mapping or str, optional
        ``"totalsegmentator"`` / ``"totalsegmentator-v2"`` (default), ``"totalsegmentator-v1"``, a JSON/CSV
        table, or a mapping ``{label: name}``. Ignored for a folder of masks (names are the file names).

    Returns
    -------
    OrganMap
        The label map with a name per label.

    Raises
    ------
    ImagingError
        When the label map holds non-integer values, or labels its names table does not name.
    """
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        return _from_folder(Path(source))
    vol = source if isinstance(source, Volume) else Volume.from_nifti(source)
    if not np.issubdtype(vol.voxels.dtype, np.integer):
        if not np.all(np.mod(vol.voxels, 1) == 0):
            raise ImagingError("The organ label map holds non-integer values; give a label map.")
        vol = vol.with_voxels(vol.voxels.astype(np.int32))
    if names is None or (isinstance(names, str) and names.lower() in BUILTIN_TABLES):
        key = "totalsegmentator" if names is None else str(names).lower()
        table = BUILTIN_TABLES[key]
        src = (
            "TotalSegmentator v1 (104 classes)" if key.endswith("v1") else "TotalSegmentator v2 (task total)"
        )
    elif isinstance(names, Mapping):
        table = {int(k): str(v) for k, v in names.items()}
        src = "names given by the caller"
    else:
        table = _read_names(Path(names))
        src = f"names table {Path(names).name}"
    present = set(np.unique(vol.voxels).tolist()) - {0}
    unknown = sorted(present - set(table))
    if unknown:
        raise ImagingError(
            f"The organ label map has values {unknown[:10]} that the names table ({src}) does not name",
            advice="give the right table with {organ_names}"
        )
    return OrganMap(vol.with_voxels(vol.voxels, units="label"), table, src)


def _from_folder(folder: Path) -> OrganMap:
    files = sorted(p for p in folder.iterdir() if p.name.endswith((".nii.gz", ".nii")))
    if not files:
        raise ImagingError(f"No NIfTI organ masks (*.nii.gz) in {folder}.")
    labels: np.ndarray | None = None
    ref: Volume | None = None
    names: dict[int, str] = {}
    for i, f in enumerate(files, start=1):
        m = Volume.from_nifti(f)
        if ref is None:
            ref = m
            labels = np.zeros(m.shape, dtype=np.uint16)
        elif not m.same_grid(ref):
            raise ImagingError(f"Organ mask {f.name} is not on the same grid as {files[0].name}.")
        assert labels is not None
        name = f.name[:-7] if f.name.endswith(".nii.gz") else f.name[:-4]
        names[i] = name
        labels[(m.voxels > 0) & (labels == 0)] = i
    assert ref is not None and labels is not None
    return OrganMap(ref.with_voxels(labels, units="label"), names, f"folder of {len(files)} organ masks")
