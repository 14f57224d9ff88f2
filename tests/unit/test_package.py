from __future__ import annotations

import subprocess
import sys

import pytest

import advanced_risk


def test_import_does_not_load_torch_pandas_or_numba() -> None:
    code = "import sys, advanced_risk; print(*(m in sys.modules for m in ('torch', 'pandas', 'numba')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]


def test_lazy_names_resolve_to_their_modules() -> None:
    from advanced_risk.measures.var import historical_var
    from advanced_risk.risk.tracker import RiskTracker

    assert advanced_risk.measures.historical_var is historical_var
    assert advanced_risk.RiskTracker is RiskTracker
    assert "historical_var" in advanced_risk.measures.__all__
    assert "historical_var" in dir(advanced_risk.measures)


@pytest.mark.timing
def test_import_is_fast_when_warm() -> None:
    code = "import time; t = time.perf_counter(); import advanced_risk; print(time.perf_counter() - t)"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)  # warm the caches
    seconds = min(
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(3)
    )
    assert seconds < 0.5


def test_public_names_resolve() -> None:
    for name in advanced_risk.__all__:
        assert getattr(advanced_risk, name) is not None


def test_library_is_silent_until_logging_is_configured() -> None:
    code = (
        "from advanced_risk.logs import get_logger\n"
        "get_logger('advanced_risk.test').warning('decision_degraded', component='policy')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout == ""
    assert result.stderr == ""
