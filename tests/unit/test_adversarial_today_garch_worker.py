"""Adversarial checks of the GARCH worker's non-blocking pipes (commit ca78a1a).

- every wait used ``select``, which refuses an fd numbered 1024 or more: in a bot holding many
  sockets and files every fit failed with ``ValueError('filedescriptor out of range in select()')``;
- ``close()`` during a fit left the killed child's pipes open (to the garbage collector: a
  ``ResourceWarning``, an fd leak without reference counting) when that fit did not discard the
  child itself (its answer was already in, or it had not started its exchange yet);
- a child that wrote its line and then part of another, or bytes without end, was waited on until
  the deadline (and its output buffered without bound) instead of being found broken at once.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import threading
import time
from collections.abc import Iterator
from unittest import mock

import numpy as np
import pytest

from advanced_risk.risk import garch_worker
from advanced_risk.risk.garch_worker import GarchWorker

_GOOD = '{"mu": 0.0, "omega": 1e-06, "alpha": 0.05, "gamma": 0.1, "beta": 0.85, "nu": 6.0}'
_RETURNS = np.full(150, 0.01)


def _child(body: str) -> list[str]:
    """A fake worker child: for each request line, run ``body`` (``line`` is bound)."""
    script = f"import sys, time, os\nfor line in sys.stdin:\n    {body}\n    sys.stdout.flush()\n"
    return [sys.executable, "-c", script]


_ANSWER = _child(f"sys.stdout.write({_GOOD!r} + '\\n')")


@pytest.fixture
def high_fds() -> Iterator[None]:
    """Hold open fds up to a number past 1024, so the worker's pipes get numbers above it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the hard fd limit {hard} is below 1200")
    if soft != resource.RLIM_INFINITY and soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1200, hard))
    held: list[int] = []
    try:
        while not held or held[-1] < 1030:
            held.append(os.open(os.devnull, os.O_RDONLY))
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.usefixtures("high_fds")
def test_a_fit_works_when_the_pipes_are_numbered_past_1024() -> None:
    worker = GarchWorker(timeout_s=10.0, command=_ANSWER)
    try:
        assert worker.fit(_RETURNS).beta == 0.85
        proc = worker._proc
        assert proc is not None
        assert proc.stdout is not None
        assert proc.stdout.fileno() >= 1024  # the case select() refused
        assert worker.fit(_RETURNS).beta == 0.85
    finally:
        worker.close()


def test_close_during_a_fit_whose_answer_is_in_closes_the_childs_pipes() -> None:
    worker = GarchWorker(timeout_s=10.0, command=_ANSWER)
    checking, release = threading.Event(), threading.Event()
    check = garch_worker.check_garch_params

    def slow_check(*args, **kwargs):  # type: ignore[no-untyped-def]
        checking.set()  # the answer has been read: the fit holds the lock, its pipes are done with
        release.wait(5.0)
        return check(*args, **kwargs)

    results: list[object] = []
    with mock.patch.object(garch_worker, "check_garch_params", slow_check):
        fitter = threading.Thread(target=lambda: results.append(worker.fit(_RETURNS)))
        fitter.start()
        assert checking.wait(5.0)
        proc = worker._proc
        assert proc is not None
        assert proc.stdin is not None
        assert proc.stdout is not None
        worker.close()  # kills the child; the fit's thread must close its pipes
        release.set()
        fitter.join(5.0)
    assert len(results) == 1
    assert proc.returncode is not None  # reaped: no zombie
    assert proc.stdin.closed
    assert proc.stdout.closed
    assert worker._proc is None


def test_close_while_a_fit_is_about_to_start_closes_the_old_childs_pipes() -> None:
    worker = GarchWorker(timeout_s=10.0, command=_ANSWER)
    try:
        worker.fit(_RETURNS)
        old = worker._proc
        assert old is not None
        assert old.stdin is not None
        assert old.stdout is not None
        with worker._lock:  # a fit thread that has the lock and has not reached _ensure yet
            worker.close()
            assert old.returncode is not None  # killed and reaped at once
        assert worker.fit(_RETURNS).beta == 0.85  # the next fit (a new child) closes the old pipes
        assert old.stdin.closed
        assert old.stdout.closed
        worker.close()
        with worker._lock:
            worker.close()  # nothing to kill: the orphan is closed by whoever next holds the lock
    finally:
        worker.close()


def test_close_with_nothing_in_flight_closes_orphans_left_behind() -> None:
    worker = GarchWorker(timeout_s=10.0, command=_ANSWER)
    worker.fit(_RETURNS)
    old = worker._proc
    assert old is not None
    assert old.stdin is not None
    assert old.stdout is not None
    worker._lock.acquire()
    try:
        worker.close()
    finally:
        worker._lock.release()
    worker.close()  # idle now: the pipes are closed here
    assert old.stdin.closed
    assert old.stdout.closed


def _fds() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="Linux /proc")
def test_fits_racing_close_leak_no_fd_and_leave_no_zombie() -> None:
    worker = GarchWorker(
        timeout_s=10.0, command=_child(f"time.sleep(0.002); sys.stdout.write({_GOOD!r} + '\\n')")
    )
    worker.fit(_RETURNS)
    worker.close()
    before = _fds()
    stop = time.monotonic() + 1.5

    def fits() -> None:
        while time.monotonic() < stop:
            with contextlib.suppress(RuntimeError):
                worker.fit(_RETURNS)

    def closes() -> None:
        while time.monotonic() < stop:
            time.sleep(0.003)
            worker.close()

    threads = [threading.Thread(target=fits) for _ in range(3)] + [threading.Thread(target=closes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    worker.close()
    assert worker._orphans == []
    assert _fds() == before


@pytest.mark.parametrize(
    ("body", "match"),
    [  # a second, partial line; bytes without an end of line (no longer buffered until the deadline)
        (
            f"sys.stdout.write({_GOOD!r} + '\\n{{\"mu\": '); sys.stdout.flush(); time.sleep(60)",
            "more than one line",
        ),
        ("while True: sys.stdout.write('x' * 65536)", "no end of line"),
    ],
)
def test_an_answer_that_breaks_the_line_protocol_is_found_at_once_not_at_the_deadline(
    body: str, match: str
) -> None:
    worker = GarchWorker(timeout_s=30.0, command=_child(body))
    t0 = time.perf_counter()
    try:
        with pytest.raises(RuntimeError, match=match):
            worker.fit(_RETURNS)
        assert time.perf_counter() - t0 < 5.0
        assert worker._proc is None  # out of step: killed, the next fit starts afresh
    finally:
        worker.close()


def test_an_answer_written_in_slow_chunks_is_read_whole() -> None:
    parts = [_GOOD[:10], _GOOD[10:40], _GOOD[40:] + "\n"]
    body = "; ".join(f"sys.stdout.write({p!r}); sys.stdout.flush(); time.sleep(0.05)" for p in parts)
    worker = GarchWorker(timeout_s=10.0, command=_child(body))
    try:
        assert worker.fit(_RETURNS).nu == 6.0
        assert worker.fit(_RETURNS).nu == 6.0  # still in step
    finally:
        worker.close()


def test_non_finite_returns_are_refused_by_the_real_child_not_fitted() -> None:
    worker = GarchWorker()
    x = np.random.default_rng(0).normal(0.0, 0.01, 300)
    try:
        for bad in (np.nan, np.inf):
            y = x.copy()
            y[5] = bad
            with pytest.raises(RuntimeError, match="GARCH fit failed"):
                worker.fit(y)
        assert worker.fit(x).persistence <= 1.0  # the child lives on after its own reports
    finally:
        worker.close()
