"""Drawdown hedging: how much of the exposure to hedge, graded with drawdown, without flapping.

The hedge ratio grows linearly with the drawdown from 0 at ``max_drawdown_threshold`` to 1 (a full
hedge) at ``halt_drawdown``::

    ratio(dd) = clip((dd - threshold) / (halt_drawdown - threshold), 0, 1)

Whether the hedge is *on* has hysteresis: it turns on when the drawdown rises above the threshold and
turns off only when it falls to ``threshold - release_margin`` or below. Between the two levels an
active hedge stays active (its graded ratio is then 0 to tiny), so drawdown noise around the threshold
does not open and close the hedge every bar. For a given on/off state the ratio is non-decreasing
in the drawdown, and it is continuous in the drawdown while the hedge stays on.

A HALTED book is always fully hedged (``execute_hedge(..., halted=True)``).

:func:`hedge_ratio` and :func:`next_hedge_active` are the pure rules; :class:`HedgingStrategy`
holds the on/off state between bars and returns explicit
:class:`~advanced_risk.types.HedgeInstruction` records.
"""

from __future__ import annotations

from advanced_risk.config import HedgeConfig, RiskConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.logs import get_logger
from advanced_risk.measures.validation import check_flag, check_range
from advanced_risk.types import HedgeInstruction

__all__ = ["HedgingStrategy", "hedge_ratio", "next_hedge_active"]

log = get_logger(__name__)


def hedge_ratio(drawdown: float, threshold: float, full_drawdown: float) -> float:
    """The graded hedge ratio: 0 up to ``threshold``, linear to 1 at ``full_drawdown``, then 1.

    Inputs are trusted (validated by the caller); ``threshold < full_drawdown``.

    Examples
    --------
    >>> round(hedge_ratio(0.10, 0.05, 0.15), 12), hedge_ratio(0.02, 0.05, 0.15), hedge_ratio(0.2, 0.05, 0.15)
    (0.5, 0.0, 1.0)
    """
    return min(max((drawdown - threshold) / (full_drawdown - threshold), 0.0), 1.0)


def next_hedge_active(active: bool, drawdown: float, threshold: float, release: float) -> bool:
    """The hysteresis rule of the hedge's on/off state.

    Off -> on when ``drawdown > threshold``; on -> off when ``drawdown <= release``
    (``release = threshold - release_margin``); otherwise the state is kept.

    Examples
    --------
    >>> next_hedge_active(False, 0.045, 0.05, 0.04), next_hedge_active(True, 0.045, 0.05, 0.04)
    (False, True)
    """
    return drawdown > release if active else drawdown > threshold


class HedgingStrategy:
    """Drawdown-graded hedge with hysteresis; stateful (remembers whether the hedge is on).

    Parameters
    ----------
    max_drawdown_threshold : drawdown above which the hedge turns on, in [0, halt_drawdown).
    halt_drawdown : drawdown at which the hedge ratio reaches 1, in (threshold, 1].
    release_margin : hysteresis width; the hedge turns off at ``threshold - release_margin`` or
        below; in [0, threshold].
    config : a :class:`~advanced_risk.config.HedgeConfig`; when given, it replaces
        ``max_drawdown_threshold`` and ``release_margin``.

    Raises
    ------
    InvalidInputError
        Naming the bad argument and value.

    Examples
    --------
    >>> hedger = HedgingStrategy(max_drawdown_threshold=0.05, halt_drawdown=0.15, release_margin=0.01)
    >>> [hedger.execute_hedge(dd).active for dd in (0.04, 0.06, 0.045, 0.039)]
    [False, True, True, False]
    >>> hedge = hedger.execute_hedge(0.10)
    >>> hedge.active, round(hedge.ratio, 12), hedge.reason
    (True, 0.5, 'drawdown 0.1 > threshold 0.05')
    """

    __slots__ = ("_active", "_config", "_halt_drawdown")

    def __init__(
        self,
        max_drawdown_threshold: float = 0.05,
        halt_drawdown: float = 0.15,
        release_margin: float = 0.01,
        *,
        config: HedgeConfig | None = None,
    ) -> None:
        self._config = config or HedgeConfig(
            max_drawdown_threshold=max_drawdown_threshold, release_margin=release_margin
        )
        halt = check_range(halt_drawdown, "halt_drawdown", 0.0, 1.0, lo_open=True)
        if halt <= self._config.max_drawdown_threshold:
            raise InvalidInputError(
                f"halt_drawdown ({halt}) must be > max_drawdown_threshold "
                f"({self._config.max_drawdown_threshold})"
            )
        self._halt_drawdown = halt
        self._active = False

    @classmethod
    def from_config(cls, config: RiskConfig) -> HedgingStrategy:
        """Build from a :class:`~advanced_risk.config.RiskConfig` (its ``hedge`` and ``halt_drawdown``)."""
        return cls(halt_drawdown=config.halt_drawdown, config=config.hedge)

    @property
    def config(self) -> HedgeConfig:
        """Threshold and release margin in use (frozen)."""
        return self._config

    @property
    def halt_drawdown(self) -> float:
        """Drawdown at which the hedge ratio reaches 1."""
        return self._halt_drawdown

    @property
    def release_level(self) -> float:
        """Drawdown at or below which an active hedge turns off: ``threshold - release_margin``."""
        return self._config.max_drawdown_threshold - self._config.release_margin

    @property
    def active(self) -> bool:
        """Whether the hedge is on after the last :meth:`execute_hedge`."""
        return self._active

    def __repr__(self) -> str:
        return (
            f"HedgingStrategy(max_drawdown_threshold={self._config.max_drawdown_threshold}, "
            f"halt_drawdown={self._halt_drawdown}, release_margin={self._config.release_margin}, "
            f"active={self._active})"
        )

    def compute_hedge_ratio(self, drawdown: float) -> float:
        """The ratio :meth:`execute_hedge` would give for ``drawdown`` now, without changing state.

        0 while the hedge is (or would stay) off; else the graded :func:`hedge_ratio`.

        Parameters
        ----------
        drawdown : drawdown from peak equity, in [0, 1].
        """
        dd = check_range(drawdown, "drawdown", 0.0, 1.0)
        if not next_hedge_active(self._active, dd, self._config.max_drawdown_threshold, self.release_level):
            return 0.0
        return hedge_ratio(dd, self._config.max_drawdown_threshold, self._halt_drawdown)

    def execute_hedge(self, drawdown: float, *, halted: bool = False) -> HedgeInstruction:
        """Advance the on/off state with this bar's drawdown and return the hedge instruction.

        Parameters
        ----------
        drawdown : drawdown from peak equity, in [0, 1].
        halted : trading is HALTED; the instruction is then a full hedge (ratio 1) whatever the
            drawdown, and the hedge stays on until a later call without ``halted`` releases it.
            A ``bool`` (or NumPy bool): any other value, such as the string ``'no'`` (which is
            truthy), raises ``InvalidInputError`` rather than being read by its truth value.

        Returns
        -------
        HedgeInstruction
            ``active``, ``ratio`` in [0, 1] and a short ``reason``.
        """
        dd = check_range(drawdown, "drawdown", 0.0, 1.0)
        halted = check_flag(halted, "halted")
        threshold = self._config.max_drawdown_threshold
        was_active = self._active
        if halted:
            self._active = True
            instruction = HedgeInstruction(active=True, ratio=1.0, reason="trading halted")
        else:
            self._active = next_hedge_active(was_active, dd, threshold, self.release_level)
            if self._active:
                ratio = hedge_ratio(dd, threshold, self._halt_drawdown)
                relation = ">" if dd > threshold else "<="
                reason = f"drawdown {dd:.4g} {relation} threshold {threshold:.4g}"
                if dd <= threshold:
                    reason += f", held until <= {self.release_level:.4g}"
                instruction = HedgeInstruction(active=True, ratio=ratio, reason=reason)
            else:
                reason = (
                    f"drawdown {dd:.4g} <= threshold {threshold:.4g}"
                    if not was_active
                    else (f"drawdown {dd:.4g} <= release level {self.release_level:.4g}")
                )
                instruction = HedgeInstruction(active=False, ratio=0.0, reason=reason)
        if self._active != was_active:
            log.info(
                "hedge_activated" if self._active else "hedge_released",
                drawdown=dd,
                ratio=instruction.ratio,
                halted=halted,
            )
        return instruction

    def reset(self, *, active: bool = False) -> None:
        """Set the on/off state directly (e.g. restored after a restart); no event is emitted.

        ``active`` is a ``bool`` (or NumPy bool): ``InvalidInputError`` otherwise, as for ``halted``.
        """
        self._active = check_flag(active, "active")
