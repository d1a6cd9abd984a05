"""Findings and the Decision: the action is the most severe of the findings' actions."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

SEVERITY: dict[str, int] = {"allow": 0, "log": 1, "flag": 2, "hold": 3, "block": 4}


@dataclass(frozen=True)
class Finding:
    rule: str
    clause: str
    category: str
    action: str
    evidence: str
    approvers: tuple[str, ...] = ()
    approvers_needed: str = "any"  # "all": every role in approvers must approve
    exempted_by: str | None = None
    quote: str = ""
    tags: tuple[str, ...] = ()

    def downgraded(self, by: str) -> "Finding":
        """The same finding, kept visible, its action lowered to `log` (exemptions and approvals)."""
        return replace(self, action="log", exempted_by=by) if SEVERITY[self.action] > SEVERITY["log"] else self

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "clause": self.clause, "category": self.category, "action": self.action,
            "approvers": list(self.approvers), "approvers_needed": self.approvers_needed,
            "evidence": self.evidence, "exempted_by": self.exempted_by, "quote": self.quote,
        }


@dataclass(frozen=True)
class Decision:
    action: str
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    policy: str = ""
    channel: str = ""

    @classmethod
    def of(cls, findings: list[Finding], *, policy: str, channel: str) -> "Decision":
        """Most severe wins; findings are listed most severe first."""
        ordered = sorted(findings, key=lambda f: -SEVERITY[f.action])
        action = ordered[0].action if ordered else "allow"
        return cls(action=action, findings=tuple(ordered), policy=policy, channel=channel)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "findings": [f.to_json() for f in self.findings],
                "policy": self.policy, "channel": self.channel}
