"""Workflow settings per city (workflows.yaml): exemption approvers, report routing, training, time limits.

Shipped defaults, then the pack's section, then $CIVICAUP_HOME/workflows/<pack id>.yaml: later keys replace
earlier ones. A clause named here must be one of the pack's clauses.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from civicaup.config import home
from civicaup.errors import PackError
from civicaup.policy.compile import CompiledPack
from civicaup.policy.schema import ROLES

_SHIPPED = Path(__file__).parent / "workflows.yaml"


@dataclass(frozen=True)
class ApproverSpec:
    """Who must approve: `roles`, any one of them (`needed` "any") or every one ("all"), under `clause`."""
    roles: tuple[str, ...]
    needed: str
    clause: str
    note: str = ""


@dataclass(frozen=True)
class Course:
    id: str
    title: str
    clause: str


@dataclass(frozen=True)
class Routing:
    to: tuple[str, ...]
    inform: tuple[str, ...]
    clause: str
    note: str = ""


@dataclass(frozen=True)
class Workflows:
    policy: str
    remind_after_days: int
    expire_after_days: int
    access_valid_days: int
    exemptions: tuple[tuple[tuple[str, ...], ApproverSpec], ...]  # (rules it is limited to, approvers)
    social: ApproverSpec | None
    reports: Routing
    training: tuple[Course, ...]

    def exemption_approvers(self, rule: str) -> ApproverSpec:
        for rules, spec in self.exemptions:
            if not rules or rule in rules:
                return spec
        raise PackError(f"{self.policy}: no exemption approvers configured for rule {rule}")

    def course(self, course_id: str) -> Course | None:
        return next((c for c in self.training if c.id == course_id), None)


def _spec(raw: dict[str, Any], where: str, refs: set[str]) -> ApproverSpec:
    appr = raw.get("approvers") or {}
    roles = appr.get("all_of") or appr.get("any_of") or []
    bad = [r for r in roles if r not in ROLES]
    if not roles or bad or bool(appr.get("all_of")) == bool(appr.get("any_of")):
        raise PackError(f"{where}: approvers need exactly one of any_of / all_of with known roles", file=str(_SHIPPED))
    clause = str(raw.get("clause") or "")
    if clause and clause not in refs:
        raise PackError(f"{where}: clause {clause!r} is not a clause of the pack", file=str(_SHIPPED))
    return ApproverSpec(tuple(roles), "all" if appr.get("all_of") else "any", clause, str(raw.get("note") or ""))


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PackError(f"cannot read workflow settings: {exc}", file=str(path)) from None
    if not isinstance(data, dict):
        raise PackError("workflow settings must be a mapping", file=str(path))
    return data


@lru_cache(maxsize=32)
def _load(policy: str, refs: frozenset[str], local_mtime: float) -> Workflows:
    shipped = _read(_SHIPPED)
    merged: dict[str, Any] = dict(shipped.get("defaults") or {})
    merged.update((shipped.get("packs") or {}).get(policy) or {})
    local = home() / "workflows" / f"{policy}.yaml"
    if local_mtime:
        merged.update(_read(local))
    where = f"workflows for {policy}"
    ex = tuple((tuple(e.get("rules") or ()), _spec(e, f"{where}: exemptions", set(refs)))
               for e in merged.get("exemptions") or [])
    social = _spec(merged["social"], f"{where}: social", set(refs)) if merged.get("social") else None
    rep = merged.get("reports") or {}
    for role in list(rep.get("to") or []) + list(rep.get("inform") or []):
        if role not in ROLES:
            raise PackError(f"{where}: reports: unknown role {role!r}", file=str(_SHIPPED))
    clause = str(rep.get("clause") or "")
    if clause and clause not in refs:
        raise PackError(f"{where}: reports: clause {clause!r} is not a clause of the pack", file=str(_SHIPPED))
    routing = Routing(tuple(rep.get("to") or ("supervisor",)), tuple(rep.get("inform") or ()), clause,
                      str(rep.get("note") or ""))
    courses = []
    for c in merged.get("training") or []:
        if c.get("clause") and c["clause"] not in refs:
            raise PackError(f"{where}: training {c.get('id')}: clause {c['clause']!r} is not a clause of the pack",
                            file=str(_SHIPPED))
        courses.append(Course(str(c["id"]), str(c.get("title") or c["id"]), str(c.get("clause") or "")))
    return Workflows(policy, int(merged.get("remind_after_days", 3)), int(merged.get("expire_after_days", 30)),
                     int(merged.get("access_valid_days", 7)), ex, social, routing, tuple(courses))


def workflows(pack: CompiledPack) -> Workflows:
    """The workflow settings for a pack."""
    local = home() / "workflows" / f"{pack.id}.yaml"
    mtime = local.stat().st_mtime if local.is_file() else 0.0
    return _load(pack.id, frozenset(c.ref for c in pack.pack.clauses), mtime)
