"""State legal holidays, computed from their rules (fixed dates, nth weekdays, weekend observance).

Each state's table cites the statute it comes from. A holiday marked `optional` is one a city may or may
not observe (Minnesota lets political subdivisions choose Columbus Day and the Friday after Thanksgiving);
deadlines count optional days as business days, which gives the earlier, safe date. Days a particular city
closes on top of these (a governor's extra day, a snow day) are passed to the deadline as `closed` dates.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


@dataclass(frozen=True)
class Rule:
    """One holiday: a fixed month/day, or the nth weekday of a month (n = -1: the last)."""
    name: str
    month: int
    day: int = 0  # fixed date when > 0
    weekday: int = -1
    nth: int = 0
    sat_to_fri: bool = True  # a fixed date on Saturday is observed the Friday before
    sun_to_mon: bool = True  # ... and on Sunday the Monday after
    since: int = 0  # first year the law names it
    optional: bool = False
    presidential_years_only: bool = False  # election day: only when a President is elected


@dataclass(frozen=True)
class Holiday:
    day: date
    name: str
    optional: bool


def nth_weekday(year: int, month: int, weekday: int, nth: int) -> date:
    if nth > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (nth - 1))
    last = (date(year + (month == 12), month % 12 + 1, 1)) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _election_day(year: int) -> date:
    """The Tuesday after the first Monday in November."""
    return nth_weekday(year, 11, MON, 1) + timedelta(days=1)


def _observed(rule: Rule, year: int) -> list[Holiday]:
    if rule.since and year < rule.since:
        return []
    if rule.presidential_years_only:
        if year % 4:
            return []
        return [Holiday(_election_day(year), rule.name, rule.optional)]
    if rule.day:
        actual = date(year, rule.month, rule.day)
        if actual.weekday() == SAT and rule.sat_to_fri:
            return [Holiday(actual - timedelta(days=1), f"{rule.name} (observed)", rule.optional)]
        if actual.weekday() == SUN and rule.sun_to_mon:
            return [Holiday(actual + timedelta(days=1), f"{rule.name} (observed)", rule.optional)]
        return [Holiday(actual, rule.name, rule.optional)]
    return [Holiday(nth_weekday(year, rule.month, rule.weekday, rule.nth), rule.name, rule.optional)]


def _day_after_thanksgiving(name: str, optional: bool = False) -> Rule:
    # the fourth Thursday is always 22-28 November, so the Friday after is the fourth Friday
    return Rule(name, 11, weekday=FRI, nth=4, optional=optional)


COMMON = {
    "new-year": Rule("New Year's Day", 1, 1),
    "mlk": Rule("Martin Luther King Jr. Day", 1, weekday=MON, nth=3),
    "washington": Rule("Washington's Birthday", 2, weekday=MON, nth=3),
    "memorial": Rule("Memorial Day", 5, weekday=MON, nth=-1),
    "independence": Rule("Independence Day", 7, 4),
    "labor": Rule("Labor Day", 9, weekday=MON, nth=1),
    "columbus": Rule("Columbus Day", 10, weekday=MON, nth=2),
    "veterans": Rule("Veterans Day", 11, 11),
    "thanksgiving": Rule("Thanksgiving Day", 11, weekday=THU, nth=4),
    "christmas": Rule("Christmas Day", 12, 25),
}

#: (statute, rules) per state.
STATES: dict[str, tuple[str, tuple[Rule, ...]]] = {
    # RSMo 9.010 moves only Sunday holidays (to Monday); state offices observe Saturday holidays on the Friday
    # before (Office of Administration practice, e.g. 31 December 2021 for New Year's Day 2022).
    "MO": ("RSMo 9.010 (public holidays)", (
        COMMON["new-year"], COMMON["mlk"], Rule("Lincoln Day", 2, 12), COMMON["washington"],
        Rule("Truman Day", 5, 8), COMMON["memorial"], Rule("Juneteenth", 6, 19, since=2022),
        COMMON["independence"], COMMON["labor"], COMMON["columbus"], COMMON["veterans"], COMMON["thanksgiving"],
        COMMON["christmas"],
    )),
    # KRS 18A.190(1): the days state offices close; (2): Saturday -> Friday, Sunday -> Monday. The "one extra
    # day" the Governor designates after New Year's Day, Thanksgiving and Christmas, and Good Friday's half day,
    # are not counted: pass them as closed days once designated.
    "KY": ("KRS 18A.190 (state holidays) and KRS 2.190 (election day)", (
        COMMON["new-year"], COMMON["mlk"], COMMON["memorial"], COMMON["independence"], COMMON["labor"],
        COMMON["veterans"], Rule("Presidential election day", 11, presidential_years_only=True),
        COMMON["thanksgiving"], COMMON["christmas"],
    )),
    # Iowa Code 1C.1 (legal public holidays) and 1C.2 (paid holidays, with the Friday after Thanksgiving);
    # 1C.2(3): Saturday -> Friday, Sunday -> Monday.
    "IA": ("Iowa Code 1C.1 and 1C.2", (
        COMMON["new-year"], COMMON["mlk"], Rule("Lincoln's Birthday", 2, 12), COMMON["washington"],
        COMMON["memorial"], COMMON["independence"], COMMON["labor"], COMMON["veterans"], COMMON["thanksgiving"],
        _day_after_thanksgiving("Friday after Thanksgiving"), COMMON["christmas"],
    )),
    # Minn. Stat. 645.44 subd. 5: fixed dates on Saturday -> Friday, on Sunday -> Monday; political
    # subdivisions choose whether Columbus (Indigenous Peoples) Day and the Friday after Thanksgiving are holidays.
    "MN": ("Minn. Stat. 645.44, subd. 5", (
        COMMON["new-year"], Rule("Martin Luther King Jr.'s Birthday", 1, weekday=MON, nth=3),
        Rule("Washington's and Lincoln's Birthday", 2, weekday=MON, nth=3), COMMON["memorial"],
        Rule("Juneteenth", 6, 19, since=2023), COMMON["independence"], COMMON["labor"],
        Rule("Columbus Day / Indigenous Peoples Day", 10, weekday=MON, nth=2, optional=True),
        COMMON["veterans"], COMMON["thanksgiving"],
        _day_after_thanksgiving("Friday after Thanksgiving", optional=True), COMMON["christmas"],
    )),
}


@lru_cache(maxsize=256)
def holidays(state: str, year: int) -> tuple[Holiday, ...]:
    """The state's holidays observed in `year` (a Saturday 1 January is observed on 31 December before)."""
    rules = STATES[state][1]
    out = [h for y in (year - 1, year, year + 1) for r in rules for h in _observed(r, y) if h.day.year == year]
    return tuple(sorted(set(out), key=lambda h: h.day))


def holiday_on(state: str, day: date, *, include_optional: bool = False) -> Holiday | None:
    for h in holidays(state, day.year):
        if h.day == day and (include_optional or not h.optional):
            return h
    return None


def is_business_day(state: str, day: date, closed: frozenset[date] = frozenset()) -> bool:
    return day.weekday() < SAT and day not in closed and holiday_on(state, day) is None
