"""Handing a message to the next hop over SMTP: all recipients or none, the bytes streamed unchanged."""
from __future__ import annotations

import io
import smtplib
from typing import BinaryIO

from civicaup.errors import CivicaupError

DEFAULT_NEXT_HOP = "127.0.0.1:10026"


class DeliveryError(CivicaupError):
    """The next hop did not take the message. `temporary` tells a 4xx / unreachable hop from a 5xx refusal."""

    def __init__(self, message: str, *, code: int = 451, temporary: bool = True) -> None:
        super().__init__(message)
        self.code, self.temporary = code, temporary


def parse_hop(hop: str) -> tuple[str, int]:
    host, sep, port = hop.strip().rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise CivicaupError(f"next hop {hop!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def _stream_data(smtp: smtplib.SMTP, fp: BinaryIO) -> None:
    """DATA with the message streamed from a file: CRLF line ends, leading dots doubled, never all in memory."""
    code, msg = smtp.docmd("DATA")
    if code != 354:
        raise smtplib.SMTPDataError(code, msg)
    buf = bytearray()
    at_line_start = True
    for line in iter(lambda: fp.readline(1 << 16), b""):
        if at_line_start and line.startswith(b"."):
            buf += b"."
        if line.endswith(b"\r\n"):
            buf += line
        elif line.endswith(b"\n") or line.endswith(b"\r"):
            buf += line[:-1] + b"\r\n"
        else:
            buf += line
        at_line_start = line.endswith((b"\n", b"\r"))
        if len(buf) >= 1 << 18:
            smtp.send(bytes(buf))
            buf.clear()
    if not at_line_start:
        buf += b"\r\n"
    buf += b".\r\n"
    smtp.send(bytes(buf))
    code, msg = smtp.getreply()
    if code != 250:
        raise smtplib.SMTPDataError(code, msg)


def send(hop: str, mail_from: str, rcpt_to: list[str], message: bytes | BinaryIO, *, timeout: float = 60.0,
         helo: str | None = None) -> None:
    """Deliver to `hop` (HOST:PORT). Every recipient must be accepted before DATA, else nothing is sent."""
    host, port = parse_hop(hop)
    if not rcpt_to:
        raise DeliveryError("no recipients", code=554, temporary=False)
    fp = io.BytesIO(message) if isinstance(message, (bytes, bytearray)) else message
    try:
        with smtplib.SMTP(host, port, timeout=timeout, local_hostname=helo) as smtp:
            smtp.ehlo_or_helo_if_needed()
            code, msg = smtp.mail(mail_from)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, msg, mail_from)
            for r in rcpt_to:
                code, msg = smtp.rcpt(r)
                if code not in (250, 251):
                    smtp.rset()
                    raise smtplib.SMTPRecipientsRefused({r: (code, msg)})
            _stream_data(smtp, fp)
    except smtplib.SMTPRecipientsRefused as exc:
        r, (code, msg) = next(iter(exc.recipients.items()))
        raise DeliveryError(f"next hop {hop} refused {r}: {code} {_text(msg)}", code=code,
                            temporary=code < 500) from None
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(f"next hop {hop} answered {exc.smtp_code} {_text(exc.smtp_error)}", code=exc.smtp_code,
                            temporary=exc.smtp_code < 500) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"next hop {hop} unreachable: {type(exc).__name__}: {str(exc)[:120]}") from None


def _text(msg: bytes | str) -> str:
    return (msg.decode("utf-8", "replace") if isinstance(msg, bytes) else msg).replace("\n", " ")[:200]
