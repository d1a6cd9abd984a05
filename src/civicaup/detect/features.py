"""Hashed n-gram features for the offensive-language classifier, in numpy only.

The same code builds the features at training time (``training/train_offensive.py``)
and at run time, so the two cannot drift apart. A text (already normalised by
:func:`civicaup.detect.normalise.normalise_text`: folded, de-obfuscated, lower case)
becomes:

* character n-grams, n = 2..5, over the text with a space added at each end;
* word unigrams and bigrams (a word is a run of letters, digits and ``'``).

Every n-gram is hashed into ``2**BITS`` slots with a polynomial hash computed for
all positions at once from prefix sums (``sum b[i] P**i`` modulo 2**64, and the
inverse powers of the odd ``P``), then mixed by a multiplication and a per-kind salt.
A long text is cut into blocks of ``BLOCK`` characters (a tweet is one block): each
block gets its own scores, and an n-gram belongs to the block it starts in.

A block's feature vector has ``count / sqrt(n_char)`` for its character n-grams and
``count / sqrt(n_word)`` for its words, so that a linear model's score is a sum of
weights gathered from a table - no sparse matrices, no Python loop per n-gram.
:class:`Batch` hashes many texts in one pass (run time and training both use it); a
text's score does not depend on the other texts of its batch.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

import numpy as np

BITS = 18
DIM = 1 << BITS
NGRAMS = (2, 3, 4, 5)
BLOCK = 320
HEADS = 2
_U = np.uint32
_P = 0x01000193  # odd, so it has an inverse modulo 2**32
_MIX = _U(0x9E3779B1)
_SHIFT = _U(32 - BITS)
_SALTS = {n: _U((0x2545F491 * (n + 3)) & 0xFFFFFFFF) for n in NGRAMS}
_SALT_W1 = _U(0x68E31DA4)
_SALT_W2 = _U(0xB5297A4D)
_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\w+")
#: bytes that are part of a word: ASCII letters and digits, ' and every non-ASCII byte
_WORD_BYTE = np.zeros(256, dtype=bool)
for _c in b"abcdefghijklmnopqrstuvwxyz0123456789'ABCDEFGHIJKLMNOPQRSTUVWXYZ":
    _WORD_BYTE[_c] = True
_WORD_BYTE[128:] = True

_LOCK = threading.Lock()
_POW: list[np.ndarray] = [np.ones(1, dtype=_U), np.ones(1, dtype=_U)]


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """P**i and P**-i (mod 2**32) for i < n, grown on demand and shared."""
    pw, ipw = _POW
    if len(pw) < n:
        with _LOCK:
            size = max(n, 2 * len(_POW[0]), 1 << 16)
            steps = np.full(size, _P, dtype=_U)
            steps[0] = 1
            pw = np.cumprod(steps, dtype=_U)
            steps[1:] = pow(_P, -1, 1 << 32)
            ipw = np.cumprod(steps, dtype=_U)
            _POW[0], _POW[1] = pw, ipw
    return pw, ipw


def prepare(text: str) -> str:
    """Links and @mentions to placeholders (the text is already normalised)."""
    if "http" in text or "www." in text:
        text = _URL.sub(" url ", text)
    if "@" in text:
        text = _MENTION.sub("@user", text)
    return text


def _mix(h: np.ndarray, salt: np.uint32) -> np.ndarray:
    h ^= salt
    h *= _MIX
    h >>= _SHIFT
    return h


class Grams:
    """The hashed n-grams of one prepared text, in blocks of ``block`` bytes.

    ``char_parts``/``word_parts`` hold, for each kind of n-gram (character n-grams by n, word unigrams,
    word bigrams), the slots in text order, where each block's n-grams start and
    which block that is;
    ``char_count``/``word_count`` are the numbers of n-grams in each block.
    """

    __slots__ = ("char_count", "char_parts", "n_blocks", "word_count", "word_parts")

    def __init__(self, text: str, block: int = BLOCK) -> None:
        raw = (" " + text + " ").encode("utf-8", "surrogatepass")
        size = len(raw)
        n_blocks = max(1, -(-(size - 2) // block))
        self.n_blocks = n_blocks
        b8 = np.frombuffer(raw, dtype=np.uint8)
        pw, ipw = _powers(size + 1)
        prefix = np.zeros(size + 1, dtype=_U)
        np.cumsum(b8.astype(_U) * pw[:size], dtype=_U, out=prefix[1:])
        starts_at = np.arange(n_blocks, dtype=np.intp) * block
        self.char_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        char_count = np.zeros(n_blocks, dtype=np.int64)
        for n in NGRAMS:
            m = size - n + 1
            if m <= 0:
                continue
            h = prefix[n : n + m] - prefix[:m]
            h *= ipw[:m]
            bounds = starts_at[starts_at < m]
            self.char_parts.append((_mix(h, _SALTS[n]), bounds, np.arange(len(bounds))))
            char_count[: len(bounds)] += np.diff(np.append(bounds, m))
        inword = _WORD_BYTE[b8]
        edges = np.flatnonzero(inword[1:] != inword[:-1])  # the text is padded: rises and falls alternate
        starts = edges[0::2] + 1
        ends = edges[1::2] + 1
        self.word_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        word_count = np.zeros(n_blocks, dtype=np.int64)
        for k, salt in ((0, _SALT_W1), (1, _SALT_W2)):
            if len(starts) <= k:
                continue
            s0, e1 = starts[: len(starts) - k], ends[k:]
            h = (prefix[e1] - prefix[s0]) * ipw[s0]
            ids = s0 // block
            keep = np.flatnonzero(np.diff(ids, prepend=-1))  # the first n-gram of each block that has any
            self.word_parts.append((_mix(h, salt), keep, ids[keep]))
            word_count += np.bincount(ids, minlength=n_blocks)
        self.char_count = char_count
        self.word_count = word_count

    def scale(self) -> tuple[np.ndarray, np.ndarray]:
        """Per block: 1/sqrt(character n-grams), 1/sqrt(word n-grams)."""
        return (1.0 / np.sqrt(np.maximum(self.char_count, 1)), 1.0 / np.sqrt(np.maximum(self.word_count, 1)))

    def slots(self) -> tuple[np.ndarray, np.ndarray]:
        """Every character slot and every word slot (for training: one text = one block)."""
        chars = np.concatenate([p[0] for p in self.char_parts]) if self.char_parts else np.zeros(0, _U)
        words = np.concatenate([p[0] for p in self.word_parts]) if self.word_parts else np.zeros(0, _U)
        return chars, words


def _block_sums(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], table: np.ndarray,
                n_blocks: int) -> np.ndarray:
    out = np.zeros((n_blocks, table.shape[1]), dtype=np.float64)
    for h, bounds, ids in parts:
        if len(h) == 0:
            continue
        gathered = table[h]
        if n_blocks == 1:
            out[0] += gathered.sum(axis=0, dtype=np.float64)
        else:
            out[ids] += np.add.reduceat(gathered, bounds, axis=0, dtype=np.float64)
    return out


class Batch:
    """The hashed n-grams of many prepared texts at once (the run-time path, and training's).

    Each text is padded with a space at both ends and the padded texts are laid end to end; a character
    n-gram belongs to the text it starts in and is kept only if it ends there too, and words never cross
    a text because every text starts and ends with a space. For each text, the slots come in the same
    order as :meth:`Grams.slots` gives them for that text alone (character n-grams by n, then words, then
    word pairs), so a text's sums do not depend on the other texts in the batch.
    """

    __slots__ = ("char_count", "char_seg", "char_slots", "size", "word_count", "word_seg", "word_slots")

    def __init__(self, texts: Sequence[str]) -> None:
        n_texts = len(texts)
        raws = [(" " + t + " ").encode("utf-8", "surrogatepass") for t in texts]
        sizes = np.fromiter(map(len, raws), dtype=np.intp, count=n_texts)
        raw = b"".join(raws)
        total = len(raw)
        self.size = n_texts
        b8 = np.frombuffer(raw, dtype=np.uint8)
        one = n_texts == 1  # one text: plain slices, no n-gram can cross into another text
        seg_of = np.zeros(total, dtype=np.intp) if one else np.repeat(np.arange(n_texts, dtype=np.intp), sizes)
        end_of = None if one else np.repeat(np.cumsum(sizes), sizes)
        pw, ipw = _powers(total + 1)
        prefix = np.zeros(total + 1, dtype=_U)
        np.cumsum(b8.astype(_U) * pw[:total], dtype=_U, out=prefix[1:])
        chars: list[np.ndarray] = []
        char_seg: list[np.ndarray] = []
        for n in NGRAMS:
            m = total - n + 1
            if m <= 0:
                continue
            if end_of is None:
                h = prefix[n : n + m] - prefix[:m]
                h *= ipw[:m]
                char_seg.append(seg_of[:m])
            else:
                j = np.flatnonzero(end_of[:m] - np.arange(m) >= n)  # n-grams that end in their own text
                h = prefix[j + n] - prefix[j]
                h *= ipw[j]
                char_seg.append(seg_of[j])
            chars.append(_mix(h, _SALTS[n]))
        inword = _WORD_BYTE[b8]
        edges = np.flatnonzero(inword[1:] != inword[:-1])  # every text is padded: rises and falls alternate
        starts = edges[0::2] + 1
        ends = edges[1::2] + 1
        wseg = seg_of[starts]
        words = [_mix((prefix[ends] - prefix[starts]) * ipw[starts], _SALT_W1)]
        word_seg = [wseg]
        pair = np.flatnonzero(wseg[1:] == wseg[:-1])  # word pairs inside one text
        if len(pair):
            s0, e1 = starts[pair], ends[pair + 1]
            words.append(_mix((prefix[e1] - prefix[s0]) * ipw[s0], _SALT_W2))
            word_seg.append(wseg[pair])
        self.char_slots = np.concatenate(chars) if chars else np.zeros(0, _U)
        self.char_seg = np.concatenate(char_seg) if char_seg else np.zeros(0, np.intp)
        self.word_slots = np.concatenate(words)
        self.word_seg = np.concatenate(word_seg)
        self.char_count = np.bincount(self.char_seg, minlength=n_texts)
        self.word_count = np.bincount(self.word_seg, minlength=n_texts)

    def scale(self) -> tuple[np.ndarray, np.ndarray]:
        """Per text: 1/sqrt(character n-grams), 1/sqrt(word n-grams)."""
        return (1.0 / np.sqrt(np.maximum(self.char_count, 1)), 1.0 / np.sqrt(np.maximum(self.word_count, 1)))

    def scores(self, columns: Sequence[np.ndarray], bias: np.ndarray) -> np.ndarray:
        """Linear scores, shape (texts, heads), for one float64 weight column of ``DIM`` per head."""
        sc, sw = self.scale()
        out = np.empty((self.size, len(columns)), dtype=np.float64)
        for k, col in enumerate(columns):
            c = np.bincount(self.char_seg, weights=col[self.char_slots], minlength=self.size)
            w = np.bincount(self.word_seg, weights=col[self.word_slots], minlength=self.size)
            out[:, k] = c * sc + w * sw + bias[k]
        return out


#: Bytes of text scored in one batch: bounds the memory of :class:`Batch` (about 60 bytes per byte).
BATCH_BYTES = 1 << 18


def score_texts(columns: Sequence[np.ndarray], bias: np.ndarray, texts: Sequence[str]) -> np.ndarray:
    """Linear scores (texts, heads) of prepared texts, each as one block, in batches of about
    ``BATCH_BYTES``; a text's score is the same whatever the other texts of its batch."""
    out = np.empty((len(texts), len(columns)), dtype=np.float64)
    i = 0
    while i < len(texts):
        j, size = i, 0
        while j < len(texts) and (j == i or size + len(texts[j]) <= BATCH_BYTES):
            size += len(texts[j]) + 2
            j += 1
        out[i:j] = Batch(texts[i:j]).scores(columns, bias)
        i = j
    return out


def single_slots(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Every character and word slot of one prepared text scored as one block."""
    b = Batch([text])
    return b.char_slots, b.word_slots


def score_single(table: np.ndarray, bias: np.ndarray, text: str) -> np.ndarray:
    """Linear scores (heads,) of a prepared text as one block."""
    columns = [np.ascontiguousarray(table[:, k], dtype=np.float64) for k in range(table.shape[1])]
    return Batch([text]).scores(columns, bias)[0]


def scores(table: np.ndarray, bias: np.ndarray, grams: Grams) -> np.ndarray:
    """Linear scores, shape (blocks, heads), for a weight table of shape (DIM, heads)."""
    sc, sw = grams.scale()
    chars = _block_sums(grams.char_parts, table, grams.n_blocks)
    words = _block_sums(grams.word_parts, table, grams.n_blocks)
    return chars * sc[:, None] + words * sw[:, None] + bias
