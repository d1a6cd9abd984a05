"""Scenario files: `tests/scenarios/<pack>/scenarios.yaml`, data a city's IT staff can read.

Each scenario names a channel, an input (a file beside the YAML, or an inline value), who acts and when,
and what must happen: the action, findings that must be there (rule, clause, action, approvers) and
rules that must not fire (near misses: no finding of the rule, or only one downgraded to log by an
exemption or by the approvals given in `approved: [roles]`).
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from civicaup.channels import events
from civicaup.engine.decision import Decision
from civicaup.engine.evaluate import evaluate
from civicaup.policy.registry import get_pack

ROOT = Path(__file__).parent


@dataclass(frozen=True)
class Scenario:
    pack: str
    name: str
    spec: dict[str, Any]
    folder: Path

    @property
    def id(self) -> str:
        return f"{self.pack}: {self.name}"


def load_all() -> list[Scenario]:
    out = []
    for f in sorted(ROOT.glob("*/scenarios.yaml")):
        for spec in yaml.safe_load(f.read_text(encoding="utf-8")) or []:
            out.append(Scenario(pack=f.parent.name, name=spec["name"], spec=spec, folder=f.parent))
    return out


def run(s: Scenario) -> Decision:
    """Build the event the way the CLI does and evaluate it."""
    with tempfile.TemporaryDirectory(prefix="civicaup-scenario-") as scratch:  # a padded copy, removed after
        return _run(s, Path(scratch))


def _run(s: Scenario, scratch: Path) -> Decision:
    pack = get_pack(s.pack)
    sp = s.spec
    ch, roles, at = sp["channel"], sp.get("roles"), sp.get("at")
    if ch == "mail":
        path = s.folder / sp["input"]
        if "pad_attachment_mb" in sp.get("fixture", {}):
            path = padded(path, sp["fixture"]["pad_attachment_mb"], scratch)
        ev = events.mail_event(str(path), pack, sender=sp.get("sender"), roles=roles, at=at)
    elif ch == "url":
        ev = events.web_event(sp["input"], pack, roles=roles, at=at)
    elif ch == "software":
        ev = events.software_event(sp["input"], pack, roles=roles, at=at)
    elif ch == "hardware":
        ev = events.hardware_event(sp["input"], pack, roles=roles, at=at)
    elif ch == "post":
        text = sp["text"] if "text" in sp else (s.folder / sp["input"]).read_text(encoding="utf-8")
        ev = events.post_event(text, pack, kind=sp.get("kind", "comment"), at=at)
    elif ch == "access":
        ev = events.access_event(sp["kind"], sp.get("subject", "someone@example.org"), pack,
                                 requester=sp.get("requester", ""), roles=roles, approved=sp.get("approved", []),
                                 at=at)
    else:
        raise ValueError(f"{s.id}: unknown channel {ch}")
    if sp.get("approved") and ch != "access":
        ev = replace(ev, approved_roles=frozenset(sp["approved"]))
    return evaluate(ev, pack)


def padded(path: Path, megabytes: float, folder: Path) -> Path:
    """A copy of the message in `folder` whose first attachment is `megabytes` long (kept out of the repo)."""
    import base64
    import email
    from email.policy import compat32

    msg = email.message_from_bytes(path.read_bytes(), policy=compat32)
    part = next(p for p in msg.walk() if p.get_filename())
    part.set_payload(base64.encodebytes(b"\0" * int(megabytes * 1_000_000)).decode("ascii"))
    out = folder / path.name
    out.write_bytes(msg.as_bytes())
    return out


def check(s: Scenario, d: Decision) -> list[str]:
    """What is wrong with a decision for this scenario ([] when it is right)."""
    exp = s.spec.get("expect", {})
    errors = []
    if "action" in exp and d.action != exp["action"]:
        errors.append(f"action {d.action}, expected {exp['action']}")
    got = [f.to_json() for f in d.findings]
    for want in exp.get("findings", []):
        if not any(all(_same(g.get(k), v) for k, v in want.items()) for g in got):
            errors.append(f"no finding like {want}")
    for rule in exp.get("absent", []):
        if any(g["rule"] == rule and not g["exempted_by"] for g in got):
            errors.append(f"rule {rule} fired but must not")
    if errors:
        errors.append("findings: " + "; ".join(f"{g['rule']}/{g['clause']}/{g['action']}/{g['category']}"
                                                f" {g['evidence'][:60]!r}" for g in got))
    return errors


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, list):
        return sorted(got or []) == sorted(want)
    return got == want
