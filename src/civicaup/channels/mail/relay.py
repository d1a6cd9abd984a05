"""`civicaup relay`: an SMTP content filter (aiosmtpd) for MTAs without milter support, or Postfix's content_filter.

    MTA --SMTP--> relay (decide) --SMTP--> next hop (the MTA's re-injection listener)

allow / log / flag: re-injected with the X-Civicaup-Decision header, then 250; block: 550 5.7.1 with the clause;
hold: quarantined (committed first), then 250; an internal error, an overrun or a next hop that is down: 451, so
the sending MTA keeps the message. The relay answers only after the next hop has taken the message.

DATA is not collected in memory (aiosmtpd's own SMTP keeps the whole message as a list of lines): `SpoolingSMTP`
writes the dot-unstuffed lines into a `Spool` (memory up to a threshold, then a temporary file), answers 552 once
the message passes --max-size (reading the rest without keeping it), and hands the handler the spool. Deciding,
quarantining, journaling and re-injecting then read the spool as a stream, so the relay's memory does not grow
with the message (the engine analyses a spooled message within the fixed budget of spool.reduce_for_analysis).
"""
from __future__ import annotations

import asyncio
import io
import logging
import re
import signal
import socket
from typing import Any, BinaryIO, cast

from aiosmtpd.smtp import MISSING, SMTP, Envelope as SMTPEnvelope, Session

from civicaup.channels.mail import delivery
from civicaup.channels.mail.gateway import HEADER, Envelope, MailGateway
from civicaup.channels.mail.spool import DEFAULT_MEMORY_LIMIT, Spool
from civicaup.operations import metrics

log = logging.getLogger("civicaup.relay")
DEFAULT_MAX_SIZE = 200_000_000
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*?)\r?$", re.IGNORECASE | re.MULTILINE)


class HeaderStripped:
    """A reader over a message without any `name:` header (continuation lines included): the header block is
    filtered line by line as it is read, the body passes untouched; `first` is read before everything. It offers
    the `readline(size)` that `delivery.send` streams from, so the message is never whole in memory."""

    def __init__(self, fp: BinaryIO, name: str, first: bytes = b"") -> None:
        self.fp, self.key, self.first = fp, name.lower().encode() + b":", first
        self.in_head, self.line_start, self.skipping = True, True, False

    def readline(self, size: int = -1) -> bytes:
        if self.first:
            line, self.first = self.first, b""
            return line
        while True:
            line = self.fp.readline(size)
            if not line or not self.in_head:
                return line
            starts, self.line_start = self.line_start, line.endswith(b"\n")
            if starts:
                if line in (b"\r\n", b"\n"):
                    self.in_head = False
                    return line
                if line[:1] not in (b" ", b"\t"):
                    self.skipping = line.lower().startswith(self.key)
            if not self.skipping:
                return line

    def read(self, size: int = -1) -> bytes:
        out = bytearray()
        while size < 0 or len(out) < size:
            line = self.readline(-1 if size < 0 else min(size - len(out), 1 << 16))
            if not line:
                break
            out += line
        return bytes(out)

    def close(self) -> None:
        self.fp.close()


def strip_header(raw: bytes, name: str) -> bytes:
    """The message without any `name:` header (continuation lines included); the body is untouched."""
    return HeaderStripped(io.BytesIO(raw), name).read()


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
        """Decide on the message and answer. It is `envelope.spool` (from SpoolingSMTP, which closes it), or, from a
        plain aiosmtpd SMTP, `envelope.original_content` (spooled here)."""
        spool: Spool | None = getattr(envelope, "spool", None)
        owned = spool is None
        if spool is None:
            spool = Spool(self.memory_limit, self.spool_dir)
        env = Envelope(mail_from=envelope.mail_from or "", rcpt_to=list(envelope.rcpt_tos),
                       auth_user=str(getattr(session, "login_data", "") or "") if getattr(session, "authenticated",
                                                                                         False) else "")
        if env.mail_from == "<>":
            env.mail_from = ""
        try:
            if owned:
                raw = envelope.original_content or b""
                spool.write(raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw)
            m = _MESSAGE_ID.search(spool.head(65536))
            env.message_id = m.group(1).decode("ascii", "replace")[:200] if m else ""
            verdict = await self.gateway.handle(env, spool, lambda: client_waiting(server))
            if verdict.kind == "tempfail":
                metrics.relay_error("tempfail")  # the gateway logged why (budget, worker, store)
            if verdict.kind == "reject":
                return verdict.reply
            if verdict.kind == "discard":
                return f"250 2.0.0 Held for approval (quarantine {verdict.quarantine_id})"
            if verdict.kind != "accept":
                return verdict.reply
            if not client_waiting(server):  # it gave up (and will retry): re-injecting now would deliver it twice
                log.warning("relay: the sending MTA gave up waiting; not re-injected (message id %s)",
                            env.message_id or "-", extra={"policy": self.gateway.policy})
                metrics.relay_error("client-gone")
                return "451 4.4.2 civicaup could not pass this message on in time; try again later"
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(self.gateway.threads, self.reinject, env, spool, verdict.header)
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
            if owned:
                spool.close()

    def reinject(self, env: Envelope, spool: Spool, header: str) -> None:
        """Stream the message to the next hop with our decision header first and any earlier one removed."""
        with spool.open() as fp:
            out = HeaderStripped(fp, HEADER, first=f"{HEADER}: {header}\r\n".encode("ascii", "replace"))
            delivery.send(self.next_hop, env.mail_from, env.rcpt_to, cast(BinaryIO, out), timeout=self.hop_timeout)


def client_waiting(server: SMTP) -> bool:
    """Whether the sending MTA is still connected, waiting for our answer."""
    transport = server.transport
    return transport is not None and not transport.is_closing()


DATA_REPLIES = {"too-long": "500 Line too long (see RFC5321 4.5.3.1.6)", "too-much": "552 Error: Too much mail data",
                "spool-error": "451 4.3.0 civicaup could not take this message now; try again later"}


class SpoolingSMTP(SMTP):
    """aiosmtpd's SMTP whose DATA goes into a Spool instead of a list in memory, with aiosmtpd's answers: RFC 5321
    4.5.2 dot-unstuffing; 500 for a line over the line length limit, 552 over `data_size_limit` (and 451 if the
    spool cannot be written), each given once the client has sent the whole message, read without being kept.
    Then the handler's handle_DATA(server, session, envelope) runs with `envelope.spool` (the unstuffed bytes, not
    decoded) and `envelope.original_content` None; the spool and its file are gone once the handler answered.
    It overrides aiosmtpd's smtp_DATA and uses the same internals (`_reader`, `_call_handler_hook`), as of 1.4."""

    def __init__(self, handler: Any, *, memory_limit: int = DEFAULT_MEMORY_LIMIT, spool_dir: str | None = None,
                 **kw: Any) -> None:
        super().__init__(handler, **kw)
        self.memory_limit, self.spool_dir = memory_limit, spool_dir

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        spool = Spool(self.memory_limit, self.spool_dir)
        try:
            state = await self._receive(spool)
            if state == "lost":
                return
            if state != "ok":
                await self.push(DATA_REPLIES[state])
                self._set_post_data_state()
                return
            self.envelope.spool = spool  # type: ignore[attr-defined]
            status = await self._call_handler_hook("DATA") if "DATA" in self._handle_hooks else MISSING
            self._set_post_data_state()
            await self.push("250 OK" if status is MISSING else status)
        finally:
            spool.close()

    async def _receive(self, spool: Spool) -> str:
        """Read DATA up to the lone dot into `spool`: "ok", "lost" (the connection is gone), or a key of
        DATA_REPLIES (the message was read to its end but not kept)."""
        limit = self.data_size_limit
        size, state, partial = 0, "ok", False  # partial: the last read ended inside an overlong line
        buf = bytearray()
        while self.transport is not None:
            try:
                line = await self._reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError as exc:  # a line over the limit: drain it, answer 500 at the end
                state = "too-long" if state == "ok" else state
                line = await self._reader.read(exc.consumed)
            if not partial and line == b".\r\n":
                return self._write(spool, buf) if state == "ok" else state
            size += len(line)
            if state == "ok" and limit and size > limit:
                state = "too-much"
            if state == "ok":
                buf += line[1:] if not partial and line[:1] == b"." else line
                if len(buf) >= 1 << 16:
                    state = self._write(spool, buf)
            elif buf or spool.size:  # not kept: drop what was received so far
                buf.clear()
                spool.close()
            partial = not line.endswith(b"\r\n")
        return "lost"

    def _write(self, spool: Spool, buf: bytearray) -> str:
        try:
            spool.write(bytes(buf))
            return "ok"
        except OSError as exc:  # a full disk, a spool directory that cannot be written: the MTA keeps the message
            log.error("relay: the message could not be spooled (%s), tempfail", type(exc).__name__)
            metrics.relay_error("spool")
            return "spool-error"
        finally:
            buf.clear()


def smtp_factory(handler: RelayHandler, max_size: int = DEFAULT_MAX_SIZE) -> Any:
    hostname = socket.gethostname() or "localhost"
    return lambda: SpoolingSMTP(handler, memory_limit=handler.memory_limit, spool_dir=handler.spool_dir,
                                data_size_limit=max_size, enable_SMTPUTF8=True, decode_data=False,
                                hostname=hostname, ident="civicaup relay")


async def serve(gateway: MailGateway, listen: str, next_hop: str, *, max_size: int = DEFAULT_MAX_SIZE,
                sock: socket.socket | None = None, **kw: Any) -> None:
    """Run until SIGTERM/SIGINT (SIGHUP reloads), printing where it listens; with ``sock`` (one process of
    :func:`serve_processes`) serve that socket and print nothing: the supervisor said where it listens."""
    host, port = parse_inet(listen)
    handler = RelayHandler(gateway, next_hop, **kw)
    loop = asyncio.get_running_loop()
    if sock is not None:
        server = await loop.create_server(smtp_factory(handler, max_size), sock=sock)
    else:
        server = await loop.create_server(smtp_factory(handler, max_size), host, port, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    from civicaup.channels.socket_activation import notify
    gateway.reloader().install_asyncio(loop)
    if sock is None:
        bound = server.sockets[0].getsockname()[1]
        print(f"civicaup relay: listening on {host}:{bound}, next hop {next_hop} (policy {gateway.policy})",
              flush=True)
        notify("READY=1", f"STATUS=listening on {host}:{bound}")
    await stop.wait()
    if sock is None:
        notify("STOPPING=1")
    server.close()
    await server.wait_closed()
    gateway.close()


def serve_processes(gateway: MailGateway, listen: str, next_hop: str, processes: int, **kw: Any) -> int:
    """`civicaup relay --processes N`: bind once, fork N processes that each serve the socket
    (civicaup.channels.prefork); returns the exit status."""
    from civicaup.channels.mail.milter import bind
    from civicaup.channels.prefork import Prefork

    host, _ = parse_inet(listen)
    sock = bind(listen)
    bound = sock.getsockname()[1]

    def child(sock: socket.socket) -> int:
        asyncio.run(serve(gateway, listen, next_hop, sock=sock, **kw))
        return 0

    return Prefork("relay", processes, child, grace=gateway.budget + 5, reload=gateway.reloader().reload,
                   cleanup=sock.close).run(
        sock, f"civicaup relay: listening on {host}:{bound}, next hop {next_hop} (policy {gateway.policy}, "
              f"{processes} processes)",
        status=f"listening on {host}:{bound}, {processes} processes")


def parse_inet(listen: str) -> tuple[str, int]:
    """HOST, PORT of ``--listen`` (the relay takes no unix socket: MTAs hand content filters TCP)."""
    from civicaup.channels.mail.milter import parse_listen
    from civicaup.errors import InputError
    kind, host, port = parse_listen(listen)
    if kind != "inet":
        raise InputError("--listen: the relay listens on HOST:PORT")
    return host, port
