"""The archive's records: reading them (hash-verified), finding them by reference, checking every original,
and removing them (retention only). Messages come in through civicaup.records.ingest, re-exported here:
`add_message` is the mail path's journal hook.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select

from civicaup.errors import InputError
from civicaup.records import blobs
from civicaup.records.ingest import (Added, ImportReport, add_message, assigner_for, import_items,  # noqa: F401
                                     import_paths)
from civicaup.records.keys import date_key, message_key  # noqa: F401
from civicaup.stores.records_tables import archive_addresses, archive_attachments, archive_messages as M

__all__ = ["Added", "ImportReport", "Record", "add_message", "assigner_for", "count", "date_key", "delete_records",
           "find_record", "import_items", "import_paths", "message_key", "original", "record_from_row",
           "records_by_id", "verify"]


# ---------------------------------------------------------------- reading

@dataclass(frozen=True)
class Record:
    id: int
    policy: str
    sha256: str
    message_id: str
    date: datetime
    from_addr: str
    from_name: str
    to: str
    cc: str
    subject: str
    attachments: tuple[str, ...]
    size: int
    series: str
    series_by: str
    decision_action: str | None
    source: str

    @property
    def ref(self) -> str:
        return self.sha256[:12]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "ref": self.ref, "sha256": self.sha256, "message_id": self.message_id,
                "date": _iso(self.date), "from": self.from_addr, "from_name": self.from_name,
                "to": [a for a in self.to.split(", ") if a], "cc": [a for a in self.cc.split(", ") if a],
                "subject": self.subject, "attachments": list(self.attachments), "size": self.size,
                "series": self.series, "series_by": self.series_by, "decision": self.decision_action,
                "source": self.source}


def _iso(d: datetime) -> str:
    return (d if d.tzinfo else d.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).isoformat()


RECORD_COLUMNS = (M.c.id, M.c.policy, M.c.sha256, M.c.message_id, M.c.date, M.c.from_addr, M.c.from_name,
                  M.c.to_addrs, M.c.cc_addrs, M.c.subject, M.c.attachments, M.c.size, M.c.series, M.c.series_by,
                  M.c.decision_action, M.c.source)


def record_from_row(r: Any) -> Record:
    when = r.date if r.date.tzinfo else r.date.replace(tzinfo=timezone.utc)  # SQLite keeps UTC, naive
    return Record(r.id, r.policy, r.sha256, r.message_id, when, r.from_addr, r.from_name, r.to_addrs,
                  r.cc_addrs, r.subject, tuple(a for a in (r.attachments or "").split("\n") if a), r.size, r.series,
                  r.series_by, r.decision_action, r.source)


def records_by_id(conn: Connection, ids: list[int]) -> list[Record]:
    out: dict[int, Record] = {}
    for start in range(0, len(ids), 900):
        for r in conn.execute(select(*RECORD_COLUMNS).where(M.c.id.in_(ids[start:start + 900]))):
            out[r.id] = record_from_row(r)
    return [out[i] for i in ids if i in out]


def find_record(engine: Engine, policy: str, ref: str) -> Record:
    """A record by its id, or by a prefix (6+ hex digits) of its SHA-256 as `archive search` shows it."""
    ref = ref.strip().lower()
    q = select(*RECORD_COLUMNS).where(M.c.policy == policy)
    if ref.isdigit() and len(ref) >= 15:
        q = q.where(M.c.id == int(ref))
    elif len(ref) >= 6 and all(c in "0123456789abcdef" for c in ref):
        q = q.where(M.c.sha256 >= ref, M.c.sha256 < ref + "g")  # a prefix, as an index range
    else:
        raise InputError(f"{ref!r} is not a record reference (12 hex digits from `archive search`, or an id)")
    with engine.connect() as conn:
        rows = conn.execute(q.limit(2)).all()
    if not rows:
        raise InputError(f"no record {ref} in {policy}")
    if len(rows) > 1:
        raise InputError(f"{ref} names more than one record: give more digits")
    return record_from_row(rows[0])


def original(record: Record) -> bytes:
    """The original bytes, hash-verified (BlobError if missing or altered)."""
    return blobs.get(record.sha256)


def count(engine: Engine, policy: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(M).where(M.c.policy == policy)).scalar_one())


def verify(engine: Engine, policy: str) -> tuple[int, list[tuple[str, str]]]:
    """Check every original of a policy against its hash: (records checked, [(ref, problem)])."""
    bad: list[tuple[str, str]] = []
    n = 0
    with engine.connect() as conn:
        for sha in conn.scalars(select(M.c.sha256).where(M.c.policy == policy).order_by(M.c.id)):
            n += 1
            try:
                blobs.get(sha)
            except blobs.BlobError as exc:
                bad.append((sha[:12], str(exc)))
    return n, bad


# ---------------------------------------------------------------- removal (retention only)

def delete_records(engine: Engine, ids: list[int]) -> list[str]:
    """Remove rows and index entries, then originals no other row uses. Returns the hashes removed."""
    shas: list[str] = []
    with engine.begin() as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = conn.execute(select(M.c.id, M.c.sha256, M.c.text_z).where(M.c.id.in_(chunk))).all()
            if conn.dialect.name == "sqlite":
                fts = []
                for r in rows:
                    if r.text_z is not None:
                        subject, _, body = zlib.decompress(r.text_z).decode("utf-8").partition("\x00")
                        fts.append((r.id, subject, body))
                if fts:
                    conn.exec_driver_sql("INSERT INTO archive_fts(archive_fts, rowid, subject, body) "
                                         "VALUES ('delete', ?, ?, ?)", fts)
            else:
                conn.exec_driver_sql("DELETE FROM archive_fts WHERE id = ANY(%s)", ([r.id for r in rows],))
            conn.execute(delete(archive_addresses).where(archive_addresses.c.message.in_(chunk)))
            conn.execute(delete(archive_attachments).where(archive_attachments.c.message.in_(chunk)))
            conn.execute(delete(M).where(M.c.id.in_(chunk)))
            shas.extend(r.sha256 for r in rows)
        still = set()
        for start in range(0, len(shas), 900):
            still |= set(conn.scalars(select(M.c.sha256).where(M.c.sha256.in_(shas[start:start + 900]))))
    for sha in set(shas) - still:
        blobs.delete(sha)
    return shas
