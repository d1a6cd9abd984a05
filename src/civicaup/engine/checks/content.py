"""Text content -> signals, through the detector registry (civicaup.detect).

The pack's optional ``detection:`` map chooses, per category, which detectors count and the
confidence a hit needs; categories it does not name keep civicaup's defaults
(:data:`civicaup.detect.DEFAULT_DETECTION`).
"""
from __future__ import annotations

from civicaup.detect import scan_text
from civicaup.engine.event import Signal
from civicaup.policy.compile import CompiledPack


def text_signals(text: str, *, where: str = "body", pack: CompiledPack | None = None) -> list[Signal]:
    """One signal per detector hit; evidence is the detector's short, masked excerpt."""
    if not text:
        return []
    detection = pack.pack.detection if pack is not None else None
    return [Signal(category=h.category, evidence=h.evidence, tags=frozenset(h.tags) | {f"detector:{h.detector}"},
                   confidence=h.confidence) for h in scan_text(text, where=where, detection=detection)]
