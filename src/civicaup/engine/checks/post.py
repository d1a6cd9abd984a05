"""Social-media posts and comments on official accounts: content, links, kind of item."""
from __future__ import annotations

import re

from civicaup.channels.web.url import normalise_url
from civicaup.detect import has_disclaimer
from civicaup.engine.checks import web
from civicaup.engine.checks.content import text_signals
from civicaup.engine.event import Event, PostEvent, Signal
from civicaup.errors import BadURLError
from civicaup.policy.compile import CompiledPack

_URL = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>\"']{3,2000}")
_LINKED_SEXUAL = {"adult"}


def signals(event: Event, pack: CompiledPack) -> list[Signal]:
    assert isinstance(event, PostEvent)
    out = [s for s in text_signals(event.text, where="social")
           if not (s.category == "official-statement" and has_disclaimer(event.text))]
    if event.kind == "chat":
        out.append(Signal("chat", "a chat session on an official account"))
    for raw in _URL.findall(event.text)[:20]:
        try:
            url = normalise_url(raw.rstrip(".,);"))
        except BadURLError:
            continue
        for m in web.index().lookup(url):
            if m.category in _LINKED_SEXUAL:
                out.append(Signal("sexual", f"link to a sexually explicit site: {url.host}", frozenset({"link"})))
    return out
