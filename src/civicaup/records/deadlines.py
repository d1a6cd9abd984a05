"""Statutory response deadlines for public-records requests, per state, in business days.

Where the law sets no fixed day the due date is None and the statute and note say so: a clerk is better
served by "no fixed day, respond within a reasonable time (Minn. Stat. 13.03, subd. 2)" than by an invented
date. Receipt on a weekend or holiday counts from the next business day, as the statutes count days
"following" or "after" receipt.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from civicaup.errors import InputError
from civicaup.records.holidays import STATES, holiday_on, is_business_day

KINDS = ("public", "data-subject")


@dataclass(frozen=True)
class Law:
    business_days: int | None
    statute: str
    note: str
    review_limits: dict[str, tuple[str, int]] = field(default_factory=dict)  # label -> (unit, n), informational


LAWS: dict[tuple[str, str], Law] = {
    ("MO", "public"): Law(3, "RSMo 610.023.3", (
        "Act on the request as soon as possible, and no later than the end of the third business day following "
        "the day it was received. If access is delayed for cause, the custodian must give a detailed "
        "explanation and the earliest time and date the record will be available (RSMo 610.023.3).")),
    ("MO", "data-subject"): Law(3, "RSMo 610.023.3", (
        "Missouri has no separate data-subject access law: a person's request for records about themselves is "
        "a Sunshine Law request, due by the end of the third business day following receipt.")),
    ("KY", "public"): Law(5, "KRS 61.880(1)", (
        "Within five days, excepting Saturdays, Sundays and legal holidays, after receipt, decide whether to "
        "comply and notify the requester in writing; a denial cites the exception and explains how it applies "
        "(KRS 61.880(1), as amended by 2021 HB 312). If the record is in active use, storage or not otherwise "
        "available, give a detailed explanation and the place, time and earliest date it will be available "
        "(KRS 61.872(5)).")),
    ("KY", "data-subject"): Law(5, "KRS 61.880(1)", (
        "Kentucky has no separate data-subject access law for cities: the Open Records Act deadline applies.")),
    ("IA", "public"): Law(None, "Iowa Code 22.8(4)", (
        "Iowa Code chapter 22 sets no fixed response deadline; a good-faith, reasonable delay is not a violation "
        "for the purposes listed in 22.8(4). A delay to decide whether a confidential record should be released "
        "shall not exceed twenty calendar days and ordinarily should not exceed ten business days "
        "(22.8(4)(d)); those two dates are given as review limits."),
        {"ordinarily, confidentiality review": ("business", 10), "at most, confidentiality review": ("calendar", 20)}),
    ("IA", "data-subject"): Law(None, "Iowa Code 22.8(4)", (
        "Iowa has no separate data-subject access law for cities: chapter 22 applies, with no fixed deadline "
        "(see 22.8(4))."),
        {"ordinarily, confidentiality review": ("business", 10), "at most, confidentiality review": ("calendar", 20)}),
    ("MN", "public"): Law(None, "Minn. Stat. 13.03, subd. 2", (
        "Public data: respond in an appropriate and prompt manner and within a reasonable time; the Data "
        "Practices Act sets no fixed number of days for a request from a member of the public.")),
    ("MN", "data-subject"): Law(10, "Minn. Stat. 13.04, subd. 3", (
        "A data subject's request for data about themselves: comply immediately if possible, or within ten "
        "days of the date of the request, excluding Saturdays, Sundays and legal holidays.")),
}


@dataclass(frozen=True)
class Deadline:
    state: str
    kind: str
    received: str
    due: date | None
    statute: str
    business_days: int | None
    note: str
    holidays: tuple[tuple[date, str], ...]
    review_limits: dict[str, date]

    def to_json(self) -> dict[str, Any]:
        return {"due": self.due.isoformat() if self.due else None, "statute": self.statute,
                "business_days": self.business_days, "note": self.note, "state": self.state, "kind": self.kind,
                "received": self.received,
                "holidays_skipped": [{"date": d.isoformat(), "name": n} for d, n in self.holidays],
                "review_limits": {k: v.isoformat() for k, v in self.review_limits.items()},
                "holiday_law": STATES[self.state][0]}


def parse_received(text: str) -> datetime:
    """ISO-DATE or ISO-DATE'T'HH:MM, local time of the city."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"--received must be an ISO date (2026-07-02) or date and time (2026-07-02T16:30), "
                         f"not {text!r}") from None
    if value.tzinfo is not None:
        value = value.replace(tzinfo=None)
    return value


def add_business_days(state: str, start: date, n: int, closed: frozenset[date] = frozenset()
                      ) -> tuple[date, list[tuple[date, str]]]:
    """The nth business day after `start` and the holidays passed on the way."""
    day, counted, skipped = start, 0, []
    while counted < n:
        day += timedelta(days=1)
        if is_business_day(state, day, closed):
            counted += 1
            continue
        h = holiday_on(state, day)
        if h is not None:
            skipped.append((day, h.name))
        elif day in closed:
            skipped.append((day, "closed (given)"))
    return day, skipped


def deadline(state: str, received: datetime | date, kind: str = "public",
             closed: frozenset[date] = frozenset()) -> Deadline:
    state = state.upper()
    if state not in STATES:
        raise InputError(f"--state must be one of {', '.join(sorted(STATES))}, not {state!r}")
    if kind not in KINDS:
        raise InputError(f"--kind must be public or data-subject, not {kind!r}")
    law = LAWS[(state, kind)]
    day = received.date() if isinstance(received, datetime) else received
    label = received.isoformat(timespec="minutes") if isinstance(received, datetime) else received.isoformat()
    note = law.note
    if isinstance(received, datetime) and (received.hour, received.minute) >= (17, 0) and law.business_days:
        note += (" Received at or after 17:00: counted from the day of receipt, the earlier and safe reading; "
                 "if the city treats it as received the next business day the deadline is one business day later.")
    due, skipped = (add_business_days(state, day, law.business_days, closed) if law.business_days
                    else (None, []))
    limits: dict[str, date] = {}
    for label_, (unit, n) in law.review_limits.items():
        limits[label_] = (add_business_days(state, day, n, closed)[0] if unit == "business"
                          else day + timedelta(days=n))
    return Deadline(state, kind, label, due, law.statute, law.business_days, note, tuple(skipped), limits)
