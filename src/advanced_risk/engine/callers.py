"""One lock for every caller of a manager: threads and the tasks of any event loop.

A manager is called from the bot's event loop (``manage_risk``), from synchronous callbacks on
other threads (``manage_risk_sync``), from operator scripts (``engage_kill_switch`` in a second
``asyncio.run``) and from supervisors that restart their loop. The engine's state (the tracker's
ring buffers, the universe, the trading state) must see one caller at a time, whichever of these
it is, or two bars interleave and the per-asset arrays fall out of step.

:class:`CallerLock` is that one mutual exclusion: a ``threading.Lock``. Synchronous callers take
it directly. Async callers first queue on an ``asyncio.Lock`` of their own loop (first come, first
served within the loop; one per loop, because an ``asyncio.Lock`` belongs to the loop that first
waited on it), then take the thread lock without blocking their loop: at once when it is free, the
common case, else by polling it every 0.1-2 ms while a thread of the same manager holds it.
Cancelled while polling, a task holds nothing; cancelled while holding, it releases on the way out.
While a task of another loop polls, a thread about to take the lock first lets it in (waiting at
most ``_YIELD_MAX_S``): a thread that calls back to back re-takes a released lock at once, so a
polling task (an operator's ``engage_kill_switch``) could otherwise wait for as long as it calls.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from weakref import WeakKeyDictionary

__all__ = ["CallerLock"]

_POLL_FIRST_S = 0.0001
_POLL_MAX_S = 0.002
_YIELD_MAX_S = 0.05


class CallerLock:
    """Serialises the callers of one manager across threads and event loops (module docstring)."""

    def __init__(self) -> None:
        self._thread = threading.Lock()
        self._queues: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = WeakKeyDictionary()
        self._queues_guard = threading.Lock()
        self._holder_loop: asyncio.AbstractEventLoop | None = None  # the loop of a task holding it
        self._polling: dict[asyncio.AbstractEventLoop, int] = {}  # loops with a task polling, guarded by:
        self._turn = threading.Condition()

    def locked(self) -> bool:
        """Whether a caller holds the lock now."""
        return self._thread.locked()

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock on this thread (blocks until free).

        Raises
        ------
        RuntimeError
            Called on an event loop's thread while a task of that loop holds the lock: blocking
            would stop the loop the holder needs to finish (a deadlock), so the caller is told to
            await the async entry point instead.
        """
        if self._polling:  # a task is polling for the lock: it goes first
            self._yield_to_tasks()
        if not self._thread.acquire(blocking=False):
            loop = _running_loop()
            if loop is not None and loop is self._holder_loop:
                raise RuntimeError(
                    "a synchronous call on the event loop's thread while one of its tasks is deciding "
                    "would deadlock; await the async method (manage_risk) from the loop instead"
                )
            self._thread.acquire()
        try:
            yield
        finally:
            self._thread.release()

    @asynccontextmanager
    async def held_async(self) -> AsyncIterator[None]:
        """Hold the lock from a task, queueing first behind the tasks of the same loop."""
        loop = asyncio.get_running_loop()
        with self._queues_guard:
            queue = self._queues.get(loop)
            if queue is None:
                queue = self._queues[loop] = asyncio.Lock()
        async with queue:
            if not self._thread.acquire(blocking=False):
                await self._poll(loop)
            self._holder_loop = loop
            try:
                yield
            finally:
                self._holder_loop = None
                self._thread.release()

    async def _poll(self, loop: asyncio.AbstractEventLoop) -> None:
        """Take the thread lock by polling it, announced to the threads so that they let us in."""
        with self._turn:
            self._polling[loop] = self._polling.get(loop, 0) + 1
        try:
            wait = _POLL_FIRST_S
            while not self._thread.acquire(blocking=False):
                await asyncio.sleep(wait)
                wait = min(2.0 * wait, _POLL_MAX_S)
        finally:
            with self._turn:
                if self._polling[loop] == 1:
                    del self._polling[loop]
                else:
                    self._polling[loop] -= 1
                self._turn.notify_all()

    def _yield_to_tasks(self) -> None:
        """Wait (at most ``_YIELD_MAX_S``) until no task of another loop polls for the lock; a task
        of this thread's own loop cannot run while this thread waits, so it is not waited for."""
        own = _running_loop()
        with self._turn:
            self._turn.wait_for(lambda: all(loop is own for loop in self._polling), timeout=_YIELD_MAX_S)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
