"""The weekly report: official accounts not updated at least twice a week (WDM Social Computing Guidelines ¶7:
"Departments should regularly monitor and update accounts at least twice a week."), from the account's own
posts and replies ingested for it, plus the open credential-rotation tasks.

A week is Monday 00:00 to the next Monday 00:00 in the city's time zone; by default the last complete week.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from civicaup.errors import InputError
from civicaup.policy.compile import CompiledPack
from civicaup.social.accounts import list_accounts, list_tasks
from civicaup.social.common import clause_for, iso, now, utc
from civicaup.stores.social_tables import social_items

UPDATE_KINDS = ("post", "reply")  # published by the account itself; drafts are never stored
MIN_UPDATES = 2


def week_of(pack: CompiledPack, day: str | date | None = None) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) in the city's zone around `day` (ISO date); default the last full week."""
    if day is None:
        d = now().astimezone(pack.tz).date() - timedelta(days=7)
    elif isinstance(day, date):
        d = day
    else:
        try:
            d = date.fromisoformat(day.strip()[:10])
        except ValueError:
            raise InputError(f"--week {day!r} is not a date (YYYY-MM-DD)") from None
    monday = d - timedelta(days=d.weekday())
    start = datetime.combine(monday, time(0), tzinfo=pack.tz)
    end = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=pack.tz)
    return start, end


def weekly(engine: Engine, pack: CompiledPack, day: str | date | None = None) -> dict[str, Any]:
    """Every active account with its updates in the week; `not_updated` lists those under twice."""
    start, end = week_of(pack, day)
    ref, sentence = clause_for(pack, r"twice a week")
    with engine.connect() as conn:
        counts = dict(conn.execute(
            select(social_items.c.account, func.count()).where(
                social_items.c.policy == pack.id, social_items.c.kind.in_(UPDATE_KINDS),
                social_items.c.at >= utc(start), social_items.c.at < utc(end))
            .group_by(social_items.c.account)).all())
    rows = []
    for a in list_accounts(engine, pack.id):
        n = int(counts.get(a.key, 0))
        rows.append({**a.to_json(), "updates": n, "ok": n >= MIN_UPDATES})
    open_tasks = [t.to_json() for t in list_tasks(engine, pack.id)]
    return {"policy": pack.id, "week": {"start": start.isoformat(), "end": end.isoformat()},
            "clause": ref, "quote": sentence, "minimum": MIN_UPDATES, "accounts": rows,
            "not_updated": [r["account"] for r in rows if not r["ok"]], "open_tasks": open_tasks,
            "generated_at": iso(now())}
