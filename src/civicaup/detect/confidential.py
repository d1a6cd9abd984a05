"""Confidential, privileged and sensitive personnel information.

Phrases come from ``data/confidential.txt``; two patterns are added here:
"termination of <person>" (a title or a capitalised full name in the original
text, not "termination of the contract" or "Termination of Service") and
"do not forward" within a sentence or two of "confidential".
"""

from __future__ import annotations

import re

from . import data
from .hit import Hit, dedupe, hit_from_norm, make_hit
from .lexicon import MAX_HITS_PER_DETECTOR
from .matcher import PhraseIndex
from .normalise import Normalised

_TERMINATION = re.compile(r"\b(?:termination|firing|dismissal|discharge|demotion|suspension) of ")
_TITLE = re.compile(
    r"(?:(?:Mr|Mrs|Ms|Miss|Dr|Officer|Ofc|Sgt|Sergeant|Lt|Lieutenant|Captain|Capt|Detective|Det|Deputy"
    r"|Firefighter|Employee|employee|officer|firefighter|deputy|detective)\.? [A-Z][a-z'\-]+)"
)
_FULL_NAME = re.compile(r"[A-Z][a-z'\-]+(?: [A-Z]\.)? [A-Z][a-z'\-]+\b")
_NOT_NAME_WORDS = frozenset(
    "Employment Service Services Agreement Contract Contracts Lease Benefits Coverage Pregnancy Parental Rights "
    "Program Policy Plan Account Access Membership Subscription The This That Our Your Any All Such City County "
    "State Town Village Federal Public Health Dental Vision Life Insurance Union Collective Bargaining".split()
)
_TRIGGERS = [
    "{termination,firing,dismissal,discharge,demotion,suspension} of\trole:termination",
    "{do not,don't,dont} {forward,share,distribute,circulate,disseminate}\trole:do-not-forward",
]
_CONFIDENTIAL = re.compile(r"\bconfidential\b")


class ConfidentialDetector:
    """``confidential-phrase``: privilege, personnel matters and confidentiality markings."""

    name = "confidential-phrase"
    categories = frozenset({"confidential"})

    def __init__(self) -> None:
        self.index = PhraseIndex("confidential", confidence=0.85)
        self.triggers = PhraseIndex(lambda: data.parse_lines(_TRIGGERS))
        self.needs = (self.index, self.triggers)

    def scan(self, text: str, norm: Normalised) -> list[Hit]:
        hits = [
            hit_from_norm("confidential", self.name, norm, m.start, m.end, m.confidence, m.tags)
            for m in self.index.find(norm)
        ]
        s = norm.text
        triggers = self.triggers.find(norm)
        for t in triggers:
            if "role:do-not-forward" in t.tags and _CONFIDENTIAL.search(s, max(0, t.start - 150), t.end + 150):
                hits.append(
                    hit_from_norm("confidential", self.name, norm, t.start, t.end, 0.75, {"confidential:marked"})
                )
        for t in triggers:
            m = _TERMINATION.match(s, t.start) if "role:termination" in t.tags else None
            if m is None:
                continue
            _, ostart = norm.span(m.start(), m.end())
            person = _TITLE.match(text, ostart) or _FULL_NAME.match(text, ostart)
            if person is None or any(w in _NOT_NAME_WORDS for w in person.group().split()):
                continue
            ofirst, _ = norm.span(m.start(), m.end())
            hits.append(
                make_hit("confidential", self.name, text, ofirst, person.end(), 0.75, {"confidential:personnel"})
            )
        return dedupe(hits)[:MAX_HITS_PER_DETECTOR]


CONFIDENTIAL = ConfidentialDetector()
