"""Text content -> signals, through the detector registry (civicaup.detect)."""
from __future__ import annotations

from civicaup.detect import scan_text
from civicaup.engine.event import Signal


def text_signals(text: str, *, where: str = "body") -> list[Signal]:
    """One signal per detector hit; evidence is the detector's short, masked excerpt."""
    if not text:
        return []
    return [Signal(category=h.category, evidence=h.evidence, tags=frozenset(h.tags) | {f"detector:{h.detector}"},
                   confidence=h.confidence) for h in scan_text(text, where=where)]
