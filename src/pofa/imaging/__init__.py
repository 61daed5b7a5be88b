"""PET/CT imaging: DICOM and NIfTI in; SUV, lesion segmentation and lesion features out.

Importing this package is light (numpy only); SimpleITK, nibabel, pydicom and highdicom are imported inside
the functions that need them. The main entry points are :class:`pofa.imaging.volume.Volume` and
:func:`pofa.imaging.extract.extract`.
"""

from __future__ import annotations

from pofa.imaging.volume import Volume

__all__ = ["Volume"]
