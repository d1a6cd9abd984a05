"""Mail -> signals: content of every text part and attachment, recipients, size, sender identity."""
from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator

from civicaup.channels.mail.attachments import CLAMAV_ERROR, CLAMAV_FOUND, CRACK_PROBLEM
from civicaup.channels.mail.mime import Attachment, ParsedMail
from civicaup.engine.checks.content import text_signals
from civicaup.engine.event import Event, MailEvent, Signal
from civicaup.policy.compile import CompiledPack

_SOCIAL_SENDERS = ("facebookmail.com", "facebook.com", "twitter.com", "x.com", "instagram.com", "linkedin.com",
                   "tiktok.com", "pinterest.com", "snapchat.com", "nextdoor.com", "reddit.com", "threads.net")
_NAME_SEPARATORS = re.compile(r"[._+]+")
_SIGNUP_WORDS = ("confirm your", "verify your", "welcome to", "activate your", "finish signing up",
                 "complete your registration", "confirm your email")


def signals(event: Event, pack: CompiledPack) -> list[Signal]:
    assert isinstance(event, MailEvent) and event.mail is not None
    m = event.mail
    out = text_signals(m.body_text(), where="mail", pack=pack)
    out += attachment_signals(m, pack)
    out += recipient_signals(event, pack)
    out += identity_signals(event, pack)
    return out


def walk(attachments: tuple[Attachment, ...], depth: int = 0) -> Iterator[Attachment]:
    """Every attachment and member; the parser's own limits (10 nested messages, 3 nested zips,
    1,000 parts) bound the tree, so this goes as deep as they let it."""
    for a in attachments:
        yield a
        if depth < 16:
            yield from walk(a.members, depth + 1)


def attachment_signals(m: ParsedMail, pack: CompiledPack | None = None) -> list[Signal]:
    out: list[Signal] = []
    for a in walk(m.attachments):
        name = a.filename or "(unnamed)"
        if a.is_executable:
            out.append(Signal("malware", f"attachment {name}: executable ({a.sniffed_type or a.declared_type})",
                              frozenset({"attachment:executable"})))
        if a.has_macros:
            out.append(Signal("malware", f"attachment {name}: document with macros", frozenset({"attachment:macro"})))
        if any("eicar" in p for p in a.problems):
            out.append(Signal("malware", f"attachment {name}: EICAR test signature", frozenset({"eicar"})))
        out += problem_signals(name, a.problems)
        if a.filename:
            readable = _NAME_SEPARATORS.sub(" ", a.filename)  # "Photoshop.Crack.Only.zip" reads as words
            out += [s for s in text_signals(readable, where="attachment-name", pack=pack)
                    if s.category == "copyright"]
    if any("eicar" in d.lower() for d in m.defects):
        out.append(Signal("malware", "message text carries the EICAR test signature", frozenset({"eicar"})))
    return out


def problem_signals(name: str, problems: tuple[str, ...]) -> list[Signal]:
    """What the attachment analysis noted: a ClamAV verdict, a licence crack in a program, a zip bomb,
    password protection, content the limits kept from being inspected."""
    out: list[Signal] = []
    for p in problems:
        if p.startswith(CLAMAV_FOUND):
            out.append(Signal("malware", f"attachment {name}: ClamAV found {p.split(':', 1)[1].strip()}",
                              frozenset({"clamav"})))
        elif p.startswith(CRACK_PROBLEM):
            out.append(Signal("copyright", f"attachment {name}: licence crack / keygen ({p.split(':', 1)[1].strip()})",
                              frozenset({"piracy:crack", "attachment:crack"})))
        elif p.startswith("zip bomb"):
            out.append(Signal("malware", f"attachment {name}: {p}", frozenset({"attachment:zip-bomb"})))
        elif p.startswith(("encrypted ", "archive not inspected")):
            out.append(Signal("encrypted-attachment", f"attachment {name}: {p}", frozenset({"attachment:encrypted"})))
        elif "limit reached" in p or p.startswith(CLAMAV_ERROR):
            out.append(Signal("unscanned-attachment", f"attachment {name}: {p}", frozenset({"attachment:limit"})))
    return out


def recipients(event: MailEvent) -> list[str]:
    if event.recipients:
        return [r.lower() for r in event.recipients]
    return [a.email for a in event.mail.recipients() if a.email] if event.mail else []


def recipient_signals(event: MailEvent, pack: CompiledPack) -> list[Signal]:
    out: list[Signal] = []
    rcpts = recipients(event)
    lists = [r for r in rcpts if r in pack.broadcast]
    if lists:
        out.append(Signal("broadcast", f"addressed to the all-staff list {lists[0]}"))
    unique = set(rcpts)
    if len(unique) > pack.pack.limits.mass_mail_recipients:
        out.append(Signal("mass-mail", f"{len(unique)} recipients (limit {pack.pack.limits.mass_mail_recipients})"))
    limit = pack.pack.limits.attachment_mb
    if limit is not None and event.mail is not None:
        total = sum(a.size for a in event.mail.attachments)
        if total > limit * 1_000_000:
            out.append(Signal("large-attachment", f"attachments total {total / 1_000_000:.1f} MB (limit {limit:g} MB)"))
    return out


def _domain(addr: str) -> str:
    return addr.rpartition("@")[2].lower()


def identity_signals(event: MailEvent, pack: CompiledPack) -> list[Signal]:
    m = event.mail
    assert m is not None
    out: list[Signal] = []
    from_addrs = [a.email for a in m.from_ if a.email]
    if not from_addrs:
        out.append(Signal("spoofing", "no From address: the message is anonymous", frozenset({"anonymous"})))
    elif event.sender and event.sender.lower() not in from_addrs:
        sender_addr = m.sender.email if m.sender else ""
        if sender_addr != event.sender.lower():
            out.append(Signal("spoofing", f"From {from_addrs[0]} but sent by {event.sender.lower()}",
                              frozenset({"from-mismatch"})))
    out += impersonation_signals(event)
    city = pack.pack.city.mail_domain.lower()
    free = {d.lower() for d in pack.pack.city.free_mail_domains}
    forwarded = any(h.lower() == "auto-forwarded" or "auto-forwarded" in h.lower() for h in m.header("Auto-Submitted"))
    forwarded = forwarded or bool(m.header("X-Forwarded-To") or m.header("Resent-From"))
    personal = [r for r in recipients(event) if _domain(r) in free]
    if forwarded and personal and any(_domain(a) == city for a in from_addrs + [event.sender.lower()]):
        out.append(Signal("personal-account", f"city mail forwarded to the personal mailbox {personal[0]}",
                          frozenset({"auto-forward"})))
    if from_addrs and _domain(from_addrs[0]).endswith(_SOCIAL_SENDERS) and any(
            _domain(r) == city for r in recipients(event)):
        subject = m.subject.lower()
        if any(w in subject for w in _SIGNUP_WORDS):
            out.append(Signal("personal-social-account",
                              f"sign-up notice from {_domain(from_addrs[0])} to a city address: {m.subject[:60]!r}"))
    return out


def name_key(name: str) -> str:
    """A display name as a reader sees it: compatibility forms folded, invisible characters, quotes, case and
    spacing ignored; "Reed, Dana" reads as "dana reed"."""
    text = "".join(ch for ch in unicodedata.normalize("NFKC", name) if unicodedata.category(ch)[0] != "C")
    text = text.replace('"', " ").replace("'", " ").casefold()
    if text.count(",") == 1:
        last, first = text.split(",")
        text = f"{first} {last}"
    return " ".join(text.split())


@functools.lru_cache(maxsize=16)
def _staff_index(staff: frozenset[tuple[str, str]]) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    by_name: dict[str, set[str]] = {}
    for name, addr in staff:
        key = name_key(name)
        if key:
            by_name.setdefault(key, set()).add(addr.lower())
    return {k: frozenset(v) for k, v in by_name.items()}, frozenset(a.lower() for _, a in staff)


def impersonation_signals(event: MailEvent) -> list[Signal]:
    """A From/Sender display name that is another active staff member's name (or address) while the address
    is not theirs: someone adopting a colleague's identity."""
    m = event.mail
    if not event.staff_names or m is None:
        return []
    by_name, addresses = _staff_index(event.staff_names)
    shown = [("From", a) for a in m.from_] + ([("Sender", m.sender)] if m.sender else [])
    for where, a in shown:
        if not a.name:
            continue
        owners = by_name.get(name_key(a.name))
        if owners and a.email not in owners:
            return [Signal("spoofing", f"{where} shows the name of staff member {sorted(owners)[0]} "
                                       f"but the address is {a.email or '(none)'}", frozenset({"display-name"}))]
        shown_addr = a.name.strip().strip("<>").lower()
        if "@" in shown_addr and shown_addr in addresses and shown_addr != a.email:
            return [Signal("spoofing", f"{where} shows the staff address {shown_addr} "
                                       f"but the address is {a.email or '(none)'}", frozenset({"display-name"}))]
    return []
