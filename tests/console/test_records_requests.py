"""Public-records requests in the console: the clerk (and the city administrator, the other records custodian)
lists, logs and closes requests and sees each one's state-law due date with its statute, the records tagged and
the legal holds that keep them; an employee is refused. Checked by template context with the test client, and
in headless Chromium (Debian's package, driven by Playwright) as the clerk and as an employee."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from civicaup.interfaces.api.app import create_app
from civicaup.policy.registry import get_pack
from civicaup.records import archive
from civicaup.records.holds import add_hold
from civicaup.records.requests import add_request, tag
from civicaup.records.search import Filters
from civicaup.stores import audit
from tests.console.helpers import browser_needed, sign_in, signed_in
from tests.records.mails import mail, utc

POLICY = "kirkwood-mo"
CLERK, ADMINISTRATOR, PAT = "jo.smith@kirkwoodmo.org", "sam.ortiz@kirkwoodmo.org", "pat.jones@kirkwoodmo.org"
# Received Thursday 2 July 2026; Friday 3 July is the observed Independence Day (4 July is a Saturday), so the
# third business day following is Wednesday 8 July (RSMo 610.023.3).
FORM = {"requester": "A. Reporter", "contact": "reporter@example.com", "description": "Sidewalk complaints, June 2026",
        "received_date": "2026-07-02", "received_time": "10:15", "kind": "public"}


@pytest.fixture
def app(store: Engine):  # type: ignore[no-untyped-def]
    return create_app(engine=store)


def test_clerk_logs_a_request_and_sees_its_due_date_and_statute(app: Any, store: Engine) -> None:
    c = signed_in(app, store, CLERK)
    r = c.get("/console/records")
    assert r.status_code == 200 and r.template.name == "records.html"
    assert r.context["requests"] == [] and r.context["state"] == "MO"
    assert '<a href="/console/records">Records requests</a>' in r.text  # in the clerk's navigation
    r = c.post("/console/records", data=FORM | {"csrf": "forged"})
    assert r.status_code == 403 and r.template.name == "error.html"
    r = c.post("/console/records", data=FORM | {"csrf": c.csrf}, follow_redirects=False)  # type: ignore[attr-defined]
    assert r.status_code == 303 and r.headers["location"].startswith("/console/records/1?msg=")
    r = c.get(r.headers["location"])
    assert r.template.name == "records_request.html"
    req = r.context["req"]
    assert (req["requester"], req["received"], req["due"], req["statute"], req["status"]) == (
        "A. Reporter", "2026-07-02T10:15", "2026-07-08", "RSMo 610.023.3", "open")
    assert r.context["law"]["holidays_skipped"] == [{"date": "2026-07-03", "name": "Independence Day (observed)"}]
    assert "request 1 logged: due 2026-07-08 (RSMo 610.023.3)" in r.context["msg"]
    assert [e.actor for e in audit.entries(store) if e.action == "records-request-add"] == [CLERK]
    listed = c.get("/console/records").context["requests"]
    assert [(x["id"], x["due"], x["statute"]) for x in listed] == [(1, "2026-07-08", "RSMo 610.023.3")]
    today = datetime.now(get_pack(POLICY).tz).date()  # the countdown is against the city's today
    assert listed[0]["overdue"] == (today > date(2026, 7, 8))
    assert listed[0]["countdown"].startswith("overdue by") == listed[0]["overdue"]


def test_a_bad_date_returns_the_form_with_what_was_typed(app: Any, store: Engine) -> None:
    c = signed_in(app, store, CLERK)
    r = c.post("/console/records", data=FORM | {"received_date": "02/07/2026", "csrf": c.csrf})  # type: ignore[attr-defined]
    assert r.status_code == 400 and r.template.name == "records.html"
    assert "ISO date" in r.context["error"] and r.context["form"]["requester"] == "A. Reporter"
    assert 'role="alert"' in r.text and c.get("/console/records").context["requests"] == []


def test_closing_a_request_changes_its_status_once(app: Any, store: Engine) -> None:
    c = signed_in(app, store, ADMINISTRATOR)  # the city administrator is a records custodian too
    rid = add_request(store, POLICY, requester="B. Neighbour", contact="", description="Zoning letters",
                      received="2026-07-02", kind="public", actor=CLERK).id
    r = c.get(f"/console/records/{rid}")
    assert r.context["can_close"] and 'action="/console/records/1/close"' in r.text
    r = c.post(f"/console/records/{rid}/close", data={"note": "answered in full", "csrf": c.csrf})  # type: ignore[attr-defined]
    assert r.template.name == "records_request.html" and r.context["req"]["status"] == "closed"
    assert not r.context["can_close"] and "request 1 closed" in r.context["msg"]
    r = c.post(f"/console/records/{rid}/close", data={"csrf": c.csrf})  # type: ignore[attr-defined]
    assert r.status_code == 409 and r.template.name == "error.html"
    assert c.get("/console/records").context["requests"] == []
    assert [x["id"] for x in c.get("/console/records?status=closed").context["requests"]] == [rid]
    assert [e.actor for e in audit.entries(store) if e.action == "records-request-close"] == [ADMINISTRATOR]


def test_detail_shows_the_tagged_records_and_the_holds_that_keep_them(app: Any, store: Engine) -> None:
    kept = archive.add_message(store, mail(sender="dana.reed@kirkwoodmo.org", to=PAT, subject="Sidewalk repair",
                                           body="Crews start on Elm Street Monday.", date=utc(2026, 6, 2, 15)),
                               policy=POLICY, decision=None, source="t")
    other = archive.add_message(store, mail(sender="lee.chan@kirkwoodmo.org", to=PAT, subject="Sidewalk photos",
                                            body="Photos of the cracked sidewalk.", date=utc(2026, 6, 3, 15)),
                                policy=POLICY, decision=None, source="t")
    hold = add_hold(store, POLICY, custodian="dana.reed@kirkwoodmo.org", since=None, until=None, query=None,
                    reason="Elm Street claim", actor=CLERK)
    req = add_request(store, POLICY, requester="A. Reporter", contact="", description="Sidewalk mail",
                      received="2026-07-02", kind="public", actor=CLERK)
    assert tag(store, POLICY, req.id, refs=[], filters=Filters(text="sidewalk"), status="responsive", note="",
               actor=CLERK) == 2
    r = signed_in(app, store, CLERK).get(f"/console/records/{req.id}")
    items = {i["ref"]: i for i in r.context["items"]}
    assert items[kept.sha256[:12]]["holds"] == [f"hold {hold.id}"] and items[other.sha256[:12]]["holds"] == []
    assert items[kept.sha256[:12]]["record"]["subject"] == "Sidewalk repair"
    assert [(h["id"], h["reason"], h["covers"]) for h in r.context["holds"]] == [(hold.id, "Elm Street claim", 1)]
    assert "<caption>Records responsive to request 1 (2)</caption>" in r.text


def test_an_employee_is_refused_every_records_page(app: Any, store: Engine) -> None:
    rid = add_request(store, POLICY, requester="A. Reporter", contact="", description="Sidewalk mail",
                      received="2026-07-02", kind="public", actor=CLERK).id
    c = signed_in(app, store, PAT)
    assert "/console/records" not in c.get("/console/").text  # no link for a person who may not use it
    for r in (c.get("/console/records"), c.get(f"/console/records/{rid}"),
              c.post("/console/records", data=FORM | {"csrf": c.csrf}),  # type: ignore[attr-defined]
              c.post(f"/console/records/{rid}/close", data={"csrf": c.csrf})):  # type: ignore[attr-defined]
        assert r.status_code == 403 and r.template.name == "error.html"
        assert "needs the clerk or city-administrator role" in r.context["error"]
    assert len(signed_in(app, store, CLERK).get("/console/records").context["requests"]) == 1  # nothing added


def test_an_unknown_request_is_not_found(app: Any, store: Engine) -> None:
    r = signed_in(app, store, CLERK).get("/console/records/99")
    assert r.status_code == 404 and r.template.name == "error.html"


# ---------------------------------------------------------------- in a real browser

@browser_needed
def test_browser_clerk_adds_a_request_and_sees_its_due_date_and_statute(store: Engine, server: str,
                                                                       browser: Any) -> None:
    page = sign_in(browser, server, store, CLERK)
    page.get_by_role("link", name="Records requests").click()
    page.wait_for_url(f"{server}/console/records")
    page.get_by_label("Requester").fill(FORM["requester"])
    page.get_by_label("Records asked for").fill(FORM["description"])
    page.get_by_label("Received on").fill(FORM["received_date"])
    page.get_by_label("Kind").select_option("public")
    page.get_by_role("button", name="Log request").click()
    page.wait_for_url(f"{server}/console/records/1?*")
    assert page.inner_text("#due").strip() == "2026-07-08"
    assert page.inner_text("#statute").strip() == "RSMo 610.023.3"
    assert page.inner_text("#status").strip().lower() == "open"
    assert "request 1 logged" in page.get_by_role("status").inner_text()
    assert "Independence Day (observed)" in page.inner_text("main")
    page.get_by_role("link", name="All open requests").click()
    row = page.get_by_role("row", name="A. Reporter")
    assert "2026-07-08" in row.inner_text() and "RSMo 610.023.3" in row.inner_text()
    page.goto(f"{server}/console/records/1")
    page.get_by_label("Note (how it was answered)").fill("answered in full")
    page.get_by_role("button", name="Close request 1").click()
    page.wait_for_url(f"{server}/console/records/1?*")
    assert page.inner_text("#status").strip().lower() == "closed"


@browser_needed
def test_browser_employee_is_refused_the_records_requests(store: Engine, server: str, browser: Any) -> None:
    page = sign_in(browser, server, store, PAT)
    assert page.get_by_role("link", name="Records requests").count() == 0
    resp = page.goto(f"{server}/console/records")
    assert resp is not None and resp.status == 403
    assert page.get_by_role("heading", level=1).inner_text() == "Not permitted"
    assert "needs the clerk or city-administrator role" in page.get_by_role("alert").inner_text()
