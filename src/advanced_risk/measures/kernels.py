"""The numba kernels other layers call directly, in their per-bar hot paths.

A kernel trusts its inputs: float64 arrays (C-contiguous where it loops over rows), finite values
within ``MAX_ABS_RETURN``, parameters already in range. It does no validation and raises nothing
(except :func:`var_cvar_kernel` for a method that needs fitted parameters), so a caller validates
once, when data enters (the ``measures.validation`` helpers), and then calls the kernel per bar.
Everyone else calls the validating public functions of ``measures`` instead.

Each kernel is defined next to the public function it serves; this module only names the ones that
``risk`` and ``rl`` use, so that those layers import no private name:

- :func:`covariance_to_correlation_kernel`, :func:`ewma_correlation_step_kernel`: the streaming
  EWMA correlation state (``covariance.py``);
- :func:`ewma_variance_kernel`, :func:`gjr_garch_variance_kernel`: the variance filters;
  :func:`rolling_mean_std_kernel` (:func:`rolling_mean_std_into_kernel` into given arrays):
  rolling mean and standard deviation (``volatility.py``);
- :func:`rsi_kernel` (:func:`rsi_into_kernel` into a given array): Wilder's RSI (``indicators.py``);
- :func:`historical_kernel`, :func:`fhs_kernel`: historical (VaR, CVaR) and by filtered historical
  simulation, :func:`floored_variance_kernel`: the floor of the tracker's filtered
  variance (``var_kernels.py``); :func:`var_cvar_kernel`: (VaR, CVaR) by method
  (``var.py``).
"""

from __future__ import annotations

from advanced_risk.measures.covariance import covariance_to_correlation_kernel, ewma_correlation_step_kernel
from advanced_risk.measures.indicators import rsi_into_kernel, rsi_kernel
from advanced_risk.measures.var import var_cvar_kernel
from advanced_risk.measures.var_kernels import fhs_kernel, floored_variance_kernel, historical_kernel
from advanced_risk.measures.volatility import (
    ewma_variance_kernel,
    gjr_garch_variance_kernel,
    rolling_mean_std_into_kernel,
    rolling_mean_std_kernel,
)

__all__ = [
    "covariance_to_correlation_kernel",
    "ewma_correlation_step_kernel",
    "ewma_variance_kernel",
    "fhs_kernel",
    "floored_variance_kernel",
    "gjr_garch_variance_kernel",
    "historical_kernel",
    "rolling_mean_std_into_kernel",
    "rolling_mean_std_kernel",
    "rsi_into_kernel",
    "rsi_kernel",
    "var_cvar_kernel",
]
