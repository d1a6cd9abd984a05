"""Small helpers shared by the detector tests."""

from __future__ import annotations

from civicaup.detect import Hit, scan_text


def categories(text: str) -> set[str]:
    """The categories of every hit in ``text``."""
    return {h.category for h in scan_text(text)}


def hits(text: str, category: str) -> list[Hit]:
    """The hits of one category in ``text``."""
    return [h for h in scan_text(text) if h.category == category]


def tags(text: str, category: str) -> set[str]:
    """The union of the tags of one category's hits in ``text``."""
    out: set[str] = set()
    for h in hits(text, category):
        out |= h.tags
    return out
