"""Text normalisation shared by the lexicon detectors.

Three stages, each keeping a map back to the original offsets:

1. characters: NFKC, casefold, Cyrillic/Greek/small-capital look-alikes to Latin,
   diacritics, zero-width characters and soft hyphens dropped, typographic quotes
   to ``'``/``"``, hyphens/dashes and all whitespace to a space;
2. tokens: spaced-out letters joined (``s h i t``, ``f.u.c.k``), leetspeak decoded
   inside word-like tokens only (``sh!t``, ``$h1t``, ``a$$``), masks resolved
   against the offensive word lists (``f*ck``, ``f**k``, ``a**hole``), stretched
   letters squeezed (``fuuuuck``) - each only when the result is a lexicon word,
   so ``ass`` or ``kill`` keep their double letters and ``mp3`` stays ``mp3``;
3. runs of spaces collapsed to one.

Nothing here decides what is a match: word boundaries are checked by the
matcher on the normalised text, so ``Scunthorpe`` or ``assessment`` never fire.
The maps are built lazily: most texts never need one.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from . import data, tokens
from .confusables import DROP, LOWER, UPPER

_ASCII = str.maketrans({"-": " ", "\t": " ", "\n": " ", "\r": " ", "\v": " ", "\f": " ", "`": "'"})
_ASCII_BYTES = bytes(ord(chr(b).lower().translate(_ASCII)) for b in range(128)) + bytes(range(128, 256))
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_SPACES = re.compile(r"  +")
_LETTERS = re.compile(r"[a-z]*")
_RUN3 = re.compile(r"([a-z])\1\1")
_INITIAL_MASK = re.compile(r"[a-z]\*{2,}[.,]?")
_NUMPY_FROM = 2000
Edit = tuple[int, int, str, tuple[int, ...]]  # start, end, replacement, source index of each new char


@dataclass(eq=False)
class _Edits:
    """Replacements applied to a text, with a lazy inverse map."""

    edits: list[Edit]
    starts: list[int] = field(default_factory=list)  # where each replacement begins in the new text

    olds: list[int] = field(default_factory=list)  # where each edit begins in the old text

    def __post_init__(self) -> None:
        shift = 0
        for a, b, rep, _ in self.edits:
            self.starts.append(a + shift)
            self.olds.append(a)
            shift += len(rep) - (b - a)

    def forward(self, p: int) -> int:
        """Map an offset of the old text to the new one (inside an edit: its end)."""
        i = bisect_right(self.olds, p) - 1
        if i < 0:
            return p
        a, b, rep, _ = self.edits[i]
        if p == a:
            return self.starts[i]
        return self.starts[i] + len(rep) + max(0, p - b)

    def back(self, p: int) -> int:
        """Map an offset of the new text to the old one."""
        i = bisect_right(self.starts, p) - 1
        if i < 0:
            return p
        a, b, rep, rel = self.edits[i]
        inside = p - self.starts[i]
        return a + rel[inside] if inside < len(rep) else b + inside - len(rep)


def _apply(s: str, edits: list[Edit]) -> str:
    pieces: list[str] = []
    pos = 0
    for a, b, rep, _ in edits:
        pieces.append(s[pos:a])
        pieces.append(rep)
        pos = b
    pieces.append(s[pos:])
    return "".join(pieces)


@dataclass(eq=False)
class Normalised:
    """A normalised text and its (lazily built) map back to the original.

    ``cache`` holds per-text results shared by detectors (the matcher's pass under "matcher", each phrase
    index's matches under the index's id).
    """

    original: str
    text: str
    _base: list[int] | None  # folded -> original (with a final sentinel), None = identity
    _tokens: _Edits | None  # token repairs: repaired -> folded
    _repaired: str  # the text before space collapsing
    _spaces: _Edits | None = None
    cache: dict[Any, Any] = field(default_factory=dict)

    def to_original(self, p: int) -> int:
        """Map a normalised offset to an offset of the original text."""
        if self.text is not self._repaired:
            if self._spaces is None:
                self._spaces = _Edits([(m.start(), m.end(), " ", (0,)) for m in _SPACES.finditer(self._repaired)])
            p = self._spaces.back(p)
        if self._tokens is not None:
            p = self._tokens.back(p)
        return self._base[p] if self._base is not None else p

    def from_original(self, o: int) -> int:
        """Map an offset of the original text to the normalised text."""
        p = bisect_left(self._base, o) if self._base is not None else o
        if self._tokens is not None:
            p = self._tokens.forward(p)
        if self.text is not self._repaired:
            self.to_original(0)  # builds the space map
            assert self._spaces is not None
            p = self._spaces.forward(p)
        return min(p, len(self.text))

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a normalised span ``[start, end)`` to the original text."""
        if self._base is None and self._tokens is None and self.text is self._repaired:
            return start, (end if end < len(self.text) else len(self.original))  # nothing moved: the same offsets
        ostart = self.to_original(start)
        if end >= len(self.text):
            return ostart, len(self.original)
        oend = self.to_original(end)
        if end > start:
            oend = max(oend, self.to_original(end - 1) + 1)
        return ostart, oend

    def offset_map(self) -> list[int]:
        """The full map: ``len(text) + 1`` original offsets."""
        return [self.to_original(i) for i in range(len(self.text))] + [len(self.original)]


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    """Fold one non-ASCII character (may return '' or several characters)."""
    if ch in DROP:
        return ""
    out: list[str] = []
    for c in unicodedata.normalize("NFKC", ch):
        for f in UPPER[c] if c in UPPER else c.casefold():
            f = LOWER.get(f, f)
            for d in unicodedata.normalize("NFD", f):
                if unicodedata.category(d) not in ("Mn", "Me", "Cf"):
                    out.append(" " if d.isspace() else d)
    return "".join(out).translate(_ASCII)


def _fold(text: str) -> tuple[str, list[int] | None]:
    """Stage 1: character folding."""
    if text.isascii():  # one byte-table pass: lower case, and separators to spaces
        return text.encode("ascii").translate(_ASCII_BYTES).decode("ascii"), None
    pieces: list[str] = []
    offsets: list[int] = []
    pos = 0
    for m in _NON_ASCII.finditer(text):
        a, b = m.span()
        if pos < a:
            pieces.append(text[pos:a].lower().translate(_ASCII))
            offsets.extend(range(pos, a))
        for i in range(a, b):
            folded = _fold_char(text[i])
            pieces.append(folded)
            offsets.extend([i] * len(folded))
        pos = b
    pieces.append(text[pos:].lower().translate(_ASCII))
    offsets.extend(range(pos, len(text) + 1))
    return "".join(pieces), offsets


def _leet_edits(s: str, mask: bytes, found: dict[int, Edit]) -> None:
    """Tokens mixing letters with leet/mask characters (a letter next to one: "a1" or "1a" in the mask);
    the pairs are found with bytes.find, which runs at memory speed on long texts."""
    for pair in (b"a1", b"1a"):
        i = mask.find(pair)
        while i != -1:
            start = mask.rfind(b" ", 0, i) + 1
            end = mask.find(b" ", i)
            end = len(mask) if end == -1 else end
            i = mask.find(pair, end)
            if start in found or end - start > tokens.MAX_TOKEN:
                continue
            if s[start] == "$" and end < len(s) and s[end] in "([{=-":
                continue  # a $variable in code
            fixed = tokens.fix_token(s[start:end])
            if fixed is not None and not ("*" in s[start:end] and _masked_name(s, start, end)):
                found[start] = (start, end, fixed[0], fixed[1])


def _masked_name(s: str, start: int, end: int) -> bool:
    """A letter and stars next to another such token ("J*** S***"): a name masked in a record, not a word."""
    if _INITIAL_MASK.fullmatch(s, start, end) is None:
        return False
    before = s.rfind(" ", 0, max(0, start - 1)) + 1
    after = s.find(" ", end + 1)
    after = len(s) if after == -1 else after
    return (start > 1 and _INITIAL_MASK.fullmatch(s, before, start - 1) is not None) or (
        end + 1 < len(s) and _INITIAL_MASK.fullmatch(s, end + 1, after) is not None)


def _spaced_edits(s: str, found: dict[int, Edit]) -> None:
    """Spaced-out letters: ``s h i t``, ``f.u.c.k``, ``s_h_i_t``."""
    mask = s.encode("ascii", "replace").translate(tokens.SPACED_MASK)
    i = mask.find(b"asasa")
    while i != -1:
        end = i + 5
        if i > 0 and mask[i - 1] == 97:  # the first item is the end of a longer word
            i = mask.find(b"asasa", i + 1)
            continue
        sep = s[i + 1]
        while end + 1 < len(s) and s[end] == sep and mask[end + 1] == 97 and (end + 2 == len(s) or mask[end + 2] != 97):
            end += 2
        if (end == len(s) or mask[end] != 97) and s[i + 3] == sep and i not in found:
            _spaced_word(s, i, s[i:end:2], found)
        i = mask.find(b"asasa", end)


#: one-letter words that can stand next to spaced-out letters: "a f u c k i n g", "I s h i t you not",
#: "f u c k u"
_LONE_BEFORE = "ai"
_LONE_AFTER = "aiu"


def _spaced_word(s: str, i: int, items: str, found: dict[int, Edit]) -> None:
    """The word spelt by the spaced-out ``items`` starting at ``s[i]``, or by them less a one-letter word
    at either end; recorded in ``found``."""
    n = len(items)
    spans = [(0, n)]
    if items[0] in _LONE_BEFORE:
        spans.append((1, n))
    if items[-1] in _LONE_AFTER:
        spans.append((0, n - 1))
        if items[0] in _LONE_BEFORE:
            spans.append((1, n - 1))
    for lo, hi in spans:
        part = items[lo:hi]
        start = i + 2 * lo
        if hi - lo < 3 or sum(c.isalpha() for c in part) < 2 or start in found:
            continue
        fixed = tokens.fix_token(part) if not part.isalpha() else None
        word, rel = fixed if fixed is not None else (part, tuple(range(len(part))))
        if word.isalpha() and word in data.known_words():
            found[start] = (start, i + 2 * hi - 1, word, tuple(2 * r for r in rel))
            return


def _stretched_edits(s: str, found: dict[int, Edit]) -> None:
    """Purely alphabetic tokens with stretched letters (``fuuuuck``): runs of three equal
    letters are found with numpy, then each token around one is squeezed."""
    if len(s) < 3:
        return
    if len(s) < _NUMPY_FROM:  # short texts: a regex is cheaper than numpy's per-call cost
        found_runs: list[int] = [m.start() for m in _RUN3.finditer(s)]
    else:
        b = np.frombuffer(s.encode("ascii", "replace"), dtype=np.uint8)  # one byte per character
        mid = b[1:-1]
        found_runs = np.flatnonzero((b[:-2] == mid) & (mid == b[2:]) & (mid >= 97) & (mid <= 122)).tolist()
    reach = -1
    for i in found_runs:
        if i < reach:
            continue
        start = i
        while start > 0 and "a" <= s[start - 1] <= "z":
            start -= 1
        m = _LETTERS.match(s, i)
        end = m.end() if m is not None else i + 3
        reach = end
        if start in found:
            continue
        squeezed = tokens.squeeze(s[start:end]) if end - start <= tokens.MAX_TOKEN else None
        if squeezed is not None:
            found[start] = (start, end, squeezed[0], squeezed[1])


def _token_edits(s: str) -> list[Edit]:
    found: dict[int, Edit] = {}
    mask = s.encode("ascii", "replace").translate(tokens.LEET_MASK)
    _leet_edits(s, mask, found)
    _spaced_edits(s, found)
    _stretched_edits(s, found)
    edits: list[Edit] = []
    reach = -1
    for start in sorted(found):
        edit = found[start]
        if start >= reach:
            edits.append(edit)
            reach = edit[1]
    return edits


def normalise_text(text: str) -> Normalised:
    """Normalise ``text`` for lexicon matching (see the module docstring)."""
    folded, base = _fold(text)
    edits = _token_edits(folded)
    repaired = _apply(folded, edits) if edits else folded
    collapsed = _SPACES.sub(" ", repaired) if "  " in repaired else repaired
    return Normalised(text, collapsed, base, _Edits(edits) if edits else None, repaired)


def normalise(text: str) -> tuple[str, list[int]]:
    """The normalised text and, for each of its offsets (plus one past the end),
    the offset in ``text`` it comes from."""
    norm = normalise_text(text)
    return norm.text, norm.offset_map()
