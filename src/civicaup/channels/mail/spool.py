"""A message being received: kept in memory up to a threshold, then streamed to a file on disk.

The filters (milter, relay) write the message here chunk by chunk; the SHA-256 and the size are computed as
the bytes go by, so storing, hashing and journaling never need a second pass or the whole message in memory.

For the decision engine a message on disk is *reduced* before parsing: every MIME part is kept up to a budget
(enough for the text and the type sniffing of real documents) and the true decoded size of each cut part is
recorded, so the size checks (e.g. "attachments over 50 MB") still see the real sizes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from civicaup.channels.mail.mime import ParsedMail, decode_transfer, fix_8bit, parse_mail, parse_params

DEFAULT_MEMORY_LIMIT = 1 << 20        # bytes kept in memory before the message moves to disk
PART_KEEP = 8 << 20                   # encoded bytes of one part kept for analysis of a message on disk
TOTAL_KEEP = 24 << 20                 # encoded bytes kept for analysis in all
_LINE_MAX = 1 << 16


class Spool:
    """Append-only message buffer: memory first, a private temporary file past `memory_limit` bytes."""

    def __init__(self, memory_limit: int = DEFAULT_MEMORY_LIMIT, directory: str | os.PathLike[str] | None = None):
        self.memory_limit = memory_limit
        self.directory = directory
        self._mem: bytearray | None = bytearray()
        self._file: BinaryIO | None = None
        self.path: Path | None = None
        self.size = 0
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._hash.update(data)
        self.size += len(data)
        if self._mem is not None:
            if len(self._mem) + len(data) <= self.memory_limit:
                self._mem += data
                return
            self._to_disk()
        assert self._file is not None
        self._file.write(data)

    def _to_disk(self) -> None:
        if self.directory is not None:
            Path(self.directory).mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="msg-", suffix=".eml", dir=self.directory)
        self._file = os.fdopen(fd, "w+b")
        self.path = Path(name)
        assert self._mem is not None
        self._file.write(self._mem)
        self._mem = None

    @property
    def on_disk(self) -> bool:
        return self._file is not None

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def getvalue(self) -> bytes:
        """The whole message as bytes; only for messages still in memory."""
        if self._mem is None:
            raise ValueError("the message is on disk: read it with open()")
        return bytes(self._mem)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def open(self) -> BinaryIO:
        """A new reader over the whole message, from the start."""
        if self._mem is not None:
            return io.BytesIO(bytes(self._mem))
        self.flush()
        assert self.path is not None
        return open(self.path, "rb")

    def head(self, n: int) -> bytes:
        with self.open() as fp:
            return fp.read(n)

    def close(self) -> None:
        """Forget the message and remove its temporary file."""
        if self._file is not None:
            try:
                self._file.close()
            finally:
                if self.path is not None:
                    try:
                        self.path.unlink()
                    except FileNotFoundError:
                        pass
        self._file = None
        self._mem = bytearray()
        self.path = None
        self.size = 0
        self._hash = hashlib.sha256()

    def __enter__(self) -> "Spool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- analysis of messages on disk

@dataclass
class _Part:
    cte: str = ""
    kept: bytearray = dataclasses.field(default_factory=bytearray)
    encoded: int = 0          # encoded size of the whole body
    b64_chars: int = 0        # base64 alphabet characters in the whole body
    truncated: bool = False


@dataclass(frozen=True)
class CutPart:
    """A part whose body was cut for analysis: the hash of the kept, decoded bytes and its true decoded size."""
    kept_sha256: str
    size: int


_HEADER_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:(.*)$", re.DOTALL)


def _header_values(lines: list[bytes]) -> dict[str, str]:
    """Unfolded header values by lowercased name (first occurrence)."""
    out: dict[str, str] = {}
    current: list[bytes] | None = None
    name = ""
    for line in lines + [b"X:"]:
        if line[:1] in (b" ", b"\t") and current is not None:
            current.append(line.strip())
            continue
        if current is not None and name not in out:
            out[name] = fix_8bit(b" ".join(current).decode("ascii", "surrogateescape"))
        m = _HEADER_NAME.match(line.rstrip(b"\r\n"))
        if m:
            name, current = m.group(1).decode("ascii").lower(), [m.group(2).strip()]
        else:
            current = None
    return out


def reduce_for_analysis(fp: BinaryIO, *, part_keep: int = PART_KEEP,
                        total_keep: int = TOTAL_KEEP) -> tuple[bytes, list[CutPart]]:
    """Stream a message and return it with every leaf body kept up to `part_keep` bytes (and `total_keep` in all),
    whole lines only, plus the cut parts. Multipart structure and all headers are kept as they are."""
    out = bytearray()
    cuts: list[CutPart] = []
    boundaries: list[bytes] = []
    state = "headers"
    header_lines: list[bytes] = []
    part: _Part | None = None
    kept_total = 0
    line_start = True

    def boundary_of(line: bytes) -> tuple[int, bool] | None:
        if not line.startswith(b"--"):
            return None
        s = line.rstrip(b"\r\n").rstrip(b" \t")
        for i in range(len(boundaries) - 1, -1, -1):
            b = boundaries[i]
            if s == b"--" + b:
                return i, False
            if s == b"--" + b + b"--":
                return i, True
        return None

    def finish_part(by_boundary: bool) -> None:
        nonlocal part
        if part is None:
            return
        if part.truncated:
            payload = bytes(part.kept)
            if by_boundary:  # the line break before a boundary belongs to the boundary
                payload = payload[:-2] if payload.endswith(b"\r\n") else payload.rstrip(b"\n\r")
            data, _ = decode_transfer(payload.decode("ascii", "surrogateescape"), part.cte)
            true = part.b64_chars * 3 // 4 if part.cte == "base64" else part.encoded
            cuts.append(CutPart(hashlib.sha256(data).hexdigest(), max(true, len(data))))
        part = None

    def start_body() -> str:
        nonlocal part
        values = _header_values(header_lines)
        ctype, params = parse_params(values.get("content-type", ""))
        boundary = params.get("boundary")
        if ctype.startswith("multipart/") and boundary:
            boundaries.append(boundary.rstrip().encode("utf-8", "surrogateescape"))
            return "preamble"
        part = _Part(cte=values.get("content-transfer-encoding", "").strip().lower())
        return "body"

    for line in iter(lambda: fp.readline(_LINE_MAX), b""):
        starts = line_start
        line_start = line.endswith(b"\n")
        if state == "headers":
            if starts and line in (b"\r\n", b"\n"):
                out += line
                state = start_body()
                header_lines = []
                continue
            if starts:
                header_lines.append(line)
            elif header_lines:
                header_lines[-1] += line
            out += line
            continue
        hit = boundary_of(line) if starts and boundaries else None
        if hit is not None:
            finish_part(True)
            if out and not out.endswith(b"\n"):  # a body cut inside an overlong line
                out += b"\r\n"
            index, closing = hit
            del boundaries[index + (1 if not closing else 0):]
            out += line
            state = "epilogue" if closing else "headers"
            continue
        if state == "body" and part is not None:
            part.encoded += len(line)
            if part.cte == "base64":
                part.b64_chars += len(line.strip()) - line.count(b"=")
            if not part.truncated and len(part.kept) + len(line) <= part_keep and kept_total + len(line) <= total_keep:
                part.kept += line
                out += line
                kept_total += len(line)
            else:
                part.truncated = True
            continue
        if len(out) < total_keep:  # preamble, epilogue
            out += line
    if state == "headers" and header_lines:
        out += b"\r\n"
    finish_part(False)
    return bytes(out), cuts


def parse_spooled(spool: Spool) -> ParsedMail:
    """The message for the engine: parsed whole when in memory, else reduced first with true part sizes kept."""
    if not spool.on_disk:
        return parse_mail(spool.getvalue() or b"\r\n")
    with spool.open() as fp:
        return parse_reduced(fp, spool.size)


def parse_file(path: str | os.PathLike[str], memory_limit: int = DEFAULT_MEMORY_LIMIT) -> ParsedMail:
    size = os.path.getsize(path)
    with open(path, "rb") as fp:
        if size <= memory_limit:
            return parse_mail(fp.read() or b"\r\n")
        return parse_reduced(fp, size)


def parse_reduced(fp: BinaryIO, size: int) -> ParsedMail:
    reduced, cuts = reduce_for_analysis(fp, part_keep=PART_KEEP, total_keep=TOTAL_KEEP)
    mail = parse_mail(reduced or b"\r\n")
    if not cuts:
        return dataclasses.replace(mail, size=size)
    sizes: dict[str, list[int]] = {}
    for c in cuts:
        sizes.setdefault(c.kept_sha256, []).append(c.size)
    fixed = []
    for a in mail.attachments:
        found = sizes.get(a.sha256)
        fixed.append(dataclasses.replace(a, size=found.pop(0)) if found else a)
    note = f"{len(cuts)} large part(s) analysed in part (true sizes kept)"
    return dataclasses.replace(mail, attachments=tuple(fixed), size=size, defects=(*mail.defects, note))
