"""One table: every public measure refuses NaN, inf, empty and wrong-rank input, and bad alpha.

Each entry names a measure and how to call it with a replacement for its main array input; the
bad inputs are derived from a valid example of the right rank. A coverage test makes sure every
public function of ``advanced_risk.measures`` has an entry, so a new measure cannot skip the table.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from advanced_risk import measures as m
from advanced_risk.errors import InvalidInputError
from advanced_risk.types import Portfolio

rng = np.random.default_rng(0)
R1 = rng.normal(0.0, 0.01, 300)  # one return series
R2 = rng.normal(0.0, 0.01, (300, 3))  # (T, n) returns
PRICES = 100.0 * np.cumprod(1.0 + R1)
HIGH, LOW = PRICES * 1.01, PRICES * 0.99
VAR_1 = np.full(301, 1e-4)  # variance forecasts, len(returns) + 1
HITS = (rng.random(300) < 0.05).astype(float)
COV = np.cov(R2.T)

Call = Callable[[Any], object]

# name -> (call with the main input replaced, a valid main input)
ARRAY_CASES: dict[str, tuple[Call, np.ndarray]] = {
    "historical_var": (lambda x: m.historical_var(x, 0.99), R1),
    "historical_cvar": (lambda x: m.historical_cvar(x, 0.99), R1),
    "gaussian_var": (lambda x: m.gaussian_var(x, 0.99), R1),
    "gaussian_cvar": (lambda x: m.gaussian_cvar(x, 0.99), R1),
    "cornish_fisher_var": (lambda x: m.cornish_fisher_var(x, 0.99), R1),
    "cornish_fisher_cvar": (lambda x: m.cornish_fisher_cvar(x, 0.99), R1),
    "portfolio_var": (lambda x: m.portfolio_var(np.full(3, 1 / 3), x, 0.99), R2),
    "portfolio_cvar": (lambda x: m.portfolio_cvar(np.full(3, 1 / 3), x, 0.99), R2),
    "filtered_historical_var": (lambda x: m.filtered_historical_var(x, VAR_1, 0.99), R1),
    "filtered_historical_cvar": (lambda x: m.filtered_historical_cvar(x, VAR_1, 0.99), R1),
    "rolling_historical_var": (lambda x: m.rolling_historical_var(x, 50, 0.99), R1),
    "rolling_historical_cvar": (lambda x: m.rolling_historical_cvar(x, 50, 0.99), R1),
    "rolling_fhs_var": (lambda x: m.rolling_fhs_var(x, VAR_1, 100, 0.99), R1),
    "rolling_fhs_cvar": (lambda x: m.rolling_fhs_cvar(x, VAR_1, 100, 0.99), R1),
    "rolling_historical_var_cvar": (lambda x: m.rolling_historical_var_cvar(x, 50, 0.99), R1),
    "rolling_fhs_var_cvar": (lambda x: m.rolling_fhs_var_cvar(x, VAR_1, 100, 0.99), R1),
    "kupiec_pof": (lambda x: m.kupiec_pof(x, 0.95), HITS),
    "christoffersen_independence": (lambda x: m.christoffersen_independence(x), HITS),
    "conditional_coverage": (lambda x: m.conditional_coverage(x, 0.95), HITS),
    "acerbi_szekely_z2": (lambda x: m.acerbi_szekely_z2(x, np.full(300, 0.02), np.full(300, 0.025)), R1),
    "z2_test": (lambda x: m.z2_test(x, np.full(300, 0.02), np.full(300, 0.025), n_sims=50), R1),
    "ewma_covariance": (lambda x: m.ewma_covariance(x), R2),
    "ewma_correlation": (lambda x: m.ewma_correlation(x), R2),
    "ewma_covariance_update": (lambda x: m.ewma_covariance_update(COV, 0.5, x), R2[0]),
    "rolling_correlation": (lambda x: m.rolling_correlation(x, 20), R2),
    "covariance_to_correlation": (lambda x: m.covariance_to_correlation(x), COV),
    "average_pairwise_correlation": (lambda x: m.average_pairwise_correlation(x), np.corrcoef(R2.T)),
    "ewma_variance": (lambda x: m.ewma_variance(x), R1),
    "ewma_volatility": (lambda x: m.ewma_volatility(x), R1),
    "gjr_garch_variance": (
        lambda x: m.gjr_garch_variance(x, mu=0.0, omega=1e-6, alpha=0.05, gamma=0.1, beta=0.85),
        R1,
    ),
    "realised_volatility": (lambda x: m.realised_volatility(x, 20), R1),
    "true_range": (lambda x: m.true_range(HIGH, LOW, x), PRICES),
    "wilder_atr": (lambda x: m.wilder_atr(HIGH, LOW, x, 14), PRICES),
    "rsi": (lambda x: m.rsi(x), PRICES),
    "macd": (lambda x: m.macd(x), PRICES),
    "bollinger_bands": (lambda x: m.bollinger_bands(x), PRICES),
    "momentum": (lambda x: m.momentum(x), PRICES),
    "stochastic": (lambda x: m.stochastic(HIGH, LOW, x), PRICES),
    "kelly_multi_asset": (lambda x: m.kelly_multi_asset(x, COV), np.array([0.01, 0.02, 0.0])),
    "min_variance_weights": (lambda x: m.min_variance_weights(x), COV),
    "simple_returns": (lambda x: m.simple_returns(x), PRICES),
    "log_returns": (lambda x: m.log_returns(x), PRICES),
    "drawdown_series": (lambda x: m.drawdown_series(x), R1),
    "max_drawdown": (lambda x: m.max_drawdown(x), R1),
    "annualised_return": (lambda x: m.annualised_return(x), R1),
    "sharpe_ratio": (lambda x: m.sharpe_ratio(x), R1),
    "sortino_ratio": (lambda x: m.sortino_ratio(x), R1),
    "calmar_ratio": (lambda x: m.calmar_ratio(x), R1),
    "turnover": (lambda x: m.turnover(x), np.abs(R2) / np.abs(R2).sum(axis=1, keepdims=True)),
}

# NaN in a correlation matrix is this measure's documented input: an undefined pair (a flat asset,
# as covariance_to_correlation returns it) is skipped, not an error. inf is still refused.
NAN_IS_UNDEFINED_PAIR = {"average_pairwise_correlation"}

# measures whose inputs are scalars only; their bad values are tested in their own unit tests
SCALAR_ONLY = {"kelly_discrete", "kelly_continuous", "fractional_kelly", "equal_weights", "z2_traffic_light"}

ALPHA_CASES: dict[str, Callable[[float], object]] = {
    "historical_var": lambda a: m.historical_var(R1, a),
    "historical_cvar": lambda a: m.historical_cvar(R1, a),
    "gaussian_var": lambda a: m.gaussian_var(R1, a),
    "gaussian_cvar": lambda a: m.gaussian_cvar(R1, a),
    "cornish_fisher_var": lambda a: m.cornish_fisher_var(R1, a),
    "cornish_fisher_cvar": lambda a: m.cornish_fisher_cvar(R1, a),
    "portfolio_var": lambda a: m.portfolio_var(np.full(3, 1 / 3), R2, a),
    "portfolio_cvar": lambda a: m.portfolio_cvar(np.full(3, 1 / 3), R2, a),
    "filtered_historical_var": lambda a: m.filtered_historical_var(R1, VAR_1, a),
    "filtered_historical_cvar": lambda a: m.filtered_historical_cvar(R1, VAR_1, a),
    "rolling_historical_var": lambda a: m.rolling_historical_var(R1, 50, a),
    "rolling_historical_cvar": lambda a: m.rolling_historical_cvar(R1, 50, a),
    "rolling_fhs_var": lambda a: m.rolling_fhs_var(R1, VAR_1, 100, a),
    "rolling_historical_var_cvar": lambda a: m.rolling_historical_var_cvar(R1, 50, a),
    "rolling_fhs_var_cvar": lambda a: m.rolling_fhs_var_cvar(R1, VAR_1, 100, a),
    "rolling_fhs_cvar": lambda a: m.rolling_fhs_cvar(R1, VAR_1, 100, a),
    "kupiec_pof": lambda a: m.kupiec_pof(HITS, a),
    "conditional_coverage": lambda a: m.conditional_coverage(HITS, a),
    "acerbi_szekely_z2": lambda a: m.acerbi_szekely_z2(R1, np.full(300, 0.02), np.full(300, 0.025), a),
    "z2_test": lambda a: m.z2_test(R1, np.full(300, 0.02), np.full(300, 0.025), a, n_sims=50),
}


def _with(valid: np.ndarray, value: float) -> np.ndarray:
    bad = valid.copy()
    bad.flat[min(5, bad.size - 1)] = value
    return bad


def _wrong_rank(valid: np.ndarray) -> np.ndarray:
    return valid[..., np.newaxis, np.newaxis] if valid.ndim == 2 else valid.reshape(1, 1, -1)


BAD_INPUTS: dict[str, Callable[[np.ndarray], object]] = {
    "nan": lambda v: _with(v, np.nan),
    "inf": lambda v: _with(v, np.inf),
    "-inf": lambda v: _with(v, -np.inf),
    "empty": lambda v: np.empty((0, *v.shape[1:])),
    "wrong-rank": _wrong_rank,
    "text": lambda v: "not numbers",
}


@pytest.mark.parametrize("name", sorted(ARRAY_CASES))
def test_valid_example_is_accepted(name: str) -> None:
    call, valid = ARRAY_CASES[name]
    call(valid)


BAD_CASES = [
    pytest.param(name, kind, id=f"{name}-{kind}")
    for name in sorted(ARRAY_CASES)
    for kind in sorted(BAD_INPUTS)
    if not (kind == "nan" and name in NAN_IS_UNDEFINED_PAIR)
]


@pytest.mark.parametrize(("name", "kind"), BAD_CASES)
def test_measure_rejects_bad_array_with_invalid_input_error(name: str, kind: str) -> None:
    call, valid = ARRAY_CASES[name]
    with pytest.raises(InvalidInputError):
        call(BAD_INPUTS[kind](valid))


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5, float("nan"), float("inf")], ids=str)
@pytest.mark.parametrize("name", sorted(ALPHA_CASES))
def test_measure_rejects_alpha_outside_open_unit_interval(name: str, alpha: float) -> None:
    with pytest.raises(InvalidInputError, match="alpha"):
        ALPHA_CASES[name](alpha)


def test_every_public_measure_is_in_the_table() -> None:
    public = {n for n in m.__all__ if inspect.isfunction(getattr(m, n)) or hasattr(getattr(m, n), "py_func")}
    assert public - SCALAR_ONLY == set(ARRAY_CASES)


def test_every_measure_with_alpha_is_in_the_alpha_table() -> None:
    with_alpha = {
        n
        for n in ARRAY_CASES
        if "alpha" in inspect.signature(getattr(m, n)).parameters and n != "gjr_garch_variance"
    }
    assert with_alpha == set(ALPHA_CASES)


# ------------------------------------------------------------------ edge types: seed-dict typos, prices
@pytest.mark.parametrize(
    ("key", "reserved"),
    [
        ("current_drawdwn", "current_drawdown"),
        ("current_drawdonw", "current_drawdown"),
        ("currentDrawdown", "current_drawdown"),
        ("Current-Drawdown", "current_drawdown"),
        ("equty", "equity"),
        ("Equity", "equity"),
        ("EQUITY", "equity"),
        ("peak_equty", "peak_equity"),
        ("peakequity", "peak_equity"),
        ("weigths", "weights"),
        ("weight", "weights"),
    ],
)
def test_flat_portfolio_rejects_a_misspelled_reserved_key(key: str, reserved: str) -> None:
    from advanced_risk.types import Portfolio

    with pytest.raises(InvalidInputError, match=rf"'{key}'.*did you mean '{reserved}'\?"):
        Portfolio.from_mapping({"btc": 0.5, key: 0.02})


@pytest.mark.parametrize(
    "ticker", ["ETH", "EQT", "EQIX", "EQR", "EQH", "EQTY", "PEAK", "SPY", "BRK.B", "WGHT", "DRAW", "QQQ"]
)
def test_flat_portfolio_keeps_real_tickers_as_assets(ticker: str) -> None:
    from advanced_risk.types import Portfolio

    book = Portfolio.from_mapping({ticker: 0.4, "current_drawdown": 0.02, "equity": 1e5})
    assert dict(book.weights) == {ticker: 0.4}
    assert (book.current_drawdown, book.equity) == (0.02, 1e5)


def test_nested_weights_may_hold_an_asset_named_like_a_reserved_key() -> None:
    from advanced_risk.types import Portfolio

    book = Portfolio.from_mapping({"weights": {"EQUITY": 0.3}, "current_drawdown": 0.01})
    assert dict(book.weights) == {"EQUITY": 0.3}
    with pytest.raises(InvalidInputError, match="did you mean 'current_drawdown'"):
        Portfolio.from_mapping({"weights": {"A": 0.3}, "current_drawdwn": 0.01})


@pytest.mark.parametrize("field", ["prices", "high", "low"])
@pytest.mark.parametrize("value", [1e308, 1e13, 1e12])
def test_market_state_rejects_prices_at_or_above_max_price(field: str, value: float) -> None:
    from advanced_risk.types import MAX_PRICE, MarketState

    assert value >= MAX_PRICE == 1e12
    with pytest.raises(InvalidInputError, match=rf"market_state\.{field}\['BTC'\] must be < 1e\+12"):
        MarketState(**{field: {"BTC": value}})


def test_market_state_accepts_large_but_plausible_prices() -> None:
    from advanced_risk.types import MAX_PRICE, MarketState

    below = float(np.nextafter(MAX_PRICE, 0.0))
    market = MarketState(prices={"A": 9.9e11, "B": below}, high={"A": 9.95e11}, low={"A": 9.8e11})
    assert market.prices["B"] == below


# --------------------------------------------------------------- numbers beyond the float range
HUGE_INTS = [10**400, -(10**400), 10**5000]  # 10**5000: repr alone raises above 4300 digits


def _market(field: str, value: object) -> object:
    from advanced_risk.types import MarketState

    if field in ("volatility", "trend"):
        return MarketState(**{field: value})  # type: ignore[arg-type]
    return MarketState(**{field: {"A": value}})  # type: ignore[arg-type]


def _portfolio(field: str, value: object) -> object:
    from advanced_risk.types import Portfolio

    if field == "weights":
        return Portfolio(weights={"A": value})  # type: ignore[dict-item]
    if field == "peak_equity":
        return Portfolio(equity=1.0, peak_equity=value)  # type: ignore[arg-type]
    return Portfolio(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("value", HUGE_INTS, ids=["1e400", "-1e400", "1e5000"])
@pytest.mark.parametrize(
    ("build", "field", "named"),
    [
        (_market, "returns", r"market_state\.returns\['A'\]"),
        (_market, "prices", r"market_state\.prices\['A'\]"),
        (_market, "high", r"market_state\.high\['A'\]"),
        (_market, "low", r"market_state\.low\['A'\]"),
        (_market, "volatility", r"market_state\.volatility"),
        (_market, "trend", r"market_state\.trend"),
        (_portfolio, "weights", r"portfolio\.weights\['A'\]"),
        (_portfolio, "equity", r"portfolio\.equity"),
        (_portfolio, "peak_equity", r"portfolio\.peak_equity"),
        (_portfolio, "current_drawdown", r"portfolio\.current_drawdown"),
    ],
)
def test_an_int_beyond_the_float_range_is_invalid_input_naming_the_field(
    build: Callable[[str, object], object], field: str, named: str, value: int
) -> None:
    with pytest.raises(InvalidInputError, match=named) as info:
        build(field, value)
    assert not isinstance(info.value, OverflowError)
    assert len(str(info.value)) < 200  # the 400- or 5000-digit number is not pasted into the message


def test_plain_ints_still_take_the_fast_path_as_floats() -> None:
    from advanced_risk.types import MarketState, Portfolio

    market = MarketState(returns={"A": 0}, prices={"A": 100})
    assert (market.returns["A"], market.prices["A"]) == (0.0, 100.0)
    assert type(market.prices["A"]) is float
    assert Portfolio(weights={"A": 1}, equity=10**6).equity == 1e6


def test_measures_refuse_an_int_beyond_the_float_range_naming_the_field() -> None:
    with pytest.raises(InvalidInputError, match="returns must be finite"):
        m.historical_var([0.01, 10**400])
    with pytest.raises(InvalidInputError, match="alpha must be finite"):
        m.historical_var([0.01, 0.02], alpha=10**400)


@pytest.mark.parametrize("field", ["equity", "peak_equity"])
@pytest.mark.parametrize("value", [0, 0.0, -5.0, -1e-300])
def test_a_non_positive_equity_gets_one_message_naming_the_field(field: str, value: float) -> None:
    """0 and -5 read the same: the open interval the field must lie in (a user test found "must be
    > 0" for 0 but "must be in [0.0, inf]" for -5, a range that holds the refused 0)."""
    with pytest.raises(InvalidInputError, match=rf"portfolio\.{field} must be in \(0\.0, inf\), got"):
        Portfolio(weights={"A": 0.5}, **{field: value})
