"""Who may do what with records: the directory's roles decide (civicaup.stores.directory)."""
from __future__ import annotations

from sqlalchemy import Engine

from civicaup.governance.errors import ForbiddenError
from civicaup.stores.directory import Person, find_person

CUSTODIANS = ("clerk", "city-administrator")  # release holds, classify, answer requests, dispose


class NotPermittedError(ForbiddenError):
    """The acting person lacks the role the action needs (403 on the API, exit 2 on the CLI)."""


def require(engine: Engine, policy: str, email: str, roles: tuple[str, ...] = CUSTODIANS, *, action: str) -> Person:
    person = find_person(engine, policy, email)
    if person is None or not person.active:
        raise NotPermittedError(f"{email} is not an active person in the {policy} directory: cannot {action}")
    if not set(person.roles) & set(roles):
        raise NotPermittedError(f"{email} ({', '.join(person.roles) or 'no roles'}) cannot {action}: "
                                f"needs the {' or '.join(roles)} role")
    return person


def known(engine: Engine, policy: str, email: str, *, action: str) -> Person:
    """Any active person of the directory (actions that are audited but open to staff)."""
    person = find_person(engine, policy, email)
    if person is None or not person.active:
        raise NotPermittedError(f"{email} is not an active person in the {policy} directory: cannot {action}")
    return person
