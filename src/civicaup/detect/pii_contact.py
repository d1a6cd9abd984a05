"""Personal information about a named person: a home address or a personal phone number.

West Des Moines forbids posting "Personal information about employees". A number or an address is
personal only with its wording ("home address", "personal cell", "lives at", "her number is",
"here's where Officer Kowalski lives:") and a person: a name, a title and a surname, or his/her/their
right before it - so a signature's "Cell:" line, City Hall's number and address, or "call Jane Smith
at 515-222-3333" are not. The hit is also tagged ``pii:doxxing`` when the text puts the details before
the public to act on ("pay him a visit", "call him", "blow up her phone", "everyone"). Evidence is
the masked number or the street without its house number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .hit import mask_digits
from .normalise import Normalised
from .pii import _AFTER_KW, _NAME, _TITLE_NAME, _PiiDetector, _person_before, _triggers

_CONTACT_NOUN = (
    r"(?:home address|home addr|home phone number|home phone|home number|home telephone|home tel|cell phone number"
    r"|cell phone|cell number|cellphone|cell|mobile number|mobile|phone number|personal number|number|address|home)"
)
_CONTACT_KW = re.compile(
    r"(?:home (?:address|addr|phone number|phone|number|telephone|tel|#)"
    r"|(?:personal|private) (?:cell phone|cellphone|cell|mobile|phone number|phone|number|address|e mail address)"
    r"|(?:lives|living|resides|residing|staying) (?:at|on)|residence is"
    rf"|(?:his|her|their)(?: personal| private)? {_CONTACT_NOUN}|'s(?: personal| private)? {_CONTACT_NOUN})"
    r"(?: number)?(?: is| was)?"
)
_PHONE_VALUE = re.compile(r"(?:\+?1[ .-]?)?\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}(?!\d)")
_ADDRESS_VALUE = re.compile(
    r"\d{1,6} (?:[NSEW]\.? )?(?:[A-Z0-9][A-Za-z0-9']*\.? ){1,4}(?:St|Street|Ave|Avenue|Rd|Road|Dr|Drive|Ln|Lane|Ct"
    r"|Court|Blvd|Boulevard|Way|Pl|Place|Cir|Circle|Pkwy|Parkway|Ter|Terrace|Trl|Trail|Hwy|Highway)\b\.?"
    r"(?:,? (?:Apt|Apartment|Unit|#) ?\w+)?"
)


_AT = re.compile(r"(?:at|on)\s+")
#: "where <person> lives": a name (with or without a title) or a pronoun between "where" and the verb
_WHERE_PERSON = re.compile(
    rf"\b[Ww]here (?:{_NAME}|{_TITLE_NAME}|[A-Z][a-z'\-]+|he|she|they|this (?:guy|woman|man|officer|clerk|cop))"
    r"(?: [A-Z][a-z'\-]+)? $"
)
_WHERE_GAP = re.compile(r"[\s:,\-]*(?:(?:at|on|is)\s+)?")
#: putting someone's contact details before the public to act on
_DOXXING = re.compile(
    r"\b(?:pay (?:him|her|them) a visit|visit (?:him|her|them)|show up|go see (?:him|her|them)|let (?:him|her|them) know"
    r"|tell (?:him|her|them)|call (?:him|her|them)|text (?:him|her|them)|blow up (?:his|her|their) phone|flood"
    r" (?:his|her|their)|everyone|everybody|y'all|yall|you all|spread this|share this|you know what to do"
    r"|knock on (?:his|her|their) door|make (?:his|her|their) life|give (?:him|her|them) a piece|what (?:he|she|they)"
    r" did|where (?:he|she|they) lives?)\b"
)
_DOXX_WINDOW = 150


def _find_contact(text: str, norm: Normalised) -> Iterator[tuple[int, int, str, float, frozenset[str]]]:
    s = norm.text
    for start in sorted({t.start for t in _triggers(norm, "role:contact")}):
        kw = _CONTACT_KW.match(s, start)
        if kw is None:
            continue
        ostart, oend = norm.span(kw.start(), kw.end())
        gap = _AFTER_KW.match(text, oend, oend + 12)
        pos = gap.end() if gap else oend
        at = _AT.match(text, pos)
        pos = at.end() if at else pos
        phone = _PHONE_VALUE.match(text, pos)
        value = phone or _ADDRESS_VALUE.match(text, pos)
        if value is None:
            continue
        pronoun = s.startswith(("his ", "her ", "their "), kw.start())
        if not pronoun and not _person_before(text, ostart, pronouns=False):
            continue
        yield _contact_hit(text, norm, value, phone is not None, False)
    for t in _triggers(norm, "role:contact-where"):
        # "here's where Officer Kowalski lives: 2214 Walnut St"
        ostart, oend = norm.span(t.start, t.end)
        where = _WHERE_PERSON.search(text, max(0, ostart - 60), ostart)
        if where is None:
            continue
        gap = _WHERE_GAP.match(text, oend, oend + 12)
        value = _ADDRESS_VALUE.match(text, gap.end() if gap else oend)
        if value is not None:
            yield _contact_hit(text, norm, value, False, True)


def _contact_hit(text: str, norm: Normalised, value: re.Match[str], phone: bool,
                 exposed: bool) -> tuple[int, int, str, float, frozenset[str]]:
    """The hit for a person's phone number or home address; ``pii:doxxing`` when the text puts it before the
    public to act on ("here's where he lives", "call him", "pay her a visit", "everyone")."""
    tags = {"pii:personal-phone" if phone else "pii:home-address"}
    lo, hi = norm.from_original(max(0, value.start() - _DOXX_WINDOW)), norm.from_original(value.end() + _DOXX_WINDOW)
    if exposed or _DOXXING.search(norm.text, lo, hi):
        tags.add("pii:doxxing")
    if phone:
        evidence = mask_digits(value.group())
    else:
        number, _, street = value.group().partition(" ")
        evidence = re.sub(r"\d", "*", number) + " " + street[:40]
    return value.start(), value.end(), evidence, 0.85 if "pii:doxxing" in tags else 0.8, frozenset(tags)


PII_CONTACT = _PiiDetector("pii-personal-contact", _find_contact, min_digits=1)
