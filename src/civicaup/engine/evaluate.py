"""event in, Decision out: the only place that decides."""
from __future__ import annotations

from time import perf_counter

from civicaup.engine.checks import signals_for
from civicaup.engine.decision import Decision, Finding
from civicaup.engine.event import Event, Signal
from civicaup.engine.exemptions import apply_exemptions
from civicaup.engine.windows import in_window
from civicaup.operations import metrics
from civicaup.policy.compile import CompiledPack
from civicaup.policy.schema import Rule


def evaluate(event: Event, pack: CompiledPack, *, count: bool = True, observe: bool = True) -> Decision:
    """Run every rule of the pack for the event's channel; most severe finding wins. Every adapter decides
    through here, so here the decision is counted and timed for /metrics (``count=False``: the caller counts
    its answers itself, as the Squid helper does with its cached ones; the time is still observed;
    ``observe=False``: neither, for a filter's warm-up decision, which is no decision on real traffic)."""
    start = perf_counter()
    decision = _decide(event, pack)
    if observe:
        metrics.decided(decision, perf_counter() - start, count=count)
    return decision


def _decide(event: Event, pack: CompiledPack) -> Decision:
    signals = signals_for(event, pack)
    findings: list[Finding] = []
    for rule in pack.rules_for(event.channel):
        for finding in match_rule(rule, event, signals, pack):
            findings.append(apply_exemptions(finding, rule, event, signals, pack))
    return Decision.of(findings, policy=pack.id, channel=event.channel)


def match_rule(rule: Rule, event: Event, signals: list[Signal], pack: CompiledPack) -> list[Finding]:
    """The findings one rule makes of an event: one per category it matched."""
    w = rule.when
    roles = event.actor.roles
    if w.actor_roles and not set(w.actor_roles) & roles:
        return []
    if w.actor_not_roles and set(w.actor_not_roles) & roles:
        return []
    if w.kinds and getattr(event, "kind", None) not in w.kinds:
        return []
    if not in_window(w.during, event.at, pack.pack.city.hours, pack.tz):
        return []
    if not w.categories:
        return [_finding(rule, event.channel, event.describe(), ())]
    out: dict[str, Finding] = {}
    for s in signals:
        if s.category not in w.categories or s.category in out:
            continue
        if w.tags and not set(w.tags) & s.tags:
            continue
        if w.protected and not {f"protected:{p}" for p in w.protected} & s.tags:
            continue
        out[s.category] = _finding(rule, s.category, s.evidence, tuple(sorted(s.tags)))
    return list(out.values())


def _finding(rule: Rule, category: str, evidence: str, tags: tuple[str, ...]) -> Finding:
    return Finding(
        rule=rule.id, clause=rule.clause, category=category, action=rule.action, evidence=evidence[:200],
        approvers=tuple(rule.approvers.roles) if rule.approvers else (),
        approvers_needed=rule.approvers.mode if rule.approvers else "any",
        quote=rule.quote, tags=tags,
    )
