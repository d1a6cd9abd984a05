"""Comparing quoted policy text with the source: whitespace and typographic quotes do not count."""
from __future__ import annotations

import re

_WS = re.compile(r"\s+")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "})


def squash(text: str) -> str:
    """Text with runs of white space folded to one space and curly quotes made straight."""
    return _WS.sub(" ", text.translate(_QUOTES)).strip()
