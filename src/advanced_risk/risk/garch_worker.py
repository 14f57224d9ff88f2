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

import dataclasses
import json
import subprocess
import sys
import threading

import numpy as np

from advanced_risk.measures.validation import FloatArray
from advanced_risk.risk.garch import GarchParams

__all__ = ["GarchWorker", "shared_worker"]

_WARM_UP_RETURNS = np.random.default_rng(0).normal(0.0, 0.01, 200)


class GarchWorker:
    """A child process that fits GJR-GARCH(1,1) (Student-t) on the returns it is sent."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def fit(self, returns: FloatArray) -> GarchParams:
        """Fit in the child (blocking; call it from a worker thread). Raises RuntimeError on failure."""
        request = json.dumps(np.asarray(returns, dtype=np.float64).tolist()) + "\n"
        with self._lock:
            proc = self._ensure()
            assert proc.stdin is not None  # opened with PIPE
            assert proc.stdout is not None
            try:
                proc.stdin.write(request)
                proc.stdin.flush()
                answer = proc.stdout.readline()
            except (BrokenPipeError, OSError) as exc:
                self._proc = None
                raise RuntimeError(f"GARCH worker failed: {exc}") from exc
        if not answer:
            self._proc = None
            raise RuntimeError("GARCH worker exited")
        data = json.loads(answer)
        if "error" in data:
            raise RuntimeError(f"GARCH fit failed: {data['error']}")
        return GarchParams(**data)

    def start(self) -> None:
        """Start the child and have it fit once (imports ``arch``), so later fits cost only the fit.

        Blocking (~1-3 s the first time; nothing once started): call it from a worker thread.
        """
        self.fit(_WARM_UP_RETURNS)

    def close(self) -> None:
        """Stop the child (it exits on EOF)."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()

    def _ensure(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "advanced_risk.risk.garch_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
        return self._proc


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
