"""Disposition: what the schedule lets the city delete, and deleting it with a certificate.

A record is due when its series has a finite period and the record's date is older than that period.
It is kept anyway while a legal hold or an open public-records request covers it. A real run deletes the
due records in chunks; after each chunk it writes a disposition certificate to the audit log: what was
destroyed (hash, date, message id, sender, subject), which series, under which schedule item and law,
when and by whom.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, func, select

from civicaup.policy.registry import get_pack
from civicaup.records.archive import date_key, delete_records, purge_freed
from civicaup.records.authz import require
from civicaup.records.holds import held_ids
from civicaup.records.schedules import Schedule, schedule_for
from civicaup.stores import audit
from civicaup.stores.records_tables import archive_messages as M

CERTIFICATE_CHUNK = 2000


@dataclass(frozen=True)
class Due:
    id: int
    sha256: str
    date: datetime
    message_id: str
    from_addr: str
    subject: str
    series: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "ref": self.sha256[:12], "sha256": self.sha256, "date": _iso(self.date),
                "message_id": self.message_id, "from": self.from_addr, "subject": self.subject[:120],
                "series": self.series}


def _iso(d: datetime) -> str:
    return (d if d.tzinfo else d.replace(tzinfo=timezone.utc)).isoformat()


@dataclass
class Plan:
    policy: str
    schedule: Schedule
    now: datetime
    due: list[Due] = field(default_factory=list)
    kept: dict[str, list[str]] = field(default_factory=dict)  # ref -> holds/requests keeping an expired record
    unknown_series: int = 0

    def by_series(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.due:
            out[d.series] = out.get(d.series, 0) + 1
        return out

    def to_json(self, *, dry_run: bool) -> dict[str, Any]:
        series = {s.id: s for s in self.schedule.series}
        return {
            "policy": self.policy, "dry_run": dry_run, "as_of": self.now.isoformat(),
            "schedule": self.schedule.title, "authority": self.schedule.authority,
            "due": len(self.due), "kept_by_hold_or_request": len(self.kept),
            "unknown_series": self.unknown_series,
            "series": [{"id": sid, "title": series[sid].title, "reference": series[sid].reference,
                        "retention": series[sid].retention.describe(), "confirm": series[sid].confirm, "due": n}
                       for sid, n in sorted(self.by_series().items())],
            "records": [d.to_json() for d in self.due],
            "kept": [{"ref": ref, "by": why} for ref, why in sorted(self.kept.items())],
        }


def plan(engine: Engine, policy: str, *, now: datetime | None = None) -> Plan:
    pack = get_pack(policy)
    now = now or datetime.now(timezone.utc)
    schedule = schedule_for(pack.pack.jurisdiction.state, policy)
    result = Plan(policy, schedule, now)
    with engine.connect() as conn:
        keep = held_ids(conn, policy, pack.tz)
        known_series = [s.id for s in schedule.series]
        result.unknown_series = int(conn.execute(select(func.count()).select_from(M).where(
            M.c.policy == policy, M.c.series.not_in(known_series))).scalar_one())
        for s in schedule.series:
            cutoff = s.retention.cutoff(now)
            if cutoff is None:
                continue
            rows = conn.execute(select(M.c.id, M.c.sha256, M.c.date, M.c.message_id, M.c.from_addr, M.c.subject,
                                       M.c.series)
                                # coalesce keeps SQLite walking ids, not the (policy, sha256) index;
                                # PostgreSQL needs the plain column to read only this city's partitions
                                .where(M.c.policy == policy if conn.dialect.name == "postgresql"
                                       else func.coalesce(M.c.policy, "") == policy, M.c.series == s.id,
                                       M.c.id < date_key(cutoff))
                                .order_by(M.c.id))
            for r in rows:
                if r.id in keep:
                    result.kept[r.sha256[:12]] = keep[r.id]
                    continue
                result.due.append(Due(r.id, r.sha256, r.date, r.message_id, r.from_addr, r.subject, r.series))
    return result


def run(engine: Engine, policy: str, *, dry_run: bool, actor: str | None, now: datetime | None = None
        ) -> tuple[Plan, list[int]]:
    """Plan, and unless `dry_run` dispose of the due records. Returns the plan and the audit entry ids of
    the certificates written."""
    if actor and not dry_run:
        require(engine, policy, actor, action="dispose of records")
    p = plan(engine, policy, now=now)
    if dry_run or not p.due:
        return p, []
    who = actor.lower() if actor else "cli (no --as given)"
    series = {s.id: s for s in p.schedule.series}
    run_id = uuid.uuid4().hex[:12]
    chunks = [p.due[i:i + CERTIFICATE_CHUNK] for i in range(0, len(p.due), CERTIFICATE_CHUNK)]
    entries = []
    for n, chunk in enumerate(chunks, 1):
        delete_records(engine, [d.id for d in chunk])
        used = sorted({d.series for d in chunk})
        certificate = {
            "certificate": "records disposition", "run": run_id, "part": n, "parts": len(chunks),
            "policy": policy, "disposed_at": datetime.now(timezone.utc).isoformat(), "disposed_by": who,
            "as_of": p.now.isoformat(), "schedule": p.schedule.title, "schedule_source": p.schedule.source,
            "authority": p.schedule.authority,
            "series": [{"id": sid, "title": series[sid].title, "reference": series[sid].reference,
                        "retention": series[sid].retention.describe(), "confirm": series[sid].confirm,
                        "count": sum(1 for d in chunk if d.series == sid)} for sid in used],
            "records": [d.to_json() for d in chunk],
            "method": "database rows and index entries deleted; each original's bytes overwritten with zeros "
                      "in its segment file, which is then compacted or deleted",
        }
        e = audit.append(engine, actor=who, action="retention-disposition",
                         subject=f"{len(chunk)} records disposed of (run {run_id}, part {n}/{len(chunks)})",
                         policy=policy, detail=certificate)
        entries.append(e.id)
    purge_freed(engine)
    return p, entries


def classify(engine: Engine, policy: str, ref: str, series_id: str, *, actor: str) -> tuple[str, str]:
    """The clerk files a record under a series (rules never override it again). Returns (old, new)."""
    from sqlalchemy import update

    from civicaup.records.archive import find_record

    person = require(engine, policy, actor, action="classify records")
    schedule = schedule_for(get_pack(policy).pack.jurisdiction.state, policy)
    series = schedule.get(series_id)
    rec = find_record(engine, policy, ref)
    with engine.begin() as conn:
        conn.execute(update(M).where(M.c.id == rec.id).values(series=series.id, series_by=f"clerk:{person.email}"))
    audit.append(engine, actor=person.email, action="records-classify", subject=f"record {rec.ref}", policy=policy,
                 detail={"record": rec.sha256, "from_series": rec.series, "to_series": series.id,
                         "reference": series.reference})
    return rec.series, series.id
