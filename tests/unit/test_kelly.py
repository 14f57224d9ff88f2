from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures import (
    fractional_kelly,
    kelly_continuous,
    kelly_discrete,
    kelly_multi_asset,
)


def test_discrete_kelly_equals_p_minus_q_over_b() -> None:
    assert kelly_discrete(0.55, 2.0) == pytest.approx(0.55 - 0.45 / 2.0, abs=1e-15)


def test_discrete_kelly_is_negative_for_negative_edge() -> None:
    assert kelly_discrete(0.4, 1.0) == pytest.approx(-0.2, abs=1e-15)


def test_continuous_kelly_equals_mu_over_sigma_squared() -> None:
    assert kelly_continuous(0.08, 0.2) == pytest.approx(2.0, rel=1e-14)


def test_multi_asset_kelly_solves_sigma_inverse_mu() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    cov = a @ a.T + 5 * np.eye(5)
    mu = rng.normal(size=5)
    np.testing.assert_allclose(kelly_multi_asset(mu, cov), np.linalg.inv(cov) @ mu, rtol=1e-10)


def test_multi_asset_kelly_rejects_singular_covariance() -> None:
    with pytest.raises(InvalidInputError, match="positive definite"):
        kelly_multi_asset([0.1, 0.1], [[1.0, 1.0], [1.0, 1.0]])


def test_multi_asset_kelly_rejects_shape_mismatch() -> None:
    with pytest.raises(InvalidInputError, match="shape"):
        kelly_multi_asset([0.1, 0.1, 0.1], np.eye(2))


@pytest.mark.parametrize(
    ("full", "fraction", "cap", "expected"),
    [
        pytest.param(0.4, 0.5, 1.0, 0.2, id="half-kelly"),
        pytest.param(-0.3, 0.5, 1.0, 0.0, id="negative-edge-is-zero"),
        pytest.param(5.0, 0.5, 1.0, 1.0, id="capped"),
        pytest.param(0.4, 1.0, 1.0, 0.4, id="full-kelly"),
    ],
)
def test_fractional_kelly_scales_clips_and_caps(
    full: float, fraction: float, cap: float, expected: float
) -> None:
    assert fractional_kelly(full, fraction, cap) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        pytest.param(lambda: kelly_discrete(1.2, 1.0), "win_prob", id="p>1"),
        pytest.param(lambda: kelly_discrete(0.5, 0.0), "win_loss_ratio", id="b=0"),
        pytest.param(lambda: kelly_continuous(0.1, 0.0), "sigma", id="sigma=0"),
        pytest.param(lambda: kelly_continuous(float("nan"), 0.2), "mu", id="mu-nan"),
        pytest.param(lambda: fractional_kelly(0.5, 0.0), "fraction", id="fraction=0"),
    ],
)
def test_kelly_rejects_bad_scalars_naming_field(call: object, field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        call()  # type: ignore[operator]


def _exact_kelly(mu: float, sigma: float) -> float:
    """mu / sigma**2 in exact rational arithmetic, rounded once: the independent reference."""
    return float(Fraction(mu) / Fraction(sigma) ** 2)


@pytest.mark.parametrize(
    ("mu", "sigma"),
    [(2e-10, 1e-155), (1e-300, 1e-150), (-3e-12, 1e-156), (1e-5, 3e-154), (0.05, 0.2)],
)
def test_continuous_kelly_is_exact_where_sigma_squared_underflows(mu: float, sigma: float) -> None:
    # sigma**2 is subnormal or 0 in all but the last case (the ordinary one, through the same path)
    assert kelly_continuous(mu, sigma) == pytest.approx(_exact_kelly(mu, sigma), rel=4e-16)


def test_continuous_kelly_of_a_tiny_sigma_matches_the_hand_value() -> None:
    assert kelly_continuous(2e-10, 1e-155) == pytest.approx(2e300, rel=4e-16)  # 2e-10 / 1e-310


def test_continuous_kelly_refuses_a_leverage_beyond_the_float_range() -> None:
    # sigma**2 = 1e-400 underflows to 0 (the reported ZeroDivisionError); mu / sigma**2 = 5e398
    with pytest.raises(InvalidInputError, match=r"sigma=1e-200 is too small for mu=0\.05"):
        kelly_continuous(0.05, 1e-200)
    with pytest.raises(InvalidInputError, match="sigma"):
        kelly_continuous(-1.0, 1e-160)  # -1e320: also beyond the range, on the other side


def test_continuous_kelly_of_zero_edge_is_zero_for_any_sigma() -> None:
    assert kelly_continuous(0.0, 1e-200) == 0.0
    assert kelly_continuous(0.0, 1e300) == 0.0
