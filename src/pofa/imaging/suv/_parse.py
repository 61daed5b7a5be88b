"""Reading DICOM attributes for the SUV: dates, times, positive numbers, private tags."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from pofa.errors import ImagingError


# ---------------------------------------------------------------------------------------------- parsing
# helpers
def _parse_da(value: Any, tag: str) -> dt.date:
    s = str(value).strip().replace(".", "").replace("-", "")
    try:
        return dt.date(int(s[0:4]), int(s[4:6]), int(s[6:8]))
    except (ValueError, IndexError) as exc:
        raise ImagingError(f"{tag} is not a valid DICOM date (YYYYMMDD): {value!r}.") from exc


def _parse_tm(value: Any, tag: str) -> dt.time:
    s = str(value).strip().replace(":", "")
    try:
        main, _, frac = s.partition(".")
        if len(main) not in (2, 4, 6) or not main.isdigit():
            raise ValueError(s)
        hh = int(main[0:2])
        mm = int(main[2:4]) if len(main) >= 4 else 0
        ss = int(main[4:6]) if len(main) >= 6 else 0
        us = int((frac + "000000")[:6]) if frac else 0
        if ss == 60:  # leap second: DICOM allows 60
            ss = 59
            us = 999999
        return dt.time(hh, mm, ss, us)
    except ValueError as exc:
        raise ImagingError(f"{tag} is not a valid DICOM time (HHMMSS.FFFFFF): {value!r}.") from exc


def _parse_dt(value: Any, tag: str) -> dt.datetime:
    s = str(value).strip()
    for sign in ("+", "-"):
        i = s.find(sign, 8)
        if i > 0:
            s = s[:i]  # a UTC offset applies equally to every time of the study; drop it
    if len(s) < 8:
        raise ImagingError(f"{tag} is not a valid DICOM date-time (YYYYMMDDHHMMSS.FFFFFF): {value!r}.")
    d = _parse_da(s[:8], tag)
    rest = s[8:]
    t = _parse_tm(rest, tag) if rest else dt.time(0, 0)
    return dt.datetime.combine(d, t)


def _present(ds: Any, keyword: str) -> bool:
    v = ds.get(keyword) if ds is not None else None
    return v is not None and str(v).strip() != ""


def _positive(ds: Any, keyword: str, tag: str, hint: str = "") -> float:
    if not _present(ds, keyword):
        raise ImagingError(f"{keyword} {tag} is missing.{(' ' + hint) if hint else ''}")
    try:
        x = float(ds.get(keyword))
    except (TypeError, ValueError) as exc:
        raise ImagingError(f"{keyword} {tag} is not a number: {ds.get(keyword)!r}.") from exc
    if not math.isfinite(x) or x <= 0:
        raise ImagingError(f"{keyword} {tag} must be positive; got {x}.{(' ' + hint) if hint else ''}")
    return x


def _private_value(ds: Any, group: int, creator: str, element: int) -> Any:
    """Value of a private element (group, creator, element offset) or None; bytes (UN) decoded as text."""
    try:
        block = ds.private_block(group, creator)
        elem = block[element]
    except (KeyError, ValueError):
        tag = (group << 16) | (0x1000 + element)  # the usual block 0x10 when the creator element is absent
        if tag not in ds:
            return None
        elem = ds[tag]
    v = elem.value
    if isinstance(v, bytes):
        v = v.decode("ascii", errors="replace").strip("\x00 ")
    return v


def _float_or_none(v: Any) -> float | None:
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


