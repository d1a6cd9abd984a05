"""Copyright: pirated-software and infringement language ("keygen", "cracked
version", "warez", "activation bypass", "torrent of ..."), from ``data/copyright.txt``."""

from __future__ import annotations

from .lexicon import LexiconDetector

COPYRIGHT = LexiconDetector("copyright-piracy", "copyright", "copyright", confidence=0.8)
