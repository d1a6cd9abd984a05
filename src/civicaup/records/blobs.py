"""The original bytes of each archived message, stored once under $CIVICAUP_HOME/archive/<aa>/<sha256>.

A file holds the exact bytes whose SHA-256 names it, gzip-compressed when the message is larger than
COMPRESS_ABOVE (below that a file takes one 4 KiB block either way, and compressing only costs time);
a message never starts with gzip's magic bytes, so a reader tells the two apart. Files are written to a
temporary name and renamed, made read-only, and never rewritten. Every read checks the hash.
"""
from __future__ import annotations

import hashlib
import os
import zlib
from pathlib import Path

from civicaup.config import home
from civicaup.errors import CivicaupError

COMPRESS_ABOVE = 8192
GZIP_MAGIC = b"\x1f\x8b"


class BlobError(CivicaupError):
    """A stored original is missing or fails its hash check."""


def root() -> Path:
    return home() / "archive"


def path_for(sha256: str, base: Path | None = None) -> Path:
    return (base or root()) / sha256[:2] / sha256


def put(raw: bytes, sha256: str | None = None, *, durable: bool = False, base: Path | None = None) -> str:
    """Store `raw` (if not already there) and return its SHA-256. `durable` syncs it to disk first."""
    sha = sha256 or hashlib.sha256(raw).hexdigest()
    path = path_for(sha, base)
    if path.exists():
        return sha
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{sha}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(zlib.compress(raw, 1, wbits=31) if len(raw) > COMPRESS_ABOVE else raw)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    os.chmod(tmp, 0o444)
    os.replace(tmp, path)
    return sha


def get(sha256: str, base: Path | None = None) -> bytes:
    """The original bytes, after checking that they still hash to `sha256`."""
    path = path_for(sha256, base)
    try:
        data = path.read_bytes()
        if data[:2] == GZIP_MAGIC:
            data = zlib.decompress(data, wbits=31)
    except FileNotFoundError:
        raise BlobError(f"the original of record {sha256[:12]} is missing from {path.parent}") from None
    except (OSError, zlib.error) as exc:
        raise BlobError(f"the original of record {sha256[:12]} is unreadable: {exc}") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise BlobError(f"the original of record {sha256[:12]} fails its hash check (altered or damaged)")
    return data


def exists(sha256: str, base: Path | None = None) -> bool:
    return path_for(sha256, base).exists()


def delete(sha256: str, base: Path | None = None) -> None:
    try:
        path_for(sha256, base).unlink()
    except FileNotFoundError:
        pass
