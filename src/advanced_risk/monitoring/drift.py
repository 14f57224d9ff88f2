"""Input drift of a model: its recent observations against the statistics of its training data.

A model file may carry a :class:`FeatureReference`, the training distribution of each observation
feature as a histogram: bin edges at the training deciles (``bins - 1`` quantiles, duplicates
merged) and the training share of each bin. :class:`DriftMonitor` keeps, for the last ``window``
bars, the bin of every feature (a ring of small integers and running counts per bin: fixed memory,
O(d) per bar) and scores the window against the reference.

Definitions (``docs/drift.md`` gives the reasons and the measured figures):

- **bins** of feature ``j``: ``E_j`` sorted edges; bin ``k`` holds ``edge[k-1] <= x < edge[k]``
  (``k = 0..E_j``, open-ended at both ends), plus one *missing* bin for NaN. The training share of
  the missing bin is 0. Every feature has ``B = max_j E_j + 2`` slots (unused ones have share 0 in
  both distributions and contribute nothing).
- **smoothing**: both the window's shares ``a`` and the training shares ``e`` are mixed with the
  uniform distribution over the ``B`` slots, ``p -> (1 - lam) p + lam / B`` with
  ``lam = s B / (W + s B)``, ``s = 0.5`` (half a pseudo-count per slot in a full window of ``W``
  bars). The same mixture on both sides keeps the PSI at exactly 0 when the shares agree and finite
  when a bin is empty.
- **PSI** of feature ``j``: ``sum_k (a_k - e_k) * ln(a_k / e_k)`` over the smoothed shares (>= 0).
- **score** of the model: the mean PSI over its features. ``drifted`` when ``score > threshold``
  once the window holds ``min_bars`` bars (before that the score is NaN and ``drifted`` False).
- **features** of a drifted status: the :data:`TOP_FEATURES` names with the largest PSI, largest
  first.

NaN policy: a NaN entry of an observation falls in its feature's missing bin (training share 0), so
one stray NaN moves the score little and a feature that stays NaN drifts, as it should: the model was
never trained on it. ``+inf`` / ``-inf`` fall in the outermost bins. A reference is built from
finite samples only.

One module because the reference, the monitor's kernel and the settings that build monitors share
one bin layout (edges, the missing slot, the smoothing): a change to any of them changes all three.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from advanced_risk.config.risk import MAX_DRIFT_WINDOW
from advanced_risk.errors import InvalidInputError
from advanced_risk.logs import get_logger
from advanced_risk.measures.jit import jit
from advanced_risk.measures.validation import FloatArray
from advanced_risk.types import DriftStatus

__all__ = [
    "DEFAULT_MIN_BARS",
    "DEFAULT_THRESHOLD",
    "DEFAULT_WINDOW",
    "IN_SAMPLE_QUANTILE",
    "REFERENCE_VERSION",
    "SMOOTHING",
    "TOP_FEATURES",
    "DriftMonitor",
    "DriftSettings",
    "DriftStatus",
    "FeatureReference",
    "calibrated_reference",
    "in_sample_threshold",
    "psi",
    "reference_from_samples",
    "smoothing_weight",
]

log = get_logger(__name__)

REFERENCE_VERSION: Final = 1
"""Version of :meth:`FeatureReference.to_dict`'s layout."""
SMOOTHING: Final = 0.5
"""Pseudo-count per bin slot in a full window (see the module docstring)."""
TOP_FEATURES: Final = 5
MAX_EDGES: Final = int(np.iinfo(np.int16).max) - 2
"""Most bin edges of one feature: the monitor's ring holds bin indices (``0..E + 1``, the last the
missing bin) as int16, so more would wrap and corrupt the counts."""
"""Feature names a drifted status reports."""

DEFAULT_WINDOW: Final = 250
"""Default ``drift_window`` (bars): chosen on training data, docs/drift.md."""
DEFAULT_THRESHOLD: Final = 0.4
"""Threshold (mean PSI) of a reference that stores none and of ``DriftSettings(threshold=None)``
then: the PPO policy's calibrated value (docs/drift.md)."""
DEFAULT_MIN_BARS: Final = 250
"""Default ``drift_min_bars``: chosen on training data, docs/drift.md."""
IN_SAMPLE_QUANTILE: Final = 0.99
"""A model's stored threshold is at least this quantile of the scores of its own training windows
(:func:`in_sample_threshold`): its training data never look drifted on more than 1 % of bars."""

IntArray = NDArray[np.int64]
_NEVER: Final = 1e300  # a threshold no score reaches


@dataclass(frozen=True, slots=True, eq=False)
class FeatureReference:
    """The training distribution of a model's observation features (see the module docstring).

    Attributes
    ----------
    names : one name per feature, in observation order.
    edges : per feature, its sorted, distinct bin edges (``E_j >= 1`` values).
    proportions : per feature, the training share of each of its ``E_j + 1`` bins (sums to 1).
    count : training observations the reference was built from.
    threshold : the model's own drift threshold (mean PSI) for :data:`DEFAULT_WINDOW` /
        :data:`DEFAULT_MIN_BARS`, calibrated on training data (docs/drift.md); None: none stored.
    """

    names: tuple[str, ...]
    edges: tuple[FloatArray, ...]
    proportions: tuple[FloatArray, ...]
    count: int
    threshold: float | None = None

    def __post_init__(self) -> None:
        d = len(self.names)
        if d == 0 or len(self.edges) != d or len(self.proportions) != d:
            raise InvalidInputError(
                f"reference needs one name, edge list and share list per feature, got {d} names, "
                f"{len(self.edges)} edge lists and {len(self.proportions)} share lists"
            )
        for j, (e, p) in enumerate(zip(self.edges, self.proportions, strict=True)):
            _check_feature(j, e, p)
        t = self.threshold
        if t is not None and not (isinstance(t, int | float) and math.isfinite(t) and t > 0):
            raise InvalidInputError(f"reference threshold must be a finite number > 0 or None, got {t!r}")

    @property
    def dim(self) -> int:
        """Number of features."""
        return len(self.names)

    def to_dict(self) -> dict[str, Any]:
        """JSON values (finite floats only): what a model file's header stores."""
        return {
            "version": REFERENCE_VERSION,
            "names": list(self.names),
            "edges": [e.tolist() for e in self.edges],
            "proportions": [p.tolist() for p in self.proportions],
            "count": self.count,
            "threshold": self.threshold,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FeatureReference:
        """Read :meth:`to_dict`'s layout; ``InvalidInputError`` naming what is wrong otherwise."""
        try:
            version = values["version"]
            if version != REFERENCE_VERSION:
                raise InvalidInputError(
                    f"observation_reference version {version!r} is not {REFERENCE_VERSION}"
                )
            return cls(
                names=tuple(str(n) for n in values["names"]),
                edges=tuple(np.asarray(e, dtype=np.float64) for e in values["edges"]),
                proportions=tuple(np.asarray(p, dtype=np.float64) for p in values["proportions"]),
                count=int(values["count"]),
                threshold=None if values.get("threshold") is None else float(values["threshold"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidInputError):
                raise
            raise InvalidInputError(f"observation_reference is malformed: {exc!r}") from exc


def _check_feature(j: int, edges: FloatArray, shares: FloatArray) -> None:
    """Edges 1-D, finite, strictly increasing; one share per bin, each >= 0, summing to 1."""
    if edges.ndim != 1 or edges.size < 1 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise InvalidInputError(f"reference edges[{j}] must be finite and strictly increasing, got {edges}")
    if edges.size > MAX_EDGES:
        raise InvalidInputError(f"reference edges[{j}] holds {edges.size} edges, at most {MAX_EDGES}")
    if shares.shape != (edges.size + 1,) or np.any(shares < 0) or not math.isclose(shares.sum(), 1.0):
        raise InvalidInputError(
            f"reference proportions[{j}] must be {edges.size + 1} shares >= 0 summing to 1, got {shares}"
        )


def reference_from_samples(
    samples: FloatArray, names: Sequence[str], bins: int = 10, threshold: float | None = None
) -> FeatureReference:
    """The :class:`FeatureReference` of training observations ``samples`` ``(n, d)``.

    Edges are the ``k / bins`` quantiles (``k = 1..bins-1``, numpy's linear interpolation) of each
    column with duplicates merged (a discrete feature gets fewer bins); the shares are the fraction
    of the column in each bin (``edge[k-1] <= x < edge[k]``).

    Raises
    ------
    InvalidInputError
        ``samples`` not 2-D, not finite, fewer than ``2 * bins`` rows, ``bins < 2`` or a name count
        other than ``d``.
    """
    x = np.asarray(samples, dtype=np.float64)
    if not isinstance(bins, int) or bins < 2:
        raise InvalidInputError(f"bins must be an integer >= 2, got {bins!r}")
    if x.ndim != 2 or x.shape[0] < 2 * bins:
        raise InvalidInputError(f"samples must be (n >= {2 * bins}, d), got shape {x.shape}")
    if len(names) != x.shape[1]:
        raise InvalidInputError(f"names must name the {x.shape[1]} features, got {len(names)}")
    if not np.all(np.isfinite(x)):
        raise InvalidInputError("samples must be finite (a reference is built from finite training data)")
    levels = np.arange(1, bins) / bins
    quantiles = np.quantile(x, levels, axis=0)  # (bins - 1, d)
    edges, shares = [], []
    for j in range(x.shape[1]):
        e = np.unique(quantiles[:, j])
        counts = np.bincount(np.searchsorted(e, x[:, j], side="right"), minlength=e.size + 1)
        edges.append(e)
        shares.append(counts / x.shape[0])
    return FeatureReference(
        tuple(str(n) for n in names), tuple(edges), tuple(shares), int(x.shape[0]), threshold
    )


def smoothing_weight(window: int, slots: int, pseudo_count: float = SMOOTHING) -> float:
    """``lam = s B / (W + s B)``: the uniform distribution's weight in both smoothed distributions."""
    return pseudo_count * slots / (window + pseudo_count * slots)


def psi(expected: FloatArray, actual: FloatArray) -> float:
    """Population stability index ``sum_k (a_k - e_k) ln(a_k / e_k)`` of two (smoothed) share vectors.

    Both must be > 0 (smooth them first); the result is >= 0 and 0 iff they are equal.

    Examples
    --------
    >>> import numpy as np
    >>> round(psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])), 4)
    0.2747
    """
    e, a = np.asarray(expected, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    return float(np.sum((a - e) * np.log(a / e)))


def _update_python(
    x: FloatArray, edges: FloatArray, ring: NDArray[np.int16], counts: IntArray, pos: int, full: bool
) -> None:
    """Bin ``x`` into the ring's row ``pos`` and the counts (dropping that row's old bins when full)."""
    missing = counts.shape[1] - 1
    width = edges.shape[1]
    for j in range(x.shape[0]):
        v = x[j]
        if v != v:
            b = missing
        else:  # binary search: the number of edges <= v (np.searchsorted side="right" on the row)
            lo, hi = 0, width
            while lo < hi:
                mid = (lo + hi) // 2
                if edges[j, mid] <= v:
                    lo = mid + 1
                else:
                    hi = mid
            b = lo
        if full:
            counts[j, ring[pos, j]] -= 1
        counts[j, b] += 1
        ring[pos, j] = b


def _psi_python(
    counts: IntArray, log_expected: FloatArray, expected: FloatArray, a_tab: FloatArray,
    log_a_tab: FloatArray, out: FloatArray,
) -> float:  # fmt: skip
    """Each feature's PSI into ``out`` (window share of count ``c``: ``a_tab[c]``); returns their mean."""
    d, slots = counts.shape
    total: float = 0.0
    for j in range(d):
        s: float = 0.0
        for k in range(slots):
            c = counts[j, k]
            s += (a_tab[c] - expected[j, k]) * (log_a_tab[c] - log_expected[j, k])
        out[j] = s
        total += s
    return float(total / d)


def _step_python(
    x: FloatArray, edges: FloatArray, ring: NDArray[np.int16], counts: IntArray, pos: int, full: bool,
    score: bool, log_expected: FloatArray, expected: FloatArray, a_tab: FloatArray,
    log_a_tab: FloatArray, out: FloatArray,
) -> float:  # fmt: skip
    """One bar: :func:`_update_python`, then (when ``score``) :func:`_psi_python` (NaN otherwise)."""
    _update_kernel(x, edges, ring, counts, pos, full)
    if not score:
        return np.nan
    return _psi_kernel(counts, log_expected, expected, a_tab, log_a_tab, out)


_update_kernel = jit(_update_python)
_psi_kernel = jit(_psi_python)
_step_kernel = jit(_step_python)


class DriftMonitor:
    """Rolling PSI drift score of one model's observations (see the module docstring).

    Parameters
    ----------
    reference : the model's training reference.
    window : bars in the rolling window, >= 2.
    threshold : mean PSI above which the model is drifted, > 0.
    min_bars : bars the window must hold before a score is given, in ``1..window``.

    Notes
    -----
    Memory is fixed at construction: a ``(window, d)`` int16 ring of bin indices, ``(d, B)`` counts and
    the smoothed training shares. :meth:`update` bins ``d`` values (a binary search each), moves two
    counts per feature and sums ``d * B`` products with no per-call allocation beyond the status
    (docs/drift.md: the measured cost).
    """

    def __init__(self, reference: FeatureReference, window: int, threshold: float, min_bars: int) -> None:
        _check_settings(window, threshold, min_bars)
        self.reference = reference
        self.window, self.threshold, self.min_bars = int(window), float(threshold), int(min_bars)
        d = reference.dim
        width = max(e.size for e in reference.edges)
        self._slots = width + 2  # width + 1 regular bins, then the missing bin
        self._edges = np.full((d, width), np.inf)
        shares = np.zeros((d, self._slots))
        for j, (e, p) in enumerate(zip(reference.edges, reference.proportions, strict=True)):
            self._edges[j, : e.size] = e
            shares[j, : p.size] = p
        self._lam = smoothing_weight(self.window, self._slots)
        self._expected = (1.0 - self._lam) * shares + self._lam / self._slots
        self._log_expected = np.log(self._expected)
        self._ring = np.zeros((self.window, d), dtype=np.int16)
        self._counts = np.zeros((d, self._slots), dtype=np.int64)
        self._a_tab = np.empty(self.window + 1)
        self._log_a_tab = np.empty(self.window + 1)
        self._psi = np.zeros(d)
        self._pos = 0
        self._n = 0
        self._table_n = -1
        self._not_ready = DriftStatus(math.nan, self.threshold, False)

    @property
    def count(self) -> int:
        """Bars in the window (at most ``window``)."""
        return self._n

    @property
    def nbytes(self) -> int:
        """Bytes of the monitor's arrays (constant after construction)."""
        arrays = (self._edges, self._expected, self._log_expected, self._ring, self._counts,
                  self._a_tab, self._log_a_tab, self._psi)  # fmt: skip
        return sum(a.nbytes for a in arrays)

    def feature_scores(self) -> FloatArray:
        """A copy of each feature's PSI at the last scored bar (zeros before)."""
        return self._psi.copy()

    def reset(self) -> None:
        """Empty the window (e.g. after a model change)."""
        self._counts.fill(0)
        self._pos = self._n = 0

    def state(self) -> dict[str, Any]:
        """The window as JSON data (its bin indices and counts base64-encoded): what :meth:`restore`
        takes back, so a graceful restart scores the next bar as a run that never stopped."""
        return {
            "ring": base64.b64encode(self._ring.tobytes()).decode("ascii"),
            "counts": base64.b64encode(self._counts.tobytes()).decode("ascii"),
            "psi": self._psi.tolist(),
            "pos": self._pos,
            "n": self._n,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back :meth:`state` of a monitor of the same reference and window (``ValueError``,
        nothing changed, for another one's)."""
        ring = np.frombuffer(base64.b64decode(state["ring"]), dtype=np.int16)
        counts = np.frombuffer(base64.b64decode(state["counts"]), dtype=np.int64)
        psi = np.asarray(state["psi"], dtype=np.float64)
        pos, n = int(state["pos"]), int(state["n"])
        if ring.size != self._ring.size or counts.size != self._counts.size or psi.shape != self._psi.shape:
            raise ValueError("drift monitor state of another reference or window")
        if not (0 <= pos < self.window and 0 <= n <= self.window):
            raise ValueError(f"drift monitor position {pos} or count {n} outside its window {self.window}")
        self._ring[:] = ring.reshape(self._ring.shape)
        self._counts[:] = counts.reshape(self._counts.shape)
        self._psi[:] = psi
        self._pos, self._n, self._table_n = pos, n, -1

    def update(self, x: FloatArray) -> DriftStatus:
        """Add one observation's features ``x`` ``(d,)`` (float64) and return the status after it.

        The caller guarantees the length (the component builds ``x``); NaN entries follow the
        module docstring's policy.
        """
        full = self._n == self.window
        n = self._n if full else self._n + 1
        ready = n >= self.min_bars
        if ready and self._table_n != n:
            self._fill_tables(n)
        score = _step_kernel(
            x, self._edges, self._ring, self._counts, self._pos, full, ready,
            self._log_expected, self._expected, self._a_tab, self._log_a_tab, self._psi,
        )  # fmt: skip
        self._pos = (self._pos + 1) % self.window
        self._n = n
        if not ready:
            return self._not_ready
        if not score > self.threshold:
            return DriftStatus(score, self.threshold, False)
        return DriftStatus(score, self.threshold, True, self._top_features())

    def _fill_tables(self, n: int) -> None:
        """Smoothed window share (and its log) of a bin holding ``c = 0..window`` of ``n`` bars."""
        c = np.arange(self.window + 1, dtype=np.float64)
        self._a_tab[:] = (1.0 - self._lam) * c / n + self._lam / self._slots
        self._log_a_tab[:] = np.log(self._a_tab)
        self._table_n = n

    def _top_features(self) -> tuple[str, ...]:
        k = min(TOP_FEATURES, self._psi.size)
        top = np.argpartition(-self._psi, k - 1)[:k]
        top = top[np.argsort(-self._psi[top], kind="stable")]
        return tuple(self.reference.names[int(j)] for j in top)

    def check(self, x: FloatArray) -> FloatArray:
        """``x`` as a float64 vector of the reference's length (``InvalidInputError`` otherwise): for
        callers outside the hot path."""
        arr = np.asarray(x, dtype=np.float64).reshape(-1)
        if arr.size != self.reference.dim:
            raise InvalidInputError(
                f"observation has {arr.size} features, the reference {self.reference.dim}"
            )
        return arr


def _check_settings(window: object, threshold: object, min_bars: object) -> None:
    if not isinstance(window, int | np.integer) or not 2 <= window <= MAX_DRIFT_WINDOW:
        raise InvalidInputError(f"drift_window must be an integer in 2..{MAX_DRIFT_WINDOW}, got {window!r}")
    if not isinstance(threshold, int | float) or not math.isfinite(threshold) or threshold <= 0:
        raise InvalidInputError(f"drift_threshold must be a finite number > 0, got {threshold!r}")
    if not isinstance(min_bars, int | np.integer) or not 1 <= min_bars <= window:
        raise InvalidInputError(
            f"drift_min_bars must be an integer in 1..drift_window ({window}), got {min_bars!r}"
        )


def in_sample_threshold(
    reference: FeatureReference,
    streams: Sequence[FloatArray],
    floor: float,
    window: int = DEFAULT_WINDOW,
    min_bars: int = DEFAULT_MIN_BARS,
) -> float:
    """A model's threshold: the larger of ``floor`` and the :data:`IN_SAMPLE_QUANTILE` of the scores
    its own training data get.

    Each stream (the feature rows of one training path, in bar order) is run through a fresh
    :class:`DriftMonitor` of ``reference`` (built from those same rows); the scores of every full
    window (``min_bars`` on) are pooled. ``floor`` is the feature set's threshold calibrated on
    synthetic paths (docs/drift.md); real markets' regimes persist longer than the generator's, so
    a real model's own training windows may score above it, and the threshold is raised to keep the
    false alarms on the training data itself at 1 %. Streams shorter than ``min_bars`` add nothing;
    with no full window at all the threshold is ``floor``.
    """
    pooled = [
        _stream_scores(reference, np.ascontiguousarray(s, dtype=np.float64), window, min_bars)
        for s in streams
        if len(s) >= min_bars
    ]
    scores = np.concatenate(pooled) if pooled else np.empty(0)
    scores = scores[np.isfinite(scores)]
    if scores.size == 0:
        return float(floor)
    return max(float(floor), float(np.quantile(scores, IN_SAMPLE_QUANTILE)))


def calibrated_reference(
    streams: Sequence[FloatArray], names: Sequence[str], floor: float
) -> FeatureReference:
    """A model's reference from its training feature rows (one ``(T, d)`` stream per training path,
    pooled), with its threshold from :func:`in_sample_threshold` (at least ``floor``)."""
    reference = reference_from_samples(np.vstack(streams), names)
    return replace(reference, threshold=in_sample_threshold(reference, streams, floor))


def _stream_scores(reference: FeatureReference, rows: FloatArray, window: int, min_bars: int) -> FloatArray:
    monitor = DriftMonitor(reference, window, _NEVER, min_bars)  # scores only
    return np.array([monitor.update(row).score for row in rows], dtype=np.float64)


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftSettings:
    """A component's drift settings (``RiskConfig.drift_window``, ``drift_threshold``, ``drift_min_bars``).

    ``threshold`` None (the default): each model's own threshold, stored with its reference
    (calibrated for the default window and min_bars), else :data:`DEFAULT_THRESHOLD`.

    Raises
    ------
    InvalidInputError
        ``window`` outside ``2..MAX_DRIFT_WINDOW``, ``threshold`` not finite and > 0, or ``min_bars``
        outside ``1..window``.
    """

    window: int = DEFAULT_WINDOW
    threshold: float | None = None
    min_bars: int = DEFAULT_MIN_BARS

    def __post_init__(self) -> None:
        _check_settings(
            self.window, DEFAULT_THRESHOLD if self.threshold is None else self.threshold, self.min_bars
        )

    def monitor(self, reference: FeatureReference | None) -> DriftMonitor | None:
        """A fresh monitor of ``reference`` with these settings (None without a reference)."""
        if reference is None:
            return None
        threshold = self.threshold if self.threshold is not None else reference.threshold
        return DriftMonitor(reference, self.window, threshold or DEFAULT_THRESHOLD, self.min_bars)
