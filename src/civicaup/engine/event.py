"""Typed events: what adapters hand the engine. An adapter builds these; it never decides."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from civicaup.channels.mail.mime import ParsedMail
    from civicaup.channels.web.url import NormalURL


@dataclass(frozen=True)
class Actor:
    """The person acting: who sends, browses, installs or asks."""
    email: str = ""
    roles: frozenset[str] = frozenset({"employee"})
    department: str = ""
    name: str = ""


@dataclass(frozen=True)
class Event:
    channel: ClassVar[str] = ""
    actor: Actor
    at: datetime  # aware
    approved_roles: frozenset[str] = frozenset()  # roles that have already approved this very request
    granted_exemptions: frozenset[str] = frozenset()  # rule ids the actor holds a personal, current exemption for

    def describe(self) -> str:
        return self.channel


@dataclass(frozen=True)
class MailEvent(Event):
    channel: ClassVar[str] = "mail"
    mail: "ParsedMail | None" = None
    sender: str = ""  # authenticated user, else envelope sender
    recipients: tuple[str, ...] = ()  # envelope recipients; empty means the header recipients
    # Active staff as (name, address) pairs, from the directory, for display-name impersonation; adapters that
    # have the directory fill it (the engine never reads the store). Empty: the check is skipped.
    staff_names: frozenset[tuple[str, str]] = frozenset()

    def describe(self) -> str:
        return f"message {self.mail.subject[:60]!r}" if self.mail else "message"


@dataclass(frozen=True)
class WebEvent(Event):
    channel: ClassVar[str] = "web"
    url: "NormalURL | None" = None
    method: str = "GET"
    client_ip: str = ""

    def describe(self) -> str:
        return self.url.host if self.url else "url"


@dataclass(frozen=True)
class SoftwareEvent(Event):
    channel: ClassVar[str] = "software"
    name: str = ""

    def describe(self) -> str:
        return f"software {self.name!r}"


@dataclass(frozen=True)
class HardwareEvent(Event):
    channel: ClassVar[str] = "hardware"
    name: str = ""

    def describe(self) -> str:
        return f"device {self.name!r}"


@dataclass(frozen=True)
class PostEvent(Event):
    channel: ClassVar[str] = "social"
    text: str = ""
    kind: str = "comment"  # comment, post, reply, chat, draft
    account: str = ""
    author: str = ""

    def describe(self) -> str:
        return f"{self.kind} on {self.account or 'an official account'}"


@dataclass(frozen=True)
class AccessEvent(Event):
    """A look into another person's data: read-mail, monitor-mail, monitor-web, read-files, use-password."""
    channel: ClassVar[str] = "access"
    kind: str = "read-mail"
    subject: str = ""  # whose data
    reason: str = ""

    def describe(self) -> str:
        return f"{self.kind} of {self.subject or 'another person'}"


@dataclass(frozen=True)
class Signal:
    """What a check found in an event, before any rule: a category with short evidence."""
    category: str
    evidence: str
    tags: frozenset[str] = field(default_factory=frozenset)
    confidence: float = 1.0
