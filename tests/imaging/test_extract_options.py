"""The typed options of pofa.imaging.extract: checked when made, the same as keyword arguments."""

from __future__ import annotations

import numpy as np
import pytest

from pofa.errors import SettingsError
from pofa.imaging.extract import ExtractOptions, extract
from pofa.imaging.suv import SuvNormalisation
from pofa.imaging.volume import Volume


def test_options_are_checked_when_made() -> None:
    assert ExtractOptions(suv="lbm-james").normalisation is SuvNormalisation.LBM_JAMES
    with pytest.raises(SettingsError, match="minimum volume"):
        ExtractOptions(min_volume_ml=-1.0)
    with pytest.raises(SettingsError, match="Unknown SUV normalisation"):
        ExtractOptions(suv="lbm")
    with pytest.raises(TypeError):
        extract("pet.nii.gz", threshold="suv4", no_such_option=1)


def test_options_object_equals_keywords() -> None:
    voxels = np.zeros((12, 12, 12), dtype=np.float32)
    voxels[4:8, 4:8, 4:8] = 8.0
    suv = Volume(voxels, np.eye(4))
    by_keywords = extract(suv, threshold="suv4", patient_id="P1", min_volume_ml=0.01)
    by_object = extract(suv, threshold="suv4", options=ExtractOptions(patient_id="P1", min_volume_ml=0.01))
    assert by_keywords.patient_id == by_object.patient_id == "P1"
    assert len(by_keywords.lesions) == len(by_object.lesions) == 1
    assert dict(by_keywords.options) == dict(by_object.options)
    with pytest.raises(SettingsError) as info:
        extract(suv, threshold="suv4")  # a Volume has no file name to take the patient id from
    assert info.value.options == ("patient_id",)
