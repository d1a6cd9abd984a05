"""Phrase matching: Aho-Corasick over the normalised text, with word boundaries.

Every shared :class:`PhraseIndex` (lexicon files and the trigger words of the
pattern detectors) goes into one combined automaton, so a text is scanned once
whatever the number of detectors; the raw matches are cached on the
:class:`Normalised` object. A non-shared index is for lookups in small windows
(e.g. the person words near a medical term).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

import ahocorasick

from . import data
from .normalise import Normalised, normalise_text


@dataclass(frozen=True, slots=True)
class Match:
    """A boundary-checked match in the normalised text."""

    start: int
    end: int
    phrase: str
    tags: frozenset[str]
    confidence: float


@dataclass(frozen=True, slots=True)
class _Entry:
    tags: frozenset[str]
    confidence: float
    name_like: bool
    exception: bool
    acronym_like: bool


@dataclass(frozen=True, slots=True)
class _Key:
    """What the entries of one phrase of one index amount to (computed once, not per match)."""

    tags: frozenset[str]  # the live entries' tags
    confidence: float  # the highest live confidence
    live: bool  # some entry is not an exception
    exception: bool  # some entry is an exception
    name_like: bool  # every live entry is a name-like word
    acronym_like: bool  # every live entry is an acronym-like word

    @classmethod
    def of(cls, entries: tuple[_Entry, ...]) -> _Key:
        live = [e for e in entries if not e.exception]
        return cls(
            tags=frozenset().union(*(e.tags for e in live)),
            confidence=max((e.confidence for e in live), default=0.0),
            live=bool(live),
            exception=len(live) < len(entries),
            name_like=bool(live) and all(e.name_like for e in live),
            acronym_like=bool(live) and all(e.acronym_like for e in live),
        )


_Raw = tuple[int, int, str, _Key]
#: Matches kept per index and text: enough for any detector (they report at most 50
#: hits) while a text that repeats a word 100,000 times stays fast.
MAX_RAW_MATCHES = 1000
_REGISTRY: list[PhraseIndex] = []
_LOCK = threading.Lock()
_COMBINED: dict[str, object] = {"size": -1, "auto": None}


def fold_phrase(phrase: str) -> str:
    """Normalise a lexicon phrase exactly as texts are normalised."""
    return " ".join(normalise_text(phrase).text.split())


def bounded(s: str, start: int, end: int) -> bool:
    """True if ``s[start:end]`` neither starts nor ends inside a word."""
    if start > 0 and s[start].isalnum() and s[start - 1].isalnum():
        return False
    return not (end < len(s) and s[end - 1].isalnum() and s[end].isalnum())


def _title_case(word: str) -> bool:
    return len(word) > 1 and word[0].isupper() and word[1:].islower()


class PhraseIndex:
    """Normalised phrases with tags, confidences, name flags and exceptions."""

    def __init__(
        self,
        source: str | Callable[[], Iterable[data.RawEntry]],
        *,
        confidence: float = 0.8,
        tag_prefix: str = "",
        shared: bool = True,
    ) -> None:
        self._source = source
        self._confidence = confidence
        self._tag_prefix = tag_prefix
        self.shared = shared
        if shared:
            with _LOCK:
                self.id = len(_REGISTRY)
                _REGISTRY.append(self)
        else:
            self.id = -1

    @cached_property
    def table(self) -> dict[str, tuple[_Entry, ...]]:
        raw = data.load(self._source) if isinstance(self._source, str) else list(self._source())
        table: dict[str, list[_Entry]] = {}
        prefix = self._tag_prefix
        entries: dict[tuple[object, ...], _Entry] = {}  # the phrases of one line of a file share one entry
        for r in raw:
            what = (r.tags, r.confidence, r.name_like, r.exception, r.acronym_like)
            entry = entries.get(what)
            if entry is None:
                tags = frozenset(t if ":" in t or not prefix else prefix + t for t in r.tags)
                entry = entries[what] = _Entry(tags, r.confidence or self._confidence, r.name_like, r.exception,
                                               r.acronym_like)
            folded = fold_phrase(r.phrase)
            for key in {folded, folded.replace("'", "")}:
                if key:
                    table.setdefault(key, []).append(entry)
        return {k: tuple(v) for k, v in table.items()}

    @cached_property
    def keys(self) -> dict[str, _Key]:
        """Each phrase's entries summed up once (the phrases of one line of a file share one summary)."""
        summaries: dict[tuple[_Entry, ...], _Key] = {}
        out: dict[str, _Key] = {}
        for k, v in self.table.items():
            summary = summaries.get(v)
            if summary is None:
                summary = summaries[v] = _Key.of(v)
            out[k] = summary
        return out

    @cached_property
    def _own(self) -> ahocorasick.Automaton:
        auto = ahocorasick.Automaton()
        for key, summary in self.keys.items():
            auto.add_word(key, (len(key), key, summary))
        if self.table:
            auto.make_automaton()
        return auto

    def find(self, norm: Normalised) -> list[Match]:
        """Boundary-checked, exception-filtered, maximal matches in order."""
        if not self.shared:
            return _resolve(norm, self._scan(norm.text, 0, len(norm.text)))
        cache = norm.cache
        found: list[Match] | None = cache.get(self.id)  # an index's results are cached under its id
        if found is None:
            raw = shared_pass(norm).get(self.id)
            found = _resolve(norm, raw) if raw else []
            cache[self.id] = found
        return found

    def find_window(self, norm: Normalised, start: int, end: int) -> list[Match]:
        """Matches lying in ``norm.text[start:end]`` (word boundaries judged on the whole text)."""
        return _resolve(norm, self._scan(norm.text, max(0, start), min(len(norm.text), end)))

    def _scan(self, s: str, start: int, end: int) -> list[_Raw]:
        if not self.table:
            return []
        out: list[_Raw] = []
        for last, (n, key, summary) in self._own.iter(s, start, end):
            if last + 1 - n >= start and bounded(s, last + 1 - n, last + 1):
                out.append((last + 1 - n, last + 1, key, summary))
        return out


def _combined() -> ahocorasick.Automaton:
    """The automaton of every shared index (rebuilt if an index was added)."""
    with _LOCK:
        if _COMBINED["size"] != len(_REGISTRY):
            merged: dict[str, list[tuple[int, _Key]]] = defaultdict(list)
            for index in _REGISTRY:
                for key, summary in index.keys.items():
                    merged[key].append((index.id, summary))
            auto = ahocorasick.Automaton()
            shared: dict[tuple[tuple[int, _Key], ...], tuple[tuple[int, _Key], ...]] = {}
            for key, per_index in merged.items():
                summaries = tuple(per_index)
                auto.add_word(key, (len(key), key, shared.setdefault(summaries, summaries)))
            auto.make_automaton()
            _COMBINED["auto"], _COMBINED["size"] = auto, len(_REGISTRY)
        return _COMBINED["auto"]


def shared_pass(norm: Normalised) -> dict[int, list[_Raw]]:
    """One pass of the combined automaton, bucketed by index (cached per text)."""
    cached: dict[int, list[_Raw]] | None = norm.cache.get("matcher")
    if cached is not None:
        return cached
    s = norm.text
    size = len(s)
    out: dict[int, list[_Raw]] = defaultdict(list)
    for last, (n, key, per_index) in _combined().iter(s):
        start = last + 1 - n
        if start > 0 and s[start - 1].isalnum() and s[start].isalnum():
            continue
        if last + 1 < size and s[last + 1].isalnum() and s[last].isalnum():
            continue
        for index_id, summary in per_index:
            bucket = out[index_id]
            if len(bucket) < MAX_RAW_MATCHES:
                bucket.append((start, last + 1, key, summary))
    norm.cache["matcher"] = out
    return out


def _resolve(norm: Normalised, raw: list[_Raw]) -> list[Match]:
    """Drop matches overlapping an exception, inside a longer match (which takes their tags and, if
    higher, their confidence), or Title-case names."""
    if not raw:
        return []
    if len(raw) == 1:  # the usual case: one phrase in the text
        start, end, key, k = raw[0]
        if not k.live or (k.exception and start < end):
            return []
        found: list[_Raw] = [raw[0]]
        blocked: list[tuple[int, int]] = []
    else:
        found = [r for r in raw if r[3].live]
        blocked = [(r[0], r[1]) for r in raw if r[3].exception]
        found.sort(key=_by_position)
    out: list[Match] = []
    reach = -1
    for start, end, key, k in found:
        if end <= reach:  # inside a longer match: lend it the tags and the severity ("you fucking idiot"
            last = out[-1]  # is name-calling, 0.75, and no milder than the obscenity it holds, 0.85)
            if not k.tags <= last.tags or k.confidence > last.confidence:
                out[-1] = Match(last.start, last.end, last.phrase, last.tags | k.tags,
                                max(last.confidence, k.confidence))
            continue
        if blocked and any(a < end and start < b for a, b in blocked):
            continue
        if k.name_like or k.acronym_like:
            ostart, oend = norm.span(start, end)
            word = norm.original[ostart:oend]
            if k.name_like and _title_case(word):
                continue
            if k.acronym_like and word.isupper() and len(word) > 1:
                continue
        reach = end
        out.append(Match(start, end, key, k.tags, k.confidence))
    return out


def _by_position(r: _Raw) -> tuple[int, int]:
    return r[0], -r[1]
