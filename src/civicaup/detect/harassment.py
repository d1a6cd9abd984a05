"""Harassment: a protected class being disparaged.

Slurs are matched by ``lexicon-slur`` (lexicon.py). This detector adds
``harassment-pattern``: a protected-class group ("mexicans", "women", "old
people" ...) next to a disparaging pattern ("are lazy", "shouldn't be allowed",
"I hate ...", "no ... allowed"), and stand-alone phrases such as "go back to your
country". Rude words without a protected class are profanity, not harassment.
"""

from __future__ import annotations

import re

from .hit import Hit, hit_from_norm
from .lexicon import MAX_HITS_PER_DETECTOR
from .matcher import Match, PhraseIndex
from .normalise import Normalised

_NEG = (
    r"(?:lazy|stupid|dumb|idiots|morons|retarded|retards|criminals|crooks|thieves|rapists|terrorists"
    r"|animals|savages|monkeys|apes|pigs|dogs|vermin|rats|cockroaches|roaches|parasites|leeches|scum"
    r"|trash|garbage|filth|filthy|dirty|disgusting|subhuman|sub human|inferior|worthless|useless|evil"
    r"|a disease|a cancer|a plague|a virus|the problem|the enemy|violent|ugly|whores|sluts|bitches"
    r"|liars|greedy|weak|incompetent|unfit|unclean|an abomination|abominations|perverts|pedophiles"
    r"|paedophiles|degenerates|sick|not human|less than human|less intelligent|too emotional|too stupid"
    r"|too dumb|too old|too slow|good for nothing|a waste of space|a burden|a drain|freeloaders"
    r"|welfare queens|dangerous|stinky|smelly|cheap|brainwashed|mentally ill|crazy|hysterical)"
)
_INTENS = (
    r"(?:all|just|so|such|really|fucking|fuckin|nothing but|a bunch of|bunch of|basically|always|naturally"
    r"|genetically|inherently|born|mostly|simply|damn|total|complete|lazy|dirty|a|an|the|like|more|being)"
)
_AFTER = re.compile(
    rf"(?: (?:are|r|is|were|remain|seem|seem to be|tend to be|can only be)(?: {_INTENS})* {_NEG}\b"
    r"| (?:should(?:n't| not|nt| never)|must not|mustn't|can't|cannot|cant|can not|don't|do not|dont)"
    r" (?:be allowed|be trusted|be hired|be promoted|have rights|have the right|deserve|vote|drive"
    r"|lead|be in charge|hold office|exist|breed|be here|be citizens|think|do math|do anything right)\b"
    r"| (?:should|need to|needs to|must|ought to|deserve to|have to|should all|all need to|all should)"
    r"(?: be| all be| get| go)? (?:deported|shot|killed|hanged|hung|lynched|gassed|exterminated"
    r"|eliminated|wiped out|banned|locked up|sent back|sterilized|sterilised|burned|put down|rounded up"
    r"|go back|die|stay home|stay in the kitchen)\b"
    r"| (?:belong|belongs) (?:in the kitchen|in cages|in a cage|in a zoo|in the zoo|in jail|in prison"
    r"|in chains|in the fields|on a plantation|in the ground|in an oven|in ovens)\b"
    r"| (?:are |r |is )?(?:ruining|destroying|taking over|invading|infesting|polluting|stealing our"
    r"|breeding like|breed like|spreading disease|a drain on)\b)"
)
_BEFORE = re.compile(
    r"\b(?:i hate|hate all|i can't stand|i cant stand|kill all|kill the|death to|deport all|ban all"
    r"|get rid of all|get rid of the|never hire|don't hire|dont hire|do not hire|won't hire|wont hire"
    r"|never trust|don't trust|dont trust|fuck all|fuck the|fuck|fucking|dirty|filthy|lazy|stupid|dumb"
    r"|worthless|damn|subhuman|bloody|greasy|smelly|stinking|disgusting|ugly|hate) "
    r"(?:the |all |all the |those |these |you |all you |them |of )?$"
)
_NO = re.compile(r"\bno (?:more )?$")
_ALLOWED = re.compile(r" (?:allowed|wanted|need apply|welcome|here)\b")
_WINDOW = 120


class HarassmentPatternDetector:
    """Protected-class group + disparaging pattern, and stand-alone phrases."""

    name = "harassment-pattern"
    categories = frozenset({"harassment"})

    def __init__(self) -> None:
        self.index = PhraseIndex("harassment", confidence=0.75, tag_prefix="protected:")

    def _disparaged(self, s: str, m: Match) -> tuple[int, int] | None:
        """The span (normalised) of the group and its disparaging pattern, if any."""
        after = _AFTER.match(s, m.end, m.end + _WINDOW)
        if after is not None:
            return m.start, after.end()
        before_text = s[max(0, m.start - 40) : m.start]
        before = _BEFORE.search(before_text)
        if before is not None:
            return m.start - (len(before_text) - before.start()), m.end
        if _NO.search(before_text):
            allowed = _ALLOWED.match(s, m.end, m.end + 20)
            if allowed is not None:
                return m.start - 3, allowed.end()
        return None

    def scan(self, text: str, norm: Normalised) -> list[Hit]:
        hits: list[Hit] = []
        s = norm.text
        for m in self.index.find(norm):
            tags = m.tags - {"role:group"}
            if "role:group" in m.tags:
                span = self._disparaged(s, m)
                if span is None:
                    continue
                start, end = span
                hits.append(
                    hit_from_norm("harassment", self.name, norm, start, end, m.confidence, tags | {"disparagement"})
                )
            else:
                hits.append(
                    hit_from_norm("harassment", self.name, norm, m.start, m.end, m.confidence, tags | {"disparagement"})
                )
            if len(hits) >= MAX_HITS_PER_DETECTOR:
                break
        return hits


HARASSMENT_PATTERN = HarassmentPatternDetector()
