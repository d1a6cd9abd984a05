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
"""

from __future__ import annotations

import re
import threading

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


def single_slots(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Every character and word slot of a short prepared text scored as one block (the fast path of
    :class:`Grams` with one block: the same slots, fewer numpy calls)."""
    raw = (" " + text + " ").encode("utf-8", "surrogatepass")
    size = len(raw)
    b8 = np.frombuffer(raw, dtype=np.uint8)
    pw, ipw = _powers(size + 1)
    prefix = np.zeros(size + 1, dtype=_U)
    np.cumsum(b8.astype(_U) * pw[:size], dtype=_U, out=prefix[1:])
    chars = []
    for n in NGRAMS:
        m = size - n + 1
        if m > 0:
            h = prefix[n : n + m] - prefix[:m]
            h *= ipw[:m]
            chars.append(_mix(h, _SALTS[n]))
    inword = _WORD_BYTE[b8]
    edges = np.flatnonzero(inword[1:] != inword[:-1])
    starts = edges[0::2] + 1
    ends = edges[1::2] + 1
    words = [_mix((prefix[ends] - prefix[starts]) * ipw[starts], _SALT_W1)]
    if len(starts) > 1:
        words.append(_mix((prefix[ends[1:]] - prefix[starts[:-1]]) * ipw[starts[:-1]], _SALT_W2))
    return (np.concatenate(chars) if chars else np.zeros(0, _U)), np.concatenate(words)


def score_single(table: np.ndarray, bias: np.ndarray, text: str) -> np.ndarray:
    """Linear scores (heads,) of a prepared text as one block: the same as :func:`scores` with one block."""
    chars, words = single_slots(text)
    sc = 1.0 / np.sqrt(max(len(chars), 1))
    sw = 1.0 / np.sqrt(max(len(words), 1))
    return table[chars].sum(axis=0, dtype=np.float64) * sc + table[words].sum(axis=0, dtype=np.float64) * sw + bias


def scores(table: np.ndarray, bias: np.ndarray, grams: Grams) -> np.ndarray:
    """Linear scores, shape (blocks, heads), for a weight table of shape (DIM, heads)."""
    sc, sw = grams.scale()
    chars = _block_sums(grams.char_parts, table, grams.n_blocks)
    words = _block_sums(grams.word_parts, table, grams.n_blocks)
    return chars * sc[:, None] + words * sw[:, None] + bias
