"""Trading states and the named rules that move between them (nautilus_trader style).

States (:class:`~advanced_risk.types.TradingState`):

- ACTIVE: normal trading.
- REDUCING: exposure cut (the manager scales the allocation by ``reduce_exposure`` and caps
  leverage at 1); entered when any *reduce rule* fires (drawdown at or past
  ``reduce_drawdown``, a correlation shock, ``var_breach_streak`` VaR breaches in a row) or while a
  halt is pending confirmation. It is left automatically: the first check on which no reduce rule
  and no halt rule fires returns to ACTIVE.
- HALTED: flat and fully hedged; entered when a *halt rule* (drawdown at or past ``halt_drawdown``,
  ``loss_streak`` losing bars in a row) fires on ``halt_confirmations`` consecutive checks, or at
  once by the manual kill switch. It is left only by an explicit :meth:`TradingStateMachine.resume`.

Each rule is a small pure function ``(observation, config) -> reason | None``; the machine collects
the reasons of every rule that fires instead of raising. Setting the state it already has does
nothing; each change emits exactly one ``trading_state_changed`` event.

:func:`classify_risk_level` grades a decision LOW / ELEVATED / HIGH / CRITICAL for dashboards.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from advanced_risk.config import RiskConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.logs import get_logger
from advanced_risk.measures.validation import check_flag, check_positive_int, check_range
from advanced_risk.types import RiskLevel, TradingState

__all__ = [
    "HALT_RULES",
    "REDUCE_RULES",
    "RiskObservation",
    "Rule",
    "StateUpdate",
    "Streak",
    "TradingStateMachine",
    "check_rules",
    "classify_risk_level",
    "correlation_shock_rule",
    "drawdown_halt_rule",
    "drawdown_reduce_rule",
    "loss_streak_rule",
    "var_breach_streak_rule",
]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskObservation:
    """What the rules look at on one check (validated on construction).

    Attributes
    ----------
    drawdown : drawdown from peak equity, in [0, 1] (the halt rule's).
    strategy_drawdown : drawdown of the strategy's reference book, in [0, 1] (the reduce rule's,
        with ``drawdown_basis="strategy"``); None: the reduce rule measures ``drawdown`` too.
    correlation_shock : whether the tracker's correlation-shock flag is up.
    var_breach_streak : VaR breaches in a row up to this bar (see :class:`Streak`).
    loss_streak : losing bars in a row up to this bar.
    """

    drawdown: float = 0.0
    strategy_drawdown: float | None = None
    correlation_shock: bool = False
    var_breach_streak: int = 0
    loss_streak: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "drawdown", check_range(self.drawdown, "drawdown", 0.0, 1.0))
        if self.strategy_drawdown is not None:
            value = check_range(self.strategy_drawdown, "strategy_drawdown", 0.0, 1.0)
            object.__setattr__(self, "strategy_drawdown", value)
        for name in ("var_breach_streak", "loss_streak"):
            object.__setattr__(self, name, check_positive_int(getattr(self, name), name, minimum=0))
        if not isinstance(self.correlation_shock, bool):
            raise InvalidInputError(f"correlation_shock must be a bool, got {self.correlation_shock!r}")


Rule = Callable[[RiskObservation, RiskConfig], "str | None"]
"""A pre-trade rule: the reason it fires, or None."""


def drawdown_reduce_rule(obs: RiskObservation, config: RiskConfig) -> str | None:
    """Fires when the strategy's drawdown (else the equity's) is at or past ``reduce_drawdown``."""
    if obs.strategy_drawdown is not None:
        if obs.strategy_drawdown >= config.reduce_drawdown:
            return (
                f"strategy drawdown {obs.strategy_drawdown:.4g} >= reduce_drawdown "
                f"{config.reduce_drawdown:.4g}"
            )
        return None
    if obs.drawdown >= config.reduce_drawdown:
        return f"drawdown {obs.drawdown:.4g} >= reduce_drawdown {config.reduce_drawdown:.4g}"
    return None


def correlation_shock_rule(obs: RiskObservation, config: RiskConfig) -> str | None:
    """Fires while the correlation-shock flag is up (never with ``reduce_on_correlation_shock=False``)."""
    return "correlation shock" if obs.correlation_shock and config.reduce_on_correlation_shock else None


def var_breach_streak_rule(obs: RiskObservation, config: RiskConfig) -> str | None:
    """Fires after ``var_breach_streak`` VaR breaches in a row (never when it is None)."""
    if config.var_breach_streak is not None and obs.var_breach_streak >= config.var_breach_streak:
        return (
            f"{obs.var_breach_streak} VaR breaches in a row >= var_breach_streak {config.var_breach_streak}"
        )
    return None


def drawdown_halt_rule(obs: RiskObservation, config: RiskConfig) -> str | None:
    """Fires when the drawdown is at or past ``halt_drawdown``."""
    if obs.drawdown >= config.halt_drawdown:
        return f"drawdown {obs.drawdown:.4g} >= halt_drawdown {config.halt_drawdown:.4g}"
    return None


def loss_streak_rule(obs: RiskObservation, config: RiskConfig) -> str | None:
    """Fires after ``loss_streak`` losing bars in a row."""
    if obs.loss_streak >= config.loss_streak:
        return f"{obs.loss_streak} losing bars in a row >= loss_streak {config.loss_streak}"
    return None


REDUCE_RULES: tuple[Rule, ...] = (drawdown_reduce_rule, correlation_shock_rule, var_breach_streak_rule)
"""Rules that move ACTIVE to REDUCING."""
HALT_RULES: tuple[Rule, ...] = (drawdown_halt_rule, loss_streak_rule)
"""Rules that, confirmed ``halt_confirmations`` times in a row, move to HALTED."""


def check_rules(rules: Sequence[Rule], obs: RiskObservation, config: RiskConfig) -> tuple[str, ...]:
    """The reasons of every rule in ``rules`` that fires, in order (empty: none fires)."""
    return tuple(reason for rule in rules if (reason := rule(obs, config)) is not None)


class Streak:
    """Counts consecutive hits (VaR breaches, losing bars); a miss resets it to 0.

    Examples
    --------
    >>> s = Streak()
    >>> [s.update(hit) for hit in (True, True, False, True)]
    [1, 2, 0, 1]
    """

    __slots__ = ("count",)

    def __init__(self, count: int = 0) -> None:
        self.count = check_positive_int(count, "count", minimum=0)

    def update(self, hit: bool) -> int:
        """Record one bar and return the current streak length."""
        self.count = self.count + 1 if hit else 0
        return self.count

    def reset(self) -> None:
        """Start counting from 0."""
        self.count = 0


@dataclass(frozen=True, slots=True)
class StateUpdate:
    """The outcome of one :meth:`TradingStateMachine.evaluate`."""

    state: TradingState
    """State after the check."""
    previous: TradingState
    """State before the check."""
    reasons: tuple[str, ...]
    """Every rule that fired on this check (halt rules first), also while HALTED."""
    halt_votes: int
    """Consecutive checks (including this one) on which a halt rule fired."""

    @property
    def changed(self) -> bool:
        """Whether the state changed on this check (the caller may persist it)."""
        return self.state is not self.previous


class TradingStateMachine:
    """ACTIVE / REDUCING / HALTED with confirmed halts, a kill switch and explicit resume.

    Parameters
    ----------
    config : thresholds (``reduce_drawdown``, ``halt_drawdown``, ``var_breach_streak``, ``loss_streak``,
        ``halt_confirmations``); defaults to ``RiskConfig()``.
    state, reason, kill_switch : the restored state (e.g. from ``StateStore.load()``); no event is
        emitted for it. An engaged kill switch forces HALTED.
    halt_votes : the restored count of consecutive checks on which a halt rule fired (a restart
        between two confirmations halts when the running machine would have); ignored when
        ``state`` is ACTIVE (a halt vote leaves ACTIVE, so an ACTIVE machine has none).

    Notes
    -----
    Not thread-safe: one owner (the manager's decision path) calls it.

    Examples
    --------
    >>> config = RiskConfig(reduce_drawdown=0.08, halt_drawdown=0.15, halt_confirmations=2)
    >>> machine = TradingStateMachine(config)
    >>> [machine.evaluate(RiskObservation(drawdown=dd)).state.value for dd in (0.09, 0.16, 0.16, 0.0)]
    ['reducing', 'reducing', 'halted', 'halted']
    >>> machine.resume("operator reviewed the drawdown"), machine.state.value
    (True, 'active')
    """

    __slots__ = ("_config", "_halt_votes", "_kill_switch", "_reason", "_state")

    def __init__(
        self,
        config: RiskConfig | None = None,
        *,
        state: TradingState | str = TradingState.ACTIVE,
        reason: str = "",
        kill_switch: bool = False,
        halt_votes: int = 0,
    ) -> None:
        self._config = config or RiskConfig()
        try:
            self._state = TradingState(state)
        except ValueError:
            allowed = [s.value for s in TradingState]
            raise InvalidInputError(f"state must be one of {allowed}, got {state!r}") from None
        self._reason = str(reason)
        self._kill_switch = check_flag(kill_switch, "kill_switch")
        if self._kill_switch and self._state is not TradingState.HALTED:
            self._state, self._reason = TradingState.HALTED, self._reason or "kill switch"
        votes = check_positive_int(halt_votes, "halt_votes", minimum=0)
        self._halt_votes = votes if self._state is not TradingState.ACTIVE else 0

    @property
    def config(self) -> RiskConfig:
        """The thresholds in use."""
        return self._config

    @property
    def state(self) -> TradingState:
        """The current trading state."""
        return self._state

    @property
    def reason(self) -> str:
        """Why the machine entered its current state."""
        return self._reason

    @property
    def kill_switch(self) -> bool:
        """Whether the manual kill switch is engaged."""
        return self._kill_switch

    @property
    def halt_votes(self) -> int:
        """Consecutive checks on which a halt rule has fired (reset by a quiet check or a resume)."""
        return self._halt_votes

    def __repr__(self) -> str:
        return f"TradingStateMachine(state={self._state.value!r}, reason={self._reason!r})"

    def evaluate(self, obs: RiskObservation) -> StateUpdate:
        """Run every rule on ``obs`` and move the state (see the module docstring for the rules)."""
        cfg, previous = self._config, self._state
        halt = check_rules(HALT_RULES, obs, cfg)
        reduce = check_rules(REDUCE_RULES, obs, cfg)
        if previous is TradingState.HALTED:  # only resume() leaves HALTED
            return StateUpdate(previous, previous, halt + reduce, self._halt_votes)
        self._halt_votes = self._halt_votes + 1 if halt else 0
        if halt and self._halt_votes >= cfg.halt_confirmations:
            self._set(TradingState.HALTED, "; ".join(halt))
        elif halt or reduce:
            pending = (
                (f"halt pending ({self._halt_votes}/{cfg.halt_confirmations}): {'; '.join(halt)}",)
                if halt
                else ()
            )
            self._set(TradingState.REDUCING, "; ".join(pending + reduce))
        else:
            self._set(TradingState.ACTIVE, "risk causes cleared")
        return StateUpdate(self._state, previous, halt + reduce, self._halt_votes)

    def engage_kill_switch(self, reason: str = "manual kill switch") -> bool:
        """Halt at once, without confirmations; stays HALTED until :meth:`resume`.

        Returns
        -------
        bool
            Whether the state changed (False if it was already HALTED).
        """
        why = check_reason(reason)  # a refused call changes nothing
        self._kill_switch = True
        return self._set(TradingState.HALTED, f"kill switch: {why}")

    def resume(self, reason: str) -> bool:
        """Leave HALTED explicitly: release the kill switch, clear the halt votes, go ACTIVE.

        The next :meth:`evaluate` applies the rules afresh (a halt cause that still holds needs
        ``halt_confirmations`` new checks to halt again). Outside HALTED this does nothing.

        Parameters
        ----------
        reason : why trading resumes (recorded and logged; must be non-empty).

        Returns
        -------
        bool
            Whether the state changed.
        """
        why = check_reason(reason)
        if self._state is not TradingState.HALTED:
            return False
        self._kill_switch = False
        self._halt_votes = 0
        return self._set(TradingState.ACTIVE, f"resumed: {why}")

    def _set(self, state: TradingState, reason: str) -> bool:
        """Move to ``state``; the same state again does nothing (no event, reason kept)."""
        if state is self._state:
            return False
        previous, self._state, self._reason = self._state, state, reason
        log.warning("trading_state_changed", previous=previous.value, state=state.value, reason=reason)
        return True


def check_reason(reason: object) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInputError(f"reason must be a non-empty string, got {reason!r}")
    return reason.strip()


_LEVELS = tuple(RiskLevel)  # LOW < ELEVATED < HIGH < CRITICAL
ELEVATED_DRAWDOWN_SHARE = 0.5
"""A drawdown of at least this share of ``reduce_drawdown`` is ELEVATED."""
ELEVATED_VAR_SHARE = 0.75
"""A VaR of at least this share of ``var_limit`` is ELEVATED (at or past the limit: HIGH)."""
CRITICAL_VAR_MULTIPLE = 2.0
"""A VaR of at least this multiple of ``var_limit`` is CRITICAL."""


def classify_risk_level(
    drawdown: float,
    config: RiskConfig,
    *,
    var: float | None = None,
    correlation_shock: bool = False,
    trading_state: TradingState | None = None,
) -> RiskLevel:
    """Grade the risk of a decision; the worst of its signals wins.

    ====================  ==========================  ====================  ===============
    signal                ELEVATED                    HIGH                  CRITICAL
    ====================  ==========================  ====================  ===============
    drawdown              >= 0.5 x reduce_drawdown    >= reduce_drawdown    >= halt_drawdown
    VaR / var_limit       >= 0.75                     >= 1                  >= 2
    correlation shock                                 on
    trading state                                     REDUCING              HALTED
    ====================  ==========================  ====================  ===============

    A VaR that is None or NaN (tracker warming up), or a ``var_limit`` of None, grades nothing.
    ``drawdown`` must be in [0, 1] (``InvalidInputError`` naming it otherwise, NaN included).

    Examples
    --------
    >>> cfg = RiskConfig(reduce_drawdown=0.08, halt_drawdown=0.15, var_limit=0.05)
    >>> classify_risk_level(0.01, cfg).value, classify_risk_level(0.05, cfg).value
    ('low', 'elevated')
    >>> classify_risk_level(0.01, cfg, var=0.06).value, classify_risk_level(0.2, cfg).value
    ('high', 'critical')
    """
    drawdown = check_range(drawdown, "drawdown", 0.0, 1.0)  # a NaN compared False: it graded LOW
    level = RiskLevel.LOW
    if drawdown >= config.halt_drawdown:
        level = RiskLevel.CRITICAL
    elif drawdown >= config.reduce_drawdown:
        level = RiskLevel.HIGH
    elif drawdown >= ELEVATED_DRAWDOWN_SHARE * config.reduce_drawdown:
        level = RiskLevel.ELEVATED
    if var is not None and config.var_limit is not None and math.isfinite(var):
        usage = var / config.var_limit
        if usage >= CRITICAL_VAR_MULTIPLE:
            level = _worst(level, RiskLevel.CRITICAL)
        elif usage >= 1.0:
            level = _worst(level, RiskLevel.HIGH)
        elif usage >= ELEVATED_VAR_SHARE:
            level = _worst(level, RiskLevel.ELEVATED)
    if correlation_shock or trading_state is TradingState.REDUCING:
        level = _worst(level, RiskLevel.HIGH)
    if trading_state is TradingState.HALTED:
        level = RiskLevel.CRITICAL
    return level


def _worst(a: RiskLevel, b: RiskLevel) -> RiskLevel:
    return a if _LEVELS.index(a) >= _LEVELS.index(b) else b
