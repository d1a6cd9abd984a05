"""Bearer tokens for the REST API and the console, each acting as one person of one city.

Only the SHA-256 of a token is stored (a token is 256 random bits, so a plain hash is enough); the token is
shown once, when made. A token stops working when it expires, is revoked, or its person leaves the directory.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, insert, select, update

from civicaup.errors import InputError
from civicaup.governance.approvals import utc
from civicaup.governance.errors import AuthError, NotFoundError
from civicaup.governance.people import person
from civicaup.stores import audit
from civicaup.stores.directory import Person, find_person
from civicaup.stores.governance_tables import api_tokens

PREFIX = "cau_"
MAX_DAYS = 366


@dataclass(frozen=True)
class Issued:
    id: int
    token: str  # shown once, never stored
    expires_at: datetime


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a person of one city, with their roles from the directory now."""
    token_id: int
    policy: str
    person: Person

    @property
    def email(self) -> str:
        return self.person.email

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(self.person.roles) | {"employee"}


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create(engine: Engine, policy: str, email: str, *, days: float = 30, label: str = "",
           by: str = "cli") -> Issued:
    """A new token for an active person of the city's directory, valid for `days` (at most a year)."""
    if not 0 < days <= MAX_DAYS:
        raise InputError(f"--days must be more than 0 and at most {MAX_DAYS}")
    who = person(engine, policy, email)
    token = PREFIX + secrets.token_urlsafe(32)
    t = datetime.now(timezone.utc)
    end = t + timedelta(days=days)
    with engine.begin() as conn:
        res = conn.execute(insert(api_tokens).values(policy=policy, email=who.email, token_hash=digest(token),
                                                     label=label[:200], created_at=t, expires_at=end))
        tid = int(res.inserted_primary_key[0])
    audit.append(engine, actor=by, action="token-create", subject=f"token {tid}", policy=policy,
                 detail={"for": who.email, "expires_at": end.isoformat(), "label": label[:200]})
    return Issued(tid, token, end)


def authenticate(engine: Engine, token: str, *, policies: frozenset[str] | None = None) -> Principal:
    """The person a token acts as; AuthError when it is unknown, expired, revoked, for a city this server does
    not serve, or its person is no longer active."""
    token = token.strip()
    if not token.startswith(PREFIX) or len(token) > 200:
        raise AuthError("not a civicaup token")
    with engine.connect() as conn:
        row = conn.execute(select(api_tokens).where(api_tokens.c.token_hash == digest(token))).first()
    t = datetime.now(timezone.utc)
    if row is None or row.revoked_at is not None:
        raise AuthError("unknown or revoked token")
    if utc(row.expires_at) <= t:  # type: ignore[operator]
        raise AuthError("the token has expired")
    if policies is not None and row.policy not in policies:
        raise AuthError("the token is for a city this server does not serve")
    who = find_person(engine, row.policy, row.email)
    if who is None or not who.active:
        raise AuthError("the token's person is no longer in the directory")
    if row.last_used_at is None or t - utc(row.last_used_at) > timedelta(minutes=5):  # type: ignore[operator]
        with engine.begin() as conn:
            conn.execute(update(api_tokens).where(api_tokens.c.id == row.id).values(last_used_at=t))
    return Principal(row.id, row.policy, who)


def revoke(engine: Engine, policy: str, token_id: int, by: str = "cli") -> None:
    with engine.begin() as conn:
        n = conn.execute(update(api_tokens).where(api_tokens.c.id == token_id, api_tokens.c.policy == policy,
                                                  api_tokens.c.revoked_at.is_(None))
                         .values(revoked_at=datetime.now(timezone.utc))).rowcount
    if not n:
        raise NotFoundError(f"no active token {token_id} in {policy}")
    audit.append(engine, actor=by, action="token-revoke", subject=f"token {token_id}", policy=policy)


def listing(engine: Engine, policy: str) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(select(api_tokens).where(api_tokens.c.policy == policy).order_by(api_tokens.c.id))
        return [{"id": r.id, "email": r.email, "label": r.label, "created_at": utc(r.created_at).isoformat(),
                 "expires_at": utc(r.expires_at).isoformat(), "revoked": r.revoked_at is not None,
                 "last_used_at": utc(r.last_used_at).isoformat() if r.last_used_at else None} for r in rows]
