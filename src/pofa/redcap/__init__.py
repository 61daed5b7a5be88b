"""REDCap: a data dictionary for a new project, and the records export read as a study.

>>> from pofa.redcap import dictionary_csv, import_export      # doctest: +SKIP
"""

from __future__ import annotations

from pofa.redcap.config import RedcapSettings, parse_redcap_settings, read_redcap_settings
from pofa.redcap.dictionary import (
    DICTIONARY_COLUMNS,
    DataDictionary,
    Field,
    RedcapError,
    default_dictionary_rows,
    default_mapping,
    dictionary_csv,
    parse_dictionary,
    read_dictionary,
)
from pofa.redcap.export import REDCAP_CODES, RedcapCode, RedcapImport, parse_export, read_export
from pofa.redcap.study import import_export, read_referenced_export, write_study

__all__ = [
    "DICTIONARY_COLUMNS", "REDCAP_CODES", "DataDictionary", "Field", "RedcapCode", "RedcapError",
    "RedcapImport", "RedcapSettings", "default_dictionary_rows", "default_mapping", "dictionary_csv",
    "import_export", "parse_dictionary", "parse_export", "parse_redcap_settings", "read_dictionary",
    "read_export", "read_redcap_settings", "read_referenced_export", "write_study",
]
