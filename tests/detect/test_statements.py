"""Official statements, disclaimers, defamation, malware and the police-report context."""

from __future__ import annotations

import pytest

from civicaup.detect import has_disclaimer
from civicaup.detect.malware import EICAR

from .helpers import categories, hits, tags


@pytest.mark.parametrize(
    "text",
    [
        "On behalf of the City, I believe the stadium deal is a mistake.",
        "Speaking for the City of Springfield, I think the new law is unfair.",
        "The City's official position is that the governor is wrong.",
        "I speak for the city when I say this ruling is a disgrace.",
    ],
)
def test_personal_opinion_presented_as_the_citys_fires(text: str) -> None:
    found = hits(text, "official-statement")
    assert found and "disclaimer:absent" in found[0].tags


@pytest.mark.parametrize(
    "text",
    [
        "I believe the stadium deal is a mistake.",
        "The City Council approved the stadium deal on Tuesday.",
        "I am not speaking for the city, but I think the law is unfair.",
        "The city supports small businesses with grants.",
    ],
)
def test_plain_opinions_and_city_news_are_not_official_statements(text: str) -> None:
    assert "official-statement" not in categories(text)


def test_a_disclaimer_is_recognised_and_tagged() -> None:
    text = "On behalf of the City, I believe this is wrong. Opinions are my own and do not reflect those of the City."
    assert has_disclaimer(text)
    assert "disclaimer:present" in tags(text, "official-statement")
    assert has_disclaimer("Views expressed here are my own.")
    assert has_disclaimer("These comments do not necessarily reflect the views of the City of Kirkwood.")
    assert not has_disclaimer("The City reflects on its history.")


@pytest.mark.parametrize(
    "text",
    [
        "the mayor is a crook",
        "Councilman Davis takes bribes",
        "Director Smith stole money from the fund",
        "the city manager is corrupt",
    ],
)
def test_accusations_of_crime_against_officials_are_flagged_with_low_confidence(text: str) -> None:
    found = hits(text, "defamation")
    assert found and all(h.confidence <= 0.5 for h in found)


@pytest.mark.parametrize(
    "text",
    [
        "the file is corrupt",
        "Her performance stole the show",
        "the database was corrupt after the crash",
        "He is a fraud analyst",
    ],
)
def test_technical_and_idiomatic_uses_are_not_defamation(text: str) -> None:
    assert "defamation" not in categories(text)


def test_the_eicar_test_string_is_malware() -> None:
    text = f"attachment body: {EICAR}\n"
    found = hits(text, "malware")
    assert len(found) == 1 and found[0].confidence == 1.0
    assert text[found[0].start : found[0].end] == EICAR


@pytest.mark.parametrize(
    "text",
    [
        "Incident report 2024-1187: the suspect stated he would kill her.",
        "Case number 55-1234. Witness said the man yelled racial slurs.",
        "According to the complainant, the driver shouted at him.",
        "The responding officer quoted the subject as saying 'I'll kill you'.",
    ],
)
def test_police_report_language_is_detected_as_context(text: str) -> None:
    assert "police-report" in categories(text)


def test_the_police_context_does_not_hide_what_is_quoted() -> None:
    text = 'Incident report: the suspect stated "I will kill you".'
    assert {"police-report", "threat"} <= categories(text)


@pytest.mark.parametrize(
    "text",
    [
        "Our chief financial officer will present the budget.",
        "The report is attached.",
        "Please file a case with IT support.",
    ],
)
def test_business_language_is_not_a_police_context(text: str) -> None:
    assert "police-report" not in categories(text)
