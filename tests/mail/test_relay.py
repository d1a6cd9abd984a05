"""The SMTP content-filter relay on loopback: decide, re-inject with the header, 550 with the clause, hold with
250, and 451 whenever the next hop is down or anything fails (the sending MTA keeps the message)."""
from __future__ import annotations

import os
import smtplib
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from civicaup.channels.mail import gateway as gw_mod
from civicaup.channels.mail import quarantine
from civicaup.channels.mail.gateway import MailGateway
from civicaup.channels.mail.relay import RelayHandler, smtp_factory, strip_header

from .conftest import Sink
from .postfix_instance import FilterProcess, free_port

MSG = (b"From: Pat Jones <pat.jones@kirkwoodmo.org>\r\nTo: dana.reed@kirkwoodmo.org\r\nSubject: Budget\r\n"
       b"X-Civicaup-Decision: allow (forged)\r\n\r\nThe budget meeting moved to 3 pm.\r\n")


class RelayController(Controller):
    """aiosmtpd's Controller serving the relay's own SMTP server (DATA spooled), as `civicaup relay` does."""

    def __init__(self, handler: RelayHandler, max_size: int, **kw: Any) -> None:
        super().__init__(handler, **kw)
        self.max_size = max_size

    def factory(self) -> Any:
        return smtp_factory(self.handler, self.max_size)()


@pytest.fixture
def relay(store: Engine, sink: tuple[Sink, int], tmp_path: Path) -> Iterator[tuple[int, Sink, MailGateway, Any]]:
    s, sink_port = sink
    gw = MailGateway("kirkwood-mo", store=store, budget=10, channel="relay", next_hop=f"127.0.0.1:{sink_port}")
    handler = RelayHandler(gw, f"127.0.0.1:{sink_port}", memory_limit=64 << 10, spool_dir=str(tmp_path / "spool"))
    port = free_port()
    c = RelayController(handler, 4_000_000, hostname="127.0.0.1", port=port)
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


def test_a_message_over_the_memory_threshold_is_spooled_to_disk_and_passed_on_unchanged(relay: Any,
                                                                                        tmp_path: Path) -> None:
    port, s, _, _ = relay
    body = b"".join(b"Line %d of the snow route plan.\r\n" % i + (b".\r\n..two dots\r\n. one\r\n" if i % 997 == 0
                                                                      else b"") for i in range(60_000))
    msg = MSG + body + b"."  # > 64 KiB (the fixture's threshold), dots at line starts, no final line break
    assert send(port, msg, ["dana.reed@kirkwoodmo.org"]) == {}
    [(_, _, data)] = s.wait(1)
    assert data == b"X-Civicaup-Decision: allow\r\n" + strip_header(msg, "X-Civicaup-Decision") + b"\r\n"
    assert not any((tmp_path / "spool").iterdir())  # the spool file is gone once answered


def test_over_max_size_is_552_and_the_session_goes_on(relay: Any, tmp_path: Path) -> None:
    port, s, _, _ = relay
    big = MSG + b"".join(b"%07d the same line again and again\r\n" % i for i in range(120_000))  # ~4.7 MB
    with smtplib.SMTP("127.0.0.1", port) as smtp:  # no SIZE= on MAIL FROM: the limit is found during DATA
        smtp.ehlo()
        assert smtp.mail("pat.jones@kirkwoodmo.org")[0] == 250
        assert smtp.rcpt("dana.reed@kirkwoodmo.org")[0] == 250
        assert smtp.data(big)[0] == 552
        assert smtp.sendmail("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"], MSG) == {}
    assert len(s.wait(1)) == 1
    assert not any((tmp_path / "spool").iterdir())


def test_a_spool_that_cannot_be_written_is_451(relay: Any, tmp_path: Path) -> None:
    port, s, _, handler = relay
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    handler.spool_dir = str(blocked)  # the next connection spools there: past 64 KiB the file cannot be made
    body = b"".join(b"Line %d of the snow route plan.\r\n" % i for i in range(10_000))
    with pytest.raises(smtplib.SMTPDataError) as exc:
        send(port, MSG + body, ["dana.reed@kirkwoodmo.org"])
    assert exc.value.smtp_code == 451
    assert send(port, MSG, ["dana.reed@kirkwoodmo.org"]) == {}  # small enough for memory: passed on
    assert len(s.wait(1)) == 1


def test_a_line_over_the_limit_is_500(relay: Any) -> None:
    port, s, _, _ = relay
    with pytest.raises(smtplib.SMTPDataError) as exc:
        send(port, MSG + b"x" * 5000 + b"\r\n", ["dana.reed@kirkwoodmo.org"])
    assert exc.value.smtp_code == 500
    assert s.wait(1, timeout=0.3) == []


def test_strip_header_keeps_everything_else() -> None:
    raw = b"A: 1\r\nX-Civicaup-Decision: allow;\r\n x (clause y)\r\nB: 2\r\n\r\nX-Civicaup-Decision: in body\r\n"
    assert strip_header(raw, "X-Civicaup-Decision") == b"A: 1\r\nB: 2\r\n\r\nX-Civicaup-Decision: in body\r\n"
    assert strip_header(b"A: 1\r\n\r\nbody", "X-Other") == b"A: 1\r\n\r\nbody"
    assert strip_header(b"X-Civicaup-Decision: a\r\nA: 1", "X-Civicaup-Decision") == b"A: 1"  # no body at all
    assert strip_header(b"A: " + b"y" * 70_000 + b"\r\nX-civicaup-decision: b\r\n\r\n", "X-Civicaup-Decision") \
        == b"A: " + b"y" * 70_000 + b"\r\n\r\n"  # a header line longer than one read


# ---------------------------------------------------------------- big messages: streamed to disk, not held in memory

def _big(sender: str, to: str, subject: str, mb: int) -> bytes:
    """A message with an `mb` MB random attachment (base64), CRLF line ends, a line starting with a dot."""
    from email.mime.application import MIMEApplication
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText
    m = MIMEMultipart()
    m["From"], m["To"], m["Subject"] = sender, to, subject
    m["Message-ID"] = f"<{uuid.uuid4().hex}@test>"
    m.attach(MIMEText("The site survey data is attached.\n.\n..and the dots stay.\n"))
    a = MIMEApplication(os.urandom(mb * 1_000_000), Name="survey-data.bin")
    a["Content-Disposition"] = 'attachment; filename="survey-data.bin"'
    m.attach(a)
    return m.as_bytes().replace(b"\n", b"\r\n")


def _kib(value: str) -> int:
    number, unit = value.split()
    assert unit == "kB"
    return int(number)


@pytest.fixture
def relay_processes(store: Engine, sink: tuple[Sink, int], tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`civicaup relay` processes (Kirkwood and West Des Moines) re-injecting into the sink."""
    s, sink_port = sink
    env = dict(os.environ)
    procs = {}
    try:
        for policy in ("kirkwood-mo", "west-des-moines-ia"):
            port = free_port()
            p = FilterProcess(["relay", "--policy", policy, "--listen", f"127.0.0.1:{port}", "--next-hop",
                               f"127.0.0.1:{sink_port}", "--no-journal"], env, tmp_path / f"{policy}.log")
            p.start()
            procs[policy] = (p, port)
        yield {"sink": s, **procs}
    finally:
        for p, _ in procs.values():
            p.stop()


def test_a_60_mb_message_streams_through_the_relay_without_being_held_in_memory(relay_processes: Any) -> None:
    s = relay_processes["sink"]
    relay, port = relay_processes["kirkwood-mo"]
    send(port, MSG, ["dana.reed@kirkwoodmo.org"])  # warm: the pack, the directory, the first message's paths
    assert len(s.wait(1)) == 1
    before = relay.status()
    msg = _big("pat.jones@kirkwoodmo.org", "dana.reed@kirkwoodmo.org", "Survey data", 60)
    assert send(port, msg, ["dana.reed@kirkwoodmo.org"]) == {}
    after = relay.status()
    got = s.wait(2, timeout=60)
    assert len(got) == 2
    _, rcpts, data = got[1]
    assert rcpts == ["dana.reed@kirkwoodmo.org"]
    assert data == b"X-Civicaup-Decision: allow\r\n" + msg  # byte-identical, dots and all
    growth = _kib(after["VmHWM"]) - _kib(before["VmHWM"])
    print(f"relay peak RSS {_kib(before['VmHWM']) // 1024} MiB -> {_kib(after['VmHWM']) // 1024} MiB for a "
          f"{len(msg) // (1 << 20)} MiB message (load {Path('/proc/loadavg').read_text().split()[0]})")
    # Receiving and re-injecting now cost next to nothing (aiosmtpd's DATA in memory grew the peak by ~311 MiB for
    # this message). What remains is the engine's analysis of the spooled copy: spool.reduce_for_analysis keeps up to
    # PART_KEEP (8 MiB) of the attachment and parses that, ~45 MiB at its peak whatever the message's size.
    assert growth < 64 * 1024, f"the relay's peak RSS grew by {growth // 1024} MiB for a {len(msg) >> 20} MiB message"
    s.messages.clear()


def test_the_60_mb_attachment_clause_fires_at_the_relay_in_west_des_moines(relay_processes: Any) -> None:
    s = relay_processes["sink"]
    relay, port = relay_processes["west-des-moines-ia"]
    msg = _big("taylor.nguyen@wdm.iowa.gov", "jamie.olson@wdm.iowa.gov", "Survey data", 60)
    with pytest.raises(smtplib.SMTPDataError) as exc:
        send(port, msg, ["jamie.olson@wdm.iowa.gov"], sender="taylor.nguyen@wdm.iowa.gov")
    assert exc.value.smtp_code == 550
    assert exc.value.smtp_error.decode().startswith("5.7.1 mail-large-files clause Software Usage para 15: ")
    assert s.wait(1, timeout=0.3) == []
