"""The ``[redcap]`` section of ``study.toml``: where the export is, and how its fields map to the format.

.. code-block:: toml

    [redcap]
    export = "export.csv"            # read by pofa validate / analyze instead of CSV tables
    dictionary = "dictionary.csv"
    ignore = ["consent_scan"]        # fields never read as covariates

    [redcap.lesions]                 # format column = REDCap field (defaults: pofa template --redcap)
    site = "lesion_location"
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pofa.findings import Finding, Severity
from pofa.redcap.dictionary import REDCAP_TABLES, default_mapping
from pofa.schema import TABLES, TableName

SETTINGS_FILE = "study.toml"
_KEYS = ("export", "dictionary", "ignore")


@dataclass(frozen=True, slots=True)
class RedcapSettings:
    """How a REDCap project's fields become the format's tables.

    Attributes
    ----------
    export : str or None
        The records export (CSV), relative to the study folder; ``None`` when the study's tables are files.
    dictionary : str or None
        The project's data dictionary (CSV), relative to the study folder.
    fields : dict
        Per table, format column -> REDCap field name (the defaults of ``pofa template --redcap``, updated
        by the section's tables ``[redcap.patients]``, ``[redcap.lesions]``, ``[redcap.failures]``).
    ignore : tuple of str
        Fields never read as covariates.
    """

    export: str | None = None
    dictionary: str | None = None
    fields: dict[TableName, dict[str, str]] = field(default_factory=default_mapping)
    ignore: tuple[str, ...] = ()


def _finding(message: str, hint: str, column: str | None = None) -> Finding:
    return Finding(Severity.ERROR, "bad-setting", SETTINGS_FILE, None, column, message, hint)


def parse_redcap_settings(section: Any) -> tuple[RedcapSettings, list[Finding]]:
    """The ``[redcap]`` section of a parsed ``study.toml`` (a dict), with a finding for each bad entry.

    Parameters
    ----------
    section : Any
        The value of ``[redcap]`` (``None`` when the section is absent).

    Returns
    -------
    tuple of (RedcapSettings, list of Finding)
        The settings (defaults for bad entries) and the findings.
    """
    if section is None:
        return RedcapSettings(), []
    if not isinstance(section, dict):
        return RedcapSettings(), [_finding("'redcap' must be a section [redcap]", "see docs/data-entry.md")]
    findings: list[Finding] = []
    mapping = default_mapping()
    values: dict[str, Any] = {}
    tables = {t.value: t for t in REDCAP_TABLES}
    for key, value in section.items():
        if key in tables:
            table = tables[key]
            if not isinstance(value, dict):
                findings.append(_finding(f"redcap.{key} must be a table of column = \"field\"",
                                         f'e.g. [redcap.{key}] then site = "my_field"', key))
                continue
            for col, fld in value.items():
                if TABLES[table].column(col) is None:
                    close = difflib.get_close_matches(col, [c.name for c in TABLES[table].columns], n=1)
                    findings.append(_finding(
                        f"redcap.{key}.{col}: {key} has no column '{col}'",
                        f"did you mean {close[0]}?" if close else
                        f"columns of {key}: {', '.join(c.name for c in TABLES[table].columns)}", col))
                elif not isinstance(fld, str) or not fld.strip():
                    findings.append(_finding(f"redcap.{key}.{col} must be a REDCap field name in quotes",
                                             f'e.g. {col} = "my_field"', col))
                else:
                    mapping[table][col] = fld.strip().lower()
        elif key in ("export", "dictionary"):
            if not isinstance(value, str) or not value.strip():
                findings.append(_finding(f"redcap.{key} must be a file name in quotes",
                                         f'e.g. {key} = "{key}.csv"', key))
            else:
                values[key] = value.strip()
        elif key == "ignore":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                findings.append(_finding("redcap.ignore must be a list of field names",
                                         'e.g. ignore = ["consent_date"]', key))
            else:
                values[key] = tuple(v.strip().lower() for v in value)
        else:
            close = difflib.get_close_matches(key, [*_KEYS, *tables], n=1)
            findings.append(_finding(f"unknown setting redcap.{key}",
                                     f"did you mean redcap.{close[0]}?" if close else
                                     f"known settings of [redcap]: {', '.join([*_KEYS, *tables])}", key))
    if "export" in values and "dictionary" not in values:
        findings.append(_finding("redcap.export needs redcap.dictionary (the project's data dictionary)",
                                 'add dictionary = "dictionary.csv" to [redcap]', "dictionary"))
    return RedcapSettings(fields=mapping, **values), findings


def read_redcap_settings(path: Path) -> tuple[RedcapSettings, list[Finding]]:
    """The ``[redcap]`` section of a ``study.toml`` file (defaults when the file or section is absent).

    A file that is not valid TOML gives the defaults and no finding here: the settings reader reports it.

    Parameters
    ----------
    path : pathlib.Path
        The ``study.toml`` file.

    Returns
    -------
    tuple of (RedcapSettings, list of Finding)
        The settings and the findings.
    """
    from pofa.io.toml import TomlFileError, read_toml

    try:
        data = read_toml(path)  # the one TOML reader: regular files only, bounded size and nesting
    except TomlFileError:
        return RedcapSettings(), []
    return parse_redcap_settings(data.get("redcap"))
