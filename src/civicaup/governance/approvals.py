"""The approval workflow: one for every hold a pack names (software, devices, looks at another person's data,
exemptions, purchases, social-media authorisation); held mail stays in the mail quarantine and is listed and
decided through it (see `inbox`).

A request is an engine Decision with hold findings. Each held finding names its approvers: `any_of` one role,
`all_of` every role. `department-head` and `supervisor` must be of the requester's department; nobody approves
their own request. A first approval of an `all_of` finding is recorded and the request stays pending; one denial
ends it. Pending requests are overdue after `remind_after_days` and lapse after `expire_after_days`; granted
exemptions and accesses end at `valid_until`. Every request, vote, expiry and use is in the audit log.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, insert, or_, select, update

from civicaup.engine.decision import Decision
from civicaup.governance import asks, grants_cache
from civicaup.governance.dates import last_day
from civicaup.governance.errors import ConflictError, ForbiddenError, NotFoundError
from civicaup.governance.people import ADMIN, acts_as, holders, person, same_department
from civicaup.governance.workflows import workflows
from civicaup.policy.compile import CompiledPack
from civicaup.stores import audit
from civicaup.stores.directory import Person
from civicaup.stores.governance_tables import approval_requests, approval_votes

OPEN = "pending"


def now() -> datetime:
    return datetime.now(timezone.utc)


def utc(at: datetime | None) -> datetime | None:
    """Aware UTC (SQLite hands back naive datetimes for what was stored as UTC)."""
    if at is None:
        return None
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


@dataclass(frozen=True)
class Vote:
    verdict: str
    approver: str
    role: str
    rule: str
    clause: str
    note: str
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "approver": self.approver, "role": self.role, "rule": self.rule,
                "clause": self.clause, "note": self.note, "at": utc(self.at).isoformat()}  # type: ignore[union-attr]


@dataclass(frozen=True)
class Request:
    id: int
    policy: str
    kind: str
    subject: str
    requester: str
    department: str
    reason: str
    detail: dict[str, Any]
    decision: dict[str, Any]
    approvers: list[dict[str, Any]]
    status: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    valid_until: datetime | None
    votes: tuple[Vote, ...]

    def given(self, rule: str) -> set[str]:
        return {v.role for v in self.votes if v.verdict == "approve" and v.rule == rule}

    def satisfied(self, spec: dict[str, Any]) -> bool:
        given = self.given(spec["rule"])
        return set(spec["roles"]) <= given if spec["needed"] == "all" else bool(set(spec["roles"]) & given)

    def missing(self) -> list[str]:
        """What is still needed, one phrase per unsatisfied finding."""
        out = []
        for spec in self.approvers:
            if not self.satisfied(spec):
                roles = [r for r in spec["roles"] if r not in self.given(spec["rule"])]
                out.append(f"{spec['rule']} (clause {spec['clause']}) needs " +
                           (" and " if spec["needed"] == "all" else " or ").join(roles))
        return out

    def current(self, at: datetime | None = None) -> bool:
        """Approved and not past its end."""
        end = utc(self.valid_until)
        return self.status == "approved" and (end is None or end > (at or now()))

    def to_json(self) -> dict[str, Any]:
        iso = lambda d: utc(d).isoformat() if d else None  # noqa: E731
        return {"id": self.id, "policy": self.policy, "kind": self.kind, "subject": self.subject,
                "requester": self.requester, "department": self.department, "reason": self.reason,
                "detail": self.detail, "status": self.status,
                "approvers": [{k: a[k] for k in ("rule", "clause", "roles", "needed", "quote")} for a in self.approvers],
                "missing": self.missing() if self.status == OPEN else [],
                "votes": [v.to_json() for v in self.votes], "decision": self.decision,
                "created_at": iso(self.created_at), "expires_at": iso(self.expires_at),
                "valid_until": iso(self.valid_until)}


@dataclass(frozen=True)
class Submitted:
    """What came of asking: the engine's decision and, when it holds, the pending request."""
    decision: Decision
    request: Request | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"decision": self.decision.to_json(), "request": self.request.to_json() if self.request else None,
                "message": self.message}


# ---------------------------------------------------------------- asking

def submit(engine: Engine, pack: CompiledPack, ask: asks.Ask, requester: Person, *, reason: str = "",
           valid_until: datetime | None = None) -> Submitted:
    """Record a request when the decision holds; a block or an allow needs no request. Audited either way."""
    d = ask.decision
    held = [f for f in d.findings if f.action == "hold"]
    base = {"kind": ask.kind, "subject": ask.subject, "action": d.action,
            "rules": [f"{f.rule} (clause {f.clause})" for f in d.findings if f.action != "log"]}
    if d.action == "block" or not held:
        audit.append(engine, actor=requester.email, action=f"request-{d.action}", subject=f"{ask.kind} {ask.subject}",
                     policy=pack.id, detail={**base, "reason": reason[:500]})
        if d.action == "block":
            f = d.findings[0]
            msg = f"refused: {f.rule} (clause {f.clause}) forbids it; no approval can allow it"
        else:
            msg = "no approval needed" + (f" (recorded under {', '.join(base['rules'])})" if base["rules"] else "")
        return Submitted(d, None, msg)
    specs = [{"rule": f.rule, "clause": f.clause, "roles": list(f.approvers), "needed": f.approvers_needed,
              "quote": f.quote} for f in held]
    detail = dict(ask.detail)
    if detail.get("access") == "copy-software":  # Kentucky (E): approvers check that the licence allows it
        from civicaup.governance.inventory import home_use
        detail["licence_home_use"] = home_use(engine, pack.id, ask.subject)
    t = now()
    wf = workflows(pack)
    with engine.begin() as conn:
        res = conn.execute(insert(approval_requests).values(
            policy=pack.id, kind=ask.kind, subject=ask.subject[:500], requester=requester.email,
            department=requester.department, reason=reason[:4000], detail=detail, decision=d.to_json(),
            approvers=specs, status=OPEN, created_at=t, updated_at=t,
            expires_at=t + timedelta(days=wf.expire_after_days), valid_until=valid_until))
        rid = int(res.inserted_primary_key[0])
    audit.append(engine, actor=requester.email, action="approval-request", subject=f"approval {rid}", policy=pack.id,
                 detail={**base, "reason": reason[:500], "approvers": [_phrase(s) for s in specs]})
    req = get(engine, rid)
    return Submitted(d, req, f"request {rid} pending: " + "; ".join(req.missing()))


def _phrase(spec: dict[str, Any]) -> str:
    return f"{spec['rule']} (clause {spec['clause']}): " + (" and " if spec["needed"] == "all" else " or ").join(
        spec["roles"])


# ---------------------------------------------------------------- reading

def _votes(conn: Any, rid: int) -> tuple[Vote, ...]:
    rows = conn.execute(select(approval_votes).where(approval_votes.c.request_id == rid).order_by(approval_votes.c.id))
    return tuple(Vote(r.verdict, r.approver, r.role, r.rule, r.clause, r.note, r.at) for r in rows)


def _request(conn: Any, r: Any) -> Request:
    return Request(r.id, r.policy, r.kind, r.subject, r.requester, r.department, r.reason, dict(r.detail),
                   dict(r.decision), list(r.approvers), r.status, r.created_at, r.updated_at, r.expires_at,
                   r.valid_until, _votes(conn, r.id))


def get(engine: Engine, rid: int, *, policy: str | None = None) -> Request:
    """One request; with `policy`, another city's request is not found."""
    with engine.connect() as conn:
        q = select(approval_requests).where(approval_requests.c.id == rid)
        if policy is not None:
            q = q.where(approval_requests.c.policy == policy)
        row = conn.execute(q).first()
        if row is None:
            raise NotFoundError(f"no approval request {rid}" + (f" in {policy}" if policy else ""))
        return _request(conn, row)


def requests(engine: Engine, policy: str | None = None, *, status: str | None = None,
             requester: str | None = None) -> list[Request]:
    expire_overdue(engine, policy)
    q = select(approval_requests).order_by(approval_requests.c.id)
    if policy:
        q = q.where(approval_requests.c.policy == policy)
    if status:
        q = q.where(approval_requests.c.status == status)
    if requester:
        q = q.where(approval_requests.c.requester == requester.lower())
    with engine.connect() as conn:
        return [_request(conn, r) for r in conn.execute(q)]


def may_decide(req: Request, p: Person) -> set[str]:
    """The roles of the still-open findings this person may approve in (never their own request)."""
    if p.email == req.requester:
        return set()
    return {role for spec in req.approvers for role in spec["roles"] if acts_as(p, role, req.department)}


def may_see(req: Request, p: Person) -> bool:
    """The requester; anyone who may decide it or did; IT and the city administrator; the requester's
    department head."""
    if p.email == req.requester:
        return True
    if set(ADMIN) & set(p.roles) or may_decide(req, p) or any(v.approver == p.email for v in req.votes):
        return True
    return "department-head" in p.roles and same_department(p.department, req.department)


def visible(engine: Engine, pack: CompiledPack, viewer: Person, *, status: str | None = None) -> list[Request]:
    return [r for r in requests(engine, pack.id, status=status) if may_see(r, viewer)]


def awaiting(engine: Engine, pack: CompiledPack, approver: Person) -> list[Request]:
    """Pending requests this person may still approve in a role not yet given."""
    out = []
    for r in requests(engine, pack.id, status=OPEN):
        open_roles = {role for s in r.approvers if not r.satisfied(s) for role in s["roles"]
                      if role not in r.given(s["rule"])}
        if may_decide(r, approver) & open_roles:
            out.append(r)
    return out


def held_mail_for(engine: Engine, pack: CompiledPack, approver: Person) -> list[Any]:
    """Held mail (the mail quarantine's) this person may release: the other half of the approval inbox."""
    from civicaup.channels.mail import quarantine

    out = []
    for h in quarantine.list_held(engine, pack.id):
        if h.status not in ("held", "approved") or h.sender.lower() == approver.email:
            continue
        if any(quarantine.permitted_roles(h, approver, spec) for spec in h.approvers):
            out.append(h)
    return out


def history(engine: Engine, req: Request) -> list[dict[str, Any]]:
    """The audit entries of a request, oldest first (read from its city's chain only)."""
    return [e.to_json() for e in audit.about(engine, f"approval {req.id}", req.policy)]


# ---------------------------------------------------------------- deciding

@dataclass(frozen=True)
class Outcome:
    request: Request
    message: str


def _open(engine: Engine, rid: int, policy: str | None) -> Request:
    expire_overdue(engine, policy)
    req = get(engine, rid, policy=policy)
    if req.status != OPEN:
        raise ConflictError(f"request {rid} is {req.status}")
    return req


def approve(engine: Engine, pack: CompiledPack, rid: int, as_email: str, note: str = "") -> Outcome:
    """Record this person's approvals (each role they may give); when every finding is satisfied, grant it."""
    req = _open(engine, rid, pack.id)
    p = person(engine, pack.id, as_email)
    if p.email == req.requester:
        raise ForbiddenError(f"{p.email} asked for request {rid} and may not approve it")
    new = [(s, role) for s in req.approvers if not req.satisfied(s) for role in s["roles"]
           if role not in req.given(s["rule"]) and acts_as(p, role, req.department)]
    if not new:
        if may_decide(req, p):
            raise ConflictError(f"{p.email} has already approved request {rid}; waiting for: "
                                + "; ".join(req.missing()))
        raise ForbiddenError(f"{p.email} may not approve request {rid}: it needs " + "; ".join(req.missing()))
    t = now()
    with engine.begin() as conn:
        for spec, role in new:
            conn.execute(insert(approval_votes).values(request_id=rid, verdict="approve", approver=p.email, role=role,
                                                       rule=spec["rule"], clause=spec["clause"], note=note[:2000],
                                                       at=t))
    for spec, role in new:
        audit.append(engine, actor=p.email, action="approval-approve", subject=f"approval {rid}", policy=pack.id,
                     detail={"rule": spec["rule"], "clause": spec["clause"], "role": role, "kind": req.kind,
                             "requester": req.requester, "note": note[:500]})
    req = get(engine, rid)
    still = req.missing()
    roles = ", ".join(r for _, r in new)
    if still:
        return Outcome(req, f"approved request {rid} as {roles}; still pending: " + "; ".join(still))
    wf = workflows(pack)
    until = utc(req.valid_until)
    if req.kind == "access" and until is None:
        until = t + timedelta(days=wf.access_valid_days)
    with engine.begin() as conn:
        conn.execute(update(approval_requests).where(approval_requests.c.id == rid, approval_requests.c.status == OPEN)
                     .values(status="approved", updated_at=t, valid_until=until))
    if req.kind == "exemption":
        grants_cache.invalidate(pack.id)  # this process's channels see the grant from their next decision
    approvers = sorted({f"{v.approver} as {v.role}" for v in req.votes if v.verdict == "approve"})
    audit.append(engine, actor=p.email, action="approval-grant", subject=f"approval {rid}", policy=pack.id,
                 detail={"kind": req.kind, "subject": req.subject, "requester": req.requester,
                         "under": sorted({f"{s['rule']} (clause {s['clause']})" for s in req.approvers}),
                         "approved_by": approvers, "valid_until": until.isoformat() if until else None})
    return Outcome(get(engine, rid), f"granted request {rid} ({req.kind} {req.subject}); approved by "
                   + ", ".join(approvers) + (f"; valid through {last_day(until, pack)}" if until else ""))


def deny(engine: Engine, pack: CompiledPack, rid: int, as_email: str, note: str = "") -> Outcome:
    """One permitted approver's denial ends the request."""
    req = _open(engine, rid, pack.id)
    p = person(engine, pack.id, as_email)
    if p.email == req.requester:
        raise ForbiddenError(f"{p.email} asked for request {rid} and may not decide it")
    pairs = [(s, role) for s in req.approvers for role in s["roles"] if acts_as(p, role, req.department)]
    if not pairs:
        raise ForbiddenError(f"{p.email} may not deny request {rid}: it needs " + "; ".join(req.missing()))
    spec, role = pairs[0]
    t = now()
    with engine.begin() as conn:
        conn.execute(insert(approval_votes).values(request_id=rid, verdict="deny", approver=p.email, role=role,
                                                   rule=spec["rule"], clause=spec["clause"], note=note[:2000], at=t))
        conn.execute(update(approval_requests).where(approval_requests.c.id == rid)
                     .values(status="denied", updated_at=t))
    audit.append(engine, actor=p.email, action="approval-deny", subject=f"approval {rid}", policy=pack.id,
                 detail={"rule": spec["rule"], "clause": spec["clause"], "role": role, "kind": req.kind,
                         "requester": req.requester, "note": note[:500]})
    return Outcome(get(engine, rid), f"denied request {rid} under {spec['rule']} (clause {spec['clause']})")


def withdraw(engine: Engine, pack: CompiledPack, rid: int, as_email: str) -> Outcome:
    req = _open(engine, rid, pack.id)
    if as_email.strip().lower() != req.requester:
        raise ForbiddenError(f"only {req.requester} may withdraw request {rid}")
    with engine.begin() as conn:
        conn.execute(update(approval_requests).where(approval_requests.c.id == rid)
                     .values(status="withdrawn", updated_at=now()))
    audit.append(engine, actor=req.requester, action="approval-withdraw", subject=f"approval {rid}", policy=pack.id)
    return Outcome(get(engine, rid), f"withdrew request {rid}")


# ---------------------------------------------------------------- time

def expire_overdue(engine: Engine, policy: str | None = None, at: datetime | None = None) -> list[int]:
    """Pending requests past `expires_at` lapse (audited); returns their ids."""
    t = at or now()
    q = select(approval_requests.c.id, approval_requests.c.policy).where(
        approval_requests.c.status == OPEN, approval_requests.c.expires_at.is_not(None),
        approval_requests.c.expires_at < t)
    if policy:
        q = q.where(approval_requests.c.policy == policy)
    with engine.connect() as conn:
        due = [(r.id, r.policy) for r in conn.execute(q)]
    done = []
    for rid, pol in due:
        with engine.begin() as conn:
            n = conn.execute(update(approval_requests).where(approval_requests.c.id == rid,
                                                             approval_requests.c.status == OPEN)
                             .values(status="expired", updated_at=t)).rowcount
        if n:
            audit.append(engine, actor="civicaup", action="approval-expire", subject=f"approval {rid}", policy=pol)
            done.append(rid)
    return done


@dataclass(frozen=True)
class Overdue:
    ref: str  # "12" for a request, "mail-7" for held mail
    policy: str
    what: str
    requester: str
    waiting_days: int
    missing: list[str]
    approvers: list[str]  # the people who could act now

    def to_json(self) -> dict[str, Any]:
        return {"id": self.ref, "policy": self.policy, "what": self.what, "requester": self.requester,
                "waiting_days": self.waiting_days, "missing": self.missing, "approvers": self.approvers}


def overdue(engine: Engine, pack: CompiledPack, at: datetime | None = None, *, mark: bool = True) -> list[Overdue]:
    """Requests and held mail waiting longer than the city's `remind_after_days`, with who could act now."""
    from civicaup.channels.mail import quarantine

    t = at or now()
    limit = timedelta(days=workflows(pack).remind_after_days)
    out: list[Overdue] = []
    for r in requests(engine, pack.id, status=OPEN):
        created = utc(r.created_at)
        assert created is not None
        if t - created < limit:
            continue
        people = sorted({p.email for s in r.approvers if not r.satisfied(s) for role in s["roles"]
                         if role not in r.given(s["rule"])
                         for p in holders(engine, pack.id, role, r.department) if p.email != r.requester})
        out.append(Overdue(str(r.id), pack.id, f"{r.kind} {r.subject}", r.requester, (t - created).days,
                           r.missing(), people))
    for h in quarantine.list_held(engine, pack.id):
        created = utc(h.created_at)
        if h.status != "held" or created is None or t - created < limit:
            continue
        people = sorted({p.email for spec in h.approvers for role in spec["roles"]
                         for p in holders(engine, pack.id, role, h.sender_department) if p.email != h.sender.lower()})
        out.append(Overdue(f"mail-{h.id}", pack.id, f"mail {h.subject!r}", h.sender, (t - created).days,
                           quarantine.missing(h), people))
    if mark:
        with engine.begin() as conn:
            ids = [int(o.ref) for o in out if o.ref.isdigit()]
            if ids:
                conn.execute(update(approval_requests).where(approval_requests.c.id.in_(ids)).values(reminded_at=t))
        for o in out:
            audit.append(engine, actor="civicaup", action="approval-remind",
                         subject=f"approval {o.ref}" if o.ref.isdigit() else f"quarantine {o.ref[5:]}",
                         policy=pack.id, detail={"to": o.approvers, "waiting_days": o.waiting_days})
    return out


# ---------------------------------------------------------------- grants the engine reads

def granted_exemptions(engine: Engine, policy: str, email: str, roles: frozenset[str] | set[str],
                       at: datetime | None = None) -> frozenset[str]:
    """Rule ids for which this person holds a current exemption, personally or through a role: the engine's
    `granted_exemptions`."""
    t = at or now()
    grantees = {email.lower()} | {f"role:{r}" for r in roles}
    q = select(approval_requests).where(approval_requests.c.policy == policy, approval_requests.c.kind == "exemption",
                                        approval_requests.c.status == "approved",
                                        or_(approval_requests.c.valid_until.is_(None),
                                            approval_requests.c.valid_until > t))
    with engine.connect() as conn:
        return frozenset(r.detail["rule"] for r in conn.execute(q) if r.detail.get("grantee") in grantees)


def granted(engine: Engine, policy: str, kind: str, subject: str, requester: str | None = None,
            at: datetime | None = None) -> Request | None:
    """A current approval of this kind and subject (case-insensitive), for `requester` when given."""
    for r in requests(engine, policy, status="approved", requester=requester):
        if r.kind == kind and r.subject.casefold() == subject.casefold() and r.current(at):
            return r
    return None


def use_access(engine: Engine, pack: CompiledPack, rid: int, as_email: str, what: str = "") -> Request:
    """Record one look at another person's data under a granted access request (audited); refuses when the
    request is not this person's, not granted, or past its end."""
    req = get(engine, rid, policy=pack.id)
    p = person(engine, pack.id, as_email)
    if req.kind != "access" or req.requester != p.email:
        raise ForbiddenError(f"request {rid} is not an access request of {p.email}")
    if not req.current():
        raise ForbiddenError(f"request {rid} is {req.status}" + (" and has ended" if req.status == "approved" else ""))
    audit.append(engine, actor=p.email, action="access-use", subject=f"approval {rid}", policy=pack.id,
                 detail={"access": req.detail.get("access"), "of": req.subject, "what": what[:500]})
    return req

