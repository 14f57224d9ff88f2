"""The GARCH worker's pipes: no thread per fit, deadlines on both directions, a niced child."""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest

from advanced_risk.risk.garch_worker import GarchWorker, _encode

_GOOD = '{"mu": 0.0, "omega": 1e-06, "alpha": 0.05, "gamma": 0.1, "beta": 0.85, "nu": 6.0}'


def _child(body: str) -> list[str]:
    """A fake worker child: for each request line, run ``body`` (``line`` is bound)."""
    script = f"import sys, time, os\nfor line in sys.stdin:\n    {body}\n    sys.stdout.flush()\n"
    return [sys.executable, "-c", script]


def test_the_request_is_the_json_array_of_the_returns_bit_for_bit() -> None:
    import json

    x = np.random.default_rng(3).normal(0.0, 0.01, 500)
    x[7] = 5e-324  # the smallest subnormal and a negative zero survive the round trip
    x[8] = -0.0
    line = _encode(x)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    back = np.array(json.loads(line), dtype=np.float64)
    assert np.array_equal(back.view(np.int64), x.view(np.int64))
    assert np.array_equal(np.array(json.loads(_encode(x[::2]))), x[::2])  # a strided view


def test_a_fit_starts_no_thread() -> None:
    answer = f"time.sleep(0.3); sys.stdout.write({_GOOD!r} + '\\n')"
    worker = GarchWorker(timeout_s=10.0, command=_child(answer))
    counts: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            counts.append(threading.active_count())
            time.sleep(0.01)

    baseline = threading.active_count()
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert worker.fit(np.full(150, 0.01)).beta == 0.85
    finally:
        done.set()
        watcher.join()
        worker.close()
    assert max(counts) == baseline + 1  # the watcher itself; a watchdog timer per fit was one more


def test_a_request_larger_than_the_pipe_buffer_is_written_whole() -> None:
    fields = '"mu": 0.0, "omega": 1e-06, "alpha": 0.05, "gamma": 0.1, "beta": 0.85'
    echo = f"sys.stdout.write('{{{fields}, \"nu\": ' + str(len(line)) + '}}\\n')"  # nu: the bytes read
    worker = GarchWorker(timeout_s=20.0, command=_child(f"time.sleep(0.2); {echo}"))
    returns = np.random.default_rng(0).normal(0.0, 0.01, 40_000)  # ~900 KB: many pipe buffers
    try:
        assert worker.fit(returns).nu == len(_encode(returns))
    finally:
        worker.close()


def test_a_child_that_never_reads_times_out_on_the_write() -> None:
    worker = GarchWorker(timeout_s=0.5, command=[sys.executable, "-c", "import time; time.sleep(60)"])
    returns = np.random.default_rng(0).normal(0.0, 0.01, 40_000)  # more than the pipe holds
    t0 = time.perf_counter()
    try:
        with pytest.raises(RuntimeError, match=r"timeout_s=0\.5"):
            worker.fit(returns)
        assert time.perf_counter() - t0 < 5.0
        assert worker._proc is None
    finally:
        worker.close()


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="POSIX priorities")
def test_the_real_child_runs_at_a_lower_priority() -> None:
    worker = GarchWorker()
    try:
        worker.start()
        proc = worker._proc
        assert proc is not None
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == min(mine + 10, 19)
    finally:
        worker.close()
