"""Checksums and number-range rules used by the PII detectors."""

from __future__ import annotations

import re


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check used by payment cards."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def aba_ok(digits: str) -> bool:
    """The ABA routing-number checksum (3-7-1 weights) and Federal Reserve prefix."""
    if len(digits) != 9 or not digits.isdigit():
        return False
    prefix = int(digits[:2])
    if not (prefix <= 12 or 21 <= prefix <= 32 or 61 <= prefix <= 72 or prefix == 80):
        return False
    if digits == "000000000":
        return False
    d = [int(c) for c in digits]
    return (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])) % 10 == 0


#: The number the SSA voided after it was printed on a wallet insert (Woolworth, 1938) and then used by
#: thousands of people: it is an example, not anyone's. (219-09-9999 from a 1940 pamphlet is also void,
#: but civicaup's scenarios use it as a realistic-looking SSN, so it is treated as one.)
VOIDED_SSNS = frozenset({"078051120"})


def ssn_ok(area: str, group: str, serial: str) -> bool:
    """The SSA's rules for Social Security Numbers: no area 000, 666 or 900-999 (never assigned,
    also after the 2011 randomisation), no group 00, no serial 0000, and not a voided number."""
    return not (
        area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000"
        or area + group + serial in VOIDED_SSNS
    )


# (prefix range low, high, prefix length, allowed lengths, brand)
_IIN: tuple[tuple[int, int, int, frozenset[int], str], ...] = (
    (4, 4, 1, frozenset({13, 16, 19}), "visa"),
    (51, 55, 2, frozenset({16}), "mastercard"),
    (2221, 2720, 4, frozenset({16}), "mastercard"),
    (34, 34, 2, frozenset({15}), "amex"),
    (37, 37, 2, frozenset({15}), "amex"),
    (6011, 6011, 4, frozenset(range(16, 20)), "discover"),
    (644, 649, 3, frozenset(range(16, 20)), "discover"),
    (65, 65, 2, frozenset(range(16, 20)), "discover"),
    (622126, 622925, 6, frozenset(range(16, 20)), "discover"),
    (3528, 3589, 4, frozenset(range(16, 20)), "jcb"),
    (300, 305, 3, frozenset({14, 16}), "diners"),
    (36, 36, 2, frozenset({14, 16}), "diners"),
    (38, 39, 2, frozenset({14, 16}), "diners"),
)


def card_brand(digits: str) -> str | None:
    """The card brand whose IIN range and length fit ``digits``, else None."""
    for low, high, width, lengths, brand in _IIN:
        if len(digits) in lengths and low <= int(digits[:width]) <= high:
            return brand
    return None


def plausible_card_groups(groups: list[int]) -> bool:
    """Digit-group lengths as cards are printed: 4-4-4-4(-3), 4-6-5, 4-6-4, 4-4-4-1..4."""
    if len(groups) == 1:
        return True
    if groups in ([4, 6, 5], [4, 6, 4]):
        return True
    return all(g == 4 for g in groups[:-1]) and 1 <= groups[-1] <= 4 and len(groups) >= 4


# Digit shapes: a bytes mask of the text (digit -> d; space, -, ., , kept; else x)
# lets the number patterns be found with bytes.find instead of a regex pass.
_DIGIT_TABLE = bytes.maketrans(
    bytes(range(256)),
    bytes(ord("d") if chr(b).isdigit() else b if chr(b) in " -.," else ord("x") for b in range(256)),
)
SSN_SHAPES: tuple[bytes, ...] = (b"ddd-dd-dddd", b"ddd dd dddd")
NINE_SHAPES: tuple[bytes, ...] = (b"ddddddddd",)
CARD_SHAPES: tuple[bytes, ...] = (
    b"ddddddddddddd",
    b"dddd dddd dddd d",
    b"dddd-dddd-dddd-d",
    b"dddd dddddd dddd",
    b"dddd-dddddd-dddd",
)


def digit_mask(text: str) -> bytes:
    """One byte per character of ``text``: d for an ASCII digit, the separators, else x."""
    return text.encode("ascii", "replace").translate(_DIGIT_TABLE)


def shape_starts(mask: bytes, shapes: tuple[bytes, ...]) -> list[int]:
    """Offsets where one of ``shapes`` starts a number (not preceded by a digit, - or .)."""
    starts: set[int] = set()
    for shape in shapes:
        i = mask.find(shape)
        while i != -1:
            if i == 0 or mask[i - 1] not in b"d-.":
                starts.add(i)
            i = mask.find(shape, i + 1)
    return sorted(starts)


# Driver's licence number formats (after the AAMVA / state DMV descriptions), on the number with its
# separators removed and letters upper-cased.
DL_FORMATS: dict[str, re.Pattern[str]] = {
    "MO": re.compile(r"[A-Z]\d{5,9}|[A-Z]\d{6}R|\d{8}[A-Z]{2}|\d{9}[A-Z]?"),
    "KY": re.compile(r"[A-Z]\d{8,9}|\d{9}"),
    "IA": re.compile(r"\d{9}|\d{3}[A-Z]{2}\d{4}"),
    "MN": re.compile(r"[A-Z]\d{12}"),
}


def dl_states(value: str) -> list[str]:
    """The states (of MO, KY, IA, MN) whose licence format ``value`` fits."""
    v = value.replace("-", "").replace(" ", "").upper()
    return [state for state, rx in DL_FORMATS.items() if rx.fullmatch(v)]
