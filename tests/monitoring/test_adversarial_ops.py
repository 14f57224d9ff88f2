"""Adversarial tests of the operations features (issue 15): hooks, metrics endpoint, journal tools, drift.

Written as a user would break them: a hook that closes the manager or calls back into it, a hook
object with ``async def __call__``, a hung hook at close, the endpoint on a port in use, scrapes while
another thread decides, journals with ``reset_peak`` rows, rows that are not JSON, times out of range,
only degraded rows; the policy's drift monitor on flat prices, across opens and restarts.

Four bugs found here were fixed outside ``monitoring/`` (the manager closes its endpoints, the drift
window is bounded, the policy's warm-up stays out of its drift window, and a restart's unscored drift
window is documented and tested).
"""

from __future__ import annotations

import asyncio
import errno
import json
import math
import socket
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.async_.conftest import BarFeed, FakeAllocator

from advanced_risk import AdvancedRiskManager, RiskConfig
from advanced_risk.__main__ import main
from advanced_risk.errors import InvalidInputError, StateStoreError
from advanced_risk.monitoring.alerts import AlertEvent, AlertKind
from advanced_risk.monitoring.journal import parse_time, read_journal
from advanced_risk.monitoring.prometheus import serve_metrics
from advanced_risk.monitoring.report import render_report, var_backtest
from advanced_risk.monitoring.telemetry import Telemetry

MODELS = Path(__file__).resolve().parents[2] / "models"


def _config(**kw: Any) -> RiskConfig:
    return RiskConfig(deadline_ms=2_000.0, **kw)


def _wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


def _scrape(port: int) -> dict[str, Any]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


# ------------------------------------------------------------------------------------ on_alert hooks


def test_a_hook_that_closes_the_manager_leaves_alerts_working_after_reopen() -> None:
    """A hook that shuts the bot down on the kill switch calls ``close_sync`` on the alert thread.

    Bug (fixed in monitoring/hooks.py): ``AlertDispatcher.close`` joined its own thread, raising
    ``RuntimeError('cannot join current thread')`` out of ``close_sync`` (the pools were left open)
    and leaving the manager holding the dead dispatcher: after the lazy reopen no alert was ever
    delivered again.
    """
    received: list[AlertKind] = []
    errors: list[str] = []
    closed = threading.Event()
    risk: AdvancedRiskManager

    def page(event: AlertEvent) -> None:
        received.append(event.kind)
        if event.kind is AlertKind.KILL_SWITCH:
            try:
                risk.close_sync()
            except Exception as exc:
                errors.append(repr(exc))
            closed.set()

    risk = AdvancedRiskManager(_config(), on_alert=page)
    feed = BarFeed()
    for market, portfolio in feed.bars(3):
        risk.manage_risk_sync(market, portfolio)
    asyncio.run(risk.engage_kill_switch("operator"))
    assert closed.wait(5.0)
    assert errors == []
    assert risk.trading_state == "closed"
    closed.clear()
    for market, portfolio in feed.bars(2):  # lazily reopened (in memory: active again)
        risk.manage_risk_sync(market, portfolio)
    asyncio.run(risk.engage_kill_switch("again"))
    assert closed.wait(5.0), received  # paged again, and closed again without an error
    assert received.count(AlertKind.KILL_SWITCH) == 2
    assert errors == []


def test_an_async_callable_object_hook_runs_on_the_bots_loop() -> None:
    """A pager object with ``async def __call__`` (e.g. holding an aiohttp session of the bot's loop).

    Bug (fixed in monitoring/hooks.py): only a coroutine *function* was recognised, so the object's
    coroutine ran on the dispatcher's private loop, where the bot's loop-bound resources fail.
    """

    class Pager:
        def __init__(self) -> None:
            self.loops: list[asyncio.AbstractEventLoop] = []

        async def __call__(self, event: AlertEvent) -> None:
            self.loops.append(asyncio.get_running_loop())

    pager = Pager()

    async def bot() -> asyncio.AbstractEventLoop:
        async with AdvancedRiskManager(_config(), on_alert=pager) as risk:
            await risk.engage_kill_switch("test")
            for _ in range(500):
                if pager.loops:
                    break
                await asyncio.sleep(0.01)
        return asyncio.get_running_loop()

    loop = asyncio.run(bot())
    assert pager.loops == [loop]


@pytest.mark.slow  # waits out the 2 s of AlertDispatcher.close by design
def test_close_returns_in_bounded_time_while_the_hook_hangs_and_reopen_pages_again() -> None:
    release = threading.Event()
    received: list[AlertKind] = []

    def page(event: AlertEvent) -> None:
        received.append(event.kind)
        if len(received) == 1:
            release.wait(30.0)  # hangs on the first event

    risk = AdvancedRiskManager(_config(), on_alert=page)
    feed = BarFeed()
    for market, portfolio in feed.bars(2):
        risk.manage_risk_sync(market, portfolio)
    asyncio.run(risk.engage_kill_switch("a"))
    asyncio.run(risk.resume("b"))
    assert _wait_for(lambda: received)
    start = time.perf_counter()
    risk.close_sync()
    assert time.perf_counter() - start < 6.0  # 2 s to queue the stop, 2 s to join: never forever
    release.set()
    # reopened: a fresh dispatcher delivers (the abandoned one may still deliver what it held)
    for market, portfolio in feed.bars(2):
        risk.manage_risk_sync(market, portfolio)
    before = len(received)
    asyncio.run(risk.engage_kill_switch("c"))
    assert _wait_for(lambda: len(received) > before and received[-1] is AlertKind.KILL_SWITCH)
    risk.close_sync()


def test_a_hook_may_read_the_manager_and_decide_from_the_alert_thread() -> None:
    """Re-entrancy: metrics, state, snapshot and even a sync decision from the hook: no deadlock."""
    feed = BarFeed(seed=2)
    seen: list[tuple[str, int, int]] = []
    risk: AdvancedRiskManager

    def page(event: AlertEvent) -> None:
        metrics = risk.metrics()
        snapshot = risk.telemetry_snapshot()
        risk.manage_risk_sync(*feed.next())  # waits for the bot's thread to leave its call
        seen.append((risk.trading_state, int(metrics["calls"]), snapshot.decisions))

    risk = AdvancedRiskManager(_config(), policy=FakeAllocator(fail=True), on_alert=page)
    done = threading.Event()

    def bot() -> None:
        for _ in range(10):  # the policy is asked from bar 5: its failure pages "degraded"
            risk.manage_risk_sync(*feed.next())
        done.set()

    thread = threading.Thread(target=bot, daemon=True)
    thread.start()
    assert done.wait(20.0), "the bot's thread deadlocked with the hook"
    assert _wait_for(lambda: seen, 10.0)
    state, calls, decisions = seen[0]
    assert state == "active"
    assert calls >= 5
    assert decisions >= 5
    risk.close_sync()
    assert risk.metrics()["calls"] >= 11  # the hook's own decision counted too


def test_a_coroutine_hook_outlives_the_bots_loop() -> None:
    """The bot's loop ends while its coroutine hook runs there, then another loop ends before its
    hook could start.

    The first is cancelled by ``asyncio.run`` (counted as failed); the dispatcher survives. Bug
    (fixed in monitoring/hooks.py): the second was lost, its coroutine "never awaited": it was
    handed to a loop that was still running but ended before running it; now it runs on the
    dispatcher's own loop.
    """
    seen: list[str] = []

    async def page(event: AlertEvent) -> None:
        seen.append(f"start {event.kind}")
        await asyncio.sleep(0.2)
        seen.append(f"done {event.kind}")

    risk = AdvancedRiskManager(_config(), on_alert=page)
    for market, portfolio in BarFeed().bars(2):
        risk.manage_risk_sync(market, portfolio)

    async def halt() -> None:
        await risk.engage_kill_switch("x")
        await asyncio.sleep(0.05)  # the hook started on this loop; the loop ends under it

    async def resume_and_exit() -> None:
        await risk.resume("y")
        time.sleep(0.3)  # the loop is busy when the hook is handed to it, then it ends

    asyncio.run(halt())
    assert _wait_for(lambda: "start kill_switch" in seen)
    asyncio.run(resume_and_exit())
    assert _wait_for(lambda: "done state_change" in seen, 5.0), seen
    assert "done kill_switch" not in seen
    start = time.perf_counter()
    risk.close_sync()
    assert time.perf_counter() - start < 5.0


# ------------------------------------------------------------------------------ Prometheus endpoint


def test_serve_metrics_on_a_port_in_use_names_the_address() -> None:
    """Bug (fixed in monitoring/prometheus.py): the error was ``[Errno 98] Address already in use``,
    without saying which address the metrics wanted."""
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        with pytest.raises(OSError, match=f"127.0.0.1:{port}") as info:
            serve_metrics(Telemetry().snapshot, port)
        assert info.value.errno == errno.EADDRINUSE
    finally:
        blocker.close()


def test_serve_metrics_twice_after_close_and_on_the_same_port() -> None:
    risk = AdvancedRiskManager(_config())
    feed = BarFeed()
    for market, portfolio in feed.bars(3):
        risk.manage_risk_sync(market, portfolio)
    first, second = risk.serve_metrics(0), risk.serve_metrics(0)
    try:
        assert first.port != second.port
        with pytest.raises(OSError, match=str(first.port)):
            risk.serve_metrics(first.port)
        families = _scrape(second.port)
        decisions = {s.labels["outcome"]: s.value for s in families["advanced_risk_decisions"].samples}
        assert decisions == {"ok": 3.0, "degraded": 0.0}
        risk.close_sync()  # closes both endpoints
        assert first.closed
        assert second.closed
        served = risk.serve_metrics(0)  # a closed manager still serves its counts, without a journal
        try:
            families = _scrape(served.port)
            assert families["advanced_risk_journal_rows"].samples == []
        finally:
            served.close()
    finally:
        first.close()
        second.close()
    third = risk.serve_metrics(first.port)  # the port is free again after close
    third.close()


def test_closing_the_manager_closes_its_metrics_endpoint() -> None:
    risk = AdvancedRiskManager(_config())
    risk.manage_risk_sync(*BarFeed().next())
    server = risk.serve_metrics(0)
    try:
        risk.close_sync()
        assert server.closed
    finally:
        server.close()


def test_scrapes_while_another_thread_decides_are_consistent() -> None:
    risk = AdvancedRiskManager(_config())
    feed = BarFeed(seed=9)
    bars = list(feed.bars(600))
    server = risk.serve_metrics(0)
    stop = threading.Event()

    def decide() -> None:
        for market, portfolio in bars:
            risk.manage_risk_sync(market, portfolio)
        stop.set()

    thread = threading.Thread(target=decide, daemon=True)
    thread.start()
    previous = -1.0
    scrapes = 0
    try:
        while True:
            finished = stop.is_set()  # this scrape follows the last decision
            families = _scrape(server.port)
            scrapes += 1
            latency = families["advanced_risk_decision_latency_seconds"].samples
            buckets = [s.value for s in latency if s.name.endswith("_bucket")]
            count = next(s.value for s in latency if s.name.endswith("_count"))
            assert buckets == sorted(buckets)
            assert buckets[-1] == count
            total = sum(s.value for s in families["advanced_risk_decisions"].samples)
            assert total >= previous
            assert abs(total - count) <= 1.0
            previous = total
            if finished and scrapes >= 3:
                break
    finally:
        thread.join(30.0)
        server.close()
        risk.close_sync()
    assert previous == 600.0


def test_a_record_landing_during_a_snapshot_does_not_split_it() -> None:
    """Bug (fixed in monitoring/telemetry.py): a snapshot read the latency histogram, then the
    counters; a scrape descheduled between the two while the bot decided exported
    ``decisions_total`` and the latency ``_count`` dozens of decisions apart (32 measured over HTTP
    in the test above), against the docstring's "one decision apart". Here a record lands exactly
    between the two reads."""
    from advanced_risk.types import CorrelationState, HedgeInstruction, RiskDecision, RiskLevel, TradingState

    decision = RiskDecision(
        rebalance_weights={"cash": 1.0}, leverage=1.0, position_sizes={}, stop_levels={},
        hedge=HedgeInstruction(False, 0.0, ""), var=0.02, cvar=0.03,
        correlation=CorrelationState(math.nan, False), risk_level=RiskLevel.LOW,
        trading_state=TradingState.ACTIVE, equity=100.0,
    )  # fmt: skip
    telemetry = Telemetry()
    for _ in range(3):
        telemetry.record(decision, 1e-4, False)

    class Interleaved:
        """The histogram, with one record landing right after the snapshot's first read of it."""

        def __init__(self, histogram: Any) -> None:
            self.histogram, self.pending = histogram, 1

        def cumulative_counts(self, bounds: Any) -> list[int]:
            out: list[int] = self.histogram.cumulative_counts(bounds)
            if self.pending:
                self.pending -= 1
                telemetry.record(decision, 1e-4, False)
            return out

        def __getattr__(self, name: str) -> Any:
            return getattr(self.histogram, name)

    telemetry.latencies = Interleaved(telemetry.latencies)  # type: ignore[assignment]
    snapshot = telemetry.snapshot()
    assert snapshot.decisions == snapshot.latency_count == 4


@pytest.mark.parametrize(
    ("assets", "equity"),
    [pytest.param(1, True, id="one-asset"), pytest.param(500, True, id="500-assets"), (4, False)],
)
def test_metrics_of_odd_books_during_var_warm_up(assets: int, equity: bool) -> None:
    risk = AdvancedRiskManager(RiskConfig(deadline_ms=5_000.0))
    names = [f"a{i}" for i in range(assets)]
    rng = np.random.default_rng(1)
    for t in range(20):
        book: dict[str, Any] = {"weights": dict.fromkeys(names, 1.0 / (assets + 1))}
        if equity:
            book["equity"] = 1e5 * (1.0 - 0.01 * t)
        decision = risk.manage_risk_sync(
            {"returns": dict(zip(names, rng.normal(0, 0.01, assets), strict=True))}, book
        )
    with risk.serve_metrics(0) as server:
        families = _scrape(server.port)
    risk.close_sync()
    gauge = {name: families[f"advanced_risk_{name}"].samples[0].value for name in ("var", "equity")}
    assert math.isnan(decision.var)
    assert math.isnan(gauge["var"])
    assert gauge["equity"] == pytest.approx(1e5 * 0.81) if equity else math.isnan(gauge["equity"])
    assert families["advanced_risk_var_breaches"].samples[0].value == 0.0  # NaN VaR: no breach
    assert sum(s.value for s in families["advanced_risk_decisions"].samples) == 20.0


# ------------------------------------------------------------------------------------ journal tools


@pytest.fixture(scope="module")
def reset_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 decisions, a ``reset_peak`` row, 5 decisions (11 rows, 10 decisions)."""
    path = tmp_path_factory.mktemp("reset") / "s.db"

    async def run() -> None:
        feed = BarFeed()
        async with AdvancedRiskManager(_config(state_path=str(path))) as risk:
            for market, portfolio in feed.bars(5):
                await risk.manage_risk(market, portfolio)
            await risk.reset_peak(100_500.0, "deposit")
            for market, portfolio in feed.bars(5):
                await risk.manage_risk(market, portfolio)

    asyncio.run(run())
    return path


def test_reset_peak_rows_are_not_decisions_of_the_journal_cli(
    reset_journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bug (fixed in monitoring/journal.py): the ``{"event": "reset_peak"}`` row printed as a decision
    (``#6 ...-reset-peak-6   lev nan hedge off var - cvar - nan ms``) and counted in ``--last``."""
    frame = read_journal(reset_journal)
    assert len(frame) == 10
    assert set(frame["trading_state"]) <= {"active", "reducing", "halted"}
    code, lines, _ = _cli(["journal", str(reset_journal)], capsys)
    assert code == 0
    assert len(lines) == 10
    assert not any("nan" in line or "reset-peak" in line for line in lines)
    code, lines, _ = _cli(["journal", str(reset_journal), "--last", "6", "--json"], capsys)
    assert code == 0
    assert len(lines) == 6
    assert all("decision_id" in json.loads(line) for line in lines)
    assert len(read_journal(reset_journal, last=6)) == 6


def test_reset_peak_rows_make_no_false_state_changes_in_the_report(reset_journal: Path) -> None:
    """Bug (fixed in monitoring/journal.py): the report counted the event row as a decision in state
    "" (two state changes "active -> " and " -> active") and skipped two backtest pairs for it."""
    frame = read_journal(reset_journal)
    page = render_report(frame)
    assert "-&gt; <" not in page
    assert "<td> -&gt;" not in page
    assert "10 decisions" in page
    assert var_backtest(frame).pairs == 9


def _copy_with_row(source: Path, target: Path, payload: str) -> str:
    target.write_bytes(source.read_bytes())
    with sqlite3.connect(target) as conn:
        conn.execute("INSERT INTO journal(decision_id, ts, payload) VALUES ('tampered', 1.0, ?)", (payload,))
    return str(target)


@pytest.mark.parametrize("command", ["journal", "report"])
def test_a_row_that_is_not_json_exits_2_with_one_line(
    reset_journal: Path, tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bug (fixed in monitoring/journal.py): a corrupt row ended both commands in a JSONDecodeError
    traceback instead of the documented one line and exit status 2."""
    path = _copy_with_row(reset_journal, tmp_path / "bad.db", '{"decision_id": "x", "lev')
    argv = (
        ["journal", path] if command == "journal" else ["report", "--journal", path, "--out", str(tmp_path)]
    )
    code, lines, err = _cli(argv, capsys)
    assert (code, lines) == (2, [])
    assert len(err.strip().splitlines()) == 1
    assert "not JSON" in err
    with pytest.raises(StateStoreError):
        read_journal(path)


def test_a_row_that_is_json_but_not_an_object_is_left_out(reset_journal: Path, tmp_path: Path) -> None:
    """Bug (fixed): a row ``[1, 2]`` raised AttributeError ('list' object has no attribute 'get')."""
    path = _copy_with_row(reset_journal, tmp_path / "list.db", "[1, 2]")
    assert len(read_journal(path)) == 10


@pytest.mark.parametrize("value", ["1e20", "-1e15", "99999-01-01", "inf", "nan", "", "2024-W18", "0x10"])
def test_since_out_of_range_or_unparsable_exits_2(
    reset_journal: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bug (fixed in parse_time): ``--since 1e20`` ended in an OutOfBoundsDatetime traceback."""
    code, lines, err = _cli(["journal", str(reset_journal), f"--since={value}"], capsys)
    assert (code, lines) == (2, [])
    assert len(err.strip().splitlines()) == 1
    assert "since" in err
    with pytest.raises(InvalidInputError):
        parse_time(value, "since")


@pytest.mark.parametrize("value", ["0", "-5", "1_700_000_000", " 1700000000 ", "2024-05-01 09:00:00+02:00"])
def test_since_in_odd_but_valid_forms_keeps_every_row(
    reset_journal: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, _ = _cli(["journal", str(reset_journal), f"--since={value}"], capsys)
    assert code == 0
    assert len(lines) == 10


def test_a_journal_of_only_degraded_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "degraded.db"
    risk = AdvancedRiskManager(
        _config(state_path=str(path)), policy=FakeAllocator(fail=True, history_length=1)
    )
    for market, portfolio in BarFeed().bars(6):
        assert risk.manage_risk_sync(market, portfolio).degraded
    risk.close_sync()
    code, lines, _ = _cli(["journal", str(path), "--degraded"], capsys)
    assert code == 0
    assert len(lines) == 6
    assert all("DEGRADED" in line for line in lines)
    code, lines, _ = _cli(
        ["journal", str(path), "--state", "active", "--degraded", "--csv", str(tmp_path / "d.csv")], capsys
    )
    assert (code, lines) == (0, [f"wrote 6 rows to {tmp_path / 'd.csv'}"])
    code, lines, _ = _cli(["report", "--journal", str(path), "--out", str(tmp_path)], capsys)
    assert code == 0
    page = (tmp_path / "risk_report.html").read_text()
    assert "Degraded decisions: 6" in page
    assert "too few observations" in page


def test_the_journal_of_a_live_writer_and_then_an_empty_or_deleted_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "live.db"
    risk = AdvancedRiskManager(_config(state_path=str(path)))
    feed = BarFeed()
    for market, portfolio in feed.bars(4):
        risk.manage_risk_sync(market, portfolio)
    try:  # the manager holds its connection open: read-only readers are not blocked
        code, lines, _ = _cli(["journal", str(path)], capsys)
        assert code == 0
        assert len(lines) == 4
        writer = sqlite3.connect(path, isolation_level=None)  # another writer mid-transaction
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO journal(decision_id, ts, payload) VALUES ('uncommitted', 1.0, '{}')")
        try:
            assert len(read_journal(path)) == 4  # WAL: the reader sees the committed rows at once
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        for market, portfolio in feed.bars(2):
            risk.manage_risk_sync(market, portfolio)
        code, lines, _ = _cli(["report", "--journal", str(path), "--out", str(tmp_path)], capsys)
        assert code == 0
    finally:
        risk.close_sync()
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    for argv in (["journal", str(empty)], ["journal", str(tmp_path / "gone.db")]):
        code, lines, err = _cli(argv, capsys)
        assert (code, lines) == (2, [])
        assert len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------- drift


@pytest.mark.parametrize("value", [math.nan, 0.0, -1.0, math.inf, True, "0.4", 1e7])
def test_a_bad_drift_threshold_is_an_invalid_input_naming_the_field(value: object) -> None:
    with pytest.raises(InvalidInputError, match="drift_threshold"):
        RiskConfig(drift_threshold=value)  # type: ignore[arg-type]


def test_an_absurd_drift_window_is_an_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="drift_window"):
        RiskConfig(drift_window=10**9)


@pytest.fixture(scope="module")
def shipped_policy() -> Any:
    from advanced_risk.rl.portfolio.policy import PortfolioPolicy

    return PortfolioPolicy.load(MODELS / "ppo_sp500_2012.armodel")


def _allocator(policy: Any, window: int = 20) -> Any:
    from advanced_risk.monitoring.drift import DriftSettings
    from advanced_risk.rl.portfolio.allocator import PolicyAllocator

    return PolicyAllocator(policy, 4, DriftSettings(window=window, min_bars=window))


def _bars(
    names: list[str], n: int, flat_from: int, seed: int = 0
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    for t in range(n):
        r = rng.normal(0.0, 0.01, len(names)) if t < flat_from else np.zeros(len(names))
        yield (
            {"returns": dict(zip(names, r.tolist(), strict=True)), "prices": dict.fromkeys(names, 100.0)},
            {"weights": dict.fromkeys(names, 0.04), "equity": 1e5},
        )


def test_flat_prices_drift_the_policy_without_failing_a_decision(shipped_policy: Any) -> None:
    """Zero returns bar after bar (volatility 0, RSI 0/0): the monitor scores them, nothing raises."""
    names = list(shipped_policy.asset_names)
    risk = AdvancedRiskManager(_config(), policy=_allocator(shipped_policy))
    decisions = [risk.manage_risk_sync(m, p) for m, p in _bars(names, 70, flat_from=25)]
    risk.close_sync()
    assert not any(d.degraded for d in decisions)
    last = decisions[-1]
    assert last.drift is not None
    assert math.isfinite(last.drift["policy"])
    assert any(a.startswith("input drift: policy") for a in last.alerts)
    assert risk.telemetry_snapshot().drift["policy"] == last.drift["policy"]


def test_a_policy_without_a_reference_has_no_drift(shipped_policy: Any) -> None:
    reference = shipped_policy.observation_reference
    shipped_policy.observation_reference = None
    try:
        allocator = _allocator(shipped_policy)
    finally:
        shipped_policy.observation_reference = reference
    names = list(shipped_policy.asset_names)
    risk = AdvancedRiskManager(_config(), policy=allocator)
    decisions = [risk.manage_risk_sync(m, p) for m, p in _bars(names, 30, flat_from=10)]
    risk.close_sync()
    assert all(d.drift is None for d in decisions)
    assert dict(risk.telemetry_snapshot().drift) == {}


def test_opening_the_manager_feeds_no_bar_to_the_policys_drift_monitor(shipped_policy: Any) -> None:
    allocator = _allocator(shipped_policy)
    risk = AdvancedRiskManager(_config(), policy=allocator)
    risk.manage_risk_sync(*next(_bars(list(shipped_policy.asset_names), 1, flat_from=1)))
    risk.close_sync()
    assert allocator._drift.count == 0  # the first bar is before the policy's history is full


def test_after_a_crash_drift_is_scored_again_once_the_window_refills(
    shipped_policy: Any, tmp_path: Path
) -> None:
    """Without the snapshot a graceful close saves (a crash; RiskConfig.drift_window's docstring,
    docs/drift.md) the model is unscored (NaN, not drifted) until ``drift_min_bars`` bars have
    passed, then flagged again on the same data."""
    names = list(shipped_policy.asset_names)
    config = _config(state_path=str(tmp_path / "s.db"), drift_window=20, drift_min_bars=20)
    bars = list(_bars(names, 140, flat_from=25))
    risk = AdvancedRiskManager(config, policy=_allocator(shipped_policy))
    before = [risk.manage_risk_sync(m, p) for m, p in bars[:70]]
    risk.close_sync()
    assert before[-1].drift is not None
    assert before[-1].drift["policy"] > 1.0
    with sqlite3.connect(tmp_path / "s.db") as conn:  # what a crash leaves: no snapshot
        conn.execute("DELETE FROM snapshot")
    conn.close()
    restarted = AdvancedRiskManager(config, policy=_allocator(shipped_policy))
    after = [restarted.manage_risk_sync(m, p) for m, p in bars[70:]]
    restarted.close_sync()
    scored = [d for d in after if d.drift is not None and math.isfinite(d.drift["policy"])]
    assert after[0].drift is None or not math.isfinite(after[0].drift["policy"])
    assert scored
    assert scored[0].drift is not None
    assert scored[0].drift["policy"] > 1.0
    assert any(a.startswith("input drift: policy") for a in scored[0].alerts)


def test_after_a_graceful_restart_drift_is_scored_at_once(shipped_policy: Any, tmp_path: Path) -> None:
    """``close`` saves the drift window: the first bar after the reopening is scored (and flagged)
    as it would have been without the restart."""
    names = list(shipped_policy.asset_names)
    config = _config(state_path=str(tmp_path / "s.db"), drift_window=20, drift_min_bars=20)
    bars = list(_bars(names, 80, flat_from=25))
    straight = AdvancedRiskManager(
        _config(drift_window=20, drift_min_bars=20), policy=_allocator(shipped_policy)
    )
    expected = [straight.manage_risk_sync(m, p) for m, p in bars]
    straight.close_sync()
    risk = AdvancedRiskManager(config, policy=_allocator(shipped_policy))
    for m, p in bars[:70]:
        risk.manage_risk_sync(m, p)
    risk.close_sync()
    restarted = AdvancedRiskManager(config, policy=_allocator(shipped_policy))
    after = [restarted.manage_risk_sync(m, p) for m, p in bars[70:]]
    restarted.close_sync()
    assert after[0].drift is not None
    assert after[0].drift["policy"] > 1.0
    assert [d.drift for d in after] == [d.drift for d in expected[70:]]
