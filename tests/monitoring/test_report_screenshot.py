"""The report is looked at: headless Chromium renders it, the screenshot is not blank, the console quiet.

Slow (a browser start, ~2-5 s each): runs under ``make test-all``, which installs Debian's
``chromium`` when it is missing. Locally a missing browser skips these tests; under CI (the ``CI``
environment variable, as in ``tests/conftest.py``'s ``require``) it fails them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from advanced_risk.monitoring.report import write_journal_report

pytestmark = pytest.mark.slow

CONSOLE = re.compile(r":CONSOLE[:(]|Uncaught ")
"""A line Chromium's ``--enable-logging=stderr`` writes for a message of the page's console."""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path is not None:
            return path
    reason = "chromium is not installed (make test-all installs it: apt-get install -y chromium)"
    if os.environ.get("CI", "").strip().lower() in ("", "0", "false"):
        pytest.skip(reason)
    pytest.fail(f"{reason}; required under CI", pytrace=False)


def _screenshot(page: Path, shot: Path) -> list[str]:
    """Render ``page`` into ``shot`` (1280 x 4000); returns the page's console lines from stderr."""
    argv = [
        _chromium(),
        "--headless=new",
        "--disable-gpu",
        "--no-sandbox",  # the tests run as root in CI containers
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        f"--screenshot={shot}",
        "--window-size=1280,4000",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return [line for line in done.stderr.splitlines() if CONSOLE.search(line)]


def _ink(shot: Path) -> tuple[float, float]:
    """(standard deviation of the grey levels, share of pixels that are not near-white) in [0, 1]."""
    import matplotlib.image

    rgb = np.asarray(matplotlib.image.imread(shot), dtype=np.float64)[..., :3]
    grey = rgb.mean(axis=-1)
    return float(grey.std()), float((grey < 0.9).mean())


def test_the_report_renders_in_chromium_without_console_errors(manager_journal: Path, tmp_path: Path) -> None:
    page = write_journal_report(manager_journal, tmp_path)
    shot = tmp_path / "shot.png"
    console = _screenshot(page, shot)
    assert console == []
    spread, inked = _ink(shot)
    assert spread > 0.05, spread
    assert inked > 0.03, inked  # text, tables and five figures, not a blank page


def test_the_console_check_sees_an_error_and_a_blank_page(tmp_path: Path) -> None:
    """The two checks above can fail: a page that logs an error is seen, a blank page has no ink."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><script>console.error("boom")</script></body></html>')
    console = _screenshot(page, tmp_path / "bad.png")
    assert any("boom" in line for line in console), console
    assert _ink(tmp_path / "bad.png") == (0.0, 0.0)
