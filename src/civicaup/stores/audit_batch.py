"""Batched writes to the hash-chained audit log, for adapters that decide thousands of times a second.

:func:`append_many` writes a list of entries at the head of the chain in one transaction (it lives in
:mod:`civicaup.stores.audit`, which :func:`~civicaup.stores.audit.append` also uses, so ``audit verify`` checks
them like any other entry).
:class:`AuditWriter` is a background thread with a queue: adapters ``put`` entries (a deque append, no
I/O) and the thread writes them every ``interval`` seconds or every ``batch`` entries. ``close()`` writes
whatever is queued before it returns; entries that cannot be written (store down) are kept and retried,
and on close they are saved to ``$CIVICAUP_HOME/audit-unwritten-*.jsonl`` rather than lost.
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import signal
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine

from civicaup.config import home
from civicaup.stores.audit import Pending, append_many

log = logging.getLogger(__name__)


class AuditWriter:
    """A writer thread: ``put`` is cheap and thread-safe; entries reach the store within ``interval`` seconds.

    *coalesce*, if given, turns the raw queued items into the entries to write (e.g. merging repeats
    of one decision into one entry with a count); it runs on the writer thread.
    """

    def __init__(self, engine_factory: Callable[[], Engine], *, interval: float = 1.0, batch: int = 5000,
                 max_queue: int = 1_000_000,
                 coalesce: Callable[[list[Any]], list[Pending]] | None = None) -> None:
        self._engine_factory = engine_factory
        self._engine: Engine | None = None
        self.interval, self.batch, self.max_queue = interval, batch, max_queue
        self._coalesce = coalesce or (lambda raw: list(raw))
        self._queue: deque[Any] = deque()
        self._unwritten: list[Pending] = []
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._closing = False
        self._failed_since: float | None = None
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="civicaup-audit", daemon=True)
        self._thread.start()

    def put(self, item: Any) -> None:
        """Queue one item (never blocks; see :meth:`wait_for_room` for back-pressure)."""
        self._queue.append(item)

    def backlog(self) -> int:
        return len(self._queue) + len(self._unwritten)

    def nudge(self) -> None:
        """Ask for a write now (when the caller sees ``batch`` items queued)."""
        self._wake.set()

    def tick(self) -> None:
        """Called by the producer now and then: wake the writer when a batch is ready, wait if far behind."""
        if len(self._queue) >= self.batch:
            self._wake.set()
            self.wait_for_room()

    def wait_for_room(self) -> None:
        """Block while the queue is over ``max_queue`` (back-pressure instead of losing entries)."""
        while len(self._queue) > self.max_queue and self._thread.is_alive():
            self._wake.set()
            time.sleep(0.01)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then stop the thread; what still cannot be written is saved to a file."""
        self._closing = True
        self._wake.set()
        self._thread.join(timeout)
        self._flush(final=True)
        if self._unwritten:
            self._spill()

    # -- the thread -------------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._closing:
            self._wake.wait(self.interval)
            self._wake.clear()
            self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        with self._lock:
            self._flush_locked(final=final)

    def _flush_locked(self, *, final: bool) -> None:
        raw: list[Any] = []
        q = self._queue
        while q:
            try:
                raw.append(q.popleft())
            except IndexError:
                break
        if raw:
            try:
                self._unwritten.extend(self._coalesce(raw))
            except Exception:  # noqa: BLE001 - a bug in coalescing must not lose entries
                log.exception("audit: could not coalesce %d entries; writing them as raw entries", len(raw))
                now = datetime.now(timezone.utc)
                self._unwritten.extend(x if isinstance(x, Pending) else
                                       Pending(now, "civicaup", "audit-raw", "", "", {"item": repr(x)[:1000]})
                                       for x in raw)
        if not self._unwritten:
            return
        if self._failed_since is not None and not final and time.monotonic() - self._failed_since < 5.0:
            return  # the store failed a moment ago: retry a little later
        try:
            if self._engine is None:
                self._engine = self._engine_factory()
            while self._unwritten:
                chunk = self._unwritten[:self.batch]
                append_many(self._engine, chunk)
                self.written += len(chunk)
                del self._unwritten[:len(chunk)]
            self._failed_since = None
        except Exception as exc:  # noqa: BLE001 - the store is down or refused: keep the entries, retry later
            if self._failed_since is None:
                log.error("audit: cannot write %d entries (%s); keeping them and retrying",
                          len(self._unwritten), str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
            self._failed_since = time.monotonic()

    def _spill(self) -> None:
        path = home() / f"audit-unwritten-{int(time.time())}-{os.getpid()}.jsonl"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as f:
                for p in self._unwritten:
                    f.write(json.dumps({"at": p.at.astimezone(timezone.utc).isoformat(), "actor": p.actor,
                                        "action": p.action, "subject": p.subject, "policy": p.policy,
                                        "detail": p.detail}, ensure_ascii=False, sort_keys=True) + "\n")
            log.error("audit: %d entries could not be written to the store; saved to %s", len(self._unwritten), path)
            self._unwritten.clear()
        except OSError as exc:
            log.error("audit: %d entries lost: cannot write %s (%s)", len(self._unwritten), path, exc)


class ProcessAuditWriter:
    """An :class:`AuditWriter` in a child process, so that hashing and writing entries does not take CPU
    (or the GIL) from a busy adapter. ``put`` appends to a local list; ``tick`` (call it between batches
    of work) sends what has gathered, every ``batch`` items or ``interval`` seconds, pickled down a pipe.
    A full pipe blocks the sender: a bounded queue. The child ignores SIGTERM/SIGINT/SIGHUP and stops at
    end of input, after writing everything (``close`` waits for it), so no entry is lost when the parent
    is told to stop. Create it before opening the store or starting threads (it forks).
    """

    def __init__(self, engine_factory: Callable[[], Engine], *, interval: float = 1.0, batch: int = 5000,
                 coalesce: Callable[[list[Any]], list[Pending]] | None = None) -> None:
        self.interval, self.batch = interval, batch
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            status = 1
            try:
                os.close(write_fd)
                _child(read_fd, engine_factory, interval, batch, coalesce)
                status = 0
            except BaseException:  # noqa: BLE001
                log.exception("audit writer process failed")
            finally:
                os._exit(status)
        os.close(read_fd)
        self.pid = pid
        self._fd = write_fd
        self._items: list[Any] = []
        self._sent_at = time.monotonic()
        self.sent = 0

    def put(self, item: Any) -> None:
        self._items.append(item)

    def backlog(self) -> int:
        return len(self._items)

    def tick(self) -> None:
        if self._items and (len(self._items) >= self.batch or time.monotonic() - self._sent_at >= self.interval):
            self._send()

    def _send(self) -> None:
        items, self._items = self._items, []
        self._sent_at = time.monotonic()
        data = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(struct.pack("<I", len(data)) + data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self.sent += len(items)

    def close(self, timeout: float = 60.0) -> None:
        """Send what is left, end the pipe and wait for the child to write everything."""
        try:
            if self._items:
                self._send()
        finally:
            os.close(self._fd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return
            time.sleep(0.02)
        log.error("audit writer process %d did not finish within %.0f s", self.pid, timeout)


def _child(read_fd: int, engine_factory: Callable[[], Engine], interval: float, batch: int,
           coalesce: Callable[[list[Any]], list[Pending]] | None) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # stop at end of input, after writing everything
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)  # never hold the adapter's stdin/stdout (Squid's pipes) open
    writer = AuditWriter(engine_factory, interval=interval, batch=batch, coalesce=coalesce)
    with os.fdopen(read_fd, "rb") as f:
        while True:
            head = f.read(4)
            if len(head) < 4:
                break
            (n,) = struct.unpack("<I", head)
            data = f.read(n)
            if len(data) < n:
                break
            for item in pickle.loads(data):
                writer.put(item)
            writer.tick()
    writer.close()
