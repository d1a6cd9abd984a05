"""The Sendmail/Postfix milter wire protocol (version 6): packet framing, command decoding, reply encoding.

Every packet is a 4-byte big-endian length (command byte included), one command byte, then the data.
Only what civicaup needs is decoded; unknown commands are reported, not guessed at.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

VERSION = 6
MAX_PACKET = 1 << 20  # Postfix sends body chunks of at most 64 KiB; anything far larger is a broken peer

# Commands, MTA -> filter (SMFIC_*)
ABORT, BODY, CONNECT, MACRO, BODYEOB, HELO, QUIT_NC, HEADER, MAIL, EOH, OPTNEG, QUIT, RCPT, DATA, UNKNOWN = (
    b"A", b"B", b"C", b"D", b"E", b"H", b"K", b"L", b"M", b"N", b"O", b"Q", b"R", b"T", b"U")

# Replies, filter -> MTA (SMFIR_*)
R_ADDRCPT, R_DELRCPT, R_ACCEPT, R_REPLBODY, R_CONTINUE, R_DISCARD, R_ADDHEADER, R_INSHEADER, R_CHGHEADER = (
    b"+", b"-", b"a", b"b", b"c", b"d", b"h", b"i", b"m")
R_PROGRESS, R_QUARANTINE, R_REJECT, R_SKIP, R_TEMPFAIL, R_REPLYCODE, R_OPTNEG = (
    b"p", b"q", b"r", b"s", b"t", b"y", b"O")

# Actions the filter may take (SMFIF_*)
SMFIF_ADDHDRS = 0x01
SMFIF_CHGBODY = 0x02
SMFIF_ADDRCPT = 0x04
SMFIF_DELRCPT = 0x08
SMFIF_CHGHDRS = 0x10
SMFIF_QUARANTINE = 0x20
SMFIF_CHGFROM = 0x40
SMFIF_ADDRCPT_PAR = 0x80
SMFIF_SETSYMLIST = 0x100

# Protocol steps (SMFIP_*): NO* = do not send this event, NR_* = send it but expect no reply
SMFIP_NOCONNECT = 0x01
SMFIP_NOHELO = 0x02
SMFIP_NOMAIL = 0x04
SMFIP_NORCPT = 0x08
SMFIP_NOBODY = 0x10
SMFIP_NOHDRS = 0x20
SMFIP_NOEOH = 0x40
SMFIP_NR_HDR = 0x80
SMFIP_NOUNKNOWN = 0x100
SMFIP_NODATA = 0x200
SMFIP_SKIP = 0x400
SMFIP_RCPT_REJ = 0x800
SMFIP_NR_CONN = 0x1000
SMFIP_NR_HELO = 0x2000
SMFIP_NR_MAIL = 0x4000
SMFIP_NR_RCPT = 0x8000
SMFIP_NR_DATA = 0x10000
SMFIP_NR_UNKN = 0x20000
SMFIP_NR_EOH = 0x40000
SMFIP_NR_BODY = 0x80000
SMFIP_HDR_LEADSPC = 0x100000

# What civicaup asks for: no connect/helo/data/unknown/end-of-header events at all; MAIL, RCPT, headers and body
# chunks without a reply each; header values exactly as received. One round trip per message: end of message.
WANTED_PROTOCOL = (SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NODATA | SMFIP_NOUNKNOWN | SMFIP_NOEOH
                   | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_HDR | SMFIP_NR_BODY | SMFIP_HDR_LEADSPC)
WANTED_ACTIONS = SMFIF_ADDHDRS | SMFIF_CHGHDRS

# Which negotiated bit lets a command go unanswered
NO_REPLY_BIT = {CONNECT: SMFIP_NR_CONN, HELO: SMFIP_NR_HELO, MAIL: SMFIP_NR_MAIL, RCPT: SMFIP_NR_RCPT,
                DATA: SMFIP_NR_DATA, UNKNOWN: SMFIP_NR_UNKN, EOH: SMFIP_NR_EOH, BODY: SMFIP_NR_BODY,
                HEADER: SMFIP_NR_HDR}
# Commands that are never answered
SILENT = {MACRO, ABORT, QUIT, QUIT_NC}


class ProtocolError(Exception):
    """The peer sent something that is not the milter protocol."""


def encode(cmd: bytes, data: bytes = b"") -> bytes:
    return struct.pack(">I", len(data) + 1) + cmd + data


def split_header(buf: bytes | bytearray) -> tuple[int, bytes] | None:
    """(packet length, command) when at least a length and command byte are in `buf`, else None."""
    if len(buf) < 5:
        return None
    (length,) = struct.unpack_from(">I", buf)
    if length < 1 or length > MAX_PACKET:
        raise ProtocolError(f"bad packet length {length}")
    return length, bytes(buf[4:5])


def cstrings(data: bytes) -> list[bytes]:
    """NUL-terminated strings; a missing final NUL is tolerated."""
    parts = data.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    return parts


@dataclass(frozen=True)
class Negotiation:
    version: int
    actions: int
    protocol: int


def parse_optneg(data: bytes) -> Negotiation:
    if len(data) < 12:
        raise ProtocolError("short option negotiation")
    return Negotiation(*struct.unpack_from(">III", data))


def negotiate(offer: Negotiation, *, wanted_protocol: int = WANTED_PROTOCOL,
              wanted_actions: int = WANTED_ACTIONS) -> tuple[Negotiation, bytes]:
    """What we take of the MTA's offer, and the reply packet. Steps the MTA does not offer are simply not used
    (the session then answers those events with CONTINUE)."""
    version = min(offer.version, VERSION)
    if version < 2:
        raise ProtocolError(f"milter protocol version {offer.version} is too old")
    protocol = wanted_protocol & offer.protocol if version >= 6 else wanted_protocol & offer.protocol & 0x7F
    actions = wanted_actions & offer.actions
    agreed = Negotiation(version, actions, protocol)
    return agreed, encode(R_OPTNEG, struct.pack(">III", version, actions, protocol))


def parse_macros(data: bytes) -> tuple[bytes, dict[str, str]]:
    """SMFIC_MACRO: the command the macros belong to, and name -> value ("{auth_authen}" keeps its braces)."""
    if not data:
        return b"", {}
    cmd, items = data[:1], cstrings(data[1:])
    out = {}
    for i in range(0, len(items) - 1, 2):
        out[items[i].decode("utf-8", "replace")] = items[i + 1].decode("utf-8", "replace")
    return cmd, out


def parse_address_args(data: bytes) -> tuple[str, list[str]]:
    """SMFIC_MAIL / SMFIC_RCPT: the address without <> and the ESMTP arguments."""
    items = cstrings(data)
    if not items:
        return "", []
    addr = items[0].decode("utf-8", "surrogateescape").strip()
    if addr.startswith("<") and addr.endswith(">"):
        addr = addr[1:-1]
    return addr, [a.decode("utf-8", "replace") for a in items[1:]]


def parse_header(data: bytes) -> tuple[bytes, bytes]:
    items = data.split(b"\0")
    if len(items) < 2:
        raise ProtocolError("header without a value")
    return items[0], items[1]


def add_header(name: str, value: str) -> bytes:
    return encode(R_ADDHEADER, name.encode("ascii") + b"\0" + value.encode("ascii", "replace") + b"\0")


def change_header(index: int, name: str, value: str = "") -> bytes:
    """SMFIR_CHGHEADER: the index-th (1-based) header of that name; an empty value deletes it."""
    return encode(R_CHGHEADER, struct.pack(">I", index) + name.encode("ascii") + b"\0" + value.encode("ascii") + b"\0")


def reply_code(text: str) -> bytes:
    """SMFIR_REPLYCODE: "550 5.7.1 text" (printable ASCII, no '%')."""
    safe = "".join(ch for ch in text if 32 <= ord(ch) < 127 and ch != "%")
    return encode(R_REPLYCODE, safe.encode("ascii") + b"\0")


CONTINUE = encode(R_CONTINUE)
ACCEPT = encode(R_ACCEPT)
DISCARD = encode(R_DISCARD)
TEMPFAIL = encode(R_TEMPFAIL)
REJECT = encode(R_REJECT)
