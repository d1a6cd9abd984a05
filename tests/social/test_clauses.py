"""West Des Moines, Prohibited Content ¶2-¶9, item by item: comments on the Parks and Recreation Facebook page
go through `social ingest`; a prohibited one is removed with a retained record naming its clause, a fair one
stays up. Profane and hateful comments are real tweets from Davidson et al. (ICWSM 2017, MIT licence), picked
by row index; the others are written like the comments a city page gets."""
from __future__ import annotations

import pytest
from sqlalchemy import Engine

from civicaup.policy.compile import CompiledPack
from civicaup.social.moderation import queue, removals

from .conftest import PARKS, comment, davidson, ingest

PROFANE_ROWS = (4, 10, 29)  # class 1, offensive language
HATE_ROWS = (466, 591, 598)  # class 0, hate speech against a protected class
NEITHER_ROWS = (0, 434, 548, 571)  # class 2, neither


def _clauses(line: dict) -> set[str]:
    return {f["clause"] for f in line["decision"]["findings"]}


def _record(store: Engine, item_id: str) -> dict:
    [rec] = [r for r in removals(store, "west-des-moines-ia") if r["id"] == item_id]
    return rec


@pytest.mark.parametrize("row", PROFANE_ROWS)
def test_profane_comment_from_davidson_is_removed_under_2(store: Engine, wdm: CompiledPack, row: int) -> None:
    label, text = davidson(row)[row]
    assert label == "1"
    [out] = ingest(store, wdm, comment(f"d{row}", text, author=f"facebook:{row}"))
    assert out["moderation"]["action"] == "remove"
    assert "Prohibited Content ¶2" in _clauses(out)
    rec = _record(store, f"d{row}")
    assert rec["text"] == text and rec["clause"] == out["decision"]["findings"][0]["clause"]


@pytest.mark.parametrize("row", HATE_ROWS)
def test_hateful_comment_from_davidson_is_removed_under_3(store: Engine, wdm: CompiledPack, row: int) -> None:
    label, text = davidson(row)[row]
    assert label == "0"
    [out] = ingest(store, wdm, comment(f"d{row}", text, author=f"facebook:{row}"))
    assert out["moderation"]["action"] == "remove"
    assert "Prohibited Content ¶3" in _clauses(out)
    assert _record(store, f"d{row}")["text"] == text


def test_davidson_comments_labelled_neither_stay_up(store: Engine, wdm: CompiledPack) -> None:
    rows = davidson(*NEITHER_ROWS)
    assert {label for label, _ in rows.values()} == {"2"}
    outs = ingest(store, wdm, *[comment(f"d{i}", text, author=f"facebook:{i}") for i, (_, text) in rows.items()])
    assert [o["moderation"] for o in outs] == [{"action": "keep", "author": "ok"}] * len(rows)
    assert removals(store, "west-des-moines-ia") == []


CASES = [
    # (clause, removed comment, a fair comment on the same subject)
    ("Prohibited Content ¶3",
     "Why is the city hiring Mexicans for the parks crew? Mexicans are lazy and should go back to their country.",
     "Loved the Hispanic Heritage Month festival at Valley Junction! The mariachi band and the tamales were fantastic."),
    ("Prohibited Content ¶4",
     "lol check this out https://www.pornhub.com/view_video.php?viewkey=ph5f1a2b3c",
     "Spring soccer registration is open here: https://www.wdm.iowa.gov/government/parks-recreation"),
    ("Prohibited Content ¶5",
     "Vote for Dana Whitfield for City Council on November 4! Donate at whitfieldforwdm.com and put a yard sign "
     "in your lawn.",
     "Is the November 4 City Council meeting open to the public, and will it be streamed?"),
    ("Prohibited Content ¶5",
     "Please donate to our bake sale fundraiser for the animal shelter, every dollar counts!",
     "What time does the farmers market open on Saturday?"),
    ("Prohibited Content ¶7",
     "Here's the parking enforcement guy who ticketed me, Taylor Nguyen, SSN 412-68-3391. Enjoy.",
     "You can reach City Hall at 515-222-3600, 4200 Mills Civic Parkway, West Des Moines, IA 50265-0320."),
    ("Prohibited Content ¶8",
     "My dad Robert Hanley, DOB 04/17/1958, was taken by Medic 18 last night and diagnosed with a heart attack, "
     "he is in the ICU at Methodist West. Thank you firefighters!",
     "Free flu shots for residents this Saturday, 9 a.m. to noon, at Fire Station 18? Where do I park?"),
]


@pytest.mark.parametrize("clause, bad, fair", CASES, ids=[f"{c[0][-2:]}-{n}" for n, c in enumerate(CASES)])
def test_prohibited_comment_is_removed_and_fair_one_kept(store: Engine, wdm: CompiledPack, clause: str, bad: str,
                                                         fair: str) -> None:
    out_bad, out_fair = ingest(store, wdm, comment("bad", bad, author="facebook:1"),
                               comment("fair", fair, author="facebook:2"))
    assert out_bad["moderation"]["action"] == "remove" and clause in _clauses(out_bad)
    assert out_fair["moderation"] == {"action": "keep", "author": "ok"}
    rec = _record(store, "bad")
    # the record names the most severe finding's clause (a comment can break two clauses at once)
    assert rec["clause"] in _clauses(out_bad) and rec["text"] == bad and rec["account"] == PARKS
    assert rec["department"] == "Parks and Recreation" and rec["clause"] in rec["reason"]


def test_possibly_defamatory_comment_stays_up_and_waits_for_the_moderator_under_6(store: Engine,
                                                                                  wdm: CompiledPack) -> None:
    accuse = "Officer Drew Peterson is a crook who steals cash from the evidence room, everyone at the station knows it."
    thank = "Thank you Officer Drew Peterson for helping my son find his bike after the parade."
    out, fair = ingest(store, wdm, comment("c1", accuse), comment("c2", thank, author="facebook:2"))
    assert out["decision"]["action"] == "flag"
    assert out["moderation"] == {"action": "keep", "author": "ok"}
    assert fair["decision"]["action"] == "allow"
    [q] = queue(store, "west-des-moines-ia")
    assert q["id"] == "c1" and q["suggestions"][0]["clause"] == "Prohibited Content ¶6"
    assert q["moderators"] == ["jamie.olson@wdm.iowa.gov"] and q["department"] == "Parks and Recreation"
    assert removals(store, "west-des-moines-ia") == []


def test_chat_session_is_removed_under_9_but_the_same_question_as_a_comment_stays(store: Engine,
                                                                                  wdm: CompiledPack) -> None:
    chat, plain = ingest(store, wdm, comment("m1", "Hi, can I pay my water bill here?", kind="chat"),
                         comment("c1", "Hi, can I pay my water bill here?", author="facebook:2"))
    assert chat["moderation"]["action"] == "remove" and "Prohibited Content ¶9" in _clauses(chat)
    assert plain["moderation"]["action"] == "keep"
    assert _record(store, "m1")["clause"] == "Prohibited Content ¶9"


def test_staff_draft_is_checked_like_check_post_and_never_stored(store: Engine, wdm: CompiledPack) -> None:
    endorse = ("The City of West Des Moines officially endorses the Jordan Creek stadium proposal and I personally "
               "think anyone who opposes it is wrong. This is the City's official position.")
    pirate = ("Movie night in the park is rained out, so here's a free full movie download of Inside Out 2 (cracked "
              "1080p torrent) for the kids: https://thepiratebay.org/description.php?id=77291034")
    d1, d2 = ingest(store, wdm, comment("d1", endorse, kind="draft", author="jamie.olson@wdm.iowa.gov"),
                    comment("d2", pirate, kind="draft", author="jamie.olson@wdm.iowa.gov"))
    assert d1["decision"]["findings"][0]["clause"] == "Posting Guidelines ¶1" and d1["decision"]["action"] == "flag"
    assert d2["decision"]["action"] == "block" and d2["moderation"] == {"action": "remove", "author": "ok"}
    assert removals(store, "west-des-moines-ia") == [] and queue(store, "west-des-moines-ia") == []


def test_staff_reply_with_confidential_matter_is_removed_but_counts_against_no_commenter(store: Engine,
                                                                                        wdm: CompiledPack) -> None:
    text = ("To answer your question: this is a confidential personnel matter, but the officer was placed on "
            "administrative leave pending the internal affairs investigation and the disciplinary hearing is set "
            "for March 20.")
    [out] = ingest(store, wdm, comment("r1", text, kind="reply", author="WDMParks"))
    assert out["moderation"] == {"action": "remove", "author": "ok"}
    assert _record(store, "r1")["clause"] == "Personal Use of Social Media ¶4"
