"""Personal information: SSNs, payment cards, bank accounts, driver's licences.

Numbers are read from the original text; keywords ("SSN", "account number",
"driver's license") are found in the normalised text. Shapes alone are weak
evidence, so: a bare nine-digit number is an SSN only after an SSN keyword;
cards need a real IIN range, a plausible length and grouping, and the Luhn check;
bank accounts and licences need their keyword right before the number. Evidence
is the masked number only.
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
    luhn_ok,
    plausible_card_groups,
    shape_starts,
    ssn_ok,
)

_SSN = re.compile(r"\d(?<![\d.-]\d)\d\d([- ])(\d\d)\1(\d{4})(?![\d-]|[.,]\d)")
_NINE = re.compile(r"\d(?<![\d.-]\d)\d{8}(?![\d-]|[.,]\d)")
_CARD = re.compile(r"\d(?<![\d.-]\d)(?:[ -]?\d){12,18}(?![\d-]|[.,]\d)")
_SSN_KW = re.compile(r"\b(?:ssn|ssns|ss ?#|ss no|social security|soc sec|social sec)\b|\bssn")
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
)
_AFTER_KW = re.compile(r"[\s:#.=\-]*(?:(?:is|was|of)\s+)?")
_ACCOUNT_VALUE = re.compile(r"\d(?:[ -]?\d){5,16}(?![\d-])")
_DL_VALUE = re.compile(r"(?=[A-Za-z0-9-]*\d(?:-?\d){3})[A-Za-z]{0,3}-?\d(?:-?[0-9A-Za-z]){3,15}\b")
_NEAR = 60
_SEPARATOR = re.compile(r"[ -]")


_TRIGGERS = [
    "{ssn,ssns,ss#,ss #,ss no,social security,soc sec,social sec}\trole:ssn",
    "{account,acct,a/c,checking,savings,bank}\trole:account",
    "{routing,aba,rtn,transit}\trole:routing",
    "{driver's,drivers,driver,driving,dl,dln}\trole:licence",
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
        self, name: str, finder: Callable[[str, Normalised], Iterator[tuple[int, int, str, float, frozenset[str]]]]
    ) -> None:
        self.name = name
        self._finder = finder

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
    for start, end, value in _values_after_keywords(text, norm, "role:routing", _ROUTING_KW, _ACCOUNT_VALUE):
        digits = re.sub(r"\D", "", value)
        if aba_ok(digits):
            yield start, end, "*****" + digits[-4:], 0.9, frozenset({"pii:bank-account", "bank:routing"})
    for start, end, value in _values_after_keywords(text, norm, "role:account", _ACCOUNT_KW, _ACCOUNT_VALUE):
        digits = re.sub(r"\D", "", value)
        if len(set(digits)) == 1:
            continue
        conf = 0.9 if _keyword_near(text, _BANK_CONTEXT, start, end, 100) else 0.7
        yield start, end, "*" * max(4, len(digits) - 4) + digits[-4:], conf, frozenset({"pii:bank-account"})


def _find_licence(text: str, norm: Normalised) -> Iterator[tuple[int, int, str, float, frozenset[str]]]:
    for start, end, value in _values_after_keywords(text, norm, "role:licence", _DL_KW, _DL_VALUE):
        if sum(c.isdigit() for c in value) < 4 or sum(c.isalpha() for c in value) > 3:
            continue
        yield start, end, mask_digits(value), 0.85, frozenset({"pii:drivers-licence"})


PII_SSN = _PiiDetector("pii-ssn", _find_ssn)
PII_CARD = _PiiDetector("pii-card", _find_card)
PII_BANK = _PiiDetector("pii-bank-account", _find_bank)
PII_LICENCE = _PiiDetector("pii-drivers-licence", _find_licence)
