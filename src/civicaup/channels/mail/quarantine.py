"""Held and flagged mail: the raw bytes content-addressed on disk, the decision and approvals in the store.

A held message waits for the approvers its pack names for each held finding, resolved through the directory:
`department-head` is a department head of the *sender's* department; `all_of` needs every role (a first approval
is recorded and the message stays held). Release re-injects the original bytes unchanged to the next hop;
rejection sends the sender a notice naming the clause. Every approval, release and rejection goes to the audit log.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, insert, select, update

from civicaup.channels.mail import delivery
from civicaup.config import home
from civicaup.durable import fsync_dir as _fsync_dir
from civicaup.errors import CivicaupError, InputError
from civicaup.stores import audit
from civicaup.stores.directory import find_person
from civicaup.stores.tables import mail_approvals, mail_quarantine, metadata

if TYPE_CHECKING:
    from civicaup.channels.mail.gateway import Envelope
    from civicaup.channels.mail.spool import Spool
    from civicaup.engine.decision import Decision

OPEN = ("held", "approved", "flagged")


class NotPermitted(InputError):
    """The person may not release or reject this message."""


class NotFound(InputError):
    """No held message with that id."""


_READY: set[int] = set()


def ensure_tables(engine: Engine) -> None:
    """The tables come with migration 0003; a store stamped by an early empty 0003 gets them here, once."""
    if id(engine) not in _READY:
        metadata.create_all(engine, tables=[mail_quarantine, mail_approvals], checkfirst=True)
        _READY.add(id(engine))


def quarantine_dir() -> Path:
    return home() / "quarantine"


def blob_path(sha256: str) -> Path:
    return quarantine_dir() / sha256


def store_blob(spool: "Spool") -> str:
    """Write the message bytes to quarantine/<sha256> (fsync'd, atomically renamed); the same bytes are kept once."""
    qdir = quarantine_dir()
    qdir.mkdir(parents=True, exist_ok=True)
    sha = spool.sha256
    dest = blob_path(sha)
    if dest.is_file() and dest.stat().st_size == spool.size:
        return sha
    tmp = qdir / f".{sha}.{os.getpid()}.{id(spool)}.tmp"
    h = hashlib.sha256()
    with open(tmp, "wb") as out, spool.open() as src:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            h.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if h.hexdigest() != sha:
        tmp.unlink(missing_ok=True)
        raise CivicaupError("quarantine: the message changed while it was stored")
    os.replace(tmp, dest)
    _fsync_dir(qdir)
    return sha


def _approver_specs(decision: "Decision", status: str) -> list[dict[str, Any]]:
    wanted = "hold" if status == "held" else "flag"
    return [{"rule": f.rule, "clause": f.clause, "roles": list(f.approvers), "needed": f.approvers_needed,
             "quote": f.quote} for f in decision.findings if f.action == wanted]


def put(engine: Engine, spool: "Spool", decision: "Decision", envelope: "Envelope", *, sender: str,
        department: str = "", status: str = "held", channel: str = "milter", next_hop: str = "") -> int:
    """Store the bytes (fsync) and commit the row (synchronous) before the filter answers. Returns the id."""
    ensure_tables(engine)
    sha = store_blob(spool)
    specs = _approver_specs(decision, status)
    first = specs[0] if specs else {"rule": "", "clause": ""}
    subject, message_id = _subject_and_id(spool)
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA synchronous=FULL")  # this commit reaches the disk before we answer
        res = conn.execute(insert(mail_quarantine).values(
            policy=decision.policy, status=status, channel=channel, queue_id=envelope.queue_id[:64],
            sender=sender[:320], sender_department=department[:200], mail_from=envelope.mail_from[:320],
            recipients=list(envelope.rcpt_to), subject=subject[:500], message_id=message_id[:500], sha256=sha,
            size=spool.size, rule=first["rule"][:64], clause=first["clause"][:200], approvers=specs,
            decision=json.dumps(decision.to_json(), ensure_ascii=False), next_hop=next_hop[:300],
            created_at=now, updated_at=now))
        qid = int(res.inserted_primary_key[0])
    if status == "held":
        audit.append(engine, actor=channel, action="mail-hold", subject=f"quarantine {qid}", policy=decision.policy,
                     detail={"rule": first["rule"], "clause": first["clause"], "sha256": sha, "sender": sender,
                             "queue_id": envelope.queue_id})
    return qid


def _subject_and_id(spool: "Spool") -> tuple[str, str]:
    from civicaup.channels.mail.mime import parse_mail
    head = spool.head(65536)
    end = head.find(b"\r\n\r\n")
    end = end if end >= 0 else head.find(b"\n\n")
    mail = parse_mail((head[:end] if end >= 0 else head) + b"\r\n\r\n")
    return mail.subject, mail.message_id or ""


# ---------------------------------------------------------------- reading

@dataclass(frozen=True)
class Held:
    id: int
    policy: str
    status: str
    channel: str
    queue_id: str
    sender: str
    sender_department: str
    mail_from: str
    recipients: list[str]
    subject: str
    message_id: str
    sha256: str
    size: int
    rule: str
    clause: str
    approvers: list[dict[str, Any]]
    decision: dict[str, Any]
    next_hop: str
    created_at: datetime
    updated_at: datetime
    approvals: list[dict[str, Any]]

    def approver_text(self) -> str:
        return "; ".join(f"{a['rule']}: " + (" and " if a["needed"] == "all" else " or ").join(a["roles"])
                         for a in self.approvers)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "policy": self.policy, "sender": self.sender, "subject": self.subject,
                "rule": self.rule, "clause": self.clause,
                "approvers": [{"rule": a["rule"], "clause": a["clause"], "roles": a["roles"], "needed": a["needed"]}
                              for a in self.approvers],
                "status": self.status, "mail_from": self.mail_from, "recipients": self.recipients,
                "message_id": self.message_id, "sha256": self.sha256, "size": self.size, "queue_id": self.queue_id,
                "created_at": _iso(self.created_at), "approvals": self.approvals, "decision": self.decision}


def _iso(at: datetime) -> str:
    return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).isoformat()


def _held(row: Any, approvals: list[dict[str, Any]]) -> Held:
    return Held(row.id, row.policy, row.status, row.channel, row.queue_id, row.sender, row.sender_department,
                row.mail_from, list(row.recipients), row.subject, row.message_id, row.sha256, int(row.size), row.rule,
                row.clause, list(row.approvers), json.loads(row.decision), row.next_hop, row.created_at,
                row.updated_at, approvals)


def _approvals(conn: Any, qid: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(mail_approvals).where(mail_approvals.c.quarantine_id == qid)
                        .order_by(mail_approvals.c.id))
    return [{"verdict": r.verdict, "approver": r.approver, "role": r.role, "rule": r.rule, "clause": r.clause,
             "at": _iso(r.at)} for r in rows]


def list_held(engine: Engine, policy: str | None = None, *, everything: bool = False) -> list[Held]:
    ensure_tables(engine)
    q = select(mail_quarantine).order_by(mail_quarantine.c.id)
    if policy:
        q = q.where(mail_quarantine.c.policy == policy)
    if not everything:
        q = q.where(mail_quarantine.c.status.in_(OPEN))
    with engine.connect() as conn:
        return [_held(r, _approvals(conn, r.id)) for r in conn.execute(q)]


def get(engine: Engine, qid: int) -> Held:
    ensure_tables(engine)
    with engine.connect() as conn:
        row = conn.execute(select(mail_quarantine).where(mail_quarantine.c.id == qid)).first()
        if row is None:
            raise NotFound(f"no held message {qid}")
        return _held(row, _approvals(conn, qid))


def raw_bytes(held: Held) -> bytes:
    """The stored original, verified against the hash in the row."""
    path = blob_path(held.sha256)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CivicaupError(f"quarantine {held.id}: stored message missing ({exc.strerror})") from None
    if hashlib.sha256(data).hexdigest() != held.sha256:
        raise CivicaupError(f"quarantine {held.id}: stored message does not match its hash {held.sha256[:12]}")
    return data


def _verify_file(held: Held) -> Path:
    path = blob_path(held.sha256)
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fp:
            for chunk in iter(lambda: fp.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise CivicaupError(f"quarantine {held.id}: stored message missing ({exc.strerror})") from None
    if h.hexdigest() != held.sha256:
        raise CivicaupError(f"quarantine {held.id}: stored message does not match its hash {held.sha256[:12]}")
    return path


# ---------------------------------------------------------------- who may decide

def permitted_roles(held: Held, person: Any, spec: dict[str, Any]) -> set[str]:
    """The roles of `spec` this person may approve in. `department-head` must head the sender's department
    (any department head when the sender is not in the directory)."""
    if person is None or not person.active:
        return set()
    out = set()
    for role in spec["roles"]:
        if role not in person.roles:
            continue
        if role == "department-head" and held.sender_department and \
                person.department.strip().casefold() != held.sender_department.strip().casefold():
            continue
        out.add(role)
    return out


def _satisfied(spec: dict[str, Any], approvals: list[dict[str, Any]]) -> bool:
    given = {a["role"] for a in approvals if a["verdict"] == "approve" and a["rule"] == spec["rule"]}
    return set(spec["roles"]) <= given if spec["needed"] == "all" else bool(set(spec["roles"]) & given)


def missing(held: Held) -> list[str]:
    """What is still needed, one phrase per unsatisfied finding."""
    out = []
    for spec in held.approvers:
        if _satisfied(spec, held.approvals):
            continue
        given = {a["role"] for a in held.approvals if a["verdict"] == "approve" and a["rule"] == spec["rule"]}
        roles = [r for r in spec["roles"] if r not in given]
        out.append(f"{spec['rule']} (clause {spec['clause']}) needs " +
                   (" and " if spec["needed"] == "all" else " or ").join(roles))
    return out


def _person(engine: Engine, held: Held, email: str) -> Any:
    person = find_person(engine, held.policy, email)
    if person is None or not person.active:
        raise NotPermitted(f"{email} is not an active person in the directory of {held.policy}")
    if person.email == held.sender.lower():
        raise NotPermitted(f"{email} sent message {held.id} and may not approve it")
    return person


@dataclass(frozen=True)
class Outcome:
    held: Held
    message: str
    delivered: bool = False


def release(engine: Engine, qid: int, as_email: str, *, next_hop: str | None = None) -> Outcome:
    """Record this person's approvals; when every held finding is approved, re-inject the original bytes."""
    held = get(engine, qid)
    if held.status == "flagged":
        raise InputError(f"message {qid} was delivered (flagged for review); there is nothing to release")
    if held.status in ("released", "rejected"):
        raise InputError(f"message {qid} was already {held.status}")
    person = _person(engine, held, as_email)
    new: list[tuple[dict[str, Any], str]] = []
    any_role = False
    for spec in held.approvers:
        roles = permitted_roles(held, person, spec)
        any_role = any_role or bool(roles)
        if _satisfied(spec, held.approvals):
            continue
        done = {a["role"] for a in held.approvals if a["verdict"] == "approve" and a["rule"] == spec["rule"]}
        new += [(spec, r) for r in sorted(roles - done)]
    if not any_role:
        raise NotPermitted(f"{as_email} may not release message {qid}: it needs " + "; ".join(
            missing(held) or [held.approver_text()]))
    if not new and held.status != "approved":
        raise InputError(f"{as_email} has already approved message {qid}; waiting for: " + "; ".join(missing(held)))
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        for spec, role in new:
            conn.execute(insert(mail_approvals).values(quarantine_id=qid, verdict="approve", approver=person.email,
                                                       role=role, rule=spec["rule"], clause=spec["clause"], at=now))
    for spec, role in new:
        audit.append(engine, actor=person.email, action="mail-approve", subject=f"quarantine {qid}",
                     policy=held.policy, detail={"rule": spec["rule"], "clause": spec["clause"], "role": role,
                                                 "sha256": held.sha256})
    held = get(engine, qid)
    still = missing(held)
    if still:
        return Outcome(held, f"approved message {qid} as {', '.join(r for _, r in new)}; still held: "
                              + "; ".join(still))
    with engine.begin() as conn:
        conn.execute(update(mail_quarantine).where(mail_quarantine.c.id == qid,
                                                   mail_quarantine.c.status.in_(("held", "approved")))
                     .values(status="approved", updated_at=now))
    hop = next_hop or os.environ.get("CIVICAUP_MAIL_NEXT_HOP") or held.next_hop or _configured_hop()
    path = _verify_file(held)
    with open(path, "rb") as fp:
        delivery.send(hop, held.mail_from, held.recipients, fp)  # DeliveryError: stays approved, retry later
    with engine.begin() as conn:
        conn.execute(update(mail_quarantine).where(mail_quarantine.c.id == qid)
                     .values(status="released", updated_at=datetime.now(timezone.utc)))
    clauses = sorted({f"{s['rule']} (clause {s['clause']})" for s in held.approvers})
    approvers = sorted({f"{a['approver']} as {a['role']}" for a in held.approvals if a["verdict"] == "approve"})
    audit.append(engine, actor=person.email, action="mail-release", subject=f"quarantine {qid}", policy=held.policy,
                 detail={"under": clauses, "approved_by": approvers, "sha256": held.sha256, "next_hop": hop,
                         "recipients": len(held.recipients)})
    return Outcome(get(engine, qid), f"released message {qid} to {hop} (approved by {', '.join(approvers)})",
                   delivered=True)


def reject(engine: Engine, qid: int, as_email: str, *, next_hop: str | None = None) -> Outcome:
    """Refuse the message: recorded, and the sender is sent a notice naming the clause."""
    held = get(engine, qid)
    if held.status not in ("held", "approved"):
        raise InputError(f"message {qid} is {held.status}; only held messages can be rejected")
    person = _person(engine, held, as_email)
    pairs = [(spec, r) for spec in held.approvers for r in sorted(permitted_roles(held, person, spec))]
    if not pairs:
        raise NotPermitted(f"{as_email} may not reject message {qid}: it needs " + held.approver_text())
    now = datetime.now(timezone.utc)
    spec, role = pairs[0]
    with engine.begin() as conn:
        conn.execute(insert(mail_approvals).values(quarantine_id=qid, verdict="reject", approver=person.email,
                                                   role=role, rule=spec["rule"], clause=spec["clause"], at=now))
        conn.execute(update(mail_quarantine).where(mail_quarantine.c.id == qid)
                     .values(status="rejected", updated_at=now))
    hop = next_hop or os.environ.get("CIVICAUP_MAIL_NEXT_HOP") or held.next_hop or _configured_hop()
    notice_error = ""
    to = held.mail_from or held.sender
    if to:
        try:
            delivery.send(hop, "", [to], notice(held, spec, person.email))
        except delivery.DeliveryError as exc:
            notice_error = str(exc)
    audit.append(engine, actor=person.email, action="mail-reject", subject=f"quarantine {qid}", policy=held.policy,
                 detail={"rule": spec["rule"], "clause": spec["clause"], "role": role, "sha256": held.sha256,
                         "notice": "not sent: " + notice_error if notice_error else f"sent to {to}" if to else
                         "no sender address"})
    msg = f"rejected message {qid} under {spec['rule']} (clause {spec['clause']})"
    msg += f"; notice not sent: {notice_error}" if notice_error else f"; notice sent to {to}" if to else ""
    return Outcome(get(engine, qid), msg)


def notice(held: Held, spec: dict[str, Any], by: str) -> bytes:
    """The message the sender gets when a held message is rejected: what, by whom, under which clause."""
    from civicaup.policy.registry import get_pack
    try:
        domain = get_pack(held.policy).pack.city.mail_domain
    except CivicaupError:
        domain = "localhost"
    m = EmailMessage()
    m["From"] = f"civicaup <postmaster@{domain}>"
    m["To"] = held.mail_from or held.sender
    m["Subject"] = f"Not sent: {held.subject}"[:200]
    m["Date"] = formatdate(localtime=False)
    m["Message-ID"] = make_msgid(domain=domain)
    m["Auto-Submitted"] = "auto-replied"
    if held.message_id:
        m["In-Reply-To"] = held.message_id
    m.set_content(
        f"Your message \"{held.subject}\" to {', '.join(held.recipients[:5])}"
        f"{' and others' if len(held.recipients) > 5 else ''} was held and has been rejected by {by}.\n\n"
        f"Rule: {spec['rule']}\nClause: {spec['clause']}\n\n\"{spec.get('quote', '')}\"\n\n"
        f"The message was not delivered to anyone. Reference: quarantine {held.id} ({held.policy}).\n")
    return m.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _configured_hop() -> str:
    from civicaup import settings

    return settings.load().mail.next_hop
