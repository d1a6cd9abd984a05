"""A minimal MTA side of the milter protocol, for tests and the benchmark: what Postfix sends, byte for byte."""
from __future__ import annotations

import socket
import struct

from civicaup.channels.mail import milter_protocol as mp

ALL_PROTOCOL = 0x1FFFFF
ALL_ACTIONS = 0x1FF


class FakeMTA:
    def __init__(self, address: tuple[str, int] | str, *, protocol: int = ALL_PROTOCOL, actions: int = ALL_ACTIONS,
                 version: int = 6, timeout: float = 30.0) -> None:
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if family == socket.AF_INET:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.connect(address)
        self.offer = (version, actions, protocol)
        self.agreed: tuple[int, int, int] | None = None

    def close(self) -> None:
        try:
            self.send(mp.QUIT)
        except OSError:
            pass
        self.sock.close()

    def send(self, cmd: bytes, data: bytes = b"") -> None:
        self.sock.sendall(mp.encode(cmd, data))

    def _exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("milter closed the connection")
            out += chunk
        return out

    def recv(self) -> tuple[bytes, bytes]:
        (length,) = struct.unpack(">I", self._exact(4))
        data = self._exact(length)
        return data[:1], data[1:]

    def negotiate(self) -> tuple[int, int, int]:
        self.send(mp.OPTNEG, struct.pack(">III", *self.offer))
        cmd, data = self.recv()
        assert cmd == mp.R_OPTNEG, cmd
        self.agreed = struct.unpack(">III", data[:12])
        return self.agreed

    def _maybe_reply(self, cmd: bytes) -> bytes | None:
        assert self.agreed is not None
        bit = mp.NO_REPLY_BIT.get(cmd)
        if bit and self.agreed[2] & bit:
            return None
        rcmd, _ = self.recv()
        return rcmd

    def step(self, cmd: bytes, data: bytes = b"", skip_bit: int = 0) -> bytes | None:
        assert self.agreed is not None
        if skip_bit and self.agreed[2] & skip_bit:
            return None
        self.send(cmd, data)
        return self._maybe_reply(cmd)

    def message(self, mail_from: str, rcpts: list[str], headers: list[tuple[str, str]], body: bytes, *,
                macros: dict[str, str] | None = None, chunk: int = 65535,
                leading_space: bool | None = None) -> list[tuple[bytes, bytes]]:
        """One message, as Postfix sends it; returns the replies to end-of-body."""
        if self.agreed is None:
            self.negotiate()
        assert self.agreed is not None
        lead = bool(self.agreed[2] & mp.SMFIP_HDR_LEADSPC) if leading_space is None else leading_space
        self.step(mp.CONNECT, b"client.example\x004\x00\x00127.0.0.1\x00", mp.SMFIP_NOCONNECT)
        self.step(mp.HELO, b"client.example\x00", mp.SMFIP_NOHELO)
        m = {"i": "4Xq1", **(macros or {})}
        self.send(mp.MACRO, b"M" + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in m.items()))
        self.step(mp.MAIL, f"<{mail_from}>".encode() + b"\0SIZE=100\0", mp.SMFIP_NOMAIL)
        for r in rcpts:
            self.step(mp.RCPT, f"<{r}>".encode() + b"\0", mp.SMFIP_NORCPT)
        self.step(mp.DATA, b"", mp.SMFIP_NODATA)
        for name, value in headers:
            v = (" " + value) if lead else value
            self.step(mp.HEADER, name.encode() + b"\0" + v.encode("utf-8") + b"\0", mp.SMFIP_NOHDRS)
        self.step(mp.EOH, b"", mp.SMFIP_NOEOH)
        for i in range(0, len(body), chunk):
            self.step(mp.BODY, body[i:i + chunk], mp.SMFIP_NOBODY)
        self.send(mp.BODYEOB)
        replies = []
        while True:
            cmd, data = self.recv()
            replies.append((cmd, data))
            if cmd in (mp.R_CONTINUE, mp.R_ACCEPT, mp.R_REJECT, mp.R_DISCARD, mp.R_TEMPFAIL, mp.R_REPLYCODE):
                return replies
