"""The archive's single-part fast path gives exactly what the full MIME walk gives, on the whole real corpus
and on hand-made edge cases (CRLF, folded headers, 8-bit headers, encodings, HTML, look-alike attachments)."""
from __future__ import annotations

import base64
import quopri
from datetime import datetime, timezone
from pathlib import Path

import pytest

from civicaup.records import extract

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _both(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[extract.Extracted, extract.Extracted, bool]:
    fast = extract.extract(raw, now=NOW)
    took = extract._single_part(raw, extract.Ctx(limits=extract.mime._DEFAULT_LIMITS,
                                                 parse_nested=extract.mime._nested)) is not None
    with monkeypatch.context() as m:
        m.setattr(extract, "_single_part", lambda raw, ctx: None)
        full = extract.extract(raw, now=NOW)
    return fast, full, took


@pytest.mark.slow
def test_the_fast_path_agrees_with_the_full_parser_on_the_corpus(corpus: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    taken = total = 0
    for path in sorted(p for p in corpus.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        if raw.startswith(b"From "):
            raw = raw[raw.find(b"\n") + 1:]
        fast, full, took = _both(raw, monkeypatch)
        assert fast == full, path
        taken += took
        total += 1
    assert total > 6000 and taken > total * 0.85  # most real mail is one text part (92% of this corpus)


CASES = {
    "crlf and folding": b"From: \"Reed, Dana\" <dana.reed@kirkwoodmo.org>\r\nTo: a@b.org,\r\n\tc@d.org\r\n"
                        b"Subject: a long\r\n  folded subject\r\nDate: Mon, 3 Mar 2025 09:00:00 -0600\r\n\r\n"
                        b"Body line one\r\nline two\r\n",
    "8-bit header": "Subject: Caf\u00e9 menu\nFrom: J\u00fcrgen <j@example.de>\n\nText\n".encode("utf-8"),
    "latin-1 body": b"Subject: x\nContent-Type: text/plain; charset=iso-8859-1\n\nCaf\xe9\n",
    "encoded words": b"Subject: =?utf-8?q?Budget_=E2=80=94_FY26?=\nFrom: =?utf-8?b?w4lsaXNl?= <e@x.org>\n\nok\n",
    "quoted-printable": b"Subject: qp\nContent-Transfer-Encoding: quoted-printable\n\n"
                        + quopri.encodestring("A long line with caf\u00e9 and = signs".encode()) + b"\n",
    "base64 html": b"Subject: html\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
                   + base64.encodebytes(b"<html><body><p>Hello <b>council</b></p><script>x()</script></body></html>"),
    "inline file name": b"Subject: f\nContent-Type: text/plain; name=notes.txt\n\nnotes\n",
    "attachment disposition": b"Subject: f\nContent-Disposition: attachment\n\nnotes\n",
    "multipart": b"Subject: m\nContent-Type: multipart/mixed; boundary=b\n\n"
                 b"--b\nContent-Type: text/plain\n\nhi\n--b--\n",
    "no header separator": b"Subject: s\nnot a header line\n\nbody\n",
    "bare CR": b"Subject: s\rTo: a@b.org\n\nbody\n",
    "whitespace-only line in header": b"Subject: s\n \nTo: a@b.org\n\nbody\n",
    "invalid content type": b"Subject: s\nContent-Type: text\n\nbody\n",
    "duplicate headers": b"Subject: one\nSubject: two\nContent-Type: text/plain\nContent-Type: text/html\n\n<b>x</b>\n",
    "no body": b"Subject: s\nTo: a@b.org\n\n",
    "received date only": b"Received: from x by y; Tue, 4 Mar 2025 10:00:00 +0000\nSubject: s\n\nbody\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_fast_path_agrees_on_edge_cases(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, full, _ = _both(CASES[name], monkeypatch)
    assert fast == full
