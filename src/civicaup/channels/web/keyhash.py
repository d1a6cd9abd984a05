"""The hash tables of a category index (format version 2): its domain keys and URL entries by hash.

The compiled Squid helper path (:mod:`civicaup.channels.web._fastpath`) looks a host, each of its parent
domains and the URL-entry candidates of its path up here, instead of calling marisa's Python API per URL.
The tables are built with the index (``civicaup categories build``), stored in the index file as sections
``domains.hash`` and ``urls.hash`` (CRC-checked with the rest) and memory-mapped like the tries, so helper
processes share them through the page cache. The tries stay the reference (the engine and the pure-Python
path read them).

A key (the trie's form: ``com.example.www.``, ``!1.2.3.4.``, or a URL entry ``host/path?query``) is hashed
over its ASCII bytes, left to right, in two 64-bit lanes from a seeded start: lane A is FNV-1a, lane B
xors, multiplies by the golden-ratio constant and rotates. Both are finished by MurmurHash3's 64-bit mixer
(a bijection). A slot holds the finished A (0 marks an empty slot, so 0 is stored as 1), the top 32 bits of
the finished B as a check, and the key's set id. Because a host's parent domains' keys are prefixes of its
own (``com.`` < ``com.example.`` < ``com.example.www.``), and a URL's entry candidates are prefixes of its
``host/path?query``, one pass over the bytes hashes them all.

The table is open addressing with linear probing over a power-of-two number of 16-byte slots (load at most
2/3), slot = A & mask. The builder refuses a seed under which two keys share A (and tries the next seed), so
an A identifies at most one key, and a query matches only if A and the 32-bit check both agree: 96 bits.
Every key is in the table (no false negative). A name that is not listed matches only if its 96 bits equal
those of the one key with the same A: about n / 2**96 per probe for n keys (n = 5,000,000: 6e-23; at
200,000 requests a second with a few probes each, one false positive in about 10**14 years).

This module is the reference implementation; the compiled module implements the same functions and the
tests check that both give identical tables and answers.
"""
from __future__ import annotations

import struct
import sys
from collections.abc import Sequence

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
GOLDEN = 0x9E3779B97F4A7C15
B_START = 0x84222325CBF29CE4
MASK64 = (1 << 64) - 1
MAX_SEEDS = 64
SLOT = struct.Struct("<QII")  # hash, check, set id


def starts(seed: int) -> tuple[int, int]:
    """The two lanes' states before the first byte, for *seed*."""
    return (FNV_OFFSET ^ (seed * GOLDEN)) & MASK64, (B_START + seed * FNV_PRIME) & MASK64


def step(a: int, b: int, c: int) -> tuple[int, int]:
    """Both lanes after one more byte *c*."""
    a = ((a ^ c) * FNV_PRIME) & MASK64
    b = ((b ^ c) * GOLDEN) & MASK64
    b = ((b << 27) | (b >> 37)) & MASK64
    return a, b


def fmix(k: int) -> int:
    """MurmurHash3's 64-bit finaliser (a bijection on 64-bit integers)."""
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & MASK64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & MASK64
    k ^= k >> 33
    return k


def finish(a: int, b: int) -> tuple[int, int]:
    """(stored hash, check) of the lanes' states."""
    return fmix(a) or 1, fmix(b) >> 32


def key_hash(key: str, seed: int) -> tuple[int, int]:
    """(stored hash, check) of one key."""
    a, b = starts(seed)
    for c in key.encode("ascii"):
        a, b = step(a, b, c)
    return finish(a, b)


def capacity(n: int) -> int:
    """Slots for *n* keys: a power of two, at least 1.5 n (load at most 2/3) and at least 8."""
    cap = 8
    while cap * 2 < n * 3:
        cap *= 2
    return cap


def build_table(keys: Sequence[str], set_ids: Sequence[int]) -> tuple[int, bytes]:
    """(seed, table bytes) for *keys* and their set ids, by the compiled module when it is built."""
    try:
        from civicaup.channels.web import _fastpath
    except ImportError:
        return build_table_python(keys, set_ids)
    if sys.byteorder != "little":  # the compiled builder writes native integers
        return build_table_python(keys, set_ids)
    return _fastpath.build_table(list(keys), list(set_ids))  # type: ignore[no-any-return]


def build_table_python(keys: Sequence[str], set_ids: Sequence[int]) -> tuple[int, bytes]:
    """:func:`build_table` in pure Python (the reference; slow for millions of keys)."""
    cap = capacity(len(keys))
    mask = cap - 1
    for seed in range(MAX_SEEDS):
        hashes = [key_hash(k, seed) for k in keys]
        if len({h for h, _ in hashes}) != len(hashes):
            continue  # two keys share a hash under this seed: try the next one
        slots: list[tuple[int, int, int] | None] = [None] * cap
        for (h, check), sid in zip(hashes, set_ids, strict=True):
            i = h & mask
            while slots[i] is not None:
                i = (i + 1) & mask
            slots[i] = (h, check, sid)
        return seed, b"".join(SLOT.pack(*s) if s is not None else bytes(SLOT.size) for s in slots)
    raise ValueError(f"no seed in 0..{MAX_SEEDS - 1} gives distinct 64-bit hashes for these keys")


def lookup(table: bytes | memoryview, seed: int, key: str) -> int | None:
    """The set id of *key* in a table, None if it is not there (the reference for the compiled probe)."""
    h, check = key_hash(key, seed)
    cap = len(table) // SLOT.size
    i = h & (cap - 1)
    while True:
        got, got_check, sid = SLOT.unpack_from(table, i * SLOT.size)
        if got == 0:
            return None
        if got == h:
            return sid if got_check == check else None
        i = (i + 1) & (cap - 1)
