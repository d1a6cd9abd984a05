"""Reports of suspected misuse and flags from the channels, as cases.

Any employee can report (Kirkwood j.: to their Supervisor; West Des Moines Software Usage ¶5: to their
department director and the IT Director, who inform the City Manager). The city's workflow settings name the
roles; they resolve in the reporter's department (a flag: the flagged person's). A supervisor that the
department lacks falls back to its department head, then the city administrator.

A case is seen by HR and by the people it was routed to, no one else (not the person it concerns, not the
reporter, who gets a receipt). Every view is audited. HR, or a routed department head or city administrator,
closes it with a decision and the discipline outcome.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from civicaup.engine.decision import Decision
from civicaup.errors import InputError
from civicaup.governance.approvals import utc
from civicaup.governance.errors import ConflictError, ForbiddenError, NotFoundError
from civicaup.governance.people import holders, person
from civicaup.governance.workflows import workflows
from civicaup.policy.compile import CompiledPack
from civicaup.stores import audit
from civicaup.stores.directory import Person, find_person
from civicaup.stores.governance_tables import cases

OUTCOMES = ("none", "unfounded", "counselling", "verbal-warning", "written-warning", "suspension", "termination",
            "referred-to-law-enforcement")
CLOSERS = ("department-head", "city-administrator")
_LINK = re.compile(r"^(https?://\S+|(quarantine|audit|approval|inventory|archive|social|case):\S+)$")


@dataclass(frozen=True)
class Case:
    id: int
    policy: str
    source: str
    status: str
    reporter: str
    about: str
    department: str
    summary: str
    routed_to: list[dict[str, str]]
    clause: str
    findings: list[dict[str, Any]]
    evidence: list[str]
    decision: str
    outcome: str
    created_at: datetime
    closed_at: datetime | None
    closed_by: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "policy": self.policy, "source": self.source, "status": self.status,
                "reporter": self.reporter, "about": self.about, "department": self.department,
                "summary": self.summary, "routed_to": self.routed_to, "clause": self.clause,
                "findings": self.findings, "evidence": self.evidence, "decision": self.decision,
                "outcome": self.outcome, "created_at": utc(self.created_at).isoformat(),  # type: ignore[union-attr]
                "closed_at": utc(self.closed_at).isoformat() if self.closed_at else None,  # type: ignore[union-attr]
                "closed_by": self.closed_by}

    def receipt(self) -> dict[str, Any]:
        return {"id": self.id, "policy": self.policy, "status": self.status,
                "created_at": utc(self.created_at).isoformat()}  # type: ignore[union-attr]


def _case(r: Any) -> Case:
    return Case(r.id, r.policy, r.source, r.status, r.reporter, r.about, r.department, r.summary, list(r.routed_to),
                r.clause, list(r.findings), list(r.evidence), r.decision, r.outcome, r.created_at, r.closed_at,
                r.closed_by)


def route(engine: Engine, pack: CompiledPack, department: str, *,
          exclude: frozenset[str] | set[str] = frozenset()) -> list[dict[str, str]]:
    """The people a report from `department` goes to, with the role they get it in."""
    wf = workflows(pack).reports
    out: dict[str, dict[str, str]] = {}
    for how, roles in (("to", wf.to), ("inform", wf.inform)):
        for role in roles:
            chain = {"supervisor": ("supervisor", "department-head", "city-administrator"),
                     "department-head": ("department-head", "city-administrator")}.get(role, (role,))
            for r in chain:
                found = [p for p in holders(engine, pack.id, r, department) if p.email not in exclude]
                if found:
                    for p in found:
                        out.setdefault(p.email, {"email": p.email, "role": r, "as": how})
                    break
    return list(out.values())


def _evidence(links: list[str]) -> list[str]:
    out = []
    for link in links:
        link = link.strip()
        if not _LINK.match(link) or len(link) > 500:
            raise InputError(f"evidence {link[:60]!r} is not a link (http(s)://... or quarantine:ID, audit:ID, "
                             "approval:ID, inventory:MACHINE, archive:ID, social:ID, case:ID)")
        out.append(link)
    return out


def report(engine: Engine, pack: CompiledPack, reporter: str, summary: str, *, about: str = "",
           evidence: list[str] | None = None) -> Case:
    """A report of suspected misuse by any employee, routed by the city's workflow settings."""
    who = person(engine, pack.id, reporter)
    summary = summary.strip()
    if not summary or len(summary) > 10_000:
        raise InputError("a report needs a summary of 1 to 10,000 characters")
    about = about.strip().lower()
    if about and find_person(engine, pack.id, about) is None:
        raise InputError(f"{about} is not in the directory of {pack.id}")
    links = _evidence(evidence or [])
    routed = route(engine, pack, who.department, exclude={who.email, about})
    return _insert(engine, pack, source="report", key=None, reporter=who.email, about=about,
                   department=who.department, summary=summary, routed=routed, findings=[], evidence=links)


def _insert(engine: Engine, pack: CompiledPack, *, source: str, key: str | None, reporter: str, about: str,
            department: str, summary: str, routed: list[dict[str, str]], findings: list[dict[str, Any]],
            evidence: list[str]) -> Case:
    clause = workflows(pack).reports.clause
    with engine.begin() as conn:
        cid = int(conn.execute(insert(cases).values(
            policy=pack.id, source=source, source_key=key, status="open", reporter=reporter, about=about,
            department=department, summary=summary, routed_to=routed, clause=clause, findings=findings,
            evidence=evidence, decision="", outcome="", created_at=datetime.now(timezone.utc),
            closed_by="")).inserted_primary_key[0])
    audit.append(engine, actor=reporter or source, action="case-open", subject=f"case {cid}", policy=pack.id,
                 detail={"source": source, "key": key, "routed_to": [r["email"] for r in routed], "clause": clause,
                         "rules": [f"{f['rule']} (clause {f['clause']})" for f in findings]})
    return get(engine, cid)


def open_flag(engine: Engine, pack: CompiledPack, decision: Decision, *, about: str, department: str, source: str,
              key: str, evidence: list[str], summary: str = "") -> Case | None:
    """A case for the flagged findings of a channel's decision (once per `key`); None when nothing was flagged
    or the case exists already."""
    flagged = [f.to_json() for f in decision.findings if f.action == "flag"]
    if not flagged:
        return None
    routed = route(engine, pack, department, exclude={about.lower()})
    text = summary or "; ".join(f"{f['rule']} (clause {f['clause']}): {f['evidence']}" for f in flagged)
    try:
        return _insert(engine, pack, source=source, key=key, reporter="", about=about.lower(), department=department,
                       summary=text[:10_000], routed=routed, findings=flagged, evidence=_evidence(evidence))
    except IntegrityError:
        return None


def sweep(engine: Engine, pack: CompiledPack) -> list[Case]:
    """Open a case for each flagged message in the mail quarantine that has none yet."""
    from civicaup.channels.mail import quarantine

    made = []
    for h in quarantine.list_held(engine, pack.id):
        if h.status != "flagged":
            continue
        d = h.decision
        decision = Decision(action=d.get("action", "flag"), policy=pack.id, channel="mail", findings=tuple(
            _finding(f) for f in d.get("findings", [])))
        c = open_flag(engine, pack, decision, about=h.sender, department=h.sender_department, source="mail",
                      key=f"mail-quarantine:{h.id}", evidence=[f"quarantine:{h.id}"],
                      summary=f"message {h.subject!r} from {h.sender} flagged under {h.rule} (clause {h.clause})")
        if c is not None:
            made.append(c)
    return made


def _finding(f: dict[str, Any]) -> Any:
    from civicaup.engine.decision import Finding
    return Finding(rule=f["rule"], clause=f["clause"], category=f.get("category", ""), action=f["action"],
                   evidence=f.get("evidence", ""), approvers=tuple(f.get("approvers", [])),
                   approvers_needed=f.get("approvers_needed", "any"), exempted_by=f.get("exempted_by"),
                   quote=f.get("quote", ""))


# ---------------------------------------------------------------- reading and closing

def get(engine: Engine, cid: int, *, policy: str | None = None) -> Case:
    q = select(cases).where(cases.c.id == cid)
    if policy is not None:
        q = q.where(cases.c.policy == policy)
    with engine.connect() as conn:
        row = conn.execute(q).first()
    if row is None:
        raise NotFoundError(f"no case {cid}" + (f" in {policy}" if policy else ""))
    return _case(row)


def may_see(c: Case, p: Person) -> bool:
    return p.active and ("hr" in p.roles or any(r["email"] == p.email for r in c.routed_to))


def may_close(c: Case, p: Person) -> bool:
    return p.active and ("hr" in p.roles or any(r["email"] == p.email and r["role"] in CLOSERS for r in c.routed_to))


def visible(engine: Engine, pack: CompiledPack, viewer: Person, *, status: str | None = None) -> list[Case]:
    q = select(cases).where(cases.c.policy == pack.id).order_by(cases.c.id.desc())
    if status:
        q = q.where(cases.c.status == status)
    with engine.connect() as conn:
        return [c for c in map(_case, conn.execute(q)) if may_see(c, viewer)]


def reported_by(engine: Engine, pack: CompiledPack, reporter: str) -> list[Case]:
    with engine.connect() as conn:
        return [_case(r) for r in conn.execute(select(cases).where(cases.c.policy == pack.id,
                                                                   cases.c.reporter == reporter.lower())
                                               .order_by(cases.c.id.desc()))]


def show(engine: Engine, pack: CompiledPack, cid: int, as_email: str) -> Case:
    """The case, for HR and the people it was routed to; the view is audited."""
    c = get(engine, cid, policy=pack.id)
    p = person(engine, pack.id, as_email)
    if not may_see(c, p):
        raise ForbiddenError(f"{p.email} may not see case {cid}: cases are for HR and the people they were "
                             "routed to")
    audit.append(engine, actor=p.email, action="case-view", subject=f"case {cid}", policy=pack.id,
                 detail={"about": c.about})
    return c


def close(engine: Engine, pack: CompiledPack, cid: int, as_email: str, *, decision: str, outcome: str) -> Case:
    c = get(engine, cid, policy=pack.id)
    p = person(engine, pack.id, as_email)
    if not may_close(c, p):
        raise ForbiddenError(f"{p.email} may not close case {cid} (HR, or a department head or city administrator "
                             "it was routed to)")
    if c.status == "closed":
        raise ConflictError(f"case {cid} is already closed")
    if outcome not in OUTCOMES:
        raise InputError(f"--outcome must be one of {', '.join(OUTCOMES)}")
    if not decision.strip():
        raise InputError("closing a case needs a --decision")
    t = datetime.now(timezone.utc)
    with engine.begin() as conn:
        conn.execute(update(cases).where(cases.c.id == cid).values(status="closed", decision=decision.strip()[:10_000],
                                                                   outcome=outcome, closed_at=t, closed_by=p.email))
    audit.append(engine, actor=p.email, action="case-close", subject=f"case {cid}", policy=pack.id,
                 detail={"outcome": outcome, "about": c.about})
    return get(engine, cid)
