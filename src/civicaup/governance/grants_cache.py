"""Exemption grants as the channels read them: each city's current grants, cached per process.

The mail filter and the Squid helper decide many times a second; reading the approvals for every decision
would cost a query each time. A :class:`Grants` snapshot holds every approved exemption of one city that had
not ended when it was read (few: they are granted one by one), and answers "which rules is this person
exempt from at this time" in memory, by the grant's own end time, so an exemption ends on time whatever the
cache's age. A snapshot is read again after ``TTL`` seconds (a grant made in another process is seen within
that time) and at once after :func:`invalidate`, which ``approvals.approve`` calls when it grants an
exemption in this process. The rules are those of ``approvals.granted_exemptions``: a grant is to a person
(their e-mail address) or to everyone with a role (``role:<role>``).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import Engine, or_, select

from civicaup.stores.governance_tables import approval_requests as AR

TTL = 60.0


def _utc(at: datetime | None) -> datetime | None:
    """Aware UTC (SQLite hands back naive datetimes for what was stored as UTC)."""
    if at is None:
        return None
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


@dataclass(frozen=True, slots=True)
class Grant:
    """One approved exemption: from `rule`, for `grantee`, until `until` (None: no end), by approval `request`."""

    rule: str
    grantee: str  # an e-mail address (lower case) or "role:<role>"
    until: datetime | None  # aware UTC
    request: int

    def current(self, at: datetime) -> bool:
        return self.until is None or self.until > at


@dataclass(frozen=True)
class Grants:
    """One city's exemption grants that had not ended when they were read."""

    policy: str
    grants: tuple[Grant, ...] = ()
    _by_grantee: dict[str, tuple[Grant, ...]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        index: dict[str, list[Grant]] = {}
        for g in self.grants:
            index.setdefault(g.grantee, []).append(g)
        object.__setattr__(self, "_by_grantee", {k: tuple(v) for k, v in index.items()})

    def for_actor(self, email: str, roles: Iterable[str], at: datetime | None = None) -> frozenset[str]:
        """The rule ids `email` (or one of `roles`) holds a current grant for at `at` (default now): an event's
        `granted_exemptions`."""
        if not self.grants:
            return frozenset()
        t = _utc(at) or datetime.now(timezone.utc)
        found = self._by_grantee.get(email.strip().lower(), ())
        for r in roles:
            found += self._by_grantee.get(f"role:{r}", ())
        return frozenset(g.rule for g in found if g.current(t))

    def next_end(self, at: datetime) -> datetime | None:
        """The first time after `at` when one of these grants ends (answers given before it may change then)."""
        t = _utc(at)
        assert t is not None
        ends = [g.until for g in self.grants if g.until is not None and g.until > t]
        return min(ends) if ends else None


def load(engine: Engine, policy: str, at: datetime | None = None) -> Grants:
    """Read the city's approved exemptions that have not ended at `at` (default now) from the store."""
    t = _utc(at) or datetime.now(timezone.utc)
    q = (select(AR.c.id, AR.c.detail, AR.c.valid_until)
         .where(AR.c.policy == policy, AR.c.kind == "exemption", AR.c.status == "approved",
                or_(AR.c.valid_until.is_(None), AR.c.valid_until > t))
         .order_by(AR.c.id))
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    grants = []
    for r in rows:
        detail = r.detail or {}
        rule, grantee = detail.get("rule"), detail.get("grantee")
        if isinstance(rule, str) and isinstance(grantee, str) and rule and grantee:
            grants.append(Grant(rule, grantee.strip().lower(), _utc(r.valid_until), int(r.id)))
    return Grants(policy, tuple(grants))


class GrantsCache:
    """Snapshots of :func:`load` per (store, city), each kept `ttl` seconds. Thread-safe."""

    def __init__(self, ttl: float = TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.clock = ttl, clock
        self._lock = threading.Lock()
        self._snapshots: dict[tuple[str, str], tuple[float, Grants]] = {}
        self._generation = 0

    @staticmethod
    def _key(engine: Engine, policy: str) -> tuple[str, str]:
        return str(engine.url), policy

    def peek(self, engine: Engine, policy: str) -> Grants | None:
        """The cached snapshot if it is fresh, else None (never touches the store)."""
        hit = self._snapshots.get(self._key(engine, policy))
        if hit is None or self.clock() - hit[0] > self.ttl:
            return None
        return hit[1]

    def snapshot(self, engine: Engine, policy: str, *, max_age: float | None = None) -> Grants:
        """The city's grants, read from the store when the cached copy is older than `max_age` (default the
        TTL). Store errors propagate: the caller decides what a channel does without them."""
        key = self._key(engine, policy)
        age = self.ttl if max_age is None else max_age
        hit = self._snapshots.get(key)
        if hit is not None and self.clock() - hit[0] <= age:
            return hit[1]
        with self._lock:
            generation = self._generation
        started = self.clock()
        grants = load(engine, policy)
        with self._lock:
            if generation == self._generation:  # not invalidated while reading: keep it
                self._snapshots[key] = (started, grants)
        return grants

    def granted(self, engine: Engine, policy: str, email: str, roles: Iterable[str],
                at: datetime | None = None) -> frozenset[str]:
        return self.snapshot(engine, policy).for_actor(email, roles, at)

    def invalidate(self, policy: str | None = None) -> None:
        """Forget the snapshots of `policy` (every city if None): the next decision reads the store."""
        with self._lock:
            self._generation += 1
            for key in [k for k in self._snapshots if policy is None or k[1] == policy]:
                del self._snapshots[key]


CACHE = GrantsCache()
"""The process's cache, shared by the mail gateway, the Squid helper and the approvals that invalidate it."""


def snapshot(engine: Engine, policy: str, *, max_age: float | None = None) -> Grants:
    return CACHE.snapshot(engine, policy, max_age=max_age)


def peek(engine: Engine, policy: str) -> Grants | None:
    return CACHE.peek(engine, policy)


def granted_exemptions(engine: Engine, policy: str, email: str, roles: Iterable[str],
                       at: datetime | None = None) -> frozenset[str]:
    """``approvals.granted_exemptions`` through the cache."""
    return CACHE.granted(engine, policy, email, roles, at)


def invalidate(policy: str | None = None) -> None:
    CACHE.invalidate(policy)
