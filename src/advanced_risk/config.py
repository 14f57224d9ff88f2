"""Frozen, keyword-only configuration objects, validated once in ``__post_init__``.

A config reports *all* its bad fields at once in one :class:`~advanced_risk.errors.ConfigError`
(a subclass of ``InvalidInputError``), and ``from_dict`` rejects unknown keys, so a typo in a TOML
file is an error rather than a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

from advanced_risk.errors import ConfigError, InvalidInputError
from advanced_risk.measures.var import VaRMethod

__all__ = ["RiskConfig", "TrackerConfig"]


def _collect(checks: list[Callable[[], object]], owner: str) -> None:
    """Run every check, gather the messages of those that fail, raise them together."""
    problems: list[str] = []
    for check in checks:
        try:
            check()
        except InvalidInputError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(f"{owner}: " + "; ".join(problems))


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidInputError(message)


class _ConfigMixin:
    """``from_dict`` / ``to_dict`` shared by every config."""

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Self:
        """Build from a mapping (e.g. a TOML table); unknown keys raise ``ConfigError``."""
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict view (enums as their string values), suitable for JSON or TOML."""
        out = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: (v.value if hasattr(v, "value") else v) for k, v in out.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackerConfig(_ConfigMixin):
    """Settings of the streaming :class:`~advanced_risk.risk.tracker.RiskTracker`."""

    window: int = 250
    """Ring-buffer length in bars for historical / parametric VaR."""
    alpha: float = 0.99
    """Confidence level of VaR/CVaR."""
    method: VaRMethod = VaRMethod.FHS_GARCH
    """VaR method used by ``RiskTracker.var`` when none is named."""
    ewma_lambda: float = 0.94
    """RiskMetrics decay of the EWMA covariance (fast correlation)."""
    baseline_lambda: float = 0.995
    """Decay of the slow baseline of the average pairwise correlation."""
    shock_margin: float = 0.15
    """The correlation-shock flag rises when fast average correlation exceeds the baseline by this."""
    clear_margin: float = 0.075
    """... and clears when the excess falls back below this (hysteresis: clear_margin < shock_margin)."""
    correlation_warmup: int = 60
    """Bars before the correlation baseline starts and the shock flag is evaluated (early EWMA is noise)."""
    fhs_window: int = 500
    """Residual window of filtered historical simulation (longer than ``window``: tails need data)."""
    garch_refit_every: int = 250
    """Bars between GJR-GARCH refits (the fit uses ``arch`` and costs ~0.1-1 s)."""

    def __post_init__(self) -> None:
        if self.method in tuple(VaRMethod):  # a plain string such as "historical" becomes the enum
            object.__setattr__(self, "method", VaRMethod(self.method))
        _collect(
            [
                lambda: _require(
                    isinstance(self.window, int) and self.window >= 20,
                    f"window must be >= 20, got {self.window}",
                ),
                lambda: _require(0 < self.alpha < 1, f"alpha must be in (0, 1), got {self.alpha}"),
                lambda: _require(
                    self.method in tuple(VaRMethod),
                    f"method must be one of {[m.value for m in VaRMethod]}, got {self.method!r}",
                ),
                lambda: _require(
                    0 < self.ewma_lambda < 1, f"ewma_lambda must be in (0, 1), got {self.ewma_lambda}"
                ),
                lambda: _require(
                    0 < self.baseline_lambda < 1,
                    f"baseline_lambda must be in (0, 1), got {self.baseline_lambda}",
                ),
                lambda: _require(
                    0 < self.clear_margin < self.shock_margin < 2,
                    "0 < clear_margin < shock_margin < 2 required, got "
                    f"{self.clear_margin} and {self.shock_margin}",
                ),
                lambda: _require(
                    isinstance(self.correlation_warmup, int) and self.correlation_warmup >= 2,
                    f"correlation_warmup must be >= 2, got {self.correlation_warmup}",
                ),
                lambda: _require(
                    isinstance(self.fhs_window, int) and self.fhs_window >= 100,
                    f"fhs_window must be >= 100, got {self.fhs_window}",
                ),
                lambda: _require(
                    isinstance(self.garch_refit_every, int) and self.garch_refit_every >= 1,
                    f"garch_refit_every must be >= 1, got {self.garch_refit_every}",
                ),
            ],
            "TrackerConfig",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskConfig(_ConfigMixin):
    """Top-level settings of the risk engine (the manager grows this in later releases)."""

    alpha: float = 0.99
    """Confidence level of the reported VaR/CVaR."""
    reduce_drawdown: float = 0.08
    """Drawdown from peak equity at which trading moves to REDUCING."""
    halt_drawdown: float = 0.15
    """Drawdown from peak equity at which trading moves to HALTED."""
    deadline_ms: float = 5.0
    """Per-call deadline of ``manage_risk``; past it the decision is conservative and degraded."""
    tracker: TrackerConfig = dataclasses.field(default_factory=TrackerConfig)
    """Settings of the streaming risk tracker."""

    def __post_init__(self) -> None:
        _collect(
            [
                lambda: _require(0 < self.alpha < 1, f"alpha must be in (0, 1), got {self.alpha}"),
                lambda: _require(
                    0 < self.reduce_drawdown < self.halt_drawdown < 1,
                    "0 < reduce_drawdown < halt_drawdown < 1 required, got "
                    f"{self.reduce_drawdown} and {self.halt_drawdown}",
                ),
                lambda: _require(self.deadline_ms > 0, f"deadline_ms must be > 0, got {self.deadline_ms}"),
                lambda: _require(
                    isinstance(self.tracker, TrackerConfig),
                    f"tracker must be a TrackerConfig, got {type(self.tracker).__name__}",
                ),
            ],
            "RiskConfig",
        )
