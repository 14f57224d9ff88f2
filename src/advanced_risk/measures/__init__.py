"""Pure risk kernels: arrays in, numbers or arrays out.

Every public function validates its inputs once (raising
:class:`~advanced_risk.errors.InvalidInputError` naming the field) and then calls a numba kernel
that trusts them. This package never imports torch, pandas or the logger.

The submodules load on first use of one of their names (PEP 562), so importing a config or a type
that needs only ``measures.validation`` does not import numba.

>>> from advanced_risk import measures
>>> round(measures.historical_var([-0.05, -0.01, 0.0, 0.01, 0.02], alpha=0.8), 4)
0.018
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on demand
    from advanced_risk.measures.allocation import *  # noqa: F403
    from advanced_risk.measures.backtest import *  # noqa: F403
    from advanced_risk.measures.covariance import *  # noqa: F403
    from advanced_risk.measures.indicators import *  # noqa: F403
    from advanced_risk.measures.kelly import *  # noqa: F403
    from advanced_risk.measures.performance import *  # noqa: F403
    from advanced_risk.measures.var import *  # noqa: F403
    from advanced_risk.measures.volatility import *  # noqa: F403

_SUBMODULES = (
    "allocation",
    "backtest",
    "covariance",
    "indicators",
    "kelly",
    "performance",
    "var",
    "volatility",
)


def _public_names() -> list[str]:
    names: list[str] = []
    for sub in _SUBMODULES:
        names.extend(importlib.import_module(f"{__name__}.{sub}").__all__)
    return names


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first access and cache the name here."""
    if name == "__all__":
        value: Any = _public_names()
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    else:
        for sub in _SUBMODULES:
            module = importlib.import_module(f"{__name__}.{sub}")
            if name in module.__all__:
                value = getattr(module, name)
                break
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_public_names()})
