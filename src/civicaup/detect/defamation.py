"""Possible defamation: accusations of crime or corruption against officials or
named people ("the mayor is a crook", "Smith stole", "takes bribes").

Low confidence by design: this only flags text for a human to look at; truth,
opinion and public-interest defences are not the detector's business.
"""

from __future__ import annotations

import re

from . import data
from .hit import Hit, hit_from_norm, make_hit
from .lexicon import MAX_HITS_PER_DETECTOR
from .matcher import PhraseIndex
from .normalise import Normalised

_ACCUSATION = re.compile(
    r"\b(?:(?:is|was|are|were|'s|s) "
    r"(?:a |an |such a |such an |the biggest |a total |a known |a fucking |nothing but a )?"
    r"(?:crook|crooks|thief|thieves|criminal|criminals|liar|liars|fraud|frauds|embezzler|pedophile|paedophile"
    r"|rapist|con man|con artist|felon|drug dealer|corrupt|crooked|on the take|in the pocket of"
    r"|bought and paid for|a money launderer)"
    r"|(?:stole|steals|stealing|has been stealing|embezzled|embezzles|embezzling|pocketed|skimmed|laundered|launders"
    r"|takes bribes|took bribes|taking bribes|accepted bribes|accepts bribes|takes kickbacks|took kickbacks"
    r"|rigged|rigs|committed fraud|commits fraud|cooked the books|falsified|lied under oath|perjured)"
    r")\b"
)
_TRIGGERS = [
    "{crook,crooks,thief,thieves,criminal,criminals,liar,liars,fraud,frauds,embezzler,pedophile,paedophile,rapist}",
    "{con man,con artist,felon,drug dealer,corrupt,crooked,on the take,in the pocket of}",
    "{bought and paid for,money launderer}",
    "{stole,steals,stealing,embezzled,embezzles,embezzling,pocketed,skimmed,laundered,launders,bribes,kickbacks}",
    "{rigged,rigs,committed fraud,commits fraud,cooked the books,falsified,lied under oath,perjured}",
]
_NOT_ACCUSATIONS = re.compile(
    r"\s*(?:the show|a base|bases|the spotlight|my heart|the scene|a glance|a kiss|the ball|second|third|home)\b"
)
_OFFICIAL = re.compile(
    r"\b(?:mayor|vice mayor|deputy mayor|councilman|councilwoman|councilmember|council member|councillor|councilor"
    r"|alderman|alderwoman|commissioner|commissioners|city manager|city attorney|city clerk|city administrator"
    r"|police chief|fire chief|chief|sheriff|judge|treasurer|director|supervisor|superintendent|inspector"
    r"|governor|senator|congressman|congresswoman|administrator|assessor|comptroller|auditor|controller|manager|boss"
    r"|the council|city council|city hall|the city|this administration|officer|officers|cop|cops)(?:'s)?(?: [a-z]+)? $"
)
_NAME_BEFORE = re.compile(
    r"\b(?:Mr\.?|Mrs\.?|Ms\.?|Dr\.?|[A-Z][a-z]+) [A-Z][a-z'\-]+ $|(?<=[a-z,] )[A-Z][a-z'\-]{2,} $"
)
_NOT_NAMES = frozenset("The This That It He She They We You I There What Which Who Everyone Nobody Someone".split())


class DefamationDetector:
    """``defamation-accusation``: an official or a named person accused of a crime."""

    name = "defamation-accusation"
    categories = frozenset({"defamation"})

    def __init__(self) -> None:
        self.triggers = PhraseIndex(lambda: data.parse_lines(_TRIGGERS))
        self.needs = (self.triggers,)

    def scan(self, text: str, norm: Normalised) -> list[Hit]:
        s = norm.text
        hits: list[Hit] = []
        for t in self.triggers.find(norm):
            m = _ACCUSATION.search(s, max(0, t.start - 40), t.end)
            while m is not None and m.end() < t.end:
                m = _ACCUSATION.search(s, m.end(), t.end)
            if m is None or _NOT_ACCUSATIONS.match(s, m.end()):
                continue
            left_start = max(0, m.start() - 40)
            official = _OFFICIAL.search(s, left_start, m.start())
            if official is not None:
                hits.append(
                    hit_from_norm(
                        "defamation", self.name, norm, official.start(), m.end(), 0.35, {"defamation:official"}
                    )
                )
                if len(hits) >= MAX_HITS_PER_DETECTOR:
                    break
                continue
            ostart, oend = norm.span(m.start(), m.end())
            named = _NAME_BEFORE.search(text, max(0, ostart - 40), ostart)
            if named is not None and named.group().split()[0] not in _NOT_NAMES:
                hits.append(
                    make_hit("defamation", self.name, text, named.start(), oend, 0.3, {"defamation:named-person"})
                )
            if len(hits) >= MAX_HITS_PER_DETECTOR:
                break
        return hits


DEFAMATION = DefamationDetector()
