"""A/B of the manager's latency: an earlier commit against the working tree, alternated in one session.

Across days (and hours) this machine's absolute figures move more than most changes do, so a change
is judged by alternating the two versions: each round runs one process on ``--before`` (checked out
with ``git worktree`` into a temporary folder) and one on the working tree, each timing two modes of
``bench_manager.py`` with its own set-up (20 assets, untrained models, state in memory): the sync
twin with the PPO policy and async with the policy and the risk agents, ``--calls`` timed calls
each. The machine's drift then falls on both versions alike; the spread between rounds is the noise.
The last column is the sync twin's mean latency on the bars that start a GJR-GARCH refit (one bar
in 250: the returns go to the worker process), the periodic spike of the tail.

Run:  python benchmarks/ab_manager.py --before 3d81840 [--rounds 3] [--calls 3000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: run in a child process with the version's ``src`` first on the path and its ``benchmarks`` folder
CHILD = """
import asyncio, gc, sys
import numpy as np, torch
sys.path.insert(0, sys.argv[1] + "/benchmarks")
import bench_manager as bm
from advanced_risk import AdvancedRiskManager, EnvConfig, PPOConfig, RiskConfig
from advanced_risk.rl.agents.policy import RiskAgents
from advanced_risk.rl.portfolio.manager import RLPortfolioManager

torch.set_num_threads(1)
calls = int(sys.argv[2])
tickers, rets, prices = bm._bars(calls)
inputs = [bm._inputs(tickers, rets[i], prices[i]) for i in range(rets.shape[0])]
policy = RLPortfolioManager(env_config=EnvConfig(asset_count=20), ppo_config=PPOConfig(device="cpu"))
agents = RiskAgents.untrained(EnvConfig(asset_count=20))
fast = RiskConfig(deadline_ms=50.0, rate_limit_per_s=None)
from advanced_risk.engine.refits import GarchRefits
started, calls_made, plain = [], [0], GarchRefits.start_if_due

def start_if_due(self, tracker, *book):  # which decisions start a refit (book: newer versions)
    idle = self._job is None
    plain(self, tracker, *book)
    if idle and self._job is not None:
        started.append(calls_made[0])

GarchRefits.start_if_due = start_if_due
gc.collect()
gc.freeze()

async def with_agents():
    async with AdvancedRiskManager(fast, policy=policy, risk_agents=agents) as risk:
        return await bm._time_async(risk, inputs)

risk = AdvancedRiskManager(fast, policy=policy)
sync, plain_sync = [], risk.manage_risk_sync

def counted(*args):
    calls_made[0] += 1
    return plain_sync(*args)

risk.manage_risk_sync = counted
sync = np.array(bm._time_sync(risk, inputs)) * 1e6
risk.close_sync()
refit = [sync[i - 1 - bm.WARMUP] for i in started if i - 1 >= bm.WARMUP]
both = np.array(asyncio.run(with_agents())) * 1e6
print(*np.percentile(sync, [50, 99]), *np.percentile(both, [50, 99]), np.mean(refit))
"""


def _run(tree: Path, calls: int) -> list[float]:
    """p50/p99 (us) of sync PPO and async PPO + agents, and the sync refit bars' mean, on ``tree``'s code."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tree), str(calls)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [float(v) for v in out.split()[-5:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the commit to compare against (any git revision)")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of processes, alternated (default 3)")
    parser.add_argument("--calls", type=int, default=3000, help="timed calls per mode (default 3000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old), args.before], check=True
        )
        try:
            print(f"A/B, {args.calls} timed calls per mode, before = {args.before}, after = working tree")
            head = f"{'round':<6}{'version':<8}{'sync PPO p50 / p99':>24}{'async PPO + agents p50 / p99':>34}"
            print(head + f"{'sync refit bars':>18}")
            for r in range(1, args.rounds + 1):
                for name, tree in (("before", old), ("after", ROOT)):
                    s50, s99, a50, a99, refit = _run(tree, args.calls)
                    print(
                        f"{r:<6}{name:<8}{s50:>10.0f} / {s99:>5.0f} us{a50:>20.0f} / {a99:>5.0f} us"
                        f"{refit:>15.0f} us",
                        flush=True,
                    )
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=True)


if __name__ == "__main__":
    main()
