"""The detector registry and :func:`scan_text`, which runs them all.

Two stages: every detector scans the text; then the offensive-language classifier
refines the lexicons' offensive hits (:mod:`.classifier`). Last, the hits are
selected per category: which detectors count and the confidence they need
(:data:`DEFAULT_DETECTION`, which a pack's ``detection:`` map overrides).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from .confidential import CONFIDENTIAL
from .copyright import COPYRIGHT
from .defamation import DEFAMATION
from .harassment import HARASSMENT_PATTERN
from .classifier import OFFENSIVE_CLASSIFIER, load_model
from .hit import Detector, Hit
from .lexicon import PROFANITY, SEXUAL, SLURS, THREATS
from .malware import EICAR_DETECTOR
from .normalise import Normalised, normalise_text
from .phi import PHI
from .pii import PII_BANK, PII_CARD, PII_CONTACT, PII_DOB, PII_LICENCE, PII_SSN
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
        PII_DOB,
        PII_CONTACT,
        PHI,
        CONFIDENTIAL,
        SOLICITATION,
        PERSONAL_SALE,
        COPYRIGHT,
        OFFICIAL_STATEMENT,
        DEFAMATION,
        EICAR_DETECTOR,
        OFFENSIVE_CLASSIFIER,
    )
}


class DetectionSetting(Protocol):
    """What a pack says about one category (``civicaup.policy.schema.DetectionSetting``)."""

    @property
    def min_confidence(self) -> float: ...

    @property
    def detectors(self) -> Collection[str] | None: ...


@dataclass(frozen=True)
class Setting:
    """A category's detectors (None: all) and the confidence a hit needs."""

    min_confidence: float = 0.0
    detectors: frozenset[str] | None = None


#: The defaults: every detector counts; a harassment hit needs 0.45, which keeps every lexicon
#: entry and pattern but not a casual slur that the classifier vetoed (see classifier.py).
DEFAULT_DETECTION: dict[str, Setting] = {"harassment": Setting(min_confidence=0.45)}

#: The ``where`` values the engine passes; any other string is accepted too.
WHERE = frozenset({"body", "subject", "attachment", "post", "comment", "profile", "filename"})


def scan_text(text: str, *, where: str = "body",
              detection: Mapping[str, DetectionSetting] | None = None) -> list[Hit]:
    """Run every detector over ``text`` and return the selected hits ordered by position.

    ``where`` names the part of the message or post being scanned; it is
    recorded for the caller and does not change what is detected. ``detection``
    (category -> setting) overrides :data:`DEFAULT_DETECTION` for the categories
    it names. A detector that fails is logged and skipped: this function does not
    raise on any str.
    """
    return select(scan_all(text, where=where), detection)


def scan_all(text: str, *, where: str = "body", refine: bool = True) -> list[Hit]:
    """Every hit of every detector, refined by the classifier (unless ``refine`` is
    false), before any selection."""
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
    if refine:
        try:
            hits = OFFENSIVE_CLASSIFIER.refine(text, norm, hits, protected_groups(norm))
        except Exception:  # pragma: no cover - defensive: the lexicon hits stand
            log.exception("classifier failed (where=%s)", where)
    hits.sort(key=lambda h: (h.start, h.end, h.category, h.detector))
    return hits


def protected_groups(norm: Normalised) -> list[tuple[int, int, frozenset[str]]]:
    """The protected-class group terms ("women", "mexicans") in a normalised text, with their tags."""
    return [(m.start, m.end, m.tags - {"role:group"})
            for m in HARASSMENT_PATTERN.index.find(norm) if "role:group" in m.tags]


def select(hits: list[Hit], detection: Mapping[str, DetectionSetting] | None = None) -> list[Hit]:
    """The hits that count: per category, from the chosen detectors and confident enough."""
    settings: dict[str, DetectionSetting] = dict(DEFAULT_DETECTION)
    if detection:
        settings.update(detection)
    out: list[Hit] = []
    for h in hits:
        setting = settings.get(h.category)
        if setting is not None:
            if h.confidence < setting.min_confidence:
                continue
            if setting.detectors is not None and h.detector not in setting.detectors:
                continue
        out.append(h)
    return out


def warm_up() -> None:
    """Build every word list and load the classifier now rather than on the first scan."""
    load_model()
    scan_text("warm up")
