"""Token repairs used by the normaliser: leetspeak, masks and stretched letters.

A token is only changed when the repaired word is a word of some lexicon, so
``mp3``, ``x86`` or ``www`` stay as they are and cost nothing downstream.
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache

import ahocorasick

from . import data

_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "$": "s", "@": "a", "!": "i", "#": "*"}
)
_RUN = re.compile(r"([a-z])\1{2,}")
_TAIL_MASK = re.compile(r"([a-z]{1,12}\*{2,})([!#@]*)")
MAX_TOKEN = 40

#: bytes.translate table: letters -> a, leet characters -> 1, anything else -> space.
LEET_MASK = bytes.maketrans(
    bytes(range(256)),
    bytes(
        ord("a")
        if chr(b).isascii() and chr(b).islower() and chr(b).isalpha()
        else ord("1")
        if chr(b) in "013457@$!*#"
        else ord("9")
        if chr(b) in "2689"
        else ord(" ")
        for b in range(256)
    ),
)
#: bytes.translate table for spaced-out letters: item characters -> a, separators -> s.
SPACED_MASK = bytes.maketrans(
    bytes(range(256)),
    bytes(
        ord("a")
        if (chr(b).isascii() and chr(b).islower() and chr(b).isalpha()) or chr(b) in "0134579@$!"
        else ord("s")
        if chr(b) in " ._"
        else ord("#")
        for b in range(256)
    ),
)


#: The words people mask with a letter or two left ("f***", "s***", "b*****d"), in the order a
#: mask that fits several is read; only these are read from so little.
COMMON_MASKED: tuple[str, ...] = (
    "fuck", "fucking", "fucker", "fucked", "motherfucker", "shit", "bullshit", "bitch", "cunt", "ass", "asshole",
    "bastard", "damn", "dick", "piss", "whore", "slut", "pussy", "cock", "crap", "bollocks",
)


@lru_cache(maxsize=4096)
def unmask(word: str) -> str | None:
    """Resolve a masked word (``*`` = hidden letters) against the bad-word list."""
    parts = [p for p in re.split(r"(\*+)", word) if p]
    visible = sum(len(p) for p in parts if p[0] != "*")
    hidden = len(word) - visible
    if visible == 0 or not word.replace("*", "").isalpha():
        return None
    if visible * 2 < hidden:  # too little left to read it against every word: only the usual masked words
        exact = re.compile("".join(f"[a-z]{{{len(p)}}}" if p[0] == "*" else re.escape(p) for p in parts))
        return next((w for w in COMMON_MASKED if exact.fullmatch(w)), None)
    exact = "".join(f"[a-z]{{{len(p)}}}" if p[0] == "*" else re.escape(p) for p in parts)
    loose = "".join(f"[a-z]{{1,{len(p) + 2}}}" if p[0] == "*" else re.escape(p) for p in parts)
    stars = [len(p) for p in parts if p[0] == "*"]
    shortest, longest = visible + len(stars), visible + sum(stars) + 2 * len(stars)
    for pattern, lengths in ((exact, (len(word), len(word))), (loose, (shortest, longest))) if visible >= 3 else (
            (exact, (len(word), len(word))),):
        rx = re.compile(pattern)
        for candidate in _bad_words_between(*lengths):
            if rx.fullmatch(candidate):
                return candidate
    stripped = word.replace("*", "")
    return stripped if stripped in data.known_words() else None


@lru_cache(maxsize=64)
def _bad_words_between(shortest: int, longest: int) -> tuple[str, ...]:
    """The bad words whose length is in ``[shortest, longest]``, in priority order."""
    return tuple(w for w in data.bad_words() if shortest <= len(w) <= longest)


@lru_cache(maxsize=8192)
def squeeze(word: str) -> tuple[str, tuple[int, ...]] | None:
    """Squeeze runs of 3+ equal letters to 1 or 2 if that gives a lexicon word.

    Returns the word and, for each of its letters, the index in ``word``.
    """
    runs = [m.span() for m in _RUN.finditer(word)]
    if not runs or len(runs) > 4:
        return None
    known = data.known_words()
    bad = _bad_set()
    found: tuple[str, tuple[int, ...]] | None = None
    for combo in itertools.product((1, 2), repeat=len(runs)):
        keep = list(range(len(word)))
        for (a, b), n in zip(reversed(runs), reversed(combo), strict=True):
            del keep[a + n : b]
        candidate = "".join(word[k] for k in keep)
        if len(candidate) < 3:
            continue  # "xxx" or "zzz" squeezed to one or two letters reads as nothing
        if candidate in bad:  # an offensive reading wins over an innocent one ("as"/"ass")
            return candidate, tuple(keep)
        if candidate in known and found is None:
            found = candidate, tuple(keep)
    return found


@lru_cache(maxsize=1)
def _bad_set() -> frozenset[str]:
    return frozenset(data.bad_words())


@lru_cache(maxsize=16384)
def fix_token(tok: str) -> tuple[str, tuple[int, ...]] | None:
    """Decode leetspeak, masks and stretching inside one token.

    Returns the new token and the source index of each of its characters, or
    None when no lexicon word comes out of it. Digits count as letters only in
    tokens with at least two real letters and no more digits than letters.
    """
    if len(tok) > MAX_TOKEN:
        return None
    tail = _TAIL_MASK.fullmatch(tok)
    if tail is not None:  # "f***", "s***!": the stars are the word's hidden letters, not punctuation
        resolved = unmask(tail.group(1))
        if resolved is not None:
            k = len(tail.group(1))
            pos = tuple(min(k - 1, (i * k) // len(resolved)) for i in range(len(resolved)))
            return resolved + tail.group(2), pos + tuple(range(k, len(tok)))
    lead = len(tok) - len(tok.lstrip("@#!*"))
    trail = len(tok) - len(tok.rstrip("!*#@"))
    core = tok[lead : len(tok) - trail]
    word = core.translate(_LEET)
    if not word.replace("*", "").isalpha():
        return None
    pos: tuple[int, ...] = tuple(range(lead, lead + len(core)))
    known = data.known_words()
    if "*" in word:
        resolved = unmask(word)
        if resolved is None:
            return None
        n = len(resolved)
        pos = tuple(lead + min(len(core) - 1, (i * len(core)) // n) for i in range(n))
        word = resolved
    elif word not in known:
        squeezed = squeeze(word)
        if squeezed is None:
            return None
        word, keep = squeezed
        pos = tuple(pos[k] for k in keep)
    digits = sum(c.isdigit() for c in core)
    letters = sum(c.isalpha() for c in core)
    if digits and (letters < 2 or digits > letters):
        return None
    new = tok[:lead] + word + tok[len(tok) - trail :]
    if new == tok:
        return None
    return new, tuple(range(lead)) + pos + tuple(range(len(tok) - trail, len(tok)))


@lru_cache(maxsize=1)
def stretch_automaton() -> ahocorasick.Automaton:
    """Keys that start every stretched form of a lexicon word: the word's prefix up
    to some letter (not the first) followed by two more copies of that letter."""
    auto = ahocorasick.Automaton()
    for word in data.known_words():
        if len(word) < 2:
            continue
        for i in range(1, len(word)):
            key = word[: i + 1] + word[i] * 2
            auto.add_word(key, len(key))
    auto.make_automaton()
    return auto
