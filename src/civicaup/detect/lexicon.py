"""Lexicon detectors: every match of one word-list file is a hit of one category.

The files (``detect/data/*.txt``) are described in :mod:`civicaup.detect.data`;
matching (normalised text, word boundaries, exceptions) is :mod:`.matcher`.
"""

from __future__ import annotations

from collections.abc import Iterable

from .hit import Hit, hit_from_norm
from .matcher import Match, PhraseIndex
from .normalise import Normalised

MAX_HITS_PER_DETECTOR = 50


class LexiconDetector:
    """Hits of one category for every match of one lexicon file."""

    def __init__(
        self,
        name: str,
        category: str,
        lexicon: str,
        *,
        confidence: float,
        tag_prefix: str = "",
        extra_tags: Iterable[str] = (),
    ) -> None:
        self.name = name
        self.category = category
        self.categories = frozenset({category})
        self.lexicon = lexicon
        self.index = PhraseIndex(lexicon, confidence=confidence, tag_prefix=tag_prefix)
        self._extra = frozenset(extra_tags)

    def matches(self, norm: Normalised) -> list[Match]:
        return self.index.find(norm)

    def scan(self, text: str, norm: Normalised) -> list[Hit]:
        return [
            hit_from_norm(self.category, self.name, norm, m.start, m.end, m.confidence, m.tags | self._extra)
            for m in self.matches(norm)[:MAX_HITS_PER_DETECTOR]
        ]


PROFANITY = LexiconDetector("lexicon-profanity", "profanity", "profanity", confidence=0.85)
SEXUAL = LexiconDetector("lexicon-sexual", "sexual", "sexual", confidence=0.85)
SLURS = LexiconDetector(
    "lexicon-slur", "harassment", "slurs", confidence=0.9, tag_prefix="protected:", extra_tags=("slur",)
)
THREATS = LexiconDetector("lexicon-threat", "threat", "threats", confidence=0.8)
