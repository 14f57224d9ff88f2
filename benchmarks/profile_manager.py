"""Where a decision's microseconds go: per-step timings and a pyinstrument profile (20 assets).

Usage::

    python benchmarks/profile_manager.py [--calls 2000] [--profile [--mode sync|async|arrays]]
    python benchmarks/profile_manager.py --latency [--calls 2000]
    python benchmarks/profile_manager.py --memory [--calls 2000]
    python benchmarks/profile_manager.py --flow [--calls 2000] [--idle-ms 2]
    python benchmarks/profile_manager.py --journal [--calls 6000]
    python benchmarks/profile_manager.py --census [--calls 300]

Replays the bundled 20 S&P 500 stocks through a manager with the shipped PPO policy
(``models/ppo_sp500_2012.armodel``, 10 MC-dropout samples) and the shipped risk agents
(``models/risk_agents_sp500.armodel``), state in memory. Without ``--profile`` it prints the median
cost of each step of the sync twin (parse, observe, the policy's observation and MC dropout, the
agents' request and advice, decide, the journal's JSON encoding), timed one by one on the same
bars; with ``--profile`` it prints pyinstrument's call tree of ``--calls`` decisions of ``--mode``;
``--latency`` times each entry point and inference path, ``--memory`` measures with tracemalloc
the bytes each decision allocates (its transient peak) and the growth over ``--calls`` decisions,
``--flow`` times each step where it runs inside consecutive decisions (the steps then add up;
``--idle-ms`` waits between them, as a bot between bars, so the journal commits outside them);
``--census`` counts the C-level calls, Python frames and numba kernel calls of each sync decision
with the policy (no agents), ``--journal`` times back-to-back async decisions in blocks of 250,
alternating within one process
the journal thread's linger (2 ms; 50 ms, a file's default; 1 s, a memory store's) and no journal
at all (rows not queued), so the machine's drift over the run falls on every variant alike.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig
from advanced_risk.data import load_sp500_stocks

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "models" / "ppo_sp500_2012.armodel"
AGENTS = ROOT / "models" / "risk_agents_sp500.armodel"
WARMUP = 300


def bars(calls: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Tickers, returns and closes of ``WARMUP + calls`` bars (the history wrapped around)."""
    prices = load_sp500_stocks()
    px = prices.to_numpy()
    rets = px[1:] / px[:-1] - 1.0
    idx = np.arange(WARMUP + calls) % rets.shape[0]
    return list(prices.columns), rets[idx], px[1:][idx]


def equal_book(tickers: list[str]) -> Portfolio:
    """The equal-weight book every run holds (the same object each bar)."""
    return Portfolio(weights=dict.fromkeys(tickers, 1.0 / len(tickers)), equity=1.0, current_drawdown=0.01)


def market_at(tickers: list[str], rets: np.ndarray, prices: np.ndarray, i: int) -> MarketState:
    """Bar ``i`` as a dict-built ``MarketState`` (returns and closes)."""
    return MarketState(
        returns=dict(zip(tickers, rets[i], strict=True)), prices=dict(zip(tickers, prices[i], strict=True))
    )


def manager() -> AdvancedRiskManager:
    config = RiskConfig(deadline_ms=50.0, rate_limit_per_s=None)
    return AdvancedRiskManager(config, policy=str(POLICY), risk_agents=str(AGENTS))


def _median_us(fn: Callable[[], Any], reps: int = 200) -> float:
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return float(np.median(samples)) * 1e6


def steps(calls: int) -> None:
    """The median cost of each step of one sync decision, timed on the bar after ``calls`` bars."""
    tickers, rets, prices = bars(calls)
    risk = manager()
    book = equal_book(tickers)
    for i in range(rets.shape[0]):
        market = market_at(tickers, rets, prices, i)
        risk.manage_risk_sync(market, book)
    engine = risk._require_engine()  # a profiling script reads the internals
    r, p = rets[-1], prices[-1]
    raw = {
        "returns": dict(zip(tickers, r.tolist(), strict=True)),
        "prices": dict(zip(tickers, p.tolist(), strict=True)),
    }
    market = MarketState(**raw)
    bar = engine.parse(market, book)
    observed = engine.observe(bar)
    policy = engine.policy_request(observed)
    agents = engine.agents_request(observed)
    allocator, advisor = engine.allocator, engine.advisor
    assert allocator is not None
    assert advisor is not None
    assert policy is not None
    assert agents is not None
    from advanced_risk.rl.portfolio.policy import policy_observation

    pol = allocator.policy  # type: ignore[attr-defined]
    obs = policy_observation(*policy, pol.env_config)
    allocation = allocator.allocate(*policy)
    advice = advisor.advise(agents)
    decision = engine.decide(observed, allocation, (), advice)
    rows = [
        ("MarketState from dicts", _median_us(lambda: MarketState(**raw))),
        ("parse (MarketState given)", _median_us(lambda: engine.parse(market, book))),
        ("observe (tracker, ATR, agents' state)", _median_us(lambda: engine.observe(bar))),
        ("policy request (history copy)", _median_us(lambda: engine.policy_request(observed))),
        ("policy observation", _median_us(lambda: policy_observation(*policy, pol.env_config))),
        ("policy MC dropout (10 samples)", _median_us(lambda: pol.policy.mc_dropout(obs, 10, pol._rng))),
        ("policy allocate (all of it)", _median_us(lambda: allocator.allocate(*policy))),
        ("agents request (observations)", _median_us(lambda: engine.agents_request(observed))),
        ("agents advise (3 actors x 10 MC)", _median_us(lambda: advisor.advise(agents))),
        ("decide", _median_us(lambda: engine.decide(observed, allocation, (), advice))),
        ("journal JSON encoding", _median_us(decision.to_json)),
        ("whole sync decision", _median_us(lambda: risk.manage_risk_sync(market, book))),
    ]
    risk.close_sync()
    print(f"median cost per step, 20 assets, after {calls} bars (us)")
    for name, us in rows:
        print(f"{name:<40} {us:>8.1f}")


def profile(calls: int, mode: str) -> None:
    from pyinstrument import Profiler

    tickers, rets, prices = bars(calls)
    book = equal_book(tickers)
    inputs = [market_at(tickers, rets, prices, i) for i in range(rets.shape[0])]
    risk = manager()
    profiler = Profiler(interval=0.0001)

    async def run_async() -> None:
        async with risk:
            for i, market in enumerate(inputs):
                if i == WARMUP:
                    profiler.start()
                if mode == "arrays":
                    await risk.manage_risk_arrays(tickers, book, returns=rets[i], prices=prices[i])
                else:
                    await risk.manage_risk(market, book)
            profiler.stop()

    gc.collect()
    gc.freeze()
    if mode == "sync":
        for i, market in enumerate(inputs):
            if i == WARMUP:
                profiler.start()
            risk.manage_risk_sync(market, book)
        profiler.stop()
        risk.close_sync()
    else:
        asyncio.run(run_async())
    print(profiler.output_text(unicode=False, color=False, show_all=False))


def latency(calls: int) -> None:
    """p50/p99 of each entry point and inference path (policy + agents), ``calls`` timed calls each."""
    from advanced_risk.engine.components import InferencePath

    tickers, rets, prices = bars(calls)
    assets = tuple(tickers)
    book = equal_book(tickers)
    inputs = [market_at(tickers, rets, prices, i) for i in range(rets.shape[0])]

    def report(name: str, samples: list[float]) -> None:
        a = np.array(samples) * 1e6
        print(f"{name:<36} p50 {np.percentile(a, 50):>6.0f} us  p99 {np.percentile(a, 99):>6.0f} us")

    def timed_sync(arrays: bool) -> list[float]:
        risk = manager()
        out = []
        for i, market in enumerate(inputs):
            start = time.perf_counter()
            if arrays:
                risk.manage_risk_arrays_sync(assets, book, returns=rets[i], prices=prices[i])
            else:
                risk.manage_risk_sync(market, book)
            if i >= WARMUP:
                out.append(time.perf_counter() - start)
        risk.close_sync()
        return out

    async def timed_async(path: InferencePath, arrays: bool) -> list[float]:
        risk = manager()
        risk._components.path = path
        out = []
        async with risk:
            for i, market in enumerate(inputs):
                start = time.perf_counter()
                if arrays:
                    await risk.manage_risk_arrays(assets, book, returns=rets[i], prices=prices[i])
                else:
                    await risk.manage_risk(market, book)
                if i >= WARMUP:
                    out.append(time.perf_counter() - start)
        return out

    gc.collect()
    gc.freeze()
    print(f"PPO + risk agents (shipped models), 20 assets, {calls} timed calls per row")
    report("sync, dicts", timed_sync(False))
    report("sync, arrays", timed_sync(True))
    report("async, dicts, worker (thread hop)", asyncio.run(timed_async(InferencePath.WORKER, False)))
    report("async, dicts, auto (inline)", asyncio.run(timed_async(InferencePath.AUTO, False)))
    report("async, arrays, auto (inline)", asyncio.run(timed_async(InferencePath.AUTO, True)))


JOURNAL_VARIANTS = ("linger 2 ms", "linger 50 ms", "linger 1000 ms", "no journal")


def journal(calls: int, block: int = 250) -> None:
    """p50/p90/p99 of async decisions (policy and agents) per journal variant, blocks alternated."""
    from concurrent.futures import Future

    from advanced_risk.engine.journal import JournalWriter

    def nothing(*_args: Any, **_kwargs: Any) -> Future[None]:
        done: Future[None] = Future()
        done.set_result(None)
        return done

    rounds = max(calls // (block * len(JOURNAL_VARIANTS)), 1)
    tickers, rets, prices = bars(rounds * block * len(JOURNAL_VARIANTS))
    book = equal_book(tickers)
    inputs = [market_at(tickers, rets, prices, i) for i in range(rets.shape[0])]

    async def run() -> dict[str, list[float]]:
        out: dict[str, list[float]] = {v: [] for v in JOURNAL_VARIANTS}
        async with manager() as risk:
            writer = risk._journal
            assert writer is not None
            for market in inputs[:WARMUP]:
                await risk.manage_risk(market, book)
            i = WARMUP
            for _ in range(rounds):
                for variant in JOURNAL_VARIANTS:
                    none = variant == "no journal"
                    writer.submit = nothing if none else JournalWriter.submit.__get__(writer)  # type: ignore[method-assign]
                    if not none:
                        writer._linger_s = float(variant.split()[1]) / 1000.0
                    for market in inputs[i : i + block]:
                        start = time.perf_counter()
                        await risk.manage_risk(market, book)
                        out[variant].append(time.perf_counter() - start)
                    i += block
            del writer.submit
        return out

    gc.collect()
    gc.freeze()
    samples = asyncio.run(run())
    print(f"async, PPO + risk agents, {rounds} rounds of {block} back-to-back calls per variant")
    for variant, values in samples.items():
        a = np.array(values) * 1e6
        p50, p90, p99 = np.percentile(a, [50, 90, 99])
        print(f"{variant:<14} p50 {p50:>6.0f} us  p90 {p90:>6.0f} us  p99 {p99:>6.0f} us")


def _timed_method(owner: Any, name: str, label: str, spent: dict[str, float]) -> None:
    """Replace ``owner.name`` by a wrapper that adds its wall time to ``spent[label]``."""
    inner = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.perf_counter() - start

    setattr(owner, name, timed)


def flow(calls: int, idle_ms: float = 0.0) -> None:
    """The mean time of each step inside ``calls`` consecutive sync decisions (not each step alone).

    ``steps`` times each step on its own, repeated on one bar with warm caches; here every step is
    timed where it runs, bar after bar, so the figures add up to the decision (the wrappers add
    ~1 us each). Back to back (``idle_ms = 0``), the journal thread's commit of the previous decision
    runs when this decision first releases the GIL (the policy's history copy: NumPy releases it to
    copy 500 values or more) and is counted in that step; ``idle_ms`` sleeps that long between
    decisions, untimed, as a bot waits for its next bar, and the journal commits meanwhile.
    """
    from advanced_risk.engine.components import ComponentRunner
    from advanced_risk.engine.core import DecisionEngine
    from advanced_risk.rl.agents.advisor import RiskAgentsAdvisor
    from advanced_risk.rl.agents.policy import RiskAgents
    from advanced_risk.rl.portfolio.allocator import PolicyAllocator
    from advanced_risk.rl.ppo.inference import NumpyPolicy

    spent: dict[str, float] = {}
    act = "act_arrays" if hasattr(RiskAgents, "act_arrays") else "act"
    timed = (
        (AdvancedRiskManager, "manage_risk_sync", "whole sync decision"),
        (DecisionEngine, "parse", "parse"),
        (DecisionEngine, "observe", "observe"),
        (ComponentRunner, "run_sync", "components (all)"),
        (DecisionEngine, "policy_request", "  policy request"),
        (PolicyAllocator, "allocate", "  policy allocate (MC dropout, drift)"),
        (DecisionEngine, "agents_request", "  agents request (observations, drift)"),
        (RiskAgentsAdvisor, "advise", "  agents advise (all)"),
        # act_arrays where the advisor reads the arrays (2026-12-03 on), act before
        (RiskAgents, act, "    3 actors x 10 MC samples, decoding"),
        (NumpyPolicy, "_samples_from_first", "  MC-dropout samples (NumpyPolicy)"),
        (DecisionEngine, "decide", "decide"),
        (AdvancedRiskManager, "_record", "telemetry, alert pager"),
    )
    try:  # the agents' buffered act (2026-12-03 on): its NumPy/BLAS layers, after the act row
        from advanced_risk.rl.agents.runner import AgentsRunner

        layers = (AgentsRunner, "_samples", "      MC-dropout layers (AgentsRunner)")
        timed = (*timed[:9], layers, *timed[9:])
    except ImportError:
        pass
    for owner, name, label in timed:
        _timed_method(owner, name, label, spent)
    tickers, rets, prices = bars(calls)
    risk = manager()
    book = equal_book(tickers)
    for i in range(rets.shape[0]):
        if i == WARMUP:
            spent.clear()
            gc.collect()
            gc.freeze()
        market = market_at(tickers, rets, prices, i)
        if idle_ms:
            time.sleep(idle_ms / 1000.0)
        risk.manage_risk_sync(market, book)
    risk.close_sync()
    idle = f", {idle_ms:g} ms idle between them" if idle_ms else ""
    print(f"mean time per decision inside {calls} consecutive sync decisions{idle}, 20 assets (us)")
    for _, _, label in timed:
        print(f"{label:42s} {spent.get(label, 0.0) / calls * 1e6:8.1f}")


def census(calls: int) -> None:
    """Calls per sync decision with the shipped PPO policy (no agents: the sync PPO row's mode).

    Counts, over ``calls`` decisions after the warm-up, the C-level calls (``sys.setprofile``'s
    ``c_call``: builtins and NumPy's functions and methods; not operators such as ``@``), the Python
    frames, and the numba kernel calls with the time spent inside them (each dispatcher found in
    the package's modules is wrapped): the counts over the first half of the decisions, under the
    profiler, the kernels' calls and time over the second half, without it.
    """
    import collections
    import sys

    from numba.core.registry import CPUDispatcher

    tickers, rets, prices = bars(calls)
    risk = AdvancedRiskManager(RiskConfig(deadline_ms=50.0, rate_limit_per_s=None), policy=str(POLICY))
    book = equal_book(tickers)
    for i in range(WARMUP):
        risk.manage_risk_sync(market_at(tickers, rets, prices, i), book)
    c_calls: collections.Counter[str] = collections.Counter()
    frames: collections.Counter[str] = collections.Counter()
    kernels: collections.Counter[str] = collections.Counter()
    inside: collections.Counter[str] = collections.Counter()

    def counted(kernel: Any) -> Callable[..., Any]:
        name = f"{kernel.py_func.__module__.rsplit('.', 1)[-1]}.{kernel.py_func.__name__}"

        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return kernel(*args, **kwargs)
            finally:
                inside[name] += time.perf_counter() - start
                kernels[name] += 1

        return call

    def hook(frame: Any, event: str, arg: Any) -> None:
        if event == "c_call":
            c_calls[getattr(arg, "__qualname__", str(arg))] += 1
        elif event == "call":
            frames[frame.f_code.co_name] += 1

    half = WARMUP + calls // 2
    sys.setprofile(hook)  # first half: the counts, with the kernels not yet wrapped
    try:
        for i in range(WARMUP, half):
            risk.manage_risk_sync(market_at(tickers, rets, prices, i), book)
    finally:
        sys.setprofile(None)
    wrapped: dict[int, Callable[..., Any]] = {}
    for module_name, module in list(sys.modules.items()):
        if module_name.startswith("advanced_risk"):
            for attr, value in list(vars(module).items()):
                if isinstance(value, CPUDispatcher):
                    setattr(module, attr, wrapped.setdefault(id(value), counted(value)))
    try:  # second half: the kernels' calls and time, without the profiler
        for i in range(half, rets.shape[0]):
            risk.manage_risk_sync(market_at(tickers, rets, prices, i), book)
    finally:
        risk.close_sync()
    first, second = half - WARMUP, rets.shape[0] - half
    print(
        f"per sync decision (PPO, 20 assets, {first} + {second} decisions): "
        f"{sum(c_calls.values()) / first:.1f} C-level calls, {sum(frames.values()) / first:.1f} Python "
        f"frames, {sum(kernels.values()) / second:.1f} numba kernel calls "
        f"({sum(inside.values()) / second * 1e6:.1f} us in them)"
    )
    for name, count in kernels.most_common():
        print(f"  {count / second:5.1f} x {inside[name] / second * 1e6:6.1f} us  {name}")
    common = c_calls.most_common(8)
    print("most frequent C-level calls: " + ", ".join(f"{n} {c / first:.1f}" for n, c in common))


def memory(calls: int) -> None:
    """tracemalloc: bytes allocated (transient peak) per decision and the traced growth over ``calls``."""
    import tracemalloc

    tickers, rets, prices = bars(calls)
    assets = tuple(tickers)
    book = equal_book(tickers)
    config = RiskConfig(deadline_ms=50.0, rate_limit_per_s=None, memory_journal_rows=100)
    risk = AdvancedRiskManager(config, policy=str(POLICY), risk_agents=str(AGENTS))
    for i in range(WARMUP):
        risk.manage_risk_arrays_sync(assets, book, returns=rets[i], prices=prices[i])
    tracemalloc.start()
    begin, _ = tracemalloc.get_traced_memory()
    peaks = []
    for i in range(WARMUP, rets.shape[0]):
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        risk.manage_risk_arrays_sync(assets, book, returns=rets[i], prices=prices[i])
        _, peak = tracemalloc.get_traced_memory()
        peaks.append(peak - before)
    end, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    risk.close_sync()
    print(
        "per decision (sync, arrays, PPO + agents): "
        f"transient peak median {np.median(peaks) / 1024:.1f} KiB, "
        f"p99 {np.percentile(peaks, 99) / 1024:.1f} KiB; "
        f"traced growth over {calls} decisions "
        f"{(end - begin) / 1024:.1f} KiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--mode", choices=["sync", "async", "arrays"], default="sync")
    parser.add_argument("--latency", action="store_true", help="p50/p99 per entry point and path")
    parser.add_argument("--memory", action="store_true", help="tracemalloc bytes per decision")
    parser.add_argument("--flow", action="store_true", help="each step's time inside consecutive decisions")
    parser.add_argument("--idle-ms", type=float, default=0.0, help="--flow: sleep between decisions")
    parser.add_argument("--journal", action="store_true", help="async latency per journal linger, alternated")
    parser.add_argument("--census", action="store_true", help="C calls, frames and kernels per decision")
    args = parser.parse_args()
    if args.latency:
        latency(args.calls)
    elif args.journal:
        journal(args.calls)
    elif args.memory:
        memory(args.calls)
    elif args.census:
        census(args.calls)
    elif args.flow:
        flow(args.calls, args.idle_ms)
    elif args.profile:
        profile(args.calls, args.mode)
    else:
        steps(args.calls)


if __name__ == "__main__":
    main()
