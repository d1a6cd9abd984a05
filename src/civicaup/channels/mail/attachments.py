"""Attachment analysis for the MIME front end: charset fallback, HTML to text, magic sniffing,
zip walking within limits, and text extraction (PDF, OOXML, HTML, plain text, nested mail);
licence-crack / keygen strings in programs, and an optional ClamAV daemon scan (clamd.py).

Nothing here raises on bad content: what goes wrong becomes a string in `problems`.
"""
from __future__ import annotations

import codecs
import functools
import hashlib
import html
import io
import logging
import mimetypes
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import filetype
from selectolax.lexbor import LexborHTMLParser

log = logging.getLogger(__name__)

# Split in two so that this source file never carries the contiguous test signature.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_PROBLEM = "eicar-test-signature"
PDF_MAX_PAGES = 50
#: Problems whose text starts with these mark a licence crack / keygen and a ClamAV verdict.
CRACK_PROBLEM = "licence-crack marker"
CLAMAV_FOUND = "clamav-found"
CLAMAV_ERROR = "clamav-error"
_CRACK_SCAN_BYTES = 8_000_000
# Strings that keygens, cracks and activators carry (and show in their windows); searched in the
# first bytes of programs and unknown binaries, UTF-16 text included.
_CRACK_MARKERS = re.compile(
    rb"(?<!ssh-)(?<!ssh )key ?gen(?:erator)?\b|serial (?:number |key )?generator|(?:cracked|crack(?:ed)? and patched|patched) by"
    rb"|kms ?activator|loader ?activator|activation ?bypass|licen[cs]e ?(?:crack|bypass)|generate (?:a )?serial"
    rb"|\bx-?force (?:keygen|crack)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Limits:
    """Bounds on the work one message may cause. The zip ratio applies to members over 64 KiB;
    the expanded-size budget is shared by every archive (and OOXML file) in the message."""
    max_parts: int = 1000
    max_depth: int = 10
    max_part_text: int = 1_000_000
    max_total_text: int = 5_000_000
    max_zip_members: int = 200
    max_zip_expanded: int = 50_000_000
    max_zip_depth: int = 3
    max_zip_ratio: int = 100


@dataclass(frozen=True)
class Attachment:
    """One attachment (or zip member / nested-mail attachment) and what its bytes really are."""
    filename: str | None
    declared_type: str
    sniffed_type: str | None
    size: int
    sha256: str
    is_executable: bool
    has_macros: bool
    text: str
    members: tuple[Attachment, ...]
    problems: tuple[str, ...]


NestedResult = tuple[str, tuple[Attachment, ...], tuple[str, ...]]


@dataclass
class Ctx:
    """Per-message budgets shared by every part, nested message and zip member."""
    limits: Limits
    parse_nested: Callable[[bytes, Ctx, int], NestedResult]
    text_left: int = -1
    zip_expanded: int = 0
    parsed_parts: int = 0
    walked_parts: int = 0
    stopped: bool = False
    feed_cut: bool = False
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.text_left < 0:
            self.text_left = self.limits.max_total_text

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def take_text(self, text: str) -> str:
        """Cap one part's text and charge it to the message's total text budget."""
        text = text.replace("\x00", "")
        if len(text) > self.limits.max_part_text:
            text = text[: self.limits.max_part_text]
            self.note(f"part text truncated ({self.limits.max_part_text} chars)")
        if len(text) > self.text_left:
            text = text[: self.text_left]
            self.note(f"total text limit reached ({self.limits.max_total_text} chars)")
        self.text_left -= len(text)
        return text


# ---------------------------------------------------------------- charsets

_NO_CHARSET = {"", "x-unknown", "unknown", "unknown-8bit", "x-user-defined", "default", "default_charset", "none",
               "charset"}
_CHARSET_ALIASES = {"iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
                    "l1": "cp1252", "ks_c_5601-1987": "cp949", "gb2312": "gb18030", "gbk": "gb18030",
                    "x-sjis": "shift_jis", "x-mac-roman": "mac_roman", "chinesebig5": "big5"}
_SEVEN_BIT_CODECS = ("utf_16", "utf-16", "utf_32", "utf-32", "utf-7", "utf_7", "iso2022", "hz")


@functools.lru_cache(maxsize=256)
def _codec(charset: str) -> str | None:
    try:
        return codecs.lookup(charset).name
    except (LookupError, ValueError, TypeError):
        return None


def decode_text(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """Bytes to str: declared charset, then utf-8, then cp1252, then latin-1. Returns (text, problem)."""
    cs = (charset or "").strip().strip("\"'").lower()[:40]
    cs = "" if cs in _NO_CHARSET else _CHARSET_ALIASES.get(cs, cs)
    problem: str | None = None
    codec = _codec(cs) if cs else None
    if cs and codec is None:
        problem = f"undecodable charset {cs}"
    if data.isascii() and (codec is None or not codec.startswith(_SEVEN_BIT_CODECS)):
        return data.decode("ascii"), problem
    if codec:
        try:
            return data.decode(codec), problem
        except Exception:  # noqa: BLE001 - a codec may raise anything on junk
            problem = f"wrong charset {cs}"
    try:
        return data.decode("utf-8"), problem
    except UnicodeDecodeError:
        pass
    try:  # mostly right in the declared (or utf-8) charset, with a few corrupt bytes: keep it
        text = data.decode(codec or "utf-8", "replace")
        bad = text.count("\ufffd")
        if bad * 100 <= len(text) and len(text) - len(text.encode("ascii", "ignore")) - bad >= bad:
            return text, problem
    except Exception:  # noqa: BLE001
        pass
    try:
        return data.decode("cp1252"), problem
    except UnicodeDecodeError:
        return data.decode("latin-1", "replace"), problem


# ---------------------------------------------------------------- HTML

# The "<" of a block or cell tag: a line break (a space) goes before it. Matching the "<" alone, with the tag
# name in a look-ahead, makes the replacement a literal ("\n<"), which is a third faster than re-inserting the
# whole match through a template, with the same output.
_BLOCK_TAG = re.compile(r"<(?=br\b|/?(?:p|div|tr|li|h[1-6]|table|blockquote|pre|ul|ol|dl|dt|dd|hr|title|section"
                        r"|article|header|footer|center|form)\b)", re.IGNORECASE)
_CELL_TAG = re.compile(r"<(?=t[dh]\b)", re.IGNORECASE)
_ANY_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)")
_FLAT_TAGS = {"br", "img", "hr", "meta", "link", "input", "area", "base", "col", "embed", "param", "source",
              "track", "wbr", "p", "li", "td", "th", "tr", "option", "dt", "dd"}
_MAX_HTML_DEPTH = 512  # lexbor is quadratic in nesting depth; deeper markup takes the regex route
_RAW_TEXT_OPEN = re.compile(r"<(script|style)\b")
_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))""", re.IGNORECASE)
_STRIP_TAG = re.compile(r"<[^<>]*>")
_HSPACE = re.compile(r"[ \t\r\f\v\u00a0\u200b]+")
_BLANKS = re.compile(r"\n{3,}")
_NEWLINES = re.compile(r"\n{2,}")


def _tidy(text: str, *, blank_lines: bool = True) -> str:
    lines = map(str.strip, _HSPACE.sub(" ", text.replace("\x00", "")).split("\n"))
    return (_BLANKS if blank_lines else _NEWLINES).sub("\n\n" if blank_lines else "\n", "\n".join(lines)).strip()


def _too_deep(markup: str) -> bool:
    depth = 0
    for m in _ANY_TAG.finditer(markup):
        if m.group(2).lower() in _FLAT_TAGS:
            continue
        if m.group(1):
            depth = depth - 1 if depth else 0
        else:
            depth += 1
            if depth > _MAX_HTML_DEPTH:
                return True
    return False


def _html_fallback(markup: str) -> str:
    """Linear-time tag stripping for markup lexbor would be slow on."""
    low, out, pos = markup.lower(), [], 0
    while pos < len(markup):
        m = _RAW_TEXT_OPEN.search(low, pos)
        if not m:
            out.append(markup[pos:])
            break
        out.append(markup[pos:m.start()])
        end = low.find("</" + m.group(1), m.end())
        close = low.find(">", end) if end >= 0 else -1
        pos = len(markup) if close < 0 else close + 1
    kept = "".join(out)
    links = [next(g for g in m.groups() if g is not None) for m in _HREF.finditer(kept)]
    text = _tidy(html.unescape(_STRIP_TAG.sub("", kept)), blank_lines=False)
    urls = " ".join(f"<{u.strip()}>" for u in links[:5000] if u.strip() and not u.startswith("#"))
    return f"{text}\n\n{urls}".strip() if urls else text


def html_to_text(markup: str, *, cap: int = 2_000_000) -> str:
    """Visible text of an HTML document; script/style dropped, link targets kept as ' <url>'."""
    markup = markup[:cap]
    if not markup.strip():
        return ""
    prepared = _CELL_TAG.sub(" <", _BLOCK_TAG.sub("\n<", markup))
    if prepared.count("<") > 2000 and _too_deep(prepared):
        return _html_fallback(prepared)
    try:
        tree = LexborHTMLParser(prepared)
        tree.strip_tags(["script", "style"])
        for i, node in enumerate(tree.css("a[href], area[href]")):
            href = (node.attributes.get("href") or "").strip()
            if i >= 5000 or not href or href.startswith("#") or href.lower().startswith("javascript:"):
                continue
            if href not in (node.text(separator="") or ""):
                node.insert_after(f" <{href}>")
        root = tree.root
        return _tidy(root.text(separator="") if root is not None else "", blank_lines=False)
    except Exception:  # noqa: BLE001 - fall back rather than lose the text
        return _html_fallback(prepared)


# ---------------------------------------------------------------- sniffing

def _u16(name: str) -> bytes:
    return name.encode("utf-16-le")


_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_MACHO = {b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe"}
_MSI_CLSID = bytes.fromhex("84100c0000000000c000000000000046")
_OOXML = {"word/": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                    "application/vnd.ms-word.document.macroenabled.12"),
          "xl/": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                  "application/vnd.ms-excel.sheet.macroenabled.12"),
          "ppt/": ("application/vnd.openxmlformats-officedocument.presentationml.presentation",
                   "application/vnd.ms-powerpoint.presentation.macroenabled.12")}
OOXML_TYPES = {t for pair in _OOXML.values() for t in pair}
EXECUTABLE_TYPES = {"application/x-msdownload", "application/x-dosexec", "application/x-executable",
                    "application/x-mach-binary", "application/x-sharedlib", "application/java-archive",
                    "application/java-vm", "application/x-msi", "application/x-ms-shortcut",
                    "application/vnd.android.package-archive", "application/vnd.microsoft.portable-executable",
                    "application/x-msdos-program", "application/x-ms-installer", "application/x-sh",
                    "application/x-shellscript", "text/x-shellscript", "text/x-script", "application/x-bat",
                    "application/hta", "application/x-ms-application"}
EXECUTABLE_EXTS = {"exe", "scr", "bat", "cmd", "com", "js", "jse", "vbs", "vbe", "ps1", "psm1", "psd1", "jar",
                   "msi", "msp", "mst", "hta", "lnk", "pif", "cpl", "dll", "ocx", "sys", "drv", "wsf", "wsh",
                   "wsc", "sct", "reg", "vb", "inf", "application", "gadget", "msc", "scf", "appx",
                   "appxbundle", "msix", "msixbundle", "xll", "sh", "command", "apk", "chm", "ws"}
MACRO_EXTS = {"docm", "dotm", "xlsm", "xltm", "xlam", "pptm", "potm", "ppsm", "ppam", "sldm"}
_TEXT_EXTS = {"txt", "text", "csv", "tsv", "log", "md", "json", "xml", "ics", "vcf", "ini", "cfg", "conf",
              "yaml", "yml", "js", "vbs", "ps1", "bat", "cmd", "sh", "py"}
_HTML_EXTS = {"htm", "html", "xhtml", "shtml", "hta"}


def extension(name: str | None) -> str:
    """Lowercased last extension, ignoring the trailing dots and spaces Windows ignores."""
    name = (name or "").lower().rstrip(" .")
    return name.rsplit(".", 1)[1] if "." in name else ""


def sniff(data: bytes) -> str | None:
    """MIME type from magic numbers (zip containers are refined by `zip_kind`)."""
    head = data[:16]
    if head.startswith(b"MZ") and b"\x00" in data[2:64]:
        return "application/x-msdownload"
    if head.startswith(b"\x7fELF"):
        return "application/x-executable"
    if head[:4] in _MACHO:
        return "application/x-mach-binary"
    if head.startswith(b"\xca\xfe\xba\xbe"):  # Mach-O fat binary, or a Java class (major version >= 45)
        return "application/x-mach-binary" if int.from_bytes(head[4:8], "big") < 40 else "application/java-vm"
    if head.startswith(_OLE2):
        return _ole_kind(data)
    if head.startswith(b"L\x00\x00\x00\x01\x14\x02\x00"):
        return "application/x-ms-shortcut"
    if head.startswith(_ZIP_MAGIC):
        return "application/zip"
    if b"%PDF-" in data[:1024]:
        return "application/pdf"
    if head.startswith(b"#!"):
        return "text/x-script"
    if head.startswith(b"{\\rtf"):
        return "application/rtf"
    try:
        guessed = filetype.guess_mime(data[:8192])
    except Exception:  # noqa: BLE001
        guessed = None
    if guessed:
        return str(guessed)
    start = data[:512].lstrip().lower()
    if start.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "text/html"
    return None


def _ole_kind(data: bytes) -> str:
    if _u16("WordDocument") in data:
        return "application/msword"
    if _u16("Workbook") in data or _u16("Book") in data:
        return "application/vnd.ms-excel"
    if _u16("PowerPoint Document") in data:
        return "application/vnd.ms-powerpoint"
    if _MSI_CLSID in data[:1_000_000]:
        return "application/x-msi"
    return "application/x-ole-storage"


def zip_kind(zf: zipfile.ZipFile, names: list[str]) -> tuple[str, bool]:
    """(sniffed type, has vbaProject.bin) of a zip container: OOXML, jar, apk, ODF, or plain zip."""
    low = [n.lower() for n in names]
    macros = any(n.endswith("vbaproject.bin") for n in low)
    if "[content_types].xml" in low:
        for prefix, (plain, macro) in _OOXML.items():
            if any(n.startswith(prefix) for n in low):
                return (macro if macros else plain), macros
    if "androidmanifest.xml" in low and "classes.dex" in low:
        return "application/vnd.android.package-archive", macros
    if "meta-inf/manifest.mf" in low or any(n.endswith(".class") for n in low):
        return "application/java-archive", macros
    if "mimetype" in low:
        try:
            info = zf.getinfo(names[low.index("mimetype")])
            if info.file_size < 200 and not info.flag_bits & 1:
                kind = zf.read(info).decode("ascii", "replace").strip().lower()
                if re.fullmatch(r"[a-z0-9.+-]+/[a-z0-9.+-]+", kind):
                    return kind, macros
        except Exception:  # noqa: BLE001
            pass
    return "application/zip", macros


# ---------------------------------------------------------------- zip

def _open_zip(data: bytes, problems: list[str]) -> tuple[zipfile.ZipFile | None, list[str]]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        return zf, [i.filename for i in zf.infolist()]
    except Exception as exc:  # noqa: BLE001 - BadZipFile, struct errors, NotImplementedError...
        problems.append(f"corrupt zip ({type(exc).__name__})")
        return None, []


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, ctx: Ctx, problems: list[str]) -> bytes | None:
    """Member bytes within the ratio and expanded-size limits, or None with the reason in problems."""
    lim = ctx.limits
    if info.flag_bits & 0x1:
        problems.append("encrypted zip")
        return None
    if info.file_size > 65_536 and info.file_size > lim.max_zip_ratio * max(info.compress_size, 1):
        problems.append("zip bomb: compression ratio over limit")
        return None
    if ctx.zip_expanded + info.file_size > lim.max_zip_expanded:
        problems.append("zip bomb: expanded size over limit")
        return None
    ctx.zip_expanded += info.file_size
    try:
        with zf.open(info) as fh:  # zipfile never yields more than the declared file_size
            return fh.read()
    except Exception as exc:  # noqa: BLE001
        problems.append(f"unreadable zip member ({type(exc).__name__})")
        return None


def _zip_members(zf: zipfile.ZipFile, ctx: Ctx, depth: int, zip_depth: int,
                 problems: list[str]) -> tuple[Attachment, ...]:
    lim = ctx.limits
    if zip_depth >= lim.max_zip_depth:
        problems.append(f"zip depth limit reached ({lim.max_zip_depth})")
        return ()
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > lim.max_zip_members:
        problems.append(f"zip member limit reached ({lim.max_zip_members})")
        infos = infos[: lim.max_zip_members]
    members: list[Attachment] = []
    for info in infos:
        name = clean_filename(info.filename)
        declared = (mimetypes.guess_type(name or "")[0] or "application/octet-stream").lower()
        mine: list[str] = []
        data = _read_member(zf, info, ctx, mine)
        problems.extend(p for p in mine if p not in problems)
        if data is None:
            ext = extension(name)
            members.append(Attachment(name, declared, None, info.file_size, "", ext in EXECUTABLE_EXTS,
                                      ext in MACRO_EXTS, "", (), tuple(mine)))
            if any("expanded size" in p for p in mine):
                break
            continue
        members.append(build_attachment(data, name, declared, None, ctx, depth, zip_depth + 1))
    return tuple(members)


# ---------------------------------------------------------------- text extraction

_OOXML_TEXT_PART = re.compile(r"(word/(document|header\d*|footer\d*|footnotes|endnotes)|xl/sharedstrings"
                              r"|xl/worksheets/sheet\d+|ppt/slides/slide\d+|ppt/notesslides/notesslide\d+"
                              r"|content)\.xml")
_XML_TEXT = re.compile(r"<(?:[a-z]+:)?t(?:\s[^>]*)?>([^<]*)<|</(?:[a-z]+:)?(?:p|si|h)>")
_NATURAL = re.compile(r"(\d+)")


def _ooxml_text(zf: zipfile.ZipFile, names: list[str], ctx: Ctx, problems: list[str]) -> str:
    """Text runs of the document XML inside an OOXML (or ODF content.xml) zip; no XML parser involved."""
    parts = sorted((n for n in names if _OOXML_TEXT_PART.fullmatch(n.lower())),
                   key=lambda n: [int(t) if t.isdigit() else t for t in _NATURAL.split(n)])[:200]
    out: list[str] = []
    size = 0
    for name in parts:
        data = _read_member(zf, zf.getinfo(name), ctx, problems)
        if data is None:
            continue
        xml = data.decode("utf-8", "replace")
        if name == "content.xml":  # OpenDocument: strip the tags, paragraphs end lines
            xml = re.sub(r"</text:(?:p|h)>", "\n", xml)
            out.append(html.unescape(_STRIP_TAG.sub("", xml)))
        else:
            out.append(html.unescape("".join(m.group(1) if m.group(1) is not None else "\n"
                                             for m in _XML_TEXT.finditer(xml))))
        size += len(out[-1])
        if size > ctx.limits.max_part_text:
            break
    return _tidy("\n".join(out))


def _pdf_text(data: bytes, cap: int, problems: list[str]) -> str:
    try:
        from pypdf import PdfReader
    except ImportError:
        problems.append("pdf text unavailable (pypdf not installed)")
        return ""
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings about broken PDFs are noise here
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:  # an empty user password opens many "protected" PDFs
                opened = bool(reader.decrypt(""))
            except Exception:  # noqa: BLE001 - e.g. AES without the optional crypto package
                opened = False
            if not opened:
                problems.append("encrypted pdf")
                return ""
        count = len(reader.pages)
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds on broken files
        problems.append(f"unreadable pdf ({type(exc).__name__})")
        return ""
    if count > PDF_MAX_PAGES:
        problems.append(f"pdf page limit reached ({PDF_MAX_PAGES})")
    out: list[str] = []
    size = 0
    for i in range(min(count, PDF_MAX_PAGES)):
        try:
            page_text = reader.pages[i].extract_text() or ""
        except Exception as exc:  # noqa: BLE001
            problems.append(f"pdf page {i + 1} unreadable ({type(exc).__name__})")
            continue
        out.append(page_text)
        size += len(page_text)
        if size > cap:
            break
    return "\n\n".join(out)


def crack_marker(data: bytes) -> str | None:
    """The first licence-crack / keygen string in a program's bytes (ASCII or UTF-16), if any."""
    head = data[:_CRACK_SCAN_BYTES]
    m = _CRACK_MARKERS.search(head)
    if m is None and b"\x00" in head:
        m = _CRACK_MARKERS.search(head.replace(b"\x00", b""))
    return m.group().decode("ascii", "replace").lower() if m else None


def _clamav(data: bytes) -> list[str]:
    """A ClamAV daemon's verdict when CIVICAUP_CLAMD is set (see clamd.py); nothing otherwise."""
    from civicaup.channels.mail import clamd

    if not clamd.address():
        return []
    result = clamd.scan(data)
    if result.status == "found":
        return [f"{CLAMAV_FOUND}: {result.signature}"]
    if result.status == "error":
        log.warning("clamd scan failed: %s", result.detail)
        return [f"{CLAMAV_ERROR}: {result.detail}"]
    return []


def clean_filename(name: str | None) -> str | None:
    """Last path component, without control characters; None if nothing is left."""
    if not name:
        return None
    base = re.split(r"[/\\]", name)[-1]
    base = "".join(ch for ch in base if ch >= " " and ch != "\x7f").strip()[:1024]
    return base or None


def build_attachment(data: bytes, filename: str | None, declared_type: str, charset: str | None, ctx: Ctx,
                     depth: int, zip_depth: int = 0, problems: Iterable[str] = ()) -> Attachment:
    """Sniff, classify and extract text from one attachment's decoded bytes."""
    probs = list(problems)
    lim = ctx.limits
    ext = extension(filename)
    sniffed = sniff(data)
    macros = False
    text = ""
    members: tuple[Attachment, ...] = ()
    zf: zipfile.ZipFile | None = None
    names: list[str] = []
    if sniffed == "application/zip":
        zf, names = _open_zip(data, probs)
        if zf is not None:
            sniffed, macros = zip_kind(zf, names)
    elif sniffed and sniffed.startswith("application/") and data.startswith(_OLE2):
        macros = _u16("_VBA_PROJECT") in data or _u16("Macros") in data
        if _u16("EncryptedPackage") in data:
            probs.append("encrypted office document")
    macros = macros or ext in MACRO_EXTS
    executable = (sniffed in EXECUTABLE_TYPES or ext in EXECUTABLE_EXTS or declared_type in EXECUTABLE_TYPES)
    if EICAR in data:
        probs.append(EICAR_PROBLEM)
    if executable or sniffed is None or sniffed == "application/octet-stream":
        marker = crack_marker(data)
        if marker:
            probs.append(f"{CRACK_PROBLEM}: {marker}")
    if sniffed in ("application/x-7z-compressed", "application/x-rar-compressed", "application/vnd.rar"):
        probs.append(f"archive not inspected ({sniffed.rsplit('/', 1)[1]})")
    if zip_depth == 0:
        probs.extend(_clamav(data))
    try:
        if declared_type in ("message/rfc822", "message/global") or ext == "eml":
            if depth >= lim.max_depth:
                probs.append(f"nesting depth limit reached ({lim.max_depth})")
            else:
                text, members, nested = ctx.parse_nested(data, ctx, depth + 1)
                probs.extend(nested)
        elif zf is not None and (sniffed in OOXML_TYPES or (sniffed or "").startswith("application/vnd.oasis")):
            text = ctx.take_text(_ooxml_text(zf, names, ctx, probs))
        elif zf is not None:
            members = _zip_members(zf, ctx, depth, zip_depth, probs)
        elif sniffed == "application/pdf":
            text = ctx.take_text(_pdf_text(data, lim.max_part_text, probs))
        elif sniffed in (None, "text/html", "text/x-script"):
            if sniffed == "text/html" or declared_type == "text/html" or ext in _HTML_EXTS:
                text = ctx.take_text(html_to_text(decode_text(data[: lim.max_part_text * 4], charset)[0]))
            elif declared_type.startswith("text/") or ext in _TEXT_EXTS or sniffed == "text/x-script":
                text = ctx.take_text(decode_text(data[: lim.max_part_text * 4], charset)[0])
    except Exception as exc:  # noqa: BLE001 - one bad attachment must not lose the message
        log.warning("attachment analysis failed: %s", type(exc).__name__)
        probs.append(f"analysis failed ({type(exc).__name__})")
    return Attachment(filename=filename, declared_type=declared_type, sniffed_type=sniffed, size=len(data),
                      sha256=hashlib.sha256(data).hexdigest(), is_executable=executable, has_macros=macros,
                      text=text, members=members,
                      problems=tuple(dict.fromkeys(probs)))


__all__ = [
    "CLAMAV_ERROR",
    "CLAMAV_FOUND",
    "CRACK_PROBLEM",
    "EICAR",
    "EICAR_PROBLEM",
    "Attachment",
    "Ctx",
    "Limits",
    "build_attachment",
    "clean_filename",
    "crack_marker",
    "decode_text",
    "extension",
    "html_to_text",
    "sniff",
    "zip_kind",
]
