"""Scans prepared in bulk for code that judges texts one at a time.

The engine asks :func:`~.registry.scan_text` about one text per event. A caller that is about to judge
many texts (``civicaup check posts``, social ingest: lines of JSON, 512 at a time) runs them through the
batch path first, inside ``with prepared(texts):``; within the block, ``scan_text`` of any of those texts
returns its share of the batch instead of scanning it again. The batch gives every text exactly what
scanning it alone gives (tests/detect/test_scan_many.py), so decisions do not change; a text that was
not prepared is scanned as usual. The prepared hits live in a context variable: other threads and
tasks do not see them, and they are gone when the block ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .hit import Hit

_PREPARED: ContextVar[dict[str, list[Hit]] | None] = ContextVar("civicaup_detect_prepared", default=None)


@contextmanager
def prepared(texts: Iterable[object], *, where: str = "body") -> Iterator[int]:
    """Scan ``texts`` (anything that is not a non-empty str is ignored) as one batch and let
    ``scan_text`` answer from it inside the block; yields how many distinct texts were scanned."""
    from .registry import scan_all_many

    unique = list(dict.fromkeys(t for t in texts if isinstance(t, str) and t))
    found = dict(zip(unique, scan_all_many(unique, where=where), strict=True))
    token = _PREPARED.set(found)
    try:
        yield len(found)
    finally:
        _PREPARED.reset(token)


def prepared_hits(text: str) -> list[Hit] | None:
    """The unselected hits prepared for ``text`` in the current context, or None."""
    found = _PREPARED.get()
    return None if found is None else found.get(text)
