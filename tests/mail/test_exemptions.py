"""Personal exemptions at the mail filter: a granted, time-bounded exemption from a rule lets its holder's mail
through (downgraded to log, naming the grant) at the milter and the relay; an ended one does not, nor does one
held by somebody else; a grant made in this process applies from the next message (the grants cache is
invalidated), and one made elsewhere is seen once the cache's snapshot is older than its TTL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import Engine

from civicaup.channels.mail import quarantine
from civicaup.channels.mail.gateway import MailGateway
from civicaup.channels.mail.journal import MaildirJournal
from civicaup.channels.mail.milter import MilterServer
from civicaup.governance import approvals, asks, grants_cache
from civicaup.governance.people import actor_of, person
from civicaup.policy.registry import get_pack
from civicaup.stores.directory import import_people

from .conftest import LoopThread, Sink
from .miltertools import FakeMTA

POLICY = "kirkwood-mo"
PAT, CHRIS = "pat.jones@kirkwoodmo.org", "chris.doe@kirkwoodmo.org"
DANA, SAM = "dana.reed@kirkwoodmo.org", "sam.ortiz@kirkwoodmo.org"  # Public Works' head, the city administrator
ALL_USERS = "all-users@kirkwoodmo.org"
BODY = b"The picnic is Saturday at Walker Park.\r\n"


def headers(sender: str, name: str) -> list[tuple[str, str]]:
    return [("From", f"{name} <{sender}>"), ("To", ALL_USERS), ("Subject", "Annual picnic")]


def grant(store: Engine, email: str, rule: str, until: datetime, asked_at: datetime | None = None) -> int:
    """An exemption from `rule` for `email` until `until`, asked at `asked_at` and approved by the department
    head and the city administrator (Kirkwood's default approvers)."""
    pack = get_pack(POLICY)
    p = person(store, POLICY, email)
    ask = asks.exemption(pack, actor_of(p), asked_at or datetime.now(timezone.utc), rule, until)
    rid = approvals.submit(store, pack, ask, p, reason="annual picnic organiser", valid_until=until).request.id
    for approver in (DANA, SAM):
        approvals.approve(store, pack, rid, approver)
    assert approvals.get(store, rid).status == "approved"
    return rid


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    grants_cache.invalidate()
    yield
    grants_cache.invalidate()


@pytest.fixture
def chris(store: Engine, tmp_path: Path) -> str:
    """A second Public Works employee (the demo directory has one)."""
    csv = tmp_path / "chris.csv"
    csv.write_text("email,name,department,title,roles\n"
                   f"{CHRIS},Chris Doe,Public Works,Maintenance Worker,\n", encoding="utf-8")
    import_people(store, get_pack(POLICY), csv)
    return CHRIS


@pytest.fixture
def milter(store: Engine, loop_thread: LoopThread, tmp_path: Path) -> Iterator[Any]:
    journal = MaildirJournal(tmp_path / "journal")
    gateway = MailGateway(POLICY, store=store, journal=journal, budget=10)
    server = MilterServer(gateway, "127.0.0.1:0", memory_limit=4096, spool_dir=tmp_path / "spool")
    port = int(loop_thread.run(server.start()).rsplit(":", 1)[1])
    yield port, journal
    loop_thread.run(server.stop(grace=2))
    gateway.close()


def broadcast(port: int, sender: str, name: str) -> list[tuple[bytes, bytes]]:
    mta = FakeMTA(("127.0.0.1", port))
    try:
        return mta.message(sender, [ALL_USERS], headers(sender, name), BODY)
    finally:
        mta.close()


def test_a_current_personal_exemption_lets_the_broadcast_through_logged_and_naming_it(
        store: Engine, milter: Any) -> None:
    port, journal = milter
    rid = grant(store, PAT, "mail-all-users", datetime.now(timezone.utc) + timedelta(days=7))
    assert broadcast(port, PAT, "Pat Jones") == [(b"h", b"X-Civicaup-Decision\0 log; mail-all-users (clause d)\0"),
                                                 (b"c", b"")]
    [(record, _)] = list(journal)
    [finding] = record["decision"]["findings"]
    assert (finding["rule"], finding["action"], finding["exempted_by"]) == ("mail-all-users", "log",
                                                                           "grant:mail-all-users")
    assert quarantine.list_held(store, POLICY) == []
    assert approvals.get(store, rid).detail["grantee"] == PAT


def test_an_ended_exemption_does_not_and_nor_does_somebody_elses(store: Engine, milter: Any, chris: str) -> None:
    port, _ = milter
    grant(store, chris, "mail-all-users", datetime(2026, 3, 1, tzinfo=timezone.utc),
          asked_at=datetime(2026, 2, 1, tzinfo=timezone.utc))  # ended on 1 March 2026
    assert approvals.granted_exemptions(store, POLICY, chris, {"employee"}) == frozenset()
    grant(store, PAT, "mail-offensive-threatening", datetime.now(timezone.utc) + timedelta(days=7))  # another rule
    assert broadcast(port, chris, "Chris Doe") == [(b"d", b"")]
    assert broadcast(port, PAT, "Pat Jones") == [(b"d", b"")]  # Pat's grant is for another rule
    held = quarantine.list_held(store, POLICY)
    assert sorted((h.sender, h.rule, h.status) for h in held) == [(CHRIS, "mail-all-users", "held"),
                                                                  (PAT, "mail-all-users", "held")]


def test_a_grant_made_in_this_process_applies_from_the_next_message(store: Engine, milter: Any) -> None:
    port, _ = milter
    assert broadcast(port, PAT, "Pat Jones") == [(b"d", b"")]  # no grant yet: held, and the snapshot is cached
    assert grants_cache.peek(store, POLICY) is not None
    grant(store, PAT, "mail-all-users", datetime.now(timezone.utc) + timedelta(days=7))
    assert grants_cache.peek(store, POLICY) is None  # approvals.approve invalidated it
    assert broadcast(port, PAT, "Pat Jones")[0] == (b"h", b"X-Civicaup-Decision\0 log; mail-all-users (clause d)\0")


def test_the_relay_passes_the_senders_grants_too(store: Engine, sink: tuple[Sink, int]) -> None:
    import smtplib

    from aiosmtpd.controller import Controller

    from civicaup.channels.mail.relay import RelayHandler

    from .postfix_instance import free_port

    s, sink_port = sink
    grant(store, PAT, "mail-all-users", datetime.now(timezone.utc) + timedelta(days=7))
    gw = MailGateway(POLICY, store=store, budget=10, channel="relay", next_hop=f"127.0.0.1:{sink_port}")
    port = free_port()
    c = Controller(RelayHandler(gw, f"127.0.0.1:{sink_port}"), hostname="127.0.0.1", port=port)
    c.start()
    try:
        raw = b"".join(f"{n}: {v}\r\n".encode() for n, v in headers(PAT, "Pat Jones")) + b"\r\n" + BODY
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            assert smtp.sendmail(PAT, [ALL_USERS], raw) == {}
        [(_, rcpts, data)] = s.wait(1)
        assert rcpts == [ALL_USERS] and data.startswith(b"X-Civicaup-Decision: log; mail-all-users (clause d)\r\n")
        assert quarantine.list_held(store, POLICY) == []
    finally:
        c.stop()
        gw.close()


def test_the_cache_reads_the_store_once_a_ttl_and_ends_grants_on_time(store: Engine) -> None:
    clock = [1000.0]
    cache = grants_cache.GrantsCache(ttl=60, clock=lambda: clock[0])
    now = datetime.now(timezone.utc)
    assert cache.granted(store, POLICY, PAT, {"employee"}) == frozenset()
    grant(store, PAT, "mail-all-users", now + timedelta(hours=1))  # invalidates the process's cache, not this one
    assert cache.granted(store, POLICY, PAT, {"employee"}) == frozenset()  # a snapshot younger than the TTL
    clock[0] += 61
    snap = cache.snapshot(store, POLICY)
    assert snap.for_actor(PAT, {"employee"}) == {"mail-all-users"}
    assert snap.for_actor(PAT.upper(), {"employee"}, now + timedelta(minutes=59)) == {"mail-all-users"}
    assert snap.for_actor(PAT, {"employee"}, now + timedelta(hours=1, seconds=1)) == frozenset()  # by its own end
    assert snap.next_end(now) == snap.grants[0].until
    assert snap.for_actor(DANA, {"employee", "department-head"}) == frozenset()
    assert snap.for_actor(PAT, {"employee"}) == approvals.granted_exemptions(store, POLICY, PAT, {"employee"})
    cache.invalidate(POLICY)
    assert cache.peek(store, POLICY) is None


def test_a_role_grant_covers_everyone_with_the_role_and_nobody_else() -> None:
    at = datetime(2026, 3, 3, 16, tzinfo=timezone.utc)
    snap = grants_cache.Grants(POLICY, (
        grants_cache.Grant("mail-large-files", "role:law-enforcement", at + timedelta(days=1), 1),
        grants_cache.Grant("mail-all-users", PAT, None, 2)))
    assert snap.for_actor("kim.nguyen@kirkwoodmo.org", {"employee", "law-enforcement"}, at) == {"mail-large-files"}
    assert snap.for_actor(PAT, {"employee"}, at) == {"mail-all-users"}  # a grant without an end
    assert snap.for_actor(DANA, {"employee", "department-head"}, at) == frozenset()
    assert snap.next_end(at) == at + timedelta(days=1) and snap.next_end(at + timedelta(days=2)) is None
