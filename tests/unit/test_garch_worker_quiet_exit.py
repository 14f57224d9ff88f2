"""The GJR-GARCH worker's child leaves quietly when its bot is gone mid-fit (its answer meets a
closed pipe) or is interrupted with the bot's process group: no traceback on the bot's terminal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

COMMAND = (sys.executable, "-m", "advanced_risk.risk.garch_worker")


def _default_sigint() -> None:
    """In the child before exec: SIGINT's default action. A shell starts a background job (``make
    test &``, a CI step run that way) with SIGINT ignored, the child inherits that, and Python then
    installs no KeyboardInterrupt handler: the interrupt test's child ignored the signal for 60 s."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _child() -> tuple[subprocess.Popen[bytes], bytes]:
    """A worker child with piped stdin, stdout and stderr, and one request line (500 returns)."""
    child = subprocess.Popen(
        COMMAND,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_default_sigint,  # signal.signal only: no lock taken in the fork
    )
    returns = np.random.default_rng(0).normal(0.0, 0.01, 500).tolist()
    return child, (json.dumps(returns) + "\n").encode()


@pytest.mark.slow  # a real fit in a fresh child (~7 s); the interrupt test below takes the same exit
def test_an_answer_to_a_bot_that_is_gone_exits_without_a_traceback() -> None:
    child, request = _child()
    assert child.stdin is not None
    assert child.stdout is not None
    assert child.stderr is not None
    child.stdout.close()  # the bot died: nobody reads the answer
    child.stdin.write(request)
    child.stdin.close()
    assert child.wait(timeout=60) in (0, 1)
    assert b"Traceback" not in child.stderr.read()


def test_an_interrupt_exits_without_a_traceback() -> None:
    child, request = _child()
    assert child.stdin is not None
    assert child.stdout is not None
    assert child.stderr is not None
    child.stdin.write(request)
    child.stdin.flush()
    assert "omega" in json.loads(child.stdout.readline())  # one fit done: it now waits for a line
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=60) == 1
    assert b"Traceback" not in child.stderr.read()
    child.stdin.close()


BOT = """
from advanced_risk.risk.garch_worker import shared_worker
import numpy as np
worker = shared_worker()
worker.fit(np.random.default_rng(0).normal(0.0, 0.01, 300))
print(worker._proc.pid, flush=True)
"""


def test_the_shared_child_is_closed_when_the_bot_exits() -> None:
    """A bot that never closes its managers: at exit the shared worker's child is stopped and reaped
    (development mode reports a child still running as a ResourceWarning)."""
    done = subprocess.run(
        (sys.executable, "-X", "dev", "-c", BOT), capture_output=True, text=True, timeout=120, check=True
    )
    assert "ResourceWarning" not in done.stderr, done.stderr
    pid = int(done.stdout.split()[-1])
    with pytest.raises(ProcessLookupError):  # reaped, not left to exit on its own later
        os.kill(pid, 0)
