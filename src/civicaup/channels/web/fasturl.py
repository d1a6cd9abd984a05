"""A fast path for :func:`civicaup.channels.web.url.normalise_url`, for URLs that are already canonical.

Squid hands the helper URLs that it has parsed itself, so nearly all of them are already in canonical
form: a lower-case scheme and host, no userinfo, no percent-escapes, no dot segments. For those, one
regular expression gives exactly the :class:`NormalURL` that the full WHATWG normaliser would give, in a
fraction of the time. Anything unusual (upper case, IDNA, percent-escapes, userinfo, odd IPv4 forms,
backslashes, dot segments, quotes...) is declined (``None``) and goes through ``normalise_url``.

The contract, checked by the tests on many thousands of URLs: ``fast_normalise(u)`` is either ``None``
or equal to ``normalise_url(u)``.
"""
from __future__ import annotations

import re

from civicaup.channels.web.url import NormalURL

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# Path and query characters the WHATWG serialiser leaves alone and that need no further normalising
# (no '%', no '\\', no quotes, no '^|[]{}`'); dot segments are ruled out separately.
_PATH = r"/[A-Za-z0-9\-._~!$&()*+,;=:@/]*"
_QUERY = r"[A-Za-z0-9\-._~!$&()*+,;=:@/?]*"

_URL_RE = re.compile(rf"(https?)://([a-z0-9.-]{{1,253}})(?::([1-9][0-9]{{0,4}}))?({_PATH})?(?:\?({_QUERY}))?")
_CONNECT_RE = re.compile(r"([a-z0-9.-]{1,253}):([1-9][0-9]{0,4})")
_IPV4_RE = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_DEFAULT_PORT = {"http": 80, "https": 443}

Parts = tuple[str, str, "int | None", str, str, bool]
"""(scheme, host, port, path, query, is_ip), the fields of a NormalURL."""


def fast_parts(text: str) -> Parts | None:
    """The canonical parts of an already-canonical URL, or None when the full normaliser is needed."""
    m = _URL_RE.fullmatch(text)
    if m is not None:
        scheme, host, port_text, path, query = m.groups()
        if path is None:
            path = "/"
        elif "/." in path:
            return None  # "." and ".." segments: the full parser resolves them
        if query is None:
            query = ""
    else:
        m = _CONNECT_RE.fullmatch(text)  # CONNECT host:port, as Squid logs it
        if m is None:
            return None
        host, port_text = m.groups()
        scheme, path, query = "https", "/", ""
    # the host: non-empty labels of at most 63 characters; a name whose last label starts with a letter
    # (so never one of the IPv4 number forms), or a dotted-quad IPv4 address in canonical form
    last = host[host.rfind(".") + 1:]
    if not last or ".." in host or host[0] == ".":
        return None
    if "a" <= last[0] <= "z":
        is_ip = False
        if len(host) > 63 and max(map(len, host.split("."))) > 63:
            return None
    elif _IPV4_RE.fullmatch(host):
        is_ip = True
    else:
        return None
    port: int | None = None
    if port_text is not None:
        port = int(port_text)
        if port > 65535:
            return None
        if port == _DEFAULT_PORT[scheme]:
            port = None
    return scheme, host, port, path, query, is_ip


def fast_normalise(text: str) -> NormalURL | None:
    """:func:`fast_parts` as a NormalURL: equal to ``normalise_url(text)``, or None."""
    parts = fast_parts(text)
    return None if parts is None else NormalURL(*parts, original=text)
