"""The append-only audit log. Each entry's hash covers the previous entry's hash, so a changed, removed or
reordered entry breaks the chain; the chain's head row and a checkpoint file beside the store also catch a
cut-off tail.

There is one chain per city (an entry's chain is its policy; entries of no city, and every entry written before
migration 0007, form the chain ""), so that the cities of a league write without waiting for one another,
verify their own log, and keep their entries in their own partitions on PostgreSQL. `seq` numbers a chain
from 1 and is what the hash covers; `id` is a global row number, for export order only.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from civicaup.config import home
from civicaup.stores import partitions
from civicaup.stores.tables import audit, audit_chains

GENESIS = "0" * 64


@dataclass(frozen=True)
class Entry:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    policy: str
    detail: str
    prev_hash: str
    hash: str
    chain: str = ""
    seq: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "chain": self.chain, "seq": self.seq, "at": _iso(self.at), "actor": self.actor,
                "action": self.action, "subject": self.subject, "policy": self.policy,
                "detail": json.loads(self.detail), "prev_hash": self.prev_hash, "hash": self.hash}


def _iso(at: datetime) -> str:
    return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).isoformat()


def entry_hash(seq: int, at: datetime, actor: str, action: str, subject: str, policy: str, detail: str,
               prev_hash: str) -> str:
    """The hash of an entry at position *seq* of its chain (before 0007: the row id of the single chain)."""
    body = json.dumps([seq, _iso(at), actor, action, subject, policy, detail, prev_hash], ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def chain_of(policy: str) -> str:
    """The chain an entry of *policy* goes to."""
    return policy


def _checkpoint(chain: str = "") -> Path:
    """$CIVICAUP_HOME/audit.head for the chain "" (as before 0007), audit.heads/<chain> for a city's."""
    if not chain:
        return home() / "audit.head"
    return home() / "audit.heads" / re.sub(r"[^A-Za-z0-9._-]", "_", chain)


def _checkpointed_chains() -> list[str]:
    folder = home() / "audit.heads"
    try:
        return [p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    except OSError:
        return []


def append(engine: Engine, *, actor: str, action: str, subject: str, policy: str = "",
           detail: dict[str, Any] | None = None) -> Entry:
    """Write one entry at the head of its city's chain (waiting for another writer of that chain, if any)."""
    at = datetime.now(timezone.utc)
    text = json.dumps(detail or {}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    (row_id, chain, seq, prev, h), = _append(engine, [Pending(at, actor, action, subject, policy, detail or {})])
    return Entry(row_id, at, actor[:320], action[:64], subject[:500], policy[:64], text, prev, h, chain, seq)


def _write_checkpoint(chain: str, seq: int, h: str) -> None:
    try:
        path = _checkpoint(chain)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # writers in several processes
        tmp.write_text(f"{seq} {h}\n", encoding="ascii")
        tmp.replace(path)
    except OSError:
        pass  # the chain itself still detects changes; only tail truncation needs the checkpoint


@dataclass(frozen=True, slots=True)
class Pending:
    """One entry to write; ``at`` is an aware time (stored as UTC)."""

    at: datetime
    actor: str
    action: str
    subject: str
    policy: str
    detail: dict[str, Any]


def append_many(engine: Engine, items: Iterable[Pending]) -> tuple[int, str, str]:
    """Write *items* in order at the heads of their chains, all in one transaction. Returns the last item's
    (id, prev_hash, hash); (0, "", "") for none."""
    written = _append(engine, list(items))
    if not written:
        return 0, "", ""
    row_id, _, _, prev, h = written[-1]
    return row_id, prev, h


_Prepared = tuple[datetime, str, str, str, str, str]  # at, actor, action, subject, policy, detail text


def _append(engine: Engine, items: list[Pending]) -> list[tuple[int, str, int, str, str]]:
    """(id, chain, seq, prev_hash, hash) of each item written, in order (the row id of the last one only, 0 for
    the others: finding ids costs a query)."""
    prepared: list[_Prepared] = [
        (it.at.astimezone(timezone.utc), it.actor[:320], it.action[:64], it.subject[:500], it.policy[:64],
         json.dumps(it.detail, sort_keys=True, ensure_ascii=False, separators=(",", ":"))) for it in items]
    if not prepared:
        return []
    by_chain: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(prepared):
        by_chain[chain_of(p[4])].append(i)
    for chain, idx in by_chain.items():
        partitions.ensure_partitions(engine, "audit", chain, [prepared[i][0] for i in idx])
    for _ in range(50):
        try:
            with engine.begin() as conn:
                out: dict[int, tuple[str, int, str, str]] = {}
                heads: dict[str, tuple[int, str]] = {}
                for chain in sorted(by_chain):  # one lock order for every writer: no deadlock
                    seq, prev = _lock_head(conn, chain)
                    rows = []
                    for i in by_chain[chain]:
                        at, actor, action, subject, policy, text = prepared[i]
                        seq += 1
                        h = entry_hash(seq, at, actor, action, subject, policy, text, prev)
                        rows.append((chain, seq, at, actor, action, subject, policy, text, prev, h))
                        out[i] = (chain, seq, prev, h)
                        prev = h
                    _insert_rows(conn, rows)
                    conn.execute(update(audit_chains).where(audit_chains.c.chain == chain)
                                 .values(seq=seq, hash=prev, at=rows[-1][2]))
                    heads[chain] = (seq, prev)
                last = len(prepared) - 1
                chain, seq, prev, h = out[last]
                row_id = int(conn.execute(select(audit.c.id).where(audit.c.chain == chain, audit.c.seq == seq)
                                          ).scalar_one())
        except IntegrityError:
            continue  # another writer created the chain's head row first: start again from it
        for chain, (seq, h) in heads.items():
            _write_checkpoint(chain, seq, h)
        return [(row_id if i == last else 0, *out[i]) for i in range(len(prepared))]
    raise RuntimeError("audit log: too many concurrent writers")


def _lock_head(conn: Connection, chain: str) -> tuple[int, str]:
    """The chain's head (seq, hash), locked until the transaction ends; created (0, GENESIS) if new."""
    if conn.dialect.name == "sqlite":
        # the first write of the transaction takes SQLite's write lock (waiting for other writers), so the
        # head read next is the latest; PostgreSQL locks the row itself
        conn.execute(update(audit_chains).where(audit_chains.c.chain == chain).values(seq=audit_chains.c.seq))
        q = select(audit_chains.c.seq, audit_chains.c.hash).where(audit_chains.c.chain == chain)
    else:
        q = select(audit_chains.c.seq, audit_chains.c.hash).where(audit_chains.c.chain == chain).with_for_update()
    row = conn.execute(q).first()
    if row is None:  # a new chain; a concurrent creator makes this insert fail, and the caller retries
        conn.execute(insert(audit_chains).values(chain=chain, seq=0, hash=GENESIS, at=None))
        return 0, GENESIS
    return int(row.seq), row.hash


_COLUMNS = ("chain", "seq", "at", "actor", "action", "subject", "policy", "detail", "prev_hash", "hash")


def _insert_rows(conn: Any, rows: list[tuple[Any, ...]]) -> None:
    """Insert audit rows. On SQLite, straight through the driver (the time bound exactly as SQLAlchemy's own
    DateTime type would bind it), which is several times cheaper per row; elsewhere through SQLAlchemy."""
    dialect = conn.dialect
    if dialect.name == "sqlite":
        bind = audit.c.at.type.dialect_impl(dialect).bind_processor(dialect)
        if bind is not None:
            rows = [(r[0], r[1], bind(r[2]), *r[3:]) for r in rows]
        conn.exec_driver_sql(f"INSERT INTO audit ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                             rows)
        return
    conn.execute(insert(audit), [dict(zip(_COLUMNS, r)) for r in rows])


def _entry(row: Any) -> Entry:
    return Entry(row.id, row.at, row.actor, row.action, row.subject, row.policy, row.detail, row.prev_hash,
                 row.hash, row.chain, row.seq)


def entries(engine: Engine, chain: str | None = None) -> Iterator[Entry]:
    """Every entry in id order, or one chain's in chain order."""
    q = select(audit)
    q = q.order_by(audit.c.id) if chain is None else q.where(audit.c.chain == chain).order_by(audit.c.seq)
    with engine.connect() as conn:
        for row in conn.execution_options(yield_per=2000).execute(q):
            yield _entry(row)


def about(engine: Engine, subject: str, policy: str) -> list[Entry]:
    """The entries of one subject in one city, oldest first: its chain, plus the shared chain "" that held every
    entry before migration 0007. Filtered in SQL, so PostgreSQL reads only those chains' partitions."""
    q = (select(audit).where(audit.c.chain.in_([chain_of(policy), ""]), audit.c.subject == subject)
         .order_by(audit.c.at, audit.c.id))
    with engine.connect() as conn:
        return [_entry(row) for row in conn.execute(q)]


def chains(engine: Engine) -> list[str]:
    """Every chain the store or this machine's checkpoints know of."""
    found = set(_checkpointed_chains())
    if _checkpoint("").is_file():
        found.add("")
    with engine.connect() as conn:
        found |= set(conn.execute(select(audit_chains.c.chain)).scalars())
        if partitions.is_partitioned(conn):  # a chain whose head row was removed still has its partition
            found |= set(partitions.cities(conn, "audit"))
            found |= set(conn.exec_driver_sql("SELECT DISTINCT chain FROM audit__default").scalars())
        else:
            found |= set(conn.execute(select(audit.c.chain).distinct()).scalars())
    return sorted(found)


def verify(engine: Engine, chain: str | None = None) -> tuple[int, str | None]:
    """(entries checked, None) when intact, else (n, a sentence naming the first bad entry). Every chain, or
    one city's (*chain* = its policy id)."""
    total = 0
    for c in ([chain] if chain is not None else chains(engine)):
        n, problem = _verify_chain(engine, c)
        total += n
        if problem:
            return total, problem
    return total, None


def _read_checkpoint(chain: str) -> tuple[int, str] | None:
    try:
        seq, h = _checkpoint(chain).read_text(encoding="ascii").split()
        return int(seq), h
    except (OSError, ValueError):
        return None


def _verify_chain(engine: Engine, chain: str) -> tuple[int, str | None]:
    label = f"{chain}: " if chain else ""
    # what the head row and the checkpoint name is read first: entries appended meanwhile only add to the log
    with engine.connect() as conn:
        head = conn.execute(select(audit_chains.c.seq, audit_chains.c.hash)
                            .where(audit_chains.c.chain == chain)).first()
    marks = [("the chain's head", (int(head.seq), head.hash))] if head is not None and head.seq else []
    cp = _read_checkpoint(chain)
    if cp is not None:
        marks.append(("the checkpoint", cp))
    seen: dict[int, str] = {}
    wanted = {seq for _, (seq, _) in marks}
    prev, expected, n = GENESIS, 1, 0
    for e in entries(engine, chain):
        n += 1
        if e.seq != expected:
            return n, f"{label}entry {expected} is missing (next is {e.seq})"
        if e.prev_hash != prev:
            return n, f"{label}entry {e.seq} does not follow entry {e.seq - 1} (removed or reordered)"
        if entry_hash(e.seq, e.at, e.actor, e.action, e.subject, e.policy, e.detail, e.prev_hash) != e.hash:
            return n, f"{label}entry {e.seq} was altered ({e.action} by {e.actor} at {_iso(e.at)})"
        if e.seq in wanted:
            seen[e.seq] = e.hash
        prev, expected = e.hash, e.seq + 1
    for what, (seq, h) in marks:
        if seq >= expected:
            return n, f"{label}entries after {expected - 1} are missing ({what} names entry {seq})"
        if seen.get(seq) != h:
            return n, f"{label}entry {seq} differs from {what}"
    return n, None


def count(engine: Engine, chain: str | None = None) -> int:
    q = select(func.count()).select_from(audit)
    if chain is not None:
        q = q.where(audit.c.chain == chain)
    with engine.connect() as conn:
        return int(conn.execute(q).scalar_one())
