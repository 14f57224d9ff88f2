from __future__ import annotations

import numpy as np
import pytest

from advanced_risk.risk.garch import fit_gjr_garch
from advanced_risk.risk.garch_worker import GarchWorker


def test_worker_process_fit_equals_the_in_process_fit(sp500_index_returns: np.ndarray) -> None:
    returns = sp500_index_returns[:1000]
    worker = GarchWorker()
    try:
        remote = worker.fit(returns)
        again = worker.fit(returns)  # the same child answers the next request
    finally:
        worker.close()
    local = fit_gjr_garch(returns)
    assert remote == again
    for name in ("mu", "omega", "alpha", "gamma", "beta"):
        assert getattr(remote, name) == pytest.approx(getattr(local, name), rel=1e-9, abs=1e-15)


def test_worker_reports_a_failed_fit_as_runtime_error() -> None:
    worker = GarchWorker()
    try:
        with pytest.raises(RuntimeError, match="GARCH fit failed"):
            worker.fit(np.zeros(3))
    finally:
        worker.close()


# two real children (~5 s, 12 s beside a busy worker): a fresh child after close is also checked
# fast with a scripted child (test_garch_adversarial's fit_after_close_restarts), and a real
# child's fit by test_worker_process_fit_equals_the_in_process_fit
@pytest.mark.slow
def test_worker_restarts_after_close() -> None:
    worker = GarchWorker()
    returns = np.random.default_rng(0).normal(0.0, 0.01, 300)
    try:
        first = worker.fit(returns)
        worker.close()
        assert worker.fit(returns) == first
    finally:
        worker.close()
