"""Batch work for :func:`~.registry.scan_many`: normalisation and the shared phrase pass of many texts at once.

Many short texts (posts, comments, tweets of 80 bytes) spend most of their time in per-call overhead,
not in per-byte work. Here the texts are laid end to end with ``SEPARATOR`` (NUL) between them and each
stage runs once over the whole batch:

* folding: ASCII texts are folded by one byte-table pass over the joined text and split back (folding
  is character by character, and NUL folds to itself); other texts are folded one by one;
* token repairs (leetspeak, masks, spaced and stretched letters): the candidates are found on the joined
  text; only a text with a candidate that can change something is repaired by
  :func:`~.normalise.normalise_text`'s own code, the others provably have no repair;
* the shared Aho-Corasick pass (:func:`~.matcher.shared_pass`): one iteration over the joined
  normalised texts, matches split back by offsets. No phrase holds a NUL and a NUL is not a letter or
  digit, so a phrase never crosses from one text into the next and the word-boundary checks at a text's
  edges come out as they do for the text alone.

Every result is what the one-text functions give (tests/detect/test_scan_many.py checks that on
thousands of texts); the one-text path stays as it is and is what ``scan_text`` uses.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from itertools import accumulate

import numpy as np

from . import tokens
from .matcher import MAX_RAW_MATCHES, _combined
from .normalise import (_ASCII_BYTES, _SPACES, Edit, Normalised, _apply, _Edits, _fold, _spaced_edits, _stretched_edits,
                        _token_edits, normalise_text)

SEPARATOR = "\x00"


def normalise_many(texts: Sequence[str]) -> list[Normalised]:
    """:func:`~.normalise.normalise_text` of each of ``texts`` (objects with the same contents), in order."""
    out: list[Normalised | None] = [None] * len(texts)
    plain: list[int] = []  # ASCII texts: folded by one byte-table pass, offsets are the identity
    other: list[int] = []  # the others: folded character by character, with offset maps
    for k, t in enumerate(texts):
        if SEPARATOR in t:
            out[k] = normalise_text(t)
        else:
            (plain if t.isascii() else other).append(k)
    for group, ascii_only in ((plain, True), (other, False)):
        if not group:
            continue
        originals = [texts[k] for k in group]
        joined = SEPARATOR.join(originals)
        base: np.ndarray | None = None
        if ascii_only:
            folded = joined.encode("ascii").translate(_ASCII_BYTES).decode("ascii")
        else:
            folded, offsets = _fold(joined)  # folding is character by character: NUL stays NUL
            base = np.asarray(offsets, dtype=np.int64)
        pieces = folded.split(SEPARATOR)
        starts = [0, *accumulate(len(f) + 1 for f in pieces[:-1])]  # where each text is in ``folded``
        repair = _needs_repair(folded, starts)
        ostart = 0
        for j, (k, f) in enumerate(zip(group, pieces, strict=True)):
            text = originals[j]
            mapped = None if base is None else (base[starts[j] : starts[j] + len(f) + 1] - ostart).tolist()
            ostart += len(text) + 1
            edits = _token_edits(f) if j in repair else []
            repaired = _apply(f, edits) if edits else f
            collapsed = _SPACES.sub(" ", repaired) if "  " in repaired else repaired
            out[k] = Normalised(text, collapsed, mapped, _Edits(edits) if edits else None, repaired)
    return out  # type: ignore[return-value]


def _needs_repair(folded: str, starts: list[int]) -> set[int]:
    """The texts (by position in the joined, folded batch; ``starts``: where each begins) that may have a
    token repair. The repairs of normalise._token_edits are run over the whole batch, where no token
    crosses a separator (NUL is neither a letter, a leet character nor a spacing character): a text has
    a repair if a leet or mask token of it is one the token fixer changes or holds a ``*`` (a masked
    name is judged with its neighbours), or if spaced or stretched letters give a word there."""
    positions: set[int] = set()
    mask = folded.encode("ascii", "replace").translate(tokens.LEET_MASK)
    for pair in (b"a1", b"1a"):
        i = mask.find(pair)
        while i != -1:
            start = mask.rfind(b" ", 0, i) + 1
            end = mask.find(b" ", i)
            end = len(mask) if end == -1 else end
            i = mask.find(pair, end)
            if end - start > tokens.MAX_TOKEN:
                continue
            tok = folded[start:end]
            if "*" in tok or tokens.fix_token(tok) is not None:
                positions.add(start)
    found: dict[int, Edit] = {}
    _spaced_edits(folded, found)
    _stretched_edits(folded, found)
    positions.update(found)
    return {bisect_right(starts, p) - 1 for p in positions}


def shared_pass_many(norms: Sequence[Normalised | None]) -> None:
    """Run the shared phrase pass over every text at once and cache each text's part, as
    :func:`~.matcher.shared_pass` caches it for one text."""
    todo = [n for n in norms if n is not None and "matcher" not in n.cache]
    if not todo:
        return
    texts = [n.text for n in todo]
    joined = SEPARATOR.join(texts)
    ends = list(accumulate(len(t) + 1 for t in texts))  # one past each text's separator
    results: list[defaultdict[int, list[tuple[int, int, str, object]]]] = [defaultdict(list) for _ in todo]
    k = 0
    end_k = ends[0] - 1  # where text k stops (its separator)
    base = 0
    out = results[0]
    s = joined
    size = len(s)
    for last, (n, key, per_index) in _combined().iter(s):
        if last >= end_k:
            k = bisect_right(ends, last)
            base = ends[k - 1] if k else 0
            end_k = ends[k] - 1
            out = results[k]
        start = last + 1 - n
        if start > 0 and s[start - 1].isalnum() and s[start].isalnum():
            continue
        if last + 1 < size and s[last + 1].isalnum() and s[last].isalnum():
            continue
        for index_id, summary in per_index:
            bucket = out[index_id]
            if len(bucket) < MAX_RAW_MATCHES:
                bucket.append((start - base, last + 1 - base, key, summary))
    for norm, found in zip(todo, results, strict=True):
        norm.cache["matcher"] = found


__all__ = ["SEPARATOR", "normalise_many", "shared_pass_many"]
