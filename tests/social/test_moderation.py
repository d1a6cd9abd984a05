"""WDM Prohibited Content ¶10-¶11: one warning, then blocked; the public record of every removal; the
moderators' outcomes; re-ingest changes nothing."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from civicaup.engine.decision import Decision, Finding
from civicaup.errors import InputError
from civicaup.policy.compile import CompiledPack
from civicaup.social import intake as intake_mod
from civicaup.social.commenters import list_commenters
from civicaup.social.moderation import moderate, queue, removals
from civicaup.stores import audit

from .conftest import PARKS, POLICE, comment, davidson, ingest

P = "west-des-moines-ia"
PROFANE = "Fix the damn potholes on Grand Ave already, you useless bunch of assholes. My tire is shredded."
PROFANE_2 = "Still a shit job on the roads, what a joke this city is."
FAIR = "There is a deep pothole on Grand Ave near 35th Street that shredded my tire this morning."
DEFAME = "Officer Drew Peterson is a crook who steals cash from the evidence room, everyone at the station knows it."


def _mods(outs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(o["moderation"]["action"], o["moderation"]["author"]) for o in outs]


def test_first_violation_warns_second_blocks_with_history(store: Engine, wdm: CompiledPack) -> None:
    outs = ingest(store, wdm, comment("c1", PROFANE, at="2026-03-03T10:00"),
                  comment("c2", FAIR, at="2026-03-03T11:00"),
                  comment("c3", PROFANE_2, at="2026-03-04T09:00"),
                  comment("c4", FAIR, at="2026-03-05T09:00"))
    assert _mods(outs) == [("remove", "warned"), ("keep", "ok"), ("remove", "blocked"), ("keep", "blocked")]
    [c] = list_commenters(store, P)
    assert (c.author, c.scope, c.status, c.strikes) == ("facebook:100001", PARKS, "blocked", 2)
    assert [(h["event"], h["item"], h["clause"]) for h in c.history] == [
        ("warned", "c1", "Prohibited Content ¶2"), ("blocked", "c3", "Prohibited Content ¶2")]
    assert [e.action for e in audit.entries(store)].count("social-remove") == 2


def test_warn_then_block_with_real_offensive_tweets(store: Engine, wdm: CompiledPack) -> None:
    rows = davidson(4, 10)
    outs = ingest(store, wdm, *[comment(f"d{i}", text, author="facebook:troll") for i, (_, text) in rows.items()])
    assert _mods(outs) == [("remove", "warned"), ("remove", "blocked")]


def test_ingesting_the_same_id_twice_does_not_warn_twice(store: Engine, wdm: CompiledPack) -> None:
    first = ingest(store, wdm, comment("c1", PROFANE))
    again = ingest(store, wdm, comment("c1", PROFANE), comment("c1", PROFANE))
    assert again == first * 2  # the same answer, as a webhook retry needs
    [c] = list_commenters(store, P)
    assert c.status == "warned" and len(c.history) == 1
    assert len(removals(store, P)) == 1


def test_an_edited_comment_is_checked_again_but_never_counts_twice(store: Engine, wdm: CompiledPack) -> None:
    [a] = ingest(store, wdm, comment("c1", FAIR))
    [b] = ingest(store, wdm, comment("c1", PROFANE))  # edited into a profane one
    [c] = ingest(store, wdm, comment("c1", PROFANE_2))  # edited again
    assert _mods([a, b, c]) == [("keep", "ok"), ("remove", "warned"), ("remove", "warned")]
    assert list_commenters(store, P)[0].strikes == 1


def test_strikes_are_per_account_by_default_or_city_wide(store: Engine, wdm: CompiledPack) -> None:
    per_account = ingest(store, wdm, comment("a1", PROFANE, author="joe"),
                         comment("a2", PROFANE_2, author="joe", account=POLICE))
    assert _mods(per_account) == [("remove", "warned"), ("remove", "warned")]
    city = ingest(store, wdm, comment("b1", PROFANE, author="ann"),
                  comment("b2", PROFANE_2, author="ann", account=POLICE), scope="city")
    assert _mods(city) == [("remove", "warned"), ("remove", "blocked")]


def test_account_may_be_named_by_handle(store: Engine, wdm: CompiledPack) -> None:
    ingest(store, wdm, comment("a1", PROFANE, account="@WDMParks"), comment("a2", PROFANE_2, account="wdmparks"))
    assert [r["account"] for r in removals(store, P)] == [PARKS, PARKS]
    assert list_commenters(store, P)[0].status == "blocked"


def test_chat_is_removed_but_never_counts_against_the_resident(store: Engine, wdm: CompiledPack) -> None:
    outs = ingest(store, wdm, comment("m1", "Hi, can I pay my water bill here?", kind="chat"),
                  comment("m2", "Hello? Anyone there?", kind="chat"))
    assert _mods(outs) == [("remove", "ok"), ("remove", "ok")]
    assert list_commenters(store, P) == []


def test_the_accounts_own_posts_never_count_against_anyone(store: Engine, wdm: CompiledPack) -> None:
    outs = ingest(store, wdm, comment("p1", PROFANE, kind="post", author="WDMParks"),
                  comment("p2", PROFANE_2, kind="reply", author="WDMParks"))
    assert _mods(outs) == [("remove", "ok"), ("remove", "ok")]
    assert list_commenters(store, P) == []


def test_removal_keeps_the_public_record_content_reason_and_clause(store: Engine, wdm: CompiledPack) -> None:
    ingest(store, wdm, comment("c1", PROFANE, at="2026-03-03T10:00"))
    [rec] = removals(store, P)
    assert rec["text"] == PROFANE  # the content, whole
    assert rec["clause"] == "Prohibited Content ¶2" and rec["rule"] == "social-profane"
    assert rec["quote"] == "Profane language or content"
    assert "Prohibited Content ¶2" in rec["reason"] and rec["reason"].startswith("Removed automatically")
    assert rec["account"] == PARKS and rec["department"] == "Parks and Recreation"
    assert rec["posted_at"].startswith("2026-03-03T16:00")  # 10:00 in West Des Moines, stored in UTC
    assert rec["removed_by"] == "civicaup" and rec["restored_at"] is None


def test_moderator_removes_a_flagged_comment_with_the_clause_and_the_author_is_warned(store: Engine,
                                                                                     wdm: CompiledPack) -> None:
    ingest(store, wdm, comment("c1", DEFAME))
    out = moderate(store, wdm, "c1", "remove", "Jamie.Olson@wdm.iowa.gov")
    assert out.moderation == {"action": "remove", "author": "warned"}
    [rec] = removals(store, P)
    assert rec["clause"] == "Prohibited Content ¶6" and rec["removed_by"] == "jamie.olson@wdm.iowa.gov"
    assert rec["reason"].startswith("Removed by moderator jamie.olson@wdm.iowa.gov")
    assert queue(store, P) == []
    assert [e.action for e in audit.entries(store)][-3:] == ["social-moderate-remove", "social-remove", "social-warn"]
    # a re-delivery of the same comment answers what the moderator decided
    assert ingest(store, wdm, comment("c1", DEFAME))[0]["moderation"] == {"action": "remove", "author": "warned"}


def test_moderator_keeps_a_flagged_comment(store: Engine, wdm: CompiledPack) -> None:
    ingest(store, wdm, comment("c1", DEFAME))
    out = moderate(store, wdm, "c1", "keep", "morgan.ellis@wdm.iowa.gov")  # the Department Director
    assert out.moderation == {"action": "keep", "author": "ok"}
    assert queue(store, P) == [] and removals(store, P) == []


def test_moderator_warns_without_removing_and_only_once(store: Engine, wdm: CompiledPack) -> None:
    ingest(store, wdm, comment("c1", DEFAME), comment("c2", DEFAME + " Again."))
    assert moderate(store, wdm, "c1", "warn", "riley.thompson@wdm.iowa.gov").moderation == \
        {"action": "keep", "author": "warned"}  # communications staff may moderate any account
    assert moderate(store, wdm, "c2", "warn", "riley.thompson@wdm.iowa.gov").moderation == \
        {"action": "keep", "author": "ok"}  # already warned: a warning does not block
    assert list_commenters(store, P)[0].strikes == 1


def test_restoring_a_removed_comment_keeps_the_record_and_withdraws_the_strike(store: Engine,
                                                                              wdm: CompiledPack) -> None:
    ingest(store, wdm, comment("c1", PROFANE), comment("c2", PROFANE_2))
    assert list_commenters(store, P)[0].status == "blocked"
    out = moderate(store, wdm, "c1", "keep", "casey.larson@wdm.iowa.gov")  # the City Manager
    assert out.moderation["action"] == "keep"
    c = list_commenters(store, P)[0]
    assert c.status == "warned" and [h["event"] for h in c.history] == ["warned", "blocked", "withdrawn"]
    rec = next(r for r in removals(store, P) if r["id"] == "c1")
    assert rec["restored_by"] == "casey.larson@wdm.iowa.gov" and rec["text"] == PROFANE


@pytest.mark.parametrize("who", ["taylor.nguyen@wdm.iowa.gov", "jordan.miller@wdm.iowa.gov", "stranger@example.com"])
def test_only_moderators_directors_communications_or_the_city_manager_may_moderate(store: Engine, wdm: CompiledPack,
                                                                                   who: str) -> None:
    ingest(store, wdm, comment("c1", DEFAME))
    with pytest.raises(InputError, match="may not moderate"):
        moderate(store, wdm, "c1", "remove", who)
    assert len(queue(store, P)) == 1


def test_the_police_moderator_may_not_moderate_the_parks_page(store: Engine, wdm: CompiledPack) -> None:
    ingest(store, wdm, comment("c1", DEFAME), comment("x1", DEFAME, account=POLICE))
    with pytest.raises(InputError, match="may not moderate"):
        moderate(store, wdm, "c1", "remove", "drew.peterson@wdm.iowa.gov")
    assert moderate(store, wdm, "x1", "keep", "drew.peterson@wdm.iowa.gov").moderation["action"] == "keep"


def test_bad_moderation_requests(store: Engine, wdm: CompiledPack) -> None:
    ingest(store, wdm, comment("p1", FAIR, kind="post", author="WDMParks"))
    with pytest.raises(InputError, match="one of keep, remove, warn"):
        moderate(store, wdm, "p1", "delete", "jamie.olson@wdm.iowa.gov")
    with pytest.raises(InputError, match="no ingested item"):
        moderate(store, wdm, "nope", "keep", "jamie.olson@wdm.iowa.gov")
    with pytest.raises(InputError, match="warnings are for commenters"):
        moderate(store, wdm, "p1", "warn", "jamie.olson@wdm.iowa.gov")


def test_a_held_item_is_hidden_until_a_moderator_decides(store: Engine, wdm: CompiledPack,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """No West Des Moines social rule holds; a city's pack may. Hold = hidden pending review, no strike yet."""
    held = Finding(rule="social-review", clause="X ¶1", category="threat", action="hold", evidence="...",
                   approvers=("communications",), quote="q")
    monkeypatch.setattr(intake_mod, "evaluate",
                        lambda ev, pack: Decision.of([held], policy=pack.id, channel="social"))
    [out] = ingest(store, wdm, comment("h1", "see you at the meeting"))
    assert out["moderation"] == {"action": "remove", "author": "ok"}
    [rec] = removals(store, P)
    assert rec["reason"].startswith("Hidden pending") and rec["removed_by"] == "civicaup (pending review)"
    [q] = queue(store, P)
    assert q["suggestions"][0]["suggest"] == "remove"
    assert moderate(store, wdm, "h1", "remove", "jamie.olson@wdm.iowa.gov").moderation == \
        {"action": "remove", "author": "warned"}
    [rec] = removals(store, P)
    assert rec["removed_by"] == "jamie.olson@wdm.iowa.gov" and "after review" in rec["reason"]
