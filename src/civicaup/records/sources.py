"""Messages from files and folders: mbox (a file whose first line is "From "), Maildir (cur/ and new/),
single messages (.eml or any other file that starts with a header), found by walking folders.

The walk yields references (file, byte range), not bytes: worker processes read them, so a large import
never passes every message through one process, and never holds a mailbox in memory.
"""
from __future__ import annotations

import mmap
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from civicaup.errors import InputError

_HEADER = re.compile(rb"^[\x21-\x39\x3b-\x7e]+:")  # a field name and a colon
_SKIP_NAMES = {"dovecot-uidlist", "dovecot-keywords", "maildirfolder", "courierimapuiddb",
               "courierimapkeywords", "subscriptions"}


@dataclass(frozen=True)
class Ref:
    """One message: a whole file, or bytes [start, end) of an mbox."""
    source: str
    path: str
    start: int = 0
    end: int = -1

    def read(self) -> bytes | str:
        """The message bytes, or a sentence saying why this is not a message."""
        with open(self.path, "rb") as fh:
            if self.end >= 0:
                fh.seek(self.start)
                raw = fh.read(self.end - self.start)
            else:
                raw = fh.read()
        if self.end < 0 and raw.startswith(b"From "):  # a one-message mbox reached directly
            raw = raw[raw.find(b"\n") + 1:] if b"\n" in raw else b""
        if not raw.strip():
            return "empty"
        if not _HEADER.match(raw.lstrip(b"\r\n")[:200]):
            return "not a mail message (no header at the start)"
        return raw


def check_paths(paths: list[Path]) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise InputError(f"no such file or folder: {missing[0]}")


def iter_refs(paths: list[Path]) -> Iterator[Ref]:
    for path in paths:
        if path.is_dir():
            yield from _walk(path)
        else:
            yield from _file(path)


def _walk(folder: Path) -> Iterator[Ref]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        if {"cur", "new", "tmp"} <= set(dirnames):
            dirnames.remove("tmp")  # a Maildir: messages being delivered are not messages yet
        for name in sorted(filenames):
            low = name.lower()
            if low in _SKIP_NAMES or low.startswith("dovecot") or name.startswith("."):
                continue
            yield from _file(Path(dirpath) / name)


def _file(path: Path) -> Iterator[Ref]:
    try:
        with open(path, "rb") as fh:
            if fh.read(5) != b"From ":
                yield Ref(str(path), str(path))
                return
            yield from _mbox(fh, path)
    except OSError as exc:
        yield Ref(str(path), str(path))  # the worker reports why it cannot be read
        del exc


def _mbox(fh, path: Path) -> Iterator[Ref]:  # type: ignore[no-untyped-def]
    """Split on lines starting with "From " (mboxo/mboxrd, as Python's mailbox does); the From_ line and the
    blank line that separates messages are not part of a message."""
    size = os.fstat(fh.fileno()).st_size
    if size < 1 << 20:  # small (most often one message): no need to scan
        data = fh.read()
        if b"\nFrom " not in data:
            yield Ref(str(path), str(path))
            return
    with mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_READ) as mm:
        start, n = 0, 0
        while start < size:
            nl = mm.find(b"\n", start)
            body = size if nl < 0 else nl + 1
            nxt = mm.find(b"\nFrom ", body - 1)
            end = size if nxt < 0 else nxt + 1
            stop = end
            if mm[max(body, end - 4):end] == b"\r\n\r\n":
                stop = end - 2
            elif mm[max(body, end - 2):end] == b"\n\n":
                stop = end - 1
            n += 1
            yield Ref(f"{path}#{n}", str(path), body, stop)
            start = end
