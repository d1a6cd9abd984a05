"""Platform exports -> the generic intake format: Facebook Graph API and X API v2 shapes, and the X archive."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine

from civicaup.errors import InputError
from civicaup.policy.compile import CompiledPack
from civicaup.social.platforms import convert

from .conftest import PARKS, POLICE, ingest

PAGE = "104958162837"
# GET /{page-id}/feed?fields=id,message,created_time,from,comments{id,message,created_time,from,comments}
FB_FEED = {
    "data": [
        {"id": f"{PAGE}_2231", "message": "Spring soccer registration is open! Sign up by March 20.",
         "created_time": "2026-03-02T15:00:00+0000", "from": {"name": "West Des Moines Parks & Rec", "id": PAGE},
         "comments": {"data": [
             {"id": "2231_9001", "message": "Is there a sibling discount this year?",
              "created_time": "2026-03-02T16:10:00+0000", "from": {"name": "Pat Resident", "id": "5550001"},
              "comments": {"data": [
                  {"id": "2231_9002", "message": "Yes, $10 off each additional child.",
                   "created_time": "2026-03-02T16:45:00+0000",
                   "from": {"name": "West Des Moines Parks & Rec", "id": PAGE}}]}},
             {"id": "2231_9003", "message": "lol check this out", "created_time": "2026-03-02T17:00:00+0000",
              "from": {"name": "Spam Bot", "id": "5550002"},
              "attachment": {"type": "share", "target": {"url": "https://www.pornhub.com/view_video.php?viewkey=1"}}},
             {"id": "2231_9004", "created_time": "2026-03-02T17:30:00+0000",
              "attachment": {"type": "sticker"}},  # no page token: no `from`
         ]},
         },
    ],
    "paging": {"cursors": {"before": "QVFIU", "after": "QVFIU"}},
}
# GET /{page-id}/conversations?fields=messages{id,message,created_time,from}
FB_CONVERSATIONS = {"data": [{"id": "t_10161", "messages": {"data": [
    {"id": "m_abc", "message": "Hi, can I pay my water bill here?", "created_time": "2026-03-03T14:00:00+0000",
     "from": {"name": "Pat Resident", "id": "5550001"}}]}}]}
# GET /2/tweets/search/recent?query=to:WDMPolice&expansions=author_id&tweet.fields=created_at,...
X_SEARCH = {
    "data": [
        {"id": "1765000000000000003", "text": "@WDMPolice thank you for the quick response on 35th St last night",
         "author_id": "2244994945", "created_at": "2026-03-03T15:04:05.000Z",
         "referenced_tweets": [{"type": "replied_to", "id": "1765000000000000001"}]},
        {"id": "1765000000000000001", "text": "Grand Ave is closed between 35th and 50th for a water main break. "
                                               "Detour: https://t.co/AbC123",
         "author_id": "783214", "created_at": "2026-03-03T14:00:00.000Z",
         "entities": {"urls": [{"url": "https://t.co/AbC123",
                                "expanded_url": "https://www.wdm.iowa.gov/news/grand-ave-closure"}]}},
        {"id": "1765000000000000004", "text": "@pat_r We have crews on site and expect to reopen by 6 p.m.",
         "author_id": "783214", "created_at": "2026-03-03T16:00:00.000Z",
         "referenced_tweets": [{"type": "replied_to", "id": "1765000000000000003"}]},
    ],
    "includes": {"users": [{"id": "2244994945", "name": "Pat R", "username": "pat_r"},
                           {"id": "783214", "name": "WDM Police", "username": "WDMPolice"}]},
    "meta": {"result_count": 3},
}
X_ARCHIVE = 'window.YTD.tweets.part0 = ' + json.dumps([
    {"tweet": {"id_str": "1700000000000000001", "full_text": "Coffee with a Cop this Friday at 9 a.m.",
               "created_at": "Wed Mar 04 15:00:00 +0000 2026"}},
    {"tweet": {"id_str": "1700000000000000002", "full_text": "@pat_r See you there!",
               "in_reply_to_status_id_str": "1700000000000000000", "created_at": "Wed Mar 04 16:00:00 +0000 2026"}},
])


def test_facebook_feed_with_comments_and_replies(wdm: CompiledPack) -> None:
    items = convert("facebook", json.dumps(FB_FEED), account=PARKS)
    assert [(i["id"], i["kind"], i["author"]) for i in items] == [
        (f"facebook:{PAGE}_2231", "post", f"facebook:{PAGE}"),
        ("facebook:2231_9001", "comment", "facebook:5550001"),
        ("facebook:2231_9002", "reply", f"facebook:{PAGE}"),
        ("facebook:2231_9003", "comment", "facebook:5550002"),
        ("facebook:2231_9004", "comment", "facebook:unknown:2231_9004"),
    ]
    assert all(i["account"] == PARKS for i in items)
    assert items[0]["at"] == "2026-03-02T15:00:00+00:00"
    assert items[3]["text"] == "lol check this out https://www.pornhub.com/view_video.php?viewkey=1"
    assert items[4]["text"] == ""


def test_facebook_page_is_found_from_the_feed_when_no_account_is_given() -> None:
    items = convert("facebook", json.dumps(FB_FEED))
    assert {i["account"] for i in items} == {f"facebook:{PAGE}"}


def test_facebook_messenger_conversation_is_chat() -> None:
    [m] = convert("facebook", json.dumps(FB_CONVERSATIONS), account=PARKS)
    assert (m["id"], m["kind"], m["author"]) == ("facebook:m_abc", "chat", "facebook:5550001")


def test_x_v2_search_oldest_first_with_the_accounts_own_posts_and_replies() -> None:
    items = convert("x", json.dumps(X_SEARCH), account=POLICE)
    assert [(i["id"], i["kind"], i["author"]) for i in items] == [
        ("x:1765000000000000001", "post", "@WDMPolice"),
        ("x:1765000000000000003", "comment", "@pat_r"),
        ("x:1765000000000000004", "reply", "@WDMPolice"),
    ]
    assert "https://www.wdm.iowa.gov/news/grand-ave-closure" in items[0]["text"]  # t.co expanded
    assert items[1]["at"] == "2026-03-03T15:04:05+00:00"


def test_x_archive_holds_the_accounts_own_tweets() -> None:
    items = convert("twitter", X_ARCHIVE, account="@WDMPolice")
    assert [(i["kind"], i["account"], i["at"]) for i in items] == [
        ("post", POLICE, "2026-03-04T15:00:00+00:00"), ("reply", POLICE, "2026-03-04T16:00:00+00:00")]


@pytest.mark.parametrize("platform, text, message", [
    ("myspace", "{}", "--from must be one of"),
    ("facebook", "not json", "not a JSON export"),
    ("facebook", '{"items": []}', "not a Facebook Graph API export"),
    ("x", '{"data": []}', "give --account"),
    ("x", "[1]", "give --account"),
])
def test_bad_exports_give_one_line_errors(platform: str, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        convert(platform, text)


def test_converted_items_are_ingested(store: Engine, wdm: CompiledPack) -> None:
    items = convert("facebook", json.dumps(FB_FEED), account=PARKS) + \
        convert("facebook", json.dumps(FB_CONVERSATIONS), account=PARKS)
    outs = {o["id"]: o["moderation"] for o in ingest(store, wdm, *items)}
    assert outs["facebook:2231_9001"] == {"action": "keep", "author": "ok"}
    assert outs["facebook:2231_9003"] == {"action": "remove", "author": "warned"}  # a link to a sexual site
    assert outs["facebook:m_abc"] == {"action": "remove", "author": "ok"}  # chat: removed, not held against Pat
