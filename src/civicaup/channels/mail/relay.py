"""`civicaup relay`: an SMTP content filter (aiosmtpd) for MTAs without milter support, or Postfix's content_filter.

    MTA --SMTP--> relay (decide) --SMTP--> next hop (the MTA's re-injection listener)

allow / log / flag: re-injected with the X-Civicaup-Decision header, then 250; block: 550 5.7.1 with the clause;
hold: quarantined (committed first), then 250; an internal error, an overrun or a next hop that is down: 451, so
the sending MTA keeps the message. The relay answers only after the next hop has taken the message.
"""
from __future__ import annotations

import asyncio
import logging
import re
import signal
import socket
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope as SMTPEnvelope, Session

from civicaup.channels.mail import delivery
from civicaup.channels.mail.gateway import HEADER, Envelope, MailGateway
from civicaup.channels.mail.spool import DEFAULT_MEMORY_LIMIT, Spool
from civicaup.operations import metrics

log = logging.getLogger("civicaup.relay")
DEFAULT_MAX_SIZE = 200_000_000
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*?)\r?$", re.IGNORECASE | re.MULTILINE)


def strip_header(raw: bytes, name: str) -> bytes:
    """The message without any `name:` header (continuation lines included); the body is untouched."""
    end = raw.find(b"\r\n\r\n")
    sep = 4
    if end < 0:
        end, sep = raw.find(b"\n\n"), 2
    if end < 0:
        end, sep = len(raw), 0
    head = raw[:end + sep // 2]
    key = name.lower().encode() + b":"
    if key not in head.lower():
        return raw
    out, skipping = [], False
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and skipping:
            continue
        skipping = line.lower().startswith(key)
        if not skipping:
            out.append(line)
    return b"".join(out) + raw[end + sep // 2:]


class RelayHandler:
    def __init__(self, gateway: MailGateway, next_hop: str, *, memory_limit: int = DEFAULT_MEMORY_LIMIT,
                 spool_dir: str | None = None, hop_timeout: float = 60.0) -> None:
        delivery.parse_hop(next_hop)
        self.gateway = gateway
        self.next_hop = next_hop
        self.memory_limit = memory_limit
        self.spool_dir = spool_dir
        self.hop_timeout = hop_timeout

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SMTPEnvelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        m = _MESSAGE_ID.search(raw[:65536])
        env = Envelope(mail_from=envelope.mail_from or "", rcpt_to=list(envelope.rcpt_tos),
                       auth_user=str(getattr(session, "login_data", "") or "") if getattr(session, "authenticated",
                                                                                         False) else "",
                       message_id=m.group(1).decode("ascii", "replace")[:200] if m else "")
        if env.mail_from == "<>":
            env.mail_from = ""
        spool = Spool(self.memory_limit, self.spool_dir)
        try:
            spool.write(raw)
            verdict = await self.gateway.handle(env, spool)
            if verdict.kind == "tempfail":
                metrics.relay_error("tempfail")  # the gateway logged why (budget, worker, store)
            if verdict.kind == "reject":
                return verdict.reply
            if verdict.kind == "discard":
                return f"250 2.0.0 Held for approval (quarantine {verdict.quarantine_id})"
            if verdict.kind != "accept":
                return verdict.reply
            out = f"{HEADER}: {verdict.header}\r\n".encode("ascii", "replace") + strip_header(raw, HEADER)
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(self.gateway.threads, lambda: delivery.send(
                    self.next_hop, env.mail_from, env.rcpt_to, out, timeout=self.hop_timeout))
            except delivery.DeliveryError as exc:
                log.warning("relay: %s (message id %s)", exc, env.message_id or "-",
                            extra={"policy": self.gateway.policy, "next_hop": self.next_hop})
                metrics.relay_error("next-hop")
                if exc.temporary:
                    return "451 4.4.1 Next hop unavailable; try again later"
                return f"{exc.code} 5.0.0 Refused by the next hop"
            return "250 2.0.0 OK " + (verdict.decision.action if verdict.decision else "")
        except Exception as exc:  # noqa: BLE001 - fail safe
            log.error("relay: %s, tempfail (message id %s)", type(exc).__name__, env.message_id or "-",
                      extra={"policy": self.gateway.policy})
            metrics.relay_error("internal")
            return "451 4.3.0 civicaup could not check this message now; try again later"
        finally:
            spool.close()


def smtp_factory(handler: RelayHandler, max_size: int = DEFAULT_MAX_SIZE) -> Any:
    hostname = socket.gethostname() or "localhost"
    return lambda: SMTP(handler, data_size_limit=max_size, enable_SMTPUTF8=True, decode_data=False,
                        hostname=hostname, ident="civicaup relay")


async def serve(gateway: MailGateway, listen: str, next_hop: str, *, max_size: int = DEFAULT_MAX_SIZE,
                **kw: Any) -> None:
    from civicaup.channels.mail.milter import parse_listen
    from civicaup.errors import InputError
    kind, host, port = parse_listen(listen)
    if kind != "inet":
        raise InputError("--listen: the relay listens on HOST:PORT")
    handler = RelayHandler(gateway, next_hop, **kw)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(smtp_factory(handler, max_size), host, port, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    from civicaup.channels.socket_activation import notify
    from civicaup.operations.reload import Reloader
    Reloader([gateway.policy], part="relay",
             apply=lambda packs: gateway.use_pack(packs[gateway.policy])).install_asyncio(loop)
    bound = server.sockets[0].getsockname()[1]
    print(f"civicaup relay: listening on {host}:{bound}, next hop {next_hop} (policy {gateway.policy})", flush=True)
    notify("READY=1", f"STATUS=listening on {host}:{bound}")
    await stop.wait()
    notify("STOPPING=1")
    server.close()
    await server.wait_closed()
    gateway.close()
