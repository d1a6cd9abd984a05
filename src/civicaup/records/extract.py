"""What the archive keeps about a message besides its bytes: metadata and the text to index.

Parsing is civicaup's MIME front end (compat32, never raises on malformed mail), through a lean path
for ingest: the same parser and part walk (texts, HTML to text, attachments and their text), but only
the headers the archive keeps are decoded, and addresses are taken by pattern rather than by the
stdlib's address parser (together a third of the full parse). Any failure there falls back to
`parse_mail`. Text is cleaned for both databases: no NUL characters, no lone surrogates, capped.
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Sequence

from civicaup.channels.mail import mime
from civicaup.channels.mail.attachments import Attachment, Ctx, decode_text, html_to_text
from civicaup.channels.mail.mime import ParsedMail, TextPart, parse_mail

log = logging.getLogger(__name__)
_EMAIL = re.compile(r"[\w.+'=-]+@[\w-]+(?:\.[\w-]+)+")
_FOLD = re.compile(r"\r?\n[ \t]")
_NOISE = re.compile(r'"(?:[^"\\]|\\.)*"|\([^()]*\)')  # quoted strings, comments
_ADDR = re.compile(r"<\s*([^<>\s]+@[^<>\s]+?)\s*>|([\w.+'=-]+@[\w-]+(?:\.[\w-]+)+)")
_KEEP = {"subject", "from", "to", "cc", "bcc", "date", "message-id", "received", "content-type"}

INDEX_TEXT_CAP = 400_000  # characters of body text indexed per message
EPOCH_FLOOR = datetime(1971, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Extracted:
    sha256: str
    size: int
    message_id: str
    date: datetime | None  # None: no usable date in the message
    date_source: str  # header, received, none
    from_addr: str
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    subject: str
    attachments: tuple[str, ...]
    body: str


def clean(text: str, cap: int | None = None) -> str:
    if cap is not None and len(text) > cap:
        text = text[:cap]
    if "\x00" in text:
        text = text.replace("\x00", " ")
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _usable(d: datetime | None, now: datetime) -> datetime | None:
    if d is None:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    try:
        d = d.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None
    return d if EPOCH_FLOOR <= d <= now + timedelta(days=2) else None


def _received_date(values: list[str], now: datetime) -> datetime | None:
    for value in values[:3]:
        _, sep, when = value.rpartition(";")
        if not sep:
            continue
        try:
            d = _usable(parsedate_to_datetime(when.strip()), now)
        except (TypeError, ValueError, IndexError, OverflowError):
            continue
        if d is not None:
            return d
    return None


def _attachment_names(attachments: Sequence[Attachment]) -> tuple[str, ...]:
    names: list[str] = []
    stack = list(reversed(attachments))
    while stack:
        att = stack.pop()
        if att.filename:
            names.append(clean(att.filename, 255))
        stack.extend(reversed(att.members))
    return tuple(names)


def body_text(mail: ParsedMail) -> str:
    """Text parts and attachment texts (zip members too); the subject is indexed on its own."""
    return _body(mail.texts, mail.attachments)


def _body(texts: Sequence[TextPart], attachments: Sequence[Attachment]) -> str:
    pieces = [t.text for t in texts]
    stack = list(reversed(attachments))
    while stack:
        att = stack.pop()
        pieces.append(att.text)
        stack.extend(reversed(att.members))
    return clean("\n\n".join(p for p in pieces if p), INDEX_TEXT_CAP)


def extract(raw: bytes, now: datetime | None = None, sha256: str | None = None) -> Extracted:
    now = now or datetime.now(timezone.utc)
    sha = sha256 or hashlib.sha256(raw).hexdigest()
    try:
        return _lean(raw, now, sha)
    except Exception as exc:  # noqa: BLE001 - the full parser never raises on malformed mail
        log.debug("lean extract failed (%s), using parse_mail", type(exc).__name__)
    return _full(raw, now, sha)


def _full(raw: bytes, now: datetime, sha: str) -> Extracted:
    mail = parse_mail(raw)
    date, source = _usable(mail.date, now), "header"
    if date is None:
        date, source = _received_date(mail.header("received"), now), "received"
        if date is None:
            source = "none"
    sender = mail.from_[0] if mail.from_ else None
    return Extracted(
        sha256=sha, size=len(raw),
        message_id=clean((mail.message_id or "").strip(), 998), date=date, date_source=source,
        from_addr=clean(sender.email if sender else "", 320), from_name=clean(sender.name if sender else "", 200),
        to=tuple(dict.fromkeys(clean(a.email, 320) for a in mail.to if a.email)),
        cc=tuple(dict.fromkeys(clean(a.email, 320) for a in mail.cc if a.email)),
        bcc=tuple(dict.fromkeys(clean(a.email, 320) for a in mail.bcc if a.email)),
        subject=clean(mail.subject, 2000), attachments=_attachment_names(mail.attachments), body=body_text(mail))


def _emails(values: list[str]) -> tuple[str, ...]:
    """Addresses in header order: <angle-addr> where given, else a bare addr-spec; quoted names and
    comments are blanked first, so a display name that looks like an address is not taken for one."""
    out: list[str] = []
    for v in values:
        text = _NOISE.sub(" ", mime.fix_8bit(_FOLD.sub(" ", v[:65536])))
        for m in _ADDR.finditer(text):
            e = (m.group(1) or m.group(2) or "").strip().lower().strip(".")
            if "@" in e:
                out.append(e)
    return tuple(dict.fromkeys(clean(e, 320) for e in out if e))


def _display_name(value: str, hint: str | None) -> str:
    text = _FOLD.sub(" ", value[:2000])
    if "<" in text:
        name = text.split("<", 1)[0]
    else:
        m = re.search(r"\(([^()]*)\)", text)
        name = m.group(1) if m else ""
    name = mime.decode_header_value(name.strip(), None, hint).strip().strip('"').strip()
    return clean(name, 200)


_FIELD = re.compile(r"[\x21-\x39\x3b-\x7e]+:")  # a header field name and its colon (as the feed parser reads it)
_BLANK = re.compile(r"\r?\n\r?\n")


def _single_part(raw: bytes, ctx: Ctx) -> tuple[dict[str, list[str]], list[TextPart]] | None:
    """The headers the archive keeps and the text of a plain single-part message (text/plain or text/html,
    inline, not multipart), without the feed parser: it gives the same values (header values as compat32
    keeps them, the body as its payload) at a fraction of the cost. None for anything else, which takes
    the full path; tests/records/test_extract.py compares the two on the whole corpus."""
    text = raw.decode("ascii", "surrogateescape")
    m = _BLANK.search(text)
    if m is None or m.start() == 0 or text.startswith("From "):
        return None
    block, payload = text[:m.start()], text[m.end():]
    if "\r" in block.replace("\r\n", ""):
        return None  # bare CR line ends: the feed parser's line splitting differs
    fields: list[list[str]] = []
    for line in block.split("\n"):
        if line[:1] in (" ", "\t"):
            if not fields:
                return None
            fields[-1].append(line)
        elif _FIELD.match(line):
            fields.append([line])
        else:
            return None  # not a header line: the feed parser would start the body here
    headers: dict[str, list[str]] = {}
    first: dict[str, str] = {}
    for lines in fields:
        name, _, value = lines[0].partition(":")
        # compat32: the first line's value left-stripped, continuation lines kept with their line ends
        value = "\n".join([value.lstrip(" \t"), *lines[1:]]).rstrip("\r\n")
        key = name.lower()
        first.setdefault(key, value)
        if key in _KEEP:
            headers.setdefault(key, []).append(value)
    raw_type = first.get("content-type")
    if raw_type is not None and ("multipart" in raw_type.lower() or "message" in raw_type.lower()):
        return None
    ctype, params = mime.parse_params(mime.fix_8bit(raw_type)) if raw_type else ("", {})
    if not re.fullmatch(r"[a-z0-9!#$&.+^_-]+/[a-z0-9!#$&.+^_-]+", ctype):
        ctype = "text/plain"
    if ctype not in ("text/plain", "text/html") or params.get("name"):
        return None
    raw_disp = first.get("content-disposition")
    if raw_disp is not None:
        disposition, dparams = mime.parse_params(mime.fix_8bit(raw_disp))
        if disposition == "attachment" or dparams.get("filename"):
            return None
    data, _ = mime.decode_transfer(payload, (first.get("content-transfer-encoding") or "").strip().lower())
    body, _ = decode_text(data[: ctx.limits.max_part_text * 4], params.get("charset"))
    if ctype == "text/html":
        body = html_to_text(body)
    return headers, [TextPart(ctype, ctx.take_text(body))]


def _lean(raw: bytes, now: datetime, sha: str) -> Extracted:
    ctx = Ctx(limits=mime._DEFAULT_LIMITS, parse_nested=mime._nested)
    simple = _single_part(raw, ctx)
    if simple is not None:
        headers, texts = simple
        attachments: Sequence[Attachment] = ()
    else:
        ctx = Ctx(limits=mime._DEFAULT_LIMITS, parse_nested=mime._nested)
        msg = mime._parse_bytes(raw, ctx, 0)
        acc = mime._Acc()
        mime._walk(msg, ctx, acc)
        headers = {}
        for name, value in msg.raw_items():
            key = name.lower()
            if key in _KEEP:
                headers.setdefault(key, []).append(str(value))
        texts, attachments = acc.texts, acc.attachments
    hint = mime.parse_params(mime.fix_8bit(headers.get("content-type", [""])[0]))[1].get("charset")

    def first(name: str) -> str:
        values = headers.get(name)
        return mime.decode_header_value(values[0], None, hint) if values else ""

    date, source = None, "header"
    if headers.get("date"):
        try:
            date = _usable(parsedate_to_datetime(first("date")), now)
        except (TypeError, ValueError, IndexError, OverflowError):
            date = None
    if date is None:
        date, source = _received_date([mime.decode_header_value(v) for v in headers.get("received", [])[:3]],
                                      now), "received"
        if date is None:
            source = "none"
    senders = _emails(headers.get("from", []))
    return Extracted(
        sha256=sha, size=len(raw), message_id=clean(first("message-id").strip(), 998), date=date,
        date_source=source, from_addr=senders[0] if senders else "",
        from_name=_display_name(headers["from"][0], hint) if headers.get("from") else "",
        to=_emails(headers.get("to", [])), cc=_emails(headers.get("cc", [])), bcc=_emails(headers.get("bcc", [])),
        subject=clean(first("subject"), 2000), attachments=_attachment_names(attachments),
        body=_body(texts, attachments))
