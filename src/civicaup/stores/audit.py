"""The append-only audit log. Each entry's hash covers the previous entry's hash, so a changed, removed or
reordered entry breaks the chain; a checkpoint file beside the store also catches a cut-off tail."""
from __future__ import annotations

import hashlib
import json
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
    text = json.dumps(detail or {}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    for _ in range(50):
        at = datetime.now(timezone.utc)
        try:
            with engine.begin() as conn:
                last = conn.execute(select(audit.c.id, audit.c.hash).order_by(audit.c.id.desc()).limit(1)).first()
                seq = (last.id if last else 0) + 1
                prev = last.hash if last else GENESIS
                h = entry_hash(seq, at, actor, action, subject, policy, text, prev)
                conn.execute(insert(audit).values(id=seq, at=at, actor=actor, action=action, subject=subject[:500],
                                                  policy=policy, detail=text, prev_hash=prev, hash=h))
        except IntegrityError:
            continue
        _write_checkpoint(seq, h)
        return Entry(seq, at, actor, action, subject[:500], policy, text, prev, h)
    raise RuntimeError("audit log: too many concurrent writers")


def _write_checkpoint(seq: int, h: str) -> None:
    try:
        path = _checkpoint()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{seq} {h}\n", encoding="ascii")
        tmp.replace(path)
    except OSError:
        pass  # the chain itself still detects changes; only tail truncation needs the checkpoint


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
