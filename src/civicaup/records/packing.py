"""Compression of what the archive stores: originals in segments and the indexed text (`text_z`).

New data is Zstandard (level 1): on the archive's messages it compresses as well as zlib's fastest level
(44% of the size either way on the SpamAssassin corpus) in a fifth of the CPU time (18 against 97 µs a
3.8 kB message here), and decompresses three times faster; at import that is a sixth of all the CPU a
message costs. Data written by earlier versions is zlib and stays readable: an original's record header
says which (segments.COMPRESSED, segments.ZSTD), and a text blob is told apart by its first bytes (a
Zstandard frame starts with 28 B5 2F FD, a zlib stream never does).

Zstandard's compressor and decompressor objects are not safe to share between threads, so each thread
has its own.
"""
from __future__ import annotations

import threading
import zlib

import zstandard

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ERRORS = (zstandard.ZstdError, zlib.error)
LEVEL = 1

_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    c = getattr(_local, "c", None)
    if c is None:
        c = _local.c = zstandard.ZstdCompressor(level=LEVEL)  # writes the content size: decompress needs no bound
    return c


def _decompressor() -> zstandard.ZstdDecompressor:
    d = getattr(_local, "d", None)
    if d is None:
        d = _local.d = zstandard.ZstdDecompressor()
    return d


def compress(data: bytes) -> bytes:
    """A Zstandard frame of *data*."""
    return _compressor().compress(data)


def decompress(blob: bytes) -> bytes:
    """The bytes of a Zstandard frame or (written by earlier versions) a zlib stream; raises one of
    `ERRORS` when *blob* is neither, or is damaged."""
    if blob[:4] == ZSTD_MAGIC:
        return _decompressor().decompress(blob)
    return zlib.decompress(blob)


def pack_text(subject: str, body: str) -> bytes:
    """The indexed text of a message (subject and body), as `text_z` keeps it."""
    return compress(f"{subject}\x00{body}".encode("utf-8"))


def unpack_text(blob: bytes) -> tuple[str, str]:
    """(subject, body) of a `text_z` blob, whichever codec wrote it."""
    subject, _, body = decompress(blob).decode("utf-8").partition("\x00")
    return subject, body
