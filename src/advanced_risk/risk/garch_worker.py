"""GJR-GARCH fits in a helper process, so a fit never holds the deciding process's GIL.

A fit is ~25-50 ms of scipy optimisation in Python. On a thread of the bot's process it competes
for the GIL with the thread that decides, and every numpy call that releases the GIL can then wait
up to the interpreter's switch interval (5 ms) to get it back: the decision latency's tail grows.
:class:`GarchWorker` runs the fits in a child process started with ``python -m
advanced_risk.risk.garch_worker`` and talks to it over pipes (one JSON line per request and per
answer). Unlike ``multiprocessing`` with "spawn", this never re-imports the bot's main module, and
unlike "fork" it never copies a process that runs threads.

The child starts on the first fit (or :meth:`GarchWorker.start`) and lives until
:meth:`GarchWorker.close` (or the parent exits: it reads EOF and stops). If it dies, the next fit
starts a new one. Starting it costs a Python start and the ``arch`` import (~1-3 s), so the
managers of one process share one child (:func:`shared_worker`), started when the first opens.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import sys
import threading
from collections.abc import Sequence

import numpy as np

from advanced_risk.measures.validation import FloatArray
from advanced_risk.risk.garch import GarchParams, check_garch_params

__all__ = ["GarchWorker", "shared_worker"]

_WARM_UP_RETURNS = np.random.default_rng(0).normal(0.0, 0.01, 200)
_FIT_TIMEOUT_S = 60.0  # the first fit also starts Python and imports arch (~1-3 s; more on a busy box)
_CHILD_COMMAND = (sys.executable, "-m", "advanced_risk.risk.garch_worker")


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
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()  # one request on the pipes at a time
        self._state = threading.Lock()  # guards self._proc: close() never waits for a running fit

    def fit(self, returns: FloatArray) -> GarchParams:
        """Fit in the child (blocking; call it from a worker thread). Raises RuntimeError on failure."""
        request = json.dumps(np.asarray(returns, dtype=np.float64).tolist()) + "\n"
        with self._lock:
            proc = self._ensure()
            assert proc.stdin is not None  # opened with PIPE
            assert proc.stdout is not None
            # the watchdog kills a child that has not answered in time: readline then sees EOF
            fired = threading.Event()
            watchdog = threading.Timer(self._timeout_s, _expire, (proc, fired))
            watchdog.daemon = True
            watchdog.start()
            try:
                proc.stdin.write(request)
                proc.stdin.flush()
                answer = proc.stdout.readline()
            except (OSError, ValueError) as exc:  # a broken pipe, or a pipe close() has closed
                self._discard(proc)
                raise RuntimeError(f"GARCH worker failed: {exc!r}") from exc
            finally:
                watchdog.cancel()
                watchdog.join()
            if not answer.endswith("\n"):  # EOF, or a line cut short: the child died or was killed
                self._discard(proc)
                why = f"no answer within timeout_s={self._timeout_s}" if fired.is_set() else "it exited"
                raise RuntimeError(f"GARCH worker failed: {why} (exit code {proc.returncode})")
            try:
                data = json.loads(answer)
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
        if proc is None:
            return
        if self._lock.acquire(blocking=False):  # idle: ask it to exit
            try:
                if proc.stdin is not None:
                    with contextlib.suppress(OSError):
                        proc.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
            finally:
                self._lock.release()
        _reap(proc)  # a fit in flight then reads EOF and raises

    def _discard(self, proc: subprocess.Popen[str]) -> None:
        with self._state:
            if self._proc is proc:
                self._proc = None
        _reap(proc)

    def _ensure(self) -> subprocess.Popen[str]:
        with self._state:
            if self._proc is None or self._proc.poll() is not None:
                if self._proc is not None:
                    _reap(self._proc)  # died between fits: close its pipes
                self._proc = subprocess.Popen(
                    self._command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    bufsize=1,
                )
            return self._proc


def _expire(proc: subprocess.Popen[str], fired: threading.Event) -> None:
    fired.set()
    _kill(proc)


def _kill(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(OSError):  # already gone
        proc.kill()


def _reap(proc: subprocess.Popen[str]) -> None:
    """Kill ``proc`` if it still runs, wait for it (no zombie) and close its pipes (no fd leak)."""
    _kill(proc)
    with contextlib.suppress(subprocess.TimeoutExpired):  # a kill that takes 5 s
        proc.wait(timeout=5)
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


_SHARED: GarchWorker | None = None
_SHARED_LOCK = threading.Lock()


def shared_worker() -> GarchWorker:
    """The process-wide worker the managers share (its child exits with this process)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = GarchWorker()
        return _SHARED


def main() -> None:
    """The child: one JSON array of returns per input line, one JSON object of parameters per output line."""
    from advanced_risk.risk.garch import fit_gjr_garch

    for line in sys.stdin:
        try:
            params = fit_gjr_garch(np.array(json.loads(line), dtype=np.float64))
            answer = json.dumps(dataclasses.asdict(params))
        except Exception as exc:  # reported to the parent, which degrades to fhs_ewma
            answer = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
