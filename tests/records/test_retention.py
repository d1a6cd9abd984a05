"""Holds and disposition: held and unexpired records survive, expired ones go with a certificate."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine

from civicaup.records import archive, blobs, retention
from civicaup.records.authz import NotPermittedError
from civicaup.records.holds import add_hold, list_holds, release_hold
from civicaup.records.requests import add_request, close_request, tag
from civicaup.stores import audit

from .conftest import POLICY
from .mails import mail, utc

CLERK = "jo.smith@kirkwoodmo.org"
NOW = datetime.now(timezone.utc)


def _add(store: Engine, **kw: object) -> archive.Record:
    a = archive.add_message(store, mail(**kw), policy=POLICY, decision=None, source="test")  # type: ignore[arg-type]
    return archive.find_record(store, POLICY, a.sha256[:12])


@pytest.fixture
def records(store: Engine) -> dict[str, archive.Record]:
    """Kirkwood (Missouri schedule: general correspondence 2 years, policy-decision permanent)."""
    return {
        "old-held": _add(store, sender="pat.jones@kirkwoodmo.org", to="dana.reed@kirkwoodmo.org",
                         subject="Storm drain on Elm", body="Water everywhere.", date=utc(2019, 5, 1, 14)),
        "old-lawsuit": _add(store, sender="lee.chan@kirkwoodmo.org", to="sam.ortiz@kirkwoodmo.org",
                            subject="Server logs", body="The Acme lawsuit logs are saved.", date=utc(2019, 6, 2, 14)),
        "old": _add(store, sender="lee.chan@kirkwoodmo.org", to="kim.nguyen@kirkwoodmo.org",
                    subject="Lunch", body="Tacos?", date=utc(2019, 7, 3, 17)),
        "old-ooo": _add(store, sender="kim.nguyen@kirkwoodmo.org", to="lee.chan@kirkwoodmo.org",
                        subject="Out of office", body="Away.", date=utc(2020, 1, 3, 17)),
        "old-policy": _add(store, sender="sam.ortiz@kirkwoodmo.org", to="all-users@kirkwoodmo.org",
                           subject="Remote work", body="New rules.", date=utc(2018, 2, 3, 17)),
        "recent": _add(store, sender="lee.chan@kirkwoodmo.org", to="kim.nguyen@kirkwoodmo.org",
                       subject="Lunch again", body="Tacos?", date=NOW - timedelta(days=30)),
    }


def test_dry_run_lists_only_unheld_expired_records(store: Engine, records: dict[str, archive.Record]) -> None:
    add_hold(store, POLICY, custodian="dana.reed@kirkwoodmo.org", since=None, until=None, query=None,
             reason="Smith v. City of Kirkwood", actor=CLERK)
    add_hold(store, POLICY, custodian=None, since=date(2019, 1, 1), until=date(2019, 12, 31), query="acme lawsuit",
             reason="Acme claim", actor="lee.chan@kirkwoodmo.org")
    plan, entries = retention.run(store, POLICY, dry_run=True, actor=None)
    assert entries == []
    assert sorted(d.subject for d in plan.due) == ["Lunch", "Out of office"]
    assert set(plan.kept) == {records["old-held"].ref, records["old-lawsuit"].ref}
    assert archive.count(store, POLICY) == 6  # a dry run deletes nothing


def test_run_disposes_with_a_certificate_and_keeps_the_rest(store: Engine,
                                                            records: dict[str, archive.Record]) -> None:
    hold = add_hold(store, POLICY, custodian="dana.reed@kirkwoodmo.org", since=None, until=None, query=None,
                    reason="Smith v. City of Kirkwood", actor=CLERK)
    req = add_request(store, POLICY, requester="A. Reporter", contact="", description="Server logs",
                      received="2026-07-02", kind="public", actor=CLERK)
    tag(store, POLICY, req.id, refs=[records["old-lawsuit"].ref], filters=None, status="responsive", note="",
        actor=CLERK)
    plan, entries = retention.run(store, POLICY, dry_run=False, actor=CLERK)
    gone = {records["old"].sha256, records["old-ooo"].sha256}
    assert {d.sha256 for d in plan.due} == gone and len(entries) == 1
    left = {r.sha256 for k, r in records.items()} - gone
    for sha in gone:
        assert not blobs.exists(sha, store)
        with pytest.raises(Exception):
            archive.find_record(store, POLICY, sha[:12])
    for sha in left:
        assert blobs.get(sha, store) and archive.find_record(store, POLICY, sha[:12])
    cert = next(e for e in audit.entries(store) if e.id == entries[0])
    detail = json.loads(cert.detail)
    assert cert.action == "retention-disposition" and cert.actor == CLERK
    assert {r["sha256"] for r in detail["records"]} == gone
    assert "RSMo 109.255" in detail["authority"] and detail["disposed_by"] == CLERK
    assert {s["id"] for s in detail["series"]} == {"general-correspondence", "transitory"}
    assert all(s["reference"] for s in detail["series"])
    assert audit.verify(store)[1] is None
    # releasing needs the clerk or the city administrator; then the held record goes at the next run
    with pytest.raises(NotPermittedError):
        release_hold(store, POLICY, hold.id, actor="pat.jones@kirkwoodmo.org")
    release_hold(store, POLICY, hold.id, actor="sam.ortiz@kirkwoodmo.org", reason="case settled")
    assert list_holds(store, POLICY, status="active") == []
    close_request(store, POLICY, req.id, actor=CLERK)
    plan, _ = retention.run(store, POLICY, dry_run=False, actor=CLERK)
    assert {d.subject for d in plan.due} == {"Storm drain on Elm", "Server logs"}
    assert archive.count(store, POLICY) == 2  # the permanent policy record and the recent one
    assert audit.verify(store)[1] is None
    actions = [e.action for e in audit.entries(store)]
    assert actions.count("retention-disposition") == 2 and "hold-release" in actions


def test_holds_need_a_reason_and_a_scope(store: Engine) -> None:
    from civicaup.errors import InputError

    with pytest.raises(InputError):
        add_hold(store, POLICY, custodian=None, since=None, until=None, query=None, reason="x", actor=CLERK)
    with pytest.raises(InputError):
        add_hold(store, POLICY, custodian="a@b.org", since=None, until=None, query=None, reason=" ", actor=CLERK)
    with pytest.raises(NotPermittedError):
        add_hold(store, POLICY, custodian="a@b.org", since=None, until=None, query=None, reason="r",
                 actor="stranger@example.com")
