"""The console in a real browser: headless Chromium from Debian's packages, driven by Playwright (never
`playwright install`: the Debian browser is used). A department head approves a held broadcast message and sees
it released; an employee sees why their message was held, with the clause."""
from __future__ import annotations

import os
import threading
import time
from typing import Any, Iterator

import pytest
from sqlalchemy import Engine

from civicaup.governance import tokens
from civicaup.interfaces.api.app import create_app
from tests.governance.helpers import KIRKWOOD_BROADCAST, Sink, free_port, hold_mail

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                                reason=f"{CHROMIUM} is absent (apt-get install chromium chromium-driver)")


@pytest.fixture
def server(store: Engine) -> Iterator[str]:
    import uvicorn
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(engine=store), host="127.0.0.1", port=port, log_level="warning",
                                        lifespan="off"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "the console did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    t.join(10)


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def sign_in(browser: Any, base: str, store: Engine, email: str) -> Any:
    page = browser.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base}/console/login")
    page.get_by_label("Token").fill(tokens.create(store, "kirkwood-mo", email).token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/console/")
    return page


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
