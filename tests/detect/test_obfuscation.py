"""Obfuscation does not defeat the lexicons, and innocent words that contain bad ones never fire.

Every masked, spaced, leet, stretched, look-alike or invisible-character form the issue lists is
caught with its category; the 200 words of data/innocent_words.txt ("Scunthorpe", "assessment",
"Essex", "cocktail" ...) give no finding at all, alone, capitalised, in capitals or in a sentence.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from civicaup.detect import scan_text

from .helpers import categories, hits

INNOCENT = [
    line.strip()
    for line in (Path(__file__).parent / "data" / "innocent_words.txt").read_text(encoding="utf-8").splitlines()
    if line.strip() and not line.startswith("#")
]


@pytest.mark.parametrize(
    ("text", "category"),
    [
        # masks
        ("f*ck this", "profanity"),
        ("f**k this", "profanity"),
        ("sh*t happens", "profanity"),
        ("you a**hole", "profanity"),
        ("b*tch please", "profanity"),
        # leetspeak
        ("sh!t happens", "profanity"),
        ("$h1t happens", "profanity"),
        ("you are an a$$hole", "profanity"),
        ("b1tch please", "profanity"),
        # spaced and dotted letters
        ("s h i t happens", "profanity"),
        ("f u c k this", "profanity"),
        ("f.u.c.k this", "profanity"),
        ("s_h_i_t happens", "profanity"),
        # spaced letters next to a one-letter word: "a" and "I" before, "u" after
        ("you are a f u c k i n g moron", "profanity"),
        ("what a b i t c h", "profanity"),
        ("I s h i t you not", "profanity"),
        ("f u c k u", "profanity"),
        # misspellings written to get past a filter
        ("phuck this", "profanity"),
        ("fuk you", "profanity"),
        ("fck off", "profanity"),
        ("fvck this", "profanity"),
        ("he is a fcuk1ng liar", "profanity"),
        ("fking idiot", "profanity"),
        ("you mofo", "profanity"),
        ("wtaf is this", "profanity"),
        # stretched letters
        ("fuuuuck this", "profanity"),
        ("shiiiiit", "profanity"),
        # look-alike and invisible characters
        ("fu\u0441k this", "profanity"),  # Cyrillic es for c
        ("\u0455hit happens", "profanity"),  # Cyrillic dze for s
        ("sh\u200bit happens", "profanity"),  # zero-width space
        ("fu\u00adck this", "profanity"),  # soft hyphen
        ("f\u057dck this", "profanity"),  # Armenian seh for u
        ("\uff46\uff55\uff43\uff4b this", "profanity"),  # fullwidth (NFKC)
        ("F\u0336U\u0336C\u0336K\u0336 this", "profanity"),  # combining strike-through
        # slurs hidden the same ways keep their class
        ("n1gger", "harassment"),
        ("f@ggot", "harassment"),
        ("k.i.k.e", "harassment"),
    ],
)
def test_each_obfuscated_form_is_caught(text: str, category: str) -> None:
    assert category in categories(text), scan_text(text)


def test_the_evidence_of_an_obfuscated_word_points_at_the_original_characters() -> None:
    text = "well s h i t, again"
    (h,) = hits(text, "profanity")
    assert text[h.start : h.end] == "s h i t"


def test_the_innocent_word_list_has_200_distinct_words() -> None:
    assert len(INNOCENT) == 200
    assert len({w.lower() for w in INNOCENT}) == 200


@pytest.mark.parametrize("word", INNOCENT)
def test_innocent_words_containing_bad_ones_give_no_finding(word: str) -> None:
    for form in (word, word.capitalize(), word.upper(), f"The {word} was discussed at the meeting."):
        assert scan_text(form) == [], (form, scan_text(form))


def test_all_200_innocent_words_in_one_text_give_no_finding() -> None:
    assert scan_text(", ".join(INNOCENT)) == []


def test_spaced_letters_keep_the_one_letter_word_beside_them_out_of_the_evidence() -> None:
    text = "you are a f u c k i n g moron"
    spans = {text[h.start : h.end] for h in hits(text, "profanity")}
    assert spans == {text}  # the name-calling phrase, which holds the repaired word
    (h,) = hits("what a b i t c h", "profanity")
    assert "what a b i t c h"[h.start : h.end] == "b i t c h"


def test_spaced_single_letters_that_spell_no_word_stay_as_they_are() -> None:
    for text in ("options a b c d apply", "I a m here", "Plan A s a p"):
        assert scan_text(text) == [], text


def test_the_clothing_brand_in_capitals_is_not_a_misspelt_obscenity() -> None:
    assert scan_text("FCUK shirt on sale") == []
    assert "profanity" in categories("Fcuk off")


def test_a_phrase_is_never_milder_than_the_obscenity_inside_it() -> None:
    # "you fucking idiot" is a name-calling phrase (0.75) that holds "fucking" (0.85): the longer match
    # wins the span and takes the higher severity, so a pack's line between the two cannot let it through
    alone = max(h.confidence for h in hits("fucking", "profanity"))
    for text in ("you fucking idiot", "you f*cking idiot", "you're a fucking moron"):
        (h,) = hits(text, "profanity")
        assert (h.start, h.end) == (0, len(text))
        assert h.confidence == alone
        assert {"obscenity", "name-calling"} <= h.tags
