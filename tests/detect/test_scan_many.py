"""scan_many, the batched path, gives every text exactly what scan_text gives it alone.

scan_text runs the detectors on one text; scan_many normalises, matches and scores a whole batch
at once (texts joined with a separator, hits split back by offsets, one classifier pass). Every
field of every hit must agree: category, detector, offsets, evidence excerpt, confidence, tags.
The texts: a seeded sample of 2,000 Davidson et al. tweets (both parts), every obfuscated form and
innocent word of the obfuscation tests (alone, capitalised, in capitals, in a sentence), and texts
made to probe the batch's seams (separators, NULs, empty texts, non-ASCII, a long mail body).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from civicaup.detect import Hit, Setting, davidson, scan_all, scan_all_many, scan_many, scan_text

from . import test_normalise, test_obfuscation

SEAMS = [
    "", " ", "\x00", "a\x00b", "fuck\x00you", "\x00shit\x00", "you\x00 bitch", "\n", "!!!", "@", "*", "f", "s h",
    "h i t", "s h i t", "shit ", " shit", "fuck", "FUCK", "f*ck", "f***", "J*** S*** f***", "a$$", "$h1t($x)",
    "ass-", "-ass", "fuuuu", "uuuck", "shiiit", "ＦＵＣＫ", "𝐟𝐮𝐜𝐤", "ѕhіt", "f\u200buck", "sh\u00adit",
    "all mexicans are lazy", "mexicans", "are lazy", "lol my nigga", "nigga", "those muslims with their damn noise",
    "SSN 123-45-6789", "123-45-", "6789", "card 4111 1111 1111 1111", "４１１１ １１１１ １１１１ １１１１",
    "Photos at bit.ly/3xCivic", "bit.ly", "/3xCivic", "smartass.nu", "x@smartass.nu", "I will kill you.",
    "Selling my 2012 Honda Civic, $4,500 OBO.", "The patient was diagnosed with diabetes.", "Privileged and confidential.",
    "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*", "EICAR-STANDARD-ANTIVIRUS-TEST-FILE",
    "   fuck   you   ", "f . u . c . k", "f.u.c.k", "s_h_i_t", "\ud800 surrogate fuck", "ß straße bitch", "İstanbul",
]


def _obfuscated() -> list[str]:
    forms = [o for o, _ in test_normalise.OBFUSCATIONS]
    for mark in getattr(test_obfuscation.test_each_obfuscated_form_is_caught, "pytestmark", []):
        if mark.name == "parametrize":
            forms += [text for text, _category in mark.args[1]]
    return forms + [f"well {o} then" for o in forms]


def _innocent() -> list[str]:
    words = list(dict.fromkeys(test_obfuscation.INNOCENT + list(test_normalise.INNOCENT_WORDS)))
    out: list[str] = []
    for w in words:
        out += [w, w.capitalize(), w.upper(), f"We met in {w} on Tuesday to discuss the budget."]
    out.append(" ".join(test_obfuscation.INNOCENT))
    return out


def _tweets(n: int = 2000, seed: int = 20261126) -> list[str]:
    if not davidson.DAVIDSON.exists():
        return []
    rows = list(davidson.read())
    return [r.text for r in random.Random(seed).sample(rows, n)]


def _first_difference(texts: list[str], batched: list[list[Hit]], alone: list[list[Hit]]) -> str:
    for text, a, b in zip(texts, batched, alone, strict=True):
        if a != b:
            return f"{text!r}:\n  scan_many: {a}\n  scan_text: {b}"
    return ""


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    texts = _tweets() + _obfuscated() + _innocent() + SEAMS
    mail = Path(__file__).with_name("test_api.py").read_text(encoding="utf-8")  # a long text with every kind of line
    texts.append(mail)
    random.Random(5).shuffle(texts)
    return texts


def test_the_corpus_is_what_the_issue_asks_for(corpus: list[str]) -> None:
    if davidson.DAVIDSON.exists():
        assert len(corpus) > 2000 + 150 + 800
    assert len(_obfuscated()) >= 50 and len(_innocent()) >= 800


def test_scan_many_equals_scan_text_on_every_text(corpus: list[str]) -> None:
    batched = scan_many(corpus)
    alone = [scan_text(t) for t in corpus]
    assert len(batched) == len(corpus)
    assert batched == alone, _first_difference(corpus, batched, alone)
    assert sum(map(len, alone)) > 1000  # the sample is not trivially clean


def test_every_field_of_every_hit_agrees(corpus: list[str]) -> None:
    fields = ("category", "detector", "start", "end", "evidence", "confidence", "tags")
    for text, many, one in zip(corpus, scan_many(corpus), (scan_text(t) for t in corpus), strict=True):
        assert [tuple(getattr(h, f) for f in fields) for h in many] == [
            tuple(getattr(h, f) for f in fields) for h in one], text


def test_any_batch_size_and_order_gives_the_same(corpus: list[str]) -> None:
    texts = corpus[:600]
    alone = [scan_text(t) for t in texts]
    for size in (1, 2, 7, 64, 599):
        got: list[list[Hit]] = []
        for i in range(0, len(texts), size):
            got += scan_many(texts[i:i + size])
        assert got == alone, (size, _first_difference(texts, got, alone))
    order = list(range(len(texts)))
    random.Random(3).shuffle(order)
    assert scan_many([texts[i] for i in order]) == [alone[i] for i in order]


def test_unrefined_hits_and_settings_agree_too(corpus: list[str]) -> None:
    texts = corpus[:800]
    assert scan_all_many(texts, refine=False) == [scan_all(t, refine=False) for t in texts]
    loose = {"harassment": Setting(min_confidence=0.0), "profanity": Setting(min_confidence=0.9)}
    assert scan_many(texts, detection=loose) == [scan_text(t, detection=loose) for t in texts]
    assert scan_many(texts, where="post") == [scan_text(t, where="post") for t in texts]
