"""Messages past the memory threshold go to disk; the engine sees a reduced copy with the true part sizes."""
from __future__ import annotations

import base64
import hashlib
import os
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

from civicaup.channels.mail.mime import parse_mail
from civicaup.channels.mail.spool import Spool, parse_spooled, reduce_for_analysis


def message(attachment_bytes: int, *, nested: bool = False) -> bytes:
    m = MIMEMultipart()
    m["From"], m["To"], m["Subject"] = "a@wdm.iowa.gov", "b@wdm.iowa.gov", "survey"
    m.attach(MIMEText("Here is the survey data.\n"))
    a = MIMEApplication(os.urandom(attachment_bytes), Name="survey.bin")
    a["Content-Disposition"] = 'attachment; filename="survey.bin"'
    if nested:
        inner = MIMEMultipart("mixed")
        inner.attach(a)
        inner.attach(MIMEText("inner text\n"))
        m.attach(inner)
    else:
        m.attach(a)
    m.attach(MIMEText("after the attachment\n"))
    return m.as_bytes().replace(b"\n", b"\r\n")


def test_spool_moves_to_disk_and_hashes_as_it_goes(tmp_path: Path) -> None:
    data = b"x" * 10_000
    with Spool(memory_limit=4096, directory=tmp_path) as s:
        for i in range(0, len(data), 1000):
            s.write(data[i:i + 1000])
        assert s.on_disk and s.path is not None and s.path.parent == tmp_path
        assert s.size == len(data) and s.sha256 == hashlib.sha256(data).hexdigest()
        with s.open() as fp:
            assert fp.read() == data
        path = s.path
    assert not path.exists()


def test_reduced_parse_keeps_true_attachment_sizes(tmp_path: Path) -> None:
    raw = message(3_000_000, nested=True)
    full = parse_mail(raw)
    with Spool(memory_limit=1 << 16, directory=tmp_path) as s:
        s.write(raw)
        import civicaup.channels.mail.spool as sp
        reduced, cuts = reduce_for_analysis(s.open(), part_keep=100_000, total_keep=1_000_000)
        assert len(reduced) < 200_000 and len(cuts) == 1
        assert abs(cuts[0].size - 3_000_000) < 3
        old = sp.PART_KEEP
        sp.PART_KEEP = 100_000
        try:
            small = sp.parse_reduced(s.open(), s.size)
        finally:
            sp.PART_KEEP = old
    assert [a.size for a in small.attachments] == [a.size for a in full.attachments] == [3_000_000]
    assert [t.text.strip() for t in small.texts] == [t.text.strip() for t in full.texts]
    assert small.size == len(raw) and small.subject == "survey"


def test_single_part_base64_body(tmp_path: Path) -> None:
    body = base64.encodebytes(os.urandom(500_000)).replace(b"\n", b"\r\n")
    raw = (b"From: a@b.org\r\nSubject: raw\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=x.bin\r\n\r\n" + body)
    reduced, cuts = reduce_for_analysis(__import__("io").BytesIO(raw), part_keep=10_000)
    assert len(cuts) == 1 and cuts[0].size == 500_000
    import civicaup.channels.mail.spool as sp
    old, sp.PART_KEEP = sp.PART_KEEP, 10_000
    try:
        with Spool(memory_limit=1024, directory=tmp_path) as s:
            s.write(raw)
            assert [a.size for a in parse_spooled(s).attachments] == [500_000]
    finally:
        sp.PART_KEEP = old


def test_message_in_memory_is_parsed_whole() -> None:
    raw = message(1000)
    with Spool() as s:
        s.write(raw)
        assert not s.on_disk
        assert parse_spooled(s) == parse_mail(raw)
