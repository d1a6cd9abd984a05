"""Taking the database out and putting it back, for backup and restore.

SQLite: the online backup API (``sqlite3.Connection.backup``) copies a consistent snapshot while the milter and
the relay keep writing (WAL readers never block writers); the copy is switched to a rollback journal so it is one
self-contained file, and checked with ``PRAGMA quick_check``. PostgreSQL: ``pg_dump --format=custom`` (one
snapshot of the whole database) and ``pg_restore`` into a cleared database. The password, if the URL holds one,
goes to the tools in ``PGPASSWORD``, never on a command line.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from civicaup.errors import CivicaupError, InputError
from civicaup.stores.db import alembic_config

SQLITE_MAGIC = b"SQLite format 3\x00"
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
PG_TIMEOUT_S = 24 * 3600  # a dump of a large archive takes a while; a hung server does not hang us for ever


class DatabaseCopyError(CivicaupError):
    """The database could not be copied out or put back."""


def backend_of(url: str) -> str:
    return make_url(url).get_backend_name()


def shown(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def plain_engine(url: str) -> Engine:
    """A short-lived engine that does not migrate (unlike ``open_store``): backup and restore look at a store as
    it is."""
    args = {"timeout": 30} if backend_of(url) == "sqlite" else {}
    return create_engine(url, poolclass=NullPool, connect_args=args)


def revision(url: str) -> str | None:
    """The Alembic revision the store is at, None when it has no civicaup schema."""
    engine = plain_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError as exc:
        raise DatabaseCopyError(f"cannot read the store {shown(url)}: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()


def known_revisions() -> list[str]:
    """Every revision this version of civicaup knows, oldest first."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def upgrade(url: str) -> str | None:
    """Run the migrations to head on the store at `url`; returns the revision it is at afterwards."""
    engine = plain_engine(url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except SQLAlchemyError as exc:
        raise DatabaseCopyError(f"cannot migrate the restored store: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()
    return revision(url)


def row_counts(url: str) -> dict[str, int]:
    """Tables holding at least one row (civicaup's own bookkeeping and SQLite's internal tables left out)."""
    engine = plain_engine(url)
    found: dict[str, int] = {}
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                names = _sqlite_plain_tables(conn)
                quoted = {n: f'"{n}"' for n in names}
            else:
                rows = conn.execute(text(
                    "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
                    "AND table_schema NOT IN ('pg_catalog', 'information_schema') "
                    "AND table_schema NOT LIKE 'pg\\_%'")).all()
                quoted = {f"{s}.{t}": f'"{s}"."{t}"' for s, t in rows}
            for name, q in quoted.items():
                if name.rpartition(".")[2] == "alembic_version":
                    continue
                n = conn.execute(text(f"SELECT count(*) FROM {q}")).scalar_one()
                if n:
                    found[name] = int(n)
    except SQLAlchemyError as exc:
        raise DatabaseCopyError(f"cannot read the store {shown(url)}: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()
    return found


def _sqlite_plain_tables(conn) -> list[str]:  # type: ignore[no-untyped-def]
    """Ordinary tables, without the shadow tables of virtual (FTS5) tables, whose bookkeeping rows exist even
    when the index is empty."""
    rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")).all()
    virtual = [n for n, sql in rows if (sql or "").upper().startswith("CREATE VIRTUAL TABLE")]
    out = []
    for name, sql in rows:
        if name.startswith("sqlite_") or name in virtual or any(name.startswith(v + "_") for v in virtual):
            continue
        out.append(name)
    return out


# ---------------------------------------------------------------- SQLite

def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise InputError(f"cannot back up or restore the SQLite store {url!r}: it is not a file")
    return Path(database).expanduser().absolute()


def is_sqlite_file(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(16) == SQLITE_MAGIC
    except OSError:
        return False


def sqlite_snapshot(source: Path, dest: Path) -> None:
    """A consistent copy of a live SQLite database, as one self-contained file."""
    if not source.is_file():
        raise InputError(f"no SQLite store at {source}: nothing to back up")
    try:
        src = sqlite3.connect(str(source), timeout=30)
        try:
            dst = sqlite3.connect(str(dest))
            try:
                src.backup(dst)  # every page in one step: one read snapshot, writers carry on under WAL
                dst.execute("PRAGMA journal_mode=DELETE")
                problem = dst.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise DatabaseCopyError(f"cannot copy the SQLite database {source}: {exc}") from None
    if problem != "ok":
        raise DatabaseCopyError(f"the SQLite database {source} fails its integrity check: {problem}")


def sqlite_put(backup_file: Path, target: Path) -> None:
    """Replace the content of the SQLite database at `target` with the backed-up one (through the backup API,
    so a -wal file beside the target is taken care of by SQLite itself)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        src = sqlite3.connect(backup_file.absolute().as_uri() + "?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(str(target), timeout=30)
            try:
                dst.execute("PRAGMA journal_mode=DELETE")  # page sizes may differ from a WAL target's
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise DatabaseCopyError(f"cannot write the SQLite database {target}: {exc}") from None


# ---------------------------------------------------------------- PostgreSQL

def _version_key(path: str) -> tuple[int, ...]:
    m = re.search(r"/postgresql/([\d.]+)/bin/", path)
    return tuple(int(p) for p in m.group(1).split(".")) if m else (0,)


def pg_tool(name: str) -> str:
    """pg_dump or pg_restore: the newest under /usr/lib/postgresql/*/bin (a newer pg_dump reads older servers,
    never the reverse), else the one on PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_key)
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise DatabaseCopyError(f"{name} not found on PATH or under /usr/lib/postgresql/*/bin "
                            "(apt-get install postgresql-client)")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def pg_connection(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string (host, port, user, dbname and the URL's query options such as sslmode) and the
    environment for the tools, with the password in PGPASSWORD."""
    u = make_url(url)
    params: dict[str, str] = {}
    for key, value in (("host", u.host), ("port", u.port), ("user", u.username), ("dbname", u.database)):
        if value:
            params[key] = str(value)
    for key, value in u.query.items():
        params[key] = value if isinstance(value, str) else value[-1]
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    return " ".join(f"{k}={_quote(v)}" for k, v in params.items()), env


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    try:
        r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=PG_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DatabaseCopyError(f"{what}: {exc}") from None
    if r.returncode != 0:
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else f"exit {r.returncode}")
        raise DatabaseCopyError(f"{what}: {detail.strip()}")


def pg_dump(url: str, dest: Path) -> None:
    conninfo, env = pg_connection(url)
    _run([pg_tool("pg_dump"), "--format=custom", "--no-password", f"--file={dest}", f"--dbname={conninfo}"],
         env, f"pg_dump of {shown(url)} failed")


def pg_clear(url: str) -> None:
    """Drop everything civicaup's database holds (tables, views, sequences, functions, types, own schemas), so
    that pg_restore starts from nothing; objects that belong to an extension are left to the extension."""
    engine = plain_engine(url)
    not_ext = "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = {oid} AND d.deptype = 'e')"
    try:
        with engine.begin() as conn:
            schemas = conn.execute(text(
                "SELECT n.nspname FROM pg_namespace n WHERE n.nspname NOT LIKE 'pg\\_%' "
                "AND n.nspname NOT IN ('information_schema', 'public') AND " + not_ext.format(oid="n.oid"))).scalars()
            for schema in list(schemas):
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE",
                     "f": "FOREIGN TABLE"}
            rels = conn.execute(text(
                "SELECT c.relkind, format('%I.%I', n.nspname, c.relname) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                "AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND NOT c.relispartition AND "
                + not_ext.format(oid="c.oid"))).all()
            for kind, name in rels:
                conn.execute(text(f"DROP {kinds[kind]} IF EXISTS {name} CASCADE"))
            funcs = conn.execute(text(
                "SELECT p.oid::regprocedure::text, p.prokind FROM pg_proc p JOIN pg_namespace n "
                "ON n.oid = p.pronamespace WHERE n.nspname = 'public' AND " + not_ext.format(oid="p.oid"))).all()
            for sig, prokind in funcs:
                word = {"p": "PROCEDURE", "a": "AGGREGATE"}.get(prokind, "FUNCTION")
                conn.execute(text(f"DROP {word} IF EXISTS {sig} CASCADE"))
            types = conn.execute(text(
                "SELECT format('%I.%I', n.nspname, t.typname) FROM pg_type t JOIN pg_namespace n "
                "ON n.oid = t.typnamespace WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'r') AND "
                + not_ext.format(oid="t.oid"))).scalars()
            for name in list(types):
                conn.execute(text(f"DROP TYPE IF EXISTS {name} CASCADE"))
    except SQLAlchemyError as exc:
        raise DatabaseCopyError(f"cannot clear {shown(url)} before restoring: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()


def pg_restore(dump: Path, url: str) -> None:
    """Clear the target database and restore the dump into it, in one transaction; objects are owned by the
    user in the URL (--no-owner), so a backup restores onto another server with other role names."""
    pg_clear(url)
    conninfo, env = pg_connection(url)
    _run([pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
          "--no-password", f"--dbname={conninfo}", str(dump)], env, f"pg_restore into {shown(url)} failed")
