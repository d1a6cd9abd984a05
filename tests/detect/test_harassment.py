"""Harassment: a protected class being disparaged (patterns; slurs are in test_lexicons)."""

from __future__ import annotations

import pytest

from .helpers import categories, hits, tags


@pytest.mark.parametrize(
    ("text", "klass"),
    [
        ("all mexicans are lazy", "national-origin"),
        ("Muslims are terrorists", "religion"),
        ("women are too emotional to lead", "sex"),
        ("gays are disgusting", "sexual-orientation"),
        ("old people are useless", "age"),
        ("disabled people are a burden", "disability"),
        ("go back to your country", "national-origin"),
        ("Go back where you came from!", "national-origin"),
        ("women shouldn't be allowed to vote", "sex"),
        ("blacks shouldn't be allowed in here", "race"),
        ("pregnant women shouldn't be hired", "pregnancy"),
        ("I hate jews", "religion"),
        ("no mexicans allowed", "national-origin"),
        ("immigrants should be deported", "national-origin"),
        ("immigrants should all just be deported", "national-origin"),
        ("gays should be stoned", "sexual-orientation"),
        ("islam is a disease", "religion"),
        ("old people should just die", "age"),
        ("she belongs in the kitchen", "sex"),
        ("liberals are idiots", "political-belief"),
    ],
)
def test_a_protected_class_next_to_a_disparaging_pattern_is_harassment(text: str, klass: str) -> None:
    assert f"protected:{klass}" in tags(text, "harassment"), text


@pytest.mark.parametrize(
    "text",
    [
        "Women's history month starts Monday.",
        "The seniors lunch is at noon; old people are welcome.",
        "Immigrants are eligible for the program.",
        "Muslims and Christians met at the interfaith breakfast.",
        "Disabled people are entitled to reasonable accommodation.",
        "Employees shouldn't be allowed to park in the fire lane.",
        "The staff are lazy on Fridays, says the manager.",
        "Go back to your desk and finish the report.",
        "Jews run the deli on Main Street.",
        "Islam is one of the world's major religions.",
        "The Holocaust museum trip is Friday.",
        "The eggs should be beaten first.",
    ],
)
def test_protected_classes_mentioned_neutrally_are_not_harassment(text: str) -> None:
    assert "harassment" not in categories(text)


@pytest.mark.parametrize(("text", "klass"), [
    ("kill all jews", "religion"),
    ("gas the jews", "religion"),
    ("The Jews control the media", "religion"),
    ("the holocaust never happened", "ethnicity"),
])
def test_stand_alone_phrases_that_hold_a_group_word_fire_on_their_own(text: str, klass: str) -> None:
    # the phrase holds "jews", a group word that alone needs a disparaging pattern; the phrase does not
    (h,) = hits(text, "harassment")
    assert (h.start, h.end) == (0, len(text)) and f"protected:{klass}" in h.tags


def test_harassment_evidence_covers_the_group_and_the_pattern() -> None:
    text = "Honestly, all mexicans are lazy and I said so."
    found = hits(text, "harassment")
    assert found
    assert text[found[0].start : found[0].end] == "mexicans are lazy"
    assert "mexicans are lazy" in found[0].evidence
