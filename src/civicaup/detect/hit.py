"""The detector hit record, the detector protocol and evidence excerpts."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from .normalise import Normalised

#: Every category a hit may carry. "police-report" is a context, not a violation; "hidden-link" is a link
#: whose destination a URL shortener hides (a pack may write a rule for it).
CATEGORIES: frozenset[str] = frozenset(
    {
        "harassment",
        "threat",
        "sexual",
        "profanity",
        "solicitation",
        "personal-sale",
        "pii",
        "phi",
        "confidential",
        "copyright",
        "official-statement",
        "defamation",
        "malware",
        "police-report",
        "hidden-link",
    }
)

EVIDENCE_MAX = 80
#: Hits one detector reports for one text at most.
MAX_HITS_PER_DETECTOR = 50
_WS = re.compile(r"\s+")
_LONG_NUMBER = re.compile(r"\d(?:[ .-]?\d){4,}")
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class Hit:
    """One detector finding in a text.

    ``start``/``end`` are offsets into the original text; ``evidence`` is a short
    excerpt (at most 80 characters) with personal numbers masked.
    """

    category: str
    detector: str
    evidence: str
    start: int
    end: int
    confidence: float
    tags: frozenset[str]


class Detector(Protocol):
    """What the registry holds: a named detector for some categories.

    A detector may also have ``needs``, a tuple of shared :class:`~.matcher.PhraseIndex` es one of which
    must match the text for it to fire (the registry then calls it only for such texts), and
    ``min_digits``, the ASCII digits a text must hold before it is worth calling (PII).
    """

    name: str
    categories: frozenset[str]

    def scan(self, text: str, norm: Normalised) -> list[Hit]:
        """Return the hits in ``text`` (``norm`` is its normalised form)."""
        ...


def mask_digits(s: str, keep: int = 4) -> str:
    """Replace every digit but the last ``keep`` of ``s`` with ``*``."""
    total = sum(c.isdigit() for c in s)
    out: list[str] = []
    seen = 0
    for c in s:
        if c.isdigit():
            seen += 1
            out.append(c if seen > total - keep else "*")
        else:
            out.append(c)
    return "".join(out)


def _mask_match(m: re.Match[str]) -> str:
    return mask_digits(m.group())


def _scrub(s: str) -> str:
    """Whitespace runs to one space, long numbers masked; the substitutions run only when they could change
    something (a printable string has no whitespace but the space)."""
    if "  " in s or not s.isprintable():
        s = _WS.sub(" ", s)
    if _DIGIT.search(s) is not None:
        s = _LONG_NUMBER.sub(_mask_match, s)
    return s


#: Texts up to this long have their cleanness remembered (the last one only: the hits of one text are built
#: together); a longer text's pieces are scrubbed one by one, which costs less than looking at all of it.
_CLEAN_MEMO_MAX = 1000
_CLEAN_MEMO: list[tuple[str, bool]] = [("", True)]


def _as_is(s: str) -> str:
    return s


def _clean(text: str) -> bool:
    """Whether :func:`_scrub` leaves ``text`` and every piece of it as they are (short texts only)."""
    if len(text) > _CLEAN_MEMO_MAX:
        return False
    last = _CLEAN_MEMO[0]
    if last[0] is text:
        return last[1]
    # no whitespace to squeeze and no long number to mask: _scrub returns the text itself, and any piece
    # of it too (a number a piece holds is a number of the text, the pattern looks at nothing around it)
    clean = "  " not in text and text.isprintable() and _LONG_NUMBER.search(text) is None
    _CLEAN_MEMO[0] = (text, clean)
    return clean


def excerpt(text: str, start: int, end: int, width: int = EVIDENCE_MAX) -> str:
    """A one-line excerpt of ``text[start:end]`` with context, at most ``width`` chars.

    Runs of five or more digits are masked but for their last four.
    """
    clean = _clean(text)  # then every piece of it is clean too: nothing to scrub
    if len(text) <= width and start < end and not text[start].isspace() and not text[end - 1].isspace():
        if clean or _scrub(text) is text:  # a short, clean text (a post, a subject): the excerpt is all of it
            return text.strip()
    scrub = _as_is if clean else _scrub
    core = scrub(text[start:end]).strip()
    if len(core) >= width:
        return core[: width - 3] + "..."
    room = width - len(core)
    left = scrub(text[max(0, start - room) : start]).lstrip()
    right = scrub(text[end : end + room]).rstrip()
    left_room = room // 2
    right_room = room - left_room
    if len(right) < right_room:
        left_room += right_room - len(right)
    elif len(left) < left_room:
        right_room += left_room - len(left)
    left = left[len(left) - left_room :] if len(left) > left_room else left
    right = right[:right_room]
    return (left + core + right)[:width]


def make_hit(
    category: str,
    detector: str,
    text: str,
    start: int,
    end: int,
    confidence: float,
    tags: Iterable[str] = (),
    evidence: str | None = None,
) -> Hit:
    """Build a hit on ``text[start:end]`` (original offsets)."""
    if evidence is None:
        evidence = excerpt(text, start, end)
    return Hit(
        category=category,
        detector=detector,
        evidence=evidence[:EVIDENCE_MAX],
        start=start,
        end=end,
        confidence=round(min(1.0, max(0.0, confidence)), 3),
        tags=frozenset(tags),
    )


def dedupe(hits: list[Hit]) -> list[Hit]:
    """Drop hits that lie inside another hit of the same detector; order by position."""
    hits = sorted(hits, key=lambda h: (h.start, -h.end))
    out: list[Hit] = []
    for h in hits:
        if any(o.detector == h.detector and o.start <= h.start and h.end <= o.end for o in out[-8:]):
            continue
        out.append(h)
    return out


def hit_from_norm(
    category: str,
    detector: str,
    norm: Normalised,
    nstart: int,
    nend: int,
    confidence: float,
    tags: Iterable[str] = (),
) -> Hit:
    """Build a hit from a span of the normalised text."""
    start, end = norm.span(nstart, nend)
    return make_hit(category, detector, norm.original, start, end, confidence, tags)


def hits_from_spans(
    norm: Normalised, detector: str, category: str, spans: list[tuple[int, int, float, set[str]]], limit: int = 50
) -> list[Hit]:
    """Merge overlapping spans and build hits."""
    spans.sort(key=lambda x: (x[0], -x[1]))
    merged: list[tuple[int, int, float, set[str]]] = []
    for start, end, conf, tags in spans:
        if merged and start < merged[-1][1]:
            ps, pe, pc, pt = merged[-1]
            merged[-1] = (ps, max(pe, end), max(pc, conf), pt | tags)
        else:
            merged.append((start, end, conf, set(tags)))
    return [hit_from_norm(category, detector, norm, a, b, c, t) for a, b, c, t in merged[:limit]]
