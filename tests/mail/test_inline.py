"""Small messages are decided in the event loop's own thread, their budget kept by SIGALRM; everything else (big or
spooled to disk, holds and flags, an fsync'ing journal, a loop outside the main thread, SIGALRM owned by someone
else) still goes to the gateway's worker threads."""
from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import Engine

from civicaup.channels.mail import gateway as gw_mod
from civicaup.channels.mail.alarm import ALARM, Overrun
from civicaup.channels.mail.gateway import Envelope, MailGateway, Verdict
from civicaup.channels.mail.journal import MaildirJournal
from civicaup.channels.mail.spool import Spool

PLAIN = (b"From: pat.jones@kirkwoodmo.org\r\nTo: dana.reed@kirkwoodmo.org\r\nSubject: Budget\r\n"
         b"Message-ID: <inline-1@kirkwoodmo.org>\r\n\r\nThe budget meeting moved to 3 pm Thursday.\r\n")
BROADCAST = PLAIN.replace(b"To: dana.reed@", b"To: all-users@")
THREAT = PLAIN.replace(b"The budget meeting moved to 3 pm Thursday.", b"If you write me up again I will kill you.")


@pytest.fixture(autouse=True)
def _alarm_left_clean() -> Iterator[None]:
    yield
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # no timer left running after any test here


@pytest.fixture
def threads_used(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The name of the thread that evaluated each message and that acted on each decision."""
    seen: dict[str, list[str]] = {"decide": [], "act": []}
    evaluate, act = gw_mod.evaluate, MailGateway.act

    def spy_evaluate(*a: Any, **k: Any) -> Any:
        seen["decide"].append(threading.current_thread().name)
        return evaluate(*a, **k)

    def spy_act(self: MailGateway, *a: Any, **k: Any) -> Verdict:
        seen["act"].append(threading.current_thread().name)
        return act(self, *a, **k)
    monkeypatch.setattr(gw_mod, "evaluate", spy_evaluate)
    monkeypatch.setattr(MailGateway, "act", spy_act)
    return seen


def handle(gw: MailGateway, raw: bytes, rcpt: str = "dana.reed@kirkwoodmo.org", memory_limit: int = 1 << 20) -> Verdict:
    with Spool(memory_limit) as spool:
        spool.write(raw)
        return asyncio.run(gw.handle(Envelope("pat.jones@kirkwoodmo.org", [rcpt]), spool))


@pytest.fixture
def gateway(store: Engine, tmp_path: Path) -> Iterator[MailGateway]:
    gw = MailGateway("kirkwood-mo", store=store, journal=MaildirJournal(tmp_path / "journal"), budget=10)
    yield gw
    gw.close()


def test_small_message_is_decided_and_journaled_in_the_loop_thread(gateway: MailGateway, tmp_path: Path,
                                                                   threads_used: dict[str, list[str]]) -> None:
    verdict = handle(gateway, PLAIN)
    assert verdict.kind == "accept" and verdict.header == "allow"
    assert threads_used == {"decide": ["MainThread"], "act": ["MainThread"]}
    assert len(list((tmp_path / "journal" / "new").iterdir())) == 1
    assert handle(gateway, THREAT).kind == "reject" and threads_used["act"][-1] == "MainThread"


def test_big_or_spooled_messages_go_to_a_worker_thread(gateway: MailGateway,
                                                       threads_used: dict[str, list[str]]) -> None:
    assert handle(gateway, PLAIN, memory_limit=64).kind == "accept"  # on disk
    gateway.inline_max = 64
    assert handle(gateway, PLAIN).kind == "accept"  # in memory, over the inline size
    assert all(name.startswith("civicaup-mail") for name in threads_used["decide"] + threads_used["act"])
    assert len(threads_used["decide"]) == 2


def test_holds_are_stored_from_a_worker_thread(gateway: MailGateway, threads_used: dict[str, list[str]]) -> None:
    verdict = handle(gateway, BROADCAST, rcpt="all-users@kirkwoodmo.org")
    assert verdict.kind == "discard" and verdict.quarantine_id
    assert threads_used["decide"] == ["MainThread"] and threads_used["act"][0].startswith("civicaup-mail")


def test_an_fsyncing_journal_is_written_from_a_worker_thread(store: Engine, tmp_path: Path,
                                                             threads_used: dict[str, list[str]]) -> None:
    gw = MailGateway("kirkwood-mo", store=store, journal=MaildirJournal(tmp_path / "j", fsync=True), budget=10)
    try:
        assert handle(gw, PLAIN).kind == "accept"
    finally:
        gw.close()
    assert threads_used["decide"] == ["MainThread"] and threads_used["act"][0].startswith("civicaup-mail")


def test_overrun_in_the_loop_thread_tempfails_on_time_and_the_next_message_passes(
        gateway: MailGateway, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    real = gw_mod.evaluate
    calls = []

    def busy(*a: Any, **k: Any) -> Any:
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            end = time.monotonic() + 3
            while time.monotonic() < end:  # pure Python work, no sleep: the alarm must cut it short
                pass
        return real(*a, **k)
    monkeypatch.setattr(gw_mod, "evaluate", busy)
    gateway.budget = 0.3
    started = time.monotonic()
    verdict = handle(gateway, PLAIN)
    assert verdict.kind == "tempfail" and verdict.reply.startswith("451") and time.monotonic() - started < 2
    assert "over the 0 s budget" in caplog.text and calls == ["MainThread"]
    assert handle(gateway, PLAIN).kind == "accept"


def test_overrun_is_not_swallowed_by_a_broad_except_in_the_decision(gateway: MailGateway,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    real = gw_mod.evaluate
    caught: list[str] = []

    def stubborn(*a: Any, **k: Any) -> Any:
        for _ in range(2):  # a parser's last-resort `except Exception`, then a second slow step
            try:
                end = time.monotonic() + 2
                while time.monotonic() < end:
                    pass
            except Exception as exc:  # noqa: BLE001 - what the test is about
                caught.append(type(exc).__name__)
        return real(*a, **k)
    monkeypatch.setattr(gw_mod, "evaluate", stubborn)
    gateway.budget = 0.3
    started = time.monotonic()
    assert handle(gateway, PLAIN).kind == "tempfail" and time.monotonic() - started < 1.5 and not caught


def test_loop_outside_the_main_thread_uses_the_worker_threads(gateway: MailGateway,
                                                              threads_used: dict[str, list[str]]) -> None:
    out: list[Verdict] = []
    t = threading.Thread(target=lambda: out.append(handle(gateway, PLAIN)), name="not-main")
    t.start()
    t.join(30)
    assert out[0].kind == "accept" and threads_used["decide"][0].startswith("civicaup-mail")


def test_sigalrm_owned_by_someone_else_is_left_alone(gateway: MailGateway,
                                                     threads_used: dict[str, list[str]]) -> None:
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    try:
        assert not ALARM.usable()
        assert handle(gateway, PLAIN).kind == "accept"
        assert threads_used["decide"][0].startswith("civicaup-mail")
        assert signal.getsignal(signal.SIGALRM) is not signal.SIG_DFL and not fired
    finally:
        signal.signal(signal.SIGALRM, previous)


def test_alarm_interrupts_python_work_and_ignores_a_late_signal() -> None:
    assert ALARM.usable()
    with pytest.raises(Overrun):
        with ALARM.limit(0.05):
            while True:
                pass
    swallowed = 0
    with pytest.raises(Overrun):
        with ALARM.limit(0.05):
            while True:  # code that catches even BaseException gets the Overrun again until the block ends
                try:
                    while True:
                        pass
                except BaseException:  # noqa: BLE001
                    swallowed += 1
                    if swallowed > 3:
                        raise
    assert swallowed == 4
    with ALARM.limit(5):
        pass
    signal.raise_signal(signal.SIGALRM)  # a stray alarm once nothing is armed: ignored, no exception
