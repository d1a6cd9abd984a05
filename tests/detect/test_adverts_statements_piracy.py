"""Advertisements, claims of the City's official position, pirated media, links to piracy sites."""

from __future__ import annotations

import pytest

from civicaup.channels import events
from civicaup.engine.checks import post
from civicaup.policy.registry import get_pack

from .helpers import categories, hits, tags


@pytest.mark.parametrize(
    "text",
    [
        "Hail damage? Call Hawkeye Roofing today at 515-555-0142 for a FREE inspection - 20% off this week only!",
        "Call us for a free estimate!",
        "Gutters clogged? Call Ace Gutters now, 15 percent off for new customers.",
        "Visit our showroom this weekend only - 0% financing, lowest prices in town!",
        "Book now and save up to $200 on your first cleaning. Limited time offer.",
        "Text us at (515) 555-0177 for a free quote - discount for seniors",
    ],
)
def test_advertisements_are_commercial_solicitation_and_show_the_phrase(text: str) -> None:
    found = hits(text, "solicitation")
    assert found and {"solicitation:commercial", "solicitation:advertisement"} <= found[0].tags
    assert "0142" not in found[0].evidence or "***" in found[0].evidence  # phone numbers masked


@pytest.mark.parametrize(
    "text",
    [
        "Free flu shots for residents this Saturday, 9 a.m. to noon, at Fire Station 18. No appointment needed.",
        "Call the help desk at 515-222-3600 if your password expired.",
        "Contact us for more information about the discount bus pass program.",
        "Call 1-800-555-0100 for a free, confidential consultation with the EAP.",
        "Is the November 4 City Council meeting open to the public, and will it be streamed?",
        "Please call me today about the permit.",
        "The call for proposals closes Friday; no obligation to respond.",
    ],
)
def test_city_notices_and_plain_calls_are_not_advertisements(text: str) -> None:
    assert "solicitation:advertisement" not in tags(text, "solicitation"), hits(text, "solicitation")


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("The City of West Des Moines officially endorses the Jordan Creek stadium proposal.",
         "statement:endorsement"),
        ("The county has officially opposed the new landfill.", "statement:endorsement"),
        ("I think anyone who opposes it is wrong. This is the City's official position.",
         "statement:official-position"),
        ("That is the official position of the City of Ames.", "statement:official-position"),
    ],
)
def test_claims_of_an_official_position_are_official_statements(text: str, tag: str) -> None:
    assert tag in tags(text, "official-statement")


@pytest.mark.parametrize(
    "text",
    [
        "The City officially opened the library on Monday.",
        "Is this the City's official position?",
        "The council will decide whether the City endorses the plan.",
    ],
)
def test_news_and_questions_are_not_official_statements(text: str) -> None:
    assert "official-statement" not in categories(text)


@pytest.mark.parametrize(
    "text",
    [
        "here's a free full movie download of Inside Out 2 for the kids",
        "grab the cracked 1080p torrent",
        "the torrent for season 3 is up",
        "Inside Out 2 (1080p torrent) for the kids",
        "magnet link for the new album in the group chat",
        "free movie downloads at this site",
    ],
)
def test_pirated_media_offers_are_copyright(text: str) -> None:
    assert "copyright" in categories(text), text


@pytest.mark.parametrize(
    "text",
    [
        "We received a torrent of complaints about the film festival.",
        "Torrential rain delayed the outdoor movie night.",
        "Download the full agenda here.",
        "Movie in the Park: bring a blanket, the film starts at dusk.",
        "The sidewalk is cracked near the movie theater.",
    ],
)
def test_media_talk_and_metaphors_are_not_copyright(text: str) -> None:
    assert "copyright" not in categories(text), hits(text, "copyright")


def test_links_to_sites_in_a_mapped_web_category_give_that_content_signal() -> None:
    assert post.LINKED_CATEGORY_SIGNALS["adult"][0] == "sexual"
    assert post.LINKED_CATEGORY_SIGNALS["piracy"][0] == "copyright"
    pack = get_pack("west-des-moines-ia")
    ev = events.post_event("for the kids: https://thepiratebay.org/description.php?id=1", pack, kind="draft")
    linked = [s for s in post.signals(ev, pack) if "link" in s.tags]
    assert linked and linked[0].category == "copyright" and "thepiratebay.org" in linked[0].evidence
    ev = events.post_event("Spring soccer: https://www.wdm.iowa.gov/government/parks-recreation", pack)
    assert not [s for s in post.signals(ev, pack) if "link" in s.tags]
