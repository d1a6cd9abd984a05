"""Partitions of the big append-mostly tables on PostgreSQL: one per city, each cut into months, made on demand.

A league runs hundreds of cities on one database. The tables that grow with traffic (the audit log, web usage,
the archive and its full-text index) are partitioned so that a city's queries read only that city's rows, a
month can be dropped whole, and no index grows with the size of the league:

    T                               LIST (city)  -- the policy column; the audit log's chain (= its policy)
      T__default                    DEFAULT: rows of a city that has no partitions yet
      T__<city>                     RANGE (time) -- the event time; archive tables: the date-ordered id
        T__<city>_h202607           everything before the month the city was first partitioned (its history)
        T__<city>_m202607 ...       one a month
        T__<city>_d                 DEFAULT: a month nobody created (a far-future date, a failed creation)

`ensure_partitions` is what writers call before they insert: it creates the city's partitions and the months
the rows fall in (and the next month, so the first write of a month rarely waits for DDL), in its own short
transaction, serialised across processes by an advisory lock. New tables are filled from the default partition
they take rows from and then attached (`ATTACH PARTITION` takes only a SHARE UPDATE EXCLUSIVE lock on the
parent, so readers and writers of other cities and months go on). A creation that cannot get its locks
within a few seconds gives up and is retried a minute later: the rows go to a default partition meanwhile,
so an insert never fails for want of a partition. What was created is remembered per process, so the cost
on the write path is a dictionary look-up. On SQLite every function here does nothing.

Months are UTC calendar months. Months before the city's first month go to its history partition (an import of
old mail does not make hundreds of partitions); months more than one month ahead go to its default partition.
"""
from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

LOCK_TIMEOUT = "3s"  # DDL waits at most this long for a lock; then the rows go to a default partition
RETRY_AFTER = 60.0  # seconds before a failed creation is tried again by the same process
AHEAD = 1  # months after the current one that writers may create (later ones go to the default partition)


@dataclass(frozen=True)
class Spec:
    """How one table is partitioned: its city column, its time column and how a month bounds that column."""

    table: str
    city: str  # the LIST column
    time: str  # the RANGE column
    by_key: bool  # True: the column is an archive id ((Unix seconds << 20) + tiebreak), else a timestamptz


SPECS: dict[str, Spec] = {
    "audit": Spec("audit", "chain", "at", False),
    "web_usage": Spec("web_usage", "policy", "at", False),
    "archive_messages": Spec("archive_messages", "policy", "id", True),
    "archive_fts": Spec("archive_fts", "policy", "id", True),
}
# Tables whose partitions are made together (a message and its index entry live in the same month).
GROUPS: dict[str, tuple[str, ...]] = {"archive_messages": ("archive_messages", "archive_fts")}

_CITY = re.compile(r"^[A-Za-z0-9._-]{0,64}$")


# ---------------------------------------------------------------- names and bounds

def month_of(when: datetime | date | int, *, by_key: bool = False) -> date:
    """The first day of the UTC month of a time, a date, or (by_key) an archive id."""
    if isinstance(when, int):
        if not by_key:
            raise TypeError("an integer month needs by_key=True (an archive id)")
        when = datetime.fromtimestamp(when >> 20, timezone.utc)
    if isinstance(when, datetime):
        when = (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).date()
    return when.replace(day=1)


def next_month(m: date) -> date:
    return date(m.year + (m.month == 12), m.month % 12 + 1, 1)


def city_table(table: str, city: str) -> str:
    """The name of a city's partition: readable, short enough for PostgreSQL's 63 bytes, unique per city."""
    clean = re.sub(r"[^a-z0-9]+", "_", city.lower()).strip("_")[:20] or "none"
    return f"{table}__{clean}_{hashlib.sha1(city.encode('utf-8')).hexdigest()[:6]}"


def month_table(table: str, city: str, month: date) -> str:
    return f"{city_table(table, city)}_m{month:%Y%m}"


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _bound(spec: Spec, month: date) -> str:
    start = datetime(month.year, month.month, 1, tzinfo=timezone.utc)
    if spec.by_key:
        return str(int(start.timestamp()) << 20)
    return _literal(start.strftime("%Y-%m-%d 00:00:00+00"))


def _check_city(city: str) -> None:
    if not _CITY.match(city):
        raise ValueError(f"{city!r} cannot name a partition (pack ids are letters, digits, '.', '_' and '-')")


def is_partitioned(conn: Connection | Engine) -> bool:
    """Whether this store partitions its big tables (PostgreSQL, from migration 0007 on)."""
    return conn.dialect.name == "postgresql"


# ---------------------------------------------------------------- DDL, in the caller's transaction

def _exists(conn: Connection, name: str) -> bool:
    return conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar_one()


def children(conn: Connection, parent: str) -> list[str]:
    """Names of the partitions directly under *parent* (empty if it does not exist)."""
    return list(conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(:p) ORDER BY c.relname"), {"p": parent}).scalars())


def create_parent_default(conn: Connection, table: str) -> None:
    """The top-level default partition (rows of a city without its own partitions)."""
    conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {table}__default PARTITION OF {table} DEFAULT")


def create_city(conn: Connection, table: str, city: str, start: date, months: Iterable[date] = ()) -> None:
    """Give *city* its partition of *table*: history before *start*, the given months, a default. Rows the
    top-level default partition holds for this city move into it."""
    spec = SPECS[table]
    _check_city(city)
    name = city_table(table, city)
    lit = _literal(city)
    conn.exec_driver_sql(f"LOCK TABLE {table}__default IN ACCESS EXCLUSIVE MODE")
    conn.exec_driver_sql(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS) PARTITION BY RANGE ({spec.time})")
    conn.exec_driver_sql(f"CREATE TABLE {name}_h{start:%Y%m} PARTITION OF {name} "
                         f"FOR VALUES FROM (MINVALUE) TO ({_bound(spec, start)})")
    for m in sorted(set(months)):
        if m >= start:
            conn.exec_driver_sql(f"CREATE TABLE {name}_m{m:%Y%m} PARTITION OF {name} "
                                 f"FOR VALUES FROM ({_bound(spec, m)}) TO ({_bound(spec, next_month(m))})")
    conn.exec_driver_sql(f"CREATE TABLE {name}_d PARTITION OF {name} DEFAULT")
    conn.exec_driver_sql(f"INSERT INTO {name} SELECT * FROM {table}__default WHERE {spec.city} = {lit}")
    conn.exec_driver_sql(f"DELETE FROM {table}__default WHERE {spec.city} = {lit}")
    conn.exec_driver_sql(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES IN ({lit})")


def create_month(conn: Connection, table: str, city: str, month: date) -> None:
    """Add one month to a city's partition, taking the rows its default partition holds for that month."""
    spec = SPECS[table]
    _check_city(city)
    name = city_table(table, city)
    new = f"{name}_m{month:%Y%m}"
    lo, hi = _bound(spec, month), _bound(spec, next_month(month))
    conn.exec_driver_sql(f"LOCK TABLE {name}_d IN ACCESS EXCLUSIVE MODE")
    conn.exec_driver_sql(f"CREATE TABLE {new} (LIKE {name} INCLUDING DEFAULTS)")
    moved = f"{spec.time} >= {lo} AND {spec.time} < {hi}"
    conn.exec_driver_sql(f"INSERT INTO {new} SELECT * FROM {name}_d WHERE {moved}")
    conn.exec_driver_sql(f"DELETE FROM {name}_d WHERE {moved}")
    conn.exec_driver_sql(f"ALTER TABLE {name} ATTACH PARTITION {new} FOR VALUES FROM ({lo}) TO ({hi})")


def history_start(names: Iterable[str], city_name: str) -> date | None:
    """The first month of a city from its history partition's name (<city>_hYYYYMM)."""
    for n in names:
        m = re.fullmatch(re.escape(city_name) + r"_h(\d{4})(\d{2})", n)
        if m:
            return date(int(m.group(1)), int(m.group(2)), 1)
    return None


def months_present(names: Iterable[str], city_name: str) -> set[date]:
    out = set()
    for n in names:
        m = re.fullmatch(re.escape(city_name) + r"_m(\d{4})(\d{2})", n)
        if m:
            out.add(date(int(m.group(1)), int(m.group(2)), 1))
    return out


# ---------------------------------------------------------------- on demand, for writers

@dataclass
class _City:
    start: date
    months: set[date] = field(default_factory=set)


_known: dict[tuple[str, str, str], _City] = {}  # (database, table, city) -> what exists
_failed: dict[tuple[str, str, str], float] = {}  # ... -> when creation last failed
_mutex = threading.Lock()


def _db_key(engine: Engine) -> str:
    return str(engine.url)


def _advisory_key(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x00".join(("civicaup-partitions", *parts)).encode()).digest()[:8],
                          "big", signed=True)


def ensure_partitions(engine: Engine, table: str, city: str, when: Iterable[datetime | date | int]) -> None:
    """Make sure *city* has partitions of *table* (and its group: the archive's index goes with its messages)
    for the months of *when* (times, or archive ids for the archive tables). Cheap when they exist; never
    raises for a partition it could not create (the rows then go to a default partition)."""
    if not is_partitioned(engine):
        return
    spec = SPECS[table]
    now = month_of(datetime.now(timezone.utc))
    limit = now
    for _ in range(AHEAD):
        limit = next_month(limit)
    wanted = {m for m in (month_of(w, by_key=spec.by_key) for w in when) if m <= limit}
    tables = GROUPS.get(table, (table,))
    db = _db_key(engine)
    missing, all_known = set(), True
    for t in tables:
        known = _known.get((db, t, city))
        if known is None:
            all_known = False
        else:
            missing |= {m for m in wanted if m >= known.start and m not in known.months}
    if all_known and not missing:
        return
    key = (db, table, city)
    with _mutex:
        failed = _failed.get(key)
        if failed is not None and time.monotonic() - failed < RETRY_AFTER:
            return
        try:
            _ensure(engine, tables, city, wanted | {now, next_month(now)}, now, limit)
            _failed.pop(key, None)
        except (SQLAlchemyError, ValueError) as exc:
            _failed[key] = time.monotonic()
            log.warning("partitions of %s for %r not created (rows go to a default partition; retried in %.0f s): "
                        "%s", table, city, RETRY_AFTER, str(getattr(exc, "orig", exc)).splitlines()[0][:200])


def _ensure(engine: Engine, tables: tuple[str, ...], city: str, months: set[date], now: date, limit: date) -> None:
    _check_city(city)
    db = _db_key(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _advisory_key(tables[0], city)})
        for t in tables:
            name = city_table(t, city)
            if not _exists(conn, name):
                create_city(conn, t, city, now, {m for m in months if now <= m <= limit})
            names = children(conn, name)
            start = history_start(names, name) or now
            have = months_present(names, name)
            for m in sorted(months):
                if start <= m <= limit and m not in have:
                    create_month(conn, t, city, m)
                    have.add(m)
            _known[(db, t, city)] = _City(start, have)


def before_insert(conn: Connection, table: str, city: str, when: Iterable[datetime | date | int], *,
                  one_writer: bool = False) -> None:
    """What a writer does first in its transaction: the partitions for *when* (made on another connection,
    so this transaction holds no lock they need), and with *one_writer* a transaction-long advisory lock
    that lets one writer of this city's rows of *table* in at a time (for checks a unique key would do on
    an unpartitioned table). Nothing on SQLite."""
    if not is_partitioned(conn):
        return
    ensure_partitions(conn.engine, table, city, when)
    if one_writer:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _advisory_key("writer", table, city)})


def forget(engine: Engine | None = None) -> None:
    """Drop what this process remembers (after partitions were dropped or detached elsewhere)."""
    with _mutex:
        if engine is None:
            _known.clear()
            _failed.clear()
            return
        db = _db_key(engine)
        for k in [k for k in _known if k[0] == db]:
            del _known[k]
        for k in [k for k in _failed if k[0] == db]:
            del _failed[k]


# ---------------------------------------------------------------- reading the layout

_IN = re.compile(r"FOR VALUES IN \('((?:[^']|'')*)'\)")


def cities(conn: Connection, table: str) -> dict[str, str]:
    """City value -> its partition's name, as the catalog has them (empty on SQLite)."""
    if not is_partitioned(conn):
        return {}
    out = {}
    for name, bound in conn.execute(text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:p)"), {"p": table}):
        m = _IN.match(bound or "")
        if m:
            out[m.group(1).replace("''", "'")] = name
    return out


def layout(conn: Connection, table: str) -> dict[str, dict[str, Any]]:
    """Partition name -> {"city", "rows" (estimated), "bytes"}, for reports and the benchmark."""
    if not is_partitioned(conn):
        return {}
    by_name = {v: k for k, v in cities(conn, table).items()}
    out: dict[str, dict[str, Any]] = {}
    for city_name, city in sorted(by_name.items()):
        for leaf in children(conn, city_name):
            rows, size = conn.execute(text("SELECT c.reltuples::bigint, pg_total_relation_size(c.oid) FROM pg_class c "
                                           "WHERE c.oid = to_regclass(:n)"), {"n": leaf}).one()
            out[leaf] = {"city": city, "rows": max(int(rows), 0), "bytes": int(size)}
    return out
