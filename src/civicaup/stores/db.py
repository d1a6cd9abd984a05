"""The store: SQLite in $CIVICAUP_HOME by default, PostgreSQL by URL; migrated to head on open."""
from __future__ import annotations

import os
import weakref
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from civicaup.errors import CivicaupError

if TYPE_CHECKING:  # Alembic is imported when a store is opened, not by every command that could open one
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x63697669636175  # PostgreSQL advisory lock key held while a process migrates ("civicau")


class StoreError(CivicaupError):
    """The store cannot be opened or migrated."""


def database_url() -> str:
    """`store_url` from the configuration (`CIVICAUP_DB_URL`, e.g. postgresql+psycopg://...) or the SQLite
    file in the data directory."""
    from civicaup import settings

    cfg = settings.load()
    url = cfg.database_url()
    if url.startswith("sqlite:///"):  # the SQLite file's folder (the data directory by default) is made on first use
        folder = Path(url.removeprefix("sqlite:///").split("?")[0]).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder {folder} for the store: {exc.strerror or exc}") from None
    return url


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def open_store(url: str | None = None) -> Engine:
    """An engine on the store, its schema upgraded to the newest migration (one engine per URL and process)."""
    return _open(url or database_url())


@lru_cache(maxsize=8)
def _open(url: str) -> Engine:
    try:
        engine = create_engine(url, future=True, pool_pre_ping=True)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":  # processes starting together on one database migrate in turn
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            from alembic import command

            command.upgrade(cfg, "head")
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open the store {url.split('@')[-1]}: {str(exc).splitlines()[0]}") from None
    _ENGINES.add(engine)
    return engine


_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked process (``--processes``) must not use the connections its parent opened: forget them
    without closing them (closing would end the parent's sessions), so the child opens its own."""
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)
