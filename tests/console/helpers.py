"""What the console tests share: signing in through the test client or a real browser, and the marker that
skips browser tests where Debian's Chromium is absent."""
from __future__ import annotations

import os
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from civicaup.governance import tokens
from civicaup.interfaces.console.routes import csrf_for

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
browser_needed = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                                    reason=f"{CHROMIUM} is absent (apt-get install chromium)")


def signed_in(app: Any, store: Engine, email: str, policy: str = "kirkwood-mo") -> TestClient:
    """A test client signed in to the console as *email* with a fresh token; `.csrf` is its form token."""
    c = TestClient(app, raise_server_exceptions=False)
    token = tokens.create(store, policy, email).token
    r = c.post("/console/login", data={"token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    c.csrf = csrf_for(token)  # type: ignore[attr-defined]
    return c


def sign_in(browser: Any, base: str, store: Engine, email: str, policy: str = "kirkwood-mo") -> Any:
    """A browser page signed in to the console at *base* as *email*."""
    page = browser.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base}/console/login")
    page.get_by_label("Token").fill(tokens.create(store, policy, email).token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/console/")
    return page
