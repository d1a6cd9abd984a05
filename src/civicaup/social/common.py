"""Small helpers shared by the social modules: times in UTC for the store, clause look-up in the pack."""
from __future__ import annotations

import re
from datetime import datetime, timezone

from civicaup.errors import InputError
from civicaup.policy.compile import CompiledPack

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def now() -> datetime:
    return datetime.now(timezone.utc)


def utc(at: datetime) -> datetime:
    """An aware time in UTC: what the store keeps (SQLite drops offsets, so everything is stored in UTC)."""
    return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def from_db(at: datetime | None) -> datetime | None:
    """A time read back from the store: naive means UTC."""
    if at is None:
        return None
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


def iso(at: datetime | None) -> str | None:
    return from_db(at).isoformat() if at is not None else None  # type: ignore[union-attr]


def email(value: str, what: str) -> str:
    """A lower-cased e-mail address, or a one-line InputError naming the field."""
    v = (value or "").strip().lower()
    if not _EMAIL.match(v) or len(v) > 320:
        raise InputError(f"{what}: {value!r} is not an e-mail address")
    return v


def clause_for(pack: CompiledPack, *patterns: str) -> tuple[str, str]:
    """(ref, sentence) of the first clause sentence of the pack matching every pattern (case-insensitive);
    ("", "") when the city's text has no such sentence. Keeps city-specific references out of the code."""
    regexes = [re.compile(p, re.I) for p in patterns]
    for clause in pack.pack.clauses:
        for s in clause.sentences:
            if all(r.search(s.text) for r in regexes):
                return clause.ref, s.text
    return "", ""
