"""Profanity, sexual content, slurs and threats from the word lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from civicaup.detect import data, scan_all, scan_text

from .helpers import categories, tags

DATA = Path(data.__file__).parent / "data"


def test_every_lexicon_file_parses_and_is_not_empty() -> None:
    for name in data.lexicon_names():
        assert data.load(name), name


def test_the_slur_list_uses_term_tab_class_lines_with_known_classes() -> None:
    classes = {
        "race",
        "national-origin",
        "color",
        "pregnancy",
        "ethnicity",
        "sex",
        "sexual-orientation",
        "age",
        "ancestry",
        "disability",
        "religion",
        "political-belief",
    }
    for entry in data.load("slurs"):
        if not entry.exception:
            named = set(entry.tags) - {"slur:ambiguous"}  # the one marker besides the classes
            assert named and named <= classes, entry


def test_files_that_borrow_from_ldnoobw_credit_it_under_cc_by_4() -> None:
    for name in ("profanity", "sexual", "slurs"):
        header = (DATA / f"{name}.txt").read_text(encoding="utf-8")[:800]
        assert "LDNOOBW" in header and "CC BY 4.0" in header


def test_brace_alternatives_expand_in_file_order() -> None:
    assert data.expand("fuck{,s,ing}") == ["fuck", "fucks", "fucking"]
    assert data.expand("{i will,i'll} kill {you,him}") == [
        "i will kill you",
        "i will kill him",
        "i'll kill you",
        "i'll kill him",
    ]


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("What the fuck is this", "obscenity"),
        ("this is bullshit", "obscenity"),
        ("he is an asshole", "vulgarity"),
        ("you idiot", "name-calling"),
        ("moron", "name-calling"),
        ("You're such an idiot, Dave", "name-calling"),
        ("stop being a bitch", "vulgarity"),
        ("piece of shit", "obscenity"),
        ("you are a disgrace", "name-calling"),
        ("what a piece of garbage", "name-calling"),
        ("you stupid cow", "name-calling"),
        ("You're a liar and a coward", "name-calling"),
        ("go to hell", "name-calling"),
    ],
)
def test_profanity_fires_with_its_kind(text: str, tag: str) -> None:
    assert tag in tags(text, "profanity")


@pytest.mark.parametrize("text", ["There is a piece of trash in the park by the fountain.",
                                  "Will you go to Hell's Kitchen for the conference?",
                                  "We would go to hell and back for this team.",
                                  "The traitor in the movie was the mayor's aide."])
def test_the_same_words_in_ordinary_talk_are_not_name_calling(text: str) -> None:
    assert scan_text(text) == [], scan_text(text)


def test_name_calling_without_a_protected_class_is_profanity_not_harassment() -> None:
    for text in ("you idiot", "what a moron", "you're a loser"):
        assert categories(text) == {"profanity"}, text


@pytest.mark.parametrize(
    "text",
    [
        "send nudes",
        "she sent me a dick pic",
        "want to see my big tits",
        "suck my cock",
        "watch porn at work",
        "blowjob",
    ],
)
def test_sexually_explicit_messages_fire_as_sexual(text: str) -> None:
    assert "sexual" in categories(text)


@pytest.mark.parametrize(
    "text",
    [
        "The sexual harassment training is mandatory.",
        "Discrimination based on sex is prohibited.",
        "Breast cancer awareness walk on Saturday.",
        "The nude-colored shoes and the sex of the applicant are not relevant.",
    ],
)
def test_policy_and_health_wording_is_not_sexual(text: str) -> None:
    assert "sexual" not in categories(text)


@pytest.mark.parametrize(
    ("text", "klass"),
    [
        ("he is a nigger", "race"),
        ("stupid faggot", "sexual-orientation"),
        ("those wetbacks", "national-origin"),
        ("what a retard", "disability"),
        ("dirty kike", "religion"),
        ("shut up tranny", "sex"),
        ("she's a raghead", "ethnicity"),
    ],
)
def test_a_slur_is_harassment_tagged_with_the_class_it_targets(text: str, klass: str) -> None:
    found = [h for h in scan_all(text) if h.category == "harassment"]
    assert found and f"protected:{klass}" in found[0].tags and "slur" in found[0].tags
    # by default a weak slur the classifier does not confirm (a casual insult) counts as profanity instead
    assert categories(text) & {"harassment", "profanity"}


def test_acronyms_and_names_that_spell_slurs_do_not_fire() -> None:
    assert "harassment" not in categories("-- WOP, War Games quote; JAP parts; Mr. Coon called")


@pytest.mark.parametrize(
    "text",
    [
        "I will kill you",
        "I'll kill you tomorrow",
        "i'm gonna shoot you",
        "You're dead.",
        "you're dead meat",
        "watch your back",
        "I know where you live",
        "I will find where you live",
        "I'll burn your house down",
        "I hope your family dies",
        "I will make you pay",
        "we'll find you and your family",
        "I'll find you and slit your throat",
        "hands up or I'll shoot",
        "I will bomb the office",
        "somebody should shoot the mayor",
        "kill yourself",
        "i'll beat the shit out of you",
    ],
)
def test_threats_against_a_person_fire(text: str) -> None:
    assert "threat" in categories(text)


@pytest.mark.parametrize(
    "text",
    [
        "Kill the process and restart the server",
        "I'll shoot you an email tomorrow",
        "I'll shoot you a note when it's ready",
        "you're dead wrong about the budget",
        "Why wait until you're dead to donate?",
        "This heat will kill the grass",
        "we'll kill two birds with one stone",
        "the bomb squad cleared the building",
        "You'll be paying for this with a purchase order",
        "You can shoot yourself in the foot with C",
        "We will make you pay the invoice by Friday",
        "We'll make you pay online, it is quicker",
    ],
)
def test_violent_words_without_a_person_target_do_not_fire(text: str) -> None:
    assert "threat" not in categories(text)
