"""Solicitation (commercial, religious, political, charitable, outside
organisations) and personal sales.

An ask must be present: "Red Cross shelter opened" or "the council will vote on
the budget" report things, "Please donate to the Red Cross" and "Vote for Jane
Smith" ask for something. Rules:

* stand-alone phrases ("please donate", "buy my", "accept Jesus", "vote yes on");
* an invitation ("join us", "please support") within one sentence of a topic
  ("First Baptist", "Red Cross", "campaign");
* imperative "vote for" / "elect" followed by a name (capitalised in the original);
* "order by Friday"; personal sales: "for sale", "selling my", "OBO", "asking $900";
* advertisements: a call to action ("call us", "Call Hawkeye Roofing today at
  515-555-0142", "book now") near offers that weigh 2 or more together (a deal
  such as "20% off", "this week only" or "discount" weighs 2; a free service such
  as "free inspection" or a discount weighs 1, and a call in the business's own
  voice, "call us", adds 1 to a free service), so "Free flu shots this Saturday" or "call the help desk" are not
  advertisements.
"""

from __future__ import annotations

import re

from . import data
from .hit import Hit, hits_from_spans
from .links import SHORTENERS
from .matcher import Match, PhraseIndex
from .normalise import Normalised

_SENTENCE_GAP = 90
_BREAK = re.compile(r"[.!?;]\s")
_DAYS = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"
_MONTHS = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.? \d"
_ORDER_BY = re.compile(
    rf"\border (?:yours |now |today |online )?by (?:this |next )?(?:{_DAYS}|tomorrow|tonight|noon|midnight"
    rf"|the end of|end of (?:the )?(?:day|week|month)|next week|this week|{_MONTHS}|\d{{1,2}}/\d{{1,2}}\b)"
)
_VOTE = re.compile(r"\b(?:vote for|vote|elect|re elect|reelect) ")
_IMPERATIVE_LEFT = re.compile(
    r"(?:^|[.!?:;\"(*>\-]|\b(?:please|pls|plz|remember to|forget to|be sure to|make sure to|make sure you|urge you to"
    r"|ask you to|encourage you to|encourage everyone to|let's|lets|go out and|and|so|today|tuesday|now))\s*$"
)
_NAME = re.compile(r"(?:[A-Z][a-z'\-]+|[A-Z]\.)(?: (?:[A-Z][a-z'\-]+|[A-Z]\.))*")
_VOTE_OBJECT = re.compile(r"(?:me|my|our|him|her|them|prop(?:osition)? \w+|measure \w+|amendment \w+)\b")
_NOT_NAMES = frozenset(
    {
        "The",
        "A",
        "An",
        "This",
        "That",
        "It",
        "All",
        "Option",
        "Item",
        "Yes",
        "No",
        "Your",
        "Our",
        "My",
        "Early",
        "Today",
    }
    | {d + "day" for d in ("Mon", "Tues", "Wednes", "Thurs", "Fri", "Satur", "Sun")}
)
_TRIGGERS = ["vote", "elect", "reelect", "re elect", "order", "asking", "call\trole:call",
             "text {us,me,now,today}\trole:call"]
_PHONE = r"(?:\+?1 )?\(?\d{3}\)? ?\d{3} \d{4}\b"
#: "call Hawkeye Roofing today", "call 515-555-0142", "text us at (515) 555 0142"
_CALL = re.compile(
    rf"\b(?:call|text)(?: (?:us|me|them|now|today))?(?: (?!(?:for|the|a|an|of|to|in|on)\b)[a-z0-9&'.]+){{0,3}}?"
    rf" (?:today|now|at {_PHONE}|{_PHONE})|\b(?:call|text) (?:us |me )?(?:at )?{_PHONE}"
)
#: "20% off", "$50 off", "save up to 30%", "15 percent off"
_DEAL = re.compile(
    r"\b\d{1,2} ?(?:%|percent) off\b|\$ ?\d[\d,]*(?:\.\d\d)? off\b|\bsave (?:up to |over )?(?:\$ ?\d|\d{1,2} ?(?:%|percent))"
)
_AD_WINDOW = 250
_ASKING = re.compile(r"\basking (?:only |just |around |about )?\$ ?\d[\d,.]*k?")


#: a link in the normalised text: a scheme or www., or a host with a path ("bit.ly/3xhot")
LINK = re.compile(r"(?:https?://|www\.)[^\s<>\"']+|\b[a-z0-9][a-z0-9\-]*(?:\.[a-z0-9\-]+)*\.[a-z]{2,6}/[^\s<>\"']+")
#: selling reach: "cheap instagram followers", "10k real followers", "buy youtube views"
_ENGAGE_BEFORE = re.compile(
    r"(?:^|[^a-z0-9])(?:buy|buying|get|gain|grow|boost|sell|selling|cheap|cheapest|real|instant|active|organic"
    r"|guaranteed|targeted|quality|\d[\d,.]*k?)(?: (?:real|instant|cheap|active|organic|guaranteed|targeted|high"
    r"|quality|more|new|us|usa|american|human|legit|fast|\d[\d,.]*k?))*"
    r"(?: (?:instagram|ig|insta|tiktok|tik tok|twitter|youtube|yt|facebook|fb|spotify|twitch|snapchat|linkedin"
    r"|google|yelp|amazon|soundcloud|reddit))? $"
)
_ENGAGE_SIGNAL = re.compile(
    r"\$ ?\d|\b\d+ ?(?:usd|dollars|bucks)\b|\bcheap(?:est)?\b|\bprices?\b|\bbuy\b|\bfor sale\b|\bdm\b|\bpm (?:me|us|for)\b"
    r"|\binbox\b|\bmessage me\b|\bwhatsapp\b|\btelegram\b|\blink in (?:my )?bio\b|\bpaypal\b|\bcash ?app\b"
    r"|\bvenmo\b"
)
_ENGAGE_WINDOW = 120


def _engagement(s: str, matches: list[Match]) -> list[tuple[int, int, float, set[str]]]:
    """Selling social-media reach: a quantity or a buying word before "followers" / "likes" / "views",
    with a price, "cheap" or a contact ask within ``_ENGAGE_WINDOW`` characters."""
    out: list[tuple[int, int, float, set[str]]] = []
    for m in matches:
        if "role:engagement" not in m.tags:
            continue
        before = _ENGAGE_BEFORE.search(s, max(0, m.start - 60), m.start)
        if before is None:
            continue
        start = before.start() + (0 if s[before.start()].isalnum() else 1)
        lo, hi = max(0, start - _ENGAGE_WINDOW), min(len(s), m.end + _ENGAGE_WINDOW)
        signal = _ENGAGE_SIGNAL.search(s, lo, hi)
        if signal is None:
            continue
        out.append((min(start, signal.start()), max(m.end, signal.end()), 0.8,
                    {"solicitation:commercial", "solicitation:social-reach"}))
    return out


def _same_sentence(s: str, a: int, b: int) -> bool:
    return b - a <= _SENTENCE_GAP and _BREAK.search(s, a, b) is None


class SolicitationDetector:
    """``solicitation-phrase``: asks for money, votes, faith, purchases or members."""

    name = "solicitation-phrase"
    categories = frozenset({"solicitation"})

    def __init__(self) -> None:
        self.index = PhraseIndex("solicitation", confidence=0.8)
        self.triggers = PhraseIndex(lambda: data.parse_lines(_TRIGGERS))
        self.needs = (self.index, self.triggers)

    def scan(self, text: str, norm: Normalised) -> list[Hit]:
        s = norm.text
        matches = self.index.find(norm)
        asks = [m for m in matches if "role:ask" in m.tags]
        spans: list[tuple[int, int, float, set[str]]] = []
        for m in matches:
            kinds = {t for t in m.tags if t.startswith("solicitation:")}
            if kinds:
                spans.append((m.start, m.end, m.confidence, kinds))
            topics = {"solicitation:" + t.split(":", 1)[1] for t in m.tags if t.startswith("topic:")}
            if topics:
                ask = _nearest_ask(s, m, asks)
                if ask is not None:
                    spans.append((min(ask.start, m.start), max(ask.end, m.end), 0.7, topics))
        triggers = self.triggers.find(norm)
        spans.extend(self._votes(norm, [t for t in triggers if t.phrase != "order"]))
        for t in triggers:
            if t.phrase == "order":
                om = _ORDER_BY.match(s, t.start)
                if om is not None:
                    spans.append((om.start(), om.end(), 0.7, {"solicitation:commercial"}))
        spans.extend(self._adverts(s, matches, triggers))
        spans.extend(_engagement(s, matches))
        return hits_from_spans(norm, self.name, "solicitation", spans)

    def _adverts(self, s: str, matches: list[Match], triggers: list[Match]) -> list[tuple[int, int, float, set[str]]]:
        """A call to action with offers within ``_AD_WINDOW`` characters, weighing 2 or more together."""
        ctas = [(m.start, m.end, int("cta:business" in m.tags)) for m in matches if "role:cta" in m.tags]
        hidden: set[int] = set()
        links: list[tuple[int, int]] = []
        dating = [(m.start, m.end) for m in matches if "offer:dating" in m.tags]
        if dating and ("/" in s or "www." in s):
            # next to a dating offer a link is the call to action ("meet hot singles: bit.ly/3xhot"); elsewhere
            # links are everywhere in legitimate newsletters, so they do not count
            for u in LINK.finditer(s):
                links.append((u.start(), u.end()))
                ctas.append((u.start(), u.end(), 0))
                host = u.group().split("://", 1)[-1].split("/", 1)[0].removeprefix("www.")
                if host in SHORTENERS:
                    hidden.add(u.start())
        for t in triggers:
            if "role:call" in t.tags:
                cm = _CALL.match(s, t.start)
                if cm is not None:
                    ctas.append((cm.start(), cm.end(), 0))
        if not ctas:
            return []
        offers = [(m.start, m.end, 2 if "offer:deal" in m.tags else 1 if "offer:free" in m.tags else 0)
                  for m in matches if "role:offer" in m.tags]
        if "off" in s or "save" in s:
            offers.extend((d.start(), d.end(), 2) for d in _DEAL.finditer(s))
        if dating:
            offers = [(a, b, 2 if (a, b) in dating else w) for a, b, w in offers]
        if not offers:
            return []
        out: list[tuple[int, int, float, set[str]]] = []
        for a, b, voice in ctas:
            near = [o for o in offers if o[0] < b + _AD_WINDOW and a - _AD_WINDOW < o[1] and not (a <= o[0] < b)]
            if (a, b) in links:
                near = [o for o in near if (o[0], o[1]) in dating]
            free = voice and any(w == 1 for _, _, w in near)
            if near and free + sum(max(w, 1) for _, _, w in near) >= 2:
                start = min([a] + [o[0] for o in near])
                end = max([b] + [o[1] for o in near])
                tags = {"solicitation:commercial", "solicitation:advertisement"}
                if any((o[0], o[1]) in dating for o in near):
                    tags.add("solicitation:dating")
                if a in hidden:
                    tags.add("link:shortener")  # where the advertisement leads is hidden
                out.append((start, end, 0.75, tags))
        return out

    def _votes(self, norm: Normalised, triggers: list[Match]) -> list[tuple[int, int, float, set[str]]]:
        s = norm.text
        out: list[tuple[int, int, float, set[str]]] = []
        for t in triggers:
            vm = _VOTE.match(s, t.start)
            if vm is None:
                continue
            if not _IMPERATIVE_LEFT.search(s, max(0, vm.start() - 30), vm.start()):
                continue
            _, ostart = norm.span(vm.start(), vm.end())
            name = _NAME.match(norm.original, ostart)
            if name is not None and name.group().split()[0] not in _NOT_NAMES:
                _, oname_end = name.span()
                nend = norm.from_original(oname_end)
            else:
                obj = _VOTE_OBJECT.match(s, vm.end())
                if obj is None or vm.group().strip() != "vote for":
                    continue
                nend = obj.end()
            out.append((vm.start(), nend, 0.75, {"solicitation:political"}))
        return out


def _nearest_ask(s: str, topic: Match, asks: list[Match]) -> Match | None:
    for ask in asks:
        a, b = (ask.start, topic.end) if ask.start <= topic.start else (topic.start, ask.end)
        if ask.start != topic.start and _same_sentence(s, a, b):
            return ask
    return None


#: what makes "for sale" an offer: a price, a condition, a contact ask or the seller's own voice nearby
_SALE_SUPPORT = re.compile(
    r"\$ ?\d|\b(?:obo|or best offer|asking|price|firm|barely used|lightly used|gently used|like new|new in box"
    r"|good condition|great condition|excellent condition|mint condition|works great|runs great|miles|call me|text me"
    r"|email me|e mail me|contact me|pm me|dm me|message me|let me know|interested|pick up|pickup|cash|make an offer"
    r"|make me an offer|i'm selling|im selling|i am selling|we're selling|we are selling)\b"
)
_SALE_NEAR = 150
#: "For sale: treadmill", "FOR SALE - 2012 Civic": a heading at the start of the text or of a line
_SALE_HEADING = re.compile(r"(?:^|\n|\. |subject ?: ?|re ?: ?)$")


def _sale_supported(s: str, m: Match) -> bool:
    if s.startswith((":", " :", " -"), m.end) or m.end == len(s):
        return True
    if _SALE_HEADING.search(s, max(0, m.start - 12), m.start):
        return True
    return _SALE_SUPPORT.search(s, max(0, m.start - _SALE_NEAR), min(len(s), m.end + _SALE_NEAR)) is not None


class PersonalSaleDetector:
    """``personal-sale-phrase``: selling personal items ("OBO", "selling my")."""

    name = "personal-sale-phrase"
    categories = frozenset({"personal-sale"})

    def __init__(self, solicitation: SolicitationDetector) -> None:
        self._solicitation = solicitation
        self.needs = solicitation.needs

    def scan(self, text: str, norm: Normalised) -> list[Hit]:
        spans: list[tuple[int, int, float, set[str]]] = []
        s = norm.text
        for m in self._solicitation.index.find(norm):
            if "role:sale" in m.tags:
                if "sale:needs-support" in m.tags and not _sale_supported(s, m):
                    continue  # "kittens for sale", "the Brooklyn Bridge for sale!": news and jokes, not an offer
                spans.append((m.start, m.end, m.confidence, {"sale:personal"}))
        for t in self._solicitation.triggers.find(norm):
            am = _ASKING.match(norm.text, t.start) if t.phrase == "asking" else None
            if am is not None:
                spans.append((am.start(), am.end(), 0.8, {"sale:personal"}))
        return hits_from_spans(norm, self.name, "personal-sale", spans)


SOLICITATION = SolicitationDetector()
PERSONAL_SALE = PersonalSaleDetector(SOLICITATION)
