"""The detector registry and :func:`scan_text`, which runs them all."""

from __future__ import annotations

import logging

from .confidential import CONFIDENTIAL
from .copyright import COPYRIGHT
from .defamation import DEFAMATION
from .harassment import HARASSMENT_PATTERN
from .hit import Detector, Hit
from .lexicon import PROFANITY, SEXUAL, SLURS, THREATS
from .malware import EICAR_DETECTOR
from .normalise import normalise_text
from .phi import PHI
from .pii import PII_BANK, PII_CARD, PII_LICENCE, PII_SSN
from .police import POLICE_REPORT
from .solicitation import PERSONAL_SALE, SOLICITATION
from .statements import OFFICIAL_STATEMENT

log = logging.getLogger(__name__)

#: Every detector by name; each has ``.name``, ``.categories`` and ``.scan(text, norm)``.
DETECTORS: dict[str, Detector] = {
    d.name: d
    for d in (
        PROFANITY,
        SEXUAL,
        SLURS,
        THREATS,
        HARASSMENT_PATTERN,
        POLICE_REPORT,
        PII_SSN,
        PII_CARD,
        PII_BANK,
        PII_LICENCE,
        PHI,
        CONFIDENTIAL,
        SOLICITATION,
        PERSONAL_SALE,
        COPYRIGHT,
        OFFICIAL_STATEMENT,
        DEFAMATION,
        EICAR_DETECTOR,
    )
}

#: The ``where`` values the engine passes; any other string is accepted too.
WHERE = frozenset({"body", "subject", "attachment", "post", "comment", "profile", "filename"})


def scan_text(text: str, *, where: str = "body") -> list[Hit]:
    """Run every detector over ``text`` and return the hits ordered by position.

    ``where`` names the part of the message or post being scanned; it is
    recorded for the caller and does not change what is detected. A detector
    that fails is logged and skipped: this function does not raise on any str.
    """
    if not isinstance(text, str):
        raise TypeError(f"scan_text expects str, not {type(text).__name__}")
    if not text:
        return []
    try:
        norm = normalise_text(text)
    except Exception:  # pragma: no cover - defensive: a text must never stop the scan
        log.exception("normalisation failed (where=%s)", where)
        return []
    hits: list[Hit] = []
    for detector in DETECTORS.values():
        try:
            hits.extend(detector.scan(text, norm))
        except Exception:  # pragma: no cover - defensive
            log.exception("detector %s failed (where=%s)", detector.name, where)
    hits.sort(key=lambda h: (h.start, h.end, h.category, h.detector))
    return hits


def warm_up() -> None:
    """Build every word list now rather than on the first scan."""
    scan_text("warm up")
