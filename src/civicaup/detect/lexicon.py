"""Lexicon detectors: every match of one word-list file is a hit of one category.

The files (``detect/data/*.txt``) are described in :mod:`civicaup.detect.data`;
matching (normalised text, word boundaries, exceptions) is :mod:`.matcher`.
"""

from __future__ import annotations

from collections.abc import Iterable

from .hit import MAX_HITS_PER_DETECTOR, Hit, make_hit
from .links import in_link
from .matcher import Match, PhraseIndex
from .normalise import Normalised

__all__ = ["MAX_HITS_PER_DETECTOR", "LexiconDetector", "PROFANITY", "SEXUAL", "SLURS", "THREATS"]


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
        skip_links: bool = False,
    ) -> None:
        self.name = name
        self.category = category
        self.categories = frozenset({category})
        self.lexicon = lexicon
        self.index = PhraseIndex(lexicon, confidence=confidence, tag_prefix=tag_prefix)
        self.needs = (self.index,)
        self._extra = frozenset(extra_tags)
        #: matches inside a link, an e-mail address or a domain name ("smartass.nu", "happyretard.com") are
        #: names, not words anyone said: the web channel judges sites
        self.skip_links = skip_links

    def matches(self, norm: Normalised) -> list[Match]:
        return self.index.find(norm)

    def scan(self, text: str, norm: Normalised) -> list[Hit]:
        links = self.skip_links and ("." in text or "@" in text)
        extra = self._extra
        hits: list[Hit] = []
        for m in self.matches(norm):
            start, end = norm.span(m.start, m.end)
            if links and in_link(text, start, end):
                continue
            hits.append(make_hit(self.category, self.name, text, start, end, m.confidence,
                                 m.tags | extra if extra else m.tags))
            if len(hits) >= MAX_HITS_PER_DETECTOR:
                break
        return hits


PROFANITY = LexiconDetector("lexicon-profanity", "profanity", "profanity", confidence=0.85, skip_links=True)
SEXUAL = LexiconDetector("lexicon-sexual", "sexual", "sexual", confidence=0.85, skip_links=True)
SLURS = LexiconDetector(
    "lexicon-slur", "harassment", "slurs", confidence=0.9, tag_prefix="protected:", extra_tags=("slur",),
    skip_links=True,
)
THREATS = LexiconDetector("lexicon-threat", "threat", "threats", confidence=0.8, skip_links=True)
