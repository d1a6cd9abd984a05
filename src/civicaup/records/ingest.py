"""Getting messages into the archive: the journal hook (`add_message`, one message) and mailbox imports
(`import_paths`: mbox, Maildir, .eml). Imports read, hash, parse and compress in worker processes, a chunk
of messages at a time (a chunk whose originals the archive already holds is not parsed again); this process
then stores a batch at a time: the new originals appended to a segment and fsync'ed once, then one
transaction with their location rows, the message rows, addresses, attachment names and full-text rows,
each inserted with one executemany in id order. Either way the original is on disk before its row is
committed: a row never exists without its original. The parsers run below this process's priority, and on
SQLite a second thread copies committed pages back from the WAL (records/checkpoint.py), so the storing
thread, the serial part, spends its time inserting.
"""
from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import os
import re
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import SQLAlchemyError

from civicaup.errors import InputError
from civicaup.operations import metrics
from civicaup.records import blobs, packing, segments
from civicaup.records.checkpoint import Checkpointer
from civicaup.records.extract import Extracted, extract
from civicaup.records.keys import allocate, message_key
from civicaup.records.segments import Location
from civicaup.records.schedules import Assigner, Person, schedule_for
from civicaup.records.sources import Ref, check_paths, iter_refs
from civicaup.stores import partitions
from civicaup.stores.records_tables import archive_messages as M
from civicaup.stores.tables import people

BATCH = 1000  # messages per transaction (and per fsync of the segment) on PostgreSQL
# SQLite: a bigger transaction costs much less per message. Each commit writes every B-tree page the batch
# touched to the WAL once, and the hash-keyed indexes (the originals, (policy, sha256)) and the address
# indexes take their keys in random order, so at city scale a batch touches most of their leaf pages
# whatever its size: 5,000 a commit instead of 1,000 took a fifth less CPU in the importing process at
# 100,000 messages (bench/archive.py; docs/records.md has the figures). A batch is also closed once its payloads reach BATCH_BYTES, so a
# mailbox of large messages never holds more than that in memory per batch.
SQLITE_BATCH = 5000
BATCH_BYTES = 64 << 20
WORKER_NICE = 10  # the parser processes' niceness above the importing process (see _init_worker)
CHUNK = 32  # messages per task of a worker process (one "already stored?" query each)
IN_FLIGHT = 4000 // CHUNK  # chunks read ahead of the database, so a huge mailbox never sits in memory whole


# ---------------------------------------------------------------- preparing (in worker processes)

class Prepared(NamedTuple):
    """A parsed message, ready for the database but for its id (which needs the database)."""
    source: str
    sha256: str
    size: int
    message_id: str
    date: datetime | None
    date_source: str
    from_addr: str
    from_name: str
    to: str
    cc: str
    subject: str
    attachments: str
    series: str
    series_by: str
    text_z: bytes | None
    addresses: tuple[tuple[str, str, str], ...]  # (kind, address, reversed domain)
    attachment_names: tuple[str, ...]  # lowercased
    body: str
    decision: dict[str, Any] | None = None  # from the mail path's journal header, when imported from it


class Item(NamedTuple):
    """A prepared message with the payload to store for its original (segments.encode)."""
    prepared: Prepared
    payload: bytes
    flags: int


@dataclass(frozen=True)
class Added:
    id: int
    sha256: str
    duplicate: bool


@dataclass
class ImportReport:
    imported: int = 0
    duplicate: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"imported": self.imported, "duplicate": self.duplicate, "failed": self.failed,
                "failures": [{"source": s, "reason": r} for s, r in self.failures[:100]],
                "seconds": round(self.seconds, 3)}


def assigner_for(engine: Engine, policy: str) -> Assigner:
    from civicaup.policy.registry import get_pack

    pack = get_pack(policy)
    with engine.connect() as conn:
        rows = conn.execute(select(people.c.email, people.c.department, people.c.roles)
                            .where(people.c.policy == policy, people.c.active.is_(True))).all()
    directory = {r.email: Person(r.department or "", tuple(r.roles or ())) for r in rows}
    return Assigner(schedule_for(pack.pack.jurisdiction.state, policy), directory)


def _rdomain(address: str) -> str:
    """The domain with its labels reversed (org.kirkwoodmo.lists), so a domain filter finds subdomains."""
    return ".".join(reversed(address.rpartition("@")[2].strip(".").split(".")))[:255]


_PG_SEPARATORS = re.compile(r"[^\w\s]+|_+")


def prepare(ex: Extracted, source: str, assigner: Assigner, keep_text: bool) -> Prepared:
    parties = {ex.from_addr, *ex.to, *ex.cc, *ex.bcc} - {""}
    series, by = assigner.assign(ex.from_addr, parties, ex.subject, list(ex.attachments))
    addrs: dict[tuple[str, str], tuple[str, str, str]] = {}
    for kind, values in (("from", (ex.from_addr,)), ("to", ex.to), ("cc", ex.cc), ("bcc", ex.bcc)):
        for a in values:
            if a:
                addrs.setdefault((kind, a), (kind, a, _rdomain(a)))
    return Prepared(source[:1000], ex.sha256, ex.size, ex.message_id, ex.date, ex.date_source, ex.from_addr,
                    ex.from_name, ", ".join(ex.to), ", ".join(ex.cc), ex.subject, "\n".join(ex.attachments),
                    series, by,
                    packing.pack_text(ex.subject, ex.body) if keep_text else None,
                    tuple(addrs.values()), tuple(n.lower()[:255] for n in ex.attachments),
                    # PostgreSQL's parser keeps URLs, addresses and paths whole; split them as FTS5 does
                    ex.body if keep_text else _PG_SEPARATORS.sub(" ", ex.body))


_WORKER: dict[str, Any] = {}  # set before the worker pool forks: the assigner, whether to keep text, the engine
SQLITE_CACHE_KIB = 65536  # page cache of the importing connection: the indexes' working set at city scale
SQLITE_CHECKPOINT_PAGES = 10000  # WAL pages between checkpoints while importing (SQLite's default is 1,000)


JOURNAL_HEADER = b"X-Civicaup-Journal:"


def strip_journal(raw: bytes) -> tuple[bytes, dict[str, Any] | None]:
    """A message from the mail path's journal Maildir starts with one X-Civicaup-Journal header (base64 JSON
    with the envelope and the Decision): archive the original bytes, keep the decision."""
    if not raw.startswith(JOURNAL_HEADER):
        return raw, None
    lines = raw.split(b"\n")
    n = 1
    while n < len(lines) and lines[n][:1] in (b" ", b"\t"):
        n += 1
    value = b"".join(line.strip() for line in [lines[0][len(JOURNAL_HEADER):], *lines[1:n]])
    try:
        record = json.loads(base64.b64decode(value).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return raw, None
    return b"\n".join(lines[n:]), record if isinstance(record, dict) else None


def _known(shas: list[str]) -> set[str]:
    """In a worker: which originals the archive holds already (its own connection, made after the fork)."""
    engine = _WORKER.get("engine")
    if engine is None or not shas:
        return set()
    with engine.connect() as conn:
        return blobs.stored(conn, shas)


def _prepare_chunk(items: list[Ref]) -> list[tuple[Ref, str, Any]]:
    """In a worker: read, hash, parse, classify and compress a chunk of messages. Each result is ("ok", Item),
    ("stored", sha256) when the archive holds that original already (most likely a duplicate: the database
    decides, and parsing is skipped), or ("error", sentence). Never raises."""
    out: list[tuple[Ref, str, Any]] = []
    read: list[tuple[int, bytes, dict[str, Any] | None, str]] = []
    for item in items:
        try:
            raw = item.read()
        except OSError as exc:
            out.append((item, "error", f"unreadable: {exc.strerror or exc}"))
            continue
        if isinstance(raw, str):
            out.append((item, "error", raw))
            continue
        raw, journal = strip_journal(raw)
        read.append((len(out), raw, journal, hashlib.sha256(raw).hexdigest()))
        out.append((item, "error", "not prepared"))
    try:
        known = _known([sha for _, _, journal, sha in read if journal is None])
    except SQLAlchemyError:
        known = set()  # the database answers later, in the importing process
    for n, raw, journal, sha in read:
        item = out[n][0]
        if sha in known:
            out[n] = (item, "stored", sha)
            continue
        try:
            p = _parse(raw, sha, item.source)
            if journal is not None:
                p = p._replace(decision=journal.get("decision"),
                               source=f"journal {journal.get('queue_id') or ''}".strip()[:1000])
            out[n] = (item, "ok", Item(p, *segments.encode(raw)))
        except Exception as exc:  # noqa: BLE001 - one bad message is counted, never fatal
            out[n] = (item, "error", f"{type(exc).__name__}: {str(exc)[:200]}")
    return out


def _parse(raw: bytes, sha: str, source: str) -> Prepared:
    return prepare(extract(raw, sha256=sha), source, _WORKER["assigner"], _WORKER["keep_text"])


def _chunks(items: Iterable[Ref]) -> Iterator[list[Ref]]:
    chunk: list[Ref] = []
    for it in items:
        chunk.append(it)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _init_worker() -> None:
    # Parsing runs at a lower priority than this process's storing thread, the import's one serial stage:
    # with two parsers and the importer on two cores, equal shares left the storing thread two thirds of a
    # core and it set the pace (1,450 against 1,700 messages/s importing 100,000 more into a
    # 1,000,000-message archive; docs/records.md). The parsers still get every cycle the store leaves.
    try:
        os.nice(WORKER_NICE)
    except OSError:  # not permitted here: parse at the same priority
        pass
    engine = _WORKER.get("engine")
    if engine is not None:
        engine.dispose(close=False)  # the parent's pooled connections are not this process's to use


def _prepared(items: Iterable[Ref], jobs: int) -> Iterator[tuple[Ref, str, Any]]:
    if jobs <= 1:
        for chunk in _chunks(items):
            yield from _prepare_chunk(chunk)
        return
    # A process pool fed at most IN_FLIGHT chunks ahead, results in order. Not multiprocessing.Pool: its
    # worker-handler thread waits on the result pipe without reading it, so it spins (taking the GIL)
    # whenever a result is waiting to be read, and the thread storing batches in this process waited for
    # the GIL behind it (a third of the GIL's time in a profile of an import into a 1,000,000-message
    # archive). The executor's one manager thread reads what wakes it. A worker that dies raises
    # BrokenProcessPool here instead of hanging the import.
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker) as pool:
        pending: deque[Future[list[tuple[Ref, str, Any]]]] = deque()
        try:
            for chunk in _chunks(items):
                pending.append(pool.submit(_prepare_chunk, chunk))
                if len(pending) >= IN_FLIGHT:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()
        except BaseException:  # the import stopped (an error, or the caller closed us): drop what is queued
            pool.shutdown(wait=True, cancel_futures=True)
            raise


# ---------------------------------------------------------------- insertion

def _ts(d: datetime, sqlite: bool) -> Any:
    """SQLite keeps SQLAlchemy's DateTime text form (UTC); PostgreSQL takes the aware datetime."""
    d = d.astimezone(timezone.utc)
    return d.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else d


_INSERT_MESSAGE = ("INSERT INTO archive_messages (id, policy, sha256, message_id, date, date_source, from_addr, "
                   "from_name, to_addrs, cc_addrs, subject, attachments, size, source, decision_action, decision, "
                   "series, series_by, text_z, imported_at) VALUES "
                   "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {json}, ?, ?, ?, ?)")
_INSERT_ADDRESS = "INSERT INTO archive_addresses (message, kind, address, domain) VALUES (?, ?, ?, ?)"
_INSERT_ATTACHMENT = "INSERT INTO archive_attachments (message, position, name) VALUES (?, ?, ?)"
_INSERT_FTS_SQLITE = "INSERT INTO archive_fts(rowid, subject, body) VALUES (?, ?, ?)"
_INSERT_FTS_PG = ("INSERT INTO archive_fts(id, policy, tsv) VALUES (%s, %s, setweight(to_tsvector('english', %s), "
                  "'A') || setweight(to_tsvector('english', %s), 'B'))")


def _exec(conn: Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        if conn.dialect.name != "sqlite":
            sql = sql.replace("?", "%s")
        conn.exec_driver_sql(sql, rows)


def insert_batch(conn: Connection, policy: str, batch: list[Prepared], now: datetime | None = None,
                 decisions: dict[str, dict[str, Any]] | None = None) -> list[Added]:
    """Insert new messages (skipping ones this policy already holds) in the caller's transaction."""
    now = now or datetime.now(timezone.utc)
    sqlite = conn.dialect.name == "sqlite"
    decisions = decisions or {}
    shas = list(dict.fromkeys(p.sha256 for p in batch))
    # PostgreSQL: the city's partitions for these months, then one importer of this city at a time (a
    # partitioned table cannot hold (policy, sha256) unique, so duplicates are kept out here)
    partitions.before_insert(conn, "archive_messages", policy, [message_key(p.date or now, p.sha256) for p in batch],
                             one_writer=True)
    existing: dict[str, int] = {}
    for start in range(0, len(shas), 900):
        existing.update(conn.execute(select(M.c.sha256, M.c.id).where(
            M.c.policy == policy, M.c.sha256.in_(shas[start:start + 900]))).all())
    fresh: list[Prepared] = []
    first: dict[str, int] = {}
    for p in batch:
        if p.sha256 not in existing and p.sha256 not in first:
            first[p.sha256] = len(fresh)
            fresh.append(p)
    keys = allocate(conn, [message_key(p.date or now, p.sha256) for p in fresh])
    msgs, addrs, atts, fts = [], [], [], []
    imported = _ts(now, sqlite)
    for p, key in zip(fresh, keys):
        decision = decisions.get(p.sha256, p.decision)
        msgs.append((key, policy, p.sha256, p.message_id, _ts(p.date or now, sqlite),
                     p.date_source if p.date else "imported", p.from_addr, p.from_name, p.to, p.cc, p.subject,
                     p.attachments, p.size, p.source, (decision or {}).get("action"),
                     json.dumps(decision) if decision is not None else None, p.series, p.series_by, p.text_z,
                     imported))
        addrs.extend((key, kind, a, d) for kind, a, d in p.addresses)
        atts.extend((key, i, n) for i, n in enumerate(p.attachment_names))
        fts.append((key, p.subject, p.body) if sqlite else (key, policy, _PG_SEPARATORS.sub(" ", p.subject), p.body))
    # in id order: FTS5 flushes its pending terms whenever a rowid is lower than the one before, and every
    # B-tree takes sorted keys with fewer page splits
    msgs.sort(key=lambda r: r[0])
    addrs.sort()
    atts.sort()
    fts.sort(key=lambda r: r[0])
    _exec(conn, _INSERT_MESSAGE.format(json="?" if sqlite else "CAST(? AS json)"), msgs)
    _exec(conn, _INSERT_ADDRESS, addrs)
    _exec(conn, _INSERT_ATTACHMENT, atts)
    if sqlite:
        _exec(conn, _INSERT_FTS_SQLITE, fts)
    elif fts:
        conn.exec_driver_sql(_INSERT_FTS_PG, fts)  # already %s placeholders
    out: list[Added] = []
    seen: set[str] = set()
    for p in batch:
        if p.sha256 in existing:
            out.append(Added(existing[p.sha256], p.sha256, True))
        else:
            out.append(Added(keys[first[p.sha256]], p.sha256, p.sha256 in seen))
            seen.add(p.sha256)
    return out


def _insert(engine: Engine, policy: str, batch: list[Prepared], locs: dict[str, Location], report: ImportReport,
            *, strict: bool, decisions: dict[str, dict[str, Any]] | None,
            checkpointer: Checkpointer | None = None) -> tuple[list[Added], bool]:
    """One transaction: location rows of the originals appended for this batch, then the messages.
    Returns what was added and whether every location row was added (False: some may not have been).
    With a checkpointer (SQLite imports) this connection leaves WAL checkpoints to it."""
    if checkpointer is not None:
        checkpointer.before_write()
    try:
        with engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:  # settings of this connection: a bigger page cache, checkpoints rarer or elsewhere
                conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
                conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint = {0 if checkpointer else SQLITE_CHECKPOINT_PAGES}")
                conn.commit()  # ends the transaction SQLAlchemy began for the pragmas (no BEGIN reached SQLite)
            try:
                with conn.begin():
                    mine = {p.sha256: locs[p.sha256] for p in batch if p.sha256 in locs}
                    complete = blobs.record(conn, mine) == len(mine)
                    added = insert_batch(conn, policy, batch, decisions=decisions)
            finally:
                if sqlite and checkpointer:  # the pooled connection goes back checkpointing for itself
                    conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint = {SQLITE_CHECKPOINT_PAGES}")
                    conn.rollback()
    except SQLAlchemyError as exc:
        if strict:
            raise
        if len(batch) == 1:
            report.failed += 1
            report.failures.append((batch[0].source, f"database: {str(getattr(exc, 'orig', exc))[:200]}"))
            return [], False
        # one bad message (or a concurrent importer) must not lose the batch: go one by one
        return [a for p in batch for a in _insert(engine, policy, [p], locs, report, strict=False,
                                                   decisions=decisions)[0]], False
    if checkpointer is not None:
        checkpointer.after_commit()
    for a in added:
        if a.duplicate:
            report.duplicate += 1
        else:
            report.imported += 1
    return added, complete


def store_items(engine: Engine, policy: str, items: list[Item], writer: segments.Writer, report: ImportReport, *,
                strict: bool = False, decisions: dict[str, dict[str, Any]] | None = None,
                checkpointer: Checkpointer | None = None) -> list[Added]:
    """Store a batch: append the originals the archive does not hold yet, fsync once, commit the rows.
    Copies no row ends up pointing at (a failed row, another importer first with the same message) are
    zeroed at once."""
    with blobs.Maintenance(shared=True):
        with engine.connect() as conn:
            have = blobs.stored(conn, [it.prepared.sha256 for it in items])
        locs: dict[str, Location] = {}
        try:
            for it in items:
                sha = it.prepared.sha256
                if sha not in have and sha not in locs:
                    locs[sha] = writer.append(sha, it.payload, it.prepared.size, it.flags)
            writer.sync()
        except OSError as exc:  # a full disk, a read-only mount: nothing of this batch is committed
            raise blobs.BlobError(f"cannot write the archive's originals under {writer.root}: "
                                  f"{exc.strerror or exc}") from None
        try:
            added, complete = _insert(engine, policy, [it.prepared for it in items], locs, report, strict=strict,
                                      decisions=decisions, checkpointer=checkpointer)
        except BaseException:
            writer.discard(list(locs.values()))  # strict, and the commit failed: no row points at them
            raise
        if locs and not complete:
            with engine.connect() as conn:
                kept = blobs.locate(conn, locs)
            writer.discard([loc for sha, loc in locs.items() if kept.get(sha) != loc])
    writer.release()
    return added


# ---------------------------------------------------------------- the two ways in

def add_message(engine: Engine, raw: bytes, *, policy: str, decision: dict[str, Any] | None,
                source: str) -> Added:
    """Archive one message from the mail path (journal hook). Idempotent: the same bytes again are a
    duplicate, and a decision arriving for a message archived without one is recorded. The original is
    fsync'ed before its row is committed."""
    if not isinstance(raw, (bytes, bytearray)) or not raw:
        raise InputError("archive: a message must be non-empty bytes")
    raw = bytes(raw)
    sha = hashlib.sha256(raw).hexdigest()
    p = prepare(extract(raw, sha256=sha), source, assigner_for(engine, policy), engine.dialect.name == "sqlite")
    decisions = {sha: decision} if decision is not None else None
    report = ImportReport()
    with blobs.writer() as w:
        added = store_items(engine, policy, [Item(p, *segments.encode(raw))], w, report, strict=True,
                            decisions=decisions)[0]
    metrics.archived(policy, report)
    if added.duplicate and decision is not None:
        with engine.begin() as conn:
            conn.execute(update(M).where(M.c.id == added.id, M.c.decision.is_(None))
                         .values(decision=decision, decision_action=decision.get("action")))
    return added


def import_items(engine: Engine, items: Iterable[Ref], *, policy: str, jobs: int | None = None,
                 progress: Callable[[ImportReport], None] | None = None) -> ImportReport:
    report, start = ImportReport(), time.perf_counter()
    _WORKER.update(assigner=assigner_for(engine, policy), keep_text=engine.dialect.name == "sqlite", engine=engine)
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    batch_size = SQLITE_BATCH if engine.dialect.name == "sqlite" else BATCH
    batch: list[Item] = []
    batch_bytes = 0
    stored: list[tuple[Ref, str]] = []  # originals the archive holds already: duplicates, unless not ours
    # batches are stored by one thread while this one collects the next (SQLite and the fsync release the
    # GIL): at most one batch waits, so memory stays bounded and errors surface at the next flush
    storing: list[Future[list[Added]]] = []

    # the checkpointer outlives the storing thread (a with statement exits its managers last to first)
    with blobs.writer() as writer, Checkpointer.for_engine(engine) as checkpointer, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-store") as pool:
        def flush() -> None:
            nonlocal batch, stored, batch_bytes
            if stored:
                shas = [sha for _, sha in stored]
                have: set[str] = set()
                with engine.connect() as conn:
                    for i in range(0, len(shas), 900):
                        have |= set(conn.scalars(select(M.c.sha256).where(M.c.policy == policy,
                                                                         M.c.sha256.in_(shas[i:i + 900]))))
                for ref, sha in stored:
                    if sha in have:
                        report.duplicate += 1
                        continue
                    raw = ref.read()  # archived for another policy: parse here
                    if isinstance(raw, bytes):
                        raw, _ = strip_journal(raw)
                        batch.append(Item(_parse(raw, sha, ref.source), *segments.encode(raw)))
                stored = []
            if storing:
                storing.pop().result()
            if batch:
                storing.append(pool.submit(store_items, engine, policy, batch, writer, report,
                                           checkpointer=checkpointer))
                batch = []
            batch_bytes = 0
            metrics.archived(policy, report)  # what this batch added: civicaup_archive_ingested_total
            if progress:
                progress(report)

        for ref, kind, result in _prepared(items, jobs):
            if kind == "ok":
                batch.append(result)
                batch_bytes += len(result.payload) + len(result.prepared.body)
            elif kind == "stored":
                stored.append((ref, result))
            else:
                report.failed += 1
                report.failures.append((ref.source, str(result)))
            if len(batch) + len(stored) >= batch_size or batch_bytes >= BATCH_BYTES:
                flush()
        flush()
        if storing:
            storing.pop().result()
            metrics.archived(policy, report)
    report.seconds = time.perf_counter() - start
    return report


def import_paths(engine: Engine, paths: list[Path], *, policy: str, jobs: int | None = None,
                 progress: Callable[[ImportReport], None] | None = None) -> ImportReport:
    """Import mbox files, Maildirs, .eml files or folders of them."""
    check_paths(paths)
    return import_items(engine, iter_refs(paths), policy=policy, jobs=jobs, progress=progress)
