"""Optional virus scan by a ClamAV daemon (Debian package ``clamav-daemon``), over its INSTREAM protocol.

Configured by ``[mail] clamd`` in civicaup.toml or the environment (``CIVICAUP_CLAMD=unix:/run/clamav/clamd.ctl``
or ``tcp:127.0.0.1:3310``); unset or empty, nothing is scanned. Standard library only.

The protocol (clamd(8)): send ``zINSTREAM\\0``, then the data as chunks each preceded by its
length (4 bytes, network order), then a zero length; clamd answers one NUL-terminated line,
``stream: OK``, ``stream: <signature> FOUND`` or ``... ERROR``. A scan that cannot be made
(daemon down, time-out, size limit) is reported as an error, never raised: the caller notes it
and the message is still judged by everything else.
"""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

ENV = "CIVICAUP_CLAMD"
CHUNK = 64 * 1024
TIMEOUT = 10.0
MAX_REPLY = 4096


@dataclass(frozen=True)
class ScanResult:
    """``status`` is ``clean``, ``found`` (``signature`` names it) or ``error`` (``detail`` says why)."""

    status: str
    signature: str = ""
    detail: str = ""


def address() -> str | None:
    """The configured daemon address, or None when no scan is wanted."""
    from civicaup import settings

    value = settings.load().mail.clamd.strip()
    return value or None


def _connect(addr: str, timeout: float) -> socket.socket:
    if addr.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(addr[5:])
        return sock
    hostport = addr[4:] if addr.startswith("tcp:") else addr
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"bad {ENV} address {addr!r}: use unix:/path or tcp:host:port")
    return socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout)


def scan(data: bytes, addr: str | None = None, *, timeout: float = TIMEOUT) -> ScanResult:
    """Send ``data`` to clamd and read its verdict."""
    addr = addr or address()
    if not addr:
        return ScanResult("error", detail="not configured")
    try:
        with _connect(addr, timeout) as sock:
            sock.sendall(b"zINSTREAM\0")
            view = memoryview(data)
            for i in range(0, len(view), CHUNK):
                piece = view[i : i + CHUNK]
                sock.sendall(struct.pack("!I", len(piece)) + piece)
            sock.sendall(struct.pack("!I", 0))
            reply = b""
            while b"\0" not in reply and len(reply) < MAX_REPLY:
                got = sock.recv(1024)
                if not got:
                    break
                reply += got
    except (OSError, ValueError) as exc:
        return ScanResult("error", detail=f"{type(exc).__name__}: {exc}"[:200])
    return parse_reply(reply.split(b"\0", 1)[0].decode("utf-8", "replace").strip())


def parse_reply(line: str) -> ScanResult:
    """``stream: OK`` / ``stream: Name FOUND`` / ``... ERROR`` -> a result."""
    body = line.split(":", 1)[1].strip() if line.startswith("stream:") else line
    if body == "OK":
        return ScanResult("clean")
    if body.endswith(" FOUND"):
        return ScanResult("found", signature=body[: -len(" FOUND")].strip()[:120])
    return ScanResult("error", detail=(body or "no answer")[:200])
