"""Lesion-level risk factors and the design matrix built from them.

A :class:`RiskFactor` names one term of a lesion-level logistic model: a threshold on a numeric column
(``diameter_cm>=5`` is 1 when the diameter is at least 5 cm), a yes/no or numeric column used as it is
(``extranodal``), or a numeric column scaled per unit or per standard deviation (``suvmax/sd``).
:func:`build_design` turns a lesions table into the outcome vector, the design matrix (intercept first) and
the patient (cluster) ids, dropping and counting lesions with a missing value in a column the model uses, as
R's ``glm``/``geeglm`` do with ``na.action = na.omit``.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pofa.errors import SettingsError

INTERCEPT = "(Intercept)"


class Scale(enum.Enum):
    """How a continuous risk factor enters the model (the value is what users write)."""

    UNIT = "unit"
    SD = "sd"


class FactorKind(enum.Enum):
    """The three kinds of term a :class:`RiskFactor` can make."""

    THRESHOLD = "threshold"
    AS_IS = "as is"
    CONTINUOUS = "continuous"


@dataclass(frozen=True, slots=True)
class RiskFactor:
    """One term of a lesion-level model.

    Attributes
    ----------
    column : str
        Column of the lesions table.
    threshold : float or None
        When given, the term is 1 if ``column >= threshold`` and 0 otherwise (name ``"diameter_cm>=5"``).
    scale : Scale, str or None
        ``"unit"`` or ``"sd"``: the numeric column enters as a continuous term and the odds ratio is per unit
        (name ``"suvmax (per unit)"``) or per sample standard deviation of the lesions in the model (R
        ``sd()``, n - 1 denominator; name ``"suvmax (per SD)"``).

    Notes
    -----
    With neither ``threshold`` nor ``scale`` the column is used as it is (name = column): a yes/no column
    enters as 0/1 (``"extranodal"``), a numeric column enters per unit, as in R's ``glm(y ~ column)``.
    """

    column: str
    threshold: float | None = None
    scale: Scale | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.column, str) or not self.column.strip():
            raise SettingsError(f"A risk factor needs a column name, got {self.column!r}.")
        if self.threshold is not None:
            if isinstance(self.threshold, bool) or not isinstance(self.threshold, int | float):
                raise SettingsError(
                    f"Risk factor {self.column!r}: the threshold must be a number, got {self.threshold!r}."
                )
            if not math.isfinite(float(self.threshold)):
                raise SettingsError(f"Risk factor {self.column!r}: the threshold must be finite.")
            object.__setattr__(self, "threshold", float(self.threshold))
        if self.scale is not None and not isinstance(self.scale, Scale):
            try:
                object.__setattr__(self, "scale", Scale(str(self.scale).strip().lower()))
            except ValueError:
                raise SettingsError(
                    f"Risk factor {self.column!r}: scale must be 'unit' or 'sd', got {self.scale!r}."
                ) from None
        if self.threshold is not None and self.scale is not None:
            raise SettingsError(f"Risk factor {self.column!r}: give either a threshold or a scale, not both.")

    @property
    def kind(self) -> FactorKind:
        """Whether the term is a threshold, a column used as it is, or a scaled continuous term.

        Returns
        -------
        FactorKind
            ``THRESHOLD``, ``CONTINUOUS`` (a scale is given) or ``AS_IS``.
        """
        if self.threshold is not None:
            return FactorKind.THRESHOLD
        if self.scale is not None:
            return FactorKind.CONTINUOUS
        return FactorKind.AS_IS

    @property
    def name(self) -> str:
        """The term name users see: ``"diameter_cm>=5"``, ``"extranodal"``, ``"suvmax (per SD)"``.

        Returns
        -------
        str
            The name, as results.json and the report show it.
        """
        if self.threshold is not None:
            return f"{self.column}>={_number_text(self.threshold)}"
        if self.scale is Scale.SD:
            return f"{self.column} (per SD)"
        if self.scale is Scale.UNIT:
            return f"{self.column} (per unit)"
        return self.column

    def __str__(self) -> str:
        return self.name

    @classmethod
    def parse(cls, text: str) -> RiskFactor:
        """Read a risk factor from text.

        Accepted forms: ``"diameter_cm>=5"`` (threshold), ``"extranodal"`` (column as it is),
        ``"suvmax/unit"`` and ``"suvmax/sd"`` (continuous per unit or per SD). The names produced by
        :attr:`name` (``"suvmax (per SD)"``) are read back too.

        Parameters
        ----------
        text : str
            The factor in one of the forms above.

        Returns
        -------
        RiskFactor
            The parsed factor.

        Raises
        ------
        SettingsError
            When ``text`` is not text or matches none of the forms.
        """
        return parse_factor(text)


def _number_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


_THRESHOLD = re.compile(r"^\s*(?P<col>[^<>=!]+?)\s*>=\s*(?P<thr>[-+0-9.eE]+)\s*$")
_SCALED = re.compile(r"^\s*(?P<col>[^/()]+?)\s*(?:/\s*(?P<s1>\w+)|\(\s*per\s+(?P<s2>\w+)\s*\))\s*$", re.I)
_COLUMN = re.compile(r"^\s*(?P<col>[A-Za-z_][\w.]*)\s*$")


def parse_factor(text: str) -> RiskFactor:
    """Read a :class:`RiskFactor` from text (see :meth:`RiskFactor.parse` for the forms).

    Parameters
    ----------
    text : str
        ``"COLUMN>=X"``, ``"COLUMN"``, ``"COLUMN/unit"`` or ``"COLUMN/sd"``.

    Returns
    -------
    RiskFactor
        The parsed factor.

    Raises
    ------
    SettingsError
        When ``text`` is not text, the threshold is not a number, the scale is neither ``unit`` nor ``sd``,
        or ``text`` matches none of the forms.
    """
    if not isinstance(text, str):
        raise SettingsError(f"A risk factor must be written as text, got {text!r}.")
    m = _THRESHOLD.match(text)
    if m:
        try:
            thr = float(m["thr"])
        except ValueError:
            raise SettingsError(f"Risk factor {text!r}: {m['thr']!r} is not a number.") from None
        return RiskFactor(m["col"], threshold=thr)
    m = _SCALED.match(text)
    if m:
        word = (m["s1"] or m["s2"]).lower()
        try:
            scale = Scale(word)
        except ValueError:
            raise SettingsError(
                f"Risk factor {text!r}: the scale must be 'unit' or 'sd', got {word!r}."
            ) from None
        return RiskFactor(m["col"], scale=scale)
    m = _COLUMN.match(text)
    if m:
        return RiskFactor(m["col"])
    raise SettingsError(
        f"Cannot read the risk factor {text!r}. Write a column name ('extranodal'), a threshold "
        "('diameter_cm>=5'; only >= is supported) or a scaled continuous term ('suvmax/unit', 'suvmax/sd')."
    )


#: The lesion-level risk factors of Figura et al. 2021: bulky (>= 5 cm), SUVmax >= 10, extranodal.
DEFAULT_FACTORS: tuple[RiskFactor, ...] = (
    RiskFactor("diameter_cm", threshold=5.0),
    RiskFactor("suvmax", threshold=10.0),
    RiskFactor("extranodal"),
)


@dataclass(frozen=True, slots=True)
class LesionDesign:
    """Outcome, design matrix and cluster ids of one lesion-level model.

    Attributes
    ----------
    y : ndarray of float, shape (n,)
        Outcome, 0.0 or 1.0.
    X : ndarray of float, shape (n, 1 + k)
        Design matrix; column 0 is the intercept.
    columns : tuple of str
        Names of the columns of ``X`` (``"(Intercept)"`` first, then the term names).
    groups : ndarray of str, shape (n,)
        Patient (cluster) id of each lesion, as text.
    n_dropped : int
        Lesions left out because a column the model uses was missing.
    dropped_columns : tuple of str
        The columns that had missing values among the lesions left out.
    sd : tuple of float or None
        For each term, the standard deviation the column was divided by (per-SD terms), else ``None``.
    """

    y: np.ndarray
    X: np.ndarray
    columns: tuple[str, ...]
    groups: np.ndarray
    n_dropped: int
    dropped_columns: tuple[str, ...] = ()
    sd: tuple[float | None, ...] = field(default=())

    @property
    def terms(self) -> tuple[str, ...]:
        """Term names without the intercept.

        Returns
        -------
        tuple of str
            The design's column names after the first.
        """
        return self.columns[1:]

    @property
    def n_lesions(self) -> int:
        """Number of lesions in the model (rows of the design).

        Returns
        -------
        int
            The number of lesions kept.
        """
        return int(self.y.shape[0])

    @property
    def n_patients(self) -> int:
        """Number of patients (distinct cluster ids) in the model.

        Returns
        -------
        int
            The number of distinct cluster ids (0 without lesions).
        """
        return int(np.unique(self.groups).shape[0]) if self.groups.shape[0] else 0

    @property
    def dropped_note(self) -> str:
        """Sentence saying how many lesions were left out and why (empty when none).

        Returns
        -------
        str
            E.g. ``"2 lesions with a missing value (suvmax) left out"``.
        """
        if not self.n_dropped:
            return ""
        cols = ", ".join(self.dropped_columns)
        s = "lesion" if self.n_dropped == 1 else "lesions"
        return f"{self.n_dropped} {s} with a missing value ({cols}) left out"


def is_boolean(s: pd.Series) -> bool:
    """Return whether a column holds yes/no values (a bool dtype, or objects that are all booleans).

    Parameters
    ----------
    s : pandas.Series
        The column.

    Returns
    -------
    bool
        True for a bool dtype, or an object column whose non-missing values are all booleans (at least one).
    """
    if pd.api.types.is_bool_dtype(s.dtype):
        return True
    if s.dtype == object:
        vals = s.dropna()
        return len(vals) > 0 and all(isinstance(v, bool | np.bool_) for v in vals)
    return False


def numeric_column(s: pd.Series, what: str) -> pd.Series:
    """Return the column as float (booleans as 0/1), NaN where missing; error for text.

    Parameters
    ----------
    s : pandas.Series
        The column.
    what : str
        How to name the column in the error message (e.g. ``"The outcome column 'lf'"``).

    Returns
    -------
    pandas.Series
        The column as float64.

    Raises
    ------
    SettingsError
        When the column holds text or is empty.
    """
    if is_boolean(s):
        return s.astype("float64")
    if pd.api.types.is_numeric_dtype(s.dtype):
        return s.astype("float64")
    raise SettingsError(
        f"{what} holds text (e.g. {s.dropna().iloc[0]!r}) where numbers or yes/no values are needed. "
        "Convert it to numbers or true/false first (the study reader does this for the study format)."
        if s.notna().any()
        else f"{what} is empty."
    )


def _cluster_ids(s: pd.Series, column: str) -> pd.Series:
    if pd.api.types.is_float_dtype(s.dtype):
        raise SettingsError(
            f"The patient id column {column!r} was read as decimal numbers, which merges ids such as "
            "'1.1' and '1.10'. Read id columns as text (e.g. pandas.read_csv(..., dtype={column: str}))."
        )
    out = s.astype("string")
    return out


def build_design(
    lesions: pd.DataFrame,
    factors: Sequence[RiskFactor | str],
    *,
    outcome: str,
    cluster: str,
) -> LesionDesign:
    """Outcome, design matrix (intercept first) and cluster ids for a model of ``factors``.

    Lesions with a missing value in the outcome, the cluster id or any column the factors use are left out
    and counted (``n_dropped``), as R's ``na.omit``. The input table is not modified.

    Parameters
    ----------
    lesions : DataFrame
        One row per lesion.
    factors : sequence of RiskFactor (or text read by :func:`parse_factor`)
        Terms of the model (at least one; names must be distinct).
    outcome : str
        0/1 or yes/no column (e.g. local failure of the lesion).
    cluster : str
        Patient id column. Ids are compared as text; a column of decimal numbers is refused because
        "1.1" and "1.10" would already have been merged.

    Returns
    -------
    LesionDesign
        The outcome, the design matrix with its column names, the cluster ids and the lesions left out.

    Raises
    ------
    SettingsError
        A column is missing, holds text, or the factors repeat a term.
    """
    if not isinstance(lesions, pd.DataFrame):
        raise SettingsError("The lesions must be a pandas DataFrame with one row per lesion.")
    parsed: list[RiskFactor] = []
    for f in factors:
        if isinstance(f, str):
            f = parse_factor(f)
        if not isinstance(f, RiskFactor):
            raise SettingsError(f"Risk factors must be RiskFactor objects or text, got {f!r}.")
        parsed.append(f)
    if not parsed:
        raise SettingsError("Give at least one risk factor.")
    specs = tuple(parsed)
    names = [f.name for f in specs]
    if len(set(names)) != len(names):
        raise SettingsError(f"The risk specs repeat a term: {names}.")
    used = [outcome, cluster] + [f.column for f in specs]
    missing = [c for c in dict.fromkeys(used) if c not in lesions.columns]
    if missing:
        raise SettingsError(
            f"The lesions table has no column {', '.join(map(repr, missing))}. "
            f"Columns present: {', '.join(map(str, lesions.columns))}."
        )
    data = lesions.loc[:, list(dict.fromkeys(used))].copy()
    y = numeric_column(data[outcome], f"The outcome column {outcome!r}")
    bad = y.notna() & ~y.isin([0.0, 1.0])
    if bad.any():
        raise SettingsError(
            f"The outcome column {outcome!r} must hold 0/1 or yes/no values; found {y[bad].iloc[0]!r}."
        )
    groups = _cluster_ids(data[cluster], cluster)
    cols: dict[str, pd.Series] = {}
    for f in specs:
        if f.column not in cols:
            col = data[f.column]
            if f.kind is not FactorKind.AS_IS and is_boolean(col):
                raise SettingsError(
                    f"Risk factor {f.name!r}: column {f.column!r} holds yes/no values; use it as it is "
                    f"({f.column!r}) without a threshold or scale."
                )
            cols[f.column] = numeric_column(col, f"Column {f.column!r}")
    na = y.isna() | groups.isna()
    for c in cols.values():
        na |= c.isna()
    dropped_cols = tuple(c for c in dict.fromkeys(used) if (data[c].isna() & na).any())
    keep = ~na.to_numpy()
    terms: list[np.ndarray] = []
    sds: list[float | None] = []
    for f in specs:
        x = cols[f.column].to_numpy()[keep]
        sd: float | None = None
        if f.kind is FactorKind.THRESHOLD:
            assert f.threshold is not None
            x = (x >= f.threshold).astype(float)
        elif f.scale is Scale.SD:
            sd = float(np.std(x, ddof=1)) if x.shape[0] > 1 else float("nan")
            x = x / sd if sd > 0 else np.full_like(x, np.nan)
        terms.append(x)
        sds.append(sd)
    n = int(keep.sum())
    X = np.column_stack([np.ones(n)] + terms) if n else np.empty((0, 1 + len(terms)))
    y_arr = y.to_numpy()[keep].astype(float)
    g_arr = np.asarray(groups.to_numpy()[keep], dtype=str)
    for a in (X, y_arr, g_arr):
        a.setflags(write=False)
    return LesionDesign(
        y=y_arr,
        X=X,
        columns=(INTERCEPT, *names),
        groups=g_arr,
        n_dropped=int((~keep).sum()),
        dropped_columns=dropped_cols,
        sd=tuple(sds),
    )


def estimability_problems(design: LesionDesign) -> tuple[str, ...]:
    """Return the reasons why no logistic-type model can be estimated from ``design`` (empty when it can).

    Checked: no lesions, an outcome without events or without non-events, a term with the same value in
    every lesion, a per-SD term with zero SD, and terms that are linear combinations of others (aliased).

    Parameters
    ----------
    design : LesionDesign
        The design built by :func:`build_design`.

    Returns
    -------
    tuple of str
        One sentence per problem; empty when the model can be estimated.
    """
    reasons: list[str] = []
    n = design.n_lesions
    if n == 0:
        return ("no lesion has all the values the model needs",)
    events = int(design.y.sum())
    if events == 0:
        reasons.append(f"no lesion has the outcome (0 events in {n} lesions)")
    elif events == n:
        reasons.append(f"every lesion has the outcome ({n} events in {n} lesions)")
    X = design.X
    if not np.all(np.isfinite(X)):
        bad = [design.columns[j] for j in range(X.shape[1]) if not np.all(np.isfinite(X[:, j]))]
        reasons.append(f"term {', '.join(bad)} cannot be computed (its standard deviation is 0)")
        return tuple(reasons)
    const = [design.columns[j] for j in range(1, X.shape[1]) if np.ptp(X[:, j]) == 0]
    if const:
        reasons.append("term " + ", ".join(const) + f" has the same value in all {n} lesions")
    elif np.linalg.matrix_rank(X) < X.shape[1]:
        reasons.append("the terms are collinear (one is a linear combination of the others)")
    return tuple(reasons)
