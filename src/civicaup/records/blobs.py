"""The archive's originals: the exact bytes of every message, stored once, hash-verified on every read.

New originals are records in append-only segment files under $CIVICAUP_HOME/archive/segments/ (the file
format, writers and locks are in civicaup.records.segments); the `archive_originals` table says where each
one is (one row per distinct SHA-256, shared by every policy that archived the message). Originals stored
by earlier versions as one file each, $CIVICAUP_HOME/archive/<aa>/<sha256> (gzip-compressed above 8 KiB),
are still read and disposed of where they are; `migrate_files` packs them into segments.

Disposition really removes the bytes: the rows go in one transaction, after which each record's payload is
overwritten with zeros in place and fsync'ed, and compaction rewrites the segments it was in without it
(a segment with no live record left is deleted). A crash between the commit and the overwrite is covered by
a small journal (segments/pending-destroy.jsonl) that the next disposition or compaction finishes first.
Ingest takes the maintenance lock shared, disposition and compaction take it exclusive, so a message
archived again while it is being disposed of never ends up with a row and no original.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import Connection, Engine, func, select

from civicaup.config import home
from civicaup.durable import fsync_dir
from civicaup.records import segments
from civicaup.records.segments import BlobError, Location, Writer  # noqa: F401 - re-exported
from civicaup.stores.records_tables import archive_messages as M, archive_originals as O

GZIP_MAGIC = b"\x1f\x8b"  # files of the earlier layout above 8 KiB
PENDING = "pending-destroy.jsonl"
MAINTENANCE = "maintenance.lock"
COMPACT_THRESHOLD = 0.25  # a segment is rewritten once this share of it is dead (disposed, torn, orphaned)


def base_dir() -> Path:
    return home() / "archive"


def segments_dir(base: Path | None = None) -> Path:
    return (base or base_dir()) / "segments"


def file_path(sha256: str, base: Path | None = None) -> Path:
    """Where the earlier layout kept an original as its own file."""
    return (base or base_dir()) / sha256[:2] / sha256


def writer(base: Path | None = None, **kw: Any) -> Writer:
    return Writer(segments_dir(base), **kw)


def _engine(engine: Engine | None) -> Engine:
    if engine is not None:
        return engine
    from civicaup.stores.db import open_store

    return open_store()


def _sql(conn: Connection, sql: str) -> str:
    return sql if conn.dialect.name == "sqlite" else sql.replace("?", "%s")


# ---------------------------------------------------------------- where originals are

def locate(conn: Connection, shas: Iterable[str]) -> dict[str, Location]:
    shas = list(dict.fromkeys(shas))
    out: dict[str, Location] = {}
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    for start in range(0, len(shas), 900):  # plain SQL: this runs twice per ingest batch
        chunk = shas[start:start + 900]
        rows = conn.exec_driver_sql("SELECT sha256, segment, byte_offset, byte_length FROM archive_originals "
                                    f"WHERE sha256 IN ({', '.join([mark] * len(chunk))})", tuple(chunk))
        for sha, segment, offset, length in rows:
            out[sha] = Location(segment, offset, length)
    return out


def _has_files(base: Path) -> bool:
    """Whether the earlier one-file-per-original layout is present (folders named by two hex digits)."""
    try:
        return any(len(n) == 2 and all(c in "0123456789abcdef" for c in n) for n in os.listdir(base))
    except FileNotFoundError:
        return False


def stored(conn: Connection, shas: Iterable[str], base: Path | None = None) -> set[str]:
    """Which of these originals the archive already holds (in a segment, or as a file of the earlier layout)."""
    shas = list(dict.fromkeys(shas))
    have = set(locate(conn, shas))
    base = base or base_dir()
    if len(have) < len(shas) and _has_files(base):
        have |= {s for s in shas if s not in have and file_path(s, base).exists()}
    return have


def record(conn: Connection, locations: dict[str, Location]) -> int:
    """Add location rows (a row already there for a hash wins: that copy is the one kept). Returns how many
    rows the database reports as added, or -1 where the driver does not say."""
    if not locations:
        return 0
    rows = sorted((sha, loc.segment, loc.offset, loc.length) for sha, loc in locations.items())
    result = conn.exec_driver_sql(_sql(conn, "INSERT INTO archive_originals (sha256, segment, byte_offset, "
                                             "byte_length) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"), rows)
    return result.rowcount if result.rowcount is not None else -1


# ---------------------------------------------------------------- reading

def _read_file(sha256: str, base: Path) -> bytes:
    path = file_path(sha256, base)
    try:
        data = path.read_bytes()
        if data[:2] == GZIP_MAGIC:
            data = zlib.decompress(data, wbits=31)
    except FileNotFoundError:
        raise BlobError(f"the original of record {sha256[:12]} is missing from the archive") from None
    except (OSError, zlib.error) as exc:
        raise BlobError(f"the original of record {sha256[:12]} is unreadable: {exc}") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise BlobError(f"the original of record {sha256[:12]} fails its hash check (altered or damaged)")
    return data


def read_at(sha256: str, loc: Location | None, base: Path | None = None) -> bytes:
    """The original, from its segment record (or its file when it has no location), hash-verified."""
    base = base or base_dir()
    if loc is None:
        return _read_file(sha256, base)
    return segments.read_record(segments_dir(base), loc, sha256)


def get(sha256: str, engine: Engine | None = None, base: Path | None = None) -> bytes:
    """The original bytes, after checking that they still hash to `sha256` (BlobError if not)."""
    with _engine(engine).connect() as conn:
        loc = locate(conn, [sha256]).get(sha256)
    return read_at(sha256, loc, base)


def exists(sha256: str, engine: Engine | None = None, base: Path | None = None) -> bool:
    """Whether the archive holds bytes for this original (it does not check them: `get` does)."""
    with _engine(engine).connect() as conn:
        return bool(stored(conn, [sha256], base))


# ---------------------------------------------------------------- locking

class Maintenance:
    """The segment store's maintenance lock: shared while ingesting (check, append, commit), exclusive for
    disposition and compaction, so neither runs in the middle of the other."""

    def __init__(self, base: Path | None = None, *, shared: bool):
        self.root = segments_dir(base)
        self.shared = shared
        self.fd = -1

    def __enter__(self) -> "Maintenance":
        self.root.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.root / MAINTENANCE, os.O_RDWR | os.O_CREAT, 0o640)
        fcntl.flock(self.fd, fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)
        self.fd = -1


# ---------------------------------------------------------------- disposition

def _pending_path(base: Path | None) -> Path:
    return segments_dir(base) / PENDING


def forget(conn: Connection, shas: Iterable[str], base: Path | None = None) -> list[tuple[str, Location | None]]:
    """In the disposition's transaction, under the exclusive maintenance lock: note these originals in the
    pending-destroy journal (fsync'ed before the commit), then drop their location rows. Returns them."""
    shas = list(dict.fromkeys(shas))
    if not shas:
        return []
    locs = locate(conn, shas)
    items = [(s, locs.get(s)) for s in shas]
    path = _pending_path(base)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        for sha, loc in items:
            fh.write(json.dumps({"sha256": sha, "segment": loc.segment if loc else None,
                                 "offset": loc.offset if loc else None, "length": loc.length if loc else None}) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    for start in range(0, len(shas), 900):
        conn.execute(O.delete().where(O.c.sha256.in_(shas[start:start + 900])))
    return items


def _shred_file(path: Path) -> bool:
    """Overwrite an earlier-layout original with zeros, sync, and delete it."""
    try:
        os.chmod(path, 0o600)
        size = path.stat().st_size
        with open(path, "r+b", buffering=0) as fh:
            fh.write(bytes(size))
            os.fsync(fh.fileno())
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def finish_pending(engine: Engine, base: Path | None = None) -> set[int]:
    """Destroy what the pending-destroy journal lists and no row points at any more (a disposition committed);
    entries whose rows are still there (it did not commit) are left alone. Returns the segments touched.
    Call under the exclusive maintenance lock."""
    path = _pending_path(base)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return set()
    entries = []
    for line in lines:
        try:
            e = json.loads(line)
        except ValueError:
            continue  # a torn last line: written before a commit that cannot have happened
        entries.append((e["sha256"], Location(e["segment"], e["offset"], e["length"]) if e["segment"] is not None
                        else None))
    with engine.connect() as conn:
        still = locate(conn, [sha for sha, _ in entries])
        referenced: set[str] = set()
        shas = [sha for sha, _ in entries]
        for start in range(0, len(shas), 900):
            referenced |= set(conn.scalars(select(M.c.sha256).where(M.c.sha256.in_(shas[start:start + 900]))))
    # a location row still in place means that disposition did not commit: its records stay
    doomed = [(sha, loc) for sha, loc in entries if loc is not None and still.get(sha) != loc]
    segments.destroy(segments_dir(base), doomed)
    for sha, _ in entries:
        if sha not in referenced and sha not in still:
            _shred_file(file_path(sha, base or base_dir()))  # the earlier layout's file, if there is one
    os.unlink(path)
    fsync_dir(segments_dir(base))
    return {loc.segment for _, loc in doomed}


# ---------------------------------------------------------------- compaction

@dataclass
class CompactReport:
    deleted: list[int] = field(default_factory=list)  # segments with no live record left, removed
    rewritten: list[int] = field(default_factory=list)  # segments whose live records moved, then removed
    moved: int = 0  # records moved
    busy: list[int] = field(default_factory=list)  # held by a writer: left for the next time
    damaged: list[tuple[int, str]] = field(default_factory=list)  # left as they are, with the first problem
    reclaimed: int = 0  # bytes

    def to_json(self) -> dict[str, Any]:
        return {"deleted": self.deleted, "rewritten": self.rewritten, "moved": self.moved, "busy": self.busy,
                "damaged": [{"segment": s, "problem": p} for s, p in self.damaged], "reclaimed": self.reclaimed}


def compact(engine: Engine, only: Iterable[int] | None = None, *, threshold: float = COMPACT_THRESHOLD,
            base: Path | None = None, dry_run: bool = False) -> CompactReport:
    """Rewrite segments whose dead share (disposed records, orphans, torn tails) reaches `threshold` (0: any
    dead byte) so that only live records remain, and delete segments with none. Segments a writer holds are
    skipped. Takes the exclusive maintenance lock. With `dry_run`, changes nothing (takes the lock shared,
    leaves the pending-destroy journal alone) and reports what a run would do now."""
    with Maintenance(base, shared=dry_run):
        if not dry_run:
            finish_pending(engine, base)
        return compact_locked(engine, only, threshold=threshold, base=base, dry_run=dry_run)


def compact_locked(engine: Engine, only: Iterable[int] | None = None, *, threshold: float = COMPACT_THRESHOLD,
                   base: Path | None = None, dry_run: bool = False) -> CompactReport:
    """`compact`, for a caller that holds the maintenance lock already (exclusive unless `dry_run`).

    A rewrite is safe to interrupt at any point: the live records are copied, fsync'ed and read back with
    their hashes checked before the rows are pointed at the copies in one transaction, and the old segment
    is deleted only after that commit. Stopped before the commit, the rows still point at the old segment
    and the partial copies belong to no row; stopped after it, the old segment has no live record left and
    the next run deletes it."""
    root = segments_dir(base)
    report = CompactReport()
    candidates = sorted(set(only) if only is not None else set(segments.segment_ids(root)))
    if not candidates:
        return report
    with engine.connect() as conn:
        live = {r.segment: (r.n, int(r.bytes or 0)) for r in conn.execute(
            select(O.c.segment, func.count().label("n"), func.sum(O.c.byte_length).label("bytes"))
            .where(O.c.segment.in_(candidates)).group_by(O.c.segment))}
    for sid in candidates:
        lock = segments.SegmentLock(root, sid)
        if not lock.acquire():
            if segments.segment_path(root, sid).exists():
                report.busy.append(sid)
            continue
        try:
            size = lock.size()
            n, payload = live.get(sid, (0, 0))
            dead = size - len(segments.FILE_MAGIC) - payload - n * segments.OVERHEAD
            if n == 0:
                if not dry_run:
                    segments.segment_path(root, sid).unlink()
                    fsync_dir(root)
                report.deleted.append(sid)
                report.reclaimed += size
            elif dead > 0 and dead >= threshold * size:
                if dry_run:
                    report.rewritten.append(sid)
                    report.moved += n
                    report.reclaimed += dead
                    continue
                problem = _rewrite(engine, root, sid, frozenset(candidates), report)
                if problem:
                    report.damaged.append((sid, problem))
                else:
                    segments.segment_path(root, sid).unlink()
                    fsync_dir(root)
                    report.rewritten.append(sid)
                    report.reclaimed += dead
        finally:
            lock.release()
    return report


def _rewrite(engine: Engine, root: Path, sid: int, avoid: frozenset[int], report: CompactReport) -> str | None:
    """Copy a segment's live records (each checked against its hash) to other segments and point the rows
    at the copies. Returns a problem (and changes nothing) when a live record does not check."""
    with engine.connect() as conn:
        rows = conn.execute(select(O.c.sha256, O.c.byte_offset, O.c.byte_length)
                            .where(O.c.segment == sid).order_by(O.c.byte_offset)).all()
    moves: list[tuple[str, Location, Location]] = []
    with Writer(root, avoid=avoid) as w:
        for r in rows:
            old = Location(sid, r.byte_offset, r.byte_length)
            try:
                payload = segments.read_record(root, old, r.sha256, payload_only=True)
            except BlobError as exc:
                w.discard([new for _, _, new in moves])
                return str(exc)
            flags = segments.record_flags(root, old)
            size = len(segments.decode(payload, flags))
            moves.append((r.sha256, old, w.append(r.sha256, payload, size, flags)))
        _sync(w)
        problem = _check_copies(root, [(sha, new) for sha, _, new in moves])
        if problem:
            w.discard([new for _, _, new in moves])
            return problem
        with engine.begin() as conn:
            conn.exec_driver_sql(_sql(conn, "UPDATE archive_originals SET segment = ?, byte_offset = ? "
                                            "WHERE sha256 = ? AND segment = ? AND byte_offset = ?"),
                                 [(new.segment, new.offset, sha, old.segment, old.offset) for sha, old, new in moves])
    report.moved += len(moves)
    return None


def _sync(w: Writer) -> None:
    """Write and fsync a maintenance writer's copies; a failure (full disk, I/O error) is one sentence. The
    records written so far belong to no row: the segment ends torn, and is never appended to again."""
    try:
        w.sync()
    except OSError as exc:
        raise BlobError(f"cannot write the archive's originals under {w.root}: {exc.strerror or exc}; "
                        "no original was lost, run it again once that is fixed") from None


def _check_copies(root: Path, copies: Iterable[tuple[str, Location]]) -> str | None:
    """Read back copies a writer has just synced, each checked against its hash: the first problem, or None."""
    for sha, loc in copies:
        try:
            segments.read_record(root, loc, sha)
        except BlobError as exc:
            return f"the copy does not read back: {exc}"
    return None


# ---------------------------------------------------------------- the earlier layout

@dataclass
class MigrateReport:
    moved: int = 0  # originals copied into segments (with --dry-run: that would be)
    already: int = 0  # a segment copy was there already: the file was removed (would be)
    bytes: int = 0  # size of the originals moved (uncompressed)
    bad: list[tuple[str, str]] = field(default_factory=list)  # (ref, problem): files left where they are

    def to_json(self) -> dict[str, Any]:
        return {"moved": self.moved, "already": self.already, "bytes": self.bytes,
                "bad": [{"ref": ref, "problem": p} for ref, p in self.bad]}


_HEX = frozenset("0123456789abcdef")


def legacy_files(base: Path | None = None) -> list[Path]:
    """The originals still kept as files of the earlier layout, in name order."""
    base = base or base_dir()
    if not base.is_dir():
        return []
    return sorted(p for d in base.iterdir() if d.is_dir() and len(d.name) == 2 and _HEX.issuperset(d.name)
                  for p in d.iterdir() if len(p.name) == 64 and p.is_file())


def migrate_files(engine: Engine, base: Path | None = None, *, batch: int = 500,
                  dry_run: bool = False) -> MigrateReport:
    """Pack originals of the earlier one-file layout into segments: each file is checked against its hash,
    appended, fsync'ed and read back (hash checked again), its location committed, and only then is the file
    deleted. Safe to interrupt and run again: stopped before the commit, the file is still there and the copy
    belongs to no row; after it, the next run finds the row and only removes the file. With `dry_run`,
    reads and checks every file and reports what a run would do, changing nothing."""
    base = base or base_dir()
    root = segments_dir(base)
    report = MigrateReport()
    paths = legacy_files(base)
    for start in range(0, len(paths), batch):
        chunk = paths[start:start + batch]
        with Maintenance(base, shared=True), writer(base) as w:
            with engine.connect() as conn:
                have = locate(conn, [p.name for p in chunk])
            locs: dict[str, Location] = {}
            sizes: dict[str, int] = {}
            for p in chunk:
                if p.name in have:  # the file goes only if the segment's copy reads back, hash checked
                    problem = _check_copies(root, [(p.name, have[p.name])])
                    if problem:
                        report.bad.append((p.name[:12], problem))
                    elif dry_run:
                        report.already += 1
                    continue
                try:
                    raw = _read_file(p.name, base)
                except BlobError as exc:
                    report.bad.append((p.name[:12], str(exc)))
                    continue
                sizes[p.name] = len(raw)
                if not dry_run:
                    locs[p.name] = w.put(p.name, raw)
            if dry_run:
                report.moved += len(sizes)
                report.bytes += sum(sizes.values())
                continue
            _sync(w)
            for sha, loc in list(locs.items()):  # read back from the segment, hash checked, before it counts
                problem = _check_copies(root, [(sha, loc)])
                if problem:
                    report.bad.append((sha[:12], problem))
                    w.discard([locs.pop(sha)])
            with engine.begin() as conn:
                record(conn, locs)
            with engine.connect() as conn:
                now = locate(conn, [p.name for p in chunk])
            w.discard([loc for sha, loc in locs.items() if now.get(sha) != loc])
        bad = {ref for ref, _ in report.bad}
        for p in chunk:
            if p.name in now and p.name[:12] not in bad:
                p.unlink(missing_ok=True)
                if p.name in locs and now[p.name] == locs[p.name]:
                    report.moved += 1
                    report.bytes += sizes[p.name]
                else:
                    report.already += 1
        for d in {p.parent for p in chunk}:
            try:
                d.rmdir()
            except OSError:
                pass
        fsync_dir(base)
    return report
