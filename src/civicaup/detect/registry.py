"""The detector registry and :func:`scan_text`, which runs them all.

Two stages: the detectors scan the text - only those that can fire on it: one shared
Aho-Corasick pass finds every detector's phrases, and a detector whose ``needs`` found
nothing (or a PII detector without enough digits) is not called; then the offensive-language
classifier refines the lexicons' offensive hits (:mod:`.classifier`), for many texts at
once in :func:`scan_many`. Last, the hits are selected per category: which detectors count
and the confidence they need (:data:`DEFAULT_DETECTION`, which a pack's ``detection:`` map
overrides).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from .confidential import CONFIDENTIAL
from .copyright import COPYRIGHT
from .defamation import DEFAMATION
from . import batch, features
from .harassment import HARASSMENT_PATTERN
from .classifier import OFFENSIVE_CLASSIFIER, load_model
from .hit import Detector, Hit
from .lexicon import PROFANITY, SEXUAL, SLURS, THREATS
from .links import LINK_SHORTENER
from .malware import _MARK as EICAR_MARK
from .malware import EICAR_DETECTOR
from .matcher import shared_pass
from .normalise import Normalised, _fold_char, normalise_text
from .phi import PHI
from .prepared import prepared_hits
from .pii import PII_BANK, PII_CARD, PII_DOB, PII_LICENCE, PII_SSN
from .pii_contact import PII_CONTACT
from .police import POLICE_REPORT
from .solicitation import PERSONAL_SALE, SOLICITATION
from .statements import OFFICIAL_STATEMENT
from .threats import THREAT_PATTERN

log = logging.getLogger(__name__)

#: Every detector by name; each has ``.name``, ``.categories`` and ``.scan(text, norm)``.
DETECTORS: dict[str, Detector] = {
    d.name: d
    for d in (
        PROFANITY,
        SEXUAL,
        SLURS,
        THREATS,
        THREAT_PATTERN,
        HARASSMENT_PATTERN,
        POLICE_REPORT,
        PII_SSN,
        PII_CARD,
        PII_BANK,
        PII_LICENCE,
        PII_DOB,
        PII_CONTACT,
        PHI,
        CONFIDENTIAL,
        SOLICITATION,
        PERSONAL_SALE,
        COPYRIGHT,
        OFFICIAL_STATEMENT,
        DEFAMATION,
        EICAR_DETECTOR,
        LINK_SHORTENER,
        OFFENSIVE_CLASSIFIER,
    )
}


class DetectionSetting(Protocol):
    """What a pack says about one category (``civicaup.policy.schema.DetectionSetting``)."""

    @property
    def min_confidence(self) -> float: ...

    @property
    def detectors(self) -> Collection[str] | None: ...


@dataclass(frozen=True)
class Setting:
    """A category's detectors (None: all) and the confidence a hit needs."""

    min_confidence: float = 0.0
    detectors: frozenset[str] | None = None


#: The defaults: every detector counts; a harassment hit needs 0.45, which keeps every lexicon
#: entry and pattern but not a casual slur that the classifier vetoed (see classifier.py).
DEFAULT_DETECTION: dict[str, Setting] = {"harassment": Setting(min_confidence=0.45)}

#: The ``where`` values the engine passes; any other string is accepted too.
WHERE = frozenset({"body", "subject", "attachment", "post", "comment", "profile", "filename"})


def scan_text(text: str, *, where: str = "body",
              detection: Mapping[str, DetectionSetting] | None = None) -> list[Hit]:
    """Run every detector over ``text`` and return the selected hits ordered by position.

    ``where`` names the part of the message or post being scanned; it is
    recorded for the caller and does not change what is detected. ``detection``
    (category -> setting) overrides :data:`DEFAULT_DETECTION` for the categories
    it names. A detector that fails is logged and skipped: this function does not
    raise on any str. Inside ``with prepared(texts):`` (:mod:`.prepared`) a prepared text's hits come
    from that batch.
    """
    hits = prepared_hits(text) if isinstance(text, str) else None
    return select(scan_all(text, where=where) if hits is None else hits, detection)


def scan_many(texts: Sequence[str], *, where: str = "body",
              detection: Mapping[str, DetectionSetting] | None = None) -> list[list[Hit]]:
    """:func:`scan_text` of each of ``texts``, in order: the same hits, but the classifier scores every
    text's windows in one batch, which is what makes many short texts (posts, comments) fast."""
    return [select(hits, detection) for hits in scan_all_many(texts, where=where)]


def scan_all(text: str, *, where: str = "body", refine: bool = True) -> list[Hit]:
    """Every hit of every detector, refined by the classifier (unless ``refine`` is
    false), before any selection."""
    return scan_all_many([text], where=where, refine=refine)[0]


def scan_all_many(texts: Sequence[str], *, where: str = "body", refine: bool = True) -> list[list[Hit]]:
    """:func:`scan_all` of each of ``texts``: the detectors run text by text, then the classifier
    scores the windows of all of them at once and refines each text's hits."""
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"scan_text expects str, not {type(text).__name__}")
    staged = _detect_many(texts, where) if len(texts) > 1 else [_detect(text, where) for text in texts]
    if refine:
        _refine_all(staged, where)
    out: list[list[Hit]] = []
    for _norm, hits in staged:
        hits.sort(key=_order)
        out.append(hits)
    return out


def _order(h: Hit) -> tuple[int, int, str, str]:
    return h.start, h.end, h.category, h.detector


def _detect(text: str, where: str) -> tuple[Normalised | None, list[Hit]]:
    """The normalised text and the hits of every detector that can fire on it (before the classifier)."""
    if not text:
        return None, []
    try:
        norm = normalise_text(text)
    except Exception:  # pragma: no cover - defensive: a text must never stop the scan
        log.exception("normalisation failed (where=%s)", where)
        return None, []
    return norm, _run(text, norm, where)


def _detect_many(texts: Sequence[str], where: str) -> list[tuple[Normalised | None, list[Hit]]]:
    """:func:`_detect` of each text, with normalisation and the shared phrase pass done for the whole
    batch at once (:mod:`.batch`); the detectors then run text by text as for one text."""
    try:
        norms = iter(batch.normalise_many([t for t in texts if t]))
        normed = [next(norms) if t else None for t in texts]
        batch.shared_pass_many(normed)
    except Exception:  # pragma: no cover - defensive: fall back to one text at a time
        log.exception("batch normalisation failed (where=%s)", where)
        return [_detect(text, where) for text in texts]
    plan = _plan()[0]
    eicar = next(k for k, (d, _) in enumerate(plan) if d is EICAR_DETECTOR)
    # the test file's marker in no text: nobody needs to look for it text by text
    skip = frozenset() if any(EICAR_MARK in t for t in texts) else frozenset({eicar})
    return [(norm, _run(text, norm, where, skip) if norm is not None else []) for text, norm in zip(texts, normed)]


def _run(text: str, norm: Normalised, where: str, skip: frozenset[int] = frozenset()) -> list[Hit]:
    """The hits of every detector that can fire on ``text`` (``skip``: plan positions known not to)."""
    hits: list[Hit] = []
    plan, always, by_index = _plan()
    run = set(always) - skip if skip else set(always)
    for i in shared_pass(norm):
        run.update(by_index.get(i, ()))  # the detectors one of whose words or trigger phrases is in the text
    digits = -1
    for k in sorted(run):
        detector, min_digits = plan[k]
        if min_digits:
            if digits < 0:
                digits = count_digits(text)
            if digits < min_digits:
                continue
        try:
            hits.extend(detector.scan(text, norm))
        except Exception:  # pragma: no cover - defensive
            log.exception("detector %s failed (where=%s)", detector.name, where)
    return hits


def _refine_all(staged: list[tuple[Normalised | None, list[Hit]]], where: str) -> None:
    """Let the classifier refine each text's hits in place; its windows are scored in one batch."""
    jobs: list[tuple[int, Normalised, list[tuple[int, int, frozenset[str]]]]] = []
    wanted: dict[str, None] = {}
    groups_index = HARASSMENT_PATTERN.index.id
    for k, (norm, hits) in enumerate(staged):
        if norm is None:
            continue
        if groups_index not in shared_pass(norm) and not any(h.detector == SLURS.name for h in hits):
            continue  # no protected-class group and no slur: the classifier has nothing to look at
        try:
            groups = protected_groups(norm)
            windows = OFFENSIVE_CLASSIFIER.windows(norm, hits, groups)
        except Exception:  # pragma: no cover - defensive: the lexicon hits stand
            log.exception("classifier failed (where=%s)", where)
            continue
        if windows:
            jobs.append((k, norm, groups))
            for a, b in windows:
                wanted.setdefault(features.prepare(norm.text[a:b]), None)
    if not jobs:
        return
    model = load_model()
    if model is None:
        return
    try:
        texts = list(wanted)
        scored = dict(zip(texts, model.probabilities_many(texts), strict=True))
    except Exception:  # pragma: no cover - defensive: the lexicon hits stand
        log.exception("classifier failed (where=%s)", where)
        return
    for k, norm, groups in jobs:
        try:
            hits = OFFENSIVE_CLASSIFIER.refine(norm.original, norm, staged[k][1], groups,
                                               probabilities=scored.__getitem__, thresholds=model.thresholds)
        except Exception:  # pragma: no cover - defensive: the lexicon hits stand
            log.exception("classifier failed (where=%s)", where)
            continue
        staged[k] = (norm, hits)


_Plan = tuple[list[tuple[Detector, int]], frozenset[int], dict[int, tuple[int, ...]]]
_PLAN: list[_Plan] = []
_DIGITS = "0123456789"
_DIGIT_BYTES = _DIGITS.encode("ascii")


def _plan() -> _Plan:
    """What each detector needs before it is worth calling: (detector, digits the text must hold) in
    registry order; the positions of the detectors that always run; and, per shared phrase index id,
    the positions of the detectors that run when that index matched (a detector with ``needs`` cannot
    fire without a match of one of those indexes). The classifier is not in it: its work is
    :meth:`~.classifier.OffensiveClassifier.refine`."""
    if not _PLAN:
        plan: list[tuple[Detector, int]] = []
        always: set[int] = set()
        by_index: dict[int, list[int]] = {}
        for d in DETECTORS.values():
            if d is OFFENSIVE_CLASSIFIER:
                continue
            k = len(plan)
            plan.append((d, int(getattr(d, "min_digits", 0))))
            needs = getattr(d, "needs", None)
            if needs is None:
                always.add(k)
            else:
                for index in needs:
                    by_index.setdefault(index.id, []).append(k)
        _PLAN.append((plan, frozenset(always), {i: tuple(ks) for i, ks in by_index.items()}))
    return _PLAN[0]


def count_digits(text: str) -> int:
    """The digits a detector could find in ``text``: its ASCII digits plus, for each other character, the
    most digits it can stand for in any form a detector reads (``\\d`` matches other scripts' digits,
    NFKC turns "４" or "①" into "1", the look-alike folding reads Cyrillic "з" as "3")."""
    if text.isascii():
        return len(text) - len(text.encode("ascii").translate(None, _DIGIT_BYTES))
    ascii_digits = sum(map(text.count, _DIGITS))
    return ascii_digits + sum(_digit_value(c) for run in _NON_ASCII.findall(text) for c in run)


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


@lru_cache(maxsize=8192)
def _digit_value(c: str) -> int:
    """How many digits one non-ASCII character may become: in itself, after NFKC, after folding."""
    views = (c, unicodedata.normalize("NFKC", c), _fold_char(c))
    return max(sum(1 for x in v if x.isnumeric() or x.isdigit() or x.isdecimal()) for v in views)


def protected_groups(norm: Normalised) -> list[tuple[int, int, frozenset[str]]]:
    """The protected-class group terms ("women", "mexicans") in a normalised text, with their tags."""
    return [(m.start, m.end, m.tags - {"role:group"})
            for m in HARASSMENT_PATTERN.index.find(norm) if "role:group" in m.tags]


def select(hits: list[Hit], detection: Mapping[str, DetectionSetting] | None = None) -> list[Hit]:
    """The hits that count: per category, from the chosen detectors and confident enough."""
    settings: dict[str, DetectionSetting] = dict(DEFAULT_DETECTION)
    if detection:
        settings.update(detection)
    out: list[Hit] = []
    for h in hits:
        setting = settings.get(h.category)
        if setting is not None:
            if h.confidence < setting.min_confidence:
                continue
            if setting.detectors is not None and h.detector not in setting.detectors:
                continue
        out.append(h)
    return out


def warm_up() -> None:
    """Build every word list and load the classifier now rather than on the first scan."""
    load_model()
    scan_text("warm up")
