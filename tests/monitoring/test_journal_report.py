"""The journal's HTML report: every section, only embedded images, the VaR backtest by its definition."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from advanced_risk.__main__ import main
from advanced_risk.engine.state import StateStore
from advanced_risk.measures.backtest import christoffersen_independence, kupiec_pof
from advanced_risk.monitoring.journal import read_journal
from advanced_risk.monitoring.report import REPORT_NAME, render_report, var_backtest, write_journal_report

SECTIONS = {
    "definitions",
    "equity",
    "var",
    "exposure",
    "states",
    "alerts",
    "events",
    "drift",
    "latency",
    "backtest",
}
NEEDS_EQUITY = ("equity", "var", "backtest")


class Page(HTMLParser):
    """What the tests check of a page: section ids and texts, images, links, scripts, styles."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.sections: dict[str, str] = {}
        self.images: list[str] = []
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self._section: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self._section = values.get("id") or ""
            self.sections[self._section] = ""
        if tag == "img":
            self.images.append(values.get("src") or "")
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "srcset", "action", "data")]

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._section = None

    def handle_data(self, data: str) -> None:
        if self._section is not None:
            self.sections[self._section] += data


@pytest.fixture(scope="module")
def page(manager_journal: Path, tmp_path_factory: pytest.TempPathFactory) -> Page:
    path = write_journal_report(manager_journal, tmp_path_factory.mktemp("report"))
    assert path.name == REPORT_NAME
    return Page(path.read_text(encoding="utf-8"))


def test_the_page_has_every_section(page: Page) -> None:
    assert set(page.sections) == SECTIONS
    assert "no equity recorded" not in " ".join(page.sections.values())


def test_the_drift_section_plots_each_models_score_and_counts_its_replacements(
    manager_journal: Path,
) -> None:
    frame = read_journal(manager_journal)
    assert "No model tracked input drift" in Page(render_report(frame)).sections["drift"]
    n = len(frame)
    scores = np.linspace(0.0, 0.8, n)
    frame["payload"] = [
        {**p, "drift": {"policy": None if i < 50 else float(scores[i]), "risk_agents": 0.1}}
        for i, p in enumerate(frame["payload"])
    ]
    drifted = "input drift: policy score 0.7 > 0.4 (features: a); replaced by the rules"
    frame["alerts"] = [[*a, drifted] if scores[i] > 0.4 else a for i, a in enumerate(frame["alerts"])]
    page = Page(render_report(frame))
    expected = int((scores > 0.4).sum())
    assert f"policy on {expected}, risk_agents on 0" in page.sections["drift"]
    assert len(page.images) == 6


def test_every_image_is_an_embedded_png_and_nothing_is_fetched(page: Page) -> None:
    assert len(page.images) == 5  # equity, var, exposure, states, latency
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    assert all(url.startswith("data:") for url in page.urls), [u[:60] for u in page.urls]
    assert not page.tags & {"script", "link", "iframe", "object", "embed"}


def test_the_page_states_the_definitions_and_the_skipped_pairs(page: Page, manager_journal: Path) -> None:
    definitions = page.sections["definitions"]
    assert "equity_t+1 / equity_t - 1" in definitions
    assert "< -VaR_t" in definitions
    bt = var_backtest(read_journal(manager_journal))
    assert f"{bt.skipped} skipped (VaR or equity null)" in page.sections["backtest"]
    assert "Kupiec" in page.sections["backtest"]
    assert "Christoffersen" in page.sections["backtest"]


def test_the_latency_section_gives_p50_p99_and_max(page: Page, manager_journal: Path) -> None:
    latency = read_journal(manager_journal)["latency_ms"]
    text = page.sections["latency"]
    for value in (np.percentile(latency, 50), np.percentile(latency, 99), latency.max()):
        assert f"{value:.3f}" in text


def test_the_alerts_section_counts_them_and_lists_the_last_50(page: Page, manager_journal: Path) -> None:
    frame = read_journal(manager_journal)
    alerts = [a for row in frame["alerts"] for a in row]
    assert f"{len(alerts)} alerts" in page.sections["alerts"]
    assert alerts[-1] in page.sections["alerts"]


def test_the_backtest_follows_the_stated_definition(manager_journal: Path) -> None:
    frame = read_journal(manager_journal)
    assert not any("replaces" in a for alerts in frame["alerts"] for a in alerts)
    equity, var = frame["equity"].to_numpy(), frame["var"].to_numpy()
    hits = [
        float(equity[t + 1] / equity[t] - 1.0 < -var[t])
        for t in range(len(frame) - 1)
        if np.isfinite(var[t]) and np.isfinite(equity[t]) and np.isfinite(equity[t + 1])
    ]
    bt = var_backtest(frame, alpha=0.99)
    assert (bt.pairs, bt.tested, bt.skipped) == (len(frame) - 1, len(hits), len(frame) - 1 - len(hits))
    assert bt.skipped > 0  # the rows before the tracker's window hold no VaR
    assert bt.breaches == int(sum(hits))
    assert bt.breaches > 0  # the reported 35 % loss at least
    assert bt.kupiec == kupiec_pof(hits, 0.99)
    assert bt.christoffersen == christoffersen_independence(hits)


def _rewrite(source: Path, target: Path, drop: tuple[str, ...]) -> Path:
    """A copy of the journal at ``source`` whose rows lack the fields ``drop`` (an older journal)."""
    with StateStore(source, read_only=True) as store:
        entries = store.journal(store.count())
    with StateStore(target) as store:
        rows = [(e.decision_id, {k: v for k, v in e.payload.items() if k not in drop}) for e in entries]
        store.append_decisions(rows, [e.ts for e in entries])
    return target


def test_a_replaced_row_is_left_out_of_the_backtest(manager_journal: Path, tmp_path: Path) -> None:
    """A row the bot never received (a later row ``replaces`` it) is not paired with its replacement."""
    with StateStore(manager_journal, read_only=True) as store:
        entries = store.journal(store.count())
    rows, stamps = [], []
    for e in entries:
        rows.append((e.decision_id, e.payload))
        stamps.append(e.ts)
        if e.id in (150, 201):  # the bot received a replacement of this decision, for the same bar
            alert = f"degraded: replaces {e.decision_id}: journal not durable within the deadline"
            payload = {**e.payload, "degraded": True, "alerts": [*e.payload["alerts"], alert]}
            rows.append((f"{e.decision_id}-replacement", payload))
            stamps.append(e.ts)
    with StateStore(tmp_path / "replaced.db") as store:
        store.append_decisions(rows, stamps)
    original = var_backtest(read_journal(manager_journal))
    replaced = var_backtest(read_journal(tmp_path / "replaced.db"))
    assert replaced.replaced == 2
    assert (replaced.pairs, replaced.tested, replaced.breaches) == (
        original.pairs,
        original.tested,
        original.breaches,
    )
    assert replaced.kupiec == original.kupiec


def test_a_journal_without_equity_gets_no_equity_recorded_instead_of_failing(
    manager_journal: Path, tmp_path: Path
) -> None:
    old = _rewrite(manager_journal, tmp_path / "old.db", ("equity", "drawdown", "drift"))
    page = Page(write_journal_report(old, tmp_path / "out").read_text(encoding="utf-8"))
    assert set(page.sections) == SECTIONS
    for key in NEEDS_EQUITY:
        assert "no equity recorded" in page.sections[key], key
    assert len(page.images) == 3  # exposure, states, latency


def test_the_report_command_writes_the_page_and_prints_its_path(
    manager_journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "deep" / "folder"
    assert main(["report", "--journal", str(manager_journal), "--out", str(out), "--alpha", "0.95"]) == 0
    assert capsys.readouterr().out.strip() == str(out / REPORT_NAME)
    text = Page((out / REPORT_NAME).read_text(encoding="utf-8")).sections["backtest"]
    assert "alpha 95.00%" in text


def test_an_empty_journal_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with StateStore(tmp_path / "empty.db"):
        pass
    assert main(["report", "--journal", str(tmp_path / "empty.db"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no decisions" in err
    assert len(err.strip().splitlines()) == 1


def test_null_fields_of_a_row_are_nan_in_the_frame(manager_journal: Path) -> None:
    frame = read_journal(manager_journal)
    nulls = frame[frame["var"].isna()]
    assert all(row["payload"]["var"] is None for _, row in nulls.iterrows())
    assert json.loads(json.dumps(nulls.iloc[0]["payload"]))["var"] is None
    assert pd.isna(nulls.iloc[0]["cvar"])
