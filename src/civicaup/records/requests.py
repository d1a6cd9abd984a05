"""Public-records requests: logged with their statutory due date, responsive records tagged, manual
redactions recorded. Every step is written to the audit log; only the clerk or the city administrator
(the records custodians) act on requests."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from civicaup.errors import InputError
from civicaup.policy.registry import get_pack
from civicaup.records.archive import Record, find_record, records_by_id
from civicaup.records.authz import require
from civicaup.records.deadlines import KINDS, deadline, parse_received
from civicaup.records.search import Filters, matching_ids
from civicaup.stores import audit
from civicaup.stores.records_tables import archive_messages as M
from civicaup.stores.records_tables import records_redactions as RD
from civicaup.stores.records_tables import records_request_items as RI
from civicaup.stores.records_tables import records_requests as RQ


@dataclass(frozen=True)
class Request:
    id: int
    policy: str
    requester: str
    contact: str
    description: str
    kind: str
    received: str
    state: str
    due: date | None
    statute: str
    note: str
    status: str
    created_by: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "policy": self.policy, "requester": self.requester, "contact": self.contact,
                "description": self.description, "kind": self.kind, "received": self.received,
                "state": self.state, "due": self.due.isoformat() if self.due else None, "statute": self.statute,
                "note": self.note, "status": self.status, "created_by": self.created_by,
                "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class Item:
    sha256: str
    status: str
    note: str
    record: Record | None  # None once disposed of (after the request closed)


def _request(r: Any) -> Request:
    return Request(r.id, r.policy, r.requester, r.contact, r.description, r.kind, r.received, r.state, r.due,
                   r.statute, r.note, r.status, r.created_by, r.created_at)


def add_request(engine: Engine, policy: str, *, requester: str, contact: str, description: str, received: str,
                kind: str, actor: str) -> Request:
    if kind not in KINDS:
        raise InputError(f"--kind must be public or data-subject, not {kind!r}")
    if not requester.strip() or not description.strip():
        raise InputError("a request needs a requester and a description")
    person = require(engine, policy, actor, action="log a records request")
    state = get_pack(policy).pack.jurisdiction.state
    when = parse_received(received)
    dl = deadline(state, when if "T" in received else when.date(), kind)
    with engine.begin() as conn:
        rid = conn.execute(insert(RQ).values(
            policy=policy, requester=requester.strip(), contact=contact.strip(), description=description.strip(),
            kind=kind, received=dl.received, state=state, due=dl.due, statute=dl.statute, note=dl.note,
            status="open", created_by=person.email, created_at=datetime.now(timezone.utc))).inserted_primary_key[0]
    req = get_request(engine, policy, int(rid))
    audit.append(engine, actor=person.email, action="records-request-add", subject=f"request {req.id}",
                 policy=policy, detail=req.to_json())
    return req


def get_request(engine: Engine, policy: str, request_id: int) -> Request:
    with engine.connect() as conn:
        r = conn.execute(select(RQ).where(RQ.c.policy == policy, RQ.c.id == request_id)).first()
    if r is None:
        raise InputError(f"no records request {request_id} in {policy}")
    return _request(r)


def list_requests(engine: Engine, policy: str, *, status: str | None = "open") -> list[Request]:
    q = select(RQ).where(RQ.c.policy == policy).order_by(RQ.c.due.is_(None), RQ.c.due, RQ.c.id)
    if status and status != "all":
        q = q.where(RQ.c.status == status)
    with engine.connect() as conn:
        return [_request(r) for r in conn.execute(q)]


def items(engine: Engine, policy: str, request_id: int) -> list[Item]:
    with engine.connect() as conn:
        rows = conn.execute(select(RI).where(RI.c.request == request_id).order_by(RI.c.tagged_at, RI.c.sha256)).all()
        ids = dict(conn.execute(select(M.c.sha256, M.c.id).where(
            M.c.policy == policy, M.c.sha256.in_([r.sha256 for r in rows]))).all()) if rows else {}
        recs = {r.sha256: r for r in records_by_id(conn, list(ids.values()), policy)}
    return [Item(r.sha256, r.status, r.note, recs.get(r.sha256)) for r in rows]


def redactions(engine: Engine, request_id: int) -> dict[str, list[tuple[str, str]]]:
    """sha256 -> [(text, reason)] of manual redactions."""
    out: dict[str, list[tuple[str, str]]] = {}
    with engine.connect() as conn:
        for r in conn.execute(select(RD).where(RD.c.request == request_id).order_by(RD.c.id)):
            out.setdefault(r.sha256, []).append((r.text, r.reason))
    return out


def _open(engine: Engine, policy: str, request_id: int) -> Request:
    req = get_request(engine, policy, request_id)
    if req.status != "open":
        raise InputError(f"request {request_id} is {req.status}")
    return req


def tag(engine: Engine, policy: str, request_id: int, *, refs: list[str], filters: Filters | None,
        status: str, note: str, actor: str) -> int:
    """Mark records responsive (or responsive but withheld), by reference or every match of a search."""
    if status not in ("responsive", "withheld"):
        raise InputError("status must be responsive or withheld")
    _open(engine, policy, request_id)
    person = require(engine, policy, actor, action="tag records for a request")
    shas = [find_record(engine, policy, ref).sha256 for ref in refs]
    if filters is not None:
        with engine.connect() as conn:
            ids = sorted(matching_ids(conn, policy, filters, get_pack(policy).tz), reverse=True)
            shas += [r.sha256 for r in records_by_id(conn, ids, policy)]
    shas = list(dict.fromkeys(shas))
    if not shas:
        return 0
    now = datetime.now(timezone.utc)
    dialect = {"sqlite": sqlite, "postgresql": postgresql}[engine.dialect.name]
    with engine.begin() as conn:
        for start in range(0, len(shas), 500):
            rows = [dict(request=request_id, sha256=s, status=status, note=note, tagged_by=person.email, tagged_at=now)
                    for s in shas[start:start + 500]]
            stmt = dialect.insert(RI).values(rows)
            conn.execute(stmt.on_conflict_do_update(index_elements=["request", "sha256"],
                                                    set_={"status": stmt.excluded.status, "note": stmt.excluded.note,
                                                          "tagged_by": stmt.excluded.tagged_by,
                                                          "tagged_at": stmt.excluded.tagged_at}))
    audit.append(engine, actor=person.email, action="records-request-tag", subject=f"request {request_id}",
                 policy=policy, detail={"status": status, "note": note, "count": len(shas),
                                        "records": [s[:12] for s in shas[:1000]],
                                        "search": None if filters is None else {
                                            k: (str(v) if v is not None else None)
                                            for k, v in filters.__dict__.items()}})
    return len(shas)


def untag(engine: Engine, policy: str, request_id: int, *, refs: list[str], actor: str) -> int:
    _open(engine, policy, request_id)
    person = require(engine, policy, actor, action="untag records of a request")
    shas = [find_record(engine, policy, ref).sha256 for ref in refs]
    with engine.begin() as conn:
        n = conn.execute(delete(RI).where(RI.c.request == request_id, RI.c.sha256.in_(shas))).rowcount or 0
    audit.append(engine, actor=person.email, action="records-request-untag", subject=f"request {request_id}",
                 policy=policy, detail={"records": [s[:12] for s in shas]})
    return n


def add_redaction(engine: Engine, policy: str, request_id: int, *, ref: str, text: str, reason: str,
                  actor: str) -> None:
    if not text.strip() or not reason.strip():
        raise InputError("a manual redaction needs the text to redact and the reason (the exemption)")
    _open(engine, policy, request_id)
    person = require(engine, policy, actor, action="redact a record")
    rec = find_record(engine, policy, ref)
    with engine.begin() as conn:
        conn.execute(delete(RD).where(RD.c.request == request_id, RD.c.sha256 == rec.sha256, RD.c.text == text))
        conn.execute(insert(RD).values(request=request_id, sha256=rec.sha256, text=text, reason=reason.strip(),
                                       created_by=person.email, created_at=datetime.now(timezone.utc)))
    audit.append(engine, actor=person.email, action="records-request-redact", subject=f"request {request_id}",
                 policy=policy, detail={"record": rec.ref, "reason": reason, "length": len(text)})


def close_request(engine: Engine, policy: str, request_id: int, *, actor: str, note: str = "") -> Request:
    _open(engine, policy, request_id)
    person = require(engine, policy, actor, action="close a records request")
    with engine.begin() as conn:
        conn.execute(update(RQ).where(RQ.c.id == request_id).values(status="closed",
                                                                      closed_at=datetime.now(timezone.utc)))
    audit.append(engine, actor=person.email, action="records-request-close", subject=f"request {request_id}",
                 policy=policy, detail={"note": note})
    return get_request(engine, policy, request_id)
