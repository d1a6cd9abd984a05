"""Links: short links are flagged as hiding their destination; words inside links, e-mail addresses and
domain names are names, not words anyone wrote (the web channel judges sites)."""

from __future__ import annotations

import pytest

from civicaup.detect.links import SHORTENERS, in_link

from .helpers import categories, hits


@pytest.mark.parametrize(
    "text",
    [
        "see smartass.nu and http://smartass.nu/blog",
        "happy blog at http://www.happyretard.com/index.php",
        ".etcetera http://deanloh.org/thots/ DaisyBlossom.Com",
        "write to fuckface@example.com about the invoice",
        "the files are on ftp://ftp.example.org/pub/shit-happens/",
    ],
)
def test_words_inside_links_and_addresses_do_not_fire(text: str) -> None:
    assert not categories(text) & {"profanity", "sexual", "harassment"}


def test_the_same_words_outside_the_link_still_fire() -> None:
    assert "profanity" in categories("(see smartass.nu) you smartass.")
    assert "profanity" in categories("mail fuckface@example.com now, you fuckface")


def test_in_link_looks_only_at_the_token_around_the_span() -> None:
    text = "a " * 5000 + "visit smartass.nu today, smartass"
    i = text.index("smartass")
    assert in_link(text, i, i + 8)
    j = text.rindex("smartass")
    assert not in_link(text, j, j + 8)


def test_each_short_link_is_one_hidden_link_hit_naming_its_host() -> None:
    text = "maps: https://bit.ly/wdmtrails and tinyurl.com/y8trails (same)"
    found = hits(text, "hidden-link")
    assert [h.tags for h in found] == [
        frozenset({"link:shortener", "link-host:bit.ly"}),
        frozenset({"link:shortener", "link-host:tinyurl.com"}),
    ]
    assert all("hides where it goes" in h.evidence for h in found)
    assert text[found[0].start : found[0].end] == "https://bit.ly/wdmtrails"


def test_company_short_domains_name_their_destination_and_are_not_listed() -> None:
    assert {"youtu.be", "amzn.to"}.isdisjoint(SHORTENERS) and {"bit.ly", "t.co", "tinyurl.com"} <= SHORTENERS
    assert "hidden-link" not in categories("watch https://youtu.be/abc123 and https://amzn.to/3xyz")


def test_a_link_is_a_call_to_action_only_for_dating_offers() -> None:
    newsletter = "SAVE 50% on the Computing Encyclopedia! Limited time offer. http://www.example.com/encyclopedia"
    assert "solicitation:advertisement" not in {t for h in hits(newsletter, "solicitation") for t in h.tags}
    dating = "Meet sexy singles tonight http://www.example.com/meet"
    assert "solicitation:dating" in {t for h in hits(dating, "solicitation") for t in h.tags}
