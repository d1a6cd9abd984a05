"""Acknowledgements of the policy and training assignments.

Every active person of the directory acknowledges the pack's current `version`: a new hire has none, and
when the city changes its policy (a new version) everyone is missing it again (Kirkwood j.: each employee
understands and complies; the Personnel Department distributes it on hire). Courses come from the city's
workflow settings (Kirkwood j.: the GroupWise introductory course for everyone with e-mail access).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, insert, select, update

from civicaup.errors import InputError
from civicaup.governance.approvals import utc
from civicaup.governance.errors import NotFoundError
from civicaup.governance.people import must_exist, person
from civicaup.governance.workflows import Course, workflows
from civicaup.policy.compile import CompiledPack
from civicaup.stores import audit
from civicaup.stores.directory import Person, list_people
from civicaup.stores.governance_tables import acknowledgements, training


def record(engine: Engine, pack: CompiledPack, email: str, *, version: str | None = None,
           by: str | None = None) -> str:
    """Record that this person acknowledged the policy (the current version unless given); idempotent."""
    who = person(engine, pack.id, email)
    version = version or pack.pack.version
    if version != pack.pack.version:
        raise InputError(f"{pack.id} is at version {pack.pack.version}; {version!r} is not the current policy")
    with engine.begin() as conn:
        done = conn.execute(select(acknowledgements.c.id).where(
            acknowledgements.c.policy == pack.id, acknowledgements.c.email == who.email,
            acknowledgements.c.version == version)).first()
        if done:
            return f"{who.email} had already acknowledged {pack.id} version {version}"
        conn.execute(insert(acknowledgements).values(policy=pack.id, email=who.email, version=version,
                                                     at=datetime.now(timezone.utc), recorded_by=by or who.email))
    audit.append(engine, actor=by or who.email, action="acknowledge", subject=who.email, policy=pack.id,
                 detail={"version": version})
    return f"{who.email} acknowledged {pack.id} version {version}"


def by_department(people: list[Person], extra: dict[str, dict[str, Any]] | None = None) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for p in people:
        out.setdefault(p.department or "(no department)", []).append(
            {"email": p.email, "name": p.name, "title": p.title, **(extra or {}).get(p.email, {})})
    return dict(sorted(out.items()))


def missing(engine: Engine, pack: CompiledPack, *, department: str | None = None) -> dict[str, Any]:
    """Active people who have not acknowledged the current version, by department (with the last version they
    did acknowledge, if any)."""
    with engine.connect() as conn:
        rows = conn.execute(select(acknowledgements).where(acknowledgements.c.policy == pack.id)
                            .order_by(acknowledgements.c.at))
        last: dict[str, str] = {}
        current: set[str] = set()
        for r in rows:
            last[r.email] = r.version
            if r.version == pack.pack.version:
                current.add(r.email)
    people = [p for p in list_people(engine, pack.id) if p.email not in current
              and (department is None or p.department == department)]
    return {"policy": pack.id, "version": pack.pack.version, "missing": len(people),
            "departments": by_department(people, {p.email: {"last_version": last.get(p.email)} for p in people})}


# ---------------------------------------------------------------- training

def _course(pack: CompiledPack, course_id: str) -> Course:
    c = workflows(pack).course(course_id)
    if c is None:
        known = ", ".join(x.id for x in workflows(pack).training) or "none configured"
        raise NotFoundError(f"{pack.id} has no course {course_id!r} (known: {known})")
    return c


def assign(engine: Engine, pack: CompiledPack, course_id: str, emails: list[str], *, by: str = "cli",
           due: datetime | None = None) -> int:
    """Assign a course to these people (everyone active when `emails` is empty); returns how many were new."""
    c = _course(pack, course_id)
    targets = [must_exist(engine, pack.id, e) for e in emails] if emails else list_people(engine, pack.id)
    t = datetime.now(timezone.utc)
    new = 0
    with engine.begin() as conn:
        for p in targets:
            have = conn.execute(select(training.c.id).where(training.c.policy == pack.id, training.c.email == p.email,
                                                            training.c.course == c.id)).first()
            if have is None:
                conn.execute(insert(training).values(policy=pack.id, email=p.email, course=c.id, assigned_at=t,
                                                     assigned_by=by, due_at=due))
                new += 1
    audit.append(engine, actor=by, action="training-assign", subject=c.id, policy=pack.id,
                 detail={"assigned": new, "clause": c.clause, "due": due.isoformat() if due else None})
    return new


def complete(engine: Engine, pack: CompiledPack, course_id: str, email: str, *, by: str | None = None) -> str:
    c = _course(pack, course_id)
    who = person(engine, pack.id, email)
    t = datetime.now(timezone.utc)
    with engine.begin() as conn:
        row = conn.execute(select(training).where(training.c.policy == pack.id, training.c.email == who.email,
                                                  training.c.course == c.id)).first()
        if row is None:
            conn.execute(insert(training).values(policy=pack.id, email=who.email, course=c.id, assigned_at=t,
                                                 assigned_by=by or who.email, completed_at=t))
        elif row.completed_at is None:
            conn.execute(update(training).where(training.c.id == row.id).values(completed_at=t))
        else:
            return f"{who.email} had already completed {c.id}"
    audit.append(engine, actor=by or who.email, action="training-complete", subject=who.email, policy=pack.id,
                 detail={"course": c.id, "clause": c.clause})
    return f"{who.email} completed {c.title}"


def training_missing(engine: Engine, pack: CompiledPack, *, course_id: str | None = None,
                     department: str | None = None) -> dict[str, Any]:
    """Per course: active people assigned it (or, for a course never assigned, everyone) who have not
    completed it, by department, with overdue ones marked."""
    courses = [_course(pack, course_id)] if course_id else list(workflows(pack).training)
    active = [p for p in list_people(engine, pack.id) if department is None or p.department == department]
    t = datetime.now(timezone.utc)
    out = []
    with engine.connect() as conn:
        for c in courses:
            rows = {r.email: r for r in conn.execute(select(training).where(training.c.policy == pack.id,
                                                                               training.c.course == c.id))}
            extra: dict[str, dict[str, Any]] = {}
            lacking = []
            for p in active:
                r = rows.get(p.email)
                if r is not None and r.completed_at is not None:
                    continue
                due = utc(r.due_at) if r is not None else None
                extra[p.email] = {"assigned": r is not None, "due": due.date().isoformat() if due else None,
                                  "overdue": bool(due and due < t)}
                lacking.append(p)
            out.append({"course": c.id, "title": c.title, "clause": c.clause, "missing": len(lacking),
                        "departments": by_department(lacking, extra)})
    return {"policy": pack.id, "courses": out}
