"""Hostile and special attachments end to end (MIME front end -> mail check signals).

Zip bomb, 100-deep nesting (messages, zips, multiparts), a 2 GB declared size and malformed PDFs
each give a clean result within the limits; password protection is noted; licence cracks and
keygens are found by name and by content; an optional ClamAV daemon is asked when configured
(a fake clamd speaking INSTREAM on loopback stands in for the real one).
"""

from __future__ import annotations

import base64
import io
import socket
import struct
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from civicaup.channels.mail import clamd
from civicaup.channels.mail.attachments import CLAMAV_ERROR, CLAMAV_FOUND, crack_marker
from civicaup.channels.mail.mime import ParsedMail, parse_mail
from civicaup.engine.checks.mail import attachment_signals

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
pytestmark = pytest.mark.timeout(120)


def _part(headers: dict[str, str], body: bytes) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n" + body


def _attachment(name: str, data: bytes, ctype: str = "application/octet-stream") -> bytes:
    encoded = b"\r\n".join(base64.encodebytes(data).splitlines())
    return _part({"Content-Type": f'{ctype}; name="{name}"', "Content-Transfer-Encoding": "base64",
                  "Content-Disposition": f'attachment; filename="{name}"'}, encoded)


def _mail(*parts: bytes) -> bytes:
    body = b"".join(b"--B\r\n" + p + b"\r\n" for p in parts) + b"--B--\r\n"
    return _part({"From": "a@example.org", "To": "b@example.org", "Subject": "files", "MIME-Version": "1.0",
                  "Content-Type": 'multipart/mixed; boundary="B"'}, body)


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _pe(extra: bytes = b"") -> bytes:
    return b"MZ\x90\x00" + b"\x00" * 60 + b"PE\x00\x00" + extra


def _problems(mail: ParsedMail) -> list[str]:
    out: list[str] = list(mail.defects)
    stack = list(mail.attachments)
    while stack:
        a = stack.pop()
        out.extend(a.problems)
        stack.extend(a.members)
    return out


def _signals(mail: ParsedMail) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for s in attachment_signals(mail):
        out.setdefault(s.category, set()).update(s.tags)
    return out


# ---------------------------------------------------------------- limits

def test_zip_bomb_is_a_malware_finding_without_being_expanded() -> None:
    bomb = _zip({"zeros.bin": bytes(200_000_000)})
    mail = parse_mail(_mail(_attachment("invoice.zip", bomb)))
    assert any(p.startswith("zip bomb") for p in _problems(mail))
    assert "attachment:zip-bomb" in _signals(mail)["malware"]


def test_a_2_gb_declared_zip_member_is_refused_by_the_limits() -> None:
    data = _zip({"video.mp4": b"small"}, zipfile.ZIP_STORED)
    declared = struct.pack("<I", 2**31)  # 2 GB in the local header and the central directory
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    patched = bytearray(data)
    patched[local + 22 : local + 26] = declared
    patched[central + 24 : central + 28] = declared
    mail = parse_mail(_mail(_attachment("video.zip", bytes(patched))))
    (att,) = mail.attachments
    assert att.members[0].size == 2**31 and att.members[0].sha256 == ""
    assert any(p.startswith("zip bomb") for p in att.problems)
    assert "malware" in _signals(mail)


def test_100_nested_messages_stop_at_the_depth_limit() -> None:
    raw = b"Subject: leaf\r\n\r\nleaf words"
    for i in range(100):
        raw = b"Subject: level %d\r\nContent-Type: message/rfc822\r\n\r\n" % i + raw
    mail = parse_mail(raw)
    assert "leaf words" not in mail.body_text()
    assert any("nesting depth limit reached" in p for p in _problems(mail))
    assert "unscanned-attachment" in _signals(mail)


def test_100_nested_zips_stop_at_the_zip_depth_limit() -> None:
    archive = _zip({"evil.exe": _pe()})
    for level in range(100):
        archive = _zip({f"level{level}.zip": archive})
    mail = parse_mail(_mail(_attachment("nest.zip", archive)))
    assert any("zip depth limit reached" in p for p in _problems(mail))
    assert "unscanned-attachment" in _signals(mail)


def test_100_nested_multiparts_stop_at_the_depth_limit() -> None:
    inner = _part({"Content-Type": "text/plain"}, b"deep text")
    for i in range(100):
        b = f"b{i}".encode()
        inner = _part({"Content-Type": f'multipart/mixed; boundary="{b.decode()}"'},
                      b"--" + b + b"\r\n" + inner + b"\r\n--" + b + b"--\r\n")
    mail = parse_mail(b"From: a@example.org\r\nSubject: deep\r\nMIME-Version: 1.0\r\n" + inner)
    assert "deep text" not in mail.body_text()
    assert any("nesting depth limit reached" in d for d in mail.defects)


_GOOD_PDF_HEAD = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"


@pytest.mark.parametrize(
    "pdf",
    [
        _GOOD_PDF_HEAD[:20],  # truncated
        b"%PDF-1.7\n" + bytes(range(256)) * 40,  # garbage after the header
        _GOOD_PDF_HEAD + b"2 0 obj << /Type /Pages /Kids [2 0 R] /Count 1 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF",
        _GOOD_PDF_HEAD + b"2 0 obj << /Type /Pages /Kids [] /Count 2000000000 >> endobj\n"
        b"trailer << /Root 1 0 R >>\n%%EOF",
        b"%PDF-1.4\nxref\n0 999999999\n0000000000 65535 f \ntrailer << /Size 999999999 /Root 1 0 R >>\n"
        b"startxref\n9\n%%EOF",
    ],
    ids=["truncated", "garbage", "page-tree-cycle", "absurd-page-count", "absurd-xref"],
)
def test_malformed_pdfs_are_noted_not_raised(pdf: bytes) -> None:
    mail = parse_mail(_mail(_attachment("report.pdf", pdf, "application/pdf")))
    (att,) = mail.attachments
    assert att.sniffed_type == "application/pdf"
    assert att.text == "" or len(att.text) < 100_000
    assert "malware" not in _signals(mail)


# ---------------------------------------------------------------- protection, cracks

def test_a_password_protected_zip_is_noted() -> None:
    data = bytearray(_zip({"salaries.xlsx": b"ciphertext" * 50}, zipfile.ZIP_STORED))
    for sig, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set the "encrypted" flag bit
        i = data.index(sig)
        flags = struct.unpack_from("<H", data, i + offset)[0] | 1
        struct.pack_into("<H", data, i + offset, flags)
    mail = parse_mail(_mail(_attachment("salaries.zip", bytes(data))))
    assert "encrypted zip" in _problems(mail)
    assert "attachment:encrypted" in _signals(mail)["encrypted-attachment"]


@pytest.mark.parametrize("name", ["AutoCAD_2024_keygen.exe", "Photoshop.Crack.Only.zip", "Office-KMS-Activator.exe"])
def test_cracks_and_keygens_are_found_by_name(name: str) -> None:
    data = _zip({"readme.txt": b"hello"}) if name.endswith(".zip") else _pe()
    mail = parse_mail(_mail(_attachment(name, data)))
    assert "copyright" in _signals(mail), name


def test_a_keygen_is_found_by_its_content_whatever_its_name() -> None:
    program = _pe(b"\x00" * 100 + "Serial Number Generator".encode("utf-16-le") + b"\x00" * 50)
    mail = parse_mail(_mail(_attachment("setup_helper.exe", program)))
    sig = _signals(mail)
    assert "attachment:crack" in sig["copyright"] and "malware" in sig  # and it is an executable


def test_an_ordinary_program_and_ssh_keygen_are_not_cracks() -> None:
    assert crack_marker(_pe(b"Copyright Example Corp. All rights reserved.")) is None
    assert crack_marker(_pe(b"usage: ssh-keygen [-q] [-b bits]")) is None


# ---------------------------------------------------------------- ClamAV

class FakeClamd:
    """A loopback clamd that speaks INSTREAM: FOUND for the EICAR string, OK otherwise."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.scanned: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                command = b""
                while not command.endswith(b"\0"):
                    command += conn.recv(1)
                assert command == b"zINSTREAM\0"
                data = b""
                while True:
                    size = struct.unpack("!I", self._exact(conn, 4))[0]
                    if size == 0:
                        break
                    data += self._exact(conn, size)
                self.scanned.append(data)
                verdict = b"stream: Eicar-Signature FOUND\0" if EICAR in data else b"stream: OK\0"
                conn.sendall(verdict)

    @staticmethod
    def _exact(conn: socket.socket, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            got = conn.recv(n - len(buf))
            if not got:
                raise ConnectionError("client went away")
            buf += got
        return buf

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def tcp_clamd() -> Iterator[tuple[FakeClamd, str]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    server = FakeClamd(sock)
    yield server, f"tcp:127.0.0.1:{sock.getsockname()[1]}"
    server.close()


@pytest.fixture
def unix_clamd(tmp_path: Path) -> Iterator[tuple[FakeClamd, str]]:
    path = tmp_path / "clamd.ctl"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(4)
    server = FakeClamd(sock)
    yield server, f"unix:{path}"
    server.close()


@pytest.mark.parametrize("which", ["tcp_clamd", "unix_clamd"])
def test_clamd_finds_the_test_signature_and_passes_clean_files(which: str, request: pytest.FixtureRequest,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    server, addr = request.getfixturevalue(which)
    monkeypatch.setenv(clamd.ENV, addr)
    big_clean = bytes(200_000)  # several INSTREAM chunks
    mail = parse_mail(_mail(_attachment("test.com", b"padding " + EICAR), _attachment("blank.bin", big_clean)))
    problems = _problems(mail)
    assert f"{CLAMAV_FOUND}: Eicar-Signature" in problems
    assert "clamav" in _signals(mail)["malware"]
    assert big_clean in server.scanned  # sent whole, in chunks


def test_clamd_is_not_asked_when_not_configured(tcp_clamd: tuple[FakeClamd, str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    server, _ = tcp_clamd
    monkeypatch.delenv(clamd.ENV, raising=False)
    mail = parse_mail(_mail(_attachment("test.com", EICAR)))
    assert server.scanned == []
    assert not any(p.startswith(("clamav",)) for p in _problems(mail))


def test_clamd_down_is_noted_and_the_message_is_still_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    monkeypatch.setenv(clamd.ENV, f"tcp:127.0.0.1:{port}")
    mail = parse_mail(_mail(_attachment("program.exe", _pe())))
    assert any(p.startswith(CLAMAV_ERROR) for p in _problems(mail))
    sig = _signals(mail)
    assert "malware" in sig and "unscanned-attachment" in sig  # the executable is still found


def test_clamd_replies_are_parsed() -> None:
    assert clamd.parse_reply("stream: OK").status == "clean"
    found = clamd.parse_reply("stream: Win.Test.EICAR_HDB-1 FOUND")
    assert (found.status, found.signature) == ("found", "Win.Test.EICAR_HDB-1")
    assert clamd.parse_reply("INSTREAM size limit exceeded. ERROR").status == "error"
    assert clamd.scan(b"x", "tcp:nonsense").status == "error"
