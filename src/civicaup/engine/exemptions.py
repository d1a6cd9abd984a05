"""The one place where a finding is downgraded: exemptions, personal grants and approvals given."""
from __future__ import annotations

from civicaup.engine.decision import Finding
from civicaup.engine.event import Event, Signal
from civicaup.policy.compile import CompiledPack
from civicaup.policy.schema import Rule


def apply_exemptions(finding: Finding, rule: Rule, event: Event, signals: list[Signal],
                     pack: CompiledPack) -> Finding:
    """Downgrade to `log` (never remove) when an exemption of the rule, a grant or the approvals apply."""
    contexts = {s.category for s in signals}
    for ex_id in rule.exemptions:
        ex = pack.exemptions[ex_id]
        if set(ex.roles) & event.actor.roles or set(ex.context) & contexts:
            return finding.downgraded(ex_id)
    if rule.id in event.granted_exemptions:
        return finding.downgraded(f"grant:{rule.id}")
    if finding.action == "hold" and rule.approvers and _approved(rule, event.approved_roles):
        return finding.downgraded("approved:" + "+".join(sorted(set(rule.approvers.roles) & event.approved_roles)))
    return finding


def _approved(rule: Rule, given: frozenset[str]) -> bool:
    assert rule.approvers is not None
    if rule.approvers.mode == "all":
        return set(rule.approvers.all_of) <= given
    return bool(set(rule.approvers.any_of) & given)
