"""The names of the VaR/CVaR estimators, apart from their kernels so configs import it cheaply."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["VaRMethod"]


class VaRMethod(StrEnum):
    """The VaR/CVaR estimators; values are the names used in configs, reports and logs."""

    HISTORICAL = "historical"
    GAUSSIAN = "gaussian"
    CORNISH_FISHER = "cornish_fisher"
    FHS_EWMA = "fhs_ewma"
    FHS_GARCH = "fhs_garch"
