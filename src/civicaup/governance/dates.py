"""Dates on the command line and in forms: a day means the end of that day in the city's time zone."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from civicaup.errors import InputError
from civicaup.policy.compile import CompiledPack


def until(text: str, pack: CompiledPack, what: str = "--until") -> datetime:
    """ISO date (through the end of that local day) or ISO date-time (local without offset), as aware UTC."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=1), time(0), tzinfo=pack.tz).astimezone(timezone.utc)
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{what} {text!r} is not an ISO date (e.g. 2026-12-31)") from None
    return (at if at.tzinfo else at.replace(tzinfo=pack.tz)).astimezone(timezone.utc)


def local_day(at: datetime | None, pack: CompiledPack) -> str:
    if at is None:
        return ""
    aware = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    return aware.astimezone(pack.tz).date().isoformat()


def last_day(end: datetime | None, pack: CompiledPack) -> str:
    """The last local day an end instant still covers (an end at midnight covers the day before)."""
    if end is None:
        return ""
    aware = end if end.tzinfo else end.replace(tzinfo=timezone.utc)
    return (aware.astimezone(pack.tz) - timedelta(microseconds=1)).date().isoformat()
