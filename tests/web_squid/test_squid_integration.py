"""A real Squid (Debian's package) on 127.0.0.1 running civicaup's helper and block page, with a local origin
server and clients going through the proxy. Kirkwood, MO policy (kirkwood-mo).

Squid authenticates with its own basic_fake_auth (any user, any password), so %un is the user the helper
maps to the directory; every request is forwarded to the local origin (no DNS). The helper's clock comes
from CIVICAUP_FAKE_NOW=@FILE (tests only), so the same Squid serves 10:00 and 12:15.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from civicaup.channels.web.categories import CategoryIndex

from .conftest import CIVICAUP, KIRKWOOD_PEOPLE, make_lists
from .squid_instance import FAKE_AUTH, ORIGIN_MARK, PUBLIC_TMP, SQUID, SquidInstance

pytestmark = [
    pytest.mark.skipif(SQUID is None, reason="squid is not installed (Debian package 'squid'; CI installs it)"),
    pytest.mark.skipif(not os.path.exists(FAKE_AUTH), reason=f"{FAKE_AUTH} missing (Debian package 'squid')"),
    pytest.mark.skipif(os.geteuid() != 0, reason="starting Squid with its own user needs root"),
    pytest.mark.timeout(600),
]

CLAUSE_H = "Accessing sites that are pornographic or sites that promulgate violence or terrorism"


@pytest.fixture(scope="module")
def squid():  # type: ignore[no-untyped-def]
    home = Path(tempfile.mkdtemp(prefix="civicaup-home-", dir=PUBLIC_TMP))
    os.chmod(home, 0o755)
    lists = Path(tempfile.mkdtemp(prefix="civicaup-lists-"))
    CategoryIndex.build([make_lists(lists)], out=home / "categories.idx")
    env = {**os.environ, "CIVICAUP_HOME": str(home)}
    r = subprocess.run([CIVICAUP, "directory", "import", str(KIRKWOOD_PEOPLE), "--policy", "kirkwood-mo"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    (home / "now").write_text("2026-03-03T10:00")  # a Tuesday, working hours in Kirkwood
    sq = SquidInstance(CIVICAUP, "kirkwood-mo", home, {"CIVICAUP_FAKE_NOW": f"@{home / 'now'}"})
    try:
        sq.start()
    except RuntimeError as exc:
        sq.stop()
        sq.cleanup()
        pytest.fail(str(exc))
    yield sq
    sq.stop()
    sq.cleanup()
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(lists, ignore_errors=True)


def set_now(sq: SquidInstance, local: str) -> None:
    path = sq.home / "now"
    path.write_text(local)
    os.utime(path, ns=(time.time_ns(), time.time_ns()))


def fetch(sq: SquidInstance, url: str, user: str) -> tuple[int, str]:
    """GET through the proxy with urllib, answering the proxy's 407 with basic credentials."""
    proxy = f"http://127.0.0.1:{sq.port}"
    auth = urllib.request.ProxyBasicAuthHandler()
    auth.add_password("civicaup-test", proxy, user, "any-password")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy}), auth)
    try:
        with opener.open(url, timeout=60) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace")


def decisions(sq: SquidInstance, url: str, n: int, timeout: float = 20) -> list[str]:
    """The helper's log= values (%ea) for *url*, from a second access.log, waiting for *n* of them."""
    deadline = time.monotonic() + timeout
    found: list[str] = []
    while time.monotonic() < deadline:
        path = sq.logs / "decisions.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        rows = [ln.split(" ", 3) for ln in lines]
        found = [r[3] for r in rows if len(r) == 4 and r[2] == url and r[1] != "-"]  # not the 407 challenges
        if len(found) >= n:
            return found
        time.sleep(0.2)
    return found


def audit_rows(sq: SquidInstance, subject: str, timeout: float = 20, expect: int = 1) -> list[tuple[str, str, str]]:
    """(actor, action, detail) of the audit entries about *subject*, waiting for the helper's writer."""
    deadline = time.monotonic() + timeout
    rows: list[tuple[str, str, str]] = []
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(f"file:{sq.home / 'civicaup.db'}?mode=ro", uri=True, timeout=10) as db:
                rows = list(db.execute("SELECT actor, action, detail FROM audit WHERE subject = ? ORDER BY id",
                                       (subject,)))
        except sqlite3.OperationalError:
            rows = []
        if len(rows) >= expect:
            return rows
        time.sleep(0.3)
    return rows


@pytest.mark.parametrize("url,category", [("http://badsite.example/gallery", "adult"),
                                          ("http://casino.example/poker", "gambling")])
def test_prohibited_site_gets_the_block_page_with_the_clause(squid: SquidInstance, url: str, category: str) -> None:
    status, body = fetch(squid, url, "pat.jones")
    assert status == 403
    assert ORIGIN_MARK not in body
    assert "Blocked by kirkwood-mo rule web-prohibited-sites, clause h:" in body
    assert CLAUSE_H in body and f"(category {category})" in body
    assert "To ask for an exemption, contact the MIS Department (lee.chan@kirkwoodmo.org)" in body
    assert f'href="{url}"' in body  # %U
    rows = audit_rows(squid, url.split("://", 1)[1])
    assert rows and rows[0][0] == "pat.jones@kirkwoodmo.org" and rows[0][1] == "web-block"


def test_law_enforcement_passes_and_is_logged_as_exempted(squid: SquidInstance) -> None:
    status, body = fetch(squid, "http://badsite.example/evidence", "kim.nguyen")  # Police Detective
    assert status == 200 and ORIGIN_MARK in body
    rows = audit_rows(squid, "badsite.example/evidence")
    assert rows and rows[0][0] == "kim.nguyen@kirkwoodmo.org" and rows[0][1] == "web-log"
    assert '"exempted_by":"law-enforcement"' in rows[0][2]
    status, _ = fetch(squid, "http://badsite.example/evidence", "pat.jones")  # the same URL, another user
    assert status == 403


def test_shopping_is_personal_use_logged_at_ten_but_not_at_lunch(squid: SquidInstance) -> None:
    set_now(squid, "2026-03-03T10:00")
    status, body = fetch(squid, "http://shop.example/basket", "pat.jones")
    assert status == 200 and ORIGIN_MARK in body
    rows = audit_rows(squid, "shop.example/basket")
    assert len(rows) == 1 and rows[0][1] == "web-log" and "web-personal-use-work-time" in rows[0][2]
    set_now(squid, "2026-03-03T12:15")
    status, body = fetch(squid, "http://shop.example/basket", "pat.jones")
    assert status == 200 and ORIGIN_MARK in body
    # the helper was asked again (Squid keeps no answers: cache=0) and answered for lunch time
    assert decisions(squid, "http://shop.example/basket", 2)[:2] == ["log:shopping", "allow:shopping"]
    time.sleep(2.5)  # longer than the helper's audit interval: an entry would be there by now
    assert len(audit_rows(squid, "shop.example/basket", timeout=0.5)) == 1  # nothing new at lunch
    set_now(squid, "2026-03-03T16:30")
    assert fetch(squid, "http://shop.example/basket", "pat.jones")[0] == 200
    assert len(audit_rows(squid, "shop.example/basket", expect=2)) == 2  # back at work: logged again
    assert decisions(squid, "http://shop.example/basket", 3)[2] == "log:shopping"
    set_now(squid, "2026-03-03T10:00")


OBFUSCATED = [
    "GET http://BADSITE.EXAMPLE/upper HTTP/1.1",
    "GET http://badsite.example./trailing-dot HTTP/1.1",
    "GET http://www.badsite.example/subdomain HTTP/1.1",
    "GET http://b%61dsite.example/percent-host HTTP/1.1",
    "GET http://good.example@badsite.example/userinfo HTTP/1.1",
    "GET http://10.9.8.7/ip-literal HTTP/1.1",
    "GET http://0x0a.9.8.7/hex-ip HTTP/1.1",
    "GET http://168364039/decimal-ip HTTP/1.1",
    "GET http://xn--bcher-xxx-q9a.example/idn-punycode HTTP/1.1",
    "GET http://bücher-xxx.example/idn-utf8 HTTP/1.1",
    "GET http://news.example/adult-pictures/listed-path HTTP/1.1",
    "GET http://www.both.example/both-listed HTTP/1.1",
    "CONNECT badsite.example:443 HTTP/1.1",
]


@pytest.mark.parametrize("request_line", OBFUSCATED)
def test_obfuscated_forms_of_a_blocked_host_are_blocked(squid: SquidInstance, request_line: str) -> None:
    status, body = squid.raw(request_line, "pat.jones", host="badsite.example")
    assert ORIGIN_MARK not in body, (request_line, body[:300])
    assert status == 403 and "Blocked by kirkwood-mo rule web-prohibited-sites, clause h:" in body, \
        (request_line, status, body[:500])


def test_unlisted_site_passes(squid: SquidInstance) -> None:
    status, body = fetch(squid, "http://plain.example/news", "pat.jones")
    assert status == 200 and ORIGIN_MARK in body


def test_squids_own_access_log_feeds_the_usage_report(squid: SquidInstance) -> None:
    fetch(squid, "http://shop.example/report-check", "jo.smith")
    fetch(squid, "http://casino.example/report-check", "jo.smith")
    log = squid.logs / "access.log"
    deadline = time.monotonic() + 20
    while "casino.example/report-check" not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, "Squid did not log the requests"
        time.sleep(0.2)
    with tempfile.TemporaryDirectory() as other:
        env = {**os.environ, "CIVICAUP_HOME": other}
        subprocess.run([CIVICAUP, "directory", "import", str(KIRKWOOD_PEOPLE), "--policy", "kirkwood-mo"], env=env,
                       check=True, capture_output=True, timeout=120)
        shutil.copy(squid.home / "categories.idx", Path(other) / "categories.idx")
        r = subprocess.run([CIVICAUP, "report", "web", "ingest", str(log), "--policy", "kirkwood-mo"], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and " requests added" in r.stdout, r.stderr
        r = subprocess.run([CIVICAUP, "report", "web", "--policy", "kirkwood-mo", "--json"], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        people = {p["person"]: p for p in json.loads(r.stdout)["people"]}
        jo = people["jo.smith@kirkwoodmo.org"]
        cats = {**jo["work"]["categories"], **jo["personal"]["categories"]}
        assert "shopping" in cats and "gambling" in cats
