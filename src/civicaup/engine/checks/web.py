"""URL -> signals: the category lists that hold the host, a parent domain or the path; downloads by type."""
from __future__ import annotations

import posixpath

from civicaup.channels.web.categories import CategoryIndex, open_index
from civicaup.engine.event import Event, Signal, WebEvent
from civicaup.policy.compile import CompiledPack

_SOFTWARE_EXT = {".exe", ".msi", ".msp", ".dmg", ".pkg", ".apk", ".deb", ".rpm", ".appx", ".msix", ".scr", ".bat",
                 ".cmd", ".ps1", ".vbs", ".jar", ".app", ".bin", ".run", ".iso", ".crx", ".xpi"}
_MEDIA_EXT = {".mp3", ".mp4", ".avi", ".mkv", ".mov", ".wmv", ".flac", ".m4a", ".torrent"}

_index: list[CategoryIndex] = []


def index() -> CategoryIndex:
    """The category index for this process, loaded once (the Squid helper swaps it on rebuild)."""
    if not _index:
        _index.append(open_index())
    return _index[0]


def use_index(idx: CategoryIndex) -> None:
    """Make this process's checks read `idx` (a long-running adapter swapping in a rebuilt index)."""
    _index[:] = [idx]


def signals(event: Event, pack: CompiledPack) -> list[Signal]:
    assert isinstance(event, WebEvent) and event.url is not None
    remap = pack.pack.category_map
    out: list[Signal] = []
    for m in index().lookup(event.url):
        category = remap.get(m.list_name, remap.get(m.category, m.category))
        out.append(Signal(category, f"{event.url.host} is listed as {category} ({m.list_name}: {m.entry})",
                          frozenset({f"list:{m.list_name}"})))
    ext = posixpath.splitext(event.url.path.rstrip("/"))[1].lower()
    if ext in _SOFTWARE_EXT:
        out.append(Signal("software-download", f"download of a program ({ext}) from {event.url.host}",
                          frozenset({"download:software"})))
    elif ext in _MEDIA_EXT:
        out.append(Signal("media-download", f"download of a media file ({ext}) from {event.url.host}",
                          frozenset({"download:media"})))
    return out
