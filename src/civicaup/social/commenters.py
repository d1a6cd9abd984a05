"""Commenters' standing: one warning, then blocked (WDM Prohibited Content ¶11: "One warning should be given,
if appropriate. If the individual posts inappropriate content a second time, they should be removed or
blocked.").

A strike is tied to one item, so an item never counts twice (re-ingest, moderation after ingest). Standing
follows the active strikes: none -> ok, one -> warned, two or more -> blocked. A moderator who restores an
item withdraws its strike; the history keeps every event. The scope is an account (default: a block is per
page on the platform) or the whole city ("").
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from civicaup.social.common import from_db, iso
from civicaup.stores.social_tables import social_commenters, social_strikes


def status_for(strikes: int) -> str:
    return "ok" if strikes <= 0 else "warned" if strikes == 1 else "blocked"


def _active(conn: Connection, policy: str, scope: str, author: str) -> int:
    return int(conn.execute(select(func.count()).select_from(social_strikes).where(
        social_strikes.c.policy == policy, social_strikes.c.scope == scope, social_strikes.c.author == author,
        social_strikes.c.active.is_(True))).scalar_one())


def _store_standing(conn: Connection, policy: str, scope: str, author: str, at: datetime) -> str:
    n = _active(conn, policy, scope, author)
    status = status_for(n)
    res = conn.execute(update(social_commenters).where(
        social_commenters.c.policy == policy, social_commenters.c.scope == scope,
        social_commenters.c.author == author).values(strikes=n, status=status, updated_at=at))
    if not res.rowcount:
        conn.execute(insert(social_commenters).values(policy=policy, scope=scope, author=author, strikes=n,
                                                      status=status, updated_at=at))
    return status


def standing(conn: Connection, policy: str, scope: str, author: str) -> str:
    return status_for(_active(conn, policy, scope, author))


def has_strike(conn: Connection, policy: str, item_id: str) -> bool:
    return conn.execute(select(social_strikes.c.id).where(
        social_strikes.c.policy == policy, social_strikes.c.item_id == item_id,
        social_strikes.c.active.is_(True)).limit(1)).first() is not None


def strike(conn: Connection, policy: str, scope: str, author: str, item_id: str, *, rule: str, clause: str,
           by: str, at: datetime) -> str | None:
    """Count the item against its author (once per item). Returns the new standing, or None when the item
    already counted."""
    if has_strike(conn, policy, item_id):
        return None
    event = status_for(_active(conn, policy, scope, author) + 1)
    conn.execute(insert(social_strikes).values(policy=policy, scope=scope, author=author, item_id=item_id, at=at,
                                               event=event, rule=rule, clause=clause, by=by, active=True))
    return _store_standing(conn, policy, scope, author, at)


def withdraw(conn: Connection, policy: str, scope: str, author: str, item_id: str, *, by: str,
             at: datetime) -> str | None:
    """A restored item no longer counts. Returns the new standing, or None when the item had no strike."""
    res = conn.execute(update(social_strikes).where(
        social_strikes.c.policy == policy, social_strikes.c.item_id == item_id,
        social_strikes.c.active.is_(True)).values(active=False))
    if not res.rowcount:
        return None
    conn.execute(insert(social_strikes).values(policy=policy, scope=scope, author=author, item_id=item_id, at=at,
                                               event="withdrawn", rule="", clause="", by=by, active=False))
    return _store_standing(conn, policy, scope, author, at)


def author_answer(conn: Connection, policy: str, scope: str, author: str, item_id: str) -> str:
    """The `author` of an item's moderation answer: blocked while the author is blocked; warned on the item that
    earned the author's one warning; ok otherwise (nothing to do about the author for this item)."""
    s = standing(conn, policy, scope, author)
    if s == "blocked":
        return "blocked"
    return "warned" if s == "warned" and has_strike(conn, policy, item_id) else "ok"


@dataclass(frozen=True)
class Commenter:
    scope: str
    author: str
    strikes: int
    status: str
    updated_at: datetime
    history: tuple[dict[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        return {"scope": self.scope or "city", "author": self.author, "strikes": self.strikes,
                "status": self.status, "updated_at": iso(self.updated_at), "history": list(self.history)}


def list_commenters(engine: Engine, policy: str, *, scope: str | None = None,
                    only_flagged: bool = True) -> list[Commenter]:
    """Commenters with their history (by default only those warned or blocked, now or before)."""
    q = select(social_commenters).where(social_commenters.c.policy == policy)
    if scope is not None:
        q = q.where(social_commenters.c.scope == scope)
    out: list[Commenter] = []
    with engine.connect() as conn:
        for c in conn.execute(q.order_by(social_commenters.c.scope, social_commenters.c.author)):
            hist = [{"at": iso(h.at), "event": h.event, "item": h.item_id, "rule": h.rule, "clause": h.clause,
                     "by": h.by, "active": bool(h.active)}
                    for h in conn.execute(select(social_strikes).where(
                        social_strikes.c.policy == policy, social_strikes.c.scope == c.scope,
                        social_strikes.c.author == c.author).order_by(social_strikes.c.id))]
            if only_flagged and not hist:
                continue
            out.append(Commenter(c.scope, c.author, c.strikes, c.status, from_db(c.updated_at),  # type: ignore[arg-type]
                                 tuple(hist)))
    return out
