"""Official accounts of the city's departments, and the tasks they raise.

An account: platform and handle, the department, the Department Director responsible, the moderator(s)
the Director appointed, the City e-mail address it is tied to and when its credentials last changed. The
password itself is never stored. Changing the moderators raises a credential-rotation task (WDM Social
Media Account Security ¶4: "If the moderator changes, the login and password should also change."),
closed by the Director or a moderator once the login and password have been changed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import Connection, Engine, insert, select, update

from civicaup.errors import InputError
from civicaup.policy.compile import CompiledPack
from civicaup.social.common import clause_for, email, from_db, iso, now, utc
from civicaup.stores import audit
from civicaup.stores.directory import list_people
from civicaup.stores.social_tables import social_accounts, social_tasks

ALIASES = {"twitter": "x", "fb": "facebook", "ig": "instagram"}
_PLATFORM = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_HANDLE = re.compile(r"^[^\s:]{1,160}$")
ROTATE = "rotate-credentials"


@dataclass(frozen=True)
class Account:
    key: str
    platform: str
    handle: str
    department: str
    director: str
    email: str
    moderators: tuple[str, ...]
    credentials_changed_at: datetime | None
    active: bool
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"account": self.key, "platform": self.platform, "handle": self.handle,
                "department": self.department, "director": self.director, "email": self.email,
                "moderators": list(self.moderators), "credentials_changed_at": iso(self.credentials_changed_at),
                "active": self.active}


@dataclass(frozen=True)
class Task:
    id: int
    policy: str
    account: str
    kind: str
    reason: str
    clause: str
    status: str
    created_at: datetime
    closed_at: datetime | None = None
    closed_by: str | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "account": self.account, "kind": self.kind, "reason": self.reason,
                "clause": self.clause, "status": self.status, "created_at": iso(self.created_at),
                "closed_at": iso(self.closed_at), "closed_by": self.closed_by, "note": self.note}


@dataclass(frozen=True)
class Saved:
    account: Account
    created: bool
    task: Task | None
    notes: tuple[str, ...]  # things the city may want to fix (not errors)


def platform_name(value: str) -> str:
    p = (value or "").strip().lower()
    p = ALIASES.get(p, p)
    if not _PLATFORM.match(p):
        raise InputError(f"--platform: {value!r} is not a platform name (facebook, x, instagram, ...)")
    return p


def handle_name(value: str) -> str:
    h = (value or "").strip().lstrip("@")
    if not _HANDLE.match(h):
        raise InputError(f"--handle: {value!r} is not an account handle (no spaces or ':')")
    return h


def account_key(platform: str, handle: str) -> str:
    """What ingest lines name: "platform:handle", lower case, without '@'."""
    return f"{platform_name(platform)}:{handle_name(handle).lower()}"


def _account(r: Any) -> Account:
    return Account(r.key, r.platform, r.handle, r.department, r.director, r.email, tuple(r.moderators),
                   from_db(r.credentials_changed_at), bool(r.active), from_db(r.created_at),  # type: ignore[arg-type]
                   from_db(r.updated_at))  # type: ignore[arg-type]


def _task(r: Any) -> Task:
    return Task(r.id, r.policy, r.account, r.kind, r.reason, r.clause, r.status,
                from_db(r.created_at), from_db(r.closed_at), r.closed_by, r.note)  # type: ignore[arg-type]


def save_account(engine: Engine, pack: CompiledPack, *, platform: str, handle: str, department: str | None = None,
                 director: str | None = None, city_email: str | None = None,
                 moderators: Iterable[str] | None = None, credentials_changed: datetime | None = None,
                 actor: str = "cli") -> Saved:
    """Add an account, or update the fields given for an existing one. A change of moderators raises a
    credential-rotation task; the Director or a moderator closes it once the password has changed."""
    key = account_key(platform, handle)
    mods = tuple(sorted({email(m, "--moderator") for m in moderators})) if moderators is not None else None
    director_ = email(director, "--director") if director is not None else None
    city_email_ = email(city_email, "--email") if city_email is not None else None
    dept = " ".join(department.split()) if department is not None else None
    if dept is not None and not dept:
        raise InputError("--department must not be empty")
    at = now()
    task: Task | None = None
    with engine.begin() as conn:
        row = conn.execute(select(social_accounts).where(social_accounts.c.policy == pack.id,
                                                         social_accounts.c.key == key)).first()
        if row is None:
            missing = [n for n, v in (("--department", dept), ("--director", director_), ("--email", city_email_),
                                      ("--moderator", mods)) if not v]
            if missing:
                raise InputError(f"a new account needs {', '.join(missing)}")
            conn.execute(insert(social_accounts).values(
                policy=pack.id, key=key, platform=platform_name(platform), handle=handle_name(handle),
                department=dept, director=director_, email=city_email_, moderators=list(mods or ()),
                credentials_changed_at=utc(credentials_changed) if credentials_changed else None, active=True,
                created_at=at, updated_at=at))
            created = True
        else:
            created = False
            values: dict[str, Any] = {"updated_at": at, "active": True, "handle": handle_name(handle)}
            for col, v in (("department", dept), ("director", director_), ("email", city_email_)):
                if v is not None:
                    values[col] = v
            if credentials_changed is not None:
                values["credentials_changed_at"] = utc(credentials_changed)
            old = tuple(row.moderators)
            if mods is not None and mods != old:
                values["moderators"] = list(mods)
                task = _raise_rotation(conn, pack, key, old, mods, at)
            conn.execute(update(social_accounts).where(social_accounts.c.id == row.id).values(**values))
        saved = _account(conn.execute(select(social_accounts).where(social_accounts.c.policy == pack.id,
                                                                    social_accounts.c.key == key)).one())
    audit.append(engine, actor=actor, action="social-account-add" if created else "social-account-update",
                 subject=key, policy=pack.id, detail=saved.to_json())
    if task:
        audit.append(engine, actor=actor, action="social-task-open", subject=key, policy=pack.id,
                     detail=task.to_json())
    return Saved(saved, created, task, tuple(_notes(engine, pack, saved)))


def _raise_rotation(conn: Connection, pack: CompiledPack, key: str, old: tuple[str, ...], new: tuple[str, ...],
                    at: datetime) -> Task:
    ref, sentence = clause_for(pack, r"moderator changes", r"password")
    gone, came = sorted(set(old) - set(new)), sorted(set(new) - set(old))
    parts = ([f"no longer moderating: {', '.join(gone)}"] if gone else []) + \
            ([f"new moderator(s): {', '.join(came)}"] if came else [])
    reason = f"The moderators of {key} changed ({'; '.join(parts)}): change the login and password" + \
             (f". \"{sentence}\"" if sentence else ".")
    tid = conn.execute(insert(social_tasks).values(
        policy=pack.id, account=key, kind=ROTATE, reason=reason, clause=ref, status="open", created_at=at)
    ).inserted_primary_key[0]  # type: ignore[index]
    return Task(int(tid), pack.id, key, ROTATE, reason, ref, "open", at)


def _notes(engine: Engine, pack: CompiledPack, a: Account) -> list[str]:
    notes: list[str] = []
    domain = pack.pack.city.mail_domain.lower()
    if not a.email.endswith("@" + domain) and not a.email.endswith("." + domain):
        ref, _ = clause_for(pack, r"tied to", r"email address")
        notes.append(f"{a.email} is not a {domain} address" + (f" ({ref}: tie the account to a City address "
                                                                 "if possible)" if ref else ""))
    people = {p.email: p for p in list_people(engine, pack.id)}
    if people:  # only when the directory has been imported
        d = people.get(a.director)
        if d is None:
            notes.append(f"director {a.director} is not in the directory")
        elif "department-head" not in d.roles:
            notes.append(f"director {a.director} has no department-head role in the directory ({d.title})")
        for m in a.moderators:
            if m not in people:
                notes.append(f"moderator {m} is not in the directory")
    return notes


def list_accounts(engine: Engine, policy: str, *, include_inactive: bool = False) -> list[Account]:
    q = select(social_accounts).where(social_accounts.c.policy == policy)
    if not include_inactive:
        q = q.where(social_accounts.c.active.is_(True))
    with engine.connect() as conn:
        return [_account(r) for r in conn.execute(q.order_by(social_accounts.c.department, social_accounts.c.key))]


def resolver(engine: Engine, policy: str) -> "AccountResolver":
    return AccountResolver(list_accounts(engine, policy))


class AccountResolver:
    """Maps the `account` of an ingest line to a registered account: "platform:handle", or a handle that only
    one account has (with or without '@'). Unknown names are kept as given (the item is still moderated)."""

    def __init__(self, accounts: list[Account]) -> None:
        self.by_key = {a.key: a for a in accounts}
        by_handle: dict[str, list[Account]] = {}
        for a in accounts:
            by_handle.setdefault(a.handle.lower(), []).append(a)
        self.by_handle = {h: v[0] for h, v in by_handle.items() if len(v) == 1}

    def find(self, name: str) -> Account | None:
        n = name.strip().lower()
        if n in self.by_key:
            return self.by_key[n]
        if ":" in n:
            p, _, h = n.partition(":")
            return self.by_key.get(f"{ALIASES.get(p, p)}:{h.lstrip('@')}")
        return self.by_handle.get(n.lstrip("@"))


def list_tasks(engine: Engine, policy: str, *, open_only: bool = True) -> list[Task]:
    q = select(social_tasks).where(social_tasks.c.policy == policy)
    if open_only:
        q = q.where(social_tasks.c.status == "open")
    with engine.connect() as conn:
        return [_task(r) for r in conn.execute(q.order_by(social_tasks.c.id))]


def close_task(engine: Engine, pack: CompiledPack, task_id: int, by: str, note: str = "") -> Task:
    """Close a task. Only the account's Director or one of its current moderators may: they are the ones who
    know the login ("Only the Department Director and moderator(s) should know the login and password").
    Closing a credential-rotation task records the credentials as changed now."""
    who = email(by, "--as")
    at = now()
    with engine.begin() as conn:
        t = conn.execute(select(social_tasks).where(social_tasks.c.policy == pack.id,
                                                    social_tasks.c.id == task_id)).first()
        if t is None:
            raise InputError(f"no task {task_id} in {pack.id}")
        if t.status != "open":
            raise InputError(f"task {task_id} is already {t.status}")
        acc = conn.execute(select(social_accounts).where(social_accounts.c.policy == pack.id,
                                                         social_accounts.c.key == t.account)).first()
        allowed = {acc.director, *acc.moderators} if acc is not None else set()
        if who not in allowed:
            raise InputError(f"{who} may not close task {task_id}: only the Director or a moderator of "
                             f"{t.account} may")
        conn.execute(update(social_tasks).where(social_tasks.c.id == task_id).values(
            status="closed", closed_at=at, closed_by=who, note=note or None))
        if t.kind == ROTATE and acc is not None:
            conn.execute(update(social_accounts).where(social_accounts.c.id == acc.id).values(
                credentials_changed_at=at, updated_at=at))
        closed = _task(conn.execute(select(social_tasks).where(social_tasks.c.id == task_id)).one())
    audit.append(engine, actor=who, action="social-task-close", subject=t.account, policy=pack.id,
                 detail=closed.to_json())
    return closed
