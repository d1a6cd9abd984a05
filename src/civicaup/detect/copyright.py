"""Copyright: pirated-software and infringement language ("keygen", "cracked
version", "warez", "activation bypass", "torrent of ...", "free full movie
download", "cracked 1080p torrent"), from ``data/copyright.txt``, plus one
pattern: a torrent or magnet link named within a few words of a film, episode,
album or video-quality marker ("Inside Out 2 (1080p torrent)", "the torrent for
season 3"), which is how pirated media is offered; "a torrent of complaints" or
"torrential rain" are not.
"""

from __future__ import annotations

import re

from . import data
from .hit import Hit, dedupe, hit_from_norm
from .lexicon import MAX_HITS_PER_DETECTOR, LexiconDetector
from .matcher import PhraseIndex
from .normalise import Normalised

_MEDIA = re.compile(
    r"\b(?:1080p|720p|480p|2160p|4k|uhd|hdrip|hdtv|bluray|blu ray|brrip|bdrip|webrip|web dl|x264|x265|hevc|dvdscr"
    r"|movie|movies|film|films|episode|episodes|season \d+|s\d\de\d\d|album|discography|mp3s|flac|audiobook|ebook"
    r"|full game|game of the year edition)\b"
)
_NEAR = 40
_BREAK = re.compile(r"[.!?;]\s")
_TRIGGERS = ["{torrent,torrents,magnet link,magnet links,magnet uri}\trole:torrent"]


class CopyrightDetector:
    """``copyright-piracy``: the lexicon, and torrents of named media."""

    name = "copyright-piracy"
    categories = frozenset({"copyright"})

    def __init__(self) -> None:
        self.lexicon = LexiconDetector(self.name, "copyright", "copyright", confidence=0.8)
        self.triggers = PhraseIndex(lambda: data.parse_lines(_TRIGGERS))
        self.needs = (self.lexicon.index, self.triggers)

    def scan(self, text: str, norm: Normalised) -> list[Hit]:
        hits = self.lexicon.scan(text, norm)
        s = norm.text
        for t in self.triggers.find(norm):
            if s.startswith(" of ", t.end):  # "torrent of ..." is the lexicon's, with its exceptions
                continue
            a, b = max(0, t.start - _NEAR), min(len(s), t.end + _NEAR)
            for m in _MEDIA.finditer(s, a, b):
                lo, hi = min(m.start(), t.start), max(m.end(), t.end)
                if _BREAK.search(s, lo, hi) is None:
                    hits.append(hit_from_norm("copyright", self.name, norm, lo, hi, 0.7, {"piracy:torrent"}))
                    break
        return dedupe(hits)[:MAX_HITS_PER_DETECTOR]


COPYRIGHT = CopyrightDetector()
