"""`civicaup milter`: an asyncio milter for Postfix (and Sendmail), one round trip per message.

It negotiates away every event it does not need (connect, HELO, DATA, unknown commands, end of headers) and
asks for MAIL, RCPT, headers and body chunks *without a reply*, so Postfix streams the message and waits only
at end of message; the body goes to a spool that moves to disk past a threshold. At end of message the gateway
decides and acts, and the answer is one of: add the X-Civicaup-Decision header and continue; reject with
550 5.7.1 and the clause; discard (held in our quarantine, committed first); tempfail on any error or overrun.
"""
from __future__ import annotations

import asyncio
import grp
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from civicaup.channels.mail import milter_protocol as mp
from civicaup.channels.mail.gateway import HEADER, TEMPFAIL_REPLY, Envelope, MailGateway, Verdict
from civicaup.channels.mail.spool import DEFAULT_MEMORY_LIMIT, Spool
from civicaup.operations import metrics

log = logging.getLogger("civicaup.milter")
_HEADER_LOWER = HEADER.lower().encode()


class MilterConnection(asyncio.Protocol):
    """One MTA connection: a packet parser driven by data_received; only end of message awaits anything."""

    def __init__(self, server: "MilterServer") -> None:
        self.server = server
        self.gateway = server.gateway
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.agreed: mp.Negotiation | None = None
        self.no_reply: set[bytes] = set()
        self.busy = False
        self.closed = False
        self._reset_message()

    # -- state

    def _reset_message(self) -> None:
        spool = getattr(self, "spool", None)
        if spool is not None:
            spool.close()
        self.spool: Spool | None = None
        self.envelope = Envelope()
        self.macros: dict[str, str] = {}
        self.in_body = False
        self.forged = 0
        self.failed: str | None = None
        self.head: list[bytes] = []  # header lines, written to the spool in one go when the body starts

    def _spool(self) -> Spool:
        if self.spool is None:
            self.spool = Spool(self.server.memory_limit, self.server.spool_dir)
        return self.spool

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections.add(self)
        sock = transport.get_extra_info("socket")
        self.quickack = None
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6) and hasattr(socket, "TCP_QUICKACK"):
            self.quickack = sock

    def _ack_now(self) -> None:
        """With no-reply events we send nothing back until end of message, so our delayed ACK (40 ms on Linux)
        would meet the MTA's Nagle algorithm on every message: ACK at once instead (Linux resets the flag)."""
        try:
            self.quickack.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)  # type: ignore[union-attr]
        except OSError:
            self.quickack = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        if not self.busy:
            self._reset_message()

    def data_received(self, data: bytes) -> None:
        if self.quickack is not None:
            self._ack_now()
        self.buf += data
        if not self.busy:
            self._process()
        elif len(self.buf) > 4 * mp.MAX_PACKET and self.transport is not None:
            self.transport.pause_reading()  # the MTA does not wait for our answer: let TCP hold it back

    def _process(self) -> None:
        buf = self.buf
        pos = 0
        try:
            n = len(buf)
            while not self.busy and not self.closed and n - pos >= 5:
                length = int.from_bytes(buf[pos:pos + 4], "big")
                if length < 1 or length > mp.MAX_PACKET:
                    raise mp.ProtocolError(f"bad packet length {length}")
                end = pos + 4 + length
                if n < end:
                    break
                cmd = bytes(buf[pos + 4:pos + 5])
                payload = bytes(buf[pos + 5:end])
                pos = end
                self._dispatch(cmd, payload)
        except mp.ProtocolError as exc:
            log.warning("milter protocol error: %s; closing the connection", exc)
            metrics.milter_error("protocol")
            self._close()
        except Exception as exc:  # noqa: BLE001 - a broken connection must not take the server down
            log.error("milter connection error: %s; closing the connection", type(exc).__name__)
            metrics.milter_error("connection")
            self._close()
        finally:
            del buf[:pos]

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _send(self, *packets: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(packets))

    def _answer(self, cmd: bytes) -> None:
        if cmd not in self.no_reply:
            self._send(mp.CONTINUE)

    # -- commands

    def _dispatch(self, cmd: bytes, data: bytes) -> None:
        if cmd == mp.HEADER:  # the most frequent first
            self._header(data)
            self._answer(cmd)
        elif cmd == mp.BODY:
            self._body(data)
            self._answer(cmd)
        elif cmd == mp.OPTNEG:
            self.agreed, packet = mp.negotiate(mp.parse_optneg(data))
            self.no_reply = {c for c, bit in mp.NO_REPLY_BIT.items() if self.agreed.protocol & bit}
            self._send(packet)
        elif cmd == mp.MACRO:
            _, values = mp.parse_macros(data)
            self.macros.update(values)
        elif cmd == mp.MAIL:
            macros = self.macros  # the macros for MAIL arrive just before it
            self._reset_message()
            self.macros = macros
            self.envelope.mail_from = mp.parse_address_args(data)[0]
            self._answer(cmd)
        elif cmd == mp.RCPT:
            addr = mp.parse_address_args(data)[0]
            if addr:
                self.envelope.rcpt_to.append(addr)
            self._answer(cmd)
        elif cmd == mp.BODYEOB:
            self.busy = True
            task = asyncio.get_running_loop().create_task(self._end_of_message(data))
            self.server.tasks.add(task)
            task.add_done_callback(self._eom_done)
        elif cmd == mp.ABORT:
            self._reset_message()
        elif cmd == mp.QUIT:
            self._close()
        elif cmd == mp.QUIT_NC:
            self._reset_message()
            self.agreed, self.no_reply = None, set()
        elif cmd in (mp.CONNECT, mp.HELO, mp.DATA, mp.EOH, mp.UNKNOWN):
            self._answer(cmd)
        else:
            raise mp.ProtocolError(f"unknown command {cmd!r}")

    def _header(self, data: bytes) -> None:
        if self.failed:
            return
        try:
            name, value = mp.parse_header(data)
            if self.agreed is None or not self.agreed.protocol & mp.SMFIP_HDR_LEADSPC:
                value = b" " + value
            if b"\n" in value:  # folded: Postfix sends LF line ends inside a header
                value = value.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            lname = name.lower()
            if lname == _HEADER_LOWER:
                self.forged += 1
            elif lname == b"message-id" and not self.envelope.message_id:
                self.envelope.message_id = value.strip().decode("ascii", "replace")[:200]
            self.head.append(name + b":" + value + b"\r\n")
        except Exception as exc:  # noqa: BLE001 - answered with tempfail at end of message
            self.failed = f"header: {type(exc).__name__}"

    def _start_body(self) -> Spool:
        spool = self._spool()
        if not self.in_body:
            self.head.append(b"\r\n")
            spool.write(b"".join(self.head))
            self.head = []
            self.in_body = True
        return spool

    def _body(self, data: bytes) -> None:
        if self.failed:
            return
        try:
            self._start_body().write(data)
        except Exception as exc:  # noqa: BLE001 - e.g. disk full: answered with tempfail at end of message
            self.failed = f"body: {type(exc).__name__}"

    async def _end_of_message(self, data: bytes) -> None:
        env = self.envelope
        env.auth_user = self.macros.get("{auth_authen}", "")
        env.queue_id = self.macros.get("i", "")
        verdict: Verdict
        try:
            if data:
                self._body(data)
            if not self.failed:
                self._start_body()
            if self.failed:
                log.error("milter: %s, tempfail (queue id %s, message id %s)", self.failed, env.queue_id or "-",
                          env.message_id or "-", extra={"queue_id": env.queue_id, "policy": self.gateway.policy})
                metrics.milter_error("spool")
                verdict = Verdict("tempfail", reply=TEMPFAIL_REPLY)
            else:
                verdict = await self.gateway.handle(env, self._spool(), alive=lambda: not self.closed)
                if verdict.kind == "tempfail":
                    metrics.milter_error("tempfail")  # the gateway logged why (budget, worker, store)
        except Exception as exc:  # noqa: BLE001
            log.error("milter: %s, tempfail (queue id %s)", type(exc).__name__, env.queue_id or "-",
                      extra={"queue_id": env.queue_id, "policy": self.gateway.policy})
            metrics.milter_error("internal")
            verdict = Verdict("tempfail", reply=TEMPFAIL_REPLY)
        self._send(*self.packets(verdict))

    def packets(self, verdict: Verdict) -> list[bytes]:
        if verdict.kind == "accept":
            out = []
            if self.agreed is not None and self.agreed.actions & mp.SMFIF_CHGHDRS:
                out += [mp.change_header(i, HEADER, "") for i in range(self.forged, 0, -1)]
            if self.agreed is not None and self.agreed.actions & mp.SMFIF_ADDHDRS and verdict.header:
                # with SMFIP_HDR_LEADSPC the MTA takes header values as they are, leading space included
                lead = " " if self.agreed.protocol & mp.SMFIP_HDR_LEADSPC else ""
                out.append(mp.add_header(HEADER, lead + verdict.header))
            return out + [mp.CONTINUE]
        if verdict.kind == "reject":
            return [mp.reply_code(verdict.reply)]
        if verdict.kind == "discard":
            return [mp.DISCARD]
        return [mp.reply_code(verdict.reply or TEMPFAIL_REPLY)]

    def _eom_done(self, task: asyncio.Task[Any]) -> None:
        self.server.tasks.discard(task)
        self.busy = False
        self._reset_message()
        if self.closed:
            return
        if self.transport is not None:
            self.transport.resume_reading()
        if self.buf:
            self._process()


def parse_listen(listen: str) -> tuple[str, str, int]:
    """`HOST:PORT`, `inet:HOST:PORT`, `unix:PATH` -> ("inet", host, port) / ("unix", path, 0)."""
    from civicaup.errors import InputError
    if listen.startswith("unix:"):
        if not listen[5:]:
            raise InputError("--listen unix:PATH needs a path")
        return "unix", listen[5:], 0
    if listen.startswith("inet:"):
        listen = listen[5:]
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise InputError(f"--listen {listen!r}: give HOST:PORT or unix:PATH")
    return "inet", host.strip("[]") or "127.0.0.1", int(port)


class MilterServer:
    def __init__(self, gateway: MailGateway, listen: str = "127.0.0.1:8890", *,
                 memory_limit: int = DEFAULT_MEMORY_LIMIT, spool_dir: str | os.PathLike[str] | None = None,
                 socket_mode: int | None = None, sock: socket.socket | None = None) -> None:
        self.gateway = gateway
        self.listen = listen
        self.sock = sock  # a listening socket from systemd (socket activation): used instead of `listen`
        self.memory_limit = memory_limit
        self.spool_dir = spool_dir
        self.socket_mode = socket_mode
        self.connections: set[MilterConnection] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.server: asyncio.AbstractServer | None = None
        self.address = ""

    async def start(self) -> str:
        loop = asyncio.get_running_loop()
        if self.sock is not None:  # systemd owns the socket: its path, mode and owner are the .socket unit's
            factory = lambda: MilterConnection(self)  # noqa: E731
            if self.sock.family == socket.AF_UNIX:
                keep = {"cleanup_socket": False} if sys.version_info >= (3, 13) else {}  # never unlink its path
                self.server = await loop.create_unix_server(factory, sock=self.sock, **keep)
            else:
                self.server = await loop.create_server(factory, sock=self.sock)
            from civicaup.channels.socket_activation import Passed
            self.address = Passed(self.sock, "").address()
            return self.address
        kind, where, port = parse_listen(self.listen)
        if kind == "unix":
            path = Path(where)
            if path.is_socket():
                path.unlink()
            self.server = await loop.create_unix_server(lambda: MilterConnection(self), str(path))
            socket_permissions(path, self.socket_mode)
            self.address = f"unix:{path}"
        else:
            host = where
            self.server = await loop.create_server(lambda: MilterConnection(self), host, port,
                                                   reuse_address=True)
            port = self.server.sockets[0].getsockname()[1]
            self.address = f"inet:{host}:{port}"
        return self.address


    async def stop(self, grace: float = 30.0) -> None:
        """Stop listening, let messages being decided finish (their answers matter), then close."""
        if self.server is not None:
            self.server.close()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=grace)
        for conn in list(self.connections):
            conn._close()
        if self.server is not None:
            await self.server.wait_closed()
        kind, where, _ = parse_listen(self.listen)
        if kind == "unix" and self.sock is None:
            Path(where).unlink(missing_ok=True)


def socket_permissions(path: Path, mode: int | None = None) -> None:
    """`mode` if given; else Postfix's group may connect (smtpd runs as the postfix user), nobody else."""
    if mode is not None:
        os.chmod(path, mode)
        return
    try:
        os.chown(path, -1, grp.getgrnam("postfix").gr_gid)
        os.chmod(path, 0o660)
    except (KeyError, PermissionError):
        os.chmod(path, 0o666)


def clean_spool(directory: str | os.PathLike[str] | None, older_than: float = 86400.0) -> None:
    """Remove spool files left by a filter that was killed (only old ones: another filter may share the folder)."""
    if directory is None or not Path(directory).is_dir():
        return
    limit = time.time() - older_than
    for p in Path(directory).glob("msg-*.eml"):
        try:
            if p.stat().st_mtime < limit:
                p.unlink()
        except OSError:
            pass


async def serve(gateway: MailGateway, listen: str, *, ready: Any = None, **kw: Any) -> None:
    """Run until SIGTERM/SIGINT, on the socket systemd passed (socket activation) or else on `listen`; print
    where it listens. SIGHUP reloads the configuration and the pack (see civicaup.operations.reload)."""
    from civicaup.channels.socket_activation import notify

    clean_spool(kw.get("spool_dir"))
    passed = _passed()
    server = MilterServer(gateway, listen, sock=passed.sock if passed else None, **kw)
    address = await server.start()
    stop = _on_signals(gateway)
    print(f"civicaup milter: listening on {address}{' (from systemd)' if passed else ''} "
          f"(policy {gateway.policy})", flush=True)
    notify("READY=1", f"STATUS=listening on {address}")
    if ready is not None:
        ready(address)
    await stop.wait()
    notify("STOPPING=1")
    await _finish(server, gateway)


def serve_processes(gateway: MailGateway, listen: str, processes: int, **kw: Any) -> int:
    """`civicaup milter --processes N`: bind once, fork N processes that each serve the socket
    (civicaup.channels.prefork); returns the exit status."""
    from civicaup.channels.prefork import Prefork
    from civicaup.channels.socket_activation import Passed

    clean_spool(kw.get("spool_dir"))
    passed = _passed()
    sock = passed.sock if passed else bind(listen, kw.get("socket_mode"))
    address = Passed(sock, "").address()
    kind, where, _ = parse_listen(listen)

    def child(sock: socket.socket) -> int:
        asyncio.run(_serve_socket(gateway, listen, sock, **kw))
        return 0

    def cleanup() -> None:
        sock.close()
        if kind == "unix" and not passed:
            Path(where).unlink(missing_ok=True)

    return Prefork("milter", processes, child, grace=gateway.budget + 5, reload=gateway.reloader().reload,
                   cleanup=cleanup).run(
        sock, f"civicaup milter: listening on {address}{' (from systemd)' if passed else ''} "
              f"(policy {gateway.policy}, {processes} processes)",
        status=f"listening on {address}, {processes} processes")


def bind(listen: str, socket_mode: int | None = None) -> socket.socket:
    """The listening socket for `listen` (a unix socket gets the permissions MilterServer gives its own)."""
    kind, where, port = parse_listen(listen)
    if kind == "unix":
        path = Path(where)
        if path.is_socket():
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        socket_permissions(path, socket_mode)
    else:
        sock = socket.create_server((where, port), family=socket.AF_INET6 if ":" in where else socket.AF_INET)
    sock.listen(100)
    return sock


async def _serve_socket(gateway: MailGateway, listen: str, sock: socket.socket, **kw: Any) -> None:
    """One of the processes of `serve_processes`: the socket is the supervisor's (it says where it listens)."""
    server = MilterServer(gateway, listen, sock=sock, **kw)
    await server.start()
    await _on_signals(gateway).wait()
    await _finish(server, gateway)


def _passed() -> Any:
    from civicaup.channels.socket_activation import listen_fds

    passed = listen_fds()
    if len(passed) > 1:
        log.warning("systemd passed %d sockets; the milter listens on the first (%s)", len(passed), passed[0].name)
    return passed[0] if passed else None


def _on_signals(gateway: MailGateway) -> asyncio.Event:
    """An event set by SIGTERM/SIGINT; SIGHUP reloads the configuration and the pack."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    gateway.reloader().install_asyncio(loop)
    return stop


async def _finish(server: MilterServer, gateway: MailGateway) -> None:
    """Stop listening and let the messages being decided finish (their answers matter)."""
    await server.stop(grace=gateway.budget + 5)
    gateway.close()
