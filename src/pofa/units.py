"""Units shared by every part of pofa: the one place a conversion constant is defined.

Times are measured from the index date (CAR T-cell infusion) in days in the data and in months in the
results; a month is an average Julian month, 365.25 / 12 = 30.4375 days (docs/statistics.md), the
convention of most oncology papers.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DAYS_PER_MONTH", "DAYS_PER_YEAR", "MONTHS_PER_YEAR"]

#: Days in an average (Julian) year.
DAYS_PER_YEAR: Final[float] = 365.25

#: Months in a year.
MONTHS_PER_YEAR: Final[int] = 12

#: Days in an average month: 365.25 / 12 = 30.4375 (exact in binary floating point).
DAYS_PER_MONTH: Final[float] = DAYS_PER_YEAR / MONTHS_PER_YEAR
