"""The names of the VaR/CVaR estimators, apart from their kernels so configs import it cheaply."""

from __future__ import annotations

from enum import StrEnum

from advanced_risk.errors import InvalidInputError

__all__ = ["VaRMethod", "as_var_method"]


class VaRMethod(StrEnum):
    """The VaR/CVaR estimators; values are the names used in configs, reports and logs."""

    HISTORICAL = "historical"
    GAUSSIAN = "gaussian"
    CORNISH_FISHER = "cornish_fisher"
    FHS_EWMA = "fhs_ewma"
    FHS_GARCH = "fhs_garch"


def as_var_method(method: VaRMethod | str) -> VaRMethod:
    """``method`` as a :class:`VaRMethod` (its value or the member itself).

    Raises
    ------
    InvalidInputError
        ``method`` names no estimator; the message lists the valid names.

    Examples
    --------
    >>> as_var_method("gaussian")
    <VaRMethod.GAUSSIAN: 'gaussian'>
    """
    try:
        return VaRMethod(method)
    except ValueError:
        raise InvalidInputError(
            f"method must be one of {[m.value for m in VaRMethod]}, got {method!r}"
        ) from None
