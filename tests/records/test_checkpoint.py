"""The import's background WAL checkpointer (records/checkpoint.py) and its parser priority (ingest._init_worker).

A real SQLite file in WAL mode: a writer that has turned its own auto-checkpoints off commits while the
checkpointer copies pages back; the WAL must start over once it passes the limit, end truncated, and a
failed checkpoint must stop the import instead of letting the WAL grow."""
from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import OperationalError

from civicaup.records import archive, ingest
from civicaup.records.checkpoint import Checkpointer
from civicaup.stores.db import _sqlite_pragmas
from tests.records.conftest import POLICY
from tests.records.mails import mail, utc


def _wal_engine(path: Path):  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", _sqlite_pragmas)  # the store's own settings: WAL, busy timeout
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    return engine


def _commit_rows(engine, start: int, n: int) -> None:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_autocheckpoint = 0")
        conn.commit()
        with conn.begin():
            conn.execute(text("INSERT INTO t VALUES (:k, randomblob(3000))"),
                         [{"k": k} for k in range(start, start + n)])


def _wal_size(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_the_wal_starts_over_past_the_limit_and_ends_truncated(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    engine = _wal_engine(db)
    sizes = []
    with Checkpointer(engine, limit_pages=40) as ck:
        for batch in range(30):  # about 100 pages a commit
            ck.before_write()
            _commit_rows(engine, batch * 100, 100)
            ck.after_commit()
            sizes.append(_wal_size(db))
    # without the checkpointer (auto-checkpoints off) the file would hold all 3,000 pages, 12 MB;
    # with it the file is reused from its start once a checkpoint has copied everything
    assert max(sizes) < 8 * 100 * 4096 + 1
    assert _wal_size(db) == 0  # close: copied back and truncated
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 3000
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def test_commits_are_copied_back_while_the_writer_goes_on(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    engine = _wal_engine(db)
    ck = Checkpointer(engine)  # a limit far away: the writer never waits
    for batch in range(5):
        ck.before_write()
        _commit_rows(engine, batch * 10, 10)
        ck.after_commit()
    with ck._cv:  # the checkpoint of the last commit has run, or will
        while ck._done != ck._wanted:
            ck._cv.wait(5)
    # everything committed is in the database file: a checkpoint now has nothing left to copy
    with engine.connect() as conn:
        busy, wal_pages, copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    assert busy == 0 and wal_pages == copied
    ck.close()


def test_a_failed_checkpoint_stops_the_writer(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'missing' / 'a.db'}")  # its folder does not exist
    ck = Checkpointer(engine, limit_pages=0)
    ck._thread.join(10)
    with pytest.raises(OperationalError):
        ck.before_write()
    ck.close()


def test_non_sqlite_stores_get_no_checkpointer() -> None:
    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")  # never connected
    with Checkpointer.for_engine(engine) as ck:
        assert ck is None


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_import_leaves_the_wal_truncated_and_connections_checkpointing(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "eml"
    folder.mkdir()
    for n in range(40):
        (folder / f"{n}.eml").write_bytes(mail(sender="clerk@kirkwoodmo.org", to="council@kirkwoodmo.org",
                                               subject=f"Council agenda {n}", body=f"Item {n}.",
                                               date=utc(2025, 3, 1 + n % 28, 9)))
    report = archive.import_paths(store, [folder], policy=POLICY, jobs=2)
    assert report.imported == 40 and report.failed == 0
    db = Path(store.url.database or "")
    assert _wal_size(db) == 0
    # every pooled connection (the import's among them) checkpoints for itself again
    conns = [store.connect() for _ in range(store.pool.size())]
    try:
        assert all(c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() > 0 for c in conns)
        assert conns[0].exec_driver_sql("SELECT count(*) FROM archive_messages").scalar() == 40
    finally:
        for c in conns:
            c.close()


def _niceness_after_init(q) -> None:  # type: ignore[no-untyped-def]
    ingest._WORKER.pop("engine", None)
    ingest._init_worker()
    q.put(os.nice(0))


def test_parser_processes_run_below_the_storing_thread() -> None:
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_niceness_after_init, args=(q,))
    p.start()
    child = q.get(timeout=30)
    p.join(30)
    assert child == min(os.nice(0) + ingest.WORKER_NICE, 19)
