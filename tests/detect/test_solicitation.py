"""Solicitation and personal sales: an ask must be present."""

from __future__ import annotations

import pytest

from .helpers import categories, hits, tags


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Vote for Jane Smith for city council on Tuesday", "political"),
        ("Please vote for Bob Lee in the primary", "political"),
        ("Vote yes on Prop 12!", "political"),
        ("Please donate to the Red Cross drive", "charitable"),
        ("Please join us for the blood drive and donate!", "charitable"),
        ("Join us at First Baptist this Sunday and accept Jesus", "religious"),
        ("Buy my Tupperware / Avon / Scentsy — order by Friday", "commercial"),
        ("Use my promo code SAVE20 at checkout", "commercial"),
        ("Please support my business, my Scentsy catalog is attached", "commercial"),
        ("Become a member of the Rotary today", "outside-organization"),
        ("Please sign my petition to recall the board", "political"),
    ],
)
def test_asks_for_votes_money_faith_or_purchases_fire_with_their_kind(text: str, kind: str) -> None:
    assert f"solicitation:{kind}" in tags(text, "solicitation"), text


@pytest.mark.parametrize(
    "text",
    [
        "the council will vote on the budget Tuesday",
        "The council voted for the amendment last week.",
        "the sales tax report is attached",
        "Red Cross shelter opened at the community center",
        "the church parking lot will be closed for paving",
        "SELECT name FROM staff ORDER BY hire_date",
        "Election results will be certified by the clerk on Friday.",
        "I will vote for whoever fixes the potholes.",
        "Please give it a try and let us know.",
        "The campaign contributions report is due to the ethics board.",
    ],
)
def test_reports_and_city_business_are_not_solicitation(text: str) -> None:
    assert categories(text) & {"solicitation", "personal-sale"} == set(), hits(text, "solicitation")


@pytest.mark.parametrize(
    "text",
    [
        "Selling my 2012 Honda Civic, $4,500 OBO",
        "For sale: treadmill, barely used",
        "I'm selling my couch, asking $200",
        "Garage sale Saturday at my place!",
        "Bike $150 or best offer",
    ],
)
def test_personal_sales_fire_and_quote_the_phrase(text: str) -> None:
    found = hits(text, "personal-sale")
    assert found
    assert all(text[h.start : h.end] in h.evidence for h in found)


def test_solicitation_evidence_shows_the_phrase() -> None:
    text = "Vote for Jane Smith for city council on Tuesday"
    found = hits(text, "solicitation")
    assert text[found[0].start : found[0].end] == "Vote for Jane Smith"


@pytest.mark.parametrize(
    "text",
    ["The property was put up for sale by the county.", "Surplus vehicles are not for sale to the public."],
)
def test_sales_reported_in_city_business_are_not_personal_sales(text: str) -> None:
    assert "personal-sale" not in categories(text)
