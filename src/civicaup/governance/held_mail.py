"""Held mail for the API and the console, through the mail quarantine's own functions (list, get, release,
reject): who may see which message. The sender sees their own messages and why they were held, with the
clause; approvers see the ones they may release, with the text (each such look is audited); IT and the city
administrator see all of their city's. Another city's message is not found."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from civicaup.channels.mail import quarantine
from civicaup.channels.mail.mime import parse_mail
from civicaup.governance.errors import ForbiddenError, NotFoundError
from civicaup.governance.people import ADMIN
from civicaup.policy.compile import CompiledPack
from civicaup.stores import audit
from civicaup.stores.directory import Person


def _may_decide(h: quarantine.Held, p: Person) -> bool:
    return h.sender.lower() != p.email and any(quarantine.permitted_roles(h, p, spec) for spec in h.approvers)


def relation(h: quarantine.Held, p: Person) -> str:
    """"sender", "approver", "admin" or "" (may not see it)."""
    if h.sender.lower() == p.email:
        return "sender"
    if _may_decide(h, p):
        return "approver"
    return "admin" if set(ADMIN) & set(p.roles) else ""


def visible(engine: Engine, pack: CompiledPack, p: Person, *, everything: bool = False) -> list[quarantine.Held]:
    return [h for h in quarantine.list_held(engine, pack.id, everything=everything) if relation(h, p)]


def get(engine: Engine, pack: CompiledPack, qid: int) -> quarantine.Held:
    try:
        h = quarantine.get(engine, qid)
    except quarantine.NotFound:
        raise NotFoundError(f"no held message {qid} in {pack.id}") from None
    if h.policy != pack.id:
        raise NotFoundError(f"no held message {qid} in {pack.id}")
    return h


def summary(h: quarantine.Held) -> dict[str, Any]:
    """What anyone allowed to see the message sees: who, what, why (findings with clause and quote), status."""
    findings = [{k: f.get(k) for k in ("rule", "clause", "category", "action", "evidence", "quote", "approvers",
                                       "approvers_needed")}
                for f in h.decision.get("findings", []) if f.get("action") in ("hold", "flag", "block")]
    return {"id": h.id, "policy": h.policy, "status": h.status, "sender": h.sender, "subject": h.subject,
            "recipients": h.recipients, "rule": h.rule, "clause": h.clause, "created_at": h.to_json()["created_at"],
            "approvers": [{k: a[k] for k in ("rule", "clause", "roles", "needed")} for a in h.approvers],
            "approvals": h.approvals, "waiting_for": quarantine.missing(h) if h.status == "held" else [],
            "findings": findings}


def view(engine: Engine, pack: CompiledPack, qid: int, p: Person) -> dict[str, Any]:
    """The message as this person may see it; an approver's or admin's look at the text is audited."""
    h = get(engine, pack, qid)
    how = relation(h, p)
    if not how:
        raise ForbiddenError(f"{p.email} may not see held message {qid}")
    out = summary(h) | {"as": how}
    if how in ("approver", "admin"):
        audit.append(engine, actor=p.email, action="mail-view", subject=f"quarantine {qid}", policy=pack.id,
                     detail={"rule": h.rule, "clause": h.clause, "sha256": h.sha256, "as": how})
        mail = parse_mail(quarantine.raw_bytes(h))
        out["text"] = "\n\n".join(t.text for t in mail.texts)[:20_000]
        out["attachments"] = [{"filename": a.filename, "type": a.sniffed_type or a.declared_type, "size": a.size}
                              for a in mail.attachments]
    return out


def release(engine: Engine, pack: CompiledPack, qid: int, p: Person) -> quarantine.Outcome:
    get(engine, pack, qid)
    return quarantine.release(engine, qid, p.email)


def reject(engine: Engine, pack: CompiledPack, qid: int, p: Person) -> quarantine.Outcome:
    get(engine, pack, qid)
    return quarantine.reject(engine, qid, p.email)
