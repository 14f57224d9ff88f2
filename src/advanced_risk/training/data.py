"""The data behind a training run: which market trains the policy and which data evaluates it.

Two kinds of source (see ``docs/training.md``):

- **simulated** (``--data synthetic`` or ``regime``): training draws fresh paths from the market;
  evaluation runs on ``eval_episodes`` held-out paths whose seeds (``EVAL_SEED_BASE + seed * 1000 +
  k``) never seed a training environment, so the report has confidence intervals across paths.
- **tables** (``--data sp500``, the bundled 20 stocks, or ``--data-csv PATH``, prices or OHLCV):
  validated by :mod:`advanced_risk.data` (a CSV's SHA-256 is recorded), optionally cut to the last
  ``rows`` rows, turned into simple returns and split by date; training replays random windows of
  the train split (:class:`ReturnsReplay`); evaluation trades the whole test period once, warmed up
  on the last rows of the train split (information available at the time).

One module because reading a table, splitting it by date and aligning it to a model's assets are
one definition of the data a run trains and is evaluated on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from advanced_risk.config import EnvConfig, MarketKind
from advanced_risk.data import (
    READ_ERRORS,
    check_header,
    error_name,
    impossible_move,
    load_sp500_stocks,
    stamp_text,
    validate_ohlcv,
    validate_prices,
)
from advanced_risk.errors import DataValidationError, InvalidInputError
from advanced_risk.files import sha256_file
from advanced_risk.logs import get_logger
from advanced_risk.measures.validation import FloatArray
from advanced_risk.rl.portfolio.accounting import history_length, market_features_kernel
from advanced_risk.rl.portfolio.asset_names import AssetNames, check_asset_names
from advanced_risk.rl.portfolio.market import MarketModel, make_market
from advanced_risk.training.settings import TrainingSettings

__all__ = [
    "EVAL_SEED_BASE",
    "VALIDATION_SEED_BASE",
    "DataBundle",
    "ReturnsReplay",
    "align_to_model",
    "load_data",
    "looks_like_ohlcv",
    "split_date",
    "split_overrides",
    "warn_if_names_differ",
]

log = get_logger(__name__)

EVAL_SEED_BASE: Final = 1_000_000
"""Evaluation paths use seeds from here on (training envs use ``seed .. seed + num_envs - 1``)."""
VALIDATION_SEED_BASE: Final = 2_000_000
"""Sweep trials are ranked on paths seeded from here on (disjoint from training and test seeds)."""
DEFAULT_TRAIN_FRACTION: Final = 0.7


class ReturnsReplay:
    """Random contiguous windows of a fixed ``(days, assets)`` table of simple returns.

    Parameters
    ----------
    returns : simple returns, oldest first, each ``> -1``.
    """

    def __init__(self, returns: FloatArray) -> None:
        self.returns = np.ascontiguousarray(returns, dtype=np.float64)

    @property
    def n_assets(self) -> int:
        """Number of assets (columns)."""
        return int(self.returns.shape[1])

    def sample_path(self, rng: np.random.Generator, n_steps: int) -> FloatArray:
        """``n_steps`` consecutive days from a start row drawn uniformly from ``rng``."""
        available = self.returns.shape[0]
        if n_steps > available:
            raise InvalidInputError(f"a path of {n_steps} days does not fit in {available} days of data")
        start = int(rng.integers(0, available - n_steps + 1))
        return self.returns[start : start + n_steps].copy()


@dataclass(frozen=True, slots=True)
class DataBundle:
    """Everything the pipeline needs from the data.

    Attributes
    ----------
    env_config : the environment config (asset count and ``max_steps`` fitted to the data).
    train_market : the market training environments draw from.
    test_path : the test-period path (warm-up rows first) for table data; None for simulated data.
    validation_path : the end of the train split (sweeps rank trials on it); None for simulated data.
    description : JSON-ready facts for the report: source, file SHA-256, dates, rows, tickers.
    asset_names : the table's column names in order (saved with the trained model); None for
        simulated data, whose assets are unnamed.
    """

    env_config: EnvConfig
    train_market: MarketModel
    test_path: FloatArray | None
    validation_path: FloatArray | None
    description: dict[str, Any]
    asset_names: AssetNames | None = None

    @property
    def simulated(self) -> bool:
        """True when evaluation runs on random held-out paths (with confidence intervals)."""
        return self.test_path is None


_OHLCV_NAMES: Final = frozenset({"open", "high", "low", "close", "adj close", "volume"})


def looks_like_ohlcv(columns: Any) -> bool:
    """Whether a table with these columns is an OHLCV file (and must pass ``validate_ohlcv``).

    It is when at least two of its column names are OHLCV names (``Open``, ``High``, ``Low``,
    ``Close``, ``Adj Close``, ``Volume``; any case, surrounding spaces ignored). So a file that lacks
    one of Open/High/Low/Close, e.g. no ``Close``, is refused naming the missing column instead of
    being read as a price table of five "assets" (Open, High, Low, Adj Close, Volume). A single such
    name (a one-asset ``Date,Close`` file) is still a price table.

    Examples
    --------
    >>> looks_like_ohlcv(["Date", "Open", "High", "Low", "Adj Close", "Volume"])
    True
    >>> looks_like_ohlcv(["Date", "AAPL", "MSFT"]), looks_like_ohlcv(["Date", "Close"])
    (False, False)
    """
    names = {str(c).strip().lower() for c in columns}
    return len(names & _OHLCV_NAMES) >= 2


def split_date(value: Any, flag: str) -> pd.Timestamp:
    """``value`` of ``flag`` (``--train-end`` / ``--test-start``) as a fixed, timezone-naive date.

    Raises
    ------
    InvalidInputError
        Naming ``flag`` and the value, when it is not a date pandas can read (``notadate``), is
        empty or NaT, is relative (``now``, ``today``: a split must not move between runs), or
        carries a timezone (the tables' dates are naive).
    """
    text = str(value).strip()
    problem = f"{flag} must be a date such as 2012-12-31, got {value!r}"
    if text.lower() in ("now", "today"):
        raise InvalidInputError(problem + " (a relative date would move the split between runs)")
    try:
        stamp = pd.Timestamp(text)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInputError(problem) from exc
    if pd.isna(stamp):
        raise InvalidInputError(problem)
    if stamp.tzinfo is not None:
        raise InvalidInputError(problem + " (without a timezone)")
    return stamp


def _implied_gap(stamp: pd.Timestamp) -> pd.Timedelta:
    """How far the split flag not given lies from ``stamp``: a day for a date (daily bars), one
    microsecond for a time of day (intraday bars: a day would drop the rest of that day's bars)."""
    return pd.Timedelta(days=1) if stamp == stamp.normalize() else pd.Timedelta(microseconds=1)


def split_overrides(train_end: Any, test_start: Any) -> dict[str, str]:
    """The EnvConfig ``train_end`` / ``test_start`` of the given split flags, validated.

    Each flag is checked on its own (:func:`split_date`, naming it); when both are given the test
    split must start after the train split ends. A flag given alone implies the other as the day
    after (before) it, exactly as the table split does, so the environment's dates never mix a given
    flag with an unrelated default; with a time of day (intraday bars) the other is one microsecond
    after (before) it, so no bar of that day is dropped. Dates are returned in ISO form (they compare
    as strings).
    """
    end = None if train_end is None else split_date(train_end, "--train-end")
    start = None if test_start is None else split_date(test_start, "--test-start")
    if end is not None and start is not None and start <= end:
        raise InvalidInputError(
            f"--test-start ({stamp_text(start)}) must come after --train-end ({stamp_text(end)})"
        )
    if start is not None:
        end = start - _implied_gap(start) if end is None else end
    elif end is not None:
        start = end + _implied_gap(end)
    else:
        return {}
    return {"train_end": stamp_text(end), "test_start": stamp_text(start)}


def _read_csv(path: Path) -> pd.DataFrame:
    """The ``--data-csv`` file read as a table, its header checked as written.

    pandas renames a repeated column (``AAA``, ``AAA.1``) and an unnamed one (``Unnamed: 2``), and
    those invented names would become asset names, so the raw header row is read too: every name
    that appears more than once is refused at once, then an empty name. Every message names the
    file once.

    Raises
    ------
    InvalidInputError
        The file cannot be read as CSV, or its header repeats or omits a column name
        (``DataValidationError``).
    """
    try:
        frame = pd.read_csv(path)
        header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
    except READ_ERRORS as exc:  # the loaders' list: truncated or corrupt compression, empty, ...
        raise InvalidInputError(
            f"--data-csv: {path} cannot be read as CSV: {error_name(exc)}: {exc}"
        ) from exc
    names = [str(name).strip() for name in header.iloc[0]] if len(header) else []
    repeated = list(dict.fromkeys(n for n in names if n and names.count(n) > 1))
    if repeated:
        raise DataValidationError(
            f"--data-csv {path}: column name(s) {', '.join(map(repr, repeated))} appear more than "
            "once in the header; give each column its own name"
        )
    check_header(names, "--data-csv", path)  # an empty name
    return frame


def _read_table(data: str, data_csv: str | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The validated price table and what to record about it."""
    if data_csv is None:
        return load_sp500_stocks(), {"source": "sp500", "file": "bundled sp500_stocks_daily.csv.gz"}
    path = Path(data_csv)
    if not path.is_file():
        raise InvalidInputError(f"--data-csv: file not found: {path}")
    digest = sha256_file(path)
    what = f"--data-csv {path}"  # the validators name the table by ``what`` alone: the file once
    try:
        frame = _read_csv(path)
        is_ohlcv = looks_like_ohlcv(frame.columns)
        if is_ohlcv:
            ohlcv = validate_ohlcv(frame, what=what)
            column = "Adj Close" if "Adj Close" in ohlcv.columns else "Close"
            table = ohlcv[[column]].rename(columns={column: path.name.split(".")[0]})
        else:
            table = validate_prices(frame, what=what)
    except InvalidInputError:
        raise
    except Exception as exc:  # corrupt compressed input surfaces from pandas as assorted errors
        raise InvalidInputError(f"--data-csv: {path} cannot be read: {type(exc).__name__}: {exc}") from exc
    kind = "ohlcv" if is_ohlcv else "prices"
    return table, {"source": "csv", "file": str(path), "sha256": digest, "format": kind}


def _split(
    returns: pd.DataFrame, train_end: str | None, test_start: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    if train_end is None and test_start is None:
        cut = int(len(returns) * DEFAULT_TRAIN_FRACTION)
        return returns.iloc[:cut], returns.iloc[cut:]
    dates = split_overrides(train_end, test_start)
    end, start = pd.Timestamp(dates["train_end"]), pd.Timestamp(dates["test_start"])
    return returns.loc[returns.index <= end], returns.loc[returns.index >= start]


def _check_returns(returns: pd.DataFrame, file: str, config: EnvConfig) -> None:
    """Refuse a table whose valid prices still give a return the environment cannot hold.

    Prices are positive and finite, but a ratio of two of them can overflow (``1e-300`` to ``1e300``:
    an infinite return) or round to a total loss (``1e300`` to ``1e-300``: exactly -1, a zero price
    in the features' close series, which divided by zero in the feature kernel after the data had
    been accepted). Named by column and date, like the price checks.
    """
    values = returns.to_numpy(dtype=np.float64)
    found = impossible_move(values)
    if found is not None:
        row, col = found
        stamp = pd.Timestamp(returns.index[row])
        raise InvalidInputError(
            f"{file}: the price move into {stamp_text(stamp)} in column {returns.columns[col]!r} is a return "
            f"of {float(values[row, col])!r}; a price must change by a finite factor and never round to zero"
        )
    h = history_length(config)
    if len(values) <= h:
        return  # too short to train on: the split check says so
    # The observation is float32: moves of 1e60 are finite returns but overflow its momentum and
    # volatility features (NaN actions after the whole training run). Check the features themselves.
    features = market_features_kernel(values, h, config.window, len(values) - h)
    finite = (np.abs(features) <= np.finfo(np.float32).max).all(axis=0)  # NaN compares False
    if not finite.all():
        n, w = values.shape[1], config.window
        j = int(np.flatnonzero(~finite)[0])
        col = j // w if j < n * w else (j - n * w) % n
        row = int(np.nanargmax(np.abs(values[:, col])))
        stamp = pd.Timestamp(returns.index[row])
        raise InvalidInputError(
            f"{file}: column {returns.columns[col]!r} moves too far for the policy's observation "
            f"(float32 features overflow; largest move: a return of {float(values[row, col]):.3g} "
            f"into {stamp_text(stamp)})"
        )


def _table_bundle(settings: TrainingSettings, base: EnvConfig) -> DataBundle:
    table, description = _read_table(settings.data, settings.data_csv)
    if settings.rows is not None:
        table = table.iloc[-int(settings.rows) :]
    n_assets = min(int(settings.asset_count), table.shape[1])
    if n_assets < settings.asset_count:
        log.warning("asset_count_reduced", requested=settings.asset_count, available=table.shape[1])
    table = table.iloc[:, :n_assets]
    try:  # the names go into the model file: refuse bad ones now, not after training
        names = check_asset_names([str(c) for c in table.columns], n_assets)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{description['file']}: the column names cannot name assets: {exc}") from exc
    returns = table.pct_change().iloc[1:]
    _check_returns(returns, str(description["file"]), base)
    train_end, test_start = settings.train_end, settings.test_start
    if settings.data_csv is None and settings.rows is None and train_end is None and test_start is None:
        train_end, test_start = base.train_end, base.test_start  # the documented split of the bundle
    train, test = _split(returns, train_end, test_start)
    h = history_length(base)
    if len(train) < h + 10 or len(test) < 10:
        raise InvalidInputError(
            f"data split too small: {len(train)} train and {len(test)} test returns; the train split "
            f"needs >= {h + 10} (history {h} + 10 steps) and the test split >= 10"
        )
    max_steps = min(base.max_steps, len(train) - h)
    if max_steps < base.max_steps:
        log.warning("max_steps_reduced", requested=base.max_steps, used=max_steps, train_rows=len(train))
    env_config = dataclasses.replace(base, asset_count=n_assets, max_steps=max_steps)
    train_values = train.to_numpy(dtype=np.float64)
    test_path = np.concatenate([train_values[-h:], test.to_numpy(dtype=np.float64)])
    n_val = max(len(train_values) // 5, h + 10)
    validation_path = train_values[-n_val:]
    description |= {
        "rows": len(table),
        "tickers": list(names or ()),
        # bars with a time of day (minute bars) keep it: a date alone would name one day twice
        "train": f"{stamp_text(train.index[0])} .. {stamp_text(train.index[-1])} ({len(train)} returns)",
        "test": f"{stamp_text(test.index[0])} .. {stamp_text(test.index[-1])} ({len(test)} returns)",
    }
    return DataBundle(env_config, ReturnsReplay(train_values), test_path, validation_path, description, names)


def align_to_model(model_names: AssetNames | None, data: DataBundle, model: str) -> DataBundle:
    """``data`` with its columns in the model's order when it holds the model's assets reordered.

    Evaluation feeds column k to the model's input k, while the manager finds a named model's
    assets by name: a file holding exactly the model's assets in another column order is the same
    market, so it is put in the model's order (logged as ``assets_reordered``). Other names (a
    transfer test) keep the file's order and are logged by :func:`warn_if_names_differ`.

    Parameters
    ----------
    model_names : the asset names stored with the model (None: unnamed, matched by position).
    data : the evaluation data, columns in the file's order.
    model : the model file, for the log line.

    Returns
    -------
    DataBundle
        ``data`` itself, or a copy with every return table, the names and the description's
        tickers in the model's order.
    """
    names = data.asset_names
    if model_names is None or names is None or names == model_names or sorted(names) != sorted(model_names):
        warn_if_names_differ(model_names, data, model)
        return data
    order = [names.index(a) for a in model_names]

    def permuted(values: FloatArray | None) -> FloatArray | None:
        return None if values is None else np.ascontiguousarray(values[:, order])

    market = data.train_market
    if isinstance(market, ReturnsReplay):
        market = ReturnsReplay(market.returns[:, order])
    log.info("assets_reordered", model=model, data_assets=list(names), model_assets=list(model_names))
    return dataclasses.replace(
        data,
        train_market=market,
        test_path=permuted(data.test_path),
        validation_path=permuted(data.validation_path),
        description=data.description | {"tickers": list(model_names)},
        asset_names=model_names,
    )


def warn_if_names_differ(model_names: AssetNames | None, data: DataBundle, model: str) -> None:
    """Log ``asset_names_differ`` when a named model is evaluated on data with other column names.

    Evaluation is by position (column k feeds input k), so such a report is about other assets than
    the ones the model was trained on; it is allowed (e.g. a transfer test) but said.
    """
    if model_names is not None and data.asset_names is not None and model_names != data.asset_names:
        log.warning(
            "asset_names_differ",
            model=model,
            model_assets=list(model_names),
            data_assets=list(data.asset_names),
        )


def load_data(settings: TrainingSettings) -> DataBundle:
    """Build the :class:`DataBundle` for ``settings``.

    Raises
    ------
    InvalidInputError
        A missing, unreadable or invalid data file (naming the file, row and column; an OHLCV file
        missing a column, see :func:`looks_like_ohlcv`), a split date that is not a date (naming
        its flag) or a test split that does not start after the train split, or a split too short
        for the environment's history plus a few steps.
    """
    overrides: dict[str, Any] = {"asset_count": settings.asset_count, "max_steps": settings.max_steps}
    overrides |= split_overrides(settings.train_end, settings.test_start)
    if settings.data_csv is None and settings.data in ("synthetic", "regime"):
        kind = MarketKind.GBM if settings.data == "synthetic" else MarketKind.REGIME
        env_config = EnvConfig.from_dict({**settings.env, **overrides, "market": kind})
        description = {"source": settings.data, "market": kind.value, "eval_seed_base": EVAL_SEED_BASE}
        return DataBundle(env_config, make_market(env_config), None, None, description)
    return _table_bundle(settings, EnvConfig.from_dict({**settings.env, **overrides}))
