"""MIME front end: raw RFC 5322 bytes to a `ParsedMail` the decision engine can read.

Malformed mail is parsed, never refused: what was wrong goes into `defects` / `problems`.
Parsing uses the stdlib feed parser with the compat32 policy (the modern policy costs ~12x the CPU), except for
the common single-part message with well-formed headers, which `_lean_message` reads into the same structure
without it (the milter's hot path; tests/mail/test_engine_equivalence.py holds the two to identical results);
headers, parameters and transfer encodings are decoded here, robustly and in linear time.
"""
from __future__ import annotations

import binascii
import functools
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesFeedParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

from civicaup.errors import MailParseError

from .attachments import (
    EICAR,
    EICAR_PROBLEM,
    Attachment,
    Ctx,
    Limits,
    build_attachment,
    clean_filename,
    decode_text,
    html_to_text,
)

log = logging.getLogger(__name__)

HEADER_VALUE_CAP = 65_536      # chars of one header value that are decoded
MAX_HEADERS = 10_000           # headers kept per message
PARAM_HEADER_CAP = 16_384      # chars of Content-Type / Content-Disposition searched for parameters
BODY_TEXT_CAP = Limits().max_total_text
_FEED_CHUNK = 65_536
_DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class TextPart:
    """An inline text part; HTML has been converted to text (content_type says what it was)."""
    content_type: str
    text: str


@dataclass(frozen=True)
class Address:
    """One mailbox: decoded display name and lowercased addr-spec ("" if none)."""
    name: str
    email: str


@dataclass(frozen=True)
class ParsedMail:
    """Everything the decision engine reads from one message."""
    subject: str
    from_: tuple[Address, ...]
    sender: Address | None
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    return_path: str | None
    date: datetime | None
    message_id: str | None
    headers: tuple[tuple[str, str], ...]
    texts: tuple[TextPart, ...]
    attachments: tuple[Attachment, ...]
    defects: tuple[str, ...]
    size: int

    def header(self, name: str) -> list[str]:
        """All values of a header, case-insensitively, in order."""
        key = name.lower()
        return [v for k, v in self.headers if k.lower() == key]

    def recipients(self) -> tuple[Address, ...]:
        """To + Cc + Bcc, first occurrence of each e-mail address."""
        seen: set[str] = set()
        out = []
        for addr in (*self.to, *self.cc, *self.bcc):
            if addr.email not in seen:
                seen.add(addr.email)
                out.append(addr)
        return tuple(out)

    def body_text(self) -> str:
        """Subject, text parts and attachment texts (members too), blank-line separated, capped."""
        pieces = [self.subject, *(t.text for t in self.texts)]
        stack = list(reversed(self.attachments))
        while stack:
            att = stack.pop()
            pieces.append(att.text)
            stack.extend(reversed(att.members))
        return "\n\n".join(p for p in pieces if p)[:BODY_TEXT_CAP]


# ---------------------------------------------------------------- parser plumbing

@dataclass
class _ParseState:
    ctx: Ctx
    base_depth: int


class _SafeMessage(Message):
    """compat32 Message that bounds the feed parser: no recursion past the depth/part limits,
    message/* bodies kept as raw bytes (parsed later, on demand), and linear boundary lookup."""

    def __init__(self, policy: Any = compat32, state: _ParseState | None = None) -> None:
        super().__init__(policy)
        self._civ_state = state
        self._civ_depth = state.base_depth if state else 0

    def attach(self, payload: Any) -> None:
        if isinstance(payload, _SafeMessage) and self._civ_state is not None:
            payload._civ_depth = self._civ_depth + 1
            self._civ_state.ctx.parsed_parts += 1
        super().attach(payload)

    def get_content_type(self) -> str:
        ctype = super().get_content_type()
        st = self._civ_state
        if ctype.startswith("message/") or (st is not None and (
                self._civ_depth > st.ctx.limits.max_depth or st.ctx.parsed_parts > st.ctx.limits.max_parts)):
            return "text/plain"  # the parser then keeps the body as one opaque payload
        return ctype

    def get_boundary(self, failobj: Any = None) -> Any:
        boundary = parse_params(fix_8bit(self.civ_header("content-type") or ""))[1].get("boundary")
        return boundary.rstrip() if boundary else failobj

    def civ_header(self, name: str) -> str | None:
        """First raw value of a header (8-bit bytes as surrogate escapes), or None."""
        key = name.lower()
        for k, v in self.raw_items():
            if k.lower() == key:
                return str(v)
        return None

    def civ_payload(self) -> Any:
        return getattr(self, "_payload", None)


class _LeanMessage:
    """A message read without the feed parser: what `_walk` and `_build` read of a `_SafeMessage` (the payload is
    the body text, or the parts of a multipart)."""
    __slots__ = ("_headers", "_payload", "_civ_depth", "defects")

    def __init__(self, headers: list[tuple[str, str]], payload: str | list[_LeanMessage], depth: int) -> None:
        self._headers, self._payload, self._civ_depth = headers, payload, depth
        self.defects: list[Any] = []

    def raw_items(self) -> Any:
        return iter(self._headers)

    def civ_header(self, name: str) -> str | None:
        return _first(self._headers, name.lower())

    def civ_payload(self) -> Any:
        return self._payload


# The header block as the compat32 feed parser accepts it without a defect: field-name ":" lines and their
# continuation lines, each ended by LF or CRLF (a lone CR ends a line there: such blocks go to the feed parser).
# A line starting "From " never matches (the space is not a field-name character).
# (Possessive *+: a line's characters are never given back, so a long line that fails costs one pass.)
_HEADER_BLOCK = re.compile(r"(?:[\041-\071\073-\176]++:[^\r\n]*+\r?\n(?:[ \t][^\r\n]*+\r?\n)*+)*+")
_HEADER_FIELD = re.compile(r"([\041-\071\073-\176]++):([^\r\n]*+(?:\r?\n[ \t][^\r\n]*+)*+)\r?\n")


def _lean_message(raw: bytes, ctx: Ctx, depth: int) -> _LeanMessage | None:
    """The message as the compat32 feed parser would build it, for the common cases it reads without a defect:
    well-formed header lines and a blank line, then either a body that is not multipart (one opaque payload) or
    a multipart body of such parts (`_lean_multipart`). Anything else: None, and the feed parser reads the
    message. The headers are split by two linear regular expressions and no body is ever cut into lines."""
    text = raw.decode("ascii", "surrogateescape")
    head = _lean_head(text)
    if head is None:
        return None
    headers, body = head
    ctype = _first(headers, "content-type")
    if ctype is not None and not ctype.isascii():
        return None
    if ctype is None or "multipart" not in ctype.lower():
        return _LeanMessage(headers, text[body:], depth)
    return _lean_multipart(text, headers, body, ctype, ctx, depth)


def _lean_head(text: str) -> tuple[list[tuple[str, str]], int] | None:
    """(headers, where the body starts) of a text whose header lines the feed parser reads without a defect."""
    end = _HEADER_BLOCK.match(text).end()  # type: ignore[union-attr] - the pattern matches the empty string
    if text.startswith("\r\n", end):
        body = end + 2
    elif text.startswith("\n", end):
        body = end + 1
    else:
        return None  # no blank line after the header lines, or a line the feed parser would treat otherwise
    # compat32's header_source_parse: leading blanks of the value dropped, line ends inside kept
    return [(m[1], m[2].lstrip(" \t")) for m in _HEADER_FIELD.finditer(text, 0, end)], body


def _first(headers: list[tuple[str, str]], name: str) -> str | None:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def _lean_multipart(text: str, headers: list[tuple[str, str]], body: int, ctype: str, ctx: Ctx,
                    depth: int) -> _LeanMessage | None:
    """One multipart level whose parts are all single-part, split where the feed parser splits it: parts between
    boundary lines, the line end before each boundary belonging to the boundary, preamble and epilogue dropped
    (nothing reads them). Every case where the feed parser notes a defect or behaves specially goes back to it:
    no usable boundary, a transfer encoding on the multipart, a lone CR, no start or no close boundary,
    adjacent boundary lines, a nested multipart or a part without a blank line, multipart/digest (its parts
    default to message/rfc822), and the depth and part limits (the parser then stops splitting)."""
    lim = ctx.limits
    if depth > lim.max_depth or ctx.parsed_parts > lim.max_parts:
        return None
    main = ctype.partition(";")[0].strip().lower()
    if main.count("/") != 1 or main.split("/")[0] != "multipart" or main == "multipart/digest":
        return None
    boundary = parse_params(ctype)[1].get("boundary")
    boundary = boundary.rstrip() if boundary else None
    cte = _first(headers, "content-transfer-encoding")
    if not boundary or (cte is not None and cte.lower() not in ("7bit", "8bit", "binary")):
        return None
    rest = text[body:]
    if rest.count("\r") != rest.count("\r\n"):
        return None
    marks = list(re.finditer(r"^--" + re.escape(boundary) + r"(--)?[ \t]*(?:\r?\n|\Z)", rest, re.MULTILINE))
    parts: list[_LeanMessage] = []
    for i, mark in enumerate(marks):
        if mark[1]:  # the close boundary
            break
        if i + 1 == len(marks) or marks[i + 1].start() == mark.end():
            return None  # no close boundary, or boundary lines one after the other
        child = _lean_part(rest[mark.end():marks[i + 1].start()], depth + 1)
        if child is None:
            return None
        parts.append(child)
    else:
        return None
    if not parts or ctx.parsed_parts + len(parts) > lim.max_parts:
        return None
    ctx.parsed_parts += len(parts)
    return _LeanMessage(headers, parts, depth)


def _lean_part(text: str, depth: int) -> _LeanMessage | None:
    """One single-part body part; its last line end belongs to the boundary that follows."""
    head = _lean_head(text)
    if head is None:
        return None
    headers, body = head
    ctype = _first(headers, "content-type")
    if ctype is not None and (not ctype.isascii() or "multipart" in ctype.lower()):
        return None
    payload = text[body:]
    if payload.endswith("\r\n"):
        payload = payload[:-2]
    elif payload.endswith("\n"):
        payload = payload[:-1]
    return _LeanMessage(headers, payload, depth)


def _parse_bytes(raw: bytes, ctx: Ctx, depth: int) -> _SafeMessage | _LeanMessage:
    """The common message without the feed parser (`_lean_message`); else feed the parser in chunks and stop
    feeding once the part limit is passed."""
    lean = _lean_message(raw, ctx, depth)
    if lean is not None:
        return lean
    parser = BytesFeedParser(_factory=functools.partial(_SafeMessage, state=_ParseState(ctx, depth)),
                             policy=compat32)
    for start in range(0, len(raw), _FEED_CHUNK):
        parser.feed(raw[start:start + _FEED_CHUNK])
        if ctx.parsed_parts > ctx.limits.max_parts and start + _FEED_CHUNK < len(raw):
            ctx.feed_cut = True  # the rest is never read; its missing close boundary is our doing
            break
    msg = parser.close()
    assert isinstance(msg, _SafeMessage)
    return msg


# ---------------------------------------------------------------- header decoding

_FOLD = re.compile(r"\r?\n[ \t]")
_EW = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/=]+")
_PARAM = re.compile(r';\s*([^\s=;"]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)', re.DOTALL)
_CONTINUATION = re.compile(r"(.+?)\*(\d{1,3})(\*?)|(.+?)(\*)")
_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")


def fix_8bit(text: str, hint: str | None = None) -> str:
    """Raw 8-bit header text (surrogate escapes) to str: utf-8, else the hint charset, else cp1252."""
    if text.isascii():
        return text
    data = text.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return decode_text(data, hint)[0]


def b64decode(data: bytes) -> tuple[bytes, list[str]]:
    """Lenient base64: junk ignored, concatenated chunks kept, missing padding repaired and reported."""
    first_pad = data.find(b"=")
    if first_pad < 0 or not data[first_pad:].strip(b"= \t\r\n"):
        try:
            return binascii.a2b_base64(data), []
        except binascii.Error:
            pass
    out, problems = [], []
    segments = [s for s in _B64_JUNK.sub(b"", data).split(b"=") if s]
    for i, seg in enumerate(segments):
        if len(seg) % 4 == 1:
            seg = seg[:-1]
        if len(seg) % 4 and i == len(segments) - 1 and not data.rstrip().endswith(b"="):
            problems.append("truncated base64")
        try:
            out.append(binascii.a2b_base64(seg + b"=" * (-len(seg) % 4)))
        except binascii.Error:
            problems.append("bad base64")
    return b"".join(out), problems


def _uudecode(data: bytes) -> tuple[bytes, list[str]]:
    out, problems, started = [], [], False
    for line in data.splitlines():
        if not started:
            started = line.startswith(b"begin ")
            continue
        if line.strip() in (b"end", b"`", b""):
            if line.strip() == b"end":
                break
            continue
        try:
            out.append(binascii.a2b_uu(line))
        except binascii.Error:
            try:  # trailing garbage from bad encoders, as the old uu module tolerated
                out.append(binascii.a2b_uu(line[: (((line[0] - 32) & 63) * 4 + 5) // 3]))
            except (binascii.Error, IndexError):
                problems.append("bad uuencode")
    return b"".join(out), problems


def decode_transfer(payload: str, cte: str) -> tuple[bytes, list[str]]:
    """Undo a Content-Transfer-Encoding; never raises."""
    raw = payload.encode("utf-8", "surrogateescape")
    if cte == "base64":
        return b64decode(raw)
    if cte == "quoted-printable":
        return binascii.a2b_qp(raw), []
    if cte in ("x-uuencode", "uuencode", "x-uue", "uue"):
        return _uudecode(raw)
    if cte in ("", "7bit", "8bit", "binary"):
        return raw, []
    return raw, [f"unknown transfer encoding {cte[:40]}"]


def _word_bytes(enc: str, text: str) -> bytes:
    raw = text.encode("utf-8", "surrogateescape")
    return b64decode(raw)[0] if enc in "bB" else binascii.a2b_qp(raw, header=True)


def decode_header_value(value: str, defects: list[str] | None = None, hint: str | None = None) -> str:
    """Unfold and decode RFC 2047 encoded words (adjacent words joined before decoding)."""
    if "=?" not in value and value.isascii() and "\n" not in value and "\r" not in value:
        return value[:HEADER_VALUE_CAP].strip()  # the common case: nothing to unfold or decode
    text = value[:HEADER_VALUE_CAP]
    if "\n" in text:
        text = _FOLD.sub(" ", text).replace("\n", " ")
    text = text.replace("\r", " ").strip()
    if "=?" not in text:
        return fix_8bit(text, hint)
    out: list[str] = []
    pending: list[bytes] = []
    charset = ""

    def flush() -> None:
        if pending:
            decoded, problem = decode_text(b"".join(pending), charset)
            out.append(decoded)
            if problem and defects is not None and problem not in defects:
                defects.append(problem)
            pending.clear()

    pos = 0
    for m in _EW.finditer(text):
        gap = text[pos:m.start()]
        if gap and not (pending and gap.isspace()):
            flush()
            out.append(fix_8bit(gap, hint))
        word_charset = m.group(1).split("*")[0].lower()
        if pending and word_charset != charset:
            flush()
        charset = word_charset
        pending.append(_word_bytes(m.group(2), m.group(3)))
        pos = m.end()
    flush()
    out.append(fix_8bit(text[pos:], hint))
    return "".join(out)


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_params(value: str) -> tuple[str, dict[str, str]]:
    """(lowercased type, {param: value}) with RFC 2231 continuations and charsets; linear time."""
    value = value[:PARAM_HEADER_CAP].replace("\r", "").replace("\n", "")
    main, _, rest = value.partition(";")
    plain: dict[str, str] = {}
    pieces: dict[str, list[tuple[int, bool, str]]] = {}
    for m in _PARAM.finditer(";" + rest):
        name, val = m.group(1).lower(), m.group(2).strip()
        c = _CONTINUATION.fullmatch(name)
        if c and c.group(1):
            pieces.setdefault(c.group(1), []).append((int(c.group(2)), bool(c.group(3)), val))
        elif c:
            pieces.setdefault(c.group(4), []).append((0, True, val))
        else:
            plain.setdefault(name, _unquote(val))
    for name, segs in pieces.items():
        segs.sort(key=lambda s: s[0])
        charset, chunks = None, []
        for index, extended, val in segs[:100]:
            val = _unquote(val)
            if extended:
                if index == 0 and val.count("'") >= 2:
                    charset, _, val = val.split("'", 2)
                chunks.append(unquote_to_bytes(val))
            else:
                chunks.append(val.encode("utf-8", "surrogateescape"))
        plain[name] = decode_text(b"".join(chunks), charset)[0]
    return main.strip().lower(), plain


_ATOM = r"[^ \t\r\n\"()<>@,:;.\[\]\\]+"
_ADDR_SPEC = rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*"
_PHRASE_WORD = r"[^ \t\r\n\"()<>@,:;\[\]\\]+"  # a phrase's atoms may hold dots
_SIMPLE_ADDRESS = re.compile(
    rf"[ \t]*(?:(?P<bare>{_ADDR_SPEC})"
    rf"|(?:\"(?P<quoted>[^\"\\\r\n]*)\"|(?P<phrase>{_PHRASE_WORD}(?:[ \t]+{_PHRASE_WORD})*))?"
    rf"[ \t]*<(?P<route>{_ADDR_SPEC})>)[ \t]*")
_LWS = re.compile(r"[ \t]+")


def _simple_addresses(text: str) -> list[tuple[str, str]] | None:
    """getaddresses() of one common mailbox form ("a@b", "Name <a@b>", "\"Name\" <a@b>", "<a@b>") without its
    tokenizer, with the same result; None for anything else (which getaddresses then reads)."""
    m = _SIMPLE_ADDRESS.fullmatch(text)
    if m is None:
        return None
    if m["bare"]:
        return [("", m["bare"])]
    if m["quoted"] is not None:
        return [(m["quoted"], m["route"])]
    return [(" ".join(_LWS.split(m["phrase"])) if m["phrase"] else "", m["route"])]


def _addresses(values: list[str], defects: list[str], hint: str | None) -> tuple[Address, ...]:
    out: list[Address] = []
    for value in values:
        text = fix_8bit(_FOLD.sub(" ", value[:HEADER_VALUE_CAP]), hint)
        try:
            pairs = _simple_addresses(text) or getaddresses([text])
        except Exception:  # noqa: BLE001 - e.g. RecursionError on deeply nested comments
            defects.append("unparseable address header")
            pairs = [("", e) for e in _EMAIL.findall(text)]
        for name, email in pairs:
            name = decode_header_value(name, defects, hint).strip() if name else ""
            email = email.strip().strip("<>").lower()
            if name or email:
                out.append(Address(name, email))
    return tuple(out)


def _date(value: str | None, defects: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except Exception:  # noqa: BLE001 - ValueError, TypeError, OverflowError on junk
        defects.append("unparseable Date header")
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# ---------------------------------------------------------------- walking

_DEFECT_TEXT = {
    "NoBoundaryInMultipartDefect": "missing MIME boundary",
    "StartBoundaryNotFoundDefect": "MIME start boundary not found",
    "CloseBoundaryNotFoundDefect": "MIME close boundary not found (truncated?)",
    "FirstHeaderLineIsContinuationDefect": "first header line is a continuation",
    "MisplacedEnvelopeHeaderDefect": "misplaced envelope From line",
    "MissingHeaderBodySeparatorDefect": "missing blank line after headers",
    "MultipartInvariantViolationDefect": "multipart without parts",
    "InvalidMultipartContentTransferEncodingDefect": "transfer encoding on a multipart",
    "InvalidHeaderDefect": "invalid header",
}
_TEXTUAL_MESSAGE = {"message/delivery-status", "message/disposition-notification", "message/feedback-report"}


@dataclass
class _Acc:
    texts: list[TextPart] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    def defect(self, text: str) -> None:
        if text not in self.defects:
            self.defects.append(text)


def _walk(msg: _SafeMessage | _LeanMessage, ctx: Ctx, acc: _Acc, in_digest: bool = False) -> None:
    lim = ctx.limits
    if ctx.stopped:
        return
    ctx.walked_parts += 1
    if ctx.walked_parts > lim.max_parts:
        ctx.stopped = True
        ctx.note(f"part limit reached ({lim.max_parts})")
        return
    for d in msg.defects:
        name = type(d).__name__
        if ctx.feed_cut and name == "CloseBoundaryNotFoundDefect":
            continue
        acc.defect(_DEFECT_TEXT.get(name) or re.sub(r"(?<!^)(?=[A-Z])", " ", name.removesuffix("Defect")).lower())
    depth = msg._civ_depth
    if depth > lim.max_depth:
        ctx.note(f"nesting depth limit reached ({lim.max_depth})")
        return
    raw_type = msg.civ_header("content-type")
    ctype, params = parse_params(fix_8bit(raw_type)) if raw_type else ("", {})
    if not re.fullmatch(r"[a-z0-9!#$&.+^_-]+/[a-z0-9!#$&.+^_-]+", ctype):
        if raw_type is not None:
            acc.defect("invalid Content-Type")
        ctype = "message/rfc822" if in_digest else "text/plain"
    payload = msg.civ_payload()
    if isinstance(payload, list):
        for child in payload:
            if isinstance(child, (_SafeMessage, _LeanMessage)):
                _walk(child, ctx, acc, ctype == "multipart/digest")
        return
    if ctype.startswith("multipart/"):
        ctype = "text/plain"  # no usable boundary: the body is one text
    try:
        _leaf(msg, ctype, params, payload if isinstance(payload, str) else "", ctx, depth, acc)
    except Exception as exc:  # noqa: BLE001 - one bad part must not lose the message
        log.warning("mail part processing failed: %s", type(exc).__name__)
        acc.defect(f"part {ctx.walked_parts} could not be processed ({type(exc).__name__})")


def _leaf(msg: _SafeMessage | _LeanMessage, ctype: str, params: dict[str, str], payload: str, ctx: Ctx,
          depth: int, acc: _Acc) -> None:
    cte = (msg.civ_header("content-transfer-encoding") or "").strip().lower()
    data, problems = decode_transfer(payload, cte)
    raw_disp = msg.civ_header("content-disposition")
    disposition, dparams = parse_params(fix_8bit(raw_disp)) if raw_disp else ("", {})
    filename = dparams.get("filename") or params.get("name")
    if filename and "=?" in filename:
        filename = decode_header_value(filename)
    filename = clean_filename(filename)
    charset = params.get("charset")
    inline_text = ctype.startswith("text/") or ctype in _TEXTUAL_MESSAGE
    if inline_text and disposition != "attachment" and filename is None:
        for p in problems:
            acc.defect(p)
        if EICAR in data:
            acc.defect(EICAR_PROBLEM)
        text, problem = decode_text(data[: ctx.limits.max_part_text * 4], charset)
        if problem:
            acc.defect(problem)
        if ctype == "text/html":
            acc.texts.append(TextPart("text/html", ctx.take_text(html_to_text(text))))
        else:
            acc.texts.append(TextPart("text/plain", ctx.take_text(text)))
        return
    acc.attachments.append(build_attachment(data, filename, ctype, charset, ctx, depth, problems=problems))


def _nested(raw: bytes, ctx: Ctx, depth: int) -> tuple[str, tuple[Attachment, ...], tuple[str, ...]]:
    """Parse an attached message: (subject + texts, its attachments, its defects)."""
    if ctx.stopped:
        return "", (), ()
    try:
        msg = _parse_bytes(raw, ctx, depth)
        acc = _Acc()
        _walk(msg, ctx, acc)
        subject = decode_header_value(msg.civ_header("subject") or "", acc.defects)
        text = "\n\n".join(p for p in [subject, *(t.text for t in acc.texts)] if p)
        return text, tuple(acc.attachments), tuple(acc.defects)
    except Exception as exc:  # noqa: BLE001
        log.warning("nested message parse failed: %s", type(exc).__name__)
        return "", (), (f"nested message unreadable ({type(exc).__name__})",)


# ---------------------------------------------------------------- public entry points

def _build(raw: bytes, limits: Limits) -> ParsedMail:
    ctx = Ctx(limits=limits, parse_nested=_nested)
    msg = _parse_bytes(raw, ctx, 0)
    acc = _Acc()
    hint = parse_params(fix_8bit(msg.civ_header("content-type") or ""))[1].get("charset")
    headers: list[tuple[str, str]] = []
    raw_values: dict[str, list[str]] = {}  # every raw value by lowercased name (the address headers are read here)
    decoded: dict[str, str] = {}  # the first decoded value of each of the kept headers
    over = False
    for name, value in msg.raw_items():
        value, key = str(value), name.lower()
        raw_values.setdefault(key, []).append(value)
        if len(headers) >= MAX_HEADERS:
            if not over:
                acc.defect(f"header limit reached ({MAX_HEADERS})")
                over = True
            continue
        if len(value) > HEADER_VALUE_CAP:
            acc.defect(f"oversized {name} header truncated")
        text = decode_header_value(value, acc.defects, hint)
        headers.append((name, text))
        decoded.setdefault(key, text)
    _walk(msg, ctx, acc)

    def addrs(name: str) -> tuple[Address, ...]:
        return _addresses(raw_values.get(name, []), acc.defects, hint)

    sender = addrs("sender")
    return_path = decoded.get("return-path")
    if return_path is not None:
        m = re.search(r"<([^<>]*)>", return_path)
        return_path = (m.group(1) if m else return_path).strip().lower()
    return ParsedMail(
        subject=decoded.get("subject", ""), from_=addrs("from"), sender=sender[0] if sender else None,
        reply_to=addrs("reply-to"), to=addrs("to"), cc=addrs("cc"), bcc=addrs("bcc"), return_path=return_path,
        date=_date(decoded.get("date"), acc.defects), message_id=decoded.get("message-id") or None,
        headers=tuple(headers), texts=tuple(acc.texts), attachments=tuple(acc.attachments),
        defects=tuple(dict.fromkeys([*acc.defects, *ctx.notes])), size=len(raw))


def parse_mail(raw: bytes, *, limits: Limits = _DEFAULT_LIMITS) -> ParsedMail:
    """Parse one message. Raises MailParseError only for empty or non-bytes input."""
    if isinstance(raw, (bytearray, memoryview)):
        raw = bytes(raw)
    if not isinstance(raw, bytes):
        raise MailParseError(f"message must be bytes, not {type(raw).__name__}")
    if not raw:
        raise MailParseError("empty message")
    try:
        return _build(raw, limits)
    except Exception as exc:  # noqa: BLE001 - last resort: a degraded result beats a dead milter
        log.warning("mail parse failed, degraded result: %s", type(exc).__name__)
        text = decode_text(raw[: limits.max_part_text], None)[0]
        return ParsedMail("", (), None, (), (), (), (), None, None, None, (), (TextPart("text/plain", text),), (),
                          (f"parser failure ({type(exc).__name__})",), len(raw))


def parse_mail_file(path: str | os.PathLike[str]) -> ParsedMail:
    """Read and parse a message file; a leading mbox "From " line is dropped."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise MailParseError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from exc
    if raw.startswith(b"From "):
        newline = raw.find(b"\n")
        raw = raw[newline + 1:] if newline >= 0 else b""
    return parse_mail(raw)


__all__ = ["Address", "Attachment", "Limits", "MailParseError", "ParsedMail", "TextPart", "parse_mail",
           "parse_mail_file"]
