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
#: Web category of a linked site -> (content signal, what the evidence calls the site).
LINKED_CATEGORY_SIGNALS: dict[str, tuple[str, str]] = {
    "adult": ("sexual", "a sexually explicit site"),
    "piracy": ("copyright", "a piracy site"),
}


def signals(event: Event, pack: CompiledPack) -> list[Signal]:
    assert isinstance(event, PostEvent)
    out = [s for s in text_signals(event.text, where="social", pack=pack)
           if not (s.category == "official-statement" and has_disclaimer(event.text))]
    if event.kind == "chat":
        out.append(Signal("chat", "a chat session on an official account"))
    for raw in _URL.findall(event.text)[:20]:
        try:
            url = normalise_url(raw.rstrip(".,);"))
        except BadURLError:
            continue
        remap = pack.pack.category_map
        for m in web.index().lookup(url):
            category = remap.get(m.list_name, remap.get(m.category, m.category))
            linked = LINKED_CATEGORY_SIGNALS.get(category)
            if linked is not None:
                signal, what = linked
                out.append(Signal(signal, f"link to {what}: {url.host}",
                                  frozenset({"link", f"list:{m.list_name}"})))
    return out
