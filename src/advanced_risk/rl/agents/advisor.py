"""The learned risk agents behind ``manage_risk``: observations from the bars, gated advice back.

:class:`RiskAgentsAdvisor` wraps trained :class:`~advanced_risk.rl.agents.policy.RiskAgents`
(``RiskConfig.risk_agents_path``, written by ``train_ppo_agent.py --agents risk``) for the
:class:`~advanced_risk.engine.core.DecisionEngine`:

- :meth:`~RiskAgentsAdvisor.observe` (every bar, on the caller's thread) keeps what the agents'
  observation needs beyond the returns: Wilder ATR(14) of each asset on the training environment's
  close-only bars (:func:`~advanced_risk.rl.agents.interface.synthetic_bars`' convention, so the
  agents see the ATR they were trained on whatever high/low the bot sends), the entry close and
  highest close since entry of each held asset, and the previous bar's portfolio return. A position
  restarts (entry = highest = this close) when it is entered, when its close falls through the
  standing stop (the environment stops it out and re-enters; here the bot may not have sold) and
  every :data:`~advanced_risk.rl.agents.interface.POSITION_HORIZON` (252) bars of holding, as the
  environment does. Without those restarts a
  bot that holds through its stops for years shows the agents ``from_entry`` / ``from_high``
  values tens of standard deviations outside their training data;
- :meth:`~RiskAgentsAdvisor.request` snapshots one observation per agent with the environment's own
  :func:`~advanced_risk.rl.agents.interface.observation_blocks` (a copy: the worker thread never
  reads state the next bar changes);
- :meth:`~RiskAgentsAdvisor.advise` (inline, or in the policy worker within the deadline) acts with MC
  dropout and :func:`~advanced_risk.rl.agents.policy.gate`: an agent whose normalised uncertainty
  exceeds the threshold is replaced by its rule, and the advice says which and why.

The rules here are the manager's own components, so a replaced agent changes nothing: sizer 1 (the
configured ATR risk budget), stop ``SizingConfig.atr_multiplier`` ATRs with the engine's trailing,
monitor "none" (the drawdown rules, trading states and hedge apply in any case). The agents can
therefore only *add* caution to the rules (smaller sizes, exposure cuts, hedges), except the stop
agent, which may also widen the stop (up to 5 ATRs).

Everything here is NumPy (and numba for the features): the agents load and act without torch,
gymnasium or pettingzoo, so a core install (``pip install advanced_risk``) runs them.

One module because :class:`RiskAgentsAdvisor`'s bookkeeping (``observe``), observations
(``request``) and gated advice (``advise``) read and write one per-asset state, which
``snapshot_state`` / ``restore_state`` save and restore whole across a graceful restart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from advanced_risk.config import SizingConfig
from advanced_risk.errors import InvalidInputError, ModelLoadError
from advanced_risk.measures.validation import FloatArray
from advanced_risk.monitoring.drift import DriftSettings, DriftStatus
from advanced_risk.risk.atr import StreamingATR
from advanced_risk.rl.agents.bookkeeping_kernel import bookkeeping_kernel, first_bad_price_kernel
from advanced_risk.rl.agents.interface import (
    AGENTS,
    ATR_FLOOR,
    ATR_PERIOD,
    LOW_FLOOR,
    MONITOR_CUTS,
    POSITION_HORIZON,
    STOP_RANGE,
    MonitorAction,
    agent_observations,
    observation_blocks,
)
from advanced_risk.rl.agents.observation_kernel import agent_inputs_kernel, block_index
from advanced_risk.rl.agents.policy import (
    NOVELTY_LIMIT,
    RiskAgents,
    Threshold,
    as_threshold,
    gate,
    gate_reason,
)
from advanced_risk.rl.portfolio.accounting import (
    check_history,
    history_length,
    market_features_kernel,
    observation_layout,
)
from advanced_risk.rl.ppo.inference import generator_from_state
from advanced_risk.types import AgentAdvice

__all__ = ["DRIFT_KEY", "RiskAgentsAdvisor", "load_risk_agents"]

DRIFT_KEY = "drift"
"""Key of the drift status in the snapshot :meth:`RiskAgentsAdvisor.request` returns."""

WICK = 0.5
"""The training environment's bar approximation (``RiskAgentsEnv(wick=0.5)``)."""


class RiskAgentsAdvisor:
    """Trained risk agents seen by the engine (see the module docstring).

    Parameters
    ----------
    agents : the trained agents.
    sizing : the manager's sizing settings (the stop rule's ATR multiple).
    n_samples : MC-dropout samples per agent (``RiskConfig.mc_samples``).
    threshold : one gate threshold for all agents; None uses the one(s) stored with the agents
        (0.1 unless calibrated by the training pipeline).
    drift : settings of the drift monitor (default ``DriftSettings()``), used when the agents carry
        an ``observation_reference``: :meth:`request` feeds it the bar's shared market features
        (``rl/agents/drift.py``) and ``AgentAdvice.drift`` carries its status (also
        :attr:`last_drift`); None without a reference. The advisor does not act on drift: the engine
        replaces a drifted model's advice by the rules.
    """

    bounded_cost: ClassVar[bool] = True
    """A fixed amount of NumPy arithmetic per bar that cannot block: the manager may run it inline
    (engine/components.py)."""

    def __init__(
        self,
        agents: RiskAgents,
        sizing: SizingConfig,
        n_samples: int = 10,
        threshold: float | None = None,
        drift: DriftSettings | None = None,
    ) -> None:
        self.agents = agents
        self._drift = (drift or DriftSettings()).monitor(getattr(agents, "observation_reference", None))
        self.last_drift: DriftStatus | None = None
        """The drift status of the last :meth:`request` (None: no reference, or not called yet)."""
        self.n_samples = n_samples
        # the model's own, or the caller's (checked as the model's: finite, >= 0)
        self.threshold: Threshold = (
            agents.uncertainty_threshold if threshold is None else as_threshold(threshold)
        )
        cfg = agents.env_config
        self._window = cfg.window
        self._history = history_length(cfg)
        self._layout = observation_layout(cfg)
        self._obs_index = block_index(cfg.asset_count)
        n = cfg.asset_count
        # the drift monitor's input, written by request's kernel (empty: no monitor)
        self._drift_input = np.zeros(4 * n if self._drift is not None else 0)
        self._rules: dict[str, Any] = {
            "sizer": np.array([1.0], np.float32),
            "stop": np.array([np.clip(sizing.atr_multiplier, *STOP_RANGE), 1.0], np.float32),
            "monitor": int(MonitorAction.NONE),
        }
        # The rules' advice as _gated_advice decodes it (float32 arrays read back as floats)
        self._rule_scale = float(self._rules["sizer"][0])
        rule_stop = np.asarray(self._rules["stop"], np.float64).tolist()
        self._rule_stop = (rule_stop[0], rule_stop[1])
        self._slices = _usual_heads(agents)
        self._atr = StreamingATR(n, ATR_PERIOD)
        self._close: FloatArray | None = None
        self._entry = np.zeros(n)
        self._high = np.zeros(n)
        self._in_position = np.zeros(n, dtype=bool)
        self._age = np.zeros(n, dtype=np.int64)
        self._last_return = 0.0

    @property
    def asset_count(self) -> int:
        """Assets the agents observe."""
        return self.agents.asset_count

    @property
    def asset_names(self) -> tuple[str, ...] | None:
        """The assets the agents were trained on, in order, as their model file records them (or None)."""
        return self.agents.asset_names

    @property
    def history_length(self) -> int:
        """Bars of returns the observation needs (the agents' RSI/momentum/volatility)."""
        return self._history

    @property
    def ready(self) -> bool:
        """Whether the ATR has warmed up (before, :meth:`request` returns None)."""
        return self._atr.count >= self._atr.period

    def observe(
        self,
        close: FloatArray,
        held: FloatArray,
        portfolio_return: float | None,
        stops: FloatArray | None = None,
    ) -> None:
        """Feed one bar's closes, the held weights, the bar's portfolio return and the standing stops.

        ``stops`` are the stop levels of the previous decision (NaN where none): a held asset whose
        close is at or below its stop counts as stopped out and re-entered at this close, as in the
        training environment, whether or not the bot executed the stop. A close that is not a finite
        number > 0 raises ``InvalidInputError`` naming its index, before anything is updated (a NaN
        would otherwise stay in that asset's ATR for good).
        """
        close = np.asarray(close, np.float64)
        held = np.asarray(held, np.float64)
        n = self._entry.shape[0]
        if close.shape != (n,) or held.shape != (n,) or (stops is not None and np.shape(stops) != (n,)):
            raise InvalidInputError(f"close, held and stops must have shape ({n},)")  # no bounds checks below
        bad = first_bad_price_kernel(close)  # NaN included: a NaN ATR would stick
        if bad >= 0:
            raise InvalidInputError(f"close[{bad}] must be a finite price > 0, got {close[bad]!r}")
        if self._close is None:  # the first bar is its own previous close
            self._close = close.copy()
        # The synthetic bar, the ATR and the positions in one kernel (bookkeeping_kernel.py: the
        # arithmetic of the NumPy formulation, bit for bit). A position (re)starts when it is entered,
        # when its close falls through the stop and after POSITION_HORIZON bars held, as in the
        # environment (module docstring); self._close becomes this bar's closes.
        atr = self._atr
        bookkeeping_kernel(
            self._close, close, held, close if stops is None else np.asarray(stops, np.float64),
            stops is not None, WICK, POSITION_HORIZON, atr.prev_close, atr.counts, atr.total, atr.value,
            atr.period, self._entry, self._high, self._in_position, self._age,
        )  # fmt: skip
        if portfolio_return is not None:
            self._last_return = float(portfolio_return)

    def request(self, returns: FloatArray, drawdown: float, exposure: float) -> dict[str, Any] | None:
        """The agents' observations for this bar (a snapshot), or None before the ATR is ready.

        ``returns`` holds at least :attr:`history_length` rows, oldest first, one column per asset.

        Raises
        ------
        InvalidInputError
            ``returns`` of another shape (the feature kernels do not bounds-check).
        """
        check_history(returns, self._history, self._entry.shape[0])
        if not self.ready or self._close is None:
            return None
        # One kernel (observation_kernel.agent_inputs_kernel): the features, the ATR fraction, the
        # drift monitor's input (into self._drift_input) and the three observations, fresh arrays
        # (a snapshot: the worker may still read them while the next bar is requested).
        ok, *observed = agent_inputs_kernel(
            returns, self._window, self._atr.value, self._close, self._high, self._entry,
            self._in_position, float(drawdown), float(exposure), self._last_return, self._obs_index,
            self._drift_input,
        )  # fmt: skip
        if self._drift is not None:
            self.last_drift = self._drift.update(self._drift_input)
        if ok:
            observations: dict[str, Any] = dict(zip(AGENTS, observed, strict=True))
            observations[DRIFT_KEY] = self.last_drift
            return observations
        return self._blocks(returns, self._close, drawdown, exposure)

    def _blocks(
        self, returns: FloatArray, close: FloatArray, drawdown: float, exposure: float
    ) -> dict[str, Any]:
        """:meth:`request`'s observations through the environment's own NumPy blocks (a zero divisor
        in the kernel, where NumPy gives inf and warns); the drift monitor is already updated."""
        market = market_features_kernel(returns, returns.shape[0], self._window, 0)[0]
        atr_frac = np.maximum(self._atr.value / close, ATR_FLOOR)
        blocks = observation_blocks(
            rsi=market[self._layout["rsi"]],
            momentum=market[self._layout["momentum"]],
            volatility=market[self._layout["volatility"]],
            close=close,
            atr_frac=atr_frac,
            high=self._high,
            entry=self._entry,
            in_position=self._in_position,
            drawdown=drawdown,
            exposure=exposure,
            last_return=self._last_return,
        )
        observations: dict[str, Any] = dict(agent_observations(blocks))
        observations[DRIFT_KEY] = self.last_drift
        return observations

    def snapshot_state(self) -> dict[str, Any]:
        """What a graceful restart restores (JSON-able): the bookkeeping :meth:`observe` keeps (the
        ATR, the last closes, each position's entry, high and age, the last portfolio return) and
        the MC-dropout generator's state and the drift monitor's window."""
        atr = self._atr
        return {
            "atr": [atr.counts.tolist(), atr.total.tolist(), atr.value.tolist(), atr.prev_close.tolist()],
            "close": None if self._close is None else self._close.tolist(),
            "entry": self._entry.tolist(),
            "high": self._high.tolist(),
            "in_position": self._in_position.tolist(),
            "age": self._age.tolist(),
            "last_return": self._last_return,
            "rng": self.agents.rng_state,
            "drift": None if self._drift is None else self._drift.state(),
        }

    def restore_state(self, state: Mapping[str, Any]) -> None:
        """Take back :meth:`snapshot_state`; a state of another shape raises ``ValueError`` (or
        ``KeyError`` / ``TypeError``) before anything changes."""
        n = self._entry.shape[0]
        arrays = [np.asarray(a) for a in state["atr"]]
        arrays += [np.asarray(state["entry"]), np.asarray(state["high"])]
        arrays += [np.asarray(state["in_position"]), np.asarray(state["age"])]
        close = None if state["close"] is None else np.asarray(state["close"], np.float64)
        if any(a.shape != (n,) for a in arrays) or (close is not None and close.shape != (n,)):
            raise ValueError(f"risk agents' state is not of {n} assets")
        rng = generator_from_state(state["rng"])  # checked before anything changes
        last_return = float(state["last_return"])
        typed = [
            a.astype(t) for a, t in zip(arrays, (np.int64, *[np.float64] * 5, bool, np.int64), strict=True)
        ]
        if self._drift is not None and state.get("drift") is not None:
            self._drift.restore(state["drift"])  # checks, then changes the window
        self.agents.rng_state = dict(rng.bit_generator.state)
        atr = self._atr
        atr.counts, atr.total, atr.value, atr.prev_close = typed[:4]
        self._close = close
        self._entry, self._high, self._in_position, self._age = typed[4:]
        self._last_return = last_return

    def warm_up(self) -> None:
        """Run a scratch copy through synthetic bars (numba cache loads, first inference) at open."""
        scratch = RiskAgentsAdvisor(self.agents, SizingConfig(), self.n_samples)  # its own drift window
        n, rng = self.asset_count, np.random.default_rng(0)
        returns = rng.normal(0.0, 0.01, (self._history, n))
        close = np.cumprod(1.0 + returns, axis=0)
        for row in close:
            scratch.observe(row, np.full(n, 1.0 / n), 0.0)
        observations = scratch.request(returns, 0.0, 1.0)
        if observations is not None:
            scratch.advise(observations)

    def advise(self, observations: Mapping[str, Any]) -> AgentAdvice:
        """Act with MC dropout, gate against the rules, and decode (inline or in the policy worker).

        Agents of the usual heads (continuous sizer and stop, a discrete monitor) are gated and
        decoded from :meth:`RiskAgents.act_arrays` directly (:meth:`_advice`); other heads through
        :meth:`RiskAgents.act` and :func:`gate`. Both give the same advice.
        """
        slices = self._slices
        if slices is None:
            return self._gated_advice(observations)
        values, choices, spread, novelty = self.agents.act_arrays(observations, self.n_samples)
        acted = (values.tolist(), choices.tolist(), spread.tolist(), novelty.tolist())
        return self._advice(slices, *acted, observations.get(DRIFT_KEY))

    def _advice(
        self,
        slices: tuple[int, int],
        values: list[float],
        choices: list[int],
        spread: list[float],
        novelty: list[float],
        drift: Any,
    ) -> AgentAdvice:
        """:func:`gate` and the decoding of :meth:`_gated_advice` on :meth:`RiskAgents.act_arrays`'
        values (as lists), for the usual heads: the sizer's scale and the stop's two entries start
        at ``slices``, the monitor's choice is last."""
        threshold, overridden = self.threshold, {}
        for k, a in enumerate(AGENTS):
            limit = threshold[a] if isinstance(threshold, Mapping) else threshold
            reason = gate_reason(spread[k], limit, novelty[k], NOVELTY_LIMIT)
            if reason is not None:
                overridden[a] = reason
        sizer, stop = slices
        scale = self._rule_scale if "sizer" in overridden else values[sizer]
        stop_multiple, trailing = (
            self._rule_stop if "stop" in overridden else (values[stop], values[stop + 1])
        )
        monitor = MonitorAction(self._rules["monitor"] if "monitor" in overridden else choices[2])
        return AgentAdvice(
            scale=_clip(scale, 0.0, 1.0),
            stop_multiple=_clip(stop_multiple, *STOP_RANGE),
            trailing=trailing >= 0.5,
            monitor=monitor.name.lower(),
            cut=MONITOR_CUTS[monitor],
            uncertainty=dict(zip(AGENTS, spread, strict=True)),
            overridden=overridden,
            drift=drift,
        )

    def _gated_advice(self, observations: Mapping[str, Any]) -> AgentAdvice:
        """:meth:`advise` for any heads: :meth:`RiskAgents.act`, :func:`gate` against the rules, decoding."""
        proposed = self.agents.act(observations, self.n_samples)
        actions, overridden = gate(proposed, self._rules, self.threshold)
        scale = _clip(float(np.asarray(actions["sizer"]).reshape(-1)[0]), 0.0, 1.0)
        stop = np.asarray(actions["stop"], np.float64).reshape(-1).tolist()
        monitor = MonitorAction(int(actions["monitor"]))
        return AgentAdvice(
            scale=scale,
            stop_multiple=_clip(stop[0], *STOP_RANGE),
            trailing=stop[1] >= 0.5,
            monitor=monitor.name.lower(),
            cut=MONITOR_CUTS[monitor],
            uncertainty=dict(proposed.uncertainty),
            overridden=overridden,
            drift=observations.get(DRIFT_KEY),
        )


def _usual_heads(agents: RiskAgents) -> tuple[int, int] | None:
    """Where the sizer's and the stop's actions start in :meth:`RiskAgents.act_arrays`' values, when
    both are continuous and the monitor discrete (the trained agents' heads); else None."""
    discrete = agents.discrete
    if discrete["sizer"] or discrete["stop"] or not discrete["monitor"] or AGENTS[2] != "monitor":
        return None
    slices = agents.action_slices
    return slices["sizer"][0], slices["stop"][0]


def _clip(value: float, low: float, high: float) -> float:
    """``float(np.clip(value, low, high))`` without NumPy's dispatch, as NumPy 2 clips a float: NaN stays
    NaN and a value equal to a bound is kept (``-0.0`` clipped at ``0.0`` stays ``-0.0``)."""
    return low if value < low else high if value > high else value


def _synthetic_bar(prev: FloatArray, close: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The last row of :func:`~advanced_risk.rl.agents.interface.synthetic_bars` for the closes
    ``[prev, close]`` (the same arithmetic, without stacking the two rows): high and low of one bar."""
    r = np.abs(close / prev - 1.0)
    down = 1.0 - WICK * r
    low = np.minimum(prev, close) * np.where(down <= 0.0, LOW_FLOOR, down)
    return np.maximum(prev, close) * (1.0 + WICK * r), low


def load_risk_agents(
    value: Any,
    sizing: SizingConfig,
    n_samples: int = 10,
    threshold: float | None = None,
    drift: DriftSettings | None = None,
) -> RiskAgentsAdvisor | None:
    """None, a model path or a ``RiskAgents`` -> a :class:`RiskAgentsAdvisor` (or None).

    ``drift`` configures the advisor's drift monitor (default ``DriftSettings()``).

    Raises
    ------
    ModelLoadError
        A path that is missing, corrupt or not a risk-agents model.
    InvalidInputError
        A value of another type.
    """
    if value is None:
        return None
    if isinstance(value, str | os.PathLike):
        path = Path(value)
        if not path.is_file():
            raise ModelLoadError(f"risk agents file not found: {path}")
        value = RiskAgents.load(path)
    if not isinstance(value, RiskAgents):
        kind = type(value).__name__
        raise InvalidInputError(f"risk_agents must be None, a model path or RiskAgents, got {kind}")
    return RiskAgentsAdvisor(value, sizing, n_samples, threshold, drift)
