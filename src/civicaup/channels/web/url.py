"""URL normalisation: one canonical form of a URL for the category index and the policy checks.

The WHATWG parser in ``ada_url`` does the heavy lifting (IDNA, IPv4 number forms, IPv6, backslashes,
tab/newline stripping, dot segments, percent-decoded hosts). This module adds only what it does not do:
scheme-less and CONNECT forms, a scheme allow-list, trailing-dot removal, A-label validation, a strict
host check, and percent-encoding normalisation of the path and query.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import ada_url

from civicaup.errors import BadURLError

MAX_URL_CHARS = 64 * 1024
SUPPORTED_SCHEMES = frozenset({"http", "https", "ftp", "ws", "wss"})

_SCHEME_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")
_CONNECT_RE = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^\s/\\:?#@\[\]]+):(\d{1,5})")
_STRIP_INSIDE = str.maketrans("", "", "\t\n\r")
_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))
_PCT_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_IPV4_RE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_LABEL_RE = re.compile(r"[a-z0-9_\-]{1,63}")
_HOST_RE = re.compile(r"(?:[a-z0-9_\-]{1,63}\.)*[a-z0-9_\-]{1,63}")


@dataclass(frozen=True, slots=True)
class NormalURL:
    """A URL in canonical form; see :func:`normalise_url`."""

    scheme: str
    host: str
    port: int | None
    path: str
    query: str
    is_ip: bool
    original: str

    def host_path(self) -> str:
        """``host/path?query`` as squidGuard URL lists write it (no scheme, port or fragment)."""
        if self.query:
            return f"{self.host}{self.path}?{self.query}"
        return self.host + self.path

    def labels(self) -> list[str]:
        """The host and each parent domain, most specific first; ``[]`` for an IP address."""
        if self.is_ip:
            return []
        parts = self.host.split(".")
        return [".".join(parts[i:]) for i in range(len(parts))]


def normalise_url(text: str) -> NormalURL:
    """Parse *text* the way a browser would and return its canonical form, or raise BadURLError."""
    if not isinstance(text, str):
        raise BadURLError(f"a URL must be text, not {type(text).__name__}")
    if len(text) > MAX_URL_CHARS:
        raise BadURLError(f"URL is {len(text):,} characters long; the limit is {MAX_URL_CHARS:,}")
    cleaned = text
    if "\t" in cleaned or "\n" in cleaned or "\r" in cleaned:
        cleaned = cleaned.translate(_STRIP_INSIDE)
    cleaned = cleaned.strip(_C0_AND_SPACE)
    if not cleaned:
        raise BadURLError("empty URL")
    href, scheme = _with_scheme(cleaned, text)
    try:
        canonical = ada_url.normalize_url(href)
    except ValueError:
        raise BadURLError(f"not a valid URL{_why_invalid(cleaned)}: {_show(text)}") from None
    host, port_text, path, query = _split_href(canonical)
    is_ip = host.startswith("[") or _IPV4_RE.fullmatch(host) is not None
    if is_ip:
        host = host.strip("[]")
    else:
        host = _check_host(host.rstrip("."), text)
    port = int(port_text) if port_text else None
    path = _normalise_pct(path) or "/"
    query = _normalise_pct(query)
    return NormalURL(scheme=scheme, host=host, port=port, path=path, query=query, is_ip=is_ip, original=text)


def normalise_host(text: str) -> tuple[str, bool]:
    """Canonical form of a bare host name or IP address: ``(host, is_ip)``; raises BadURLError."""
    if "/" in text or "\\" in text or "?" in text or "#" in text or "@" in text:
        raise BadURLError(f"not a host name: {_show(text)}")
    url = normalise_url("http://" + text.strip().rstrip("."))
    if url.port is not None:
        raise BadURLError(f"a host name has no port: {_show(text)}")
    return url.host, url.is_ip


def _split_href(href: str) -> tuple[str, str, str, str]:
    """Split a WHATWG-serialised special URL into (host, port, path, query); userinfo and fragment dropped.

    In the serialisation, ``/`` and ``@`` inside userinfo and ``?``/``#`` inside the path are
    percent-encoded, so plain string splitting is exact.
    """
    start = href.index("//") + 2
    rest = href.split("#", 1)[0]
    slash = rest.find("/", start)
    if slash < 0:
        authority, tail = rest[start:], "/"
    else:
        authority, tail = rest[start:slash], rest[slash:]
    hostport = authority.rpartition("@")[2]
    if hostport.startswith("["):
        close = hostport.index("]") + 1
        host, port = hostport[:close], hostport[close + 1:]
    else:
        host, _, port = hostport.partition(":")
    path, _, query = tail.partition("?")
    return host, port, path, query


def _with_scheme(cleaned: str, original: str) -> tuple[str, str]:
    """Return (text for the parser, scheme), adding ``http://`` or ``https://`` where none is given."""
    m = _SCHEME_RE.match(cleaned)
    scheme = m.group(1).lower() if m else ""
    if scheme in SUPPORTED_SCHEMES:
        return cleaned, scheme
    if _CONNECT_RE.fullmatch(cleaned):
        return "https://" + cleaned, "https"  # Squid CONNECT form: host:port
    if m:
        rest = cleaned[m.end():]
        if not rest.startswith(("//", "\\\\")) and re.match(r"\d{1,5}(?:[/\\?#]|$)", rest):
            return "http://" + cleaned, "http"  # example.com:8080/path
        raise BadURLError(f"unsupported URL scheme {scheme + ':'!r} (use http, https, ftp, ws or wss): "
                          f"{_show(original)}")
    if cleaned.startswith(("//", "\\\\")):
        return "http:" + cleaned, "http"
    if cleaned[0] in "/\\?#":
        raise BadURLError(f"URL has no host: {_show(original)}")
    sep = cleaned.find("://")
    if sep >= 0 and not any(c in cleaned[:sep] for c in "/\\?#"):
        raise BadURLError(f"URL has an invalid scheme: {_show(original)}")
    return "http://" + cleaned, "http"


def _check_host(host: str, original: str) -> str:
    """Validate a normalised (ASCII, lowercase) domain name; A-labels must be valid punycode."""
    if _HOST_RE.fullmatch(host) and len(host) <= 253 and "xn--" not in host:
        return host  # the common case, checked in one step
    if not host:
        raise BadURLError(f"URL has no host: {_show(original)}")
    if len(host) > 253:
        raise BadURLError(f"host name is longer than 253 characters: {_show(original)}")
    for label in host.split("."):
        if not _LABEL_RE.fullmatch(label):
            what = "an empty label" if not label else (
                "a label longer than 63 characters" if len(label) > 63 else f"invalid characters in {label!r}")
            raise BadURLError(f"host {_show(host)} has {what}: {_show(original)}")
        if label.startswith("xn--") and not _valid_a_label(label):
            raise BadURLError(f"host {_show(host)} has an invalid IDNA label {label!r}")
    return host


def _valid_a_label(label: str) -> bool:
    """True if *label* (``xn--...``) decodes as punycode to a non-ASCII label that IDNA maps back to it."""
    try:
        decoded = label[4:].encode("ascii").decode("punycode")
    except (UnicodeError, ValueError):
        return False
    if decoded.isascii():
        return False
    return ada_url.idna_to_ascii(decoded) == label.encode("ascii")


def _normalise_pct(text: str) -> str:
    """Decode percent-encoded unreserved characters and uppercase the hex of the rest (RFC 3986 6.2.2)."""
    if "%" not in text:
        return text
    return _PCT_RE.sub(_pct_repl, text)


def _pct_repl(m: re.Match[str]) -> str:
    ch = chr(int(m.group(1), 16))
    return ch if ch in _UNRESERVED else "%" + m.group(1).upper()


def _why_invalid(cleaned: str) -> str:
    """A short reason for a URL the WHATWG parser refused, when one is easy to tell."""
    authority = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:[/\\]*", "", cleaned)
    authority = re.split(r"[/\\?#]", authority, maxsplit=1)[0].rpartition("@")[2]
    if " " in authority or "\u3000" in authority:
        return " (space in host)"
    if not authority:
        return " (no host)"
    host = re.sub(r":\d*$", "", authority).rstrip(".")
    if re.search(r"\.(\d+|0[xX][0-9a-fA-F]*)$", host) or host.isdigit():
        return " (host ends in a number but is not an IPv4 address)"
    port = re.search(r"\]?:([^:\]]*)$", authority)
    if port and (not port.group(1).isdigit() or int(port.group(1)) > 65535):
        return " (bad port)"
    return ""


def _show(text: str, limit: int = 80) -> str:
    """*text* quoted on one line, shortened if long."""
    shown = text if len(text) <= limit else text[:limit] + "…"
    return repr(shown)
