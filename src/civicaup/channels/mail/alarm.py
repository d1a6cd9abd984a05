"""The time budget of a decision made in the main thread, kept by an interval timer (SIGALRM).

The gateway decides a small message in the event loop's own thread: handing it to a thread pool and back costs
two cross-thread wake-ups, and the decision's working set (word lists, model weights) moves to whichever core the
pool thread runs on, which measured as about as much CPU again as the decision itself. The pool kept the budget
with `asyncio.wait_for`; here `signal.setitimer` does: when the budget runs out, the handler raises `Overrun` in
the main thread at the next bytecode, so a decision stuck in Python code ends on time with a tempfail. A single
long call into C ends when that call returns: as in the pool if the call holds the GIL (a regular expression),
later than the pool's answer if it releases it (decompression); the gateway's 64 KiB cap on what it decides here
keeps both short.

Only the main thread receives signals, and a process has one SIGALRM, so `usable()` is false in any other thread
and when something else already owns SIGALRM; the gateway then uses its thread pool as before.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Overrun(BaseException):
    """The decision ran past its budget. A BaseException, as KeyboardInterrupt is: the parsers' last-resort
    `except Exception` (a degraded parse rather than none) must not turn an overrun into a late decision."""

REPEAT = 0.05  # seconds: an Overrun swallowed anyway is raised again until the work ends


class Alarm:
    def __init__(self) -> None:
        self._armed = False

    def usable(self) -> bool:
        """True in the main thread when SIGALRM is free or already ours (the handler is installed on first use)."""
        if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
            return False
        current = signal.getsignal(signal.SIGALRM)
        if current == self._fire:
            return True
        if current is not signal.SIG_DFL:
            return False  # someone else's timer: leave it alone
        signal.signal(signal.SIGALRM, self._fire)
        return True

    def _fire(self, signum: int, frame: FrameType | None) -> None:
        if self._armed:  # a stray alarm after the work ended is ignored
            signal.setitimer(signal.ITIMER_REAL, REPEAT)
            raise Overrun()

    @contextmanager
    def limit(self, seconds: float) -> Iterator[None]:
        """Raise `Overrun` in the body if it runs longer than `seconds`. Main thread only (see `usable`)."""
        self._armed = True
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
        try:
            yield
        finally:
            self._armed = False  # first: a signal landing between these two lines is then a stray one, ignored
            signal.setitimer(signal.ITIMER_REAL, 0)


ALARM = Alarm()
