"""Legal holds: by custodian (mail from, to or cc an address), date range and full-text query.

A held record is never disposed of, whatever its series says; a hold covers messages archived after it
was placed too. Placing a hold is open to any person in the directory (audited); releasing one needs the
clerk or the city administrator and is audited with a reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, insert, select, update

from civicaup.errors import InputError
from civicaup.records.authz import known, require
from civicaup.records.search import Filters, matching_ids, parse_query
from civicaup.stores import audit
from civicaup.stores.records_tables import records_holds as H, records_request_items, records_requests
from civicaup.stores.records_tables import archive_messages as M


@dataclass(frozen=True)
class Hold:
    id: int
    policy: str
    custodian: str | None
    since: date | None
    until: date | None
    query: str | None
    reason: str
    created_by: str
    created_at: datetime
    status: str
    released_by: str | None
    released_at: datetime | None

    def filters(self) -> Filters:
        return Filters(text=self.query, party=self.custodian, since=self.since, until=self.until)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "policy": self.policy, "custodian": self.custodian,
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None, "query": self.query, "reason": self.reason,
                "created_by": self.created_by, "created_at": self.created_at.isoformat(), "status": self.status,
                "released_by": self.released_by,
                "released_at": self.released_at.isoformat() if self.released_at else None}


def _hold(r: Any) -> Hold:
    return Hold(r.id, r.policy, r.custodian, r.since, r.until, r.query, r.reason, r.created_by, r.created_at,
                r.status, r.released_by, r.released_at)


def add_hold(engine: Engine, policy: str, *, custodian: str | None, since: date | None, until: date | None,
             query: str | None, reason: str, actor: str) -> Hold:
    if not (custodian or since or until or query):
        raise InputError("a hold needs a custodian, a date range or a query (or several)")
    if not reason.strip():
        raise InputError("a hold needs a reason (the matter it preserves records for)")
    if since and until and since > until:
        raise InputError("--since is after --until")
    if query:
        parse_query(query)  # a bad query fails now, not at the next retention run
    known(engine, policy, actor, action="place a legal hold")
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        hold_id = conn.execute(insert(H).values(
            policy=policy, custodian=custodian.strip().lower() if custodian else None, since=since, until=until,
            query=query, reason=reason.strip(), created_by=actor.lower(), created_at=now, status="active")
        ).inserted_primary_key[0]
    hold = get_hold(engine, policy, int(hold_id))
    audit.append(engine, actor=actor.lower(), action="hold-add", subject=f"hold {hold.id}", policy=policy,
                 detail=hold.to_json())
    return hold


def get_hold(engine: Engine, policy: str, hold_id: int) -> Hold:
    with engine.connect() as conn:
        r = conn.execute(select(H).where(H.c.policy == policy, H.c.id == hold_id)).first()
    if r is None:
        raise InputError(f"no hold {hold_id} in {policy}")
    return _hold(r)


def list_holds(engine: Engine, policy: str, *, status: str | None = None) -> list[Hold]:
    q = select(H).where(H.c.policy == policy).order_by(H.c.id)
    if status:
        q = q.where(H.c.status == status)
    with engine.connect() as conn:
        return [_hold(r) for r in conn.execute(q)]


def release_hold(engine: Engine, policy: str, hold_id: int, *, actor: str, reason: str = "") -> Hold:
    hold = get_hold(engine, policy, hold_id)
    if hold.status != "active":
        raise InputError(f"hold {hold_id} is already {hold.status}")
    person = require(engine, policy, actor, action="release a legal hold")
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        conn.execute(update(H).where(H.c.id == hold_id).values(status="released", released_by=person.email,
                                                               released_at=now, release_reason=reason))
    hold = get_hold(engine, policy, hold_id)
    audit.append(engine, actor=person.email, action="hold-release", subject=f"hold {hold_id}", policy=policy,
                 detail={**hold.to_json(), "release_reason": reason, "roles": list(person.roles)})
    return hold


def held_ids(conn: Connection, policy: str, tz: ZoneInfo) -> dict[int, list[str]]:
    """Message id -> why it must be kept: active holds, and open requests it is responsive to."""
    why: dict[int, list[str]] = {}
    for r in conn.execute(select(H).where(H.c.policy == policy, H.c.status == "active")):
        for mid in matching_ids(conn, policy, _hold(r).filters(), tz):
            why.setdefault(mid, []).append(f"hold {r.id}")
    q = (select(M.c.id, records_requests.c.id.label("req"))
         .join(records_request_items, records_request_items.c.sha256 == M.c.sha256)
         .join(records_requests, records_requests.c.id == records_request_items.c.request)
         .where(M.c.policy == policy, records_requests.c.policy == policy, records_requests.c.status == "open"))
    for mid, req in conn.execute(q):
        why.setdefault(mid, []).append(f"open request {req}")
    return why
