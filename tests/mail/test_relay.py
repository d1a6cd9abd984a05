"""The SMTP content-filter relay on loopback: decide, re-inject with the header, 550 with the clause, hold with
250, and 451 whenever the next hop is down or anything fails (the sending MTA keeps the message)."""
from __future__ import annotations

import smtplib
from typing import Any, Iterator

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from civicaup.channels.mail import gateway as gw_mod
from civicaup.channels.mail import quarantine
from civicaup.channels.mail.gateway import MailGateway
from civicaup.channels.mail.relay import RelayHandler, strip_header

from .conftest import Sink
from .postfix_instance import free_port

MSG = (b"From: Pat Jones <pat.jones@kirkwoodmo.org>\r\nTo: dana.reed@kirkwoodmo.org\r\nSubject: Budget\r\n"
       b"X-Civicaup-Decision: allow (forged)\r\n\r\nThe budget meeting moved to 3 pm.\r\n")


@pytest.fixture
def relay(store: Engine, sink: tuple[Sink, int]) -> Iterator[tuple[int, Sink, MailGateway, Any]]:
    s, sink_port = sink
    gw = MailGateway("kirkwood-mo", store=store, budget=10, channel="relay", next_hop=f"127.0.0.1:{sink_port}")
    handler = RelayHandler(gw, f"127.0.0.1:{sink_port}")
    port = free_port()
    c = Controller(handler, hostname="127.0.0.1", port=port, data_size_limit=200_000_000)
    c.start()
    yield port, s, gw, handler
    c.stop()
    gw.close()


def send(port: int, msg: bytes, rcpts: list[str], sender: str = "pat.jones@kirkwoodmo.org") -> Any:
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        return smtp.sendmail(sender, rcpts, msg)


def test_allowed_mail_is_reinjected_with_the_header(relay: Any) -> None:
    port, s, _, _ = relay
    assert send(port, MSG, ["dana.reed@kirkwoodmo.org"]) == {}
    [(mail_from, rcpts, data)] = s.wait(1)
    assert mail_from == "pat.jones@kirkwoodmo.org" and rcpts == ["dana.reed@kirkwoodmo.org"]
    assert data.startswith(b"X-Civicaup-Decision: allow\r\n")
    assert b"forged" not in data and data.endswith(b"\r\n\r\nThe budget meeting moved to 3 pm.\r\n")


def test_prohibited_mail_gets_550_with_the_clause(relay: Any) -> None:
    port, s, _, _ = relay
    msg = MSG.replace(b"The budget meeting moved to 3 pm.", b"If you write me up again I will kill you.")
    with pytest.raises(smtplib.SMTPDataError) as exc:
        send(port, msg, ["dana.reed@kirkwoodmo.org"])
    assert exc.value.smtp_code == 550
    assert exc.value.smtp_error.startswith(b"5.7.1 mail-offensive-threatening clause e: ")
    assert s.wait(1, timeout=0.3) == []


def test_broadcast_is_held_and_answered_250(relay: Any, store: Engine) -> None:
    port, s, _, _ = relay
    msg = MSG.replace(b"To: dana.reed@kirkwoodmo.org", b"To: all-users@kirkwoodmo.org")
    assert send(port, msg, ["all-users@kirkwoodmo.org"]) == {}
    [held] = quarantine.list_held(store, "kirkwood-mo")
    assert held.channel == "relay" and held.rule == "mail-all-users"
    assert quarantine.raw_bytes(held) == msg
    assert s.wait(1, timeout=0.3) == []
    assert quarantine.release(store, held.id, "dana.reed@kirkwoodmo.org").delivered
    assert s.wait(1)[0][2] == msg


def test_next_hop_down_answers_451(relay: Any) -> None:
    port, s, _, handler = relay
    handler.next_hop = f"127.0.0.1:{free_port()}"
    with pytest.raises(smtplib.SMTPDataError) as exc:
        send(port, MSG, ["dana.reed@kirkwoodmo.org"])
    assert exc.value.smtp_code == 451


def test_next_hop_refusing_a_recipient_sends_nothing(relay: Any) -> None:
    port, s, _, _ = relay
    s.refuse = "451 4.3.0 busy"
    with pytest.raises(smtplib.SMTPDataError) as exc:
        send(port, MSG, ["dana.reed@kirkwoodmo.org"])
    assert exc.value.smtp_code == 451


def test_internal_error_answers_451(relay: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    port, s, _, _ = relay

    def boom(*a: Any, **k: Any) -> None:
        raise MemoryError
    monkeypatch.setattr(gw_mod, "evaluate", boom)
    with pytest.raises(smtplib.SMTPDataError) as exc:
        send(port, MSG, ["dana.reed@kirkwoodmo.org"])
    assert exc.value.smtp_code == 451
    assert s.wait(1, timeout=0.3) == []


def test_strip_header_keeps_everything_else() -> None:
    raw = b"A: 1\r\nX-Civicaup-Decision: allow;\r\n x (clause y)\r\nB: 2\r\n\r\nX-Civicaup-Decision: in body\r\n"
    assert strip_header(raw, "X-Civicaup-Decision") == b"A: 1\r\nB: 2\r\n\r\nX-Civicaup-Decision: in body\r\n"
    assert strip_header(b"A: 1\r\n\r\nbody", "X-Other") == b"A: 1\r\n\r\nbody"
