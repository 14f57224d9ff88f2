"""RiskAgents: the trained sizer, stop and monitor agents at inference, with MC-dropout gating.

A :class:`RiskAgents` holds what a trained :class:`~advanced_risk.rl.agents.mappo.MAPPOTrainer` needs to
act: the three actors (as NumPy :class:`AgentActor` snapshots), their observation normalisers and the
action spaces. It is what ``train_ppo_agent.py --agents risk`` saves and what the manager loads
(``RiskConfig.risk_agents_path``). The centralised critic is a training device and is not saved.
Loading and acting need NumPy only (no torch, gymnasium or pettingzoo); building agents from a
trainer's torch actors (:meth:`RiskAgents.from_trainer`) needs the training stack.

File layout (a :mod:`advanced_risk.rl.ppo.model_file` file of kind ``"risk_agents"``): the arrays
``<agent>.actor_layers.<k>.weight`` / ``.bias`` (torch's ``(out, in)`` layout),
``<agent>.actor_logstd`` and, with observation normalisation, ``<agent>.obs_rms.mean`` / ``.var``;
the header's ``metadata.risk_agents`` holds the settings (env config, shapes, thresholds, asset names,
the normalisers' counts) and ``metadata.user`` the caller's metadata.

Acting (:meth:`RiskAgents.act`): each agent's observation is normalised as in training and pushed
through its actor ``n_samples`` times with dropout on (one batched pass per agent). The action is the
mean over the samples: for a continuous agent the mean of the actions rescaled to the action box, for
the monitor the choice with the highest mean probability. The **normalised uncertainty** of an agent
is in ``[0, 1]`` units of its action range:

- continuous: the largest, over action dimensions, population std of the rescaled action over the
  samples divided by the width of the box (``high - low``);
- discrete: the largest, over choices, population std of the choice's probability over the samples.

:func:`gate` replaces every agent whose uncertainty exceeds the threshold (default 0.1) with the
rule-based action and says which agents were overridden and why; the manager and the evaluation use
the same function.

One module because the agents' arrays, their model file and the gated act that reads them describe
one object, :class:`RiskAgents`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from numpy.typing import NDArray

from advanced_risk.config import EnvConfig
from advanced_risk.errors import InvalidInputError, ModelLoadError
from advanced_risk.logs import get_logger
from advanced_risk.monitoring.drift import FeatureReference
from advanced_risk.rl.agents.decode import decode_kernel, fused_input_kernel, shifted_logits_kernel
from advanced_risk.rl.agents.interface import ACTION_BOUNDS, AGENTS, obs_dim, shared_actor_rows
from advanced_risk.rl.agents.runner import AgentsRunner, runner_applies
from advanced_risk.rl.portfolio.asset_names import AssetNames, check_asset_names, stored_asset_names
from advanced_risk.rl.portfolio.drift import REFERENCE_KEY, stored_reference
from advanced_risk.rl.ppo.inference import DropoutGenerator, NumpyPolicy
from advanced_risk.rl.ppo.io import check_weights
from advanced_risk.rl.ppo.model_file import Arrays, read_model_file, write_model_file
from advanced_risk.rl.ppo.normalize import RunningMeanStd

if TYPE_CHECKING:
    from advanced_risk.rl.agents.mappo import AgentPolicy, MAPPOTrainer

__all__ = [
    "DEFAULT_AGENT_UNCERTAINTY",
    "MODEL_KIND",
    "NOVELTY_LIMIT",
    "AgentActor",
    "AgentsAction",
    "RiskAgents",
    "Threshold",
    "as_threshold",
    "gate",
    "gate_reason",
]

log = get_logger(__name__)

MODEL_KIND = "risk_agents"
DEFAULT_AGENT_UNCERTAINTY = 0.1
"""Normalised MC-dropout std above which an agent is replaced by its rule (when none is calibrated)."""


NOVELTY_LIMIT = 10.0
"""Largest |z-score| of an observation entry (against the training normaliser) the agents are
trusted with; the same as the normaliser's clip, beyond which the network cannot tell values apart."""


@dataclass(frozen=True, slots=True)
class AgentsAction:
    """The agents' joint action (as :class:`RiskAgentsEnv` takes it), uncertainty and novelty.

    ``novelty`` is, per agent, the largest |z-score| of its observation against the training
    normaliser's statistics (empty for agents trained without observation normalisation).
    """

    actions: dict[str, Any]
    uncertainty: dict[str, float]
    novelty: dict[str, float] = field(default_factory=dict)


Threshold = float | Mapping[str, float]
"""One threshold for every agent, or one per agent (e.g. calibrated: their scales differ)."""


def gate(
    proposed: AgentsAction,
    rules: Mapping[str, Any],
    threshold: Threshold = DEFAULT_AGENT_UNCERTAINTY,
    novelty_limit: float | None = NOVELTY_LIMIT,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Keep confident agents' actions, replace the others by ``rules``: ``(actions, overridden)``.

    ``overridden`` maps each replaced agent to the reason, e.g. ``"uncertainty 0.23 > 0.1"``. An agent
    whose uncertainty is not finite is replaced too. ``threshold`` is one value for all agents or a
    mapping agent -> value. An agent whose observation lies more than ``novelty_limit`` standard
    deviations from its training data in some entry is replaced as well (``"observation 14 std
    from training data > 10"``): MC dropout on an actor trained without dropout reacts only weakly to
    such inputs (docs/risk_agents.md), so out-of-distribution input is also caught directly.

    Examples
    --------
    >>> act = AgentsAction({"sizer": 0.9, "monitor": 0}, {"sizer": 0.02, "monitor": 0.4})
    >>> gate(act, {"sizer": 1.0, "monitor": 1})
    ({'sizer': 0.9, 'monitor': 1}, {'monitor': 'uncertainty 0.4 > 0.1'})
    """
    actions, overridden = {}, {}
    for agent, action in proposed.actions.items():
        limit = threshold[agent] if isinstance(threshold, Mapping) else threshold
        reason = gate_reason(
            proposed.uncertainty[agent], limit, proposed.novelty.get(agent, 0.0), novelty_limit
        )
        if reason is not None:
            overridden[agent] = reason
        actions[agent] = rules[agent] if agent in overridden else action
    return actions, overridden


def gate_reason(uncertainty: float, limit: float, novelty: float, novelty_limit: float | None) -> str | None:
    """Why :func:`gate` replaces one agent by its rule, or None to keep it.

    The novelty is checked first (deterministic): ``novelty`` (largest |z-score|, 0.0 without
    normalisers) above ``novelty_limit``, or NaN, replaces the agent; then an ``uncertainty`` that is
    not finite or above ``limit``.
    """
    if novelty_limit is not None and not novelty <= novelty_limit:
        return f"observation {novelty:.3g} std from training data > {novelty_limit:g}"
    if not (math.isfinite(uncertainty) and uncertainty <= limit):
        return f"uncertainty {uncertainty:.3g} > {limit:.3g}"
    return None


@dataclass(frozen=True, slots=True)
class AgentActor:
    """One agent's actor for acting: its NumPy MLP and the shape of its input and output.

    Attributes
    ----------
    network : the actor's weights (:class:`~advanced_risk.rl.ppo.inference.NumpyPolicy`, no
        normaliser: :class:`RiskAgents` normalises the observations).
    obs_dim : length of the actor's input (the agent's observation; with a shared actor the longest
        observation plus the agents' one-hot id).
    n_out : outputs the agent reads: its action length, or its number of choices when discrete.
    discrete : a categorical agent (the monitor) whose outputs are logits.
    """

    network: NumpyPolicy
    obs_dim: int
    n_out: int
    discrete: bool

    @property
    def head_dim(self) -> int:
        """Outputs of the actor's head (``>= n_out``; larger for a shared actor)."""
        return self.network.action_dim

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        """Widths of the actor's hidden layers."""
        return tuple(int(w.shape[1]) for w in self.network.weights[:-1])

    @classmethod
    def from_network(cls, policy: AgentPolicy, obs_clip: float = 10.0) -> AgentActor:
        """A NumPy snapshot of a trainer's torch actor (an ``AgentPolicy``)."""
        net = policy.numpy_policy(None, obs_clip)
        return cls(net, int(policy.obs_dim), int(policy.n_out), bool(policy.discrete))


class RiskAgents(DropoutGenerator):
    """Trained risk agents for inference (see the module docstring).

    Parameters
    ----------
    policies : agent name (``sizer``, ``stop``, ``monitor``) -> :class:`AgentActor`, or a trainer's
        :class:`~advanced_risk.rl.agents.mappo.AgentPolicy` (snapshotted into an ``AgentActor``).
    obs_rms : agent name -> the observation normaliser of training (None: no normalisation).
    env_config : the environment the agents were trained on (asset count, window).
    share_parameters : whether the actors share one MLP (padded input with the agent's one-hot id).
    obs_clip : the clip of normalised observations used in training.
    uncertainty_threshold : the gate's threshold stored with the model (default 0.1).
    seed : seed of the dropout masks drawn by :meth:`act` (None: fresh entropy).
    asset_names : the assets the agents were trained on, in the order of their observations (e.g.
        the training data's tickers); saved with the model. None (default): unnamed.

    Raises
    ------
    InvalidInputError
        Not exactly the three agents, or an actor whose input width does not fit ``env_config``
        (and ``share_parameters``).

    Notes
    -----
    Acting uses NumPy copies of the actors' weights taken at construction (the maths of
    :class:`~advanced_risk.rl.ppo.inference.NumpyPolicy`); later changes to a trainer's actors are not
    seen.
    """

    def __init__(
        self,
        policies: Mapping[str, AgentActor | AgentPolicy],
        obs_rms: Mapping[str, RunningMeanStd] | None,
        env_config: EnvConfig,
        *,
        share_parameters: bool = False,
        obs_clip: float = 10.0,
        uncertainty_threshold: Threshold = DEFAULT_AGENT_UNCERTAINTY,
        seed: int | None = None,
        asset_names: Iterable[str] | None = None,
    ) -> None:
        if set(policies) != set(AGENTS):
            raise InvalidInputError(f"policies must be exactly {list(AGENTS)}, got {sorted(policies)}")
        self.obs_clip = float(obs_clip)
        self.policies = {a: _as_actor(policies[a], self.obs_clip) for a in AGENTS}
        self.obs_rms = None if obs_rms is None else {a: obs_rms[a] for a in AGENTS}
        self.env_config = env_config
        self._asset_names = check_asset_names(asset_names, env_config.asset_count)
        self.share_parameters = share_parameters
        self.uncertainty_threshold: Threshold = as_threshold(uncertainty_threshold)
        self.obs_dims = {a: obs_dim(a, env_config.asset_count) for a in AGENTS}
        self._pad = max(self.obs_dims.values())
        for a, p in self.policies.items():
            width = self._pad + len(AGENTS) if share_parameters else self.obs_dims[a]
            if p.obs_dim != width or p.network.obs_dim != width or not 0 < p.n_out <= p.head_dim:
                raise InvalidInputError(
                    f"policies[{a!r}] takes {p.network.obs_dim} inputs and has {p.head_dim} outputs "
                    f"({p.n_out} read); asset_count={env_config.asset_count} and "
                    f"share_parameters={share_parameters} need {width} inputs"
                )
        self.discrete = {a: self.policies[a].discrete for a in AGENTS}
        # The three actors side by side (block-diagonal weights): one MC-dropout pass for all
        # agents. Each agent's outputs are exactly its own actor's (the off-diagonal blocks are zero
        # and every unit has its own mask).
        self._fused = _fuse([p.network for p in self.policies.values()])
        self._decoding = _Decoding.of(self.policies)
        self._inputs = _Inputs.of(self.obs_rms, self.obs_dims, self._pad, share_parameters)
        self._dims = tuple((self.obs_dims[a],) for a in AGENTS)  # the observations' shapes
        self._runner: AgentsRunner | None = None  # the buffered act, built on first use
        self._rng = np.random.default_rng(seed)
        self.observation_reference: FeatureReference | None = None
        """Training statistics of the agents' shared market features (``rl/agents/drift.py``): read
        from and saved to ``metadata.user.observation_reference``; None: no drift tracking."""

    def __getstate__(self) -> dict[str, Any]:
        """Pickled and copied without the buffered act (its lock does not pickle; rebuilt on use)."""
        state = self.__dict__.copy()
        state["_runner"] = None
        return state

    @property
    def asset_count(self) -> int:
        """Number of assets the agents observe."""
        return self.env_config.asset_count

    @property
    def asset_names(self) -> AssetNames | None:
        """The assets the agents were trained on, in observation order (None: unnamed).

        Saved with the model and restored by :meth:`load`; a file saved without names loads with None.
        Setting it validates the names (``InvalidInputError``).
        """
        return self._asset_names

    @asset_names.setter
    def asset_names(self, names: Iterable[str] | None) -> None:
        self._asset_names = check_asset_names(names, self.asset_count)

    @classmethod
    def from_trainer(
        cls,
        trainer: MAPPOTrainer,
        uncertainty_threshold: Threshold = DEFAULT_AGENT_UNCERTAINTY,
        asset_names: Iterable[str] | None = None,
    ) -> Self:
        """The trainer's actors and normalisers as they are now (a snapshot for acting)."""
        cfg = trainer.config
        return cls(
            trainer.policies,
            trainer.obs_rms if cfg.norm_obs else None,
            trainer.envs[0].config,
            share_parameters=trainer.share_parameters,
            obs_clip=cfg.obs_clip,
            uncertainty_threshold=uncertainty_threshold,
            asset_names=asset_names,
        )

    # -- acting -----------------------------------------------------------------------------------------
    def _given(self, obs: Mapping[str, NDArray[np.floating]]) -> tuple[NDArray[np.floating], ...]:
        """The three observations as ``decode.fused_input_kernel`` reads them: 1-D float32 or float64
        arrays (one dtype) of the right lengths, as given; anything else converted (and checked)
        one by one (``InvalidInputError``)."""
        given = (obs[AGENTS[0]], obs[AGENTS[1]], obs[AGENTS[2]])
        first = given[0]
        dtype = first.dtype if type(first) is np.ndarray else None
        if dtype is not None and (dtype == np.float64 or dtype == np.float32):
            same = True
            for o, dim in zip(given, self._dims, strict=True):
                same = same and type(o) is np.ndarray and o.dtype == dtype and o.shape == dim
            if same:
                return given
        return tuple(self._observation(a, o) for a, o in zip(AGENTS, given, strict=True))

    def _observation(self, agent: str, obs: Any) -> NDArray[np.float64]:
        """``obs`` as a 1-D float64 array of the agent's observation length (else ``InvalidInputError``)."""
        x = np.asarray(obs, dtype=np.float64).reshape(-1)
        if x.shape[0] != self.obs_dims[agent]:
            raise InvalidInputError(
                f"obs[{agent!r}] has {x.shape[0]} values, expected {self.obs_dims[agent]} "
                f"(asset_count={self.asset_count})"
            )
        return x

    def reseed(self, seed: int | None) -> None:
        """Restart the generator of the MC-dropout masks (reproducible evaluations)."""
        self._rng = np.random.default_rng(seed)

    def act(self, obs: Mapping[str, NDArray[np.floating]], n_samples: int = 10) -> AgentsAction:
        """MC-dropout mean action of every agent and its normalised uncertainty (module docstring).

        The arithmetic is :meth:`act_arrays`'; the actions returned are the caller's own arrays.
        """
        values, choices, spread, novelty = self.act_arrays(obs, n_samples)
        actions: dict[str, Any] = {}
        for a, choice, (start, stop) in zip(AGENTS, choices.tolist(), self._decoding.actions, strict=True):
            actions[a] = choice if self.discrete[a] else values[start:stop].copy()
        uncertainty = dict(zip(AGENTS, spread.tolist(), strict=True))
        known = {} if self.obs_rms is None else dict(zip(AGENTS, novelty.tolist(), strict=True))
        return AgentsAction(actions, uncertainty, known)

    def act_arrays(
        self, obs: Mapping[str, NDArray[np.floating]], n_samples: int = 10
    ) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
        """:meth:`act` as arrays: ``(values, choices, uncertainty, novelty)``, views that the next
        call may overwrite (read them at once).

        ``values`` holds the continuous agents' actions side by side (:attr:`action_slices`),
        ``choices`` each agent's choice (-1 for a continuous agent), ``uncertainty`` and ``novelty``
        one float per agent in :data:`AGENTS` order (novelty 0 without normalisers). With dropout
        and two samples or more, one :class:`~advanced_risk.rl.agents.runner.AgentsRunner` computes
        them in buffers allocated once; else the decoding runs in two kernels around one ``np.exp``
        (``rl/agents/decode.py``), with NumPy's arithmetic and summation order. Both give the same
        bits and draw the same masks.
        """
        if n_samples < 1:
            raise InvalidInputError(f"n_samples must be >= 1, got {n_samples}")
        given = self._given(obs)
        runner = self._runner_for(n_samples)
        acted = None if runner is None else runner.run(given, self._rng)
        if acted is not None:
            return acted
        inp, net, dec = self._inputs, self._fused, self._decoding
        x, novelty = fused_input_kernel(
            given, inp.mean, inp.scale, self.obs_clip, self.obs_rms is not None, inp.template, inp.positions
        )
        raw = net.mc_samples(x, n_samples, self._rng) if n_samples > 1 else net.mean_action(x)[None]
        logits = shifted_logits_kernel(raw, dec.spec, dec.logit_width)
        np.exp(logits, out=logits)
        values, choices, spread = decode_kernel(raw, logits, dec.spec, dec.low, dec.high)
        return values, choices, spread, novelty

    @property
    def action_slices(self) -> dict[str, tuple[int, int]]:
        """Each agent's ``(start, stop)`` in :meth:`act_arrays`' values (``(0, 0)``: a discrete agent)."""
        return dict(zip(AGENTS, self._decoding.actions, strict=True))

    def _runner_for(self, n_samples: int) -> AgentsRunner | None:
        """The buffered act for ``n_samples`` (built on first use), or None where it does not apply."""
        runner = self._runner
        if runner is not None and runner.n_samples == n_samples:
            return runner
        if not runner_applies(self._fused, n_samples):
            return None
        inp, dec = self._inputs, self._decoding
        runner = AgentsRunner(
            self._fused,
            (inp.mean, inp.scale, inp.template, inp.positions, self.obs_clip, self.obs_rms is not None),
            (dec.spec, dec.low, dec.high, dec.logit_width),
            n_samples,
        )
        self._runner = runner
        return runner

    # -- persistence ------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], metadata: Mapping[str, Any] | None = None) -> str:
        """Write the agents (atomic, SHA-256, see :mod:`~advanced_risk.rl.ppo.model_file`); return the digest.

        The settings (``metadata.risk_agents`` in the header) include :attr:`asset_names`;
        ``metadata`` (JSON values: data, command, ...) is stored beside them as ``metadata.user``,
        with :attr:`observation_reference` (when set) under ``observation_reference`` unless
        ``metadata`` has one.
        """
        first = self.policies[AGENTS[0]]
        rms = self.obs_rms
        settings = {
            "env_config": self.env_config.to_dict(),
            "share_parameters": self.share_parameters,
            "obs_clip": self.obs_clip,
            "uncertainty_threshold": as_threshold(self.uncertainty_threshold),
            "hidden_sizes": list(first.hidden_sizes),
            "dropout": first.network.dropout,
            "actor_dims": {a: p.obs_dim for a, p in self.policies.items()},
            "head_dims": {a: p.head_dim for a, p in self.policies.items()},
            "outputs": {a: p.n_out for a, p in self.policies.items()},
            "discrete": dict(self.discrete),
            "obs_rms_count": None if rms is None else {a: r.count for a, r in rms.items()},
            "asset_names": None if self._asset_names is None else list(self._asset_names),
        }
        arrays: Arrays = {}
        for a, p in self.policies.items():
            arrays |= _actor_arrays(a, p.network)
            if rms is not None:
                arrays[f"{a}.obs_rms.mean"], arrays[f"{a}.obs_rms.var"] = rms[a].mean, rms[a].var
        user = dict(metadata or {})
        if self.observation_reference is not None:
            user.setdefault(REFERENCE_KEY, self.observation_reference.to_dict())
        digest = write_model_file(path, arrays, {"risk_agents": settings, "user": user}, kind=MODEL_KIND)
        log.info("risk_agents_saved", path=str(path), sha256=digest)
        return digest

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, seed: int | None = 0) -> Self:
        """Load agents written by :meth:`save` (NumPy only: torch is not needed).

        Parameters
        ----------
        path : the model file.
        seed : seed of the MC-dropout masks drawn by :meth:`act`. The default (0) makes a replay of
            the same bars give the same decisions, as the PPO policy's seeded inference does; None
            draws fresh entropy.

        Raises
        ------
        ModelLoadError
            Missing, truncated or corrupt file, another kind of model, weights that do not fit
            the stored settings or are not finite floats (a negative normaliser variance
            included), or invalid stored asset names. A file saved without asset names
            loads with ``asset_names = None``.
        """
        header, arrays = read_model_file(path, kind=MODEL_KIND)
        check_weights(arrays, path, nonnegative=("obs_rms.var",))
        try:
            s = header["metadata"]["risk_agents"]
            env_config = EnvConfig.from_dict(s["env_config"])
            names = stored_asset_names(s.get("asset_names"), env_config.asset_count, path)
            obs_clip = float(s["obs_clip"])
            policies = {a: _stored_actor(arrays, s, a, obs_clip) for a in AGENTS}
            agents = cls(
                policies, _stored_rms(arrays, s["obs_rms_count"], env_config.asset_count), env_config,
                share_parameters=bool(s["share_parameters"]), obs_clip=obs_clip,
                uncertainty_threshold=as_threshold(s["uncertainty_threshold"]), seed=seed, asset_names=names,
            )  # fmt: skip
        except (KeyError, TypeError, ValueError, InvalidInputError) as exc:
            raise ModelLoadError(f"model file {path} does not hold valid risk agents: {exc}") from exc
        user = header["metadata"].get("user") or {}
        agents.observation_reference = stored_reference(user, 4 * env_config.asset_count, path)
        log.info("risk_agents_loaded", path=str(path), asset_count=env_config.asset_count)
        return agents

    @classmethod
    def untrained(cls, env_config: EnvConfig | None = None, seed: int = 0) -> Self:
        """Freshly initialised agents (for tests and benchmarks): near mid-range actions. Needs torch."""
        from advanced_risk.config import PPOConfig
        from advanced_risk.rl.agents.env import RiskAgentsEnv
        from advanced_risk.rl.agents.mappo import MAPPOTrainer

        cfg = env_config if env_config is not None else EnvConfig(asset_count=3)
        trainer = MAPPOTrainer(
            lambda: RiskAgentsEnv(cfg),
            PPOConfig(num_envs=1, num_steps=8, num_minibatches=1, device="cpu", seed=seed, norm_obs=False),
        )
        return cls.from_trainer(trainer)


def _as_actor(policy: AgentActor | AgentPolicy, obs_clip: float) -> AgentActor:
    """``policy`` itself, or the NumPy snapshot of a trainer's torch actor."""
    if isinstance(policy, AgentActor):
        return policy
    return AgentActor.from_network(policy, obs_clip)


def _actor_arrays(agent: str, net: NumpyPolicy) -> Arrays:
    """An actor's weights under torch's state-dict names and layout (read back by ``from_state_dict``)."""
    arrays: Arrays = {f"{agent}.actor_logstd": net.log_std.reshape(1, -1)}
    for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        arrays[f"{agent}.actor_layers.{k}.weight"] = np.ascontiguousarray(w.T)
        arrays[f"{agent}.actor_layers.{k}.bias"] = b
    return arrays


def _stored_actor(arrays: Arrays, settings: Mapping[str, Any], agent: str, obs_clip: float) -> AgentActor:
    """An agent's actor from a file's arrays, checked against the stored settings (``ValueError``)."""
    net = NumpyPolicy.from_state_dict(
        arrays, dropout=float(settings["dropout"]), obs_clip=obs_clip, prefix=f"{agent}."
    )
    actor = AgentActor(
        net,
        int(settings["actor_dims"][agent]),
        int(settings["outputs"][agent]),
        bool(settings["discrete"][agent]),
    )
    hidden = tuple(int(h) for h in settings["hidden_sizes"])
    stored = (actor.obs_dim, hidden, int(settings["head_dims"][agent]))
    if (net.obs_dim, actor.hidden_sizes, actor.head_dim) != stored:
        raise ValueError(
            f"{agent}: weights for {net.obs_dim} inputs, hidden layers {actor.hidden_sizes} and "
            f"{actor.head_dim} outputs; the settings say {stored[0]}, {stored[1]} and {stored[2]}"
        )
    return actor


def _stored_rms(
    arrays: Arrays, counts: Mapping[str, Any] | None, asset_count: int
) -> dict[str, RunningMeanStd] | None:
    """The agents' observation normalisers from a file's arrays (None: saved without normalisation)."""
    if counts is None:
        return None
    rms = {a: RunningMeanStd((obs_dim(a, asset_count),)) for a in AGENTS}
    for a, r in rms.items():
        r.load_state_dict(
            {"mean": arrays[f"{a}.obs_rms.mean"], "var": arrays[f"{a}.obs_rms.var"], "count": counts[a]}
        )
    return rms


def as_threshold(value: Any) -> float | dict[str, float]:
    """The gate's uncertainty threshold as plain JSON values: a float, or a dict with a float for
    every agent; each finite and >= 0 (a negative or NaN threshold would send every decision to the
    rules without saying so). Raises ``InvalidInputError`` naming ``uncertainty_threshold``."""
    if isinstance(value, Mapping):
        if set(value) != set(AGENTS):
            raise InvalidInputError(
                f"uncertainty_threshold needs one value per agent {list(AGENTS)}, got {value}"
            )
        return {a: _non_negative(value[a], f"uncertainty_threshold[{a!r}]") for a in AGENTS}
    return _non_negative(value, "uncertainty_threshold")


def _non_negative(value: Any, name: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number >= 0, got {value!r}") from None
    if not (math.isfinite(x) and x >= 0.0) or isinstance(value, bool):
        raise InvalidInputError(f"{name} must be a finite number >= 0, got {value!r}")
    return x


def _fuse(nets: list[NumpyPolicy]) -> NumpyPolicy:
    """The actors side by side: inputs and outputs concatenated, block-diagonal weights."""

    def block_diag(blocks: list[NDArray[np.float32]]) -> NDArray[np.float32]:
        out = np.zeros((sum(b.shape[0] for b in blocks), sum(b.shape[1] for b in blocks)), np.float32)
        r = c = 0
        for b in blocks:
            out[r : r + b.shape[0], c : c + b.shape[1]] = b
            r, c = r + b.shape[0], c + b.shape[1]
        return out

    layers = range(len(nets[0].weights))
    return NumpyPolicy(
        weights=tuple(block_diag([n.weights[k] for n in nets]) for k in layers),
        biases=tuple(np.concatenate([n.biases[k] for n in nets]) for k in layers),
        log_std=np.concatenate([n.log_std for n in nets]),
        dropout=nets[0].dropout,
        obs_mean=None,
        obs_scale=None,
        obs_clip=nets[0].obs_clip,
    )


@dataclass(frozen=True, slots=True)
class _Inputs:
    """Where each observation value goes in the fused actor input, and its normaliser's statistics.

    ``mean`` / ``scale`` are the three normalisers' statistics concatenated in :data:`AGENTS` order as
    ``RunningMeanStd.normalize`` uses them (scale ``sqrt(var + 1e-8)``; empty without normalisers);
    ``template`` is the fused input with every observation value 0 (a shared actor's padding and
    one-hot ids in place) and ``positions`` the column of each observation value.
    """

    mean: NDArray[np.float64]
    scale: NDArray[np.float64]
    template: NDArray[np.float32]
    positions: NDArray[np.int64]

    @classmethod
    def of(
        cls, rms: Mapping[str, RunningMeanStd] | None, dims: Mapping[str, int], pad: int, shared: bool
    ) -> _Inputs:
        """The layout for observations of ``dims`` (``InvalidInputError``: a normaliser of another shape)."""
        rows, positions, start = [], [], 0
        for k, a in enumerate(AGENTS):
            zero = np.zeros((1, dims[a]), np.float32)
            rows.append(shared_actor_rows(zero, k, len(AGENTS), pad) if shared else zero)
            positions.append(start + np.arange(dims[a]))
            start += rows[-1].shape[1]
        if rms is not None and any(rms[a].mean.shape != (dims[a],) for a in AGENTS):
            shapes = {a: rms[a].mean.shape for a in AGENTS}
            raise InvalidInputError(f"obs_rms shapes {shapes} do not fit the observations {dict(dims)}")
        stats = [(r.mean, np.sqrt(r.var + 1e-8)) for r in (rms or {}).values()]
        return cls(
            mean=np.concatenate([m for m, _ in stats], dtype=np.float64) if stats else np.zeros(0),
            scale=np.concatenate([s for _, s in stats], dtype=np.float64) if stats else np.zeros(0),
            template=np.concatenate(rows, axis=1),
            positions=np.concatenate(positions).astype(np.int64),
        )


@dataclass(frozen=True, slots=True)
class _Decoding:
    """The heads as ``decode.decode_kernel`` reads them (``spec``, ``low``, ``high``: see decode.py).

    ``logit_width`` is the discrete heads' total width, ``actions`` each agent's ``(start, stop)`` in
    the kernel's continuous actions (``(0, 0)`` for a discrete agent).
    """

    spec: NDArray[np.int64]
    low: NDArray[np.float64]
    high: NDArray[np.float64]
    logit_width: int
    actions: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, policies: Mapping[str, AgentActor]) -> _Decoding:
        """The heads of ``policies`` (``InvalidInputError``: a continuous agent without an action box
        of its width in :data:`ACTION_BOUNDS`)."""
        spec: list[tuple[int, int, int, int]] = []
        low: list[float] = []
        high: list[float] = []
        actions: list[tuple[int, int]] = []
        first = logit_width = 0
        for a in AGENTS:
            p = policies[a]
            if p.discrete:
                spec.append((first, p.n_out, 1, logit_width))
                actions.append((0, 0))
                logit_width += p.n_out
            else:
                box_low, box_high = ACTION_BOUNDS.get(a, ((), ()))
                if len(box_low) != p.n_out:
                    raise InvalidInputError(f"{a}: {p.n_out} continuous outputs, action box {box_low}")
                spec.append((first, p.n_out, 0, len(low)))
                actions.append((len(low), len(low) + p.n_out))
                low, high = low + list(box_low), high + list(box_high)
            first += p.head_dim
        return cls(
            spec=np.array(spec, np.int64),
            low=np.array(low, np.float64),
            high=np.array(high, np.float64),
            logit_width=logit_width,
            actions=tuple(actions),
        )
