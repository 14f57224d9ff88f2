"""Long-only minimum variance by the active-set solver: exact, warm-startable, same as the old path.

References: the KKT conditions checked directly (``w >= 0``, ``sum w = 1``, gradient ``2 C w``
constant on the support and no smaller outside it), SciPy's SLSQP on small problems, and the
first-order path (FISTA from equal weights plus the exact polish) that decided alone before.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from advanced_risk.errors import InvalidInputError
from advanced_risk.evaluation.policy import MinimumVariance
from advanced_risk.measures.allocation import (
    _active_set_long_only_python,
    _is_psd,
    _min_variance_long_only,
    _polish_long_only,
    min_variance_weights,
)

from .conftest import slsqp_long_only_min_variance


def _kkt_violation(cov: np.ndarray, w: np.ndarray) -> float:
    """Largest violation of the long-only KKT conditions, relative to ``max|C|``."""
    c = cov / max(float(np.abs(cov).max()), 1e-300)
    grad = 2.0 * c @ w
    support = w > 1e-12
    mu = float(grad[support].mean())
    violations = [
        max(-float(w.min()), 0.0),
        abs(float(w.sum()) - 1.0),
        float(np.abs(grad[support] - mu).max()) / max(abs(mu), 1e-12),
        max(float(mu - grad[~support].min(initial=np.inf)), 0.0),
    ]
    return max(violations)


def _first_order(cov: np.ndarray) -> np.ndarray:
    """The pre-active-set long-only path: FISTA from equal weights, then the exact polish."""
    c = cov / np.abs(cov).max()
    out: np.ndarray = _polish_long_only(c, _min_variance_long_only(c, 20_000, 1e-13))
    return out


def _slsqp(cov: np.ndarray) -> np.ndarray:
    return slsqp_long_only_min_variance(cov / np.abs(cov).max())


def _sample_cov(n: int, rows: int, seed: int, ridge: float = 1e-12) -> np.ndarray:
    """A factor-model sample covariance, built as the minimum-variance baseline builds it."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(0.0, 0.01, (rows, 3))
    loadings = rng.normal(1.0, 0.3, (3, n))
    r = factors @ loadings / 3 + rng.normal(0.0, 0.015, (rows, n)) * rng.uniform(0.5, 2.0, n)
    cov = np.cov(r, rowvar=False).reshape(n, n)
    out: np.ndarray = 0.5 * (cov + cov.T) + ridge * np.eye(n)
    return out


def _ill_conditioned(n: int, seed: int, condition: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    eig = np.geomspace(1.0, 1.0 / condition, n)
    cov = (q * eig) @ q.T
    out: np.ndarray = 0.5 * (cov + cov.T)
    return out


CASES: dict[str, np.ndarray] = {
    "1": np.array([[0.04]]),
    "2": np.array([[0.04, 0.006], [0.006, 0.01]]),
    "5": _sample_cov(5, 250, 0),
    "50": _sample_cov(50, 250, 1),
    "50-rank-deficient": _sample_cov(50, 20, 2),
    "50-rank-deficient-no-ridge": _sample_cov(50, 20, 3, ridge=0.0),
    "50-ill-1e8": _ill_conditioned(50, 4, 1e8),
    "300-rank-deficient": _sample_cov(300, 120, 5),
    "300-ill-1e6": _ill_conditioned(300, 6, 1e6),
}


@pytest.mark.parametrize("name", list(CASES))
def test_long_only_satisfies_kkt_and_is_no_worse_than_the_references(name: str) -> None:
    cov = CASES[name]
    w = min_variance_weights(cov)
    assert w.min() >= 0.0
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    var = float(w @ cov @ w)
    scale = float(np.abs(cov).max())
    refs = [_first_order(cov)]
    if cov.shape[0] <= 50:
        refs.append(_slsqp(cov))
    for ref in refs:
        assert var <= float(ref @ cov @ ref) * (1 + 1e-10) + 1e-16 * scale
    if not name.endswith("no-ridge"):  # singular: the minimiser need not be unique
        assert _kkt_violation(cov, w) < 1e-8
        np.testing.assert_allclose(w, refs[0], atol=1e-7)


@pytest.mark.parametrize("name", [k for k in CASES if not k.endswith("no-ridge")])
def test_the_active_set_certifies_the_positive_definite_cases(name: str) -> None:
    """No fallback needed: the plain-Python kernel (what numba compiles) returns a KKT point."""
    cov = CASES[name]
    c = cov / np.abs(cov).max()
    start = np.zeros(c.shape[0])
    start[int(np.argmin(np.diag(c)))] = 1.0
    w, ok = _active_set_long_only_python(c, start, 4 * c.shape[0] + 50, 1e-12 * np.diag(c).max())
    assert ok
    np.testing.assert_allclose(w, min_variance_weights(cov), atol=1e-12)


def test_warm_and_cold_starts_agree_on_a_rolling_window() -> None:
    rng = np.random.default_rng(7)
    n, lookback = 60, 120
    r = rng.normal(0.0, 0.01, (lookback + 40, n)) + rng.normal(0.0, 0.01, (lookback + 40, 1))
    prev = None
    for t in range(40):
        cov = np.cov(r[t : t + lookback], rowvar=False) + 1e-12 * np.eye(n)
        cold = min_variance_weights(cov)
        warm = min_variance_weights(cov, init=prev)
        np.testing.assert_allclose(warm, cold, rtol=0.0, atol=1e-9)
        prev = warm


@pytest.mark.parametrize(
    "init",
    [
        np.full(50, 1.0 / 50),  # full support: a singular block on the way
        np.zeros(50),  # nothing positive: the cold start
        -np.ones(50),
        np.arange(50.0) - 25.0,  # negative entries dropped
        np.eye(50)[0] * 1e300,
        np.eye(50)[3],
    ],
)
@pytest.mark.parametrize("name", ["50", "50-rank-deficient", "50-ill-1e8"])
def test_any_init_gives_the_cold_result(name: str, init: np.ndarray) -> None:
    cov = CASES[name]
    np.testing.assert_allclose(min_variance_weights(cov, init=init), min_variance_weights(cov), atol=1e-9)


@pytest.mark.parametrize(
    ("init", "message"),
    [
        (np.ones(3), "init must have shape"),
        (np.ones((2, 1)), "init must be 1-D"),
        (np.array([np.nan, 1.0]), "init"),
    ],
)
def test_a_bad_init_is_refused(init: np.ndarray, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        min_variance_weights(CASES["2"], init=init)


def test_init_is_ignored_when_shorts_are_allowed() -> None:
    cov = CASES["5"]
    np.testing.assert_array_equal(
        min_variance_weights(cov, long_only=False, init=np.ones(5)),
        min_variance_weights(cov, long_only=False),
    )


@pytest.mark.parametrize("lam_min", [-1e-9, -2e-10, -1.01e-10, -0.99e-10, -5e-11, 0.0, 1e-6])
@pytest.mark.parametrize("n", [2, 30, 300])
def test_the_psd_check_agrees_with_the_smallest_eigenvalue(n: int, lam_min: float) -> None:
    rng = np.random.default_rng(n)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    eig = np.linspace(1.0, 0.1, n)
    eig[-1] = lam_min
    c = (q * eig) @ q.T
    c = 0.5 * (c + c.T)
    c = c / np.abs(c).max()
    assert _is_psd(c) == (np.linalg.eigvalsh(c)[0] >= -1e-10)


@settings(deadline=None, max_examples=80)
@given(
    factors=arrays(
        np.float64,
        st.tuples(st.integers(1, 8), st.integers(1, 6)),
        elements=st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=False),
    ),
    ridge=st.sampled_from([1e-8, 1e-4, 1e-1]),
    warm=st.booleans(),
)
@example(factors=np.array([[0.0, -1.0, 1.0, 1.0]]), ridge=1e-8, warm=False)  # mu << max|C|: hedged
def test_kkt_conditions_hold_on_small_matrices(factors: np.ndarray, ridge: float, warm: bool) -> None:
    n = factors.shape[1]
    cov = factors.T @ factors / factors.shape[0] + ridge * np.eye(n)
    init = np.linspace(1.0, 2.0, n) if warm else None
    w = min_variance_weights(cov, init=init)
    assert w.min() >= 0.0
    assert _kkt_violation(cov, w) < 1e-7


class _RecordingEnv:
    """Just enough of ``TradingEnvironment`` for ``MinimumVariance.step``: records the targets."""

    def __init__(self) -> None:
        self.targets: list[np.ndarray] = []

    def step_weights(self, target: np.ndarray) -> Any:
        self.targets.append(target.copy())
        return None, 0.0, False, False, {}


def test_the_baseline_warm_starts_to_the_cold_fit() -> None:
    rng = np.random.default_rng(11)
    n, lookback = 40, 60
    past = rng.normal(0.0, 0.01, (lookback + 30, n)) + rng.normal(0.0, 0.01, (lookback + 30, 1))
    strategy, env = MinimumVariance(lookback=lookback), _RecordingEnv()
    obs = np.zeros(1, dtype=np.float32)
    for step in range(30):
        strategy.step(env, obs, {"step": step}, past[: lookback + step])  # type: ignore[arg-type]
    for step, target in enumerate(env.targets):
        window = past[: lookback + step][-lookback:]
        cov = np.cov(window, rowvar=False)
        cov = 0.5 * (cov + cov.T) + 1e-12 * np.eye(n)
        assert target[-1] == 0.0
        np.testing.assert_allclose(target[:-1], min_variance_weights(cov), atol=1e-9)
