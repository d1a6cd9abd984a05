"""People: imported from the HR export (CSV), titles mapped to roles by the city's pack."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from civicaup.errors import InputError
from civicaup.policy.compile import CompiledPack
from civicaup.policy.schema import ROLES
from civicaup.stores.tables import people

REQUIRED = ("email", "name", "department", "title")


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    department: str
    title: str
    roles: tuple[str, ...]
    active: bool = True


@dataclass(frozen=True)
class ImportReport:
    imported: int
    deactivated: int


def parse_csv(text: str, pack: CompiledPack, source: str = "CSV") -> list[Person]:
    """Rows email,name,department,title[,roles]; roles are extra vocabulary words separated by ';'."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(f"{source}: missing column(s) {', '.join(missing)} (need email,name,department,title[,roles])")
    reader.fieldnames = header
    return people_from_rows(((f"{source}:{n}", row) for n, row in enumerate(reader, 2)), pack)


def people_from_rows(rows: Iterable[tuple[str, Mapping[str, Any]]], pack: CompiledPack) -> list[Person]:
    """(where, {email,name,department,title[,roles]}) pairs -> people, titles mapped to roles by the pack.

    The one mapping for every source (CSV rows, LDAP entries); `where` prefixes error messages."""
    out: dict[str, Person] = {}
    for where, row in rows:
        email = (row.get("email") or "").strip().lower()
        if "@" not in email or " " in email:
            raise InputError(f"{where}: {email!r} is not an e-mail address")
        extra = [r.strip().lower() for r in (row.get("roles") or "").split(";") if r.strip()]
        bad = [r for r in extra if r not in ROLES]
        if bad:
            raise InputError(f"{where}: unknown role {bad[0]!r}")
        title = (row.get("title") or "").strip()
        roles = sorted(pack.roles_for_title(title) | set(extra))
        out[email] = Person(email, (row.get("name") or "").strip(), (row.get("department") or "").strip(), title,
                            tuple(roles))
    return list(out.values())


def import_people(engine: Engine, pack: CompiledPack, path: Path, *, leavers: bool = False) -> ImportReport:
    """Upsert everyone in the file; with `leavers`, anyone of this policy not in the file loses access at once."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return upsert_people(engine, pack, parse_csv(text, pack, str(path)), leavers=leavers)


def upsert_people(engine: Engine, pack: CompiledPack, persons: list[Person], *, leavers: bool = False) -> ImportReport:
    """Upsert these people (active); with `leavers`, anyone of this policy not among them loses access at once."""
    now = datetime.now(timezone.utc)
    dialect = {"sqlite": sqlite, "postgresql": postgresql}.get(engine.dialect.name)
    with engine.begin() as conn:
        for p in persons:
            values = dict(policy=pack.id, email=p.email, name=p.name, department=p.department, title=p.title,
                          roles=list(p.roles), active=True, updated_at=now)
            if dialect is None:
                raise InputError(f"unsupported database {engine.dialect.name}")
            stmt = dialect.insert(people).values(**values)
            conn.execute(stmt.on_conflict_do_update(index_elements=["policy", "email"],
                                                    set_={k: v for k, v in values.items() if k not in ("policy", "email")}))
        gone = 0
        if leavers:
            res = conn.execute(update(people).where(people.c.policy == pack.id, people.c.active.is_(True),
                                                    people.c.email.not_in([p.email for p in persons]))
                               .values(active=False, updated_at=now))
            gone = res.rowcount or 0
    return ImportReport(imported=len(persons), deactivated=gone)


def list_people(engine: Engine, policy: str, *, role: str | None = None, active_only: bool = True) -> list[Person]:
    q = select(people).where(people.c.policy == policy).order_by(people.c.department, people.c.email)
    if active_only:
        q = q.where(people.c.active.is_(True))
    with engine.connect() as conn:
        rows = [Person(r.email, r.name, r.department, r.title, tuple(r.roles), r.active) for r in conn.execute(q)]
    return [p for p in rows if role is None or role in p.roles]


def find_person(engine: Engine, policy: str, email: str) -> Person | None:
    with engine.connect() as conn:
        r = conn.execute(select(people).where(people.c.policy == policy, people.c.email == email.lower())).first()
    return Person(r.email, r.name, r.department, r.title, tuple(r.roles), r.active) if r else None
