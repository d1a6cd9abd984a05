"""The moderators' side: the queue of flagged items, their outcome, and the public record of removals.

WDM Prohibited Content ¶10: "If any record is deleted for unacceptable content, it is the responsibility of
the affected Department to retain a public record of that content and keep a record of why the information
was removed." Every removal, automatic or by a moderator, writes that record: the content whole, the reason
as a sentence, the rule, the clause and its quote. civicaup never deletes it; a restored item keeps its record
with who restored it and when.

`queue(engine, policy)` and `moderate(...)` are what the console calls; the CLI calls them too.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from civicaup.errors import InputError
from civicaup.policy.compile import CompiledPack
from civicaup.social import commenters
from civicaup.social.common import clause_for, email, iso, now
from civicaup.stores import audit
from civicaup.stores.directory import find_person
from civicaup.stores.social_tables import social_accounts, social_items, social_removals

ACTIONS = ("keep", "remove", "warn")
PUBLIC_KINDS = frozenset({"comment", "chat"})  # members of the public: friends, fans, followers
STAFF_KINDS = frozenset({"post", "reply", "draft"})  # the account's own posts and replies
REMOVE = frozenset({"block", "hold"})  # decision actions that take a public item down
QUEUE = frozenset({"flag", "hold"})  # decision actions that wait for a moderator
MODERATING_ROLES = frozenset({"communications", "city-administrator"})
# Removed, but never counted against the author: a resident writing to a page's chat is not posting
# inappropriate content (¶11); the prohibition (¶9) is on the City using chat sessions.
NO_STRIKE = frozenset({"chat"})
AUTO = "civicaup"
PENDING = "civicaup (pending review)"


def _delete_clause(pack: CompiledPack) -> str:
    return clause_for(pack, r"right to delete")[0] or clause_for(pack, r"retain a public record")[0]


def record_removal(conn: Connection, pack: CompiledPack, *, item: Any, department: str,
                   findings: list[dict[str, Any]], by: str, at: datetime, pending: bool = False) -> dict[str, Any]:
    """Write the public record of a removed item: its content, why, the rule and the clause."""
    f = findings[0] if findings else None
    if f is not None:
        rule, clause, quote = f["rule"], f["clause"], f.get("quote", "")
        why = f"{f['category']}: {f['evidence']}"
    else:
        rule, clause, quote = "moderator", _delete_clause(pack), ""
        why = "judged inappropriate by the moderator"
    lead = ("Hidden pending a moderator's review" if pending else
            "Removed automatically" if by == AUTO else f"Removed by moderator {by}")
    reason = f"{lead} under {clause or 'the policy'}" + (f" (rule {rule}: \"{quote}\")" if quote else "") + \
             f"; {why}"
    values = dict(policy=pack.id, item_id=item.item_id, account=item.account, department=department,
                  author=item.author, kind=item.kind, text=item.text, posted_at=item.at, removed_at=at,
                  removed_by=PENDING if pending else by, reason=reason, rule=rule, clause=clause, quote=quote,
                  findings=findings)
    conn.execute(insert(social_removals).values(**values))
    return values


def strike_finding(findings: list[dict[str, Any]], pack: CompiledPack) -> dict[str, Any] | None:
    """The finding a removed commenter's item counts under: the first that is about content; a moderator's own
    judgement when there is none; None when every finding is one that never counts (chat)."""
    if not findings:
        return {"rule": "moderator", "clause": _delete_clause(pack)}
    return next((f for f in findings if f.get("category") not in NO_STRIKE), None)


def _account_row(conn: Connection, policy: str, key: str) -> Any:
    return conn.execute(select(social_accounts).where(social_accounts.c.policy == policy,
                                                      social_accounts.c.key == key)).first()


def may_moderate(engine: Engine, pack: CompiledPack, account: Any, who: str) -> bool:
    """A moderator of the account, its Department Director, a department head of its department, or the
    communications staff and the City Manager (the City Manager's designated representatives) per the directory."""
    if account is not None and (who in account.moderators or who == account.director):
        return True
    p = find_person(engine, pack.id, who)
    if p is None or not p.active:
        return False
    if MODERATING_ROLES & set(p.roles):
        return True
    return account is not None and "department-head" in p.roles and \
        p.department.casefold() == account.department.casefold()


@dataclass(frozen=True)
class Outcome:
    item_id: str
    account: str
    action: str
    moderation: dict[str, str]
    by: str
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.item_id, "account": self.account, "outcome": self.action,
                "moderation": self.moderation, "by": self.by, "at": iso(self.at)}


def _find_item(conn: Connection, item_id: str, policy: str | None) -> Any:
    q = select(social_items).where(social_items.c.item_id == str(item_id))
    if policy:
        q = q.where(social_items.c.policy == policy)
    rows = conn.execute(q).all()
    if not rows:
        raise InputError(f"no ingested item {item_id!r}" + (f" in {policy}" if policy else ""))
    if len(rows) > 1:
        raise InputError(f"item {item_id!r} is in several policies ({', '.join(r.policy for r in rows)}): "
                         "give --policy")
    return rows[0]


def item_policy(engine: Engine, item_id: str, policy: str | None = None) -> str:
    """The policy an ingested item belongs to (so `moderate` needs no --policy when the id is unambiguous)."""
    with engine.connect() as conn:
        return str(_find_item(conn, item_id, policy).policy)


def moderate(engine: Engine, pack: CompiledPack, item_id: str, action: str, by: str) -> Outcome:
    """Record a moderator's outcome for an ingested item and audit it.

    keep   leave it up (restores a removed item: the record stays, marked restored; its strike is withdrawn)
    remove take it down: the public record is written, and a commenter's item counts against them (¶11)
    warn   leave it up but give the commenter their one warning (no effect on a commenter already warned)
    """
    if action not in ACTIONS:
        raise InputError(f"--action must be one of {', '.join(ACTIONS)}, not {action!r}")
    who = email(by, "--as")
    at = now()
    with engine.connect() as conn:
        row = _find_item(conn, item_id, pack.id)
        acc = _account_row(conn, pack.id, row.account)
    if not may_moderate(engine, pack, acc, who):
        raise InputError(f"{who} may not moderate {row.account}: only its moderators, its Department Director, "
                         "or the communications staff and the City Manager in the directory may")
    public = row.kind in PUBLIC_KINDS
    if action == "warn" and not public:
        raise InputError(f"item {row.item_id} is the account's own {row.kind}: warnings are for commenters; "
                         "staff posts are for the Department Director")
    department = acc.department if acc is not None else ""
    findings = [f for f in row.decision.get("findings", []) if f.get("action") != "log"]
    events: list[tuple[str, dict[str, Any]]] = []
    with engine.begin() as conn:
        mod_action = row.mod_action
        if action == "keep" and row.mod_action == "remove":
            conn.execute(update(social_removals).where(
                social_removals.c.policy == pack.id, social_removals.c.item_id == row.item_id,
                social_removals.c.restored_at.is_(None)).values(restored_at=at, restored_by=who))
            if public:
                commenters.withdraw(conn, pack.id, row.strike_scope, row.author, row.item_id, by=who, at=at)
            mod_action = "keep"
            events.append(("social-restore", {}))
        elif action == "remove":
            if row.mod_action != "remove":
                rec = record_removal(conn, pack, item=row, department=department, findings=findings, by=who, at=at)
                events.append(("social-remove", {"rule": rec["rule"], "clause": rec["clause"]}))
            else:  # hidden pending review: the moderator confirms the removal
                conn.execute(update(social_removals).where(
                    social_removals.c.policy == pack.id, social_removals.c.item_id == row.item_id,
                    social_removals.c.restored_at.is_(None), social_removals.c.removed_by == PENDING).values(
                    removed_by=who, reason=f"Removed by moderator {who} after review; held as: " +
                                           social_removals.c.reason))
            mod_action = "remove"
        if public and action in ("remove", "warn"):
            f = strike_finding(findings, pack)
            if f is not None and (action == "remove" or
                                  commenters.standing(conn, pack.id, row.strike_scope, row.author) == "ok"):
                st = commenters.strike(conn, pack.id, row.strike_scope, row.author, row.item_id, rule=f["rule"],
                                       clause=f["clause"], by=who, at=at)
                if st:
                    events.append((f"social-{'block' if st == 'blocked' else 'warn'}", {"author": row.author}))
        answer = commenters.author_answer(conn, pack.id, row.strike_scope, row.author, row.item_id) \
            if public else "ok"
        review = {"keep": "kept", "remove": "removed", "warn": "warned"}[action]
        conn.execute(update(social_items).where(social_items.c.id == row.id).values(
            mod_action=mod_action, author_answer=answer, review=review, reviewed_by=who, reviewed_at=at))
    base = {"account": row.account, "author": row.author, "kind": row.kind}
    audit.append(engine, actor=who, action=f"social-moderate-{action}", subject=row.item_id, policy=pack.id,
                 detail={**base, "moderation": {"action": mod_action, "author": answer}, "was": row.mod_action})
    for name, extra in events:
        audit.append(engine, actor=who, action=name, subject=row.item_id, policy=pack.id, detail={**base, **extra})
    return Outcome(row.item_id, row.account, action, {"action": mod_action, "author": answer}, who, at)


def queue(engine: Engine, policy: str) -> list[dict[str, Any]]:
    """Items waiting for a moderator, oldest first, each suggestion with its rule, clause and quote."""
    with engine.connect() as conn:
        accounts = {a.key: a for a in conn.execute(select(social_accounts).where(social_accounts.c.policy == policy))}
        rows = conn.execute(select(social_items).where(social_items.c.policy == policy,
                                                       social_items.c.review == "pending")
                            .order_by(social_items.c.received_at, social_items.c.id)).all()
        out = []
        for r in rows:
            acc = accounts.get(r.account)
            standing = commenters.standing(conn, policy, r.strike_scope, r.author) if r.kind in PUBLIC_KINDS \
                else "staff"
            out.append({
                "id": r.item_id, "account": r.account, "department": acc.department if acc else "",
                "moderators": list(acc.moderators) if acc else [], "director": acc.director if acc else "",
                "author": r.author, "author_standing": standing, "kind": r.kind, "text": r.text,
                "at": iso(r.at), "action": r.decision.get("action"),
                "moderation": {"action": r.mod_action, "author": r.author_answer},
                "suggestions": [{"suggest": "remove" if f.get("action") in REMOVE else "review",
                                 "rule": f.get("rule"), "clause": f.get("clause"), "action": f.get("action"),
                                 "category": f.get("category"), "evidence": f.get("evidence"),
                                 "quote": f.get("quote", "")}
                                for f in r.decision.get("findings", []) if f.get("action") != "log"],
            })
    return out


def removals(engine: Engine, policy: str, *, account: str | None = None) -> list[dict[str, Any]]:
    """The public record of removed content, newest first."""
    q = select(social_removals).where(social_removals.c.policy == policy)
    if account:
        q = q.where(social_removals.c.account == account)
    with engine.connect() as conn:
        return [{"id": r.item_id, "account": r.account, "department": r.department, "author": r.author,
                 "kind": r.kind, "text": r.text, "posted_at": iso(r.posted_at), "removed_at": iso(r.removed_at),
                 "removed_by": r.removed_by, "reason": r.reason, "rule": r.rule, "clause": r.clause,
                 "quote": r.quote, "restored_at": iso(r.restored_at), "restored_by": r.restored_by}
                for r in conn.execute(q.order_by(social_removals.c.removed_at.desc(), social_removals.c.id.desc()))]


__all__ = ["ACTIONS", "Outcome", "item_policy", "may_moderate", "moderate", "queue", "record_removal", "removals"]
