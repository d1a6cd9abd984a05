"""Append-only segment files: where the archive keeps the original bytes of its messages.

A segment is one file, $CIVICAUP_HOME/archive/segments/<id, 8 digits>.seg, that starts with a 16-byte file
header and then holds records back to back. A record is

    header   52 bytes   magic "CVAR", flags, payload length, original size, SHA-256 of the original, CRC-32
    payload  n bytes    the original bytes, or (flag ZSTD) their Zstandard frame, or (flag COMPRESSED,
                        written by earlier versions) their zlib stream
    trailer   8 bytes   the record's total length and "CVAE", so a writer finds the last record from the end

The database keeps where each original is (segment, offset, payload length, SHA-256); a read takes the
record at that place and checks that it is the record for that hash and that the bytes still hash to it.

Writers: one at a time per segment. A writer holds an exclusive flock(2) on the segment it appends to (and on
any segment it filled since its last commit), so two processes never append to the same file and compaction
never touches a segment whose records are not yet in the database. Appends are buffered and written and
fsync'ed once per batch (`Writer.sync`), before the database rows that point at them are committed: a row
never points at bytes that are not on disk. A crash in the middle of an append leaves a torn tail: the next
writer sees that the file does not end with a complete record, leaves that segment alone and starts another;
the torn bytes belong to no row and are dropped when the segment is compacted.

Destroying a record (retention) overwrites its payload with zeros in place and marks its header DISPOSED;
compaction (`civicaup.records.blobs.compact`) then rewrites segments' live records into new segments and
deletes the old files, and a segment with no live record left is deleted outright.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import struct
import zlib
from pathlib import Path
from typing import Iterator, NamedTuple

from civicaup.durable import fsync_dir
from civicaup.errors import CivicaupError
from civicaup.records import packing

FILE_MAGIC = b"civicaup-seg-v1\n"  # 16 bytes
HEADER = struct.Struct(">4sB3xII32sI")  # magic, flags, payload length, original size, sha256, crc32 of the rest
TRAILER = struct.Struct(">I4s")  # total record length, magic
RECORD_MAGIC, TRAILER_MAGIC = b"CVAR", b"CVAE"
OVERHEAD = HEADER.size + TRAILER.size

COMPRESSED = 0x01  # zlib (earlier versions); read, never written
DISPOSED = 0x02
ZSTD = 0x04  # Zstandard, see civicaup.records.packing
CODECS = COMPRESSED | ZSTD

SEGMENT_BYTES = 64 << 20  # a segment is closed once it reaches this size (one larger record may pass it)
COMPRESS_ABOVE = 1024  # smaller originals are stored as they are
SUFFIX = ".seg"


class BlobError(CivicaupError):
    """A stored original is missing, damaged, or fails its hash check."""


class Location(NamedTuple):
    """Where an original is: the segment's id, the record's offset in it, and the payload's length."""
    segment: int
    offset: int
    length: int


class Entry(NamedTuple):
    """A record as found by `scan`."""
    offset: int
    sha256: str
    flags: int
    length: int
    size: int


def encode(raw: bytes) -> tuple[bytes, int]:
    """The payload to store for `raw` and its flags: Zstandard (fast level) when that saves at least a tenth."""
    if len(raw) > COMPRESS_ABOVE:
        packed = packing.compress(raw)
        if len(packed) < len(raw) * 0.9:
            return packed, ZSTD
    return raw, 0


def decode(payload: bytes, flags: int) -> bytes:
    """The original bytes of a payload; raises one of packing.ERRORS if it does not decompress."""
    if flags & ZSTD:
        if payload[:4] != packing.ZSTD_MAGIC:  # packing.decompress would take a zlib stream too
            raise zlib.error("not a Zstandard frame")
        return packing.decompress(payload)
    return zlib.decompress(payload) if flags & COMPRESSED else payload


def _header(sha256: str, flags: int, length: int, size: int) -> bytes:
    digest = bytes.fromhex(sha256)
    body = HEADER.pack(RECORD_MAGIC, flags, length, size, digest, 0)[:-4]
    return body + struct.pack(">I", zlib.crc32(body))


def _parse_header(data: bytes) -> tuple[int, int, int, str] | None:
    """(flags, payload length, original size, sha256) of a well-formed header, else None."""
    if len(data) < HEADER.size:
        return None
    magic, flags, length, size, digest, crc = HEADER.unpack_from(data)
    if magic != RECORD_MAGIC or zlib.crc32(data[:HEADER.size - 4]) != crc:
        return None
    return flags, length, size, digest.hex()


def segment_path(root: Path, segment: int) -> Path:
    return root / f"{segment:08d}{SUFFIX}"


def segment_ids(root: Path) -> list[int]:
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(int(n[:-len(SUFFIX)]) for n in names if n.endswith(SUFFIX) and n[:-len(SUFFIX)].isdigit())


def _lock(fd: int, *, wait: bool) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        return True
    except BlockingIOError:
        return False


def tail_ok(fd: int, end: int) -> bool:
    """Whether the file ends with a complete record (or is a bare file header): safe to append after."""
    if end < len(FILE_MAGIC) or os.pread(fd, len(FILE_MAGIC), 0) != FILE_MAGIC:
        return False
    if end == len(FILE_MAGIC):
        return True
    if end < len(FILE_MAGIC) + OVERHEAD:
        return False
    total, magic = TRAILER.unpack(os.pread(fd, TRAILER.size, end - TRAILER.size))
    if magic != TRAILER_MAGIC or total < OVERHEAD or total > end - len(FILE_MAGIC):
        return False
    parsed = _parse_header(os.pread(fd, HEADER.size, end - total))
    return parsed is not None and parsed[1] + OVERHEAD == total


class _Open(NamedTuple):
    segment: int
    fd: int


class Writer:
    """Appends records to segments this writer holds locked. Not thread-safe: one writer per thread."""

    def __init__(self, root: Path, *, segment_bytes: int = SEGMENT_BYTES, avoid: frozenset[int] = frozenset()):
        self.root = root
        self.segment_bytes = segment_bytes
        self.avoid = avoid  # segments this writer must not append to (compaction's sources)
        self._cur: _Open | None = None
        self._end = 0  # the current segment's end, counting buffered records
        self._pending: list[bytes] = []  # buffered records of the current segment, not yet written
        self._written = 0  # where buffered records start
        self._full: list[_Open] = []  # segments filled since the last release: still locked, to be synced
        self._dirty: set[int] = set()  # segments written to since the last sync
        self._new_files = False

    # -- choosing a segment

    def _open_segment(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        ids = segment_ids(self.root)
        for sid in reversed(ids[-8:]):  # the newest few that still have room
            if sid in self.avoid:
                continue
            try:
                fd = os.open(segment_path(self.root, sid), os.O_RDWR)
            except FileNotFoundError:
                continue
            if not _lock(fd, wait=False):
                os.close(fd)
                continue
            end = os.fstat(fd).st_size
            if end < self.segment_bytes and tail_ok(fd, end) and os.path.exists(segment_path(self.root, sid)):
                self._cur, self._end, self._written = _Open(sid, fd), end, end
                return
            os.close(fd)  # full, or a torn tail: left alone (compaction drops the torn bytes)
        sid = (ids[-1] if ids else 0) + 1
        while True:
            try:
                fd = os.open(segment_path(self.root, sid), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o640)
                break
            except FileExistsError:
                sid += 1
        _lock(fd, wait=True)
        os.write(fd, FILE_MAGIC)
        self._cur, self._end, self._written = _Open(sid, fd), len(FILE_MAGIC), len(FILE_MAGIC)
        self._dirty.add(sid)
        self._new_files = True

    def _flush(self) -> None:
        if self._pending and self._cur is not None:
            data = b"".join(self._pending)
            view, pos = memoryview(data), self._written
            while view:
                n = os.pwrite(self._cur.fd, view, pos)
                view, pos = view[n:], pos + n
            self._written = pos
            self._pending = []

    # -- the writer's work

    def append(self, sha256: str, payload: bytes, size: int, flags: int) -> Location:
        """Buffer one record; it is on disk after the next `sync`."""
        total = len(payload) + OVERHEAD
        if self._cur is not None and self._end > len(FILE_MAGIC) and self._end + total > self.segment_bytes:
            self._flush()
            self._full.append(self._cur)
            self._cur = None
        if self._cur is None:
            self._open_segment()
        assert self._cur is not None
        offset = self._end
        self._pending.append(_header(sha256, flags & CODECS, len(payload), size))
        self._pending.append(payload)
        self._pending.append(TRAILER.pack(total, TRAILER_MAGIC))
        self._end += total
        self._dirty.add(self._cur.segment)
        return Location(self._cur.segment, offset, len(payload))

    def put(self, sha256: str, raw: bytes) -> Location:
        payload, flags = encode(raw)
        return self.append(sha256, payload, len(raw), flags)

    def sync(self) -> None:
        """Write what is buffered and fsync every segment written to (and the folder, for new files)."""
        self._flush()
        for seg in [*self._full, *([self._cur] if self._cur else [])]:
            if seg.segment in self._dirty:
                os.fsync(seg.fd)
        if self._new_files:
            fsync_dir(self.root)
            self._new_files = False
        self._dirty.clear()

    def release(self) -> None:
        """After the database commit: unlock the segments this writer filled (the current one stays held)."""
        for seg in self._full:
            os.close(seg.fd)
        self._full = []

    def discard(self, locations: list[Location]) -> None:
        """Zero records this writer appended that no row will point at (a failed commit, a lost race)."""
        self.sync()
        held = {s.segment: s.fd for s in [*self._full, *([self._cur] if self._cur else [])]}
        for loc in locations:
            fd = held.get(loc.segment)
            if fd is not None:
                _zero(fd, loc)
        for fd in {held[loc.segment] for loc in locations if loc.segment in held}:
            os.fsync(fd)

    def close(self, *, write: bool = True) -> None:
        """Sync what is buffered (unless `write` is False: after a failure, nothing buffered is wanted, since
        no row can point at it) and unlock everything."""
        try:
            if write:
                self.sync()
        finally:
            self._pending = []
            self.release()
            if self._cur is not None:
                os.close(self._cur.fd)
                self._cur = None

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(write=exc_type is None)


# ---------------------------------------------------------------- reading

def read_record(root: Path, loc: Location, sha256: str, *, payload_only: bool = False) -> bytes:
    """The original at `loc`, checked: the record there is the one for `sha256` and its bytes hash to it.
    With `payload_only`, the stored payload (compressed or not) after the same checks, for compaction."""
    ref = sha256[:12]
    path = segment_path(root, loc.segment)
    try:
        with open(path, "rb", buffering=0) as fh:
            data = os.pread(fh.fileno(), HEADER.size + loc.length, loc.offset)
    except FileNotFoundError:
        raise BlobError(f"the original of record {ref} is missing: segment {path.name} is gone") from None
    except OSError as exc:
        raise BlobError(f"the original of record {ref} is unreadable: {exc.strerror or exc}") from None
    parsed = _parse_header(data)
    if parsed is None or parsed[3] != sha256 or parsed[1] != loc.length or len(data) < HEADER.size + loc.length:
        raise BlobError(f"the original of record {ref} is damaged (no intact record at {path.name}:{loc.offset})")
    flags, _, size, _ = parsed
    if flags & DISPOSED:
        raise BlobError(f"the original of record {ref} was destroyed by a disposition")
    payload = data[HEADER.size:]
    try:
        raw = decode(payload, flags)
    except packing.ERRORS:
        raise BlobError(f"the original of record {ref} fails its hash check (altered or damaged)") from None
    if len(raw) != size or hashlib.sha256(raw).hexdigest() != sha256:
        raise BlobError(f"the original of record {ref} fails its hash check (altered or damaged)")
    return payload if payload_only else raw


def record_flags(root: Path, loc: Location) -> int:
    with open(segment_path(root, loc.segment), "rb", buffering=0) as fh:
        parsed = _parse_header(os.pread(fh.fileno(), HEADER.size, loc.offset))
    return parsed[0] if parsed else -1


def scan(path: Path) -> Iterator[Entry]:
    """Every intact record of a segment file in order, stopping at a torn or damaged tail."""
    with open(path, "rb", buffering=0) as fh:
        fd = fh.fileno()
        end = os.fstat(fd).st_size
        if os.pread(fd, len(FILE_MAGIC), 0) != FILE_MAGIC:
            return
        pos = len(FILE_MAGIC)
        while pos + OVERHEAD <= end:
            parsed = _parse_header(os.pread(fd, HEADER.size, pos))
            if parsed is None:
                return
            flags, length, size, sha = parsed
            total = length + OVERHEAD
            if pos + total > end or TRAILER.unpack(os.pread(fd, TRAILER.size, pos + total - TRAILER.size)) != (
                    total, TRAILER_MAGIC):
                return
            yield Entry(pos, sha, flags, length, size)
            pos += total


# ---------------------------------------------------------------- destroying

def _zero(fd: int, loc: Location, sha256: str | None = None) -> bool:
    parsed = _parse_header(os.pread(fd, HEADER.size, loc.offset))
    if parsed is None or parsed[1] != loc.length or (sha256 is not None and parsed[3] != sha256):
        return False  # not the record we were told about: touch nothing
    flags, length, size, sha = parsed
    zeros = bytes(min(length, 1 << 20))
    pos = loc.offset + HEADER.size
    left = length
    while left:
        n = os.pwrite(fd, zeros[:min(left, len(zeros))], pos)
        pos, left = pos + n, left - n
    os.pwrite(fd, _header(sha, flags | DISPOSED, length, size), loc.offset)
    return True


def destroy(root: Path, items: list[tuple[str, Location]]) -> int:
    """Overwrite the payloads of these records with zeros (their headers marked DISPOSED) and fsync.
    Each place is checked to hold the record for that hash first. Returns how many were overwritten."""
    done = 0
    by_segment: dict[int, list[tuple[str, Location]]] = {}
    for sha, loc in items:
        by_segment.setdefault(loc.segment, []).append((sha, loc))
    for sid, group in sorted(by_segment.items()):
        try:
            fd = os.open(segment_path(root, sid), os.O_RDWR)
        except FileNotFoundError:
            continue  # the whole segment is already gone
        try:
            done += sum(_zero(fd, loc, sha) for sha, loc in group)
            os.fsync(fd)
        finally:
            os.close(fd)
    return done


class SegmentLock:
    """An exclusive lock on one segment, without waiting: held by compaction while it rewrites it."""

    def __init__(self, root: Path, segment: int):
        self.path = segment_path(root, segment)
        self.fd = -1

    def acquire(self) -> bool:
        try:
            self.fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return False
        if not _lock(self.fd, wait=False):
            os.close(self.fd)
            self.fd = -1
            return False
        return True

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class DirLock:
    """An exclusive, waiting flock(2) on a file in the segments folder (maintenance: disposition, compaction)."""

    def __init__(self, root: Path, name: str):
        self.path = root / name
        self.fd = -1

    def __enter__(self) -> "DirLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX)
                return self
            except OSError as exc:  # EINTR
                if exc.errno != errno.EINTR:
                    os.close(self.fd)
                    raise

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)
        self.fd = -1
