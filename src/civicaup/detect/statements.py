"""Official statements: personal opinion presented as the City's.

``official-statement`` fires on a first-person opinion given "on behalf of the
City" and on claims to state "the City's official position" or to speak for the
City. Each hit carries the tag ``disclaimer:present`` or ``disclaimer:absent``
(see :func:`has_disclaimer`); the engine decides whether the disclaimer cures it.
"""

from __future__ import annotations

import re

from . import data
from .hit import Hit, dedupe, hit_from_norm
from .lexicon import MAX_HITS_PER_DETECTOR
from .matcher import PhraseIndex
from .normalise import Normalised, normalise_text

_BODY = (
    r"(?:the |our )?(?:city|town|county|village|department|council|municipality|borough)"
    r"(?: of(?: [a-z]+){1,3}?)?"
)
_BODY_WORD = re.compile(r"\b(?:city|town|county|village|department|council|municipality|borough)")
_OPINION = (
    r"(?:i|we) (?:personally )?(?:believe|think|feel|say|want to say|am convinced|are convinced"
    r"|support|oppose|endorse|condemn|am proud to endorse|urge)"
)
_SPEAKING = r"(?:on behalf of|speaking for|as a representative of|representing)"
_ENDORSED = r"(?:candidate|the candidacy|the campaign|proposition|prop|measure)"
_PATTERNS: tuple[tuple[re.Pattern[str], float, str], ...] = (
    (re.compile(rf"\b{_SPEAKING} {_BODY},? {_OPINION}\b"), 0.8, "statement:opinion-as-city"),
    (re.compile(rf"\b{_OPINION},? (?:on behalf of|speaking for) {_BODY}\b"), 0.8, "statement:opinion-as-city"),
    (
        re.compile(rf"\b(?:{_BODY}'s|{_BODY}s) official (?:position|stance|view|policy) (?:is|on)\b"),
        0.6,
        "statement:official-position",
    ),
    (
        re.compile(rf"\bthe official (?:position|stance|view) of {_BODY} (?:is|on)\b"),
        0.6,
        "statement:official-position",
    ),
    (
        re.compile(rf"(?<!not )(?<!n't )\b(?:i|we) (?:speak|am speaking|are speaking) (?:for|on behalf of) {_BODY}\b"),
        0.7,
        "statement:speaks-for-city",
    ),
    (
        re.compile(rf"\b{_BODY} (?:officially )?(?:endorses|supports|opposes) {_ENDORSED}\b"),
        0.6,
        "statement:endorsement",
    ),
    (  # "The City of X officially endorses the stadium proposal": "officially" makes it a claim, whatever the object
        re.compile(
            rf"\b{_BODY} (?:has )?officially (?:endorses|endorsed|supports|supported|opposes|opposed|backs|backed"
            r"|recommends|condemns|condemned|rejects|rejected|stands behind|is against|is in favou?r of)\b"
        ),
        0.65,
        "statement:endorsement",
    ),
    (  # "This is the City's official position." - the claim closes the sentence
        re.compile(
            rf"\b(?:this|that|it|here|these|which) (?:is|are|was|remains) (?:also )?(?:{_BODY}'s|{_BODY}s|the official)"
            rf" (?:official )?(?:position|stance|view|views|policy)(?: of {_BODY})?(?=\s*(?:[.!;:]|$))"
        ),
        0.65,
        "statement:official-position",
    ),
)
_DISCLAIMER = re.compile(
    r"\b(?:(?:opinions?|views?|thoughts?|comments?|posts?|statements?) (?:expressed )?"
    r"(?:here |herein |above |in this (?:post|message|e mail|email) )?"
    r"(?:are|is) (?:solely |entirely |strictly )?(?:my own|mine|my personal|personal|those of the author)"
    r"|(?:do|does) not (?:necessarily )?(?:reflect|represent)"
    r"(?: the (?:views|opinions|position|policy|positions|policies))?(?: of)? (?:those of )?"
    + _BODY
    + r"|not (?:speaking|writing|posting) (?:for|on behalf of) "
    + _BODY
    + r"|in my (?:personal|private) capacity|speaking (?:only )?for myself|personal opinion(?:s)? only"
    r"|(?:i|we) (?:do not|don't) speak for " + _BODY + r")"
)
_TRIGGERS = [
    "{on behalf of,speaking for,speak for,as a representative of,representing}",
    "{official position,official stance,official view,official views,official policy,endorses,supports,opposes}",
    "officially",
]


def has_disclaimer(text: str) -> bool:
    """True if ``text`` says its opinions are the author's own, not the City's."""
    return _DISCLAIMER.search(normalise_text(text).text) is not None


class OfficialStatementDetector:
    """``official-statement``: a personal opinion that implies endorsement by the City."""

    name = "official-statement"
    categories = frozenset({"official-statement"})

    def __init__(self) -> None:
        self.triggers = PhraseIndex(lambda: data.parse_lines(_TRIGGERS))
        self.needs = (self.triggers,)

    def scan(self, text: str, norm: Normalised) -> list[Hit]:
        triggers = self.triggers.find(norm)
        if not triggers:
            return []
        s = norm.text
        hits: list[Hit] = []
        for t in triggers:
            lo, hi = max(0, t.start - 80), min(len(s), t.end + 80)
            if _BODY_WORD.search(s, lo, hi) is None:  # every pattern names the city (or a like body)
                continue
            for pattern, conf, tag in _PATTERNS:
                for m in pattern.finditer(s, lo, hi):
                    if m.end() < t.start or t.end < m.start():
                        continue
                    if s[max(0, m.start() - 5) : m.start()].endswith(("not ", "n't ")):
                        continue
                    hits.append(hit_from_norm("official-statement", self.name, norm, m.start(), m.end(), conf, {tag}))
        if not hits:
            return []
        disclaimer = "disclaimer:present" if _DISCLAIMER.search(s) else "disclaimer:absent"
        return [
            Hit(h.category, h.detector, h.evidence, h.start, h.end, h.confidence, h.tags | {disclaimer})
            for h in dedupe(hits)[:MAX_HITS_PER_DETECTOR]
        ]


OFFICIAL_STATEMENT = OfficialStatementDetector()
