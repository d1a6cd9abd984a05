"""Real messages the detectors used to miss, each with paraphrases written for these tests, and the
innocent near misses that must stay quiet.

Each group is one phenomenon (a threat of violence against a person or place, a protected class
being kept out, selling social-media reach, a dating advertisement behind a short link, a named
person's phone number or home address posted publicly, a named person's health, a masked obscenity);
the first sentence of each group is the reported message, the others say the same thing differently.
"""

from __future__ import annotations

import pytest

from .helpers import categories, hits, tags

THREATS = [
    # reported: a place
    "I am going to shoot up city hall tomorrow",
    "im gonna shoot up the courthouse on monday",
    "Tomorrow I'll bring my rifle and shoot everyone at the council meeting",
    "We're going to burn down the police station",
    "I swear to god I'll blow up the library",
    "Let's bomb the city offices tonight",
    # reported: a person
    "Somebody should put a bullet in that parking officer",
    "Someone needs to put a bullet through that clerk's head",
    "somebody oughta shoot that mayor",
    "I hope somebody stabs that building inspector",
    "I'm going to kill Officer Peterson if he writes me another ticket",
    "That code enforcement guy should be shot",
    "I will beat the shit out of every cop in this town",
    "Someone should shoot Mayor Smith",
]
NOT_THREATS = [
    "the shooting range schedule",
    "We'll shoot the promo video at city hall tomorrow",
    "I'm going to shoot you an email with the details",
    "I'll kill the process and restart the server",
    "Let's knock out this report before lunch",
    "We're going to shoot the council meeting live on Facebook",
    "The photographer will shoot the mayor's portrait on Monday",
    "I'm going to kill it at the presentation",
    "Let's hang the new staff photos in the lobby",
    "We need to attack the city's budget deficit",
    "The suspect said he was going to kill the officer, according to the report",
    "I'm not going to hurt anyone",
    "I'll destroy you at chess",
    "The bill should be killed in committee",
    "The fire department will burn down the old barn in a training exercise",
    "I'm taking my gun to the range this weekend",
]


@pytest.mark.parametrize("text", THREATS)
def test_threats_against_a_person_or_a_place_are_caught(text: str) -> None:
    found = hits(text, "threat")
    assert found, text
    assert any({"threat:person", "threat:place"} & h.tags for h in found)


@pytest.mark.parametrize("text", NOT_THREATS)
def test_violent_words_without_a_target_or_an_intent_are_not_threats(text: str) -> None:
    assert "threat" not in categories(text)


def test_the_threat_evidence_quotes_the_sentence() -> None:
    text = "I am going to shoot up city hall tomorrow"
    (found,) = [h for h in hits(text, "threat") if h.detector == "threat-pattern"]
    assert "shoot up city hall" in found.evidence and "threat:place" in found.tags and "threat:intent" in found.tags
    (found,) = [h for h in hits("Somebody should put a bullet in that parking officer", "threat")]
    assert "incitement" in found.tags and "threat:person" in found.tags


EXCLUSION = [
    "We dont want any more Somalis moving into West Des Moines, they ruin every neighborhood",
    "Too many Mexicans moving in, they're all criminals",
    "Keep the Muslims out of our town",
    "Stop letting Haitians into this city",
    "Somali families are ruining the east side",
    "We don't need any more refugees here, they bring crime",
    "No more Guatemalans in this neighborhood, they trash every street",
]
NOT_EXCLUSION = [
    "Somali community festival this weekend",
    "We don't want immigrants to feel unwelcome at city hall",
    "The Somali families I met were wonderful, they brought food for everyone",
    "we need more women in engineering",
    "We need to keep Somali families informed about the new bus routes",
    "Refugees arrived last week and they are settling into the new apartments",
    "Muslim families are welcome at the open house",
]


@pytest.mark.parametrize("text", EXCLUSION)
def test_keeping_a_protected_class_out_is_harassment_by_national_origin_or_religion(text: str) -> None:
    assert tags(text, "harassment") & {"protected:national-origin", "protected:religion"}, text


@pytest.mark.parametrize("text", NOT_EXCLUSION)
def test_talk_about_a_group_without_disparagement_is_not_harassment(text: str) -> None:
    assert "harassment" not in categories(text)


SOCIAL_REACH = [
    "DM me for cheap Instagram followers, 1000 for $5",
    "Get 10k real TikTok followers today, only $20, link in bio",
    "Selling YouTube views and likes cheap, inbox me",
    "buy instant IG followers $3 per 1k, whatsapp me",
    "Need more subscribers? 500 real YouTube subs for $10, message me",
    "cheapest twitter followers on the market, PM for prices",
]
NOT_SOCIAL_REACH = [
    "Thanks to all our followers for 10k likes this year!",
    "We gained 1000 new followers this month",
    "The library's video got 2,000 views in a week",
    "DM us with your address and we will send the permit form",
    "The library's video got 2,000 views, story time at 3 pm",
]


@pytest.mark.parametrize("text", SOCIAL_REACH)
def test_selling_followers_and_likes_is_commercial_solicitation(text: str) -> None:
    assert {"solicitation:commercial", "solicitation:social-reach"} <= tags(text, "solicitation"), text


@pytest.mark.parametrize("text", NOT_SOCIAL_REACH)
def test_talk_about_followers_is_not_solicitation(text: str) -> None:
    assert "solicitation" not in categories(text)


DATING = [
    "Hot singles near you want to meet tonight bit.ly/3xHotDate",
    "Lonely tonight? Meet sexy singles in West Des Moines 👉 bit.ly/2hotmeet",
    "Local singles in your area are waiting for you: tinyurl.com/y8hotdates",
    "meet beautiful single women tonight, sign up free at cutt.ly/datenow",
    "Find a date tonight! Adult dating, no strings attached: rb.gy/x7k2p",
    "Horny housewives near you want to chat https://bit.ly/3meetnow",
]


@pytest.mark.parametrize("text", DATING)
def test_a_dating_advertisement_behind_a_short_link_is_solicitation_and_the_link_is_flagged(text: str) -> None:
    sol = tags(text, "solicitation")
    assert {"solicitation:commercial", "solicitation:dating", "link:shortener"} <= sol, text
    (link,) = hits(text, "hidden-link")
    assert "link:shortener" in link.tags and "hides where it goes" in link.evidence


def test_a_short_link_alone_is_flagged_as_hiding_its_destination_but_is_not_solicitation() -> None:
    text = "Check out the new bike trail map at https://bit.ly/wdmtrails"
    assert categories(text) == {"hidden-link"}
    assert hits(text, "hidden-link")[0].tags >= {"link:shortener", "link-host:bit.ly"}
    assert "hidden-link" not in categories("Shorten links at bit.ly or tinyurl.com if you must")
    assert "hidden-link" not in categories("the chat.com site and get.comcast.net")


DOXXING = [
    "Officer Mike Jensen's cell phone is 515-555-0187, call him at home",
    "Here's where Officer Dan Kowalski lives: 2214 Walnut St. Go pay him a visit.",
    "That parking officer Janet Reyes? Her number is (515) 555-0199, blow up her phone",
    "Code enforcement guy Tom Baker, home address 815 Ashworth Rd, let him know how you feel",
    "The clerk who denied my permit, Linda Moore, her home is at 3301 Pleasant St - everyone go see her",
    "Employee Sarah Olson lives at 1432 Grand Ave, everyone should tell her what they think",
]
NOT_DOXXING = [
    "call the clinic at 555-0100",
    "Call City Hall at 515-222-3600",
    "Contact Jane Smith at 515-222-3333 with questions",
    "Officer Peterson can be reached at the station, 515-222-5300",
    "The permit office is at 4200 Mills Civic Pkwy",
]


@pytest.mark.parametrize("text", DOXXING)
def test_a_named_persons_phone_or_home_address_posted_publicly_is_doxxing(text: str) -> None:
    found = tags(text, "pii")
    assert "pii:doxxing" in found and found & {"pii:personal-phone", "pii:home-address"}, text
    for h in hits(text, "pii"):
        assert not any(d in h.evidence for d in ("555-0187", "2214", "555-0199", "815 ", "3301", "1432"))


@pytest.mark.parametrize("text", NOT_DOXXING)
def test_work_numbers_and_public_addresses_are_not_personal_information(text: str) -> None:
    assert "pii" not in categories(text)


HEALTH = [
    "The nurse at the clinic told me Officer Peterson is HIV positive",
    "I heard Chief Miller has been diagnosed with cancer",
    "Councilwoman Diaz is being treated for depression, her sister told me",
    "Did you know Mayor Thompson takes medication for bipolar disorder?",
    "Sgt. Alvarez tested positive for hepatitis C last month",
    "Everyone knows Inspector Grant Wilson has diabetes",
]
NOT_HEALTH = [
    "Officer Peterson gave a talk on HIV prevention",
    "Officer Peterson organised the HIV awareness walk",
    "Dr. Patel will present research on diabetes at the library",
    "Cancer screenings are free at the health fair.",
    "The American Cancer Society walk is on Saturday",
]


@pytest.mark.parametrize("text", HEALTH)
def test_a_named_persons_health_condition_is_phi(text: str) -> None:
    assert "phi" in categories(text), text


@pytest.mark.parametrize("text", NOT_HEALTH)
def test_health_topics_next_to_a_name_are_not_phi(text: str) -> None:
    assert "phi" not in categories(text)


MASKED = [
    "f*** this city and everyone who runs it",
    "F*** the parking department",
    "what the f*** is wrong with code enforcement",
    "this is bull****",
    "s*** like this never gets fixed",
    "the mayor is a f***ing joke",
]


@pytest.mark.parametrize("text", MASKED)
def test_masked_obscenities_are_profanity(text: str) -> None:
    assert any(h.confidence >= 0.75 for h in hits(text, "profanity")), text


@pytest.mark.parametrize("text", ["Complaint filed by J*** S*** on 3/4", "rated a 4*** hotel", "Important note** see below"])
def test_masked_names_and_footnote_stars_are_not_profanity(text: str) -> None:
    assert "profanity" not in categories(text)
