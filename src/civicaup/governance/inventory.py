"""Inventory: osquery results per machine, compared with what the city approved.

Accepted input (JSON): an object keyed by osquery table (`programs`, `deb_packages`, `apps`, `usb_devices`),
each a list of rows as `osqueryi --json` prints them; a bare list of rows of one table (the table is told by
its columns); or osqueryd result-log lines (`{"name", "columns", "action"}` or `{"name", "snapshot"}`).

Each program or device goes through the engine as a SoftwareEvent or HardwareEvent of the machine's owner.
An item is approved by the machine's baseline (baseline.yaml), by the city's licence list (`licences`), or by a
granted approval request of the owner: its holds are then satisfied, but a block (a prohibited category) stays
a violation. Unapproved and prohibited items are violations citing the rule and clause.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import yaml
from sqlalchemy import Engine, delete, insert, select

from civicaup.engine.decision import Decision
from civicaup.engine.evaluate import evaluate
from civicaup.engine.event import Actor, HardwareEvent, SoftwareEvent
from civicaup.errors import InputError
from civicaup.governance import approvals
from civicaup.governance.errors import ForbiddenError
from civicaup.governance.people import actor_of, must_exist, person
from civicaup.policy.compile import CompiledPack
from civicaup.stores import audit
from civicaup.stores.governance_tables import inventory_items, inventory_machines, licences

TABLES = ("programs", "deb_packages", "apps", "usb_devices")
_SHAPE = (("usb_devices", {"usb_address", "model_id", "vendor_id"}), ("apps", {"bundle_identifier"}),
          ("deb_packages", {"maintainer", "arch", "priority"}), ("programs", {"identifying_number", "publisher",
                                                                             "uninstall_string"}))
USB_CLASS = {"2": "modem", "02": "modem", "8": "usb mass storage", "08": "usb mass storage", "e0": "wireless adapter",
             "6": "camera", "06": "camera", "1": "audio device", "01": "audio device", "3": "keyboard or mouse",
             "03": "keyboard or mouse", "7": "printer", "07": "printer", "a": "cellular modem", "0a": "cellular modem"}


@dataclass(frozen=True)
class Item:
    table: str
    kind: str  # software or hardware
    name: str
    version: str
    vendor: str
    row: dict[str, str]


# ---------------------------------------------------------------- reading osquery output

def _table_of(row: dict[str, Any], hint: str = "") -> str | None:
    for t in TABLES:
        if t in hint:
            return t
    keys = set(row)
    for table, marks in _SHAPE:
        if keys & marks:
            return table
    return None


def _rows(data: Any) -> Iterable[tuple[str, dict[str, Any]]]:
    if isinstance(data, dict) and any(k in TABLES for k in data):
        for table in TABLES:
            for row in data.get(table) or []:
                if isinstance(row, dict):
                    yield table, row
        return
    lines = data if isinstance(data, list) else [data]
    for entry in lines:
        if not isinstance(entry, dict):
            continue
        hint = str(entry.get("name", "")) if ("columns" in entry or "snapshot" in entry) else ""
        if "snapshot" in entry:
            for row in entry.get("snapshot") or []:
                if isinstance(row, dict) and (t := _table_of(row, hint)):
                    yield t, row
        elif "columns" in entry:
            if entry.get("action", "added") == "added" and isinstance(entry["columns"], dict):
                if t := _table_of(entry["columns"], hint):
                    yield t, entry["columns"]
        elif t := _table_of(entry):
            yield t, entry


def parse(text: str, source: str = "input") -> list[Item]:
    """Items from osquery JSON (see the module docstring); InputError when it is not osquery output."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise InputError(f"{source}: not JSON or JSON lines ({exc.msg} at line {exc.lineno})") from None
    items: dict[tuple[str, str, str], Item] = {}
    for table, row in _rows(data):
        row = {str(k): "" if v is None else str(v) for k, v in row.items()}
        item = _item(table, row)
        if item is not None:
            items.setdefault((item.kind, item.name.casefold(), item.version), item)
    if not items:
        raise InputError(f"{source}: no rows of osquery's {', '.join(TABLES)} tables")
    return list(items.values())


def _item(table: str, row: dict[str, str]) -> Item | None:
    if table == "usb_devices":
        vendor, model = row.get("vendor", "").strip(), row.get("model", "").strip()
        what = USB_CLASS.get(row.get("class", "").strip().lower(), "")
        name = " ".join(x for x in (vendor, model) if x) or row.get("model_id", "") or "USB device"
        if what:
            name = f"{name} ({what})"
        return Item(table, "hardware", name[:500], row.get("version", ""), vendor, row)
    name = (row.get("bundle_name") or row.get("name", "")).strip() if table == "apps" else row.get("name", "").strip()
    if not name:
        return None
    version = row.get("bundle_short_version") or row.get("version", "")
    vendor = row.get("publisher") or row.get("maintainer") or row.get("bundle_identifier", "")
    return Item(table, "software", name[:500], version[:200], vendor[:300], row)


# ---------------------------------------------------------------- what is approved

@lru_cache(maxsize=1)
def _baseline() -> dict[str, Any]:
    from civicaup.config import home
    data = yaml.safe_load((Path(__file__).parent / "baseline.yaml").read_text(encoding="utf-8")) or {}
    local = home() / "catalogue" / "baseline.yaml"
    if local.is_file():
        for kind, tables in (yaml.safe_load(local.read_text(encoding="utf-8")) or {}).items():
            data.setdefault(kind, {}).update(tables or {})
    return data


def baseline(item: Item) -> str:
    """Why the item comes with the machine ("" when it does not)."""
    b = (_baseline().get(item.kind) or {}).get(item.table) or {}
    r = item.row
    if item.table == "deb_packages":
        if r.get("priority") in b.get("priority", []):
            return f"baseline: operating system (priority {r['priority']})"
        if r.get("section", "").rpartition("/")[2] in b.get("section", []):
            return f"baseline: operating system (section {r['section']})"
    elif item.table == "programs":
        if any(item.name.startswith(p) for p in b.get("name_prefix", [])):
            return "baseline: Windows runtime"
    elif item.table == "apps":
        if any(r.get("bundle_identifier", "").startswith(p) for p in b.get("bundle_prefix", [])):
            return "baseline: macOS"
    elif item.table == "usb_devices":
        if r.get("class", "").strip().lower() in b.get("class", []) or item.vendor in b.get("vendor", []):
            return "baseline: USB hub"
        if b.get("internal") and r.get("removable", "").strip() == "0":
            return "baseline: built-in device"
    return ""


def words_in(entry: str, name: str) -> bool:
    """Every word of `entry` occurs in `name`, in order, as whole words (case-insensitive)."""
    words = r"[\s_.-]*".join(re.escape(w) for w in re.split(r"[\s_.-]+", entry.casefold()) if w)
    return bool(words) and re.search(rf"(?<![a-z0-9]){words}(?![a-z0-9])", name.casefold()) is not None


@dataclass(frozen=True)
class Licence:
    id: int
    kind: str
    name: str
    home_use: bool | None
    seats: int | None
    note: str
    added_by: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "name": self.name, "home_use": self.home_use, "seats": self.seats,
                "note": self.note, "added_by": self.added_by}


def licence_list(engine: Engine, policy: str) -> list[Licence]:
    with engine.connect() as conn:
        rows = conn.execute(select(licences).where(licences.c.policy == policy).order_by(licences.c.kind,
                                                                                          licences.c.name))
        return [Licence(r.id, r.kind, r.name, r.home_use, r.seats, r.note, r.added_by) for r in rows]


def allow(engine: Engine, pack: CompiledPack, name: str, as_email: str, *, kind: str = "software",
          home_use: bool | None = None, seats: int | None = None, note: str = "") -> Licence:
    """Add (or update) an entry of the city's approved list with its licence terms; IT and the city
    administrator keep the list."""
    if kind not in ("software", "hardware"):
        raise InputError("--kind must be software or hardware")
    name = " ".join(name.split())
    if not name or len(name) > 300:
        raise InputError("a name must be 1 to 300 characters")
    who = person(engine, pack.id, as_email)
    if not {"it", "city-administrator"} & set(who.roles):
        raise ForbiddenError(f"{who.email} may not change the approved list (it or city-administrator)")
    t = datetime.now(timezone.utc)
    with engine.begin() as conn:
        conn.execute(delete(licences).where(licences.c.policy == pack.id, licences.c.kind == kind,
                                            licences.c.name == name))
        conn.execute(insert(licences).values(policy=pack.id, kind=kind, name=name, home_use=home_use, seats=seats,
                                             note=note[:2000], added_by=who.email, added_at=t))
    audit.append(engine, actor=who.email, action="licence-add", subject=f"{kind} {name}", policy=pack.id,
                 detail={"home_use": home_use, "seats": seats, "note": note[:500]})
    return next(x for x in licence_list(engine, pack.id) if x.kind == kind and x.name == name)


def home_use(engine: Engine, policy: str, name: str) -> bool | None:
    """Whether the licence of this program permits home use (None when no licence record says)."""
    for lic in licence_list(engine, policy):
        if lic.kind == "software" and words_in(lic.name, name) and lic.home_use is not None:
            return lic.home_use
    return None


# ---------------------------------------------------------------- import and compare

@dataclass(frozen=True)
class Checked:
    item: Item
    status: str  # ok, approved, baseline, violation, review
    approved_by: str
    decision: Decision

    @property
    def finding(self) -> Any:
        return self.decision.findings[0] if self.decision.findings and self.decision.action != "allow" else None


def check_item(engine: Engine, pack: CompiledPack, item: Item, actor: Actor, at: datetime,
               lics: list[Licence], granted: list[approvals.Request]) -> Checked:
    ev_cls = SoftwareEvent if item.kind == "software" else HardwareEvent
    first = evaluate(ev_cls(actor=actor, at=at, name=item.name), pack)
    why = baseline(item)
    if not why:
        lic = next((x for x in lics if x.kind == item.kind and words_in(x.name, item.name)), None)
        why = f"licence list: {lic.name}" if lic else ""
    if not why:
        req = next((r for r in granted if r.kind == item.kind and words_in(r.subject, item.name)), None)
        why = f"request {req.id} granted" if req else ""
    decision = first
    if why:
        roles = frozenset(r for f in first.findings if f.action == "hold" for r in f.approvers)
        decision = evaluate(ev_cls(actor=actor, at=at, name=item.name, approved_roles=roles), pack)
    if decision.action in ("block", "hold"):
        status = "violation"
    elif decision.action == "flag":
        status = "review"
    else:
        status = "baseline" if why.startswith("baseline") else "approved" if why else "ok"
    return Checked(item, status, why, decision)


@dataclass(frozen=True)
class ImportReport:
    machine: str
    items: int
    violations: int
    review: int

    def to_json(self) -> dict[str, Any]:
        return {"machine": self.machine, "items": self.items, "violations": self.violations, "review": self.review}


def import_file(engine: Engine, pack: CompiledPack, path: Path, machine: str, *, owner: str = "") -> ImportReport:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return import_items(engine, pack, parse(text, str(path)), machine, owner=owner, source=str(path))


def import_items(engine: Engine, pack: CompiledPack, items: list[Item], machine: str, *, owner: str = "",
                 source: str = "") -> ImportReport:
    """Replace the machine's items with these, each checked against the pack and the approvals."""
    machine = machine.strip()
    if not machine or len(machine) > 255:
        raise InputError("--machine must be 1 to 255 characters")
    who = must_exist(engine, pack.id, owner) if owner else None
    actor = actor_of(who) if who else Actor()
    at = datetime.now(timezone.utc)
    lics = licence_list(engine, pack.id)
    granted = [r for r in approvals.requests(engine, pack.id, status="approved", requester=who.email)
               if r.current(at)] if who else []
    checked = [check_item(engine, pack, it, actor, at, lics, granted) for it in items]
    with engine.begin() as conn:
        old = conn.execute(select(inventory_machines.c.id).where(inventory_machines.c.policy == pack.id,
                                                                 inventory_machines.c.machine == machine)).first()
        if old is not None:
            conn.execute(delete(inventory_items).where(inventory_items.c.machine_id == old.id))
            conn.execute(delete(inventory_machines).where(inventory_machines.c.id == old.id))
        mid = int(conn.execute(insert(inventory_machines).values(
            policy=pack.id, machine=machine, owner=who.email if who else "", department=who.department if who else "",
            source=source[:1000], imported_at=at)).inserted_primary_key[0])
        for c in checked:
            f = c.finding
            conn.execute(insert(inventory_items).values(
                machine_id=mid, policy=pack.id, kind=c.item.kind, source_table=c.item.table, name=c.item.name,
                version=c.item.version, vendor=c.item.vendor, status=c.status, approved_by=c.approved_by[:300],
                action=c.decision.action, rule=f.rule if f else "", clause=f.clause if f else "",
                decision=c.decision.to_json()))
    bad = [c for c in checked if c.status == "violation"]
    report = ImportReport(machine, len(checked), len(bad), sum(c.status == "review" for c in checked))
    audit.append(engine, actor="inventory", action="inventory-import", subject=f"machine {machine}", policy=pack.id,
                 detail={**report.to_json(), "owner": who.email if who else "",
                         "violations": [f"{c.item.name}: {c.finding.rule} (clause {c.finding.clause})"
                                        for c in bad][:200]})
    return report


def violations(engine: Engine, policy: str, *, department: str | None = None) -> list[dict[str, Any]]:
    """Unapproved and prohibited items (and those flagged for review), with machine, owner, rule and clause."""
    q = (select(inventory_items, inventory_machines.c.machine, inventory_machines.c.owner,
                inventory_machines.c.department, inventory_machines.c.imported_at)
         .join(inventory_machines, inventory_items.c.machine_id == inventory_machines.c.id)
         .where(inventory_items.c.policy == policy, inventory_items.c.status.in_(("violation", "review")))
         .order_by(inventory_machines.c.machine, inventory_items.c.name))
    if department is not None:
        q = q.where(inventory_machines.c.department == department)
    out = []
    with engine.connect() as conn:
        for r in conn.execute(q):
            first = (r.decision.get("findings") or [{}])[0]
            out.append({"machine": r.machine, "owner": r.owner, "department": r.department, "kind": r.kind,
                        "table": r.source_table, "name": r.name, "version": r.version, "vendor": r.vendor,
                        "status": r.status, "action": r.action,
                        "problem": {"block": "prohibited", "hold": "unapproved", "flag": "review"}.get(r.action, ""),
                        "rule": r.rule, "clause": r.clause, "quote": first.get("quote", ""),
                        "approvers": first.get("approvers", []), "approved_by": r.approved_by,
                        "imported_at": approvals.utc(r.imported_at).isoformat()})  # type: ignore[union-attr]
    return out
