"""Console pages, checked by template name and context (not HTML): sign-in with a token, the approval inbox,
held mail with its clause, cases, coverage with live counts, the decisions chart, CSRF on every form."""
from __future__ import annotations


import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from civicaup.interfaces.api.app import create_app
from tests.console.helpers import signed_in
from tests.governance.helpers import KIRKWOOD_BROADCAST, Sink, hold_mail

PAT, DANA, KIM, MORGAN, LEE = ("pat.jones@kirkwoodmo.org", "dana.reed@kirkwoodmo.org", "kim.nguyen@kirkwoodmo.org",
                               "morgan.lee@kirkwoodmo.org", "lee.chan@kirkwoodmo.org")


@pytest.fixture
def app(store: Engine):  # type: ignore[no-untyped-def]
    return create_app(engine=store)


def test_login_page_and_bad_token(app) -> None:  # type: ignore[no-untyped-def]
    c = TestClient(app)
    r = c.get("/console/login")
    assert r.template.name == "login.html" and r.context["error"] == ""
    r = c.post("/console/login", data={"token": "cau_wrong"})
    assert r.status_code == 401 and r.template.name == "login.html" and "unknown" in r.context["error"]
    r = c.get("/console/approvals", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/login"


def test_department_head_inbox_shows_the_held_broadcast_and_approving_releases_it(
        app, store: Engine, sink: Sink) -> None:  # type: ignore[no-untyped-def]
    qid = hold_mail(store, "kirkwood-mo", KIRKWOOD_BROADCAST, PAT, ["all-users@kirkwoodmo.org"])
    c = signed_in(app, store, DANA)
    r = c.get("/console/approvals")
    assert r.template.name == "inbox.html"
    assert [(m["id"], m["rule"], m["clause"]) for m in r.context["held"]] == [(qid, "mail-all-users", "d")]
    r = c.post(f"/console/quarantine/{qid}/release", data={"csrf": "forged"})
    assert r.status_code == 403 and r.template.name == "error.html"
    r = c.post(f"/console/quarantine/{qid}/release", data={"csrf": c.csrf})  # type: ignore[attr-defined]
    assert r.template.name == "message.html" and r.context["message"]["status"] == "released"
    assert "released" in r.context["msg"]
    assert len(sink.wait(1)) == 1
    assert c.get("/console/approvals").context["held"] == []


def test_employee_sees_why_their_message_was_held_with_the_clause(app, store: Engine) -> None:  # type: ignore[no-untyped-def]
    qid = hold_mail(store, "kirkwood-mo", KIRKWOOD_BROADCAST, PAT, ["all-users@kirkwoodmo.org"])
    c = signed_in(app, store, PAT)
    r = c.get("/console/")
    assert r.template.name == "home.html"
    [m] = r.context["my_held"]
    assert (m["id"], m["clause"], m["waiting_for"]) == (qid, "d", ["mail-all-users (clause d) needs department-head"])
    r = c.get(f"/console/quarantine/{qid}")
    assert r.template.name == "message.html" and r.context["message"]["as"] == "sender"
    f = r.context["message"]["findings"][0]
    assert f["clause"] == "d" and "Department Head" in f["quote"] and not r.context["can_decide"]
    other = signed_in(app, store, KIM)
    r = other.get(f"/console/quarantine/{qid}")
    assert r.status_code == 403 and r.template.name == "error.html"


def test_requests_from_the_console_and_the_request_page(app, store: Engine) -> None:  # type: ignore[no-untyped-def]
    c = signed_in(app, store, PAT)
    r = c.post("/console/request", data={"kind": "software", "name": "Spotify", "reason": "focus",
                                         "csrf": c.csrf})  # type: ignore[attr-defined]
    assert r.template.name == "home.html" and "pending" in r.context["msg"]
    [req] = r.context["my_requests"]
    it = signed_in(app, store, LEE)
    page = it.get(f"/console/approvals/{req['id']}")
    assert page.template.name == "request.html" and page.context["can_decide"]
    r = it.post(f"/console/approvals/{req['id']}/approve", data={"csrf": it.csrf})  # type: ignore[attr-defined]
    assert r.context["req"]["missing"] == ["software-streaming-audio (clause b) needs city-administrator"]


def test_cases_coverage_chart(app, store: Engine) -> None:  # type: ignore[no-untyped-def]
    c = signed_in(app, store, PAT)
    r = c.post("/console/cases", data={"summary": "Tickets for sale by mail", "csrf": c.csrf})  # type: ignore[attr-defined]
    assert r.template.name == "cases.html" and r.context["cases"] == [] and len(r.context["my_reports"]) == 1
    hr = signed_in(app, store, MORGAN)
    [case] = hr.get("/console/cases").context["cases"]
    r = hr.get(f"/console/cases/{case['id']}")
    assert r.template.name == "case.html" and r.context["can_close"]
    r = hr.post(f"/console/cases/{case['id']}/close", data={"decision": "Talked to them", "outcome": "counselling",
                                                           "csrf": hr.csrf})  # type: ignore[attr-defined]
    assert r.context["case"]["status"] == "closed"
    assert c.get(f"/console/cases/{case['id']}").status_code == 403
    c.post("/console/request", data={"kind": "software", "name": "Spotify", "csrf": c.csrf})  # type: ignore[attr-defined]
    r = c.get("/console/coverage")
    assert r.template.name == "coverage.html"
    b = next(x for x in r.context["clauses"] if x["clause"] == "b")
    assert b["count"] >= 2
    r = hr.get("/console/chart?by=department")
    assert r.template.name == "chart.html" and r.context["data"]["series"] == ["Public Works"]
    assert r.context["chart"]["bars"][0]["segments"][0]["h"] > 0
    assert c.get("/console/chart").status_code == 403
