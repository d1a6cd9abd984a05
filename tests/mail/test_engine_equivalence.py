"""The milter's fast decision path decides exactly as the full path does.

The lean MIME path (headers split from the bytes, bodies never cut into lines, one multipart level split at its
boundary lines, common mailbox forms read without the address tokenizer) must change no parsed field and no
decision. Reference: the same code with
the lean pieces switched off, i.e. the stdlib feed parser and getaddresses for every message. Sample: 300
messages of the SpamAssassin public corpus (ham and spam, seeded), as the milter spools them (CRLF), decided
under every seed pack.
"""
from __future__ import annotations

import random
import subprocess
from datetime import datetime, timezone
from email.utils import getaddresses
from pathlib import Path

import pytest

from civicaup.channels.mail import mime
from civicaup.channels.mail.gateway import decide
from civicaup.engine.event import Actor
from civicaup.policy.registry import get_pack

ROOT = Path(__file__).resolve().parents[2]
ARCHIVE = ROOT.parent / "shared" / "data" / "mail" / "spamassassin-public-corpus.tar.xz"
PACKS = sorted(p.name for p in (ROOT / "src/civicaup/policy/packs").iterdir() if (p / "pack.yaml").is_file())
SAMPLE = 300
AT = datetime(2026, 3, 10, 14, 30, tzinfo=timezone.utc)  # a Tuesday afternoon: inside every city's hours


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, bytes]]:
    """(file name, raw CRLF bytes) of a seeded sample of the corpus, mbox "From " line dropped."""
    if not ARCHIVE.exists():
        pytest.skip(f"{ARCHIVE} not present")
    target = tmp_path_factory.mktemp("spamassassin")
    subprocess.run(["tar", "-xJf", str(ARCHIVE), "-C", str(target)], check=True)
    files = sorted(p for p in target.rglob("*") if p.is_file())
    out = []
    for path in random.Random(5).sample(files, SAMPLE):
        raw = path.read_bytes()
        if raw.startswith(b"From "):
            raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if raw.strip():
            out.append((f"{path.parent.name}/{path.name}", raw))
    return out


@pytest.fixture
def full_path(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A switch to the reference path: every message through the feed parser, every address through getaddresses."""
    def switch() -> None:
        monkeypatch.setattr(mime, "_lean_message", lambda raw, ctx, depth: None)
        monkeypatch.setattr(mime, "_simple_addresses", lambda text: None)
    return switch


def _ctx() -> mime.Ctx:
    return mime.Ctx(limits=mime.Limits(), parse_nested=mime._nested)


def test_the_lean_path_is_taken_for_most_messages(sample: list[tuple[str, bytes]]) -> None:
    lean = [name for name, raw in sample if mime._lean_message(raw, _ctx(), 0) is not None]
    assert len(lean) >= 0.8 * len(sample), f"only {len(lean)} of {len(sample)}"
    multipart = [name for name, raw in sample if b"multipart/" in raw[:20000].lower()]
    assert set(lean) & set(multipart), "multipart mail should take it too"


def test_parsed_mail_is_identical(sample: list[tuple[str, bytes]], full_path) -> None:  # type: ignore[no-untyped-def]
    fast = [mime.parse_mail(raw) for _, raw in sample]
    full_path()
    for (name, raw), got in zip(sample, fast, strict=True):
        assert got == mime.parse_mail(raw), name


LEAF = b"Content-Type: text/plain\r\n\r\nhello world\r\n"
NESTED = (b'Content-Type: multipart/alternative; boundary="b2"\r\n\r\n--b2\r\n' + LEAF + b"\r\n--b2--\r\n")
INNER = b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n" \
        b"--z\r\n\r\ninside\r\n--z--\r\n"


def _multipart(*parts: bytes, ctype: bytes = b'multipart/mixed; boundary="b1"', close: bytes = b"--b1--\r\n",
               extra: bytes = b"") -> bytes:
    return (b"Subject: t\r\n" + extra + b"Content-Type: " + ctype + b"\r\n\r\npreamble\r\n"
            + b"".join(b"--b1\r\n" + p + b"\r\n" for p in parts) + close + b"epilogue\r\n")


@pytest.mark.parametrize("raw", [
    _multipart(LEAF), _multipart(LEAF, LEAF), _multipart(b"\r\nno headers"), _multipart(b"X: y\r\n\r\n"),
    _multipart(LEAF, close=b""), _multipart(LEAF, ctype=b"multipart/digest; boundary=b1"),
    _multipart(LEAF, ctype=b"multipart/mixed"), _multipart(LEAF, ctype=b'multipart/mixed; boundary="b1  "'),
    _multipart(b"Content-Type: text/plain\r\nX: y\r\n"), _multipart(LEAF + b"--b1\r\n", LEAF),
    _multipart(LEAF.replace(b"hello", b"he\rllo")), _multipart(NESTED), _multipart(INNER),
    _multipart(LEAF, extra=b"Content-Transfer-Encoding: base64\r\n"), _multipart(*[LEAF] * 1200),
    _multipart(LEAF, close=b"--b1--  \r\n"), _multipart(LEAF, ctype=b"multipart/mixed; boundary*0=b; boundary*1=1"),
    _multipart(LEAF, ctype=b"Multipart/Mixed; boundary=b1"), _multipart(LEAF).replace(b"\r\n", b"\n"),
    _multipart(LEAF).replace(b"--b1\r\n", b"--b1 \t\r\n"), _multipart(LEAF).replace(b"--b1\r\n", b"--b1x\r\n", 1),
    _multipart(LEAF, ctype=b"multipart/mixed; boundary=b1; charset=\xe9"), b"Subject: x\r\n", b" x\r\n\r\nb",
    b"From a@b Mon\r\nSubject: x\r\n\r\nb", b"Subject: x\rTo: y\r\n\r\nb", b":x\r\n\r\nb", b"Subject x\r\n\r\nb",
    b"Subject: caf\xe9\r\n\r\nb\xe9", b"Subject: a\r\n b\r\n\r\n", b"\r\n",
])
def test_edge_cases_parse_as_the_feed_parser_reads_them(raw: bytes, full_path) -> None:  # type: ignore[no-untyped-def]
    got = mime.parse_mail(raw)
    full_path()
    assert got == mime.parse_mail(raw)


def _decisions(sample: list[tuple[str, bytes]], pack_id: str) -> list[tuple]:  # type: ignore[type-arg]
    pack = get_pack(pack_id)
    staff = frozenset({("Dana Reed", f"dana.reed@{pack.pack.city.mail_domain}")})
    out = []
    for name, raw in sample:
        sender = "someone@example.org"
        d = decide(pack_id, raw, Actor(email=sender), sender, (f"clerk@{pack.pack.city.mail_domain}",), staff,
                   AT, frozenset(), pack)
        out.append((name, d.action, tuple((f.action, f.rule, f.clause, f.category, f.evidence, f.tags)
                                          for f in d.findings)))
    return out


@pytest.mark.parametrize("pack_id", PACKS)
def test_decisions_are_identical_for_every_seed_pack(sample: list[tuple[str, bytes]], pack_id: str,
                                                     full_path) -> None:  # type: ignore[no-untyped-def]
    fast = _decisions(sample, pack_id)
    full_path()
    reference = _decisions(sample, pack_id)
    for got, want in zip(fast, reference, strict=True):
        assert got == want, got[0]
    assert {d[1] for d in reference} - {"allow"}, "the sample should make this pack decide something"


@pytest.mark.parametrize("text", [
    "a@b.example", "  Dana Reed <dana.reed@kirkwoodmo.org>  ", '"Reed, Dana" <d@x.org>', "<d@x.org>",
    '"" <d@x.org>', "John . Smith <a@b.c>", "Dana\xa0Reed <d@x.org>", "Dana \t Reed<d@x.org>",
    "=?utf-8?q?Dana_Reed?= <d@x.org>", "a..b@c.d", ".a@b.c", "a@b..c", "x <a@b.c> y", "a@b.c, d@e.f",
    '"a\\"b" <a@b.c>', "Ünïcode Näme <u@x.de>", "a @ b.c", "n <a@[1.2.3.4]>", "a+tag@x_y.org", "o'brien@x.ie",
    "Name <>", "Name <a>", "a@b.c (Dana Reed)", "Dana (x) Reed <a@b.c>", "a.@b.c", "", "   ",
])
def test_simple_addresses_agree_with_getaddresses(text: str) -> None:
    got = mime._simple_addresses(text)
    assert got is None or got == getaddresses([text])


def test_simple_addresses_cover_the_common_forms() -> None:
    assert mime._simple_addresses('"Reed, Dana" <Dana.Reed@KirkwoodMO.org>') == [
        ("Reed, Dana", "Dana.Reed@KirkwoodMO.org")]
    assert mime._simple_addresses("Dana  Reed <d@x.org>") == [("Dana Reed", "d@x.org")]
    assert mime._simple_addresses("d@x.org") == [("", "d@x.org")]
    assert mime._simple_addresses("a@b.c, d@e.f") is None  # lists go to getaddresses
