"""Tests of the MIME front end (civicaup.channels.mail.mime)."""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import subprocess
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest

from civicaup.channels.mail.mime import Address, Attachment, Limits, ParsedMail, parse_mail, parse_mail_file
from civicaup.errors import MailParseError

CORPUS = Path(__file__).parent / "corpus"
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
# Built from two halves so that no source file carries the contiguous test signature.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


# ---------------------------------------------------------------- builders

def part(headers: dict[str, str], body: bytes) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
    return head + b"\r\n" + body


def multipart(*parts: bytes, boundary: str = "BOUNDARY", subtype: str = "mixed",
              headers: dict[str, str] | None = None) -> bytes:
    top = {"From": "sender@example.com", "To": "rcpt@example.com", "Subject": "test", "MIME-Version": "1.0",
           **(headers or {}), "Content-Type": f'multipart/{subtype}; boundary="{boundary}"'}
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    return part(top, body + b"--" + boundary.encode() + b"--\r\n")


def attachment(name: str, data: bytes, ctype: str = "application/octet-stream") -> bytes:
    encoded = b"\r\n".join(base64.encodebytes(data).splitlines())
    return part({"Content-Type": f'{ctype}; name="{name}"', "Content-Transfer-Encoding": "base64",
                 "Content-Disposition": f'attachment; filename="{name}"'}, encoded)


def text_part(text: str, ctype: str = "text/plain") -> bytes:
    return part({"Content-Type": f"{ctype}; charset=utf-8"}, text.encode())


def make_zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def make_pe() -> bytes:
    dos = bytearray(b"MZ\x90\x00" + b"\x00" * 60)
    dos[0x3C:0x40] = (0x40).to_bytes(4, "little")
    return bytes(dos) + b"PE\x00\x00" + b"\x4c\x01" + b"\x00" * 250


def make_pdf(text: bytes) -> bytes:
    stream = b"BT /F1 18 Tf 20 100 Td (" + text + b") Tj ET"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 144] /Contents 4 0 R "
                b"/Resources << /Font << /F1 5 0 R >> >> >>"),
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


def ooxml(kind: str, xml: bytes, macros: bool = False) -> bytes:
    path = {"word": "word/document.xml", "xl": "xl/sharedStrings.xml", "ppt": "ppt/slides/slide1.xml"}[kind]
    members = {"[Content_Types].xml": b"<Types/>", "_rels/.rels": b"<Relationships/>", path: xml}
    if macros:
        members[f"{kind}/vbaProject.bin"] = os.urandom(512)
    return make_zip(members)


def mark_encrypted(data: bytes) -> bytes:
    """Set the 'encrypted' flag on every member, as a password-protected archive has it."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = out.find(signature)
        while at >= 0:
            out[at + offset] |= 1
            at = out.find(signature, at + 4)
    return bytes(out)


def only_attachment(raw: bytes, **kwargs: Limits) -> tuple[ParsedMail, Attachment]:
    mail = parse_mail(raw, **kwargs)
    assert len(mail.attachments) == 1, mail.attachments
    return mail, mail.attachments[0]


# ---------------------------------------------------------------- headers

def test_encoded_word_subject_spanning_two_folded_words_is_decoded() -> None:
    mail = parse_mail_file(CORPUS / "encoded_headers.eml")
    assert mail.subject == "Grüße aus München und Wien"


def test_iso_8859_1_encoded_display_name_is_decoded() -> None:
    mail = parse_mail_file(CORPUS / "encoded_headers.eml")
    assert mail.from_ == (Address("René François", "rene.francois@example.com"),)


def test_utf8_base64_encoded_display_name_is_decoded() -> None:
    mail = parse_mail_file(CORPUS / "encoded_headers.eml")
    assert mail.to[0] == Address("Jürgen Müller", "juergen@example.net")
    assert mail.to[1] == Address("Doe, Jane", "jane@example.net")


def test_encoded_word_with_unknown_charset_falls_back_and_records_a_defect() -> None:
    mail = parse_mail_file(CORPUS / "encoded_headers.eml")
    assert mail.reply_to[0].email == "odd@example.org"
    assert mail.reply_to[0].name == "Stränge"
    assert "undecodable charset x-no-such-charset" in mail.defects


def test_encoded_words_split_inside_a_utf8_character_are_joined_before_decoding() -> None:
    first, second = (base64.b64encode(half) for half in ("Ü".encode()[:1], "Ü".encode()[1:]))
    raw = b"Subject: =?utf-8?b?" + first + b"?= =?utf-8?b?" + second + b"?=bung\r\n\r\nbody"
    assert parse_mail(raw).subject == "Übung"


def test_raw_8bit_utf8_header_is_decoded() -> None:
    mail = parse_mail("Subject: Größe prüfen\r\nFrom: Zoë <zoe@example.com>\r\n\r\nx".encode())
    assert mail.subject == "Größe prüfen"
    assert mail.from_[0].name == "Zoë"


def test_raw_8bit_latin1_header_uses_the_message_charset_as_a_hint() -> None:
    raw = b"Subject: Gr\xfc\xdfe\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nx"
    assert parse_mail(raw).subject == "Grüße"


def test_addresses_are_lowercased_and_recipients_are_deduplicated_by_email() -> None:
    mail = parse_mail_file(CORPUS / "encoded_headers.eml")
    assert [a.email for a in mail.cc] == ["jane@example.net", "bob@example.net"]
    assert [a.email for a in mail.recipients()] == ["juergen@example.net", "jane@example.net", "bob@example.net"]


def test_sender_return_path_date_and_message_id_are_read() -> None:
    mail = parse_mail_file(CORPUS / "encoded_headers.eml")
    assert mail.sender == Address("List Robot", "robot@lists.example.org")
    assert mail.return_path == "bounces+x@lists.example.org"
    assert mail.message_id == "<20240604093000.1234@example.com>"
    assert mail.date is not None and mail.date.tzinfo is not None
    assert mail.date.utcoffset() == timedelta(0)


def test_header_lookup_is_case_insensitive_and_returns_every_value_in_order() -> None:
    mail = parse_mail_file(CORPUS / "encoded_headers.eml")
    assert mail.header("x-note") == ["first", "second"]
    assert [name for name, _ in mail.headers][:2] == ["Return-Path", "From"]


def test_unparseable_date_is_a_defect_not_an_error() -> None:
    mail = parse_mail(b"Date: the day after tomorrow\r\nSubject: x\r\n\r\nbody")
    assert mail.date is None
    assert "unparseable Date header" in mail.defects


def test_huge_header_is_truncated_and_recorded() -> None:
    raw = b"Subject: " + b"=?utf-8?q?spam?= " * 200_000 + b"\r\nTo: " + b"x@example.com, " * 100_000 + b"\r\n\r\nhi"
    mail = parse_mail(raw)
    assert mail.subject.startswith("spamspam")
    assert "oversized Subject header truncated" in mail.defects
    assert mail.to and mail.to[0].email == "x@example.com"


# ---------------------------------------------------------------- bodies

def test_quoted_printable_body_in_latin1_is_decoded() -> None:
    mail = parse_mail_file(CORPUS / "encoded_headers.eml")
    assert mail.texts[0].text.rstrip() == "Grüße aus München, a soft break and = an equals sign."


def test_base64_html_body_becomes_text_with_link_urls_and_without_script_or_style() -> None:
    mail = parse_mail_file(CORPUS / "html_with_links.eml")
    assert [t.content_type for t in mail.texts] == ["text/plain", "text/html"]
    html_text = mail.texts[1].text
    assert "Fish & chips <today>" in html_text
    assert "our site <http://adult.example.com/page?a=1&b=2> now." in html_text
    assert "hidden" not in html_text and "color" not in html_text


def test_html_block_elements_are_separated_and_inline_markup_is_not() -> None:
    raw = part({"Content-Type": "text/html"}, b"<div>V<b>ia</b>gra</div><div>cheap</div><table><tr><td>a</td>"
                                              b"<td>b</td></tr></table>")
    assert parse_mail(raw).texts[0].text == "Viagra\ncheap\na b"


def test_declared_charset_that_does_not_exist_falls_back_and_records_a_defect() -> None:
    raw = part({"Content-Type": "text/plain; charset=x-foo"}, "naïve café".encode())
    mail = parse_mail(raw)
    assert mail.texts[0].text == "naïve café"
    assert "undecodable charset x-foo" in mail.defects


def test_lying_utf8_charset_on_cp1252_bytes_falls_back_to_cp1252() -> None:
    raw = part({"Content-Type": "text/plain; charset=utf-8"}, "café crème brûlée – “quoted”".encode("cp1252"))
    mail = parse_mail(raw)
    assert mail.texts[0].text == "café crème brûlée – “quoted”"
    assert "wrong charset utf-8" in mail.defects


def test_bad_quoted_printable_and_base64_do_not_raise() -> None:
    raw = multipart(part({"Content-Type": "text/plain", "Content-Transfer-Encoding": "quoted-printable"},
                         b"broken =ZZ escape and =\r\n soft"),
                    part({"Content-Type": "text/plain", "Content-Transfer-Encoding": "base64"},
                         b"!!!aGVsbG8gd29ybGQ*** not base64 at all ==== aGk"))
    mail = parse_mail(raw)
    assert "broken =ZZ escape" in mail.texts[0].text
    assert mail.texts[1].text.startswith("hello world")


def test_missing_boundary_is_a_defect_and_the_body_is_kept() -> None:
    mail = parse_mail_file(CORPUS / "missing_boundary.eml")
    assert "missing MIME boundary" in mail.defects
    assert "should survive" in mail.body_text()


def test_truncated_multipart_keeps_first_part_text() -> None:
    mail = parse_mail_file(CORPUS / "truncated.eml")
    assert mail.texts[0].text == "The first part arrived in full."
    assert "MIME close boundary not found (truncated?)" in mail.defects
    report = mail.attachments[0]
    assert "truncated base64" in report.problems
    assert report.size > 0 and bytes(range(report.size)) == bytes(range(80))[: report.size]


def test_random_binary_garbage_parses_without_raising() -> None:
    for seed in range(5):
        mail = parse_mail(os.urandom(20_000 * (seed + 1)))
        assert isinstance(mail, ParsedMail)
        assert mail.size == 20_000 * (seed + 1)


def test_nul_bytes_in_headers_and_body_are_tolerated() -> None:
    mail = parse_mail(b"Subject: a\x00b\r\nFrom: x\x00@example.com\r\n\r\nhello\x00world\x00")
    assert mail.subject == "a\x00b"
    assert mail.texts[0].text == "helloworld"


def test_ten_thousand_parts_stop_at_the_part_limit_and_record_it() -> None:
    raw = multipart(*(text_part(f"part number {i}") for i in range(10_000)))
    mail = parse_mail(raw)
    assert "part limit reached (1000)" in mail.defects
    assert 0 < len(mail.texts) < 1000
    assert "MIME close boundary not found (truncated?)" not in mail.defects


def test_deeply_nested_multiparts_stop_at_the_depth_limit() -> None:
    depth = 3000
    head = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(depth))
    tail = b"".join(b"\r\n--b%d--" % i for i in reversed(range(depth)))
    mail = parse_mail(b"Subject: deep\r\n" + head + b"Content-Type: text/plain\r\n\r\ninnermost" + tail)
    assert mail.subject == "deep"
    assert "nesting depth limit reached (10)" in mail.defects


def test_nesting_within_the_limit_is_walked() -> None:
    inner = text_part("three levels down")
    raw = multipart(multipart(multipart(inner, boundary="c"), boundary="b"), boundary="a")
    assert parse_mail(raw).texts[0].text == "three levels down"


@pytest.mark.timeout(60)
def test_multipart_boundary_lookup_on_a_huge_parameter_list_is_linear() -> None:
    raw = b'Content-Type: multipart/mixed; boundary="x"; junk="' + b";" * 300_000 + b'"\r\n\r\n--x\r\n\r\nhi\r\n--x--\r\n'
    mail = parse_mail(raw)
    assert mail.texts[0].text == "hi"


@pytest.mark.timeout(60)
def test_deeply_nested_html_is_converted_without_stalling() -> None:
    raw = part({"Content-Type": "text/html"}, b"<ul><li>" * 100_000 + b"deep <a href='http://x.example/'>t</a>")
    text = parse_mail(raw).texts[0].text
    assert "deep" in text and "<http://x.example/>" in text


def test_text_limits_cap_each_part_and_the_total() -> None:
    raw = multipart(*(text_part("x" * 120) for _ in range(3)))
    mail = parse_mail(raw, limits=Limits(max_part_text=100, max_total_text=150))
    assert [len(t.text) for t in mail.texts] == [100, 50, 0]
    assert "total text limit reached (150 chars)" in mail.defects


def test_body_text_joins_subject_texts_and_attachment_texts() -> None:
    raw = multipart(text_part("body words"), attachment("notes.txt", b"attached words", "text/plain"),
                    headers={"Subject": "the subject"})
    assert parse_mail(raw).body_text() == "the subject\n\nbody words\n\nattached words"


# ---------------------------------------------------------------- attachments

def test_attachment_reports_real_decoded_size_and_sha256() -> None:
    data = os.urandom(12_345)
    _, att = only_attachment(multipart(text_part("see attached"), attachment("blob.bin", data)))
    assert att.size == 12_345
    assert att.sha256 == hashlib.sha256(data).hexdigest()
    assert att.declared_type == "application/octet-stream"
    assert att.filename == "blob.bin"


def test_exe_renamed_pdf_is_sniffed_as_an_executable() -> None:
    _, att = only_attachment(multipart(attachment("invoice.pdf", make_pe(), "application/pdf")))
    assert att.declared_type == "application/pdf"
    assert att.sniffed_type == "application/x-msdownload"
    assert att.is_executable


@pytest.mark.parametrize(("magic", "sniffed"), [
    (b"\x7fELF\x02\x01\x01" + b"\x00" * 60, "application/x-executable"),
    (b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + b"\x00" * 60, "application/x-mach-binary"),
    (b"L\x00\x00\x00\x01\x14\x02\x00" + b"\x00" * 60, "application/x-ms-shortcut"),
])
def test_other_executable_formats_are_recognised_by_magic(magic: bytes, sniffed: str) -> None:
    _, att = only_attachment(multipart(attachment("harmless.txt", magic)))
    assert att.sniffed_type == sniffed
    assert att.is_executable


def test_script_extension_makes_an_attachment_executable_and_its_text_is_kept() -> None:
    _, att = only_attachment(multipart(attachment("invoice.pdf.js", b"WScript.Shell.Run('x')", "text/plain")))
    assert att.is_executable
    assert "WScript" in att.text


def test_rfc2231_filename_is_decoded_and_its_path_is_stripped() -> None:
    body = part({"Content-Type": "application/octet-stream",
                 "Content-Disposition": "attachment; filename*0*=utf-8''C%3A%5Cdocs%5CR%C3%A9; filename*1*=sum%C3%A9.doc"},
                b"data")
    _, att = only_attachment(multipart(body))
    assert att.filename == "Résumé.doc"


def test_rfc2231_single_extended_filename_with_language_is_decoded() -> None:
    body = part({"Content-Type": "application/octet-stream",
                 "Content-Disposition": "attachment; filename*=iso-8859-1'de'Gr%FC%DFe.txt"}, b"hallo")
    _, att = only_attachment(multipart(body))
    assert att.filename == "Grüße.txt"


def test_encoded_word_filename_is_decoded() -> None:
    body = part({"Content-Type": 'application/pdf; name="=?UTF-8?B?UmVjaG51bmcgw6TDtsO8LnBkZg==?="'}, b"%PDF-1.4\n")
    _, att = only_attachment(multipart(body))
    assert att.filename == "Rechnung äöü.pdf"


def test_pdf_attachment_text_is_extracted() -> None:
    pytest.importorskip("pypdf")
    _, att = only_attachment(multipart(attachment("minutes.pdf", make_pdf(b"Council minutes"), "application/pdf")))
    assert att.sniffed_type == "application/pdf"
    assert "Council minutes" in att.text
    assert not att.problems


def test_broken_pdf_gives_a_problem_not_an_exception() -> None:
    pytest.importorskip("pypdf")
    _, att = only_attachment(multipart(attachment("broken.pdf", b"%PDF-1.7\n" + os.urandom(3000))))
    assert att.sniffed_type == "application/pdf"
    assert att.text == ""
    assert any("pdf" in p for p in att.problems)


def test_password_protected_pdf_is_reported_as_encrypted() -> None:
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter()
    writer.add_blank_page(100, 100)
    writer.encrypt("secret", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    _, att = only_attachment(multipart(attachment("locked.pdf", buf.getvalue(), "application/pdf")))
    assert att.problems == ("encrypted pdf",)


def test_docm_attachment_has_macros_and_its_text() -> None:
    xml = b"<w:document><w:body><w:p><w:r><w:t>Quarterly</w:t></w:r><w:r><w:t xml:space=\"preserve\"> report"\
          b" &amp; plan</w:t></w:r></w:p><w:p><w:r><w:t>Page two</w:t></w:r></w:p></w:body></w:document>"
    _, att = only_attachment(multipart(attachment("report.docm", ooxml("word", xml, macros=True),
                                                  "application/vnd.ms-word.document.macroEnabled.12")))
    assert att.declared_type == "application/vnd.ms-word.document.macroenabled.12"
    assert att.sniffed_type == "application/vnd.ms-word.document.macroenabled.12"
    assert att.has_macros
    assert att.text == "Quarterly report & plan\nPage two"
    assert att.members == ()


def test_docx_renamed_zip_without_vba_has_no_macros() -> None:
    xml = b"<w:document><w:p><w:r><w:t>Plain</w:t></w:r></w:p></w:document>"
    _, att = only_attachment(multipart(attachment("plain.zip", ooxml("word", xml))))
    assert att.sniffed_type == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert not att.has_macros and att.text == "Plain"


def test_xlsx_and_pptx_text_is_read_from_their_xml() -> None:
    sheet = ooxml("xl", b"<sst><si><t>Budget 2025</t></si><si><r><t>Parks</t></r></si></sst>")
    slide = ooxml("ppt", b"<p:sld><a:p><a:r><a:t>Welcome slide</a:t></a:r></a:p></p:sld>")
    mail = parse_mail(multipart(attachment("b.xlsx", sheet), attachment("s.pptx", slide)))
    assert mail.attachments[0].text == "Budget 2025\nParks"
    assert mail.attachments[1].text == "Welcome slide"


def test_xlsm_extension_alone_marks_macros() -> None:
    _, att = only_attachment(multipart(attachment("sheet.xlsm", b"not really a workbook")))
    assert att.has_macros


def test_ole2_document_with_a_vba_project_has_macros() -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504 + "WordDocument".encode("utf-16-le") \
        + b"\x00" * 64 + "_VBA_PROJECT".encode("utf-16-le") + b"\x00" * 64
    _, att = only_attachment(multipart(attachment("old.doc", ole, "application/msword")))
    assert att.sniffed_type == "application/msword"
    assert att.has_macros


def test_zip_with_an_exe_inside_lists_the_executable_member() -> None:
    archive = make_zip({"docs/readme.txt": b"please run the tool", "tools/setup.exe": make_pe()})
    _, att = only_attachment(multipart(attachment("tools.zip", archive, "application/zip")))
    assert att.sniffed_type == "application/zip"
    assert [m.filename for m in att.members] == ["readme.txt", "setup.exe"]
    exe = att.members[1]
    assert exe.is_executable and exe.sniffed_type == "application/x-msdownload"
    assert exe.size == len(make_pe())
    assert att.members[0].text == "please run the tool"


def test_zip_bomb_is_stopped_by_the_compression_ratio_limit() -> None:
    bomb = make_zip({"zeros.bin": bytes(20_000_000)})
    assert len(bomb) < 100_000
    _, att = only_attachment(multipart(attachment("bomb.zip", bomb)))
    assert "zip bomb: compression ratio over limit" in att.problems
    assert att.members[0].size == 20_000_000 and att.members[0].sha256 == ""


def test_zip_bomb_is_stopped_by_the_expanded_size_limit() -> None:
    archive = make_zip({f"part{i}.bin": bytes(4_000_000) for i in range(5)})
    limits = Limits(max_zip_ratio=10**9, max_zip_expanded=10_000_000)
    _, att = only_attachment(multipart(attachment("many.zip", archive)), limits=limits)
    assert "zip bomb: expanded size over limit" in att.problems
    assert [m.sha256 != "" for m in att.members] == [True, True, False]


def test_zip_member_count_is_limited() -> None:
    archive = make_zip({f"f{i}.txt": b"x" for i in range(300)})
    _, att = only_attachment(multipart(attachment("many.zip", archive)))
    assert len(att.members) == 200
    assert "zip member limit reached (200)" in att.problems


def test_encrypted_zip_member_is_noted_and_still_judged_by_its_name() -> None:
    archive = mark_encrypted(make_zip({"payload.exe": b"ciphertext" * 10}, zipfile.ZIP_STORED))
    _, att = only_attachment(multipart(attachment("locked.zip", archive)))
    assert "encrypted zip" in att.problems
    assert att.members[0].filename == "payload.exe" and att.members[0].is_executable


def test_zips_nested_deeper_than_the_limit_are_not_expanded() -> None:
    archive = make_zip({"evil.exe": make_pe()})
    for level in range(4):
        archive = make_zip({f"level{level}.zip": archive})
    _, att = only_attachment(multipart(attachment("nest.zip", archive)))
    node = att
    for _ in range(3):
        node = node.members[0]
    assert "zip depth limit reached (3)" in node.problems and node.members == ()


def test_corrupt_zip_is_a_problem() -> None:
    _, att = only_attachment(multipart(attachment("bad.zip", b"PK\x03\x04" + os.urandom(500))))
    assert any(p.startswith("corrupt zip") for p in att.problems)


def test_nested_message_rfc822_text_and_attachments_become_the_attachment() -> None:
    mail = parse_mail_file(CORPUS / "forwarded.eml")
    assert mail.texts[0].text == "See the forwarded message below."
    fwd = mail.attachments[0]
    assert fwd.declared_type == "message/rfc822"
    assert "Original ✓" in fwd.text and "The inner body text." in fwd.text
    assert [m.filename for m in fwd.members] == ["budget.csv"]
    assert "paper,12" in mail.body_text()


def test_eml_attachment_is_parsed_recursively() -> None:
    inner = multipart(text_part("inner words"), attachment("inner.exe", make_pe()),
                      headers={"Subject": "inner subject"})
    _, att = only_attachment(multipart(attachment("forward.eml", inner)))
    assert "inner subject" in att.text and "inner words" in att.text
    assert att.members[0].filename == "inner.exe" and att.members[0].is_executable


def test_base64_encoded_message_rfc822_part_is_decoded_then_parsed() -> None:
    inner = b"Subject: wrapped\r\n\r\nwrapped body"
    body = part({"Content-Type": "message/rfc822", "Content-Transfer-Encoding": "base64"},
                base64.b64encode(inner))
    _, att = only_attachment(multipart(body))
    assert att.size == len(inner)
    assert "wrapped body" in att.text


def test_messages_nested_past_the_depth_limit_are_cut() -> None:
    raw = b"Subject: leaf\r\n\r\nleaf"
    for i in range(15):
        raw = b"Subject: level %d\r\nContent-Type: message/rfc822\r\n\r\n" % i + raw
    mail = parse_mail(raw)
    assert "leaf" not in mail.body_text()
    problems: list[str] = []
    stack = list(mail.attachments)
    while stack:
        item = stack.pop()
        problems.extend(item.problems)
        stack.extend(item.members)
    assert "nesting depth limit reached (10)" in problems


def test_eicar_in_an_attachment_is_a_problem() -> None:
    _, att = only_attachment(multipart(attachment("eicar.com", EICAR)))
    assert "eicar-test-signature" in att.problems
    assert att.is_executable


def test_eicar_in_inline_text_is_a_defect() -> None:
    mail = parse_mail(multipart(text_part("test file follows " + EICAR.decode())))
    assert "eicar-test-signature" in mail.defects


def test_eicar_inside_a_zip_member_is_a_problem_of_that_member() -> None:
    _, att = only_attachment(multipart(attachment("test.zip", make_zip({"eicar.txt": EICAR}))))
    assert "eicar-test-signature" in att.members[0].problems


def test_uuencoded_attachment_is_decoded() -> None:
    body = b"begin 644 hello.txt\r\n" + binascii.b2a_uu(b"hello uuencode") + b"`\r\nend\r\n"
    raw = multipart(part({"Content-Type": 'application/octet-stream; name="hello.txt"',
                          "Content-Transfer-Encoding": "x-uuencode"}, body))
    _, att = only_attachment(raw)
    assert att.size == len(b"hello uuencode") and att.text == "hello uuencode"


# ---------------------------------------------------------------- entry points

def test_empty_input_raises_mail_parse_error() -> None:
    with pytest.raises(MailParseError, match="empty"):
        parse_mail(b"")


def test_input_that_is_not_bytes_raises_mail_parse_error() -> None:
    with pytest.raises(MailParseError, match="bytes"):
        parse_mail("Subject: str\n\nbody")  # type: ignore[arg-type]


def test_unreadable_path_raises_mail_parse_error(tmp_path: Path) -> None:
    with pytest.raises(MailParseError, match="cannot read"):
        parse_mail_file(tmp_path / "no-such.eml")
    with pytest.raises(MailParseError, match="cannot read"):
        parse_mail_file(tmp_path)


def test_mbox_from_line_is_stripped_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "one.mbox"
    path.write_bytes(b"From MAILER-DAEMON Mon Jun  3 10:00:00 2024\nSubject: hi\n\nbody\n")
    mail = parse_mail_file(path)
    assert mail.subject == "hi" and [n for n, _ in mail.headers] == ["Subject"]


def test_every_fixture_in_the_corpus_folder_parses_cleanly() -> None:
    for path in sorted(CORPUS.glob("*.eml")):
        mail = parse_mail_file(path)
        assert mail.body_text(), path.name
        assert not any(d.startswith("parser failure") for d in mail.defects), path.name


# ---------------------------------------------------------------- real corpus

@pytest.mark.slow
def test_spamassassin_public_corpus_parses_without_exceptions(tmp_path_factory: pytest.TempPathFactory) -> None:
    # The SpamAssassin public corpus is offered under PDDL/CC0 terms; it lives read-only in ../shared.
    archive = SHARED / "data" / "mail" / "spamassassin-public-corpus.tar.xz"
    if not archive.exists():
        pytest.skip(f"{archive} not present")
    target = tmp_path_factory.mktemp("spamassassin")
    subprocess.run(["tar", "-xJf", str(archive), "-C", str(target)], check=True)
    files = sorted(p for p in target.rglob("*") if p.is_file())
    start = time.perf_counter()
    with_text = 0
    for path in files:
        mail = parse_mail_file(path)
        assert not any(d.startswith("parser failure") for d in mail.defects), path
        with_text += bool(mail.body_text().strip())
    elapsed = time.perf_counter() - start
    print(f"\nparsed {len(files)} messages in {elapsed:.1f} s: {len(files) / elapsed:.0f} messages/s")
    assert len(files) == 6046
    assert with_text >= 0.95 * len(files)
