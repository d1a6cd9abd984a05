"""The offensive-language classifier and how it is combined with the lexicons.

A logistic-regression model over hashed n-grams (:mod:`.features`), trained offline
by ``training/train_offensive.py`` on the training part of the Davidson et al.
tweets (MIT licence) and shipped as ``detect/models/offensive.npz``. Two heads:
``offensive`` (offensive or hateful vs neither) and ``hate``. Inference is numpy
only; the model is loaded once per process, on first use.

The classifier never fires on its own. It reads the text around the words the
lexicons found - weak slurs and protected-class groups - (the whole text when it is
short, else a window of about one tweet around each word), and:

* confirms a *weak* slur (lexicon confidence below 0.8: words such as "nigga"
  that are more often casual than aimed at a class) as harassment when the hate
  probability of its window is at least ``weak_slur``; otherwise the harassment
  hit is kept with a low confidence (below the default harassment threshold) and
  tagged ``classifier:vetoed``, and a ``profanity`` hit takes its place - except for
  words that are slurs only in some uses (``slur:ambiguous``: "queer", "cracker"),
  which keep 0.1 and no profanity hit when vetoed, and the hate probability as their
  confidence when confirmed;
* adds ``harassment`` where a protected-class group ("women", "mexicans") stands
  in a window whose hate probability is at least ``group`` and that holds a rude
  word the lexicons found (profanity, a slur, sexual or threatening words), even
  without a disparaging pattern the rules know - a protected class is still
  required, and plain talk about women or immigrants in a long e-mail is not enough.

It adds no profanity of its own: on the training tweets that gained almost nothing
(out-of-fold F1 0.9742 -> 0.9748) and on legitimate mail it fired on ordinary talk
about women or men, a tweet-trained model's blind spot.

Strong slurs and the harassment patterns are kept as they are. The thresholds are
tuned on out-of-fold predictions of the training part and stored in the model file.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from . import features
from .hit import Hit, hit_from_norm
from .normalise import Normalised

log = logging.getLogger(__name__)

NAME = "classifier-offensive"
MODEL_FILE = "offensive.npz"
WEAK_SLUR = 0.8
VETOED_CONFIDENCE = 0.25
#: a vetoed word that is a slur only in some uses ("slur:ambiguous"): below any pack's threshold
AMBIGUOUS_VETOED = 0.1
WINDOW = 160
MAX_WINDOWS = 16
_RUDE = frozenset({"profanity", "sexual", "threat", "harassment"})


@dataclass(frozen=True)
class Model:
    """Weights (DIM x 2: offensive, hate), biases and the tuned thresholds."""

    table: np.ndarray
    bias: np.ndarray
    meta: dict[str, object]
    columns: tuple[np.ndarray, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # one contiguous float64 column per head: what the batched scorer gathers from
        cols = tuple(np.ascontiguousarray(self.table[:, k], dtype=np.float64) for k in range(self.table.shape[1]))
        object.__setattr__(self, "columns", cols)

    @property
    def thresholds(self) -> dict[str, float]:
        t = self.meta.get("thresholds", {})
        assert isinstance(t, dict)
        return {str(k): float(v) for k, v in t.items()}

    def probabilities(self, text: str) -> tuple[float, float]:
        """(P(offensive or hateful), P(hate)) of one prepared text, scored as one block."""
        return self.probabilities_many([text])[0]

    def probabilities_many(self, texts: Sequence[str]) -> list[tuple[float, float]]:
        """:meth:`probabilities` of many prepared texts, scored together (the same figures, faster)."""
        if not texts:
            return []
        p = 1.0 / (1.0 + np.exp(-features.score_texts(self.columns, self.bias, texts)))
        return [(float(a), float(b)) for a, b in p.tolist()]


_LOCK = threading.Lock()
_MODEL: list[Model | None] = []


def load_model(path: str | None = None) -> Model | None:
    """The shipped model (cached); None if the file is missing or unreadable (logged)."""
    if path is None and _MODEL:
        return _MODEL[0]
    with _LOCK:
        if path is None and _MODEL:
            return _MODEL[0]
        model: Model | None = None
        try:
            if path is None:
                ref = resources.files("civicaup.detect").joinpath("models", MODEL_FILE)
                with ref.open("rb") as f:
                    npz = np.load(f, allow_pickle=False)
                    model = _from_npz(npz)
            else:
                with np.load(path, allow_pickle=False) as npz:
                    model = _from_npz(npz)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("offensive-language model not loaded (%s): lexicons only", exc)
        if path is None:
            _MODEL.append(model)
        return model


def _from_npz(npz: np.lib.npyio.NpzFile) -> Model:
    meta = json.loads(str(npz["meta"]))
    if meta.get("bits") != features.BITS or list(meta.get("ngrams", [])) != list(features.NGRAMS):
        raise ValueError("model features do not match this version of civicaup.detect.features")
    table = np.ascontiguousarray(npz["weights"], dtype=np.float32)
    if table.shape != (features.DIM, features.HEADS):
        raise ValueError(f"weights have shape {table.shape}")
    return Model(table, np.asarray(npz["bias"], dtype=np.float64), meta)


def _windows(norm: Normalised, centres: list[int]) -> list[tuple[int, int]]:
    """Windows of the normalised text around the given offsets (the whole text if short)."""
    s = norm.text
    if len(s) <= 2 * WINDOW:
        return [(0, len(s))]
    out: list[tuple[int, int]] = []
    for c in sorted(centres):
        a = max(0, c - WINDOW)
        b = min(len(s), c + WINDOW)
        if out and a <= out[-1][1] and b - out[-1][0] <= 3 * WINDOW:
            out[-1] = (out[-1][0], b)
            continue
        out.append((a, b))
    trimmed: list[tuple[int, int]] = []
    for a, b in out[:MAX_WINDOWS]:
        if a > 0:
            sp = s.find(" ", a, a + 20)
            a = sp + 1 if sp != -1 else a
        if b < len(s):
            sp = s.rfind(" ", b - 20, b)
            b = sp if sp != -1 else b
        trimmed.append((a, b))
    return trimmed


class OffensiveClassifier:
    """``classifier-offensive``: refines the lexicon hits (see the module docstring)."""

    name = NAME
    categories = frozenset({"harassment", "profanity"})

    def scan(self, text: str, norm: Normalised) -> list[Hit]:
        """Nothing on its own: the work is in :meth:`refine`, which sees the other hits."""
        return []

    def windows(self, norm: Normalised, hits: list[Hit],
                groups: list[tuple[int, int, frozenset[str]]]) -> list[tuple[int, int]]:
        """The spans of the normalised text the model must score for :meth:`refine` (none: nothing to do).
        A caller with many texts scores them all at once and passes the results to ``refine``."""
        weak = [h for h in hits if h.detector == "lexicon-slur" and h.confidence < WEAK_SLUR]
        if not weak and not groups:
            return []
        return _windows(norm, [norm.from_original(h.start) for h in weak] + [g[0] for g in groups])

    def refine(self, text: str, norm: Normalised, hits: list[Hit], groups: list[tuple[int, int, frozenset[str]]],
               *, probabilities: Callable[[str], tuple[float, float]] | None = None,
               thresholds: Mapping[str, float] | None = None) -> list[Hit]:
        """The hits with weak slurs confirmed or vetoed, plus classifier hits near protected-class groups.

        ``groups`` are the protected-class group terms in the normalised text:
        (start, end, protected tags). ``probabilities`` and ``thresholds`` replace the
        shipped model's (the training script tunes the thresholds this way).
        """
        windows = self.windows(norm, hits, groups)
        if not windows:
            return hits
        if probabilities is None or thresholds is None:
            model = load_model()
            if model is None:
                return hits
            probabilities = probabilities or model.probabilities
            thresholds = thresholds or model.thresholds
        t = thresholds
        probs = [probabilities(features.prepare(norm.text[a:b])) for a, b in windows]

        def window_of(pos: int) -> tuple[float, float] | None:
            for (a, b), p in zip(windows, probs, strict=True):
                if a <= pos <= b:
                    return p
            return None

        out: list[Hit] = []
        for h in hits:
            if h.detector != "lexicon-slur" or h.confidence >= WEAK_SLUR:
                out.append(h)
                continue
            p = window_of(norm.from_original(h.start))
            if p is None or p[1] >= t["weak_slur"]:
                if p is None:
                    conf = h.confidence
                elif "slur:ambiguous" in h.tags:  # as sure as the model is that the text is hateful
                    conf = round(p[1], 3)
                else:
                    conf = max(h.confidence, round(p[1], 3))
                out.append(_replace(h, conf, h.tags | {"classifier:confirmed"} if p else h.tags))
                continue
            if "slur:ambiguous" in h.tags:  # "crackers", "queer studies": not a slur, not even rude, when vetoed
                out.append(_replace(h, min(h.confidence, AMBIGUOUS_VETOED), h.tags | {"classifier:vetoed"}))
            else:
                out.append(_replace(h, min(h.confidence, VETOED_CONFIDENCE), h.tags | {"classifier:vetoed"}))
                out.append(Hit("profanity", NAME, h.evidence, h.start, h.end, round(max(0.6, p[0]), 3),
                               frozenset({"classifier:casual-slur"})))
        live = [(h.start, h.end) for h in out if h.category == "harassment" and h.confidence > VETOED_CONFIDENCE]
        rude = [norm.from_original(h.start) for h in hits if h.category in _RUDE]
        for start, end, tags in groups:
            p = window_of(start)
            if p is None:
                continue
            ostart, oend = norm.span(start, end)
            window = next(w for w in windows if w[0] <= start <= w[1])
            if not any(window[0] <= r <= window[1] for r in rude):
                continue  # a protected class with no rude word near it is talk about people, not disparagement
            if p[1] >= t["group"] and not any(a < oend and ostart < b for a, b in live):
                out.append(hit_from_norm("harassment", NAME, norm, start, end, round(min(0.9, 0.5 + p[1] / 2), 3),
                                         tags | {"classifier:hate"}))
                live.append((ostart, oend))
        return out


def _replace(h: Hit, confidence: float, tags: frozenset[str]) -> Hit:
    return Hit(h.category, h.detector, h.evidence, h.start, h.end, round(confidence, 3), tags)


OFFENSIVE_CLASSIFIER = OffensiveClassifier()
