"""The moderators' queue in the console (WDM Prohibited Content ¶10-¶11), checked by template name and
context: each flagged item with its clause and keep / remove / warn as plain forms; a removal lands in the
public record and the audit log; only the people moderation.py lets moderate get the queue."""
from __future__ import annotations

import pytest
from markupsafe import escape
from sqlalchemy import Engine

from civicaup.interfaces.api.app import create_app
from civicaup.policy.registry import get_pack
from civicaup.social.accounts import save_account
from civicaup.social.intake import Intake
from civicaup.stores import audit
from tests.console.helpers import signed_in

P = "west-des-moines-ia"
PARKS, POLICE = "facebook:wdmparks", "x:wdmpolice"
JAMIE, MORGAN, RILEY, TAYLOR, DREW = ("jamie.olson@wdm.iowa.gov", "morgan.ellis@wdm.iowa.gov",
                                      "riley.thompson@wdm.iowa.gov", "taylor.nguyen@wdm.iowa.gov",
                                      "drew.peterson@wdm.iowa.gov")
DEFAME = "Officer Drew Peterson is a crook who steals cash from the evidence room, everyone at the station knows it."
SCRIPT = DEFAME + " <script>alert(1)</script>"


@pytest.fixture
def app(store: Engine):  # type: ignore[no-untyped-def]
    """West Des Moines with the Parks Facebook page and the Police X account, and two flagged comments."""
    pack = get_pack(P)
    save_account(store, pack, platform="facebook", handle="WDMParks", department="Parks and Recreation",
                 director=MORGAN, city_email="parks@wdm.iowa.gov", moderators=[JAMIE])
    save_account(store, pack, platform="x", handle="@WDMPolice", department="Police",
                 director="casey.larson@wdm.iowa.gov", city_email="police@wdm.iowa.gov", moderators=[DREW])
    intake = Intake(store, pack, scope="account")
    for n, (iid, account, text) in enumerate([("c1", PARKS, SCRIPT), ("x1", POLICE, DEFAME)], 1):
        intake.handle(n, {"id": iid, "account": account, "author": "facebook:100001", "kind": "comment",
                          "text": text, "at": f"2026-03-03T1{n}:00"})
    return create_app(engine=store)


def test_queue_shows_each_item_with_its_clause_and_one_key_buttons(app, store: Engine) -> None:  # type: ignore[no-untyped-def]
    r = signed_in(app, store, RILEY, P).get("/console/social")  # communications: every account
    assert r.status_code == 200 and r.template.name == "social.html"
    assert [(i["id"], i["account"], i["author"]) for i in r.context["items"]] == [
        ("c1", PARKS, "facebook:100001"), ("x1", POLICE, "facebook:100001")]
    s = r.context["items"][0]["suggestions"][0]
    assert s["suggest"] == "review" and s["rule"] and s["clause"] and s["quote"]
    assert str(escape(s["quote"])) in r.text
    assert "<script>alert" not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    for a in ("k", "r", "w"):
        assert r.text.count(f'accesskey="{a}"') == 1
    assert r.text.count('action="/console/social/c1/remove"') == 1 and f'value="{r.context["csrf"]}"' in r.text
    assert '<a href="/console/social">' in r.text


def test_a_moderator_sees_only_their_accounts_items(app, store: Engine) -> None:  # type: ignore[no-untyped-def]
    for who, ids in ((JAMIE, ["c1"]), (MORGAN, ["c1"]), (DREW, ["x1"])):  # moderator, director, police moderator
        r = signed_in(app, store, who, P).get("/console/social")
        assert [i["id"] for i in r.context["items"]] == ids, who


def test_removing_from_the_queue_lands_in_the_public_record_and_the_audit_log(app, store: Engine) -> None:  # type: ignore[no-untyped-def]
    c = signed_in(app, store, JAMIE, P)
    r = c.post("/console/social/c1/remove", data={"csrf": "forged"})
    assert r.status_code == 403 and r.template.name == "error.html"
    r = c.post("/console/social/c1/remove", data={"csrf": c.csrf})  # type: ignore[attr-defined]
    assert r.template.name == "social.html" and "c1" in r.context["msg"] and "taken down" in r.context["msg"]
    assert r.context["items"] == []
    r = signed_in(app, store, TAYLOR, P).get("/console/social/removals")  # the record is public
    assert r.status_code == 200 and r.template.name == "removals.html"
    [rec] = r.context["removals"]
    assert (rec["id"], rec["removed_by"], rec["text"]) == ("c1", JAMIE, SCRIPT)
    assert rec["clause"] and rec["reason"].startswith(f"Removed by moderator {JAMIE}")
    assert "<script>alert" not in r.text
    actions = [(e.action, e.actor, e.subject) for e in audit.entries(store)]
    assert ("social-moderate-remove", JAMIE, "c1") in actions and ("social-remove", JAMIE, "c1") in actions


def test_keep_and_warn_from_the_queue(app, store: Engine) -> None:  # type: ignore[no-untyped-def]
    c = signed_in(app, store, RILEY, P)
    r = c.post("/console/social/c1/warn", data={"csrf": c.csrf})  # type: ignore[attr-defined]
    assert "warned" in r.context["msg"] and [i["id"] for i in r.context["items"]] == ["x1"]
    r = c.post("/console/social/x1/keep", data={"csrf": c.csrf})  # type: ignore[attr-defined]
    assert r.context["items"] == [] and c.get("/console/social/removals").context["removals"] == []
    r = c.post("/console/social/x1/delete", data={"csrf": c.csrf})  # type: ignore[attr-defined]
    assert r.status_code == 403 and r.template.name == "error.html"


def test_an_employee_without_the_role_gets_403(app, store: Engine) -> None:  # type: ignore[no-untyped-def]
    c = signed_in(app, store, TAYLOR, P)
    r = c.get("/console/social")
    assert r.status_code == 403 and r.template.name == "error.html" and "may not moderate" in r.context["error"]
    r = c.post("/console/social/c1/remove", data={"csrf": c.csrf})  # type: ignore[attr-defined]
    assert r.status_code == 403 and r.template.name == "error.html"
    assert signed_in(app, store, RILEY, P).get("/console/social").context["items"][0]["id"] == "c1"  # untouched


def test_a_moderator_of_another_account_is_refused_by_moderate(app, store: Engine) -> None:  # type: ignore[no-untyped-def]
    c = signed_in(app, store, DREW, P)
    r = c.post("/console/social/c1/remove", data={"csrf": c.csrf})  # type: ignore[attr-defined]
    assert r.status_code == 400 and r.template.name == "error.html" and "may not moderate" in r.context["error"]
    assert c.get("/console/social/removals").context["removals"] == []
