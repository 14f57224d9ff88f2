"""The asset names a model was trained on, in order: checks shared by the PPO policy and the risk agents.

A model's inputs and outputs are per asset in training order (the columns of its training data), so
a model file records which assets those were: ``RLPortfolioManager`` in its settings
(``metadata.user.rl_portfolio_manager.asset_names``), ``RiskAgents`` in theirs
(``metadata.risk_agents.asset_names``). A file saved without names (before they were recorded, or
trained on unnamed simulated assets) loads with ``asset_names = None``.

Valid names: exactly ``asset_count`` of them, each a non-blank string, no two alike, and none of
them ``"cash"`` (the engine's name for the cash weight, :data:`advanced_risk.engine.inputs.CASH`).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from typing import Any

from advanced_risk.engine.inputs import CASH
from advanced_risk.errors import InvalidInputError, ModelLoadError

__all__ = ["AssetNames", "check_asset_names", "stored_asset_names"]

AssetNames = tuple[str, ...]


def check_asset_names(names: Iterable[str] | None, asset_count: int) -> AssetNames | None:
    """``names`` as a tuple of ``asset_count`` valid names (see the module docstring), or None.

    Raises
    ------
    InvalidInputError
        Not a sequence of strings, the wrong number of names, a blank or repeated name, or ``"cash"``.

    Examples
    --------
    >>> check_asset_names(["AAPL", "MSFT"], 2)
    ('AAPL', 'MSFT')
    >>> check_asset_names(None, 2) is None
    True
    """
    if names is None:
        return None
    if isinstance(names, str | bytes) or not isinstance(names, Iterable):
        raise InvalidInputError(
            f"asset_names must be a sequence of strings, one per asset in training order, got {names!r}"
        )
    values: list[Any] = list(names)
    not_str = [n for n in values if not isinstance(n, str)]
    if not_str:
        raise InvalidInputError(f"asset_names must be strings, got {not_str[0]!r}")
    out = tuple(str(n) for n in values)
    if len(out) != asset_count:
        raise InvalidInputError(f"asset_names has {len(out)} names for {asset_count} assets: {list(out)}")
    blank = [i for i, n in enumerate(out) if not n.strip()]
    if blank:
        raise InvalidInputError(f"asset_names[{blank[0]}] is blank; every asset needs a name")
    if CASH in out:
        raise InvalidInputError(f"asset_names may not contain {CASH!r} (reserved for the cash weight)")
    repeated = sorted(n for n, k in Counter(out).items() if k > 1)
    if repeated:
        raise InvalidInputError(f"asset_names must be unique; repeated: {repeated}")
    return out


def stored_asset_names(value: Any, asset_count: int, path: str | os.PathLike[str]) -> AssetNames | None:
    """The names a model file's header stores (None when absent); a bad entry is a ModelLoadError."""
    if value is not None and not isinstance(value, list):
        raise ModelLoadError(
            f"model file {path} stores asset_names as {type(value).__name__}, expected a list"
        )
    try:
        return check_asset_names(value, asset_count)
    except InvalidInputError as exc:
        raise ModelLoadError(f"model file {path} stores invalid asset names: {exc}") from exc
