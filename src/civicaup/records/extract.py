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
from civicaup.channels.mail.attachments import Attachment, Ctx
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


def _lean(raw: bytes, now: datetime, sha: str) -> Extracted:
    ctx = Ctx(limits=mime._DEFAULT_LIMITS, parse_nested=mime._nested)
    msg = mime._parse_bytes(raw, ctx, 0)
    acc = mime._Acc()
    mime._walk(msg, ctx, acc)
    headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        key = name.lower()
        if key in _KEEP:
            headers.setdefault(key, []).append(str(value))
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
        subject=clean(first("subject"), 2000), attachments=_attachment_names(acc.attachments),
        body=_body(acc.texts, acc.attachments))
