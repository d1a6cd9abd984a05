"""The console in a real browser: headless Chromium from Debian's packages, driven by Playwright (never
`playwright install`: the Debian browser is used). A department head approves a held broadcast message and sees
it released; an employee sees why their message was held, with the clause."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from tests.console.helpers import browser_needed, sign_in
from tests.governance.helpers import KIRKWOOD_BROADCAST, Sink, hold_mail

pytestmark = browser_needed


def test_department_head_approves_a_held_broadcast_and_sees_it_released(store: Engine, sink: Sink, server: str,
                                                                       browser: Any) -> None:
    qid = hold_mail(store, "kirkwood-mo", KIRKWOOD_BROADCAST, "pat.jones@kirkwoodmo.org",
                    ["all-users@kirkwoodmo.org"])
    page = sign_in(browser, server, store, "dana.reed@kirkwoodmo.org")
    page.get_by_role("link", name="Approval inbox").click()
    page.wait_for_url(f"{server}/console/approvals")
    assert "Annual picnic" in page.inner_text("main")
    page.get_by_role("button", name=f"Approve and release message {qid}").click()
    page.wait_for_url(f"{server}/console/quarantine/{qid}?*")
    assert page.inner_text("#status").strip().lower() == "released"
    assert "released message" in page.get_by_role("status").inner_text()
    assert len(sink.wait(1)) == 1


def test_employee_sees_why_a_message_was_held_with_the_clause(store: Engine, server: str, browser: Any) -> None:
    qid = hold_mail(store, "kirkwood-mo", KIRKWOOD_BROADCAST, "pat.jones@kirkwoodmo.org",
                    ["all-users@kirkwoodmo.org"])
    page = sign_in(browser, server, store, "pat.jones@kirkwoodmo.org")
    page.get_by_role("link", name="Annual picnic").click()
    page.wait_for_url(f"{server}/console/quarantine/{qid}")
    assert page.inner_text("#clause").strip() == "d"
    text = page.inner_text("main")
    assert "mail-all-users" in text and "Department Head" in text  # the rule and the clause's own words
    assert page.get_by_role("button", name="Approve and release").count() == 0
