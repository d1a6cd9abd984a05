"""What is asked, per kind of request: the event the engine decides, or (for exemptions and social-media
authorisations, which no traffic carries) the hold the workflow settings name. Either way a Decision out."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from civicaup.channels.web.url import normalise_url
from civicaup.engine.decision import Decision, Finding
from civicaup.engine.evaluate import evaluate
from civicaup.engine.event import AccessEvent, Actor, HardwareEvent, SoftwareEvent, WebEvent
from civicaup.errors import InputError
from civicaup.governance.dates import last_day
from civicaup.governance.workflows import ApproverSpec, workflows
from civicaup.policy.compile import CompiledPack
from civicaup.policy.schema import ROLES

KINDS = ("software", "hardware", "access", "exemption", "purchase", "social")
ACCESS_KINDS = ("read-mail", "monitor-mail", "intercept-mail", "alter-mail", "read-files", "monitor-web",
                "use-login", "use-password", "copy-data", "copy-software")


@dataclass(frozen=True)
class Ask:
    kind: str
    subject: str
    decision: Decision
    detail: dict[str, Any]


def _name(value: str, what: str) -> str:
    value = " ".join(value.split())
    if not value or len(value) > 500:
        raise InputError(f"a {what} must be 1 to 500 characters")
    return value


def software(pack: CompiledPack, actor: Actor, at: datetime, name: str) -> Ask:
    name = _name(name, "program name")
    ev = SoftwareEvent(actor=actor, at=at, name=name)
    return Ask("software", name, evaluate(ev, pack), {})


def hardware(pack: CompiledPack, actor: Actor, at: datetime, name: str) -> Ask:
    name = _name(name, "device name")
    ev = HardwareEvent(actor=actor, at=at, name=name)
    return Ask("hardware", name, evaluate(ev, pack), {})


def access(pack: CompiledPack, actor: Actor, at: datetime, kind: str, subject: str, reason: str) -> Ask:
    if kind not in ACCESS_KINDS:
        raise InputError(f"unknown access kind {kind!r} (known: {', '.join(ACCESS_KINDS)})")
    subject = _name(subject, "subject").lower()
    if kind not in ("copy-data", "copy-software") and "@" not in subject:
        raise InputError(f"--subject must be the e-mail address of the person whose data it is, not {subject!r}")
    if subject == actor.email:
        raise InputError("that is your own data: no access request is needed")
    if not reason.strip():
        raise InputError("an access request needs a --reason")
    ev = AccessEvent(actor=actor, at=at, kind=kind, subject=subject, reason=reason.strip())
    return Ask("access", subject, evaluate(ev, pack), {"access": kind})


def purchase(pack: CompiledPack, actor: Actor, at: datetime, url: str) -> Ask:
    ev = WebEvent(actor=actor, at=at, url=normalise_url(url))
    return Ask("purchase", ev.url.original if ev.url else url, evaluate(ev, pack), {})


def _held(pack: CompiledPack, spec: ApproverSpec, *, rule: str, clause: str, category: str, evidence: str,
          quote: str) -> Decision:
    f = Finding(rule=rule, clause=clause, category=category, action="hold", evidence=evidence[:200],
                approvers=spec.roles, approvers_needed=spec.needed, quote=quote)
    return Decision.of([f], policy=pack.id, channel="workflow")


def _clause_quote(pack: CompiledPack, ref: str, words: tuple[str, ...]) -> str:
    for c in pack.pack.clauses:
        if c.ref == ref:
            for s in c.sentences:
                if any(w in s.text.lower() for w in words):
                    return s.text
            return c.sentences[0].text
    return ""


def exemption(pack: CompiledPack, actor: Actor, at: datetime, rule_id: str, until: datetime,
              role: str | None = None) -> Ask:
    """A time-bounded exemption from one rule, for the requester or for everyone with `role`."""
    rule = next((r for r in pack.pack.rules if r.id == rule_id), None)
    if rule is None:
        raise InputError(f"{pack.id} has no rule {rule_id!r} (see 'civicaup policy show {pack.id}')")
    if until <= at:
        raise InputError("--until must be in the future: an exemption is time-bounded")
    if role is not None and role not in ROLES:
        raise InputError(f"unknown role {role!r} (known: {', '.join(ROLES)})")
    spec = workflows(pack).exemption_approvers(rule.id)
    clause = spec.clause or rule.clause
    quote = _clause_quote(pack, spec.clause, ("exempt", "exception")) if spec.clause else rule.quote
    who = f"everyone with role {role}" if role else actor.email
    evidence = f"exemption from {rule.id} (clause {rule.clause}) for {who} through {last_day(until, pack)}"
    decision = _held(pack, spec, rule=rule.id, clause=clause, category="exemption", evidence=evidence, quote=quote)
    detail = {"rule": rule.id, "rule_clause": rule.clause, "grantee": f"role:{role}" if role else actor.email}
    return Ask("exemption", rule.id, decision, detail)


def social(pack: CompiledPack, actor: Actor, at: datetime, account: str) -> Ask:
    """Authorisation to take part in social media on behalf of the city (West Des Moines ¶7)."""
    spec = workflows(pack).social
    if spec is None:
        raise InputError(f"the policy of {pack.pack.city.name} names no authorisation for social media on behalf "
                         "of the city")
    account = _name(account, "account")
    quote = _clause_quote(pack, spec.clause, ("authorized", "authorised"))
    decision = _held(pack, spec, rule="social-authorisation", clause=spec.clause, category="social",
                     evidence=f"{actor.email} asks to take part in {account} on behalf of the city", quote=quote)
    return Ask("social", account, decision, {})
