"""The append-only audit log. Each entry's hash covers the previous entry's hash, so a changed, removed or
reordered entry breaks the chain; a checkpoint file beside the store also catches a cut-off tail."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from civicaup.config import home
from civicaup.stores.tables import audit

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

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": _iso(self.at), "actor": self.actor, "action": self.action,
                "subject": self.subject, "policy": self.policy, "detail": json.loads(self.detail),
                "prev_hash": self.prev_hash, "hash": self.hash}


def _iso(at: datetime) -> str:
    return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).isoformat()


def entry_hash(seq: int, at: datetime, actor: str, action: str, subject: str, policy: str, detail: str,
               prev_hash: str) -> str:
    body = json.dumps([seq, _iso(at), actor, action, subject, policy, detail, prev_hash], ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _checkpoint() -> Path:
    return home() / "audit.head"


def append(engine: Engine, *, actor: str, action: str, subject: str, policy: str = "",
           detail: dict[str, Any] | None = None) -> Entry:
    """Write one entry at the head of the chain (retrying when another writer got there first)."""
    at = datetime.now(timezone.utc)
    seq, prev, h = append_many(engine, [Pending(at, actor, action, subject, policy, detail or {})])
    text = json.dumps(detail or {}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return Entry(seq, at, actor, action, subject[:500], policy, text, prev, h)


def _write_checkpoint(seq: int, h: str) -> None:
    try:
        path = _checkpoint()
        tmp = path.with_suffix(".tmp")
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
    """Write *items* in order at the head of the chain, in one transaction (retrying from the new head when
    another writer got there first). Returns the last entry's (id, prev_hash, hash); (0, "", "") for none."""
    prepared = [(it.at.astimezone(timezone.utc), it.actor[:320], it.action[:64], it.subject[:500], it.policy[:64],
                 json.dumps(it.detail, sort_keys=True, ensure_ascii=False, separators=(",", ":")))
                for it in items]
    if not prepared:
        return 0, "", ""
    for _ in range(50):
        try:
            with engine.begin() as conn:
                last = conn.execute(select(audit.c.id, audit.c.hash).order_by(audit.c.id.desc()).limit(1)).first()
                seq = last.id if last else 0
                prev = last.hash if last else GENESIS
                rows = []
                for at, actor, action, subject, policy, text in prepared:
                    seq += 1
                    before = prev
                    h = entry_hash(seq, at, actor, action, subject, policy, text, prev)
                    rows.append((seq, at, actor, action, subject, policy, text, prev, h))
                    prev = h
                _insert_rows(conn, rows)
        except IntegrityError:
            continue  # another writer took the head of the chain: hash again from the new head
        _write_checkpoint(seq, prev)
        return seq, before, prev
    raise RuntimeError("audit log: too many concurrent writers")


_COLUMNS = ("id", "at", "actor", "action", "subject", "policy", "detail", "prev_hash", "hash")


def _insert_rows(conn: Any, rows: list[tuple[Any, ...]]) -> None:
    """Insert audit rows. On SQLite, straight through the driver (the time bound exactly as SQLAlchemy's own
    DateTime type would bind it), which is several times cheaper per row; elsewhere through SQLAlchemy."""
    dialect = conn.dialect
    if dialect.name == "sqlite":
        bind = audit.c.at.type.dialect_impl(dialect).bind_processor(dialect)
        if bind is not None:
            rows = [(r[0], bind(r[1]), *r[2:]) for r in rows]
        conn.exec_driver_sql(f"INSERT INTO audit ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                             rows)
        return
    conn.execute(insert(audit), [dict(zip(_COLUMNS, r)) for r in rows])


def entries(engine: Engine) -> Iterator[Entry]:
    with engine.connect() as conn:
        for row in conn.execute(select(audit).order_by(audit.c.id)):
            yield Entry(row.id, row.at, row.actor, row.action, row.subject, row.policy, row.detail, row.prev_hash,
                        row.hash)


def verify(engine: Engine) -> tuple[int, str | None]:
    """(entries checked, None) when intact, else (n, a sentence naming the first bad entry)."""
    prev, expected_id, n = GENESIS, 1, 0
    for e in entries(engine):
        n += 1
        if e.id != expected_id:
            return n, f"entry {expected_id} is missing (next is {e.id})"
        if e.prev_hash != prev:
            return n, f"entry {e.id} does not follow entry {e.id - 1} (removed or reordered)"
        if entry_hash(e.id, e.at, e.actor, e.action, e.subject, e.policy, e.detail, e.prev_hash) != e.hash:
            return n, f"entry {e.id} was altered ({e.action} by {e.actor} at {_iso(e.at)})"
        prev, expected_id = e.hash, e.id + 1
    cp = _checkpoint()
    if cp.is_file():
        try:
            seq, h = cp.read_text(encoding="ascii").split()
            if int(seq) >= expected_id:
                return n, f"entries after {expected_id - 1} are missing (the checkpoint names entry {seq})"
            if int(seq) == expected_id - 1 and h != prev:
                return n, f"entry {seq} differs from the checkpoint"
        except ValueError:
            pass
    return n, None


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(audit)).scalar_one())
