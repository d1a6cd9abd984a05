"""The archive's records: reading them (hash-verified), finding them by reference, checking every original,
and removing them (retention only). Messages come in through civicaup.records.ingest, re-exported here:
`add_message` is the mail path's journal hook.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select

from civicaup.errors import InputError
from civicaup.records import blobs, packing
from civicaup.records.ingest import (Added, ImportReport, add_message, assigner_for, import_items,  # noqa: F401
                                     import_paths)
from civicaup.records.keys import date_key, message_key  # noqa: F401
from civicaup.stores.records_tables import archive_addresses, archive_attachments, archive_messages as M
from civicaup.stores.records_tables import archive_originals as O

__all__ = ["Added", "ImportReport", "Record", "add_message", "assigner_for", "count", "date_key", "delete_records",
           "find_record", "import_items", "import_paths", "message_key", "original", "purge_freed",
           "record_from_row", "records_by_id", "verify"]


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


def records_by_id(conn: Connection, ids: list[int], policy: str | None = None) -> list[Record]:
    """The records with these ids, in that order; give the *policy* when known (PostgreSQL then reads only
    that city's partitions). SQLite is not given it: there `policy = ?` makes the planner walk the
    (policy, sha256) index, every record of the city, instead of looking the ids up (350 ms at 1,000,000)."""
    out: dict[int, Record] = {}
    by_policy = policy is not None and conn.dialect.name != "sqlite"
    for start in range(0, len(ids), 900):
        q = select(*RECORD_COLUMNS).where(M.c.id.in_(ids[start:start + 900]))
        for r in conn.execute(q.where(M.c.policy == policy) if by_policy else q):
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


def original(record: Record, engine: Engine | None = None) -> bytes:
    """The original bytes, hash-verified (BlobError if missing or altered). `engine` defaults to the
    configured store."""
    return blobs.get(record.sha256, engine)


def count(engine: Engine, policy: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(M).where(M.c.policy == policy)).scalar_one())


def verify(engine: Engine, policy: str) -> tuple[int, list[tuple[str, str]]]:
    """Check every original of a policy against its hash: (records checked, [(ref, problem)]). Originals are
    read in the order they lie in their segments."""
    bad: list[tuple[str, str]] = []
    n = 0
    with engine.connect() as conn:
        rows = conn.execute(select(M.c.sha256, O.c.segment, O.c.byte_offset, O.c.byte_length)
                            .select_from(M.outerjoin(O, O.c.sha256 == M.c.sha256))
                            .where(M.c.policy == policy).order_by(O.c.segment, O.c.byte_offset))
        for r in rows:
            n += 1
            loc = blobs.Location(r.segment, r.byte_offset, r.byte_length) if r.segment is not None else None
            try:
                blobs.read_at(r.sha256, loc)
            except blobs.BlobError as exc:
                bad.append((r.sha256[:12], str(exc)))
    return n, bad


# ---------------------------------------------------------------- removal (retention only)

def delete_records(engine: Engine, ids: list[int]) -> list[str]:
    """Remove rows and index entries, then destroy the originals no other row uses: their payloads are
    overwritten with zeros and the segments they were in compacted (see civicaup.records.blobs). Returns
    the hashes of the records removed."""
    with blobs.Maintenance(shared=False):
        blobs.finish_pending(engine)
        with engine.connect() as conn:  # commit as you go: the pragmas are set outside the transaction
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                conn.exec_driver_sql("PRAGMA secure_delete = ON")  # freed pages are zeroed, not left readable
                conn.commit()
            try:
                shas = _delete_rows(conn, ids)
                still = set()
                for start in range(0, len(shas), 900):
                    still |= set(conn.scalars(select(M.c.sha256).where(M.c.sha256.in_(shas[start:start + 900]))))
                blobs.forget(conn, sorted(set(shas) - still))
                conn.commit()
            finally:
                conn.rollback()
                if sqlite:
                    conn.exec_driver_sql("PRAGMA secure_delete = OFF")
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # no old page copies left in the WAL
                    conn.commit()
        touched = blobs.finish_pending(engine)
        if touched:
            blobs.compact_locked(engine, touched)
    return shas


FTS_MERGE_PAGES = 2000  # index pages one merge step writes: under a second, so other writers only wait


def purge_freed(engine: Engine) -> None:
    """After a disposition run, SQLite: merge the full-text index down to one segment, so the deleted
    records' words leave it (a contentless FTS5 index only marks them deleted until its segments merge),
    with freed pages zeroed, and empty the WAL. The merge goes in short steps, each its own transaction
    (about 50 s in all at 1,000,000 messages on the reference machine, no step over a second), so imports
    and other writers carry on meanwhile. PostgreSQL keeps deleted rows' bytes in dead tuples until their
    space is reused (VACUUM FULL rewrites the tables); see docs/records.md."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA secure_delete = ON")
        conn.commit()
        raw = conn.connection.dbapi_connection
        try:
            while True:  # FTS5's own test for "nothing left to merge": a step that changes fewer than 2 rows
                before = raw.total_changes  # type: ignore[union-attr]
                conn.exec_driver_sql("INSERT INTO archive_fts(archive_fts, rank) VALUES ('merge', ?)",
                                     (-FTS_MERGE_PAGES,))
                conn.commit()
                if raw.total_changes - before < 2:  # type: ignore[union-attr]
                    break
        finally:
            conn.rollback()
            conn.exec_driver_sql("PRAGMA secure_delete = OFF")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.commit()


def _delete_rows(conn: Connection, ids: list[int]) -> list[str]:
    shas: list[str] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        rows = conn.execute(select(M.c.id, M.c.sha256, M.c.text_z).where(M.c.id.in_(chunk))).all()
        if conn.dialect.name == "sqlite":
            fts = []
            for r in rows:
                if r.text_z is not None:
                    subject, body = packing.unpack_text(r.text_z)
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
    return shas
