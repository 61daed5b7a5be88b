"""Term values of a risk model's features for any lesions table (training or new lesions).

The rules are those of :func:`pofa.stats.factors.build_design` (a threshold term is 1 when ``column >=
threshold``, a yes/no column enters as 0/1, a numeric column as it is or divided by an SD), with one
difference that prediction needs: a per-SD term is divided by the SD stored in the model (the training SD),
never by the SD of the lesions being scored. A test checks that on the training lesions the values equal
``build_design``'s design matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pofa.errors import SettingsError
from pofa.riskmodel.model import Feature

# The column conversion of build_design (booleans as 0/1, numbers as float, text refused) is reused so that
# the two can never disagree.
from pofa.stats.factors import FactorKind, Scale, is_boolean, numeric_column


@dataclass(frozen=True, slots=True)
class TermValues:
    """Term values of each lesion.

    Attributes
    ----------
    X : ndarray, shape (n, 1 + k)
        Design matrix, intercept column first; rows with a missing value hold ``nan``.
    complete : ndarray of bool, shape (n,)
        Rows with every value the model needs.
    missing : tuple of str
        Per row, the columns whose value is missing, ``", "``-joined (empty when complete).
    raw : DataFrame
        The columns the model reads, as float (yes/no as 0/1), same index as the input.
    """

    X: np.ndarray
    complete: np.ndarray
    missing: tuple[str, ...]
    raw: pd.DataFrame


def term_values(lesions: pd.DataFrame, features: Sequence[Feature]) -> TermValues:
    """The design matrix of ``features`` for ``lesions`` (intercept first), with missing values marked.

    Parameters
    ----------
    lesions : DataFrame
        One row per lesion; not modified.
    features : sequence of Feature
        The model's features (per-SD terms carry their training SD).

    Returns
    -------
    TermValues
        Design matrix, which rows are complete, and the missing columns of each row.

    Raises
    ------
    SettingsError
        A column the model needs is absent, holds text, or a threshold / scale is applied to a yes/no column.
    """
    if not isinstance(lesions, pd.DataFrame):
        raise SettingsError("The lesions must be a pandas DataFrame with one row per lesion.")
    cols = list(dict.fromkeys(f.column for f in features))
    absent = [c for c in cols if c not in lesions.columns]
    if absent:
        raise SettingsError(
            f"The lesions table has no column {', '.join(map(repr, absent))}, which the model needs. "
            f"Columns present: {', '.join(map(str, lesions.columns))}."
        )
    raw: dict[str, pd.Series] = {}
    for f in features:
        if f.column in raw:
            continue
        col = lesions[f.column]
        if f.kind is not FactorKind.AS_IS and is_boolean(col):
            raise SettingsError(
                f"Feature {f.term!r}: column {f.column!r} holds yes/no values, but the term needs numbers."
            )
        raw[f.column] = numeric_column(col, f"Column {f.column!r}")
    raw_df = pd.DataFrame(raw, index=lesions.index, columns=cols)
    n = len(lesions)
    X = np.empty((n, 1 + len(features)))
    X[:, 0] = 1.0
    for j, f in enumerate(features, start=1):
        x = raw_df[f.column].to_numpy(dtype=float)
        if f.kind is FactorKind.THRESHOLD:
            assert f.factor.threshold is not None
            with np.errstate(invalid="ignore"):
                v = np.where(np.isnan(x), np.nan, (x >= f.factor.threshold).astype(float))
        elif f.factor.scale is Scale.SD:
            assert f.sd is not None
            v = x / f.sd
        else:
            v = x
        X[:, j] = v
    isna = raw_df.isna().to_numpy()
    complete = np.asarray(~isna.any(axis=1), dtype=bool) if cols else np.ones(n, dtype=bool)
    missing = tuple(", ".join(c for c, m in zip(cols, row, strict=True) if m) for row in isna)
    X.setflags(write=False)
    complete.setflags(write=False)
    return TermValues(X=X, complete=complete, missing=missing, raw=raw_df)


__all__ = ["TermValues", "term_values"]
