"""Intake: posts and comments on official accounts, one generic item at a time, into the engine and the store.

The generic item (one JSON object a line for `civicaup social ingest`, or a webhook body):

    {"id": "...", "account": "facebook:wdmparks", "author": "...", "kind": "comment", "text": "...",
     "at": "2026-03-03T10:15:00-06:00"}

`kind` is comment or chat (members of the public), post or reply (the account's own, i.e. staff), or draft
(a staff draft checked before publishing: answered, never stored). `at` without an offset is the city's
local time; missing, now. The answer:

    {"id": ..., "decision": {...Decision...}, "moderation": {"action": "keep|remove", "author": "ok|warned|blocked"}}

- block or hold -> remove (hold: hidden until a moderator decides); allow, log, flag -> keep; flag and hold
  wait in the moderators' queue.
- A commenter's blocked item counts against them: the first time "warned", the second "blocked"
  (see commenters.py); the account's own posts never count against anyone.
- Every removal is retained with its content, reason, rule and clause (moderation.record_removal).
- The same id again with the same text answers what it answered before and changes nothing (a webhook may
  deliver twice); with a different text it is an edit and is checked again, never counting twice.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ContextManager

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from civicaup.channels.events import post_event
from civicaup.detect import prepared
from civicaup.engine.evaluate import evaluate
from civicaup.engine.windows import local
from civicaup.errors import InputError
from civicaup.policy.compile import CompiledPack
from civicaup.social import commenters
from civicaup.social.accounts import resolver
from civicaup.social.common import now, utc
from civicaup.social.moderation import AUTO, PUBLIC_KINDS, QUEUE, REMOVE, record_removal, strike_finding
from civicaup.stores import audit
from civicaup.stores.social_tables import social_items

KINDS = ("comment", "post", "reply", "chat", "draft")
MAX_TEXT = 100_000
SCOPES = ("account", "city")
#: Items whose texts are scanned together (civicaup.detect.prepared).
CHUNK = 512


@dataclass(frozen=True)
class Item:
    id: str | int  # as given, echoed in the answer
    key: str  # the id as stored
    account: str
    author: str
    kind: str
    text: str
    at: datetime  # aware, city time

    @property
    def text_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def item_id_of(obj: Any) -> str | int | None:
    """The id of a line, for its answer or its error: a string or an integer, else null."""
    if isinstance(obj, dict):
        v = obj.get("id")
        if isinstance(v, (str, int)) and not isinstance(v, bool):
            return v
    return None


def _clean(s: str) -> str:
    """Lone surrogates (valid JSON escapes, invalid Unicode) would break the store and the output."""
    return s.encode("utf-8", "replace").decode("utf-8")


def parse_item(obj: Any, pack: CompiledPack, line: int | None = None) -> Item:
    """Validate one generic item; a one-line InputError names the line and the field."""
    where = f"line {line}: " if line is not None else ""
    if not isinstance(obj, dict):
        raise InputError(f"{where}needs a JSON object with id, account, author, kind, text, at")
    iid = item_id_of(obj)
    if iid is None or str(iid).strip() == "" or len(str(iid)) > 200:
        raise InputError(f"{where}\"id\" must be a non-empty string or integer (at most 200 characters)")
    fields: dict[str, str] = {}
    for name, limit in (("account", 200), ("author", 320)):
        v = obj.get(name)
        if not isinstance(v, str) or not v.strip() or len(v) > limit:
            raise InputError(f"{where}\"{name}\" must be a non-empty string (at most {limit} characters)")
        fields[name] = _clean(v.strip())
    kind = obj.get("kind", "comment")
    kind = "comment" if kind is None else kind
    if kind not in KINDS:
        raise InputError(f"{where}\"kind\" must be one of {', '.join(KINDS)}, not {kind!r}")
    text = obj.get("text")
    if not isinstance(text, str):
        raise InputError(f"{where}\"text\" must be a string")
    if len(text) > MAX_TEXT:
        raise InputError(f"{where}\"text\" is longer than {MAX_TEXT} characters")
    at_raw = obj.get("at")
    if at_raw is None:
        at = now().astimezone(pack.tz)
    elif isinstance(at_raw, str):
        try:
            at = local(datetime.fromisoformat(at_raw.strip()), pack.tz)
        except ValueError:
            raise InputError(f"{where}\"at\" {at_raw[:40]!r} is not an ISO-8601 time") from None
    else:
        raise InputError(f"{where}\"at\" must be an ISO-8601 string")
    return Item(iid, str(iid).strip(), fields["account"], fields["author"], kind, _clean(text), at)


def answer(item_id: Any, decision: dict[str, Any], action: str, author: str) -> dict[str, Any]:
    return {"id": item_id, "decision": decision, "moderation": {"action": action, "author": author}}


class Intake:
    """Ingests items for one policy; keeps counts for the run's audit entry."""

    def __init__(self, engine: Engine, pack: CompiledPack, *, scope: str = "account", by: str = AUTO) -> None:
        if scope not in SCOPES:
            raise InputError(f"--strikes must be account or city, not {scope!r}")
        self.engine, self.pack, self.scope, self.by = engine, pack, scope, by
        self.accounts = resolver(engine, pack.id)
        self.counts: Counter[str] = Counter()

    def handle(self, line: int, obj: Any) -> dict[str, Any]:
        """One JSONL line: validate, ingest, answer."""
        return self.ingest(parse_item(obj, self.pack, line))

    def prepare_lines(self, objs: list[Any]) -> ContextManager[int]:
        """Scan the texts of a chunk of items in one batch (civicaup.detect.prepared) before they are handled
        one by one (`social ingest` enters this around each chunk of lines): the same decisions, faster."""
        return prepared(_clean(o["text"]) for o in objs
                        if isinstance(o, dict) and isinstance(o.get("text"), str) and len(o["text"]) <= MAX_TEXT)

    def ingest(self, item: Item) -> dict[str, Any]:
        self.counts["items"] += 1
        ev = post_event(item.text, self.pack, kind=item.kind, account=item.account, author=item.author,
                        at=item.at.isoformat())
        if item.kind == "draft":  # checked like `check post`, never stored
            d = evaluate(ev, self.pack)
            self.counts["drafts"] += 1
            return answer(item.id, d.to_json(), "remove" if d.action in REMOVE else "keep", "ok")
        with self.engine.connect() as conn:
            row = self._row(conn, item.key)
        if row is not None and row.text_hash == item.text_hash:
            self.counts["duplicates"] += 1
            return answer(item.id, row.decision, row.mod_action, row.author_answer)
        decision = evaluate(ev, self.pack)
        try:
            return self._store(item, row, decision.to_json())
        except IntegrityError:  # another writer stored the same id first: answer what it answered
            with self.engine.connect() as conn:
                row = self._row(conn, item.key)
            if row is None:
                raise
            self.counts["duplicates"] += 1
            return answer(item.id, row.decision, row.mod_action, row.author_answer)

    def _row(self, conn: Any, key: str) -> Any:
        return conn.execute(select(social_items).where(social_items.c.policy == self.pack.id,
                                                       social_items.c.item_id == key)).first()

    def _store(self, item: Item, row: Any, d: dict[str, Any]) -> dict[str, Any]:
        acc = self.accounts.find(item.account)
        account = acc.key if acc is not None else item.account
        scope = account if self.scope == "account" else ""
        if row is not None:
            scope = row.strike_scope  # an edit keeps the scope its item was first counted in
        public = item.kind in PUBLIC_KINDS
        action = d["action"]
        was_removed = row is not None and row.mod_action == "remove"
        remove = action in REMOVE or was_removed  # an edit never brings back a removed item: a moderator does
        removing = [f for f in d["findings"] if f["action"] in REMOVE]
        at = now()
        events: list[tuple[str, dict[str, Any]]] = []
        stored = _Stored(item.key, account, item.author, item.kind, item.text, utc(item.at))
        with self.engine.begin() as conn:
            if action in REMOVE and not was_removed:
                rec = record_removal(conn, self.pack, item=stored, department=acc.department if acc else "",
                                     findings=removing, by=AUTO, at=at, pending=action == "hold")
                events.append(("social-remove", {"rule": rec["rule"], "clause": rec["clause"],
                                                 "pending": action == "hold"}))
            author = "ok"
            if public:
                f = strike_finding(removing, self.pack) if action == "block" else None
                if f is not None:
                    st = commenters.strike(conn, self.pack.id, scope, item.author, item.key, rule=f["rule"],
                                           clause=f["clause"], by=AUTO, at=at)
                    if st and events:  # one audit entry for the removal and what it did to the author
                        events[-1][1]["author_status"] = st
                    elif st:
                        events.append((f"social-{'block' if st == 'blocked' else 'warn'}", {"author_status": st}))
                author = commenters.author_answer(conn, self.pack.id, scope, item.author, item.key)
            review = "pending" if action in QUEUE else (row.review if row is not None and row.review != "pending"
                                                        else "")
            values = dict(account=account, author=item.author, kind=item.kind, text=item.text,
                          text_hash=item.text_hash, at=utc(item.at), decision=d,
                          mod_action="remove" if remove else "keep", author_answer=author, strike_scope=scope,
                          review=review)
            if row is None:
                conn.execute(insert(social_items).values(policy=self.pack.id, item_id=item.key, received_at=at,
                                                         revisions=1, **values))
            else:
                conn.execute(update(social_items).where(social_items.c.id == row.id).values(
                    revisions=row.revisions + 1, **values))
                self.counts["edits"] += 1
        self.counts["removed" if remove else "kept"] += 1
        if review == "pending":
            self.counts["queued"] += 1
        for name, extra in events:
            audit.append(self.engine, actor=self.by, action=name, subject=item.key, policy=self.pack.id,
                         detail={"account": account, "author": item.author, "kind": item.kind, **extra})
        return answer(item.id, d, "remove" if remove else "keep", author)

    def summary(self) -> dict[str, int]:
        return dict(self.counts)


@dataclass(frozen=True)
class _Stored:
    """The fields of an item as record_removal reads them from a stored row."""
    item_id: str
    account: str
    author: str
    kind: str
    text: str
    at: datetime


def ingest_items(engine: Engine, pack: CompiledPack, items: list[dict[str, Any]], *,
                 scope: str = "account") -> list[dict[str, Any]]:
    """Ingest already-parsed generic items (a webhook body, the console, tests); a bad item raises InputError."""
    intake = Intake(engine, pack, scope=scope)
    out: list[dict[str, Any]] = []
    for first in range(0, len(items), CHUNK):
        chunk = items[first:first + CHUNK]
        with intake.prepare_lines(chunk):
            out += [intake.handle(n, obj) for n, obj in enumerate(chunk, first + 1)]
    return out
