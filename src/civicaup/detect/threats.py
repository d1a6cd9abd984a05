"""Threats of violence against a person or a place, by their structure rather than fixed phrases.

A threat has three parts: someone who means or urges it (the speaker's intent, "I am going to",
"we'll", or an incitement, "somebody should", "let's"), a violent act ("shoot", "put a bullet in",
"beat up", "shoot up", "burn down") and a target: a person (a pronoun, a name with its title, or a
noun phrase such as "that parking officer" or "every cop in this town") or, for the acts done to
places, a place ("city hall", "the library", "this office"). A wish that someone be harmed ("he
should be shot", "I hope somebody kills him") is a threat too. Each part is required, so "the
shooting range schedule", "we'll shoot the promo video at city hall", "I'll shoot you an e-mail"
and "kill the process" are not threats. The word list ``data/threats.txt`` (``lexicon-threat``)
keeps the fixed phrases ("watch your back", "I know where you live").
"""

from __future__ import annotations

import re

from . import data
from .hit import Hit, dedupe, hit_from_norm
from .lexicon import MAX_HITS_PER_DETECTOR
from .matcher import PhraseIndex
from .normalise import Normalised

_SUBJECT_WILL = (
    r"(?:i|we|i'm|im|we're|were|i am|we are)(?: (?:really|just|literally|seriously|actually|definitely|totally"
    r"|fucking|fuckin|gonna|going to|about to|so))*"
    r" (?:will|'ll|shall|am going to|are going to|going to|gonna|am gonna|are gonna|about to|am about to"
    r"|want to|wanna|plan to|plan on|intend to|have to|need to|gotta|got to|should|would love to"
    r"|would like to|'d like to|'d love to|finna|bout to|'m going to|'re going to|'m gonna|'re gonna)"
)
_SPEAKER = (
    rf"(?:{_SUBJECT_WILL}|i'll|ill|we'll|i'ma|ima|imma|i'mma|gonna|finna|i swear i'll|i swear i will|i swear to god i'll"
    r"|tomorrow i'll|tomorrow i will|i'll personally|i will personally)"
)
_INCITER = (
    r"(?:someone|somebody|anyone|anybody|people|y'all|yall|you all|we all|everyone|everybody|someone else"
    r"|one of you|one of us|the city|citizens|the people)"
    r" (?:should|needs to|need to|ought to|oughta|has to|have to|gotta|better|must|is going to|is gonna"
    r"|really should|should really|should just|needs to just)"
    r"|let's|lets|let us|(?:i )?hope (?:someone|somebody|some one)(?: will| would)?"
    r"|(?:i )?(?:dare|urge|encourage) (?:you|someone|somebody|anyone|everyone) to"
)
_ADVERBS = r"(?: (?:just|really|actually|finally|fucking|fuckin|go|come|personally|all|both|tomorrow|tonight|today|soon))*"
#: the words before the act: intent (group 1) or incitement (group 2), ending right before it or before
#: a short first step joined by "and" ("I'll bring my rifle and shoot ...")
_BEFORE = re.compile(
    rf"(?:^|[^a-z'])(?:({_SPEAKER})|({_INCITER})){_ADVERBS}(?:(?: (?!and\b|not\b|never\b)[a-z'0-9]+){{1,6}} and)? $"
)

#: acts against people; "beat" only with its violent complements
_PERSON_ACTS = (
    r"kill|kills|murder|murders|shoot|shoots|shoot at|stab|stabs|strangle|choke|hang|lynch|execute|behead"
    r"|gun down|mow down|run over|slit the throat of|cut the throat of|torture|rape|assault|attack|hurt|maim"
    r"|beat up|beat the shit out of|beat the crap out of|beat the hell out of|beat the life out of|beat to death"
    r"|bash in the head of|knock out|pistol whip|string up|put down|put a bullet in|put a bullet through"
    r"|put bullets in|put a round in|put a cap in|pop a cap in|put one in|put two in|put a hole in|put six in"
    r"|blow away|blow the head off|blow the brains out of|open fire on|take a shot at|set fire to|set on fire"
)
#: acts against places
_PLACE_ACTS = (
    r"shoot up|shoots up|bomb|bombs|blow up|blows up|burn down|burns down|torch|torches|firebomb|fire bomb"
    r"|set fire to|set on fire|attack|open fire on|open fire at|open fire in|shoot everyone at"
    r"|shoot everyone in|shoot everybody at|shoot everybody in|kill everyone at|kill everyone in"
    r"|kill everybody at|kill everybody in"
)
_PERSON_ACT = re.compile(rf"(?:{_PERSON_ACTS})\b")
_PLACE_ACT = re.compile(rf"(?:{_PLACE_ACTS})\b")

_PEOPLE = (
    r"officer|officers|cop|cops|police|policeman|policemen|policewoman|pig|pigs|mayor|councilman|councilwoman"
    r"|council member|councilmember|council members|councilmembers|council|commissioner|commissioners|clerk|clerks"
    r"|inspector|inspectors|judge|judges|manager|managers|boss|supervisor|supervisors|coworker|coworkers|co worker"
    r"|director|chief|sheriff|deputy|deputies|guy|guys|dude|man|men|woman|women|lady|ladies|girl|boy|bitch|bitches"
    r"|bastard|bastards|asshole|assholes|fucker|fuckers|motherfucker|motherfuckers|people|person|employee"
    r"|employees|staff|worker|workers|teacher|teachers|student|students|kids|neighbor|neighbour|neighbors"
    r"|neighbours|attendant|attendants|agent|agents|official|officials|politician|politicians|bureaucrat"
    r"|bureaucrats|administrator|meter maid|warden|dispatcher|firefighter|firefighters|ranger|trooper|troopers"
    r"|detective|sergeant|lieutenant|captain|receptionist|cashier|driver|lawyer|attorney|prosecutor|landlord"
    r"|tenant|idiot|idiots|moron|morons|scum|traitor|traitors|snitch|snitches|jew|jews|muslim|muslims|immigrant"
    r"|immigrants"
)
_DETERMINER = r"(?:that|the|this|those|these|every|each|some|our|my|your|his|her|their|a|an|one|all|all the|all of the|any)"
_MODIFIERS = r"(?: (?!(?:a|an|the|this|that|and|or|with|to|at|in|on|for|of|from)\b)[a-z][a-z'\-]*){0,2}"
_PRONOUNS = (
    r"you|u|ya|yall|y'all|you all|all of you|every one of you|each of you|him|her|them|all of them|everyone"
    r"|everybody|every last one of them|every last one of you|yourself|themselves|that bitch|that fucker"
)
_TITLES = (
    r"officer|ofc|mayor|councilman|councilwoman|councilmember|council member|commissioner|judge|chief|sheriff"
    r"|deputy|detective|sergeant|sgt|lieutenant|lt|captain|capt|inspector|director|mr|mrs|ms|miss|dr|clerk"
)
_PERSON = re.compile(rf"(?:{_PRONOUNS})\b|{_DETERMINER}{_MODIFIERS} (?:{_PEOPLE})\b|(?:{_PEOPLE})\b")
#: a title and a name ("officer peterson"): a person when the name is capitalised in the original text
_NAMED = re.compile(rf"(?:{_TITLES})\.? [a-z][a-z'\-]+\b")
_PLACES = (
    r"city hall|town hall|city building|city offices|city office|courthouse|court house|police station|police"
    r" department|police headquarters|fire station|station|precinct|council chambers|chambers|council meeting"
    r"|city council meeting|city council|meeting|school|schools|office|offices|building|library|mall|church"
    r"|mosque|synagogue|temple|parade|festival|rally|clinic|hospital|department|headquarters|hq|dmv|post office"
    r"|capitol|statehouse|state house|place|city|town|plant|pool|park|courtroom|jail|daycare|campus|store"
)
_PLACE = re.compile(
    rf"(?:(?:the|this|that|our|your|their|his|her|every|a|an|this whole|the whole|the entire|this fucking"
    rf"|that fucking|the fucking|fucking|that damn|this damn|the damn|damn|whole)"
    rf"(?: (?!(?:a|an|the|this|that|and|or|with|to|at|in|on|for|of)\b)[a-z][a-z'\-]*)? )?(?:{_PLACES})\b"
)
#: after "shoot him": words that make it a message, not a gun ("shoot him an e-mail", "shoot her a text")
_SHOT_MESSAGE = re.compile(
    r" (?:a|an|the|some|over|back|my|our|this|that|these|those|his|her|their|your|any|one|two|quick|e mail|email"
    r"|mail|text|texts|message|messages|note|line|link|links|invite|invitation|info|details|copy|copies|photo"
    r"|photos|picture|pictures|video|videos|look|glance|smile|question|questions|reminder|update|call|ring)\b"
)
#: after any target: a game or a kindness ("kill you with kindness", "beat them at chess")
_PLAYFUL = re.compile(
    r"(?: all)? (?:with kindness|softly|at (?:chess|cards|pool|golf|tennis|poker|checkers|trivia|bowling"
    r"|fortnite|madden|halo|ping pong|basketball|darts|cornhole|the game|this game|that game))\b"
)
#: after the target: a noun that makes it part of a compound ("the new staff photos", "city hall's budget",
#: "the council meeting agenda"): the act is done to that thing, not to the people or the place
_COMPOUND = re.compile(
    r" (?:photo|photos|picture|pictures|portrait|portraits|headshot|headshots|video|videos|footage|meeting|meetings"
    r"|party|parties|event|events|list|lists|schedule|schedules|report|reports|agenda|agendas|minutes|budget"
    r"|budgets|account|accounts|car|cars|truck|trucks|idea|ideas|plan|plans|proposal|proposals|program|programs"
    r"|training|badge|badges|uniform|uniforms|shirt|shirts|recognition|appreciation|lunch|lunches|dinner"
    r"|breakfast|picnic|award|awards|day|week|retreat|survey|surveys|review|reviews|evaluation|evaluations"
    r"|directory|email|emails|e mail|newsletter|newsletters|record|records|file|files|room|lounge|parking|lot"
    r"|bathroom|restroom|game|games|team|teams|league|match|outing|holiday|contest|fund|funds|union|website"
    r"|site|page|hours|project|projects|renovation|roof|lights|sign|signs|tree|display|decorations|float"
    r"|fundraiser|drive|dance|concert|show|tour|open house|sale|booth|policy|policies|rules|code|computer"
    r"|computers|server|servers|system|systems|network|printer|phone|phones|line|queue|backlog|tickets|ticket)\b"
)
#: "the mayor's portrait": a possessive target is not the target, unless a body part follows
_POSSESSIVE = re.compile(r"(?:'s?|s')(?= |$)")
_BODY_PART = re.compile(
    r"(?:'s?|s') (?:head|skull|brain|brains|face|chest|heart|neck|throat|back|legs|knees|kneecaps|house|home|car)\b"
)
#: wishes that someone be harmed: "<person> should be shot", "deserves to die"
_WISH = re.compile(
    rf"(?:^|[^a-z'])((?:{_PRONOUNS}|he|she|they|{_DETERMINER}{_MODIFIERS} (?:{_PEOPLE})|(?:{_TITLES})\.? [a-z][a-z'\-]+))"
    r"(?: (?:all|really|just|seriously))? (?:should|deserves to|deserve to|needs to|need to|ought to|oughta|has to"
    r"|have to|is going to|are going to|is gonna|are gonna)"
    r" (?:be |get |all be |all get )(?:shot|killed|murdered|hanged|hung|lynched|executed|beaten to death|stabbed"
    r"|strung up|put down|gunned down|shot dead|taken out back and shot|burned alive|burnt alive)\b"
    rf"|(?:^|[^a-z'])(?:{_PRONOUNS}|he|she|they|{_DETERMINER}{_MODIFIERS} (?:{_PEOPLE}))"
    r" (?:should|deserves to|deserve to|needs to|need to|ought to) (?:just )?die\b"
)
#: bringing a weapon to a place, with intent: "I'm bringing my rifle to the council meeting"
_ARMED = re.compile(
    rf"(?:^|[^a-z'])(?:{_SPEAKER}|i'm|im|i am|we're|we are)(?: just)? (?:bring|bringing|carry|carrying|take|taking)"
    r" (?:a|my|the|our|his|her|some|an|loaded|a loaded|my loaded)(?: [a-z0-9]+)? (?:gun|guns|rifle|rifles|shotgun"
    r"|pistol|handgun|weapon|weapons|bomb|bombs|explosives|ar 15|ar15|ak 47|ak47|glock|machete)"
    rf" (?:to|into|in to) (?:work\b|{_PLACE.pattern})"
)
_WISH_CUES = ("should", "deserve", "need", "ought", "has to", "have to", "going to", "gonna")
_TRIGGERS = [
    "{gun,guns,rifle,rifles,shotgun,pistol,handgun,weapon,weapons,bombs,explosives,ar 15,ar15,ak 47,ak47,glock,machete}",
    "{kill,kills,murder,murders,shoot,shoots,stab,stabs,strangle,choke,hang,lynch,execute,behead,gun down,mow down}",
    "{run over,slit the throat,cut the throat,torture,rape,assault,attack,hurt,maim,beat up,beat the,beat to death}",
    "{bash in,knock out,pistol whip,string up,put down,put a,put bullets,put one,put two,put six,pop a cap,blow away}",
    "{blow the,open fire,take a shot,burn,bomb,bombs,blow up,blows up,burn down,torch,torches,firebomb,fire bomb}",
    "{set fire,set on fire,storm,raid,light up}",
    "{shot,killed,murdered,hanged,hung,lynched,executed,stabbed,strung up,gunned down,burned alive,burnt alive,die}",
]


class ThreatPatternDetector:
    """``threat-pattern``: intent or incitement + violent act + a person or place as its target."""

    name = "threat-pattern"
    categories = frozenset({"threat"})

    def __init__(self) -> None:
        self.triggers = PhraseIndex(lambda: data.parse_lines([line + "\trole:violent-act" for line in _TRIGGERS]))
        self.needs = (self.triggers,)

    def scan(self, text: str, norm: Normalised) -> list[Hit]:
        hits: list[Hit] = []
        seen: set[int] = set()
        for t in self.triggers.find(norm):
            if t.start in seen:
                continue
            seen.add(t.start)
            found = self._act(norm, t.start) or self._wish(norm, t.start, t.end) or self._armed(norm, t.start)
            if found is not None:
                start, end, conf, tags = found
                hits.append(hit_from_norm("threat", self.name, norm, start, end, conf, tags))
            if len(hits) >= MAX_HITS_PER_DETECTOR:
                break
        return dedupe(hits) if len(hits) > 1 else hits

    def _act(self, norm: Normalised, at: int) -> tuple[int, int, float, set[str]] | None:
        """Intent or incitement right before a violent act at ``at``, with its target right after."""
        s = norm.text
        before = _BEFORE.search(s, max(0, at - 90), at)
        if before is None:
            return None
        incitement = before.group(2) is not None
        start = before.start(1) if before.group(1) is not None else before.start(2)
        for act, kind in ((_PERSON_ACT, "person"), (_PLACE_ACT, "place")):
            a = act.match(s, at)
            if a is None or a.end() >= len(s) or s[a.end()] != " ":
                continue
            tm = self._target(norm, a.end() + 1, kind)
            if tm is None:
                continue
            after = tm.end()
            body = _BODY_PART.match(s, after)
            if body is not None:
                after = body.end()
            elif _POSSESSIVE.match(s, after) or _COMPOUND.match(s, after) or _PLAYFUL.match(s, after):
                continue
            if a.group().startswith("shoot") and kind == "person" and _SHOT_MESSAGE.match(s, after):
                continue
            tags = {"violence", f"threat:{kind}", "incitement" if incitement else "threat:intent"}
            return start, after, 0.8 if incitement else 0.85, tags
        return None

    @staticmethod
    def _armed(norm: Normalised, at: int) -> tuple[int, int, float, set[str]] | None:
        """A weapon brought to a place, the weapon word at ``at``."""
        s = norm.text
        m = _ARMED.search(s, max(0, at - 80), min(len(s), at + 80))
        if m is None or not m.start() <= at < m.end() or _COMPOUND.match(s, m.end()):
            return None
        first = m.start() + (1 if m.start() > 0 and not s[m.start()].isalpha() else 0)
        return first, m.end(), 0.6, {"violence", "threat:place", "threat:weapon"}

    @staticmethod
    def _target(norm: Normalised, pos: int, kind: str) -> re.Match[str] | None:
        """The person or place right at ``pos``: a title with a capitalised name, else a person or a place."""
        s = norm.text
        if kind == "place":
            return _PLACE.match(s, pos)
        named = _NAMED.match(s, pos)
        if named is not None:
            name = named.group().split()[-1]
            ostart, oend = norm.span(named.end() - len(name), named.end())
            if norm.original[ostart:oend][:1].isupper():
                return named
        return _PERSON.match(s, pos)

    def _wish(self, norm: Normalised, at: int, end: int) -> tuple[int, int, float, set[str]] | None:
        """"<person> should be shot" ending with the trigger word at ``at``."""
        s = norm.text
        before = s[max(0, at - 30) : at]
        if not any(w in before for w in _WISH_CUES):
            return None
        for m in _WISH.finditer(s, max(0, at - 100), min(len(s), end + 1)):
            if m.end() == end:
                first = m.start() + (1 if m.start() > 0 and not s[m.start()].isalpha() else 0)
                return first, m.end(), 0.7, {"violence", "threat:person", "threat:wish"}
        return None


THREAT_PATTERN = ThreatPatternDetector()
