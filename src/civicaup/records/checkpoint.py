"""WAL checkpoints beside a SQLite import instead of inside its commits.

In WAL mode every commit appends the pages it changed to the -wal file, and a checkpoint copies them back
into the database file and fsyncs it. SQLite runs that checkpoint in the committing connection once the WAL
passes `wal_autocheckpoint` pages, so an import's one storing thread spent a fifth of its time copying
pages instead of inserting (at 1,000,000 messages a 5,000-message batch appends about 250 MB of pages, and
copying them back took about a second). Here the storing connection turns auto-checkpoints off and this
thread, with its own connection, runs a PASSIVE checkpoint after each commit while the next batch is being
inserted; SQLite lets a checkpoint and a writer run together.

The WAL can only start over from its beginning when a write transaction begins after a checkpoint has
copied everything, so a writer that never pauses would grow it without bound. `before_write` therefore
waits for the running checkpoint once the WAL has passed `limit_pages`: the file stays under about that size
plus one batch, and the wait is only what the checkpoint has left to do. `close` copies what is left and
truncates the file.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

LIMIT_PAGES = 262144  # 1 GiB of 4 KiB pages: the WAL an import may leave unchecked before its writer waits


class Checkpointer:
    """One import's background checkpointer (SQLite only; see `for_engine`)."""

    def __init__(self, engine: Engine, limit_pages: int = LIMIT_PAGES) -> None:
        self.engine = engine
        self.limit_pages = limit_pages
        self._cv = threading.Condition()
        self._wanted = 0  # commits signalled
        self._done = 0  # commits covered by a finished checkpoint
        self._wal_pages = 0  # frames in the WAL after the last checkpoint
        self._error: BaseException | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="archive-checkpoint", daemon=True)
        self._thread.start()

    @staticmethod
    def for_engine(engine: Engine) -> contextlib.AbstractContextManager[Checkpointer | None]:
        """A checkpointer for a SQLite store, for use in a with statement; None (nothing to do) otherwise."""
        return Checkpointer(engine) if engine.dialect.name == "sqlite" else contextlib.nullcontext()

    # --------------------------------------------------------- the storing thread's side

    def before_write(self) -> None:
        """Call before each write transaction: waits for the running checkpoint when the WAL is over the limit,
        so that this transaction starts the WAL over. Raises what the checkpointing thread failed with."""
        with self._cv:
            if self._error is None and self._wal_pages > self.limit_pages:
                while self._done != self._wanted and self._error is None and self._thread.is_alive():
                    self._cv.wait(1.0)
            if self._error is not None:
                raise self._error

    def after_commit(self) -> None:
        with self._cv:
            self._wanted += 1
            self._cv.notify_all()

    # --------------------------------------------------------- the checkpointing thread

    def _run(self) -> None:
        try:
            with self.engine.connect() as conn:
                while True:
                    with self._cv:
                        while self._wanted == self._done and not self._closing:
                            self._cv.wait()
                        if self._wanted == self._done:
                            return
                        target = self._wanted
                    # PASSIVE: copies what no reader still needs, never waits for or blocks the writer
                    _busy, wal_pages, _copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
                    conn.rollback()  # end the autobegun SQLAlchemy transaction: no snapshot is held
                    with self._cv:
                        self._done, self._wal_pages = target, max(wal_pages, 0)
                        self._cv.notify_all()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("archive import: background WAL checkpoint failed: %s", exc)
            with self._cv:
                self._error = exc
                self._cv.notify_all()

    def close(self) -> None:
        """Let the last checkpoint finish, then copy what is left and truncate the WAL (best effort: another
        writer may hold it, and its own checkpoints finish the job)."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        self._thread.join()
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
                conn.rollback()
        except SQLAlchemyError as exc:
            log.info("archive import: final WAL checkpoint skipped: %s", exc)

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
