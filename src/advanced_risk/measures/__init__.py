"""Pure risk kernels: arrays in, numbers or arrays out.

Every public function validates its inputs once (raising
:class:`~advanced_risk.errors.InvalidInputError` naming the field) and then calls a numba kernel
that trusts them. This package never imports torch, pandas or the logger.

>>> from advanced_risk import measures
>>> round(measures.historical_var([-0.05, -0.01, 0.0, 0.01, 0.02], alpha=0.8), 4)
0.018
"""

from __future__ import annotations

from advanced_risk.measures.allocation import *  # noqa: F403
from advanced_risk.measures.allocation import __all__ as _allocation_all
from advanced_risk.measures.backtest import *  # noqa: F403
from advanced_risk.measures.backtest import __all__ as _backtest_all
from advanced_risk.measures.covariance import *  # noqa: F403
from advanced_risk.measures.covariance import __all__ as _covariance_all
from advanced_risk.measures.indicators import *  # noqa: F403
from advanced_risk.measures.indicators import __all__ as _indicators_all
from advanced_risk.measures.kelly import *  # noqa: F403
from advanced_risk.measures.kelly import __all__ as _kelly_all
from advanced_risk.measures.performance import *  # noqa: F403
from advanced_risk.measures.performance import __all__ as _performance_all
from advanced_risk.measures.var import *  # noqa: F403
from advanced_risk.measures.var import __all__ as _var_all
from advanced_risk.measures.volatility import *  # noqa: F403
from advanced_risk.measures.volatility import __all__ as _volatility_all

__all__ = [
    *_allocation_all,
    *_backtest_all,
    *_covariance_all,
    *_indicators_all,
    *_kelly_all,
    *_performance_all,
    *_var_all,
    *_volatility_all,
]
