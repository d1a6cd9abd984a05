"""Retention schedules as data: one YAML file per state (records/schedules/<state>.yaml), plus a city's own
overrides in $CIVICAUP_HOME/records/<policy>.yaml (extra assignment rules first, confirmed periods).

A series says how long its records are kept and which schedule item is the authority for disposing of
them; `confirm` marks a period this project could not verify against the published schedule, to be
confirmed by the city clerk before the first real disposition run.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from civicaup.config import home
from civicaup.errors import InputError, PackError

SCHEDULES = Path(__file__).parent / "schedules"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Retention(_Strict):
    years: int = 0
    months: int = 0
    days: int = 0
    permanent: bool = False
    trigger: Literal["created", "year-end"] = "created"  # counted from the message date or from 31 December

    @model_validator(mode="after")
    def _one_kind(self) -> "Retention":
        if self.permanent and (self.years or self.months or self.days):
            raise ValueError("a permanent series has no period")
        return self

    def describe(self) -> str:
        if self.permanent:
            return "permanent"
        parts = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in
                 ((self.years, "year"), (self.months, "month"), (self.days, "day")) if n]
        text = " ".join(parts) or "no minimum (until no longer needed)"
        return text + (" after the end of the calendar year" if self.trigger == "year-end" and parts else "")

    def cutoff(self, now: datetime) -> datetime | None:
        """Records dated before this are past their period (None: permanent)."""
        if self.permanent:
            return None
        if self.trigger == "year-end":
            # due on 1 January of (year of record + 1 + years): dated before 1 January (now.year - years)
            return datetime(now.year - self.years, 1, 1, tzinfo=timezone.utc) - _months(self.months) - \
                timedelta(days=self.days)
        return now - _years(now, self.years) - _months(self.months) - timedelta(days=self.days)


def _years(now: datetime, n: int) -> timedelta:
    try:
        return now - now.replace(year=now.year - n)
    except ValueError:  # 29 February
        return now - now.replace(year=now.year - n, day=28)


def _months(n: int) -> timedelta:
    return timedelta(days=round(30.44 * n))


class Series(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    reference: str  # the schedule's own item or series number
    retention: Retention
    description: str = ""
    confirm: bool = False  # period not verified here: to be confirmed by the clerk
    note: str = ""


class When(_Strict):
    sender_department: list[str] = []
    sender_role: list[str] = []
    mailbox: list[str] = []
    keywords: list[str] = []  # in the subject or an attachment name, whole words, any case


class AssignRule(_Strict):
    id: str
    series: str
    when: When


class Schedule(_Strict):
    state: str
    title: str
    authority: str  # the law that lets the city dispose of records under this schedule
    source: str
    default_series: str
    series: list[Series]
    rules: list[AssignRule] = []

    @model_validator(mode="after")
    def _references(self) -> "Schedule":
        ids = {s.id for s in self.series}
        if self.default_series not in ids:
            raise ValueError(f"default_series {self.default_series!r} is not a series")
        for r in self.rules:
            if r.series not in ids:
                raise ValueError(f"rule {r.id}: unknown series {r.series!r}")
        return self

    def get(self, series_id: str) -> Series:
        for s in self.series:
            if s.id == series_id:
                return s
        raise InputError(f"no series {series_id!r} in the {self.state} schedule "
                         f"(one of: {', '.join(s.id for s in self.series)})")


class CityOverrides(_Strict):
    rules: list[AssignRule] = []
    series: list[Series] = []  # replaces the state's series of the same id (e.g. a period the clerk confirmed)


def _load_yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PackError(str(exc).splitlines()[0], file=str(path)) from None


def _model(cls: type[BaseModel], path: Path) -> BaseModel:
    try:
        return cls.model_validate(_load_yaml(path) or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise PackError(err["msg"], file=str(path), field=".".join(str(p) for p in err["loc"])) from None


@lru_cache(maxsize=16)
def _state_schedule(state: str) -> Schedule:
    path = SCHEDULES / f"{state.lower()}.yaml"
    if not path.is_file():
        raise InputError(f"no retention schedule for state {state}")
    return _model(Schedule, path)  # type: ignore[return-value]


def overrides_path(policy: str) -> Path:
    return home() / "records" / f"{policy}.yaml"


def schedule_for(state: str, policy: str | None = None) -> Schedule:
    """The state's schedule with the city's overrides (if any) applied."""
    base = _state_schedule(state.upper())
    if not policy:
        return base
    path = overrides_path(policy)
    if not path.is_file():
        return base
    city: CityOverrides = _model(CityOverrides, path)  # type: ignore[assignment]
    replaced = {s.id: s for s in city.series}
    series = [replaced.pop(s.id, s) for s in base.series] + list(replaced.values())
    return Schedule.model_validate({**base.model_dump(), "series": [s.model_dump() for s in series],
                                    "rules": [r.model_dump() for r in [*city.rules, *base.rules]]})


@dataclass(frozen=True)
class Person:
    department: str
    roles: tuple[str, ...]


class Assigner:
    """Series for a message by the schedule's rules, first match wins; else the default series."""

    def __init__(self, schedule: Schedule, people: dict[str, Person]) -> None:
        self.schedule = schedule
        self.people = people
        self._rules = [(r, self._keyword_re(r.when.keywords)) for r in schedule.rules]

    @staticmethod
    def _keyword_re(words: list[str]) -> re.Pattern[str] | None:
        if not words:
            return None
        return re.compile(r"(?<![^\W_])(?:" + "|".join(re.escape(w.lower()) for w in words) + r")(?![^\W_])")

    def assign(self, sender: str, parties: set[str], subject: str, attachments: list[str]) -> tuple[str, str]:
        person = self.people.get(sender)
        text = " ".join([subject, *attachments]).lower()
        for rule, kw in self._rules:
            w = rule.when
            checks = []
            if w.sender_department:
                checks.append(person is not None and person.department.lower() in
                              {d.lower() for d in w.sender_department})
            if w.sender_role:
                checks.append(person is not None and bool(set(person.roles) & set(w.sender_role)))
            if w.mailbox:
                checks.append(bool(parties & {m.lower() for m in w.mailbox}))
            if kw is not None:
                checks.append(kw.search(text) is not None)
            if checks and all(checks):
                return rule.series, f"rule:{rule.id}"
        return self.schedule.default_series, "default"
