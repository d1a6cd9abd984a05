"""Small, readable test messages."""
from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime, timezone


def mail(*, sender: str, to: str, subject: str, body: str, date: datetime, cc: str | None = None,
         attachments: dict[str, bytes] | None = None, msgid: str | None = None) -> bytes:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    if cc:
        m["Cc"] = cc
    m["Subject"] = subject
    m["Date"] = format_datetime(date if date.tzinfo else date.replace(tzinfo=timezone.utc))
    m["Message-ID"] = msgid or f"<{abs(hash((sender, subject, date.isoformat())))}@test.civicaup>"
    m.set_content(body)
    for name, data in (attachments or {}).items():
        m.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return m.as_bytes()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)
