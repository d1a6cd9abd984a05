"""The on-disk category index: one file, a checked header and two marisa tries, read through mmap.

Layout (all integers little-endian)::

    b"CAUPIDX\\0"  u32 header length  u32 header CRC-32   JSON header   padding to 8
    payload: domains.trie  domains.sets  urls.trie  urls.sets  domains.hash  urls.hash   (each padded to 8)

* ``domains.trie`` holds reversed host labels with a trailing dot (``com.example.www.``), so the
  prefixes of a reversed query host are exactly the listed host and its listed parent domains.
  IP addresses are stored as ``!<ip>.`` and only match themselves.
* ``urls.trie`` holds ``host/path?query`` entries; prefixes of a query's host_path are candidates.
* ``*.sets`` map a trie key id to a "set id" (uint16 or uint32); the header's ``sets`` table maps a
  set id to the source lists that hold the key. Real data has a few hundred distinct sets, so a key
  costs two bytes beyond the trie.

* ``domains.hash`` and ``urls.hash`` (format version 2) are hash tables of the same keys with their set
  ids, for the compiled Squid helper path (:mod:`civicaup.channels.web.keyhash`; the header's
  ``hash_seeds`` are their seeds). Version-1 files (without them) are still read; the helper then decides
  on its pure-Python path.

The header carries a CRC-32 of the payload; a file that fails any check is refused whole.
"""
from __future__ import annotations

import json
import mmap
import os
import struct
import sys
import tempfile
import zlib
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import marisa_trie

from civicaup.channels.web import keyhash
from civicaup.durable import fsync_dir as _fsync_dir
from civicaup.errors import IndexError_

MAGIC = b"CAUPIDX\x00"
VERSION = 2
READABLE = (1, 2)
_FIXED = struct.Struct("<II")
_SECTIONS_V1 = ("domains.trie", "domains.sets", "urls.trie", "urls.sets")
_SECTIONS = (*_SECTIONS_V1, "domains.hash", "urls.hash")


@dataclass(frozen=True)
class ListInfo:
    """One source list: its name (``ut1/adult``) and the civicaup category it feeds."""

    name: str
    category: str


@dataclass
class IndexData:
    """A loaded index: the tries, their set arrays and the header fields. Holds the buffer alive."""

    lists: list[ListInfo]
    sets: list[tuple[int, ...]]
    domains: marisa_trie.Trie
    domain_sets: memoryview | array[int]
    urls: marisa_trie.Trie
    url_sets: memoryview | array[int]
    header: dict[str, object]
    buffer: object  # the mmap or bytes the tries are mapped from; must outlive them
    domain_hashes: memoryview | None = None  # keyhash tables, None in a version-1 file
    url_hashes: memoryview | None = None
    hash_seeds: tuple[int, int] = (0, 0)  # (domains, urls)


def encode(lists: list[ListInfo], domains: Mapping[str, int], urls: Mapping[str, int],
           extra: Mapping[str, object]) -> list[bytes]:
    """Serialise an index. *domains* and *urls* map a key to a bitmask of list ids (bit i = lists[i])."""
    set_ids: dict[int, int] = {}
    tries: dict[str, bytes] = {}
    key_sets: dict[str, list[int]] = {}
    hashed: dict[str, tuple[int, bytes]] = {}
    for name, table in (("domains", domains), ("urls", urls)):
        trie = marisa_trie.Trie(table.keys())
        ids = [0] * len(trie)
        for key, kid in trie.iteritems():
            ids[kid] = set_ids.setdefault(table[key], len(set_ids))
        tries[name], key_sets[name] = trie.tobytes(), ids
        hashed[name] = keyhash.build_table(list(table), [set_ids[mask] for mask in table.values()])
    typecode = "H" if len(set_ids) <= 0xFFFF else "I"
    sections: dict[str, bytes] = {f"{name}.hash": hashed[name][1] for name in ("domains", "urls")}
    for name in ("domains", "urls"):
        arr = array(typecode, key_sets.pop(name))
        if sys.byteorder != "little":
            arr.byteswap()
        sections[f"{name}.trie"], sections[f"{name}.sets"] = tries.pop(name), arr.tobytes()
    offsets: dict[str, list[int]] = {}
    payload: list[bytes] = []
    pos = crc = 0
    for name in _SECTIONS:
        data = sections[name]
        chunk = data + b"\x00" * (-len(data) % 8)
        offsets[name] = [pos, len(data)]
        payload.append(chunk)
        crc = zlib.crc32(chunk, crc)
        pos += len(chunk)
    masks = sorted(set_ids, key=set_ids.__getitem__)
    header = dict(extra)
    header.update(version=VERSION, typecode=typecode, hash_seeds=[hashed["domains"][0], hashed["urls"][0]],
                  payload_crc=crc, payload_len=pos, sections=offsets,
                  lists=[[x.name, x.category] for x in lists],
                  sets=[[i for i in range(mask.bit_length()) if mask >> i & 1] for mask in masks])
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-(len(MAGIC) + _FIXED.size + len(head)) % 8)
    return [MAGIC, _FIXED.pack(len(head), zlib.crc32(head)), head, *payload]


def write_atomic(path: Path, chunks: Iterable[bytes]) -> int:
    """Write *chunks* to a temp file beside *path*, fsync, then ``os.replace``; returns the size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
            size = f.tell()
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return size


def open_file(path: Path) -> tuple[IndexData, os.stat_result]:
    """mmap and check the index at *path*; raises IndexError_ (one line) if missing or corrupt."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_size == 0:
                raise IndexError_(f"category index {path} is empty; rebuild it")
            buf: object = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise IndexError_(f"no category index at {path}; build one first") from None
    except OSError as e:
        raise IndexError_(f"cannot read category index {path}: {e.strerror or e}") from None
    return decode(buf, str(path)), st


def decode(buf: object, where: str) -> IndexData:
    """Check and map an index held in *buf* (mmap or bytes); raises IndexError_ naming *where*."""
    view = memoryview(buf)  # type: ignore[arg-type]
    try:
        return _decode(buf, view, where)
    except IndexError_:
        raise
    except Exception as e:  # any malformed header or section
        raise IndexError_(f"category index {where} is corrupt ({type(e).__name__}); rebuild it") from None


def _decode(buf: object, view: memoryview, where: str) -> IndexData:
    def corrupt(why: str) -> IndexError_:
        return IndexError_(f"category index {where} is corrupt ({why}); rebuild it")

    start = len(MAGIC) + _FIXED.size
    if len(view) < start or bytes(view[:len(MAGIC)]) != MAGIC:
        raise corrupt("not a civicaup index file")
    head_len, head_crc = _FIXED.unpack_from(view, len(MAGIC))
    head = view[start:start + head_len]
    if len(head) != head_len or zlib.crc32(head) != head_crc:
        raise corrupt("header checksum mismatch")
    header = json.loads(bytes(head))
    version = header.get("version")
    if version not in READABLE:
        raise IndexError_(f"category index {where} has format version {version}, "
                          f"this civicaup reads {', '.join(map(str, READABLE))}; rebuild it")
    payload = view[start + head_len:]
    if len(payload) != header["payload_len"] or zlib.crc32(payload) != header["payload_crc"]:
        raise corrupt("truncated or damaged payload")
    parts: dict[str, memoryview] = {}
    for name in _SECTIONS if version >= 2 else _SECTIONS_V1:
        offset, length = header["sections"][name]
        parts[name] = payload[offset:offset + length]
    typecode = header["typecode"]
    tries: list[marisa_trie.Trie] = []
    sets: list[memoryview | array[int]] = []
    for name in ("domains", "urls"):
        trie = marisa_trie.Trie()
        trie.map(parts[f"{name}.trie"])
        ids: memoryview | array[int] = parts[f"{name}.sets"].cast(typecode)
        if sys.byteorder != "little":
            ids = array(typecode, ids)
            ids.byteswap()
        if len(ids) != len(trie):
            raise corrupt(f"{name} table size mismatch")
        tries.append(trie)
        sets.append(ids)
    lists = [ListInfo(name, category) for name, category in header["lists"]]
    set_table = [tuple(s) for s in header["sets"]]
    if any(i >= len(lists) for s in set_table for i in s):
        raise corrupt("list table mismatch")
    hashes: list[memoryview | None] = [None, None]
    seeds = (0, 0)
    if version >= 2:
        seeds = tuple(int(x) for x in header["hash_seeds"])  # type: ignore[assignment]
        for i, name in enumerate(("domains", "urls")):
            raw = parts[f"{name}.hash"]
            slots = len(raw) // keyhash.SLOT.size
            if len(raw) % keyhash.SLOT.size or slots != keyhash.capacity(len(tries[i])):
                raise corrupt(f"{name} hash table size mismatch")
            hashes[i] = raw
    return IndexData(lists=lists, sets=set_table, domains=tries[0], domain_sets=sets[0], urls=tries[1],
                     url_sets=sets[1], header=header, buffer=buf, domain_hashes=hashes[0],
                     url_hashes=hashes[1], hash_seeds=seeds)
