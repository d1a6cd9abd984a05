"""The milter against a scripted MTA that sends exactly what Postfix sends: negotiation, macros, no-reply
events, chunked bodies, each decision's answer, and tempfail whenever anything goes wrong."""
from __future__ import annotations

import hashlib
import struct
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import Engine

from civicaup.channels.mail import gateway as gw_mod
from civicaup.channels.mail import milter_protocol as mp
from civicaup.channels.mail import quarantine
from civicaup.channels.mail.gateway import MailGateway
from civicaup.channels.mail.journal import MaildirJournal
from civicaup.channels.mail.milter import MilterServer

from .conftest import LoopThread
from .miltertools import FakeMTA

HEADERS = [("Received", "from client.example by mx.kirkwoodmo.org"), ("From", "Pat Jones <pat.jones@kirkwoodmo.org>"),
           ("To", "dana.reed@kirkwoodmo.org"), ("Subject", "Budget meeting"),
           ("Message-ID", "<budget-1@kirkwoodmo.org>")]
BODY = b"Dana,\r\n\r\nThe budget meeting moved to 3 pm Thursday.\r\n\r\nPat\r\n"


class Milter:
    def __init__(self, lt: LoopThread, gateway: MailGateway, **kw: Any) -> None:
        self.lt, self.gateway = lt, gateway
        self.server = MilterServer(gateway, "127.0.0.1:0", **kw)
        address = lt.run(self.server.start())
        self.port = int(address.rsplit(":", 1)[1])

    def mta(self, **kw: Any) -> FakeMTA:
        return FakeMTA(("127.0.0.1", self.port), **kw)

    def stop(self) -> None:
        self.lt.run(self.server.stop(grace=2))
        self.gateway.close()


@pytest.fixture
def milter(store: Engine, loop_thread: LoopThread, tmp_path: Path) -> Iterator[Milter]:
    journal = MaildirJournal(tmp_path / "journal")
    m = Milter(loop_thread, MailGateway("kirkwood-mo", store=store, journal=journal, budget=10), memory_limit=4096,
               spool_dir=tmp_path / "spool")
    m.journal = journal  # type: ignore[attr-defined]
    yield m
    m.stop()


def _raw(headers: list[tuple[str, str]], body: bytes) -> bytes:
    return b"".join(f"{n}: {v}\r\n".encode() for n, v in headers) + b"\r\n" + body


def test_negotiation_asks_for_no_reply_and_skips_unneeded_events(milter: Milter) -> None:
    mta = milter.mta()
    version, actions, protocol = mta.negotiate()
    assert version == 6
    assert actions == mp.SMFIF_ADDHDRS | mp.SMFIF_CHGHDRS
    for bit in (mp.SMFIP_NR_MAIL, mp.SMFIP_NR_RCPT, mp.SMFIP_NR_HDR, mp.SMFIP_NR_BODY, mp.SMFIP_NOCONNECT,
                mp.SMFIP_NOHELO, mp.SMFIP_NODATA, mp.SMFIP_NOEOH, mp.SMFIP_NOUNKNOWN, mp.SMFIP_HDR_LEADSPC):
        assert protocol & bit
    assert not protocol & (mp.SMFIP_NOBODY | mp.SMFIP_NOHDRS | mp.SMFIP_NOMAIL | mp.SMFIP_NORCPT)
    mta.close()


def test_negotiation_takes_only_what_the_mta_offers() -> None:
    offer = mp.Negotiation(6, mp.SMFIF_ADDHDRS, mp.SMFIP_NOCONNECT | mp.SMFIP_NR_HDR)
    agreed, packet = mp.negotiate(offer)
    assert agreed == mp.Negotiation(6, mp.SMFIF_ADDHDRS, mp.SMFIP_NOCONNECT | mp.SMFIP_NR_HDR)
    assert packet == struct.pack(">I", 13) + b"O" + struct.pack(">III", 6, mp.SMFIF_ADDHDRS, agreed.protocol)
    old, _ = mp.negotiate(mp.Negotiation(2, 0x1FF, 0x1FFFFF))
    assert old.version == 2 and old.protocol == mp.WANTED_PROTOCOL & 0x7F


def test_codec_round_trips() -> None:
    assert mp.parse_macros(b"M{auth_authen}\0pat\0i\0ABC\0") == (b"M", {"{auth_authen}": "pat", "i": "ABC"})
    assert mp.parse_address_args(b"<a@b.org>\0SIZE=10\0BODY=8BITMIME\0") == ("a@b.org", ["SIZE=10", "BODY=8BITMIME"])
    assert mp.parse_address_args(b"<>\0") == ("", [])
    assert mp.parse_header(b"Subject\0 hi\0") == (b"Subject", b" hi")
    assert mp.reply_code("550 5.7.1 a 100% b\r\nc") == mp.encode(b"y", b"550 5.7.1 a 100 bc\0")
    assert mp.change_header(2, "X-A") == mp.encode(b"m", struct.pack(">I", 2) + b"X-A\0\0")
    with pytest.raises(mp.ProtocolError):
        mp.split_header(struct.pack(">I", 0) + b"O")


def test_allowed_mail_gets_the_header_and_is_journaled(milter: Milter) -> None:
    mta = milter.mta()
    replies = mta.message("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"], HEADERS, BODY)
    assert replies == [(b"h", b"X-Civicaup-Decision\0 allow\0"), (b"c", b"")]
    mta.close()
    [(record, path)] = list(milter.journal)  # type: ignore[attr-defined]
    assert record["decision"]["action"] == "allow" and record["rcpt_to"] == ["dana.reed@kirkwoodmo.org"]
    assert path.read_bytes().endswith(_raw(HEADERS, BODY))


def test_prohibited_mail_is_rejected_with_the_clause(milter: Milter) -> None:
    body = b"Dana,\r\n\r\nIf you write me up again I will kill you. Watch your back in the parking lot.\r\n"
    replies = milter.mta().message("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"], HEADERS, body)
    [(cmd, data)] = replies
    assert cmd == b"y"
    text = data.rstrip(b"\0").decode()
    assert text.startswith("550 5.7.1 mail-offensive-threatening clause e: ")
    assert "threatening" in text and text.isascii()


def test_broadcast_is_held_whole_and_discarded(milter: Milter, store: Engine) -> None:
    headers = [("From", "Pat Jones <pat.jones@kirkwoodmo.org>"), ("To", "all-users@kirkwoodmo.org"),
               ("Subject", "Annual picnic")]
    body = b"".join(b"line %d of the picnic plans\r\n" % i for i in range(2000))  # spooled to disk, 64K chunks
    replies = milter.mta().message("pat.jones@kirkwoodmo.org", ["all-users@kirkwoodmo.org"], headers, body,
                                   chunk=1000)
    assert replies == [(b"d", b"")]
    [held] = quarantine.list_held(store, "kirkwood-mo")
    assert (held.status, held.rule, held.clause, held.sender) == ("held", "mail-all-users", "d",
                                                                  "pat.jones@kirkwoodmo.org")
    assert held.recipients == ["all-users@kirkwoodmo.org"] and held.sender_department == "Public Works"
    raw = quarantine.raw_bytes(held)
    assert raw == _raw(headers, body) and held.sha256 == hashlib.sha256(raw).hexdigest()
    assert not list(milter.journal)  # type: ignore[attr-defined]


def test_auth_user_macro_is_the_sender(milter: Milter) -> None:
    # Logged in as Pat, writing as Dana: the spoofing rule (clause e) refuses it.
    headers = [("From", "Dana Reed <dana.reed@kirkwoodmo.org>"), ("To", "sam.ortiz@kirkwoodmo.org"),
               ("Subject", "Schedule")]
    replies = milter.mta().message("dana.reed@kirkwoodmo.org", ["sam.ortiz@kirkwoodmo.org"], headers, BODY,
                                   macros={"{auth_authen}": "pat.jones"})
    assert replies[0][0] == b"y" and b"mail-spoofing clause e" in replies[0][1]


def test_display_name_of_other_staff_is_spoofing(milter: Milter) -> None:
    headers = [("From", '"Sam Ortiz" <cao.office.kirkwood@gmail.com>'), ("To", "jo.smith@kirkwoodmo.org"),
               ("Subject", "Wire transfer today")]
    replies = milter.mta().message("cao.office.kirkwood@gmail.com", ["jo.smith@kirkwoodmo.org"], headers, BODY)
    assert replies[0][0] == b"y" and b"mail-spoofing clause e" in replies[0][1]


def test_forged_decision_header_is_removed(milter: Milter) -> None:
    headers = HEADERS + [("X-Civicaup-Decision", "allow")]
    replies = milter.mta().message("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"], headers, BODY)
    assert replies[0] == (b"m", struct.pack(">I", 1) + b"X-Civicaup-Decision\0\0")
    assert replies[-1] == (b"c", b"")


def test_several_messages_and_an_abort_on_one_connection(milter: Milter) -> None:
    mta = milter.mta()
    assert mta.message("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"], HEADERS, BODY)[-1] == (b"c", b"")
    mta.send(mp.MACRO, b"Mi\0X1\0")
    mta.send(mp.MAIL, b"<pat.jones@kirkwoodmo.org>\0")
    mta.send(mp.HEADER, b"Subject\0 half\0")
    mta.send(mp.ABORT)
    assert mta.message("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"], HEADERS, BODY)[-1] == (b"c", b"")
    mta.close()


def test_an_mta_without_no_reply_gets_an_answer_to_every_event(milter: Milter) -> None:
    mta = milter.mta(protocol=0x7F, version=2)  # a protocol-2 MTA: no NR_* steps, no leading-space option
    assert mta.negotiate()[0] == 2
    replies = mta.message("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"], HEADERS, BODY)
    assert replies[-1] == (b"c", b"")
    mta.close()


def test_exception_answers_tempfail(milter: Milter, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: Any, **k: Any) -> None:
        raise RuntimeError("engine broke")
    monkeypatch.setattr(gw_mod, "evaluate", boom)
    [(cmd, data)] = milter.mta().message("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"], HEADERS, BODY)
    assert cmd == b"y" and data.startswith(b"451 4.7.1")


def test_store_failure_on_hold_answers_tempfail(milter: Milter, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*a: Any, **k: Any) -> None:
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(quarantine, "store_blob", full)
    headers = [("From", "pat.jones@kirkwoodmo.org"), ("To", "all-users@kirkwoodmo.org"), ("Subject", "x")]
    [(cmd, data)] = milter.mta().message("pat.jones@kirkwoodmo.org", ["all-users@kirkwoodmo.org"], headers, BODY)
    assert cmd == b"y" and data.startswith(b"451")


def test_time_budget_answers_tempfail(milter: Milter, monkeypatch: pytest.MonkeyPatch) -> None:
    real = gw_mod.evaluate

    def slow(*a: Any, **k: Any) -> Any:
        time.sleep(1.5)
        return real(*a, **k)
    monkeypatch.setattr(gw_mod, "evaluate", slow)
    milter.gateway.budget = 0.3
    started = time.monotonic()
    [(cmd, data)] = milter.mta().message("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"], HEADERS, BODY)
    assert cmd == b"y" and data.startswith(b"451") and time.monotonic() - started < 1.4


def test_garbage_closes_only_that_connection(milter: Milter) -> None:
    bad = milter.mta()
    bad.sock.sendall(b"\xff\xff\xff\xffO")
    assert bad.sock.recv(10) == b""
    good = milter.mta()
    assert good.message("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"], HEADERS, BODY)[-1] == (b"c", b"")
    good.close()


def test_unix_socket(store: Engine, loop_thread: LoopThread, tmp_path: Path) -> None:
    path = tmp_path / "milter.sock"
    gateway = MailGateway("kirkwood-mo", store=store, budget=10)
    server = MilterServer(gateway, f"unix:{path}")
    assert loop_thread.run(server.start()) == f"unix:{path}"
    mta = FakeMTA(str(path))
    assert mta.message("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"], HEADERS, BODY)[-1] == (b"c", b"")
    mta.close()
    loop_thread.run(server.stop(grace=1))
    assert not path.exists()


def test_decisions_in_worker_processes(store: Engine) -> None:
    import asyncio

    from civicaup.channels.mail.gateway import Envelope
    from civicaup.channels.mail.spool import Spool
    gw = MailGateway("kirkwood-mo", store=store, workers=1, budget=60)
    try:
        def one(body: bytes) -> str:
            with Spool() as spool:
                spool.write(_raw(HEADERS, body))
                return asyncio.run(gw.handle(Envelope("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"]),
                                             spool)).kind
        assert one(BODY) == "accept"
        gw._recycle_pool()  # what an overrun does: the stuck worker is killed, a fresh pool takes over
        assert one(b"I will kill you.\r\n") == "reject"
        for proc in list(gw.pool._processes.values()):  # type: ignore[union-attr]
            proc.kill()  # a decision process dies (say, the OOM killer)
            proc.join()
        assert one(BODY) == "tempfail"
        assert one(BODY) == "accept"  # a fresh pool took over
    finally:
        gw.close()
