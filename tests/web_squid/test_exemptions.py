"""Personal exemptions at the proxy: the Squid helper maps the proxy user to a person through the directory and
passes that person's current exemption grants to the engine. A granted, time-bounded exemption from a web rule
lets its holder through (downgraded to log, naming the grant); an ended one does not, nor does it help anybody
else or with another rule. In process (the helper protocol, a real store) and through a real Squid from
Debian's packages (see test_squid_integration.py for the set-up)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from civicaup.channels.web import blockpage
from civicaup.channels.web.categories import CategoryIndex
from civicaup.channels.web.squid_helper import Clock, Helper
from civicaup.governance import approvals, asks, grants_cache
from civicaup.governance.people import actor_of, person
from civicaup.policy.registry import get_pack
from civicaup.stores.db import open_store
from civicaup.stores.directory import import_people

from .conftest import CIVICAUP, KIRKWOOD_PEOPLE, make_lists
from .squid_instance import FAKE_AUTH, ORIGIN_MARK, PUBLIC_TMP, SQUID, SquidInstance
from .test_squid_integration import audit_rows, decisions, fetch, set_now

POLICY = "kirkwood-mo"
PAT, CHRIS = "pat.jones@kirkwoodmo.org", "chris.doe@kirkwoodmo.org"
DANA, SAM = "dana.reed@kirkwoodmo.org", "sam.ortiz@kirkwoodmo.org"  # Public Works' head, the city administrator
RULE = "web-streaming-audio"  # Kirkwood b.: streaming radio is blocked; radio.example is in the test lists
TUESDAY_10 = "2026-03-03T10:00"
EXEMPTED = "log:radio exempted-by=grant:web-streaming-audio"


def grant(store: Engine, email: str, rule: str, until: datetime, asked_at: datetime | None = None) -> int:
    """An exemption from `rule` for `email` until `until`, approved by the department head and the city
    administrator (Kirkwood's default approvers)."""
    pack = get_pack(POLICY)
    p = person(store, POLICY, email)
    ask = asks.exemption(pack, actor_of(p), asked_at or datetime.now(timezone.utc), rule, until)
    rid = approvals.submit(store, pack, ask, p, reason="emergency radio monitoring", valid_until=until).request.id
    for approver in (DANA, SAM):
        approvals.approve(store, pack, rid, approver)
    assert approvals.get(store, rid).status == "approved"
    return rid


def add_chris(store: Engine, folder: Path) -> None:
    """A second Public Works employee (the demo directory has one)."""
    csv = folder / "chris.csv"
    csv.write_text("email,name,department,title,roles\n"
                   f"{CHRIS},Chris Doe,Public Works,Maintenance Worker,\n", encoding="utf-8")
    import_people(store, get_pack(POLICY), csv)


def local(at: datetime) -> str:
    """A CIVICAUP_FAKE_NOW value: the city's local time of `at`."""
    return at.astimezone(ZoneInfo("America/Chicago")).replace(tzinfo=None).isoformat(timespec="minutes")


def make_grants(store: Engine, folder: Path) -> datetime:
    """Pat: a current exemption from RULE (ends in 30 days, returned); Chris: one that ended on 1 March 2026."""
    add_chris(store, folder)
    end = (datetime.now(timezone.utc) + timedelta(days=30)).replace(second=0, microsecond=0)
    grant(store, PAT, RULE, end)
    grant(store, CHRIS, RULE, datetime(2026, 3, 1, tzinfo=timezone.utc),
          asked_at=datetime(2026, 2, 1, tzinfo=timezone.utc))
    return end


# ---------------------------------------------------------------- in process: the helper protocol


class Sink:
    def __init__(self) -> None:
        self.items: list[tuple[Any, ...]] = []

    def put(self, item: tuple[Any, ...]) -> None:
        self.items.append(item)

    def tick(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def store(home: Path) -> Iterator[Engine]:
    grants_cache.invalidate()
    yield open_store()
    grants_cache.invalidate()


def helper(home: Path, at: str, **kw: Any) -> Helper:
    """The helper with the store's directory and grants (as `civicaup squid-helper` runs it)."""
    return Helper(POLICY, index_path=home / "categories.idx", clock=Clock(at), audit=kw.pop("audit", Sink()),
                  contacts=lambda pack, roles: blockpage.contacts_for(pack, [("lee.chan@kirkwoodmo.org", ("it",))],
                                                                      roles), **kw)


def answer(h: Helper, url: str, user: str) -> str:
    return h.process(f"7 {url} {user} 10.0.0.5 GET -\n".encode()).decode()


def test_helper_passes_the_users_grants_and_ends_them_on_time(home: Path, store: Engine, tmp_path: Path) -> None:
    end = make_grants(store, tmp_path)
    sink = Sink()
    (tmp_path / "now").write_text(TUESDAY_10)
    h = helper(home, f"@{tmp_path / 'now'}", audit=sink)
    assert answer(h, "http://radio.example/live", "pat.jones") == "7 OK log=log%3Aradio%20exempted-by%3Dgrant%3Aweb-streaming-audio\n"
    [(_, user, _, subject, outcome)] = sink.items
    assert (user, subject, outcome.action) == (b"pat.jones", "radio.example/live", "log")
    assert outcome.detail["findings"] == [{"rule": RULE, "clause": "b", "category": "radio", "action": "log",
                                           "exempted_by": f"grant:{RULE}"}]
    refused = answer(h, "http://radio.example/live", "chris.doe")  # Chris's grant ended on 1 March
    assert refused.startswith("7 ERR message=") and "web-streaming-audio" in refused
    assert answer(h, "http://radio.example/live", "dana.reed").startswith("7 ERR ")  # nobody else's
    assert answer(h, "http://casino.example/", "pat.jones").startswith("7 ERR ")  # nor another rule
    # the same helper, its clock past the end of Pat's grant: the cached answer is not reused
    (tmp_path / "now").write_text(local(end + timedelta(minutes=1)))
    os.utime(tmp_path / "now", ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert answer(h, "http://radio.example/live", "pat.jones").startswith("7 ERR message=")
    (tmp_path / "now").write_text(local(end - timedelta(minutes=1)))
    os.utime(tmp_path / "now", ns=(time.time_ns(), time.time_ns() + 2_000_000))
    assert answer(h, "http://radio.example/live", "pat.jones").startswith("7 OK log=log%3Aradio%20exempted")


def test_helper_sees_a_grant_made_after_it_started_within_its_grants_ttl(home: Path, store: Engine) -> None:
    h = helper(home, TUESDAY_10, grants_ttl=0.0)
    assert answer(h, "http://radio.example/live", "pat.jones").startswith("7 ERR ")
    grant(store, PAT, RULE, datetime.now(timezone.utc) + timedelta(days=1))
    deadline = time.monotonic() + 20
    while answer(h, "http://radio.example/live", "pat.jones").startswith("7 ERR "):  # read in a thread
        assert time.monotonic() < deadline, "the helper did not pick up the new grant"
        h.housekeeping()
        time.sleep(0.05)
    assert answer(h, "http://radio.example/live", "pat.jones") == (
        "7 OK log=log%3Aradio%20exempted-by%3Dgrant%3Aweb-streaming-audio\n")


def test_a_helper_given_a_directory_but_no_grants_reads_no_store(home: Path, store: Engine) -> None:
    grant(store, PAT, RULE, datetime.now(timezone.utc) + timedelta(days=1))
    h = helper(home, TUESDAY_10, roles_of=lambda email: ("employee",))
    assert h.grants_of is None
    assert answer(h, "http://radio.example/live", "pat.jones").startswith("7 ERR ")


def test_helper_keeps_deciding_when_the_grants_cannot_be_read(home: Path, store: Engine) -> None:
    def broken() -> Any:
        raise RuntimeError("store down")

    h = helper(home, TUESDAY_10, grants=broken, grants_ttl=0.0)
    assert answer(h, "http://radio.example/live", "pat.jones").startswith("7 ERR message=")  # no grants: strict
    assert answer(h, "http://plain.example/", "pat.jones") == "7 OK\n"
    h.housekeeping()  # a refresh that fails keeps what was loaded
    assert answer(h, "http://plain.example/", "pat.jones") == "7 OK\n"


# ---------------------------------------------------------------- through a real Squid

SQUID_NEEDED = [
    pytest.mark.skipif(SQUID is None, reason="squid is not installed (Debian package 'squid'; CI installs it)"),
    pytest.mark.skipif(not os.path.exists(FAKE_AUTH), reason=f"{FAKE_AUTH} missing (Debian package 'squid')"),
    pytest.mark.skipif(os.geteuid() != 0, reason="starting Squid with its own user needs root"),
    pytest.mark.timeout(600),
]


def squid_test(fn: Any) -> Any:
    for mark in SQUID_NEEDED:
        fn = mark(fn)
    return fn


@pytest.fixture(scope="module")
def squid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SquidInstance, datetime]]:
    home = Path(tempfile.mkdtemp(prefix="civicaup-home-", dir=PUBLIC_TMP))
    os.chmod(home, 0o755)
    lists = Path(tempfile.mkdtemp(prefix="civicaup-lists-"))
    CategoryIndex.build([make_lists(lists)], out=home / "categories.idx")
    env = {**os.environ, "CIVICAUP_HOME": str(home)}
    r = subprocess.run([CIVICAUP, "directory", "import", str(KIRKWOOD_PEOPLE), "--policy", POLICY],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    engine = open_store(f"sqlite:///{home / 'civicaup.db'}")
    end = make_grants(engine, tmp_path_factory.mktemp("people"))
    engine.dispose()  # the helper runs as Squid's user: no connection (or WAL file) of ours stays open
    (home / "now").write_text(TUESDAY_10)
    sq = SquidInstance(CIVICAUP, POLICY, home, {"CIVICAUP_FAKE_NOW": f"@{home / 'now'}"})
    try:
        sq.start()
    except RuntimeError as exc:
        sq.stop()
        sq.cleanup()
        pytest.fail(str(exc))
    yield sq, end
    sq.stop()
    sq.cleanup()
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(lists, ignore_errors=True)


@squid_test
def test_squid_lets_the_grant_holder_through_logged_as_exempted(squid: tuple[SquidInstance, datetime]) -> None:
    sq, _ = squid
    set_now(sq, TUESDAY_10)
    status, body = fetch(sq, "http://radio.example/pat-live", "pat.jones")
    assert status == 200 and ORIGIN_MARK in body
    assert [unquote(d) for d in decisions(sq, "http://radio.example/pat-live", 1)] == [EXEMPTED]  # %ea, escaped
    rows = audit_rows(sq, "radio.example/pat-live")
    assert rows and rows[0][0] == PAT and rows[0][1] == "web-log"
    assert f'"exempted_by":"grant:{RULE}"' in rows[0][2]


@squid_test
def test_squid_refuses_an_ended_grant_another_person_and_another_rule(
        squid: tuple[SquidInstance, datetime]) -> None:
    sq, _ = squid
    set_now(sq, TUESDAY_10)
    status, body = fetch(sq, "http://radio.example/chris-live", "chris.doe")  # ended 1 March 2026
    assert status == 403 and ORIGIN_MARK not in body
    assert f"Blocked by kirkwood-mo rule {RULE}, clause b:" in body
    rows = audit_rows(sq, "radio.example/chris-live")
    assert rows and rows[0][0] == CHRIS and rows[0][1] == "web-block"
    assert fetch(sq, "http://radio.example/dana-live", "dana.reed")[0] == 403
    status, body = fetch(sq, "http://casino.example/pat-poker", "pat.jones")  # Pat's grant is for RULE only
    assert status == 403 and "rule web-prohibited-sites, clause h:" in body


@squid_test
def test_squid_stops_letting_through_when_the_grant_ends(squid: tuple[SquidInstance, datetime]) -> None:
    sq, end = squid
    set_now(sq, local(end + timedelta(hours=1)))
    try:
        status, body = fetch(sq, "http://radio.example/pat-later", "pat.jones")
        assert status == 403 and f"Blocked by kirkwood-mo rule {RULE}, clause b:" in body
        assert decisions(sq, "http://radio.example/pat-later", 1) == ["block:radio"]
    finally:
        set_now(sq, TUESDAY_10)
