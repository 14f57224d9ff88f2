"""The operator's controls in the journal (issue 15): kill switch, resume and peak reset are rows of
their own, read by ``journal --events`` and shown by the report, never counted as decisions."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from tests.async_.conftest import BarFeed

from advanced_risk import AdvancedRiskManager, RiskConfig
from advanced_risk.__main__ import main
from advanced_risk.monitoring.journal import read_events, read_journal
from advanced_risk.monitoring.report import write_journal_report


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("events") / "risk.db"

    async def run() -> None:
        feed = BarFeed(seed=2)
        async with AdvancedRiskManager(RiskConfig(state_path=str(path), deadline_ms=2_000.0)) as risk:
            for market, portfolio in feed.bars(30):
                await risk.manage_risk(market, portfolio)
            await risk.engage_kill_switch("fat finger")
            await risk.engage_kill_switch("again")  # already halted: no change, no row
            for market, portfolio in feed.bars(3):
                await risk.manage_risk(market, portfolio)
            await risk.resume("checked the book")
            await risk.reset_peak(feed.equity, "deposit")
            for market, portfolio in feed.bars(3):
                await risk.manage_risk(market, portfolio)

    asyncio.run(run())
    return path


def test_each_control_that_changed_something_is_one_row(journal: Path) -> None:
    events = read_events(journal)
    assert events["event"].tolist() == ["kill_switch", "resume", "reset_peak"]
    kill, resume, reset = (dict(p) for p in events["payload"])
    assert kill["reason"] == "fat finger"
    assert kill["previous"] == "active"
    assert resume["reason"] == "checked the book"
    assert reset["reason"] == "deposit"
    assert events["id"].is_monotonic_increasing
    assert len(read_journal(journal)) == 36  # decisions only


def test_the_cli_prints_the_controls_one_a_line(journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["journal", str(journal), "--events"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[3] for line in lines] == ["KILL_SWITCH", "RESUME", "RESET_PEAK"]
    assert "reason='fat finger'" in lines[0]
    assert main(["journal", str(journal), "--events", "--json", "--last", "1"]) == 0
    (last,) = capsys.readouterr().out.splitlines()
    assert json.loads(last)["event"] == "reset_peak"
    assert main(["journal", str(journal), "--events", "--since", "2999-01-01"]) == 0
    assert capsys.readouterr().out == ""


def test_events_with_decision_filters_is_a_clear_error(
    journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["journal", str(journal), "--events", "--degraded"]) == 2
    err = capsys.readouterr().err
    assert "--events takes only" in err
    assert len(err.strip().splitlines()) == 1


def test_the_report_lists_the_controls(journal: Path, tmp_path: Path) -> None:
    page = write_journal_report(journal, tmp_path).read_text(encoding="utf-8")
    section = page[page.index('<section id="events">') :]
    section = section[: section.index("</section>")]
    for control in ("kill_switch", "resume", "reset_peak", "fat finger", "checked the book"):
        assert control in section
