"""GJR-GARCH fits in a helper process, so a fit never holds the deciding process's GIL.

A fit is ~25-50 ms of scipy optimisation in Python. On a thread of the bot's process it competes
for the GIL with the thread that decides, and every numpy call that releases the GIL can then wait
up to the interpreter's switch interval (5 ms) to get it back: the decision latency's tail grows.
:class:`GarchWorker` runs the fits in a child process started with ``python -m
advanced_risk.risk.garch_worker`` and talks to it over pipes (one JSON line per request and per
answer). Unlike ``multiprocessing`` with "spawn", this never re-imports the bot's main module, and
unlike "fork" it never copies a process that runs threads. The pipes are non-blocking and waited on
with ``poll`` (not ``select``: any fd number) under the fit's deadline (POSIX: Linux, macOS), so a
fit starts no thread of its own, and the child runs at a lower priority (``nice`` 10): on shared
cores a fit yields to the bot's threads. What a refit still costs the decision it starts on is in
docs/performance.md.

The child starts on the first fit (or :meth:`GarchWorker.start`) and lives until
:meth:`GarchWorker.close` (or the parent exits: it reads EOF and stops). If it dies, the next fit
starts a new one. Starting it costs a Python start and the ``arch`` import (~1-3 s), so the
managers of one process share one child (:func:`shared_worker`), started when the first opens.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import math
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import orjson

from advanced_risk.measures.validation import FloatArray
from advanced_risk.risk.garch import GarchParams, check_garch_params

__all__ = ["GarchWorker", "shared_worker"]

_WARM_UP_RETURNS = np.random.default_rng(0).normal(0.0, 0.01, 200)
_FIT_TIMEOUT_S = 60.0  # the first fit also starts Python and imports arch (~1-3 s; more on a busy box)
_CHILD_COMMAND = (sys.executable, "-m", "advanced_risk.risk.garch_worker")
_CHILD_NICENESS = 10  # a fit is background work: on shared cores the deciding thread goes first
_MAX_ANSWER_BYTES = 1 << 20  # an answer is ~150 bytes: a child sending more is broken, not slow

Popen: TypeAlias = "subprocess.Popen[bytes]"


class GarchWorker:
    """A child process that fits GJR-GARCH(1,1) (Student-t) on the returns it is sent.

    Parameters
    ----------
    timeout_s : seconds one fit may take (child start included); past it the child is killed and
        the fit raises ``RuntimeError``, so a hung child never hangs the caller.
    command : the child's command line (tests run misbehaving children with it); the default runs
        :func:`main` of this module with this interpreter.

    Every failure of a fit (the child crashed, was killed, hung, answered garbage or an unusable
    model) raises ``RuntimeError`` and leaves no child behind: a child that broke the protocol is
    killed and reaped, and the next fit starts a fresh one.
    """

    def __init__(self, *, timeout_s: float = _FIT_TIMEOUT_S, command: Sequence[str] | None = None) -> None:
        if not timeout_s > 0.0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
        self._timeout_s = float(timeout_s)
        self._command = list(_CHILD_COMMAND if command is None else command)
        self._proc: Popen | None = None
        self._lock = threading.Lock()  # one request on the pipes at a time
        self._state = threading.Lock()  # guards self._proc: close() never waits for a running fit
        # children close() killed while a fit held the lock: their pipes are closed by that fit's
        # thread once it is done with them (never an fd it may still be polling), under _state
        self._orphans: list[Popen] = []

    def fit(self, returns: FloatArray) -> GarchParams:
        """Fit in the child (blocking; call it from a worker thread). Raises RuntimeError on failure."""
        request = _encode(returns)
        with self._lock:
            try:
                return self._fit(request)
            finally:
                self._close_orphans()

    def _fit(self, request: bytes) -> GarchParams:
        """One exchange with the child (the caller holds ``_lock``)."""
        proc = self._ensure()
        try:
            answer = _exchange(proc, request, time.monotonic() + self._timeout_s)
        except (OSError, ValueError) as exc:  # a broken pipe, or a pipe close() has closed
            self._discard(proc)
            raise RuntimeError(f"GARCH worker failed: {exc!r}") from exc
        if answer is None:  # the deadline passed: kill it, so a hung child never hangs the caller
            self._discard(proc)
            why = f"no answer within timeout_s={self._timeout_s}"
            raise RuntimeError(f"GARCH worker failed: {why} (exit code {proc.returncode})")
        line, newline, rest = answer.partition(b"\n")
        if not newline and len(answer) > _MAX_ANSWER_BYTES:  # never a line: kill it
            self._discard(proc)
            raise RuntimeError(f"GARCH worker failed: {len(answer)} bytes and no end of line")
        if not newline:  # EOF, or a line cut short: the child died or was killed
            self._discard(proc)
            raise RuntimeError(f"GARCH worker failed: it exited (exit code {proc.returncode})")
        if rest:  # more than one line: the answers are out of step with the requests
            self._discard(proc)
            raise RuntimeError(f"GARCH worker answered more than one line: {answer[:200]!r}")
        answer = line
        try:
            data = orjson.loads(answer)
            if not isinstance(data, dict):
                raise TypeError(f"expected a JSON object, got {type(data).__name__}")
            if "error" in data:
                raise RuntimeError(f"GARCH fit failed: {data['error']}")
            return check_garch_params(GarchParams(**data), "GARCH worker answer")
        except RuntimeError:
            raise  # the child's own report: the protocol is intact
        except Exception as exc:  # garbage: the protocol may be out of step, start afresh
            self._discard(proc)
            raise RuntimeError(f"GARCH worker answered garbage ({exc!r}): {answer[:200]!r}") from exc

    def start(self) -> None:
        """Start the child and have it fit once (imports ``arch``), so later fits cost only the fit.

        Blocking (~1-3 s the first time; nothing once started): call it from a worker thread.
        """
        self.fit(_WARM_UP_RETURNS)

    def close(self) -> None:
        """Stop the child (it exits on EOF; killed if it does not within 5 s) and reap it.

        Never waits for a fit in flight: its child is killed, and that fit raises RuntimeError. A
        later :meth:`fit` starts a new child.
        """
        with self._state:
            proc, self._proc = self._proc, None
        if proc is not None and not self._lock.acquire(blocking=False):  # a fit in flight: it
            _kill_and_wait(proc)  # reads EOF and raises
            with self._state:  # its thread closes the pipes (never an fd it may still be polling)
                self._orphans.append(proc)
        elif proc is not None:  # idle (this thread holds the lock): ask it to exit
            try:
                if proc.stdin is not None:
                    with contextlib.suppress(OSError):
                        proc.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
            finally:
                self._lock.release()
            _reap(proc)
        if self._lock.acquire(blocking=False):  # no fit in flight (any more): none will close them
            try:
                self._close_orphans()
            finally:
                self._lock.release()

    def _close_orphans(self) -> None:
        """Close the pipes of the children close() killed during a fit (the caller holds ``_lock``)."""
        with self._state:
            orphans, self._orphans = self._orphans, []
        for proc in orphans:
            _reap(proc)

    def _discard(self, proc: Popen) -> None:
        with self._state:
            if self._proc is proc:
                self._proc = None
        _reap(proc)

    def _ensure(self) -> Popen:
        with self._state:
            if self._proc is None or self._proc.poll() is not None:
                if self._proc is not None:
                    _reap(self._proc)  # died between fits: close its pipes
                pipe = subprocess.PIPE
                proc = subprocess.Popen(self._command, stdin=pipe, stdout=pipe, bufsize=0)
                assert proc.stdin is not None  # opened with PIPE
                assert proc.stdout is not None
                try:  # every wait is a poll with a deadline
                    os.set_blocking(proc.stdin.fileno(), False)
                    os.set_blocking(proc.stdout.fileno(), False)
                except OSError as exc:  # pipes that cannot be non-blocking (not POSIX)
                    _reap(proc)
                    raise RuntimeError(f"GARCH worker needs non-blocking pipes: {exc!r}") from exc
                self._proc = proc
            return self._proc


def _encode(returns: FloatArray) -> bytes:
    """One request line: the returns as a JSON array (orjson, ~10 us for 500 values where
    ``json.dumps`` of a list takes ~200 us holding the GIL the deciding thread needs; the shortest
    round-trip form of each float, so the child fits exactly these values)."""
    values = np.ascontiguousarray(returns, dtype=np.float64)
    return orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE)


def _exchange(proc: Popen, request: bytes, deadline: float) -> bytes | None:
    """Write ``request`` and read one answer line, both before ``deadline`` (``time.monotonic``).

    The pipes are non-blocking and every wait is a ``poll`` with the time left, so no watchdog
    thread is started per fit (a thread start holds the GIL ~100-200 us while a decision runs).
    Returns what was read up to the read that brought the first newline (anything after that
    newline breaks the protocol); what was read before EOF (no newline: the child exited) or
    beyond ``_MAX_ANSWER_BYTES`` without a newline; or None when the deadline passed first.
    """
    assert proc.stdin is not None  # opened with PIPE
    assert proc.stdout is not None
    out, pending = proc.stdin.fileno(), memoryview(request)
    while pending:
        if not _wait(out, deadline, write=True):
            return None
        with contextlib.suppress(BlockingIOError):
            pending = pending[os.write(out, pending) :]
    src, answer = proc.stdout.fileno(), bytearray()
    while True:
        if not _wait(src, deadline, write=False):
            return None
        try:
            chunk = os.read(src, 65536)
        except BlockingIOError:
            continue
        if not chunk:  # EOF
            break
        answer += chunk
        if b"\n" in chunk or len(answer) > _MAX_ANSWER_BYTES:
            break
    return bytes(answer)


def _wait(fd: int, deadline: float, *, write: bool) -> bool:
    """Whether ``fd`` became ready (or hung up) before ``deadline``.

    ``poll``, not ``select``: ``select`` refuses an fd numbered 1024 or more (``ValueError``), which
    a bot holding many sockets and files gets for its pipes, and every fit would then fail.
    """
    poller = select.poll()
    poller.register(fd, select.POLLOUT if write else select.POLLIN)
    while (left := deadline - time.monotonic()) > 0.0:
        if poller.poll(math.ceil(left * 1000.0)):  # readiness, POLLHUP or POLLERR
            return True
    return False


def _kill(proc: Popen) -> None:
    with contextlib.suppress(OSError):  # already gone
        proc.kill()


def _kill_and_wait(proc: Popen) -> None:
    _kill(proc)
    with contextlib.suppress(subprocess.TimeoutExpired):  # a kill that takes 5 s
        proc.wait(timeout=5)


def _reap(proc: Popen) -> None:
    """Kill ``proc`` if it still runs, wait for it (no zombie) and close its pipes (no fd leak)."""
    _kill_and_wait(proc)
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


_SHARED: GarchWorker | None = None
_SHARED_LOCK = threading.Lock()


def shared_worker() -> GarchWorker:
    """The process-wide worker the managers share.

    Closed at interpreter exit (``atexit``): the idle child reads EOF and exits, and is reaped, so
    no child outlives the bot's process and Python's development mode reports no child still
    running. A child killed with the process (SIGKILL) exits on the EOF of its closed pipe.
    """
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = GarchWorker()
            atexit.register(_SHARED.close)
        return _SHARED


def main() -> None:
    """The child: one JSON array of returns per input line, one JSON object of parameters per output line."""
    with contextlib.suppress(AttributeError, OSError):  # not on every platform
        os.nice(_CHILD_NICENESS)  # the bot's own threads first when the cores are shared
    try:
        from advanced_risk.risk.garch import fit_gjr_garch

        for line in sys.stdin:
            try:
                params = fit_gjr_garch(np.array(json.loads(line), dtype=np.float64))
                answer = json.dumps(dataclasses.asdict(params))
            except Exception as exc:  # reported to the parent, which degrades to fhs_ewma
                answer = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
            sys.stdout.write(answer + "\n")
            sys.stdout.flush()
    except (BrokenPipeError, KeyboardInterrupt):
        # the bot is gone (killed mid-fit) or interrupted with its process group (Ctrl-C): leave
        # quietly, not with a traceback on the bot's terminal; stdout to /dev/null, so that the
        # interpreter's flush at exit does not raise again (the recipe of Python's signal docs)
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


if __name__ == "__main__":
    main()
