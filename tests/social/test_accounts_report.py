"""Official accounts, the credential-rotation task when moderators change, and the twice-a-week report."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import Engine, inspect

from civicaup.errors import InputError
from civicaup.policy.compile import CompiledPack
from civicaup.social.accounts import close_task, list_accounts, list_tasks, save_account
from civicaup.social.report import week_of, weekly
from civicaup.stores import audit
from civicaup.stores.social_tables import SOCIAL_TABLES

from .conftest import PARKS, POLICE, comment, ingest

P = "west-des-moines-ia"


def test_accounts_are_listed_with_director_moderators_and_city_address(store: Engine) -> None:
    accounts = {a.key: a for a in list_accounts(store, P)}
    assert set(accounts) == {PARKS, POLICE}
    parks = accounts[PARKS]
    assert (parks.platform, parks.handle, parks.department) == ("facebook", "WDMParks", "Parks and Recreation")
    assert parks.director == "morgan.ellis@wdm.iowa.gov" and parks.moderators == ("jamie.olson@wdm.iowa.gov",)
    assert parks.email == "parks@wdm.iowa.gov" and parks.credentials_changed_at is None


def test_no_password_is_ever_stored(store: Engine) -> None:
    for table in SOCIAL_TABLES:
        assert not [c for c in table.columns if "password" in c.name or "secret" in c.name or "token" in c.name]


def test_a_new_account_needs_its_director_address_and_moderator(store: Engine, wdm: CompiledPack) -> None:
    with pytest.raises(InputError, match="--director"):
        save_account(store, wdm, platform="instagram", handle="wdmfire", department="Fire",
                     city_email="fire@wdm.iowa.gov", moderators=["a@wdm.iowa.gov"])
    with pytest.raises(InputError, match="not an e-mail address"):
        save_account(store, wdm, platform="instagram", handle="wdmfire", department="Fire", director="chief",
                     city_email="fire@wdm.iowa.gov", moderators=["a@wdm.iowa.gov"])


def test_notes_for_a_personal_address_and_people_not_in_the_directory(store: Engine, wdm: CompiledPack) -> None:
    saved = save_account(store, wdm, platform="instagram", handle="wdmfire", department="Fire",
                         director="taylor.nguyen@wdm.iowa.gov", city_email="wdmfire@gmail.com",
                         moderators=["nobody@wdm.iowa.gov"])
    notes = " | ".join(saved.notes)
    assert "not a wdm.iowa.gov address (Social Media Account Security ¶1" in notes
    assert "no department-head role" in notes and "nobody@wdm.iowa.gov is not in the directory" in notes


def test_a_moderator_change_raises_a_credential_rotation_task_until_closed(store: Engine, wdm: CompiledPack) -> None:
    saved = save_account(store, wdm, platform="facebook", handle="wdmparks",
                         moderators=["riley.thompson@wdm.iowa.gov"])
    assert not saved.created and saved.task is not None
    [task] = list_tasks(store, P)
    assert task.kind == "rotate-credentials" and task.account == PARKS and task.status == "open"
    assert task.clause == "Social Media Account Security ¶4"
    assert "jamie.olson@wdm.iowa.gov" in task.reason and "riley.thompson@wdm.iowa.gov" in task.reason
    # the moderator who left may not close it; the new moderator (or the Director) may
    with pytest.raises(InputError, match="may not close"):
        close_task(store, wdm, task.id, "jamie.olson@wdm.iowa.gov")
    closed = close_task(store, wdm, task.id, "riley.thompson@wdm.iowa.gov", "password changed on Facebook")
    assert closed.status == "closed" and closed.closed_by == "riley.thompson@wdm.iowa.gov"
    assert list_tasks(store, P) == [] and len(list_tasks(store, P, open_only=False)) == 1
    parks = next(a for a in list_accounts(store, P) if a.key == PARKS)
    assert parks.credentials_changed_at is not None and parks.moderators == ("riley.thompson@wdm.iowa.gov",)
    with pytest.raises(InputError, match="already closed"):
        close_task(store, wdm, task.id, "morgan.ellis@wdm.iowa.gov")
    assert {"social-task-open", "social-task-close"} <= {e.action for e in audit.entries(store)}


def test_updating_other_fields_raises_no_task(store: Engine, wdm: CompiledPack) -> None:
    when = datetime(2026, 1, 5, tzinfo=timezone.utc)
    saved = save_account(store, wdm, platform="fb", handle="@WDMParks", department="Parks & Recreation",
                         moderators=["jamie.olson@wdm.iowa.gov"], credentials_changed=when)
    assert saved.task is None and saved.account.department == "Parks & Recreation"
    assert saved.account.credentials_changed_at == when and list_tasks(store, P) == []


def test_week_is_monday_to_monday_in_city_time(wdm: CompiledPack) -> None:
    start, end = week_of(wdm, "2026-03-04")  # a Wednesday
    assert start.isoformat() == "2026-03-02T00:00:00-06:00" and end.isoformat() == "2026-03-09T00:00:00-05:00"
    with pytest.raises(InputError):
        week_of(wdm, "last week")


def test_accounts_not_updated_twice_a_week_are_reported(store: Engine, wdm: CompiledPack) -> None:
    staff = dict(author="WDMParks")
    ingest(store, wdm,
           comment("p1", "Spring soccer registration is open!", kind="post", at="2026-03-02T09:00", **staff),
           comment("p2", "Thanks! The fields open on April 4.", kind="reply", at="2026-03-05T16:00", **staff),
           comment("p3", "Pool hours for the summer are posted.", kind="post", at="2026-03-08T23:30", **staff),
           comment("p4", "Next week's post.", kind="post", at="2026-03-09T00:30", **staff),  # the following week
           comment("d1", "A draft is not an update.", kind="draft", at="2026-03-04T10:00", **staff),
           comment("c1", "Comments by residents are not updates.", at="2026-03-04T10:00"),
           comment("c2", "Neither are these.", account=POLICE, at="2026-03-04T10:00"),
           comment("x1", "Road closed on Grand Ave.", kind="post", account=POLICE, author="@WDMPolice",
                   at="2026-03-06T08:00"))
    r = weekly(store, wdm, "2026-03-04")
    counts = {a["account"]: (a["updates"], a["ok"]) for a in r["accounts"]}
    assert counts == {PARKS: (3, True), POLICE: (1, False)}
    assert r["not_updated"] == [POLICE]
    assert r["clause"] == "Social Computing Guidelines ¶7" and "twice a week" in r["quote"]
    assert weekly(store, wdm, "2026-03-10")["not_updated"] == [PARKS, POLICE]  # one post the next week


def test_report_lists_open_rotation_tasks(store: Engine, wdm: CompiledPack) -> None:
    save_account(store, wdm, platform="x", handle="wdmpolice", moderators=["taylor.nguyen@wdm.iowa.gov"])
    [t] = weekly(store, wdm, "2026-03-04")["open_tasks"]
    assert t["account"] == POLICE and t["kind"] == "rotate-credentials"


def test_migration_creates_the_tables_the_module_describes(store: Engine) -> None:
    insp = inspect(store)
    for table in SOCIAL_TABLES:
        cols = {c["name"]: c for c in insp.get_columns(table.name)}
        assert set(cols) == {c.name for c in table.columns}, table.name
        for c in table.columns:
            assert cols[c.name]["nullable"] == (c.nullable and not c.primary_key), (table.name, c.name)
        assert {i["name"] for i in insp.get_indexes(table.name)} >= {i.name for i in table.indexes}
