"""Response over time: Lugano 2014 (CT and PET), LYRIC 2016 and RECIL 2017, lesion by lesion and scan by scan.

Each rule is a small pure function of frozen dataclasses (:mod:`pofa.response.measures`,
:mod:`pofa.response.lugano`, :mod:`pofa.response.lyric`, :mod:`pofa.response.recil`);
:func:`pofa.response.series.assess_patient` applies them to one patient's scans in date order.
"""

from pofa.response.lugano import LuganoCT, LuganoPET
from pofa.response.lyric import LyricResponse
from pofa.response.measures import LesionMeasurement, Scan
from pofa.response.recil import RecilResponse
from pofa.response.series import ResponseSettings, ScanResponse, assess_patient

__all__ = [
    "LesionMeasurement",
    "LuganoCT",
    "LuganoPET",
    "LyricResponse",
    "RecilResponse",
    "ResponseSettings",
    "Scan",
    "ScanResponse",
    "assess_patient",
]
