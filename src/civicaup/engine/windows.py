"""Time windows, evaluated in the city's own time zone."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from civicaup.policy.schema import Hours

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def local(at: datetime, tz: ZoneInfo) -> datetime:
    """A time in the city's zone; a naive time already means local time."""
    return at.replace(tzinfo=tz) if at.tzinfo is None else at.astimezone(tz)


def is_work_time(at: datetime, hours: Hours, tz: ZoneInfo) -> bool:
    """Within working hours and not at lunch."""
    t = local(at, tz)
    if _DAYS[t.weekday()] not in hours.days:
        return False
    clock = t.time()
    if not (hours.start <= clock < hours.end):
        return False
    return not (hours.lunch and hours.lunch[0] <= clock < hours.lunch[1])


def in_window(window: str, at: datetime, hours: Hours, tz: ZoneInfo) -> bool:
    if window == "any":
        return True
    work = is_work_time(at, hours, tz)
    return work if window == "work-time" else not work
