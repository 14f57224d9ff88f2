"""Shared fixtures: the bundled real data sets, loaded once per test session."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from advanced_risk.data import load_sp500_index, load_sp500_stocks


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """Undo what a command run in-process (the training CLI's ``main``) does to the process's
    logging: structlog's configuration and the root logger's handlers and level. Left in place,
    a later test's ``capture_logs`` missed events and the root handler wrote to a closed stream."""
    import logging

    import structlog

    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**config)
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def sp500_index() -> pd.DataFrame:
    """S&P 500 index OHLCV, 1999-2018 (5,031 bars)."""
    return load_sp500_index()


@pytest.fixture(scope="session")
def sp500_stocks() -> pd.DataFrame:
    """Adjusted closes of 20 S&P 500 stocks, 1990-2022 (8,313 bars)."""
    return load_sp500_stocks()


@pytest.fixture(scope="session")
def sp500_index_returns(sp500_index: pd.DataFrame) -> np.ndarray:
    """Simple returns of the index's Adj Close (5,030 values)."""
    close = sp500_index["Adj Close"].to_numpy()
    return close[1:] / close[:-1] - 1.0


def require(module: str) -> ModuleType:
    """Import a dev dependency an oracle test needs: skipped when missing locally, a failure under CI.

    The dev extra (``pip install -e ".[dev]"``) holds the oracles (TA-Lib, Stable-Baselines3,
    backtrader, scipy). Locally a missing one skips its tests, as ``pytest.importorskip`` does; under
    CI (the ``CI`` environment variable set to anything but ``""``, ``0`` or ``false``, as CI services
    set it) the dev extra is installed, so a missing module is a broken environment and fails loudly
    instead of skipping the tests that would have caught a regression. Optional extras that CI does
    not install (Ray, the ``distributed`` extra) keep ``pytest.importorskip``.
    """
    if os.environ.get("CI", "").strip().lower() in ("", "0", "false"):
        return pytest.importorskip(module)
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"dev dependency {module!r} is missing under CI: {exc}", pytrace=False)


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _import_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as the module ``examples_<name>`` (once per process)."""
    module_name = f"examples_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_example() -> Callable[[str], ModuleType]:
    """A function importing an example script by name (``"trading_loop"``) as a module."""
    return _import_example
