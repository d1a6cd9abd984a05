"""Counts of decisions the store holds, for coverage and charts: held and flagged mail, approval requests and
inventory items, each with its findings, department and day. (Allowed traffic is not stored, so not counted.)"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

from sqlalchemy import Engine, select

from civicaup.policy.compile import CompiledPack
from civicaup.stores.governance_tables import approval_requests, inventory_items, inventory_machines
from civicaup.stores.tables import mail_quarantine


@dataclass(frozen=True)
class Row:
    day: str  # local ISO date
    department: str
    channel: str
    rule: str
    clause: str
    category: str
    action: str


def _day(at: datetime, pack: CompiledPack) -> str:
    aware = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    return aware.astimezone(pack.tz).date().isoformat()


def _findings(decision: Any) -> list[dict[str, Any]]:
    d = json.loads(decision) if isinstance(decision, str) else decision or {}
    return [f for f in d.get("findings", []) if isinstance(f, dict)]


def rows(engine: Engine, pack: CompiledPack, *, department: str | None = None) -> Iterator[Row]:
    """One row per stored finding of this city (optionally of one department)."""
    with engine.connect() as conn:
        q = select(mail_quarantine.c.created_at, mail_quarantine.c.sender_department, mail_quarantine.c.decision
                   ).where(mail_quarantine.c.policy == pack.id)
        sources: list[tuple[str, Any]] = [("mail", conn.execute(q).all())]
        q2 = select(approval_requests.c.created_at, approval_requests.c.department, approval_requests.c.decision,
                    approval_requests.c.kind).where(approval_requests.c.policy == pack.id)
        sources.append(("request", conn.execute(q2).all()))
        q3 = (select(inventory_machines.c.imported_at, inventory_machines.c.department, inventory_items.c.decision)
              .join(inventory_machines, inventory_items.c.machine_id == inventory_machines.c.id)
              .where(inventory_items.c.policy == pack.id, inventory_items.c.action != "allow"))
        sources.append(("inventory", conn.execute(q3).all()))
    for source, result in sources:
        for r in result:
            dept = r[1] or ""
            if department is not None and dept != department:
                continue
            channel = r[3] if source == "request" else "mail" if source == "mail" else "inventory"
            for f in _findings(r[2]):
                yield Row(_day(r[0], pack), dept, channel, f.get("rule", ""), f.get("clause", ""),
                          f.get("category", ""), f.get("action", ""))


def rule_counts(engine: Engine, pack: CompiledPack) -> Counter[str]:
    return Counter(r.rule for r in rows(engine, pack))


def coverage_with_counts(engine: Engine, pack: CompiledPack) -> list[dict[str, Any]]:
    """Each clause of the pack: its sentences with status, the rules citing it and each rule's live count."""
    from civicaup.policy.coverage import coverage
    counts = rule_counts(engine, pack)
    rules = {r.id: r for r in pack.pack.rules}
    out = []
    for c in coverage(pack).to_json()["clauses"]:
        ids = sorted({r for s in c["sentences"] for r in s["rules"]} |
                     {r.id for r in pack.pack.rules if r.clause == c["clause"]})
        out.append({"clause": c["clause"], "sentences": c["sentences"],
                    "rules": [{"id": i, "action": rules[i].action, "channels": list(rules[i].channels),
                               "count": counts.get(i, 0)} for i in ids if i in rules],
                    "count": sum(counts.get(i, 0) for i in ids)})
    return out


def by_day(engine: Engine, pack: CompiledPack, *, key: str = "category", department: str | None = None
           ) -> dict[str, Any]:
    """Counts per day and per `key` (category or department) of findings that were not allowed outright."""
    table: dict[str, Counter[str]] = {}
    for r in rows(engine, pack, department=department):
        if r.action == "allow":
            continue
        table.setdefault(r.day, Counter())[getattr(r, key) or "(none)"] += 1
    days = sorted(table)
    series = sorted({k for c in table.values() for k in c})
    return {"days": days, "series": series, "counts": {d: dict(table[d]) for d in days}}
