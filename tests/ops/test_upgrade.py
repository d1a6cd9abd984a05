"""Upgrades lose nothing: a store built at the oldest schema revision, filled with rows, then stepped through every
later revision (rows going into each table a revision adds, or into a table that gains columns) and finally to
head, still holds every row exactly as it was written, on SQLite and on a real PostgreSQL. The revisions are
walked as Alembic finds them, and the rows are made from the columns each table has at that moment, so a new
revision is tested without this file changing (a column type it cannot fill fails loudly, naming the column).

The rows go in through plain INSERTs on the tables as they are at that revision (reflected from the database,
not the application's table definitions, which describe head). Two tables get meaningful rows: the audit log
is a real hash chain (verified at head), and the full-text index is searched after every step."""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from civicaup.stores import audit
from civicaup.stores.db import alembic_config

from .conftest import new_pg_database

SCRIPT = ScriptDirectory.from_config(alembic_config("sqlite://"))
REVISIONS = [r.revision for r in reversed(list(SCRIPT.walk_revisions()))]  # oldest first
ROWS = 3
FTS_WORD = "lobbyist"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CIVICAUP_HOME", str(tmp_path / "home"))  # no audit checkpoint from anywhere else
    monkeypatch.delenv("CIVICAUP_DB_URL", raising=False)
    if request.param == "postgresql":
        return new_pg_database(request.getfixturevalue("pg_server"))
    return f"sqlite:///{tmp_path / 'store.db'}"


def migrate(url: str, revision: str, *, down: bool = False) -> None:
    (command.downgrade if down else command.upgrade)(alembic_config(url), revision)


def head_of(url: str) -> str:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())
    finally:
        engine.dispose()


class Filler:
    """Writes rows into whatever tables exist, remembers them, and checks later that they are all still there."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.columns: dict[str, set[str]] = {}  # table -> the columns it had when last filled
        self.expected: dict[str, list[tuple[Any, ...]]] = {}  # "table:col,col" -> rows read back after writing
        self.keys: dict[str, dict[str, list[Any]]] = {}  # table -> column -> values written (for foreign keys)
        self.serial = 0
        self.fts_ids: list[int] = []

    # ------------------------------------------------------------ which tables
    def _special(self) -> dict[str, Callable[[sa.Table], None]]:
        """Tables whose rows must mean something. audit_chains (0007) holds each chain's head, which the
        migration derives from the log and every append moves: rows made up for it would be a broken chain."""
        return {"audit": self._fill_audit, "audit_chains": lambda table: None}

    def _skipped(self, conn: sa.Connection) -> set[str]:
        """SQLite's virtual tables and their shadow tables: written through the virtual table only."""
        if self.dialect != "sqlite":
            return set()
        rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")).all()
        virtual = {n for n, sql in rows if (sql or "").upper().startswith("CREATE VIRTUAL TABLE")}
        return {n for n, _ in rows if n.startswith("sqlite_") or any(n.startswith(v + "_") for v in virtual)} \
            | virtual

    def tables(self) -> list[sa.Table]:
        with self.engine.connect() as conn:
            names = set(inspect(conn).get_table_names()) - {"alembic_version"} - self._skipped(conn)
            if self.dialect == "postgresql":
                names.discard("archive_fts")
                names -= set(conn.execute(text(  # partitions: rows go in through their partitioned table
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() AND c.relispartition")).scalars())
        md = sa.MetaData()
        md.reflect(self.engine, only=sorted(names))
        return list(md.sorted_tables)  # parents before the tables that refer to them

    # ------------------------------------------------------------ writing
    def fill(self) -> list[str]:
        """Rows into every table that is new, or has columns it did not have when last filled."""
        filled = []
        for table in self.tables():
            cols = {c.name for c in table.columns}
            special = self._special().get(table.name)
            if self.columns.get(table.name) == cols or (special is not None and table.name in self.columns):
                self.columns[table.name] = cols  # a special table is written once; later rows come from civicaup
                continue
            if special is not None:
                special(table)
            else:
                self._fill_generic(table)
            self.columns[table.name] = cols
            filled.append(table.name)
        with self.engine.connect() as conn:
            has_fts = inspect(conn).has_table("archive_fts") or (
                self.dialect == "sqlite" and "archive_fts" in self._skipped(conn))
        if has_fts and "archive_fts" not in self.columns and self.keys.get("archive_messages"):
            self._fill_fts()
            self.columns["archive_fts"] = set()
            filled.append("archive_fts")
        return filled

    def _value(self, table: sa.Table, col: sa.Column, i: int) -> Any:
        if col.foreign_keys:
            fk = next(iter(col.foreign_keys))
            values = self.keys[fk.column.table.name][fk.column.name]
            return values[i % len(values)]
        if col.nullable and not col.primary_key and i % 2:
            return None  # NULLs must survive too
        t = col.type
        n = self.serial
        if isinstance(t, sa.Boolean):
            return i % 2 == 0
        if isinstance(t, sa.Integer):
            return n + 1 if col.primary_key else (n * 7919) % 100_003
        if isinstance(t, sa.DateTime):
            return datetime(2019, 3, 4, 15, 30, 45, 123456, tzinfo=timezone.utc) + timedelta(days=n, seconds=n)
        if isinstance(t, sa.Date):
            return date(2020, 2, 1) + timedelta(days=n)
        if isinstance(t, sa.JSON):
            return {"n": n, "roles": ["clerk", "department-head"], "note": "Ste. Geneviève ✓", "ok": True}
        if isinstance(t, sa.LargeBinary):
            return bytes((n + k) % 256 for k in range(40))
        if isinstance(t, (sa.String, sa.Text)):
            value = f"{n}-{table.name}.{col.name} Ste. Geneviève ✓"
            return value[: t.length] if getattr(t, "length", None) else value
        pytest.fail(f"no test value for {table.name}.{col.name} of type {t!r}: teach test_upgrade.py that type")

    def _fill_generic(self, table: sa.Table) -> None:
        rows = []
        for i in range(ROWS):
            self.serial += 1
            rows.append({c.name: self._value(table, c, i) for c in table.columns})
        with self.engine.begin() as conn:
            conn.execute(table.insert(), rows)
        self._remember(table, rows)

    def _remember(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        keys = self.keys.setdefault(table.name, {})
        for row in rows:
            for k, v in row.items():
                keys.setdefault(k, []).append(v)
        cols = [c.name for c in table.columns]
        self.expected[f"{table.name}:{','.join(cols)}"] = self._read(table.name, cols)
        assert len(self.expected[f"{table.name}:{','.join(cols)}"]) >= len(rows)

    def _fill_audit(self, table: sa.Table) -> None:
        """A real hash chain, as civicaup writes it (verified at head)."""
        with self.engine.connect() as conn:
            last = conn.execute(text("SELECT id, hash FROM audit ORDER BY id DESC")).first()
        seq, prev = (last[0], last[1]) if last else (0, audit.GENESIS)
        rows = []
        for i in range(ROWS):
            self.serial += 1
            seq += 1
            at = datetime(2019, 3, 4, 15, 0, 0, 250000, tzinfo=timezone.utc) + timedelta(minutes=self.serial)
            entry = {"id": seq, "at": at, "actor": "jo.smith@kirkwoodmo.org", "action": "archive-read",
                     "subject": f"record {self.serial:012x}", "policy": "kirkwood-mo",
                     "detail": '{"raw":false,"note":"Genevi\\u00e8ve"}', "prev_hash": prev}
            entry["hash"] = audit.entry_hash(seq, at, entry["actor"], entry["action"], entry["subject"],
                                             entry["policy"], entry["detail"], prev)
            for c in table.columns:  # columns a later revision may add
                if c.name not in entry:
                    entry[c.name] = self._value(table, c, i)
            prev = entry["hash"]
            rows.append(entry)
        with self.engine.begin() as conn:
            conn.execute(table.insert(), rows)
        self._remember(table, rows)

    def _fill_fts(self) -> None:
        """The full-text index of the archived messages written above."""
        ids = self.keys["archive_messages"]["id"]
        with self.engine.begin() as conn:
            for k, mid in enumerate(ids):
                subject, body = f"Memo {k}", f"The {FTS_WORD}s visited on day {k}."
                if self.dialect == "sqlite":
                    conn.execute(text("INSERT INTO archive_fts (rowid, subject, body) VALUES (:i, :s, :b)"),
                                 {"i": mid, "s": subject, "b": body})
                else:
                    conn.execute(text("INSERT INTO archive_fts (id, tsv) VALUES "
                                      "(:i, to_tsvector('english', :s || ' ' || :b))"), {"i": mid, "s": subject,
                                                                                         "b": body})
        self.fts_ids = sorted(ids)

    # ------------------------------------------------------------ checking
    def _read(self, name: str, cols: list[str]) -> list[tuple[Any, ...]]:
        md = sa.MetaData()
        table = sa.Table(name, md, autoload_with=self.engine)
        pk = [table.c[c.name] for c in table.primary_key.columns] or [table.c[c] for c in cols]
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.select(*(table.c[c] for c in cols)).order_by(*pk))]

    def check(self, step: str) -> None:
        with self.engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
        for key, rows in self.expected.items():
            name, _, cols = key.partition(":")
            assert name in present, f"{step}: table {name} is gone"
            now = Counter(map(repr, self._read(name, cols.split(","))))
            missing = Counter(map(repr, rows)) - now
            assert not missing, f"{step}: rows of {name} changed or were lost: {list(missing)[:3]}"
        if self.fts_ids:
            assert self._search() == self.fts_ids, f"{step}: the full-text index lost entries"

    def _search(self) -> list[int]:
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                q = "SELECT rowid FROM archive_fts WHERE archive_fts MATCH :w ORDER BY rowid"
            else:
                q = "SELECT id FROM archive_fts WHERE tsv @@ plainto_tsquery('english', :w) ORDER BY id"
            return [int(r[0]) for r in conn.execute(text(q), {"w": FTS_WORD})]

    def forget(self, tables: set[str]) -> None:
        """Tables a downgrade dropped: filled again when they come back."""
        for name in tables:
            self.columns.pop(name, None)
            self.keys.pop(name, None)
            for key in [k for k in self.expected if k.partition(":")[0] == name]:
                del self.expected[key]
            if name == "archive_fts":
                self.fts_ids = []


def build_through_every_revision(url: str) -> Filler:
    engine = create_engine(url, poolclass=NullPool)
    filler = Filler(engine)
    migrate(url, REVISIONS[0])
    assert filler.fill(), "the oldest revision creates no table to fill"
    for rev in REVISIONS[1:]:
        migrate(url, rev)
        filler.check(f"after upgrading to {rev}")
        filler.fill()
        filler.check(f"after filling {rev}")
    migrate(url, "head")
    filler.check("at head")
    return filler


def test_every_revision_keeps_every_row(url: str) -> None:
    assert len(REVISIONS) >= 2 and REVISIONS[0] == "0001"
    filler = build_through_every_revision(url)
    try:
        assert head_of(url) == REVISIONS[-1]
        filled = {k.partition(":")[0] for k in filler.expected}
        assert {"people", "audit", "mail_quarantine", "archive_messages", "records_requests"} <= filled
        assert filler.fts_ids  # the full-text index was written at its revision and still finds the rows
        # civicaup, at head, continues the log written at the oldest revision, and the whole of it verifies
        for policy in ("kirkwood-mo", ""):
            audit.append(filler.engine, actor="cli", action="upgrade-check", subject="after the upgrade",
                         policy=policy)
        n, problem = audit.verify(filler.engine)
        assert problem is None and n == ROWS + 2
        filler.check("after civicaup wrote at head")
    finally:
        filler.engine.dispose()


def test_newest_revision_downgrades_and_upgrades_again(url: str) -> None:
    newest = SCRIPT.get_revision(REVISIONS[-1])
    if newest.down_revision is None:
        pytest.skip("a single revision: nothing to downgrade to")
    filler = build_through_every_revision(url)
    try:
        with filler.engine.connect() as conn:
            at_head = set(inspect(conn).get_table_names())
        try:
            migrate(url, str(newest.down_revision), down=True)
        except NotImplementedError:
            pytest.skip(f"revision {newest.revision} defines no downgrade")
        assert head_of(url) == newest.down_revision
        with filler.engine.connect() as conn:
            dropped = at_head - set(inspect(conn).get_table_names())
        filler.forget(dropped)
        filler.check(f"after downgrading {newest.revision}")
        migrate(url, "head")
        filler.check(f"after upgrading to {newest.revision} again")
        filler.fill()
        filler.check("at head again")
        assert head_of(url) == newest.revision
        assert audit.verify(filler.engine)[1] is None
    finally:
        filler.engine.dispose()
