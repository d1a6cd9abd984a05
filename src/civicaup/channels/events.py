"""Build typed events from plain inputs (files, strings, flags); shared by the CLI, the API and the adapters."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Iterable

from civicaup.channels.mail.mime import ParsedMail, parse_mail_file
from civicaup.channels.web.url import normalise_url
from civicaup.engine.event import (AccessEvent, Actor, HardwareEvent, MailEvent, PostEvent, SoftwareEvent,
                                   WebEvent)
from civicaup.engine.windows import local
from civicaup.errors import InputError
from civicaup.policy.compile import CompiledPack
from civicaup.policy.schema import ROLES


def event_time(at: str | None, pack: CompiledPack) -> datetime:
    """`--at`: ISO-8601; without an offset it is the city's local time. Default: now."""
    if not at:
        return datetime.now(timezone.utc).astimezone(pack.tz)
    try:
        parsed = datetime.fromisoformat(at.strip())
    except ValueError:
        raise InputError(f"--at {at!r} is not an ISO-8601 time (e.g. 2026-03-02T12:15)") from None
    return local(parsed, pack.tz)


def actor(email: str, roles: Iterable[str] | None) -> Actor:
    """The acting user; roles must be vocabulary words (default: employee)."""
    given = [r.strip().lower() for r in (roles or []) if r.strip()]
    bad = [r for r in given if r not in ROLES]
    if bad:
        raise InputError(f"unknown role {bad[0]!r} (known: {', '.join(ROLES)})")
    return Actor(email=email.lower(), roles=frozenset(given or ["employee"]) | {"employee"})


def default_sender(mail: ParsedMail) -> str:
    """The envelope sender from Return-Path, else the From address."""
    if mail.return_path:
        return mail.return_path
    return mail.from_[0].email if mail.from_ else ""


def mail_event(path: str, pack: CompiledPack, *, sender: str | None = None, roles: Iterable[str] | None = None,
               at: str | None = None, recipients: tuple[str, ...] = ()) -> MailEvent:
    mail = parse_mail_file(path)
    who = (sender or default_sender(mail)).strip().lower()
    return MailEvent(actor=actor(who, roles), at=event_time(at, pack), mail=mail, sender=who,
                     recipients=recipients)


def web_event(url: str, pack: CompiledPack, *, user: str = "", roles: Iterable[str] | None = None,
              at: str | None = None, method: str = "GET", client_ip: str = "") -> WebEvent:
    return WebEvent(actor=actor(user, roles), at=event_time(at, pack), url=normalise_url(url), method=method,
                    client_ip=client_ip)


def _name(name: str, what: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > 500:
        raise InputError(f"a {what} name must be 1 to 500 characters")
    return name


def software_event(name: str, pack: CompiledPack, *, roles: Iterable[str] | None = None,
                   at: str | None = None) -> SoftwareEvent:
    return SoftwareEvent(actor=actor("", roles), at=event_time(at, pack), name=_name(name, "software"))


def hardware_event(name: str, pack: CompiledPack, *, roles: Iterable[str] | None = None,
                   at: str | None = None) -> HardwareEvent:
    return HardwareEvent(actor=actor("", roles), at=event_time(at, pack), name=_name(name, "device"))


def post_event(text: str, pack: CompiledPack, *, kind: str = "comment", account: str = "", author: str = "",
               at: str | None = None) -> PostEvent:
    return PostEvent(actor=actor(author if "@" in author else "", None), at=event_time(at, pack), text=text,
                     kind=kind, account=account, author=author)


def access_event(kind: str, subject: str, pack: CompiledPack, *, requester: str = "",
                 roles: Iterable[str] | None = None, approved: Iterable[str] = (), at: str | None = None,
                 reason: str = "") -> AccessEvent:
    return AccessEvent(actor=actor(requester, roles), at=event_time(at, pack), kind=kind, subject=subject,
                       reason=reason, approved_roles=frozenset(approved))


def read_text_file(path: str) -> str:
    """A post or other text input: UTF-8 (invalid bytes replaced); '-' is standard input."""
    import sys
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    return data.decode("utf-8", errors="replace")
