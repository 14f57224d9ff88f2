"""The few input checks every public measure uses, so error texts read the same everywhere.

Each check returns a clean ``float64`` C-contiguous array (or the checked scalar) or raises
:class:`~advanced_risk.errors.InvalidInputError` naming the field, the bad value and what is
allowed. Kernels behind the public functions trust what these return. Nothing is coerced silently:
NaN and inf are rejected, not dropped, and complex numbers are refused rather than cast to their
real part. A number too large for a float (``10**400``) is rejected like inf, never surfaced as
``OverflowError``.

Returns are fractions: :func:`as_returns` and :func:`as_matrix` also refuse any return whose
magnitude exceeds :data:`MAX_ABS_RETURN` (1e6, a +100,000,000 % bar), which no market produces and
whose square, fourth power and sums over any realistic sample stay far from float overflow, so
moments (variance, kurtosis, covariance) of accepted returns are always finite.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from advanced_risk.errors import InvalidInputError

__all__ = [
    "MAX_ABS_RETURN",
    "PERIODS_PER_YEAR",
    "as_array",
    "as_matrix",
    "as_positive",
    "as_returns",
    "as_weights",
    "asset_indices",
    "check_alpha",
    "check_finite_scalar",
    "check_flag",
    "check_positive_int",
    "check_range",
    "check_same_length",
    "float_array",
    "halflife_decay",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]

MAX_ABS_RETURN = 1e6
"""Largest accepted magnitude of a simple return (inclusive): 1e6 is a +100,000,000 % bar, far beyond
any real move, so a larger value is a feed or unit error (a price passed as a return, 1e300 from a
bad parse). Bounding returns here keeps their moments finite: ``T * MAX_ABS_RETURN**4`` is below
the float maximum for any ``T`` under 1e284 rows."""

PERIODS_PER_YEAR: Final = 252
"""Trading days in a year: the annualisation factor of daily bars (Sharpe ``* sqrt(252)``, an
annual volatility, a year of GBM time steps). The one definition every layer imports."""


def _describe(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        # repr of a huge int is slow and, above 4300 digits, raises ValueError (CPython's limit)
        return f"an integer of about 10**{int(value.bit_length() * math.log10(2))}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _as_float(value: Any, name: str) -> float:
    """``float(value)``, with a value beyond the float range (``10**400``) as ``InvalidInputError``."""
    try:
        return float(value)
    except OverflowError:
        raise InvalidInputError(
            f"{name} must be finite, got {_describe(value)} (too large for a float)"
        ) from None


_KEPT_KINDS: Final = frozenset("biuf")
"""dtype kinds (bool, int, unsigned, float) whose conversion to float64 drops nothing silently."""


def _source_for_float(values: Any, name: str) -> Any:
    """What to hand ``np.ascontiguousarray(..., dtype=float64)``: ``values`` itself, or for a list or
    tuple its NumPy array when that is plainly numeric (converted once, not twice).

    Complex data is refused here: NumPy's cast to float drops the imaginary part with only a
    ``ComplexWarning``. An array, a pandas Series or DataFrame says so by its dtype(s); a list does
    so once NumPy reads it (a list of Python ``complex`` needs no check: ``float()`` refuses it).
    """
    if isinstance(values, np.ndarray):  # the hot path: one attribute test
        kinds: tuple[str, ...] = (values.dtype.kind,)
        source: Any = values
    elif isinstance(values, list | tuple):
        try:
            source = np.asarray(values)
        except (TypeError, ValueError, OverflowError):  # ragged and the like: the cast reports it
            return values
        kinds = (source.dtype.kind,)
        if kinds[0] not in _KEPT_KINDS:  # object (a huge int), text...: converted as before
            source = values
    else:
        dtype = getattr(values, "dtype", None)  # a pandas Series (its dtype may be pandas' own)
        found = [dtype] if dtype is not None else getattr(values, "dtypes", None)  # a DataFrame
        kinds = tuple(str(getattr(d, "kind", "")) for d in found) if found is not None else ()
        source = values
    if "c" in kinds:
        raise InvalidInputError(f"{name} must be real numbers, got complex values")
    return source


def float_array(values: ArrayLike, name: str) -> FloatArray:
    """``values`` as a C-contiguous float64 array of any rank; the values themselves are not checked.

    The one conversion behind :func:`as_array` and the fast paths that check values in a compiled
    pass of their own.

    Raises
    ------
    InvalidInputError
        Naming ``name``, if ``values`` is not numeric, holds complex numbers, or a Python int beyond
        the float range (``10**400``, rejected like inf, never surfaced as ``OverflowError``).
    """
    source = _source_for_float(values, name)
    try:
        arr: FloatArray = np.ascontiguousarray(source, dtype=np.float64)
    except OverflowError as exc:  # a Python int beyond the float range, e.g. 10**400
        raise InvalidInputError(f"{name} must be finite, got a number too large for a float") from exc
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be numeric, got {_describe(values)}") from exc
    return arr


def as_array(
    values: ArrayLike,
    name: str,
    *,
    ndim: int | tuple[int, ...],
    min_len: int = 1,
    max_abs: float | None = None,
) -> FloatArray:
    """Return ``values`` as a finite float64 array of the given rank(s) with at least ``min_len`` rows.

    With ``max_abs``, every entry must also satisfy ``|x| <= max_abs`` (checked in the same pass as
    finiteness).

    Raises
    ------
    InvalidInputError
        If ``values`` is not numeric (complex numbers included), has the wrong rank, too few rows,
        holds NaN/inf (or a Python int beyond the float range), or an entry above ``max_abs`` in
        magnitude.
    """
    arr = float_array(values, name)
    ranks = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in ranks:
        allowed = " or ".join(f"{r}-D" for r in ranks)
        raise InvalidInputError(f"{name} must be {allowed}, got {arr.ndim}-D with shape {arr.shape}")
    if arr.shape[0] < min_len:
        raise InvalidInputError(f"{name} needs at least {min_len} rows, got {arr.shape[0]}")
    if arr.ndim == 2 and arr.shape[1] < 1:
        raise InvalidInputError(f"{name} needs at least 1 column, got shape {arr.shape}")
    ok = np.isfinite(arr) if max_abs is None else np.abs(arr) <= max_abs  # NaN fails both
    if not ok.all():
        bad = np.argwhere(~ok)[0]
        where = int(bad[0]) if arr.ndim == 1 else tuple(int(i) for i in bad)
        value = arr[tuple(bad)]
        if not math.isfinite(value):
            raise InvalidInputError(f"{name} must be finite, got {value} at index {where}")
        raise InvalidInputError(
            f"{name} must be within [-{max_abs:g}, {max_abs:g}] (a return is a fraction; a larger one "
            f"is a feed error), got {value:g} at index {where}"
        )
    return arr


def as_returns(returns: ArrayLike, name: str = "returns", *, min_len: int = 2) -> FloatArray:
    """A 1-D finite series of simple returns, each ``|r| <= MAX_ABS_RETURN``, at least ``min_len``."""
    return as_array(returns, name, ndim=1, min_len=min_len, max_abs=MAX_ABS_RETURN)


def as_matrix(values: ArrayLike, name: str = "returns", *, min_rows: int = 2) -> FloatArray:
    """A 2-D finite (T, n) matrix of returns (one column per asset), each ``|r| <= MAX_ABS_RETURN``,
    with at least ``min_rows`` rows."""
    return as_array(values, name, ndim=2, min_len=min_rows, max_abs=MAX_ABS_RETURN)


def as_positive(
    values: ArrayLike, name: str, *, ndim: int | tuple[int, ...] = 1, min_len: int = 1
) -> FloatArray:
    """A finite array whose entries are all strictly positive (prices, volatilities)."""
    arr = as_array(values, name, ndim=ndim, min_len=min_len)
    if (arr <= 0).any():
        bad = np.argwhere(arr <= 0)[0]
        where = int(bad[0]) if arr.ndim == 1 else tuple(int(i) for i in bad)
        raise InvalidInputError(f"{name} must be > 0, got {arr[tuple(bad)]} at index {where}")
    return arr


def as_weights(weights: ArrayLike, n_assets: int, name: str = "weights") -> FloatArray:
    """A finite 1-D weight vector with one entry per asset (no sum constraint: cash may be implied)."""
    w = as_array(weights, name, ndim=1)
    if w.shape[0] != n_assets:
        raise InvalidInputError(f"{name} must have one entry per asset ({n_assets}), got {w.shape[0]}")
    return w


def check_finite_scalar(value: Any, name: str) -> float:
    """A real, finite scalar (bools are refused: ``True`` is not a number here).

    NaN, inf and a number beyond the float range (a Python int such as ``10**400``) raise
    ``InvalidInputError`` naming ``name``.
    """
    if type(value) is float and math.isfinite(value):  # the common case, without ABC checks
        return value
    if isinstance(value, bool) or not isinstance(value, Real | np.floating | np.integer):
        raise InvalidInputError(f"{name} must be a real number, got {_describe(value)}")
    out = _as_float(value, name)
    if not math.isfinite(out):
        raise InvalidInputError(f"{name} must be finite, got {out}")
    return out


def check_alpha(alpha: Any, name: str = "alpha") -> float:
    """A confidence level strictly inside (0, 1), e.g. 0.95 or 0.99."""
    a = check_finite_scalar(alpha, name)
    if not 0.0 < a < 1.0:
        raise InvalidInputError(f"{name} must be in (0, 1), got {a}")
    return a


def check_range(
    value: Any, name: str, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False
) -> float:
    """A finite scalar in the interval [lo, hi] (each end open when asked)."""
    v = check_finite_scalar(value, name)
    below = v <= lo if lo_open else v < lo
    above = v >= hi if hi_open else v > hi
    if below or above:
        left, right = ("(" if lo_open else "["), (")" if hi_open else "]")
        raise InvalidInputError(f"{name} must be in {left}{lo}, {hi}{right}, got {v}")
    return v


def check_flag(value: object, name: str) -> bool:
    """``value`` as a bool: only ``bool`` and ``numpy.bool_`` are flags.

    Anything else (the string ``'no'``, which is truthy; 0/1; None) raises ``InvalidInputError``
    naming ``name`` rather than being read by its truth value.
    """
    if type(value) is bool:  # the common case, without the numpy test
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    raise InvalidInputError(f"{name} must be a bool, got {value!r:.60}")


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (bools and floats are refused)."""
    if type(value) is int and value >= minimum:  # the common case, without the ABC check
        return value
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InvalidInputError(f"{name} must be an integer, got {_describe(value)}")
    if int(value) < minimum:
        raise InvalidInputError(f"{name} must be >= {minimum}, got {int(value)}")
    return int(value)


def halflife_decay(halflife: Any, name: str) -> float:
    """The per-bar decay ``0.5 ** (1 / halflife)`` of a half-life in bars (an integer >= 1).

    A half-life too large for a float (``10**400`` is a valid integer) gives the limit, 1.0 (an
    equal-weight mean), rather than ``OverflowError``: past ``2**62`` bars the decay rounds to 1.

    >>> halflife_decay(1, "halflife"), halflife_decay(10**400, "halflife")
    (0.5, 1.0)
    """
    return float(0.5 ** (1.0 / min(check_positive_int(halflife, name), 2**62)))


def check_same_length(name_a: str, a: FloatArray, name_b: str, b: FloatArray) -> None:
    """Two arrays that must share their first dimension (e.g. high and low)."""
    if a.shape[0] != b.shape[0]:
        raise InvalidInputError(
            f"{name_a} and {name_b} must have the same length, got {a.shape[0]} and {b.shape[0]}"
        )


def asset_indices(indices: ArrayLike, n_assets: int) -> IntArray:
    """``indices`` as sorted, distinct int64 positions in ``[0, n_assets)``: the assets to remove.

    Only integers pass: NumPy's ``astype(int64)`` would truncate 0.7 to asset 0, and a negative
    index would name an asset from the end. An empty input (which NumPy reads as float) is the
    no-op it always was.

    Raises
    ------
    InvalidInputError
        Naming ``indices``, for anything else: text, floats, nesting, a position out of range, a
        position named twice.
    """
    try:
        raw = np.asarray(indices)
    except (TypeError, ValueError) as exc:  # a ragged list and the like
        raise InvalidInputError(f"indices must be integer asset positions, got {indices!r:.60}") from exc
    if raw.size == 0:
        return np.empty(0, dtype=np.int64)
    if raw.dtype.kind not in "iu" or raw.ndim > 1:
        raise InvalidInputError(
            f"indices must be a sequence of integer asset positions, got {raw.tolist()!r:.60}"
        )
    if raw.min() < 0 or raw.max() >= n_assets:  # before the cast: a uint64 above 2**63 stays large
        raise InvalidInputError(
            f"indices must lie in [0, {n_assets}) (the {n_assets} assets), got {raw.tolist()!r:.60}"
        )
    idx = raw.astype(np.int64).ravel()
    distinct: IntArray = np.unique(idx)
    if distinct.size != idx.size:
        raise InvalidInputError(f"indices must name each asset at most once, got {idx.tolist()!r:.60}")
    return distinct
