"""Real data, out of sample: PPO trained on 20 S&P 500 stocks up to 2012, tested on 2013-2022.

Training episodes are random 252-day windows of the train split (returns dated <= 2012-12-31); the
test is ONE path over the whole test split (2013-01-02 .. 2022-12-28, the first ``history_length``
days only warm up the observation), traded by the policy and by equal weight, minimum variance
(trailing 120-day sample covariance, long-only, rebalanced daily) and buy-and-hold, all with 10 bp
costs and the same no-trade band. Sharpe intervals are 95 % moving-block bootstrap (20 days).

Choices (fixed before the final run; every earlier attempt and its test figures are listed in
docs/PPO_IMPLEMENTATION.md): LOG_RETURN reward (terminal wealth), a 5-day return window (fewer, larger
features), observation normalisation, initial log-std -1, gamma = GAE lambda = 0.8, lr 1e-3 with
512-step rollouts of 16 envs and 4 epochs, the actor's cash logit initialised at ``-CASH_PRIOR`` so
the untrained deterministic policy holds ~equal weight (the action mapping itself is unchanged),
partial rebalancing (``rebalance_rate`` 0.2) and a no-trade band of 0.02 (L1), applied to every
strategy alike.

    python examples/evaluate_sp500.py --timesteps 3000000 --save models/ppo_sp500_2012.armodel  # ~3.5 min
    python examples/evaluate_sp500.py --load models/ppo_sp500_2012.armodel   # test the shipped policy
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import torch

from advanced_risk.config import EnvConfig, MarketKind, PPOConfig, RewardKind
from advanced_risk.evaluation.policy import Metric, PolicyStrategy, baselines, evaluate_path, format_report
from advanced_risk.rl.portfolio.env import VectorTradingEnv
from advanced_risk.rl.portfolio.manager import RLPortfolioManager
from advanced_risk.rl.portfolio.market import HistoricalReplay
from advanced_risk.rl.ppo.agent import PPOAgent
from advanced_risk.rl.ppo.model_file import read_model_header

CASH_PRIOR = 4.0
"""Initial cash logit offset: weight of cash ~ exp(-4) / (20 + exp(-4)) ~ 0.1 % at the start."""


def env_config(
    window: int, band: float, rate: float, split: str = "train", reward: str = "log_return"
) -> EnvConfig:
    """The environment shared by training and test (only the split differs)."""
    return EnvConfig(
        asset_count=20,
        market=MarketKind.HISTORICAL,
        split=split,
        train_end="2012-12-31",
        test_start="2013-01-01",
        reward=RewardKind(reward),
        vol_penalty=0.02,
        drawdown_penalty=0.02,
        drawdown_free=0.10,
        cost_penalty=1.0,
        transaction_cost=0.001,
        window=window,
        max_steps=252,
        no_trade_band=band,
        rebalance_rate=rate,
    )


def train(args: argparse.Namespace) -> PPOAgent:
    """Train on the train split; the cash logit starts at ``-CASH_PRIOR`` (equal-weight prior)."""
    cfg = PPOConfig(
        num_envs=16,
        num_steps=args.num_steps,
        update_epochs=args.epochs,
        total_timesteps=args.timesteps,
        learning_rate=args.lr,
        gamma=args.gamma,
        gae_lambda=args.gamma,
        ent_coef=0.0,
        hidden_sizes=(64, 64),
        init_log_std=args.init_log_std,
        device="cpu",
        seed=args.seed,
    )
    env = VectorTradingEnv(
        env_config(args.window, args.band, args.rate, reward=args.reward), cfg.num_envs, seed=args.seed
    )
    agent = PPOAgent(env.observation_dim, env.action_dim, cfg)
    head = agent.network.actor_layers[-1]
    assert isinstance(head, torch.nn.Linear)
    with torch.no_grad():
        head.bias[-1] = -CASH_PRIOR
    agent.train(env)
    return agent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timesteps", type=int, default=3_000_000, help="PPO training steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--window", type=int, default=5, help="return look-back in the observation")
    parser.add_argument("--band", type=float, default=0.02, help="no-trade band (L1 distance)")
    parser.add_argument("--rate", type=float, default=0.2, help="partial rebalancing rate")
    parser.add_argument("--reward", default="log_return", choices=["log_return", "shaped"])
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--num-steps", type=int, default=512, help="rollout steps per env")
    parser.add_argument("--epochs", type=int, default=4, help="PPO epochs per rollout")
    parser.add_argument("--gamma", type=float, default=0.8, help="discount (also GAE lambda)")
    parser.add_argument("--init-log-std", type=float, default=-1.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--load", help="evaluate this saved policy instead of training one")
    parser.add_argument("--save", help="write the trained policy here (RLPortfolioManager.save)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if args.load:
        agent = PPOAgent.load(args.load)
        meta: dict[str, Any] = read_model_header(args.load)["metadata"]["user"]
        args.window, args.band, args.rate = int(meta["window"]), float(meta["band"]), float(meta["rate"])
        args.reward = str(meta["reward"])
    else:
        agent = train(args)
        print(f"training: {time.perf_counter() - t0:.0f} s")
    test = env_config(args.window, args.band, args.rate, "test", args.reward)
    path = HistoricalReplay.from_config(test).returns
    report = evaluate_path([PolicyStrategy(agent), *baselines()], test, path)
    print(f"test 2013-2022, {path.shape[0]} days, window={args.window}, band={args.band}, 10 bp costs")
    print(format_report(report))
    if args.save and not args.load:
        metadata = {
            "train_data": "bundled 20 S&P 500 stocks, returns dated 1990-01-03 .. 2012-12-31",
            "test_data": "2013-01-02 .. 2022-12-28 (never seen in training)",
            "seed": args.seed,
            "window": args.window,
            "band": args.band,
            "rate": args.rate,
            "reward": args.reward,
            "env_config": env_config(args.window, args.band, args.rate, reward=args.reward).to_dict(),
            "command": "python " + " ".join(sys.argv),
            "oos_sharpe": report.values["ppo"][Metric.SHARPE],
            "oos_sharpe_equal_weight": report.values["equal_weight"][Metric.SHARPE],
        }
        train_config = env_config(args.window, args.band, args.rate, reward=args.reward)
        manager = RLPortfolioManager(
            env_config=train_config,
            ppo_config=agent.config,
            agent=agent,
            asset_names=HistoricalReplay.from_config(train_config).tickers,  # the columns it saw
        )
        digest = manager.save(args.save, metadata)  # loadable by AdvancedRiskManager(policy=path)
        print(f"saved {args.save} sha256={digest}")
    held = report.runs["ppo"].mean_weights[0]
    print(
        "policy's average weights:",
        dict(zip([*HistoricalReplay(20).tickers, "cash"], held.round(3).tolist(), strict=True)),
    )
    print(f"wall time: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
