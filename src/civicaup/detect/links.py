"""Links whose destination is hidden behind a URL shortener (bit.ly, tinyurl.com, t.co ...).

A shortened link says nothing about where it leads, so neither a reader nor the web category index
can judge it; civicaup never follows it (no network at run time). ``link-shortener`` reports each
one as a ``hidden-link`` hit naming the shortener, so that a pack can write a rule for it and a
moderator sees why a link could not be checked. The shorteners are the public services whose only
business is redirecting (the domains below); a company's own short domain (youtu.be, amzn.to) names
its destination and is not listed.
"""

from __future__ import annotations

import re

from . import data
from .hit import MAX_HITS_PER_DETECTOR, Hit, make_hit
from .matcher import PhraseIndex
from .normalise import Normalised

#: Public URL-shortening services (redirect only).
SHORTENERS: frozenset[str] = frozenset(
    """
    bit.ly bitly.com bitly.is j.mp tinyurl.com tiny.cc tiny.one t.co goo.gl ow.ly is.gd v.gd buff.ly rebrand.ly
    cutt.ly shorturl.at rb.gy t.ly s.id bl.ink lnkd.in tr.im shorte.st adf.ly bc.vc soo.gd qr.ae x.co po.st
    su.pr clck.ru u.to urlz.fr 1url.com hyperurl.co short.io shrtco.de t2m.io bit.do tny.im chilp.it cli.gs
    lc.chat gg.gg ouo.io shrinkme.io 2u.pm budurl.com snip.ly shorturl.com surl.li tinu.be zpr.io kutt.it
    """.split()
)
_HOST = re.compile(
    r"(?:https?://)?(?:www\.)?((?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+[a-z]{2,10})(/[^\s<>\"')\]]*)?", re.IGNORECASE
)


#: Links, e-mail addresses and bare domain names in an original text ("smartass.nu", "x@y.org").
_LINKISH = re.compile(
    r"\b(?:https?://|ftp://|www\.)[^\s<>\"']+"
    # every other alternative starts a token only, so that the scan stays linear on long texts
    r"|(?<![^\s<>\"'(),;:\[])[^\s<>\"'@(),;:\[]+@[^\s<>\"'@]+\.[a-z]{2,}"
    r"|(?<![\w.\-])(?:[a-z0-9][a-z0-9\-]*\.)+(?:com|net|org|edu|gov|mil|int|info|biz|name|pro|io|co|us|uk|ie|de|fr"
    r"|nl|nu|se|no|dk|fi|it|es|ca|au|nz|jp|cn|ru|ly|me|tv|cc|ws|to|gd|gl)\b(?:/[^\s<>\"']*)?",
    re.IGNORECASE,
)


_TOKEN_EDGE = re.compile(r"[\s<>\"']")
_EDGES = (" ", "\n", "\t", "\r", "<", ">", '"', "'")
_LINK_CHARS = frozenset("./-_?=&#:@%+~")


def in_link(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` lies inside a link, an e-mail address or a domain name: only the
    whitespace-delimited token around it is looked at, so the cost does not grow with the text."""
    if (start == 0 or text[start - 1] not in _LINK_CHARS) and (end >= len(text) or text[end] not in _LINK_CHARS):
        return False  # inside a link a word always touches one of these
    lo = max(0, start - 300)
    a = max(text.rfind(c, lo, start) for c in _EDGES) + 1 or lo
    m = _TOKEN_EDGE.search(text, end, end + 300)
    b = m.start() if m is not None else min(len(text), end + 300)
    if "." not in text[a:b] and "@" not in text[a:b]:
        return False
    return any(x.start() <= start and end <= x.end() for x in _LINKISH.finditer(text, a, b))


class LinkShortenerDetector:
    """``link-shortener``: a link through a URL shortener, which hides where it goes."""

    name = "link-shortener"
    categories = frozenset({"hidden-link"})

    def __init__(self) -> None:
        # the shorteners' host names are phrases of the shared pass: a text without one costs nothing here
        self.triggers = PhraseIndex(lambda: data.parse_lines([f"{host}\trole:shortener" for host in sorted(SHORTENERS)]))
        self.needs = (self.triggers,)

    def scan(self, text: str, norm: Normalised) -> list[Hit]:
        hits: list[Hit] = []
        done = -1
        for t in self.triggers.find(norm):
            ostart, oend = norm.span(t.start, t.end)
            if ostart < done:
                continue
            # back up over "https://" and "www." so the whole link is the evidence
            lo = text.rfind(" ", max(0, ostart - 12), ostart) + 1 if ostart else 0
            m = _HOST.match(text, lo) or _HOST.match(text, ostart)
            if m is None or m.group(1).lower() not in SHORTENERS:
                continue
            path = m.group(2) or ""
            if len(path.strip("/")) < 2:
                continue  # the shortener's home page, not a shortened link
            host = m.group(1).lower()
            evidence = f"{m.group(1)}{path[:40]} (a {host} short link hides where it goes)"
            hits.append(make_hit("hidden-link", self.name, text, m.start(), m.end(), 0.6,
                                 {"link:shortener", f"link-host:{host}"}, evidence))
            done = m.end()
            if len(hits) >= MAX_HITS_PER_DETECTOR:
                break
        return hits


LINK_SHORTENER = LinkShortenerDetector()
