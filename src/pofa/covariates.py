"""Declared covariates: what a study column holds, how it is labelled and how it is reported.

A study may declare each covariate in ``study.toml`` (``[covariates.age]``: type, label, unit, reporting step).
The declaration decides how cells are checked (a non-conforming cell of a declared column is an error) and how
the column appears in Table 1, the forest plot and the methods text.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CovariateType(StrEnum):
    """The kinds of value a covariate column holds; the values are the words written in ``study.toml``."""

    NUMBER = "number"
    WHOLE_NUMBER = "whole number"
    YES_NO = "yes/no"
    CATEGORY = "category"
    DATE = "date"


class Summary(StrEnum):
    """How a numeric covariate is summarised in Table 1."""

    MEDIAN_IQR = "median"
    MEAN_SD = "mean"


@dataclass(frozen=True, slots=True)
class Covariate:
    """One declared covariate.

    Attributes
    ----------
    column : str
        The column's name in the study table (after any ``[columns]`` renaming).
    table : str
        ``"patients"`` or ``"lesions"``.
    type : CovariateType
        What each cell must hold.
    label : str
        Text shown in tables and figures; empty means a readable form of the column name.
    unit : str
        Unit shown after the label (``"years"``); empty for none.
    levels : tuple of str
        Categories in display order (type ``category`` only); the first is the reference level.
    step : float
        Reporting step of a number: hazard and odds ratios are given per ``step`` units (HR per 10 years).
    summary : Summary
        Table 1 summary of a number: median [IQR] (default) or mean (SD).
    """

    column: str
    table: str = "patients"
    type: CovariateType = CovariateType.NUMBER
    label: str = ""
    unit: str = ""
    levels: tuple[str, ...] = ()
    step: float = 1.0
    summary: Summary = Summary.MEDIAN_IQR

    def display_label(self) -> str:
        """The label with its unit, as printed: ``"Age (years)"``; the column name when no label is given.

        Returns
        -------
        str
            The label shown in Table 1, figures and the methods text.
        """
        base = self.label or self.column.replace("_", " ").strip().capitalize()
        return f"{base} ({self.unit})" if self.unit else base
