"""Who is who, for the workflows: the acting person from the directory, and who may act in a role for whom.

`department-head` and `supervisor` are relative: a department head approves for *their* department only (the
requester's, or the subject's). Every other role is city-wide. A leaver (inactive) acts in no role.
"""
from __future__ import annotations

from sqlalchemy import Engine, select

from civicaup.engine.event import Actor
from civicaup.governance.errors import ForbiddenError, NotFoundError
from civicaup.stores.directory import Person, find_person, list_people
from civicaup.stores.tables import people

RELATIVE = ("department-head", "supervisor")
ADMIN = ("it", "city-administrator")  # see every request of their city


def person(engine: Engine, policy: str, email: str) -> Person:
    """The active person with this address in the city's directory, else ForbiddenError."""
    found = find_person(engine, policy, email.strip())
    if found is None or not found.active:
        raise ForbiddenError(f"{email.strip().lower()} is not an active person in the directory of {policy}")
    return found


def policies_of(engine: Engine, email: str) -> list[str]:
    """The cities whose directory lists this address (active), for commands that take only --as."""
    with engine.connect() as conn:
        rows = conn.execute(select(people.c.policy).where(people.c.email == email.strip().lower(),
                                                          people.c.active.is_(True)))
        return sorted({r.policy for r in rows})


def policy_for(engine: Engine, email: str, policy: str | None) -> str:
    """`--policy` when given, else the one city whose directory lists `email`."""
    if policy:
        return policy
    found = policies_of(engine, email)
    if not found:
        raise NotFoundError(f"{email.strip().lower()} is in no city's directory (import it with 'directory import')")
    if len(found) > 1:
        raise NotFoundError(f"{email} is in the directories of {', '.join(found)}: give --policy")
    return found[0]


def actor_of(p: Person) -> Actor:
    return Actor(email=p.email, roles=frozenset(p.roles) | {"employee"}, department=p.department, name=p.name)


def same_department(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def acts_as(p: Person | None, role: str, department: str) -> bool:
    """May `p` act in `role` for someone of `department`? Relative roles need the same department (any
    department when the other person's department is unknown)."""
    if p is None or not p.active or role not in p.roles:
        return False
    return role not in RELATIVE or not department or same_department(p.department, department)


def holders(engine: Engine, policy: str, role: str, department: str) -> list[Person]:
    """The people who may act in `role` for someone of `department`."""
    return [p for p in list_people(engine, policy, role=role) if acts_as(p, role, department)]


def must_exist(engine: Engine, policy: str, email: str) -> Person:
    found = find_person(engine, policy, email)
    if found is None:
        raise NotFoundError(f"{email} is not in the directory of {policy}")
    return found
