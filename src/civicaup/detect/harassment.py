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
#: what a group is said to do to everyone else ("ruin every neighborhood", "bring crime")
_HARM = (
    r"(?:ruin|ruins|ruined|destroy|destroys|destroyed|wreck|wrecks|trash|trashes|bring crime|brings crime"
    r"|bring drugs|bring disease|bring down|brings down|drag down|drags down|lower property values|take our jobs"
    r"|steal our jobs|steal|steals|rape|rapes|breed|infest|infests|invade|invades|take over|takes over|smell"
    r"|stink|stinks|don't belong|dont belong|do not belong|doesn't belong|don't assimilate|dont assimilate"
    r"|refuse to assimilate|never assimilate|can't be trusted|cant be trusted|cannot be trusted|leech off"
    r"|live off welfare|mooch off)"
)
_AFTER = re.compile(
    rf"(?: (?:are|r|is|were|remain|seem|seem to be|tend to be|can only be)(?: {_INTENS})* {_NEG}\b"
    r"| (?:should(?:n't| not|nt| never)|must not|mustn't|can't|cannot|cant|can not|don't|do not|dont)"
    r" (?:be allowed|be trusted|be hired|be promoted|have rights|have the right|deserve|vote|drive"
    r"|lead|be in charge|hold office|exist|breed|be here|be citizens|think|do math|do anything right)\b"
    r"| (?:should|need to|needs to|must|ought to|deserve to|have to|should all|all need to|all should)"
    r"(?: just| all| simply)?(?: be| all be| get| go)? (?:deported|shot|killed|hanged|hung|lynched|gassed|exterminated"
    r"|stoned|beaten|tortured|castrated|enslaved|thrown out|kicked out|shipped back"
    r"|eliminated|wiped out|banned|locked up|sent back|sterilized|sterilised|burned|put down|rounded up"
    r"|go back|die|stay home|stay in the kitchen)\b"
    r"| (?:belong|belongs) (?:in the kitchen|in cages|in a cage|in a zoo|in the zoo|in jail|in prison"
    r"|in chains|in the fields|on a plantation|in the ground|in an oven|in ovens)\b"
    r"| (?:are |r |is )?(?:ruining|destroying|taking over|invading|infesting|polluting|stealing our"
    r"|breeding like|breed like|spreading disease|a drain on)\b"
    rf"| (?:all |just |always |only )?{_HARM}\b)"
)
_BEFORE = re.compile(
    r"\b(?:i hate|hate all|i can't stand|i cant stand|kill all|kill the|death to|deport all|ban all"
    r"|get rid of all|get rid of the|never hire|don't hire|dont hire|do not hire|won't hire|wont hire"
    r"|never trust|don't trust|dont trust|fuck all|fuck the|fuck|fucking|dirty|filthy|lazy|stupid|dumb"
    r"|worthless|damn|subhuman|bloody|greasy|smelly|stinking|disgusting|ugly|hate) "
    r"(?:the |all |all the |those |these |you |all you |them |of )?$"
)
_NO = re.compile(r"\bno (?:more )?$")
#: keeping a group out, the words right before it: "we don't want any more", "stop letting in", "ban all"
_EXCLUDE = re.compile(
    r"\b(?:(?:we|i|they)(?: really| just| sure)? (?:don't|dont|do not|didn't|did not|won't|wont|will not)"
    r" (?:want|need)|nobody wants|no one wants|noone wants|stop letting(?: in)?|stop bringing(?: in)?"
    r"|stop importing|quit letting(?: in)?|ban|deport|kick out|throw out|run out|get rid of|round up|too many)"
    r"(?: (?:any|no|all|the|these|those|them|more|of|damn|fucking|dirty|filthy))* $"
)
#: "keep (the) muslims out (of our town)"
_KEEP = re.compile(r"\b(?:keep|keeping|kept|get|throw|kick|run|vote)(?: (?:the|all|all the|those|these|them|any))? $")
_OUT = re.compile(r" out(?: of (?:here|our \w+|this \w+|the \w+|america|the country|the city|town))?\b")
#: "we don't want women to feel ...": an infinitive after the group is about something else
_NOT_EXCLUSION_AFTER = re.compile(r" (?:to|who|that|feeling|being)\b")
#: a group referred to again in the same sentence: "... Somalis moving in, they ruin every neighborhood"
_PRONOUN = re.compile(r"\b(?:they|these people|those people|their kind|these animals|those animals)(?=[ '])")
_SENTENCE_END = re.compile(r"[.!?\n]")
_ALLOWED = re.compile(r" (?:allowed|wanted|need apply|welcome|here)\b")
_WINDOW = 120


class HarassmentPatternDetector:
    """Protected-class group + disparaging pattern, and stand-alone phrases."""

    name = "harassment-pattern"
    categories = frozenset({"harassment"})

    def __init__(self) -> None:
        self.index = PhraseIndex("harassment", confidence=0.75, tag_prefix="protected:")
        self.needs = (self.index,)

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
        exclude = _EXCLUDE.search(before_text)
        if exclude is not None and not _NOT_EXCLUSION_AFTER.match(s, m.end):
            return m.start - (len(before_text) - exclude.start()), m.end
        keep = _KEEP.search(before_text)
        if keep is not None:
            out = _OUT.match(s, m.end, m.end + 40)
            if out is not None:
                return m.start - (len(before_text) - keep.start()), out.end()
        return self._referred(s, m)

    @staticmethod
    def _referred(s: str, m: Match) -> tuple[int, int] | None:
        """The group named, then referred to again later in the sentence and disparaged there:
        "... Somalis moving into town, they ruin every neighborhood"."""
        stop = _SENTENCE_END.search(s, m.end, m.end + _WINDOW)
        limit = stop.start() if stop is not None else min(len(s), m.end + _WINDOW)
        for pron in _PRONOUN.finditer(s, m.end, limit):
            p = pron.end()
            contraction = "'re" if s.startswith("'re", p) else "re" if s.startswith("re ", p) else ""
            if contraction:  # "they're all criminals" reads as "they are all criminals"
                after = _AFTER.match(" are" + s[p + len(contraction) : limit])
                if after is not None:
                    return m.start, p + len(contraction) + after.end() - 4
                continue
            after = _AFTER.match(s, p, limit)
            if after is not None:
                return m.start, after.end()
        return None

    def scan(self, text: str, norm: Normalised) -> list[Hit]:
        hits: list[Hit] = []
        s = norm.text
        own = self.index.keys
        for m in self.index.find(norm):
            tags = m.tags - {"role:group"}
            # a group word alone needs a pattern; a stand-alone phrase that holds one ("kill all jews") carries
            # the group's tags lent by the matcher, but stands on its own
            key = own.get(m.phrase)
            if "role:group" in (key.tags if key is not None else m.tags):
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
