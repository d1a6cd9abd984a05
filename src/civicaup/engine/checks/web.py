"""URL -> signals: the category lists that hold the host, a parent domain or the path; downloads by type."""
from __future__ import annotations

import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from civicaup.channels.web.categories import CategoryIndex, default_index_path, open_index
from civicaup.engine.event import Event, Signal, WebEvent
from civicaup.policy.compile import CompiledPack

_SOFTWARE_EXT = {".exe", ".msi", ".msp", ".dmg", ".pkg", ".apk", ".deb", ".rpm", ".appx", ".msix", ".scr", ".bat",
                 ".cmd", ".ps1", ".vbs", ".jar", ".app", ".bin", ".run", ".iso", ".crx", ".xpi"}
_MEDIA_EXT = {".mp3", ".mp4", ".avi", ".mkv", ".mov", ".wmv", ".flac", ".m4a", ".torrent"}

_defaults: dict[Path, CategoryIndex] = {}
_scoped: ContextVar[CategoryIndex | None] = ContextVar("civicaup_web_index", default=None)


def index() -> CategoryIndex:
    """The category index the web check reads: the one an adapter scoped with :func:`using_index` for the
    current thread or task, else the data directory's (its built index, or the starter), loaded once per
    data directory."""
    scoped = _scoped.get()
    if scoped is not None:
        return scoped
    path = default_index_path()
    found = _defaults.get(path)
    if found is None:
        found = open_index()
        if len(_defaults) >= 8:  # a process that moves between data directories (tests) keeps a few
            _defaults.clear()
        _defaults[path] = found
    return found


@contextmanager
def using_index(idx: CategoryIndex | None) -> Iterator[None]:
    """Make the checks read `idx` inside the block only (this thread or task; other code keeps its own index).
    An adapter with its own index (the Squid helper, which swaps it on rebuild) evaluates inside this."""
    token = _scoped.set(idx)
    try:
        yield
    finally:
        _scoped.reset(token)


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
