"""Personal information: SSNs, payment cards, bank accounts, driver's licences and
dates of birth (the home address or personal phone number of a named person is
:mod:`.pii_contact`, which shares the keyword index and helpers here).

Numbers are read from the original text; keywords ("SSN", "account number",
"driver's license") are found in the normalised text. Shapes alone are weak
evidence, so: a bare nine-digit number is an SSN only after an SSN keyword;
cards need a real IIN range, a plausible length and grouping, and the Luhn check;
bank accounts and licences need their keyword right before the number (a routing
number may instead stand near an account number, and must pass the ABA checksum);
licences are checked against the formats of Missouri, Kentucky, Iowa and Minnesota
(tag ``dl:<state>``, surer when the state is named); a date of birth needs its
keyword and a person (a capitalised name, a title, "his"/"her") just before it.
Evidence is the masked number only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from . import data
from .hit import Hit, make_hit, mask_digits
from .lexicon import MAX_HITS_PER_DETECTOR
from .matcher import Match, PhraseIndex
from .normalise import Normalised
from .pii_checks import (
    CARD_SHAPES,
    NINE_SHAPES,
    SSN_SHAPES,
    aba_ok,
    card_brand,
    digit_mask,
    dl_states,
    luhn_ok,
    plausible_card_groups,
    shape_starts,
    ssn_ok,
)

_SSN = re.compile(r"\d(?<![\d.-]\d)\d\d([- ])(\d\d)\1(\d{4})(?![\d-]|[.,]\d)")
_NINE = re.compile(r"\d(?<![\d.-]\d)\d{8}(?![\d-]|[.,]\d)")
_CARD = re.compile(r"\d(?<![\d.-]\d)(?:[ -]?\d){12,18}(?![\d-]|[.,]\d)")
_SSN_KW = re.compile(
    r"\b(?:ssn|ssns|ss ?#|ss no|social security|soc sec|social sec)(?!\w)|\bssn|\bsocial(?= is\b| no\b| number\b| ?#|:)"
)
_CARD_KW = re.compile(
    r"\b(?:card|visa|mastercard|master card|amex|american express|discover|cc ?#|credit|debit|expir\w*|exp|cvv|cvc)\b"
)
_ACCOUNT_KW = re.compile(
    r"\b(?:account|acct|a/c)\.? ?(?:number|num|no|nbr|#)\.?|\b(?:checking|savings|bank) (?:account|acct)\b"
)
_ROUTING_KW = re.compile(r"\b(?:routing|aba|rtn|transit) ?(?:number|num|no|nbr|#)?")
_BANK_CONTEXT = re.compile(r"\b(?:bank|banking|checking|savings|deposit|routing|wire|ach|iban|credit union)\b")
_DL_KW = re.compile(
    r"\bdriv(?:er'?s?'?|ing) licen[cs]e(?: (?:number|num|no|#|id))?\.?|\bdln\b|\bdl ?(?:#|no\b|num\b|number\b)"
    r"|(?<=\b(?:mo|ky|ia|mn) )dl\b|(?<=\b(?:missouri|kentucky) )dl\b|(?<=\bminnesota )dl\b|(?<=\biowa )dl\b"
)
_AFTER_KW = re.compile(r"[\s:#.=\-]*(?:\((?:[A-Za-z]{2,12} ?){1,2}\)[\s:#.=\-]*)?(?:(?:is|was|of)\s+)?")
_ACCOUNT_VALUE = re.compile(r"\d(?:[ -]?\d){5,16}(?![\d-])")
_DL_VALUE = re.compile(r"(?=[A-Za-z0-9-]*\d(?:-?\d){3})[A-Za-z]{0,3}-?\d(?:-?[0-9A-Za-z]){3,15}\b")
_NEAR = 60
_SEPARATOR = re.compile(r"[ -]")


_STATE = re.compile(r"\b(?:Missouri|Kentucky|Iowa|Minnesota|MO|KY|IA|MN)\b", re.IGNORECASE)
_STATE_CODE = {"missouri": "MO", "kentucky": "KY", "iowa": "IA", "minnesota": "MN"}
_DL_ANY = re.compile(rf"[A-Za-z](?:[ -]?\d){{12}}\b|{_DL_VALUE.pattern}")  # Minnesota's may be printed spaced
_NINE_DIGITS = re.compile(r"(?<![\d-])\d{9}(?![\d-])")
_DATE = re.compile(
    r"(?:\d{1,2}[/.-]\d{1,2}[/.-](?:19|20)?\d\d|(?:19|20)\d\d-\d\d-\d\d"
    r"|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.? \d{1,2}(?:st|nd|rd|th)?,? (?:19|20)\d\d"
    r"|\d{1,2} (?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?,? (?:19|20)\d\d)(?!\d)",
    re.IGNORECASE,
)
_DOB_KW = re.compile(r"(?:dob|d o b|date of birth|birth date|birthdate|birthday|born on|born)\b")
_NAME = r"(?:(?:Mr|Mrs|Ms|Miss|Dr)\.? )?[A-Z][a-z'\-]+(?: [A-Z]\.)? [A-Z][a-z'\-]+"
_TITLE_NAME = (
    r"(?:[Oo]fficer|[Ss]gt|[Ss]ergeant|[Dd]etective|[Cc]aptain|[Cc]hief|[Dd]irector|[Ee]mployee|[Pp]atient"
    r"|[Ff]irefighter|[Dd]eputy|[Mm]r|[Mm]rs|[Mm]s|[Dd]r)\.? [A-Z][a-z'\-]+"
)
_PERSON_BEFORE = re.compile(rf"(?:{_NAME}|{_TITLE_NAME})(?:'s)?[^.!?\n]{{0,50}}$|\b(?:[Hh]is|[Hh]er|[Mm]y|[Tt]heir)\W{{1,3}}$")
_NOT_NAME_WORDS = frozenset(
    "The This That These Those Our Your Their His Her My City County State Dear Hi Hello Thanks Thank Please From Sent "
    "Subject Date Re Fwd Street Avenue Road Drive Police Fire Department Office Hall Public Works North South East "
    "West New Des Moines Saint St January February March April May June July August September October November "
    "December Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
)


_TRIGGERS = [
    "{ssn,ssns,ss#,ss #,ss no,social security,soc sec,social sec,social is,social no,social number,social #}"
    "\trole:ssn",
    "{account,acct,a/c,checking,savings,bank}\trole:account",
    "{routing,aba,rtn,transit}\trole:routing",
    "{driver's,drivers,driver,driving,dl,dln}\trole:licence",
    "{dob,d o b,date of birth,birth date,birthdate,birthday,born on,born}\trole:dob",
    # whole phrases, so that common words ("his", "number") cost nothing where they stand alone
    "home {address,addr,phone,phone number,number,telephone,tel,#}\trole:contact",
    "{personal,private} {cell,cell phone,cellphone,mobile,phone,phone number,number,address,e mail address}"
    "\trole:contact",
    "{lives,living,resides,residing,staying} {at,on}\trole:contact",
    "residence is\trole:contact",
    "{lives,live,resides,stays,sleeps}\trole:contact-where",
    "{his,her,their} {,home ,personal ,private }{cell,cell phone,cellphone,mobile,phone number,number,address,home}"
    "\trole:contact",
    "'s {home,cell,cell phone,cellphone,mobile,personal number,phone number,address}\trole:contact",
]
TRIGGERS = PhraseIndex(lambda: data.parse_lines(_TRIGGERS))


def _keyword_near(text: str, pattern: re.Pattern[str], start: int, end: int, radius: int = _NEAR) -> bool:
    """Is there a keyword in the original text around ``text[start:end]``?"""
    window = text[max(0, start - radius) : end + radius].lower().replace("-", " ")
    return pattern.search(window) is not None


def _mask(text: str, norm: Normalised) -> bytes:
    mask = norm.cache.get("digit-mask")
    if mask is None:
        mask = norm.cache["digit-mask"] = digit_mask(text)
    return mask


def _triggers(norm: Normalised, role: str) -> list[Match]:
    return [t for t in TRIGGERS.find(norm) if role in t.tags]


def _values_after_keywords(
    text: str, norm: Normalised, role: str, keyword: re.Pattern[str], value: re.Pattern[str]
) -> Iterator[tuple[int, int, str]]:
    """Values that follow a keyword (within a few separator characters)."""
    for t in _triggers(norm, role):
        kw = keyword.match(norm.text, t.start)
        if kw is None:
            continue
        _, oend = norm.span(kw.start(), kw.end())
        gap = _AFTER_KW.match(text, oend, oend + 12)
        pos = gap.end() if gap else oend
        m = value.match(text, pos)
        if m is not None:
            yield m.start(), m.end(), m.group()


class _PiiDetector:
    """A PII detector: a finder function producing (start, end, evidence, confidence, tags)."""

    categories = frozenset({"pii"})

    def __init__(
        self,
        name: str,
        finder: Callable[[str, Normalised], Iterator[tuple[int, int, str, float, frozenset[str]]]],
        *,
        min_digits: int,
        keyword: bool = True,
    ) -> None:
        self.name = name
        self._finder = finder
        #: what the registry checks before calling: the keyword index matched, and enough digits
        self.needs: tuple[PhraseIndex, ...] | None = (TRIGGERS,) if keyword else None
        self.min_digits = min_digits

    def scan(self, text: str, norm: Normalised) -> list[Hit]:
        hits: dict[tuple[int, int], Hit] = {}
        for start, end, evidence, confidence, tags in self._finder(text, norm):
            hits.setdefault((start, end), make_hit("pii", self.name, text, start, end, confidence, tags, evidence))
            if len(hits) >= MAX_HITS_PER_DETECTOR:
                break
        return sorted(hits.values(), key=lambda h: h.start)


def _find_ssn(text: str, norm: Normalised) -> Iterator[tuple[int, int, str, float, frozenset[str]]]:
    tags = frozenset({"pii:ssn"})
    mask = _mask(text, norm)
    for i in shape_starts(mask, SSN_SHAPES):
        m = _SSN.match(text, i)
        if m is None:
            continue
        area, group, serial = m.group()[:3], m.group(2), m.group(3)
        if ssn_ok(area, group, serial):
            conf = 0.97 if _keyword_near(text, _SSN_KW, m.start(), m.end()) else (0.85 if m.group(1) == "-" else 0.6)
            yield m.start(), m.end(), f"***-**-{serial}", conf, tags
    if _triggers(norm, "role:ssn"):
        for i in shape_starts(mask, NINE_SHAPES):
            m = _NINE.match(text, i)
            if m is None:
                continue
            d = m.group()
            if ssn_ok(d[:3], d[3:5], d[5:]) and _keyword_near(text, _SSN_KW, m.start(), m.end(), 40):
                yield m.start(), m.end(), f"***-**-{d[5:]}", 0.9, tags


def _mask_card(raw: str, digits: str) -> str:
    if raw.isdigit():
        masked = "*" * (len(digits) - 4) + digits[-4:]
        return " ".join(masked[i : i + 4] for i in range(0, len(masked), 4))
    return mask_digits(raw)


def _find_card(text: str, norm: Normalised) -> Iterator[tuple[int, int, str, float, frozenset[str]]]:
    for i in shape_starts(_mask(text, norm), CARD_SHAPES):
        m = _CARD.match(text, i)
        if m is None:
            continue
        raw = m.group()
        if raw[0] not in "23456":  # no card range starts with 0, 1, 7, 8 or 9
            continue
        digits = raw.replace(" ", "").replace("-", "")
        if not luhn_ok(digits) or (" " in raw and "-" in raw) or digits.count(digits[0]) == len(digits):
            continue
        groups = [len(g) for g in _SEPARATOR.split(raw)]
        brand = card_brand(digits)
        if brand is None or not plausible_card_groups(groups):
            continue
        conf = 0.8 if len(groups) > 1 else 0.7
        if _keyword_near(text, _CARD_KW, m.start(), m.end()):
            conf = 0.95
        yield m.start(), m.end(), _mask_card(raw, digits), conf, frozenset({"pii:card", f"card:{brand}"})


def _find_bank(text: str, norm: Normalised) -> Iterator[tuple[int, int, str, float, frozenset[str]]]:
    routing: set[int] = set()
    for start, end, value in _values_after_keywords(text, norm, "role:routing", _ROUTING_KW, _ACCOUNT_VALUE):
        digits = re.sub(r"\D", "", value)
        if aba_ok(digits):
            routing.add(start)
            yield start, end, "*****" + digits[-4:], 0.9, frozenset({"pii:bank-account", "bank:routing"})
    for start, end, value in _values_after_keywords(text, norm, "role:account", _ACCOUNT_KW, _ACCOUNT_VALUE):
        digits = re.sub(r"\D", "", value)
        if len(set(digits)) == 1 or start in routing:
            continue
        conf = 0.9 if _keyword_near(text, _BANK_CONTEXT, start, end, 100) else 0.7
        yield start, end, "*" * max(4, len(digits) - 4) + digits[-4:], conf, frozenset({"pii:bank-account"})
        # a routing number written near the account number without its own keyword ("bank 011000015, acct ...")
        for m in _NINE_DIGITS.finditer(text, max(0, start - 80), min(len(text), end + 80)):
            if m.start() not in routing and m.start() != start and aba_ok(m.group()):
                routing.add(m.start())
                yield m.start(), m.end(), "*****" + m.group()[-4:], 0.8, frozenset({"pii:bank-account", "bank:routing"})


def _find_licence(text: str, norm: Normalised) -> Iterator[tuple[int, int, str, float, frozenset[str]]]:
    for start, end, value in _values_after_keywords(text, norm, "role:licence", _DL_KW, _DL_ANY):
        if sum(c.isdigit() for c in value) < 4 or sum(c.isalpha() for c in value) > 3:
            continue
        fits = dl_states(value)
        named = {_STATE_CODE.get(m.group().lower(), m.group().upper())
                 for m in _STATE.finditer(text, max(0, start - 60), start)
                 if not m.group().islower()}
        tags = {"pii:drivers-licence"} | {f"dl:{st.lower()}" for st in fits if not named or st in named}
        if named & set(fits):
            conf = 0.92
        elif fits and not named:
            conf = 0.85
        else:
            conf = 0.75  # the keyword is there, the format is another state's or unknown
        yield start, end, mask_digits(value), conf, frozenset(tags)


def _person_before(text: str, pos: int, *, pronouns: bool = True) -> bool:
    """A person named (or, with ``pronouns``, "his"/"her"/"my") within a sentence before ``pos``."""
    window = text[max(0, pos - 80) : pos]
    m = _PERSON_BEFORE.search(window)
    if m is None:
        return False
    if m.group().split()[0].lower() in ("his", "her", "my", "their"):
        return pronouns
    words = m.group().replace("'s", "").split()
    return not (words and words[0] in _NOT_NAME_WORDS and (len(words) < 2 or words[1] in _NOT_NAME_WORDS))


def _find_dob(text: str, norm: Normalised) -> Iterator[tuple[int, int, str, float, frozenset[str]]]:
    for t in _triggers(norm, "role:dob"):
        kw = _DOB_KW.match(norm.text, t.start)
        if kw is None:
            continue
        ostart, oend = norm.span(kw.start(), kw.end())
        gap = _AFTER_KW.match(text, oend, oend + 12)
        m = _DATE.match(text, gap.end() if gap else oend)
        if m is None or not _person_before(text, ostart):
            continue
        yield m.start(), m.end(), re.sub(r"\d", "*", m.group()), 0.85, frozenset({"pii:dob"})


PII_SSN = _PiiDetector("pii-ssn", _find_ssn, min_digits=9, keyword=False)
PII_CARD = _PiiDetector("pii-card", _find_card, min_digits=13, keyword=False)
PII_BANK = _PiiDetector("pii-bank-account", _find_bank, min_digits=6)
PII_LICENCE = _PiiDetector("pii-drivers-licence", _find_licence, min_digits=4)
PII_DOB = _PiiDetector("pii-date-of-birth", _find_dob, min_digits=4)
