"""Structured logs: one JSON object a line with time, level, logger, event and the call's extra fields; body-like
fields dropped and long strings cut; and the long-running parts, run at debug level with messages whose bodies
carry a unique marker, never write that marker anywhere."""
from __future__ import annotations

import io
import json
import logging
import re
import smtplib
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from civicaup.operations import logs
from tests.mail.miltertools import FakeMTA
from tests.mail.postfix_instance import free_port

from .parts import Running, make_install

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Put the root logger and the held-down library loggers back as they were."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in logs.QUIET}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, lv in quiet.items():
        logging.getLogger(name).setLevel(lv)
    logging.captureWarnings(False)


def _lines(buf: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


def test_json_lines_carry_the_extra_fields_and_never_a_body(root_logging: None) -> None:
    buf = io.StringIO()
    logs.configure("json", "debug", stream=buf)
    log = logging.getLogger("civicaup.test")
    log.info("held %s", "message 7", extra={"policy": "kirkwood-mo", "channel": "milter", "rule": "mail-all-users",
                                             "clause": "d", "queue_id": "4Xq1", "body": "Dear all, SECRET",
                                             "raw": b"SECRET", "note": "x" * 5000, "sizes": [1, 2]})
    log.debug("a %s", "y" * 3000)
    try:
        raise ValueError("cannot parse: " + "z" * 2000)
    except ValueError:
        log.exception("failed", extra={"queue_id": "4Xq2"})
    first, second, third = _lines(buf)
    assert ISO_UTC.match(first["time"]) and first["level"] == "info" and first["logger"] == "civicaup.test"
    assert first["event"] == "held message 7" and isinstance(first["pid"], int)
    assert {k: first[k] for k in ("policy", "channel", "rule", "clause", "queue_id", "sizes")} == {
        "policy": "kirkwood-mo", "channel": "milter", "rule": "mail-all-users", "clause": "d", "queue_id": "4Xq1",
        "sizes": [1, 2]}
    assert "body" not in first and "raw" not in first and "SECRET" not in buf.getvalue()
    assert first["note"].startswith("x" * logs.MAX_FIELD) and len(first["note"]) < logs.MAX_FIELD + 60
    assert second["level"] == "debug" and len(second["event"]) < logs.MAX_FIELD + 60
    assert third["level"] == "error" and third["exc_type"] == "ValueError" and third["queue_id"] == "4Xq2"
    assert "raise ValueError" in third["traceback"] and len(third["exc_message"]) < logs.MAX_FIELD + 60


def test_text_format_and_levels(root_logging: None) -> None:
    buf = io.StringIO()
    logs.configure("text", "warning", stream=buf)
    log = logging.getLogger("civicaup.test")
    log.info("not shown")
    log.warning("relay: next hop down", extra={"policy": "kirkwood-mo", "text": "SECRET body"})
    logging.getLogger("mail.log").warning("aiosmtpd warning")
    out = buf.getvalue()
    assert "not shown" not in out and "SECRET" not in out
    assert re.search(r"^\S+Z WARNING civicaup\.test\[\d+\] relay: next hop down \(policy=kirkwood-mo\)$", out, re.M)
    assert "aiosmtpd warning" in out
    with pytest.raises(ValueError):
        logs.configure("xml")
    with pytest.raises(ValueError):
        logs.configure("json", "loud")


def test_debug_logging_in_aiosmtpd_stays_off(root_logging: None) -> None:
    buf = io.StringIO()
    logs.configure("json", "debug", stream=buf)
    logging.getLogger("mail.log").debug("DATA readline: %s", "the body line")
    logging.getLogger("mail.log").info("peer sender: someone@example.org")
    assert buf.getvalue() == ""


class Sink:
    """An SMTP next hop on loopback that keeps messages, or refuses them when ``refuse`` is set."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.refuse = ""
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return self.refuse
        with self.lock:
            self.received.append(envelope.original_content)
        return "250 2.0.0 OK"


def test_the_running_parts_log_json_and_no_message_text(tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller

    marker = f"MARKER-{uuid.uuid4().hex}"
    inst = make_install(tmp_path, index=False)
    debug = {"CIVICAUP_LOG__LEVEL": "debug", "CIVICAUP_LOG__FORMAT": "json"}
    sink = Sink()
    sink_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink_port)
    controller.start()
    parts: list[Running] = []
    try:
        relay = Running(inst, "relay", "--policy", "kirkwood-mo", "--listen", "127.0.0.1:0",
                        "--next-hop", f"127.0.0.1:{sink_port}", "--no-journal", ready="listening on", env=debug)
        parts.append(relay)
        milter = Running(inst, "milter", "--policy", "kirkwood-mo", "--listen", "127.0.0.1:0", "--no-journal",
                         ready="listening on", env=debug)
        parts.append(milter)
        serve = Running(inst, "serve", "--policy", "kirkwood-mo", "--listen", "127.0.0.1:0",
                        ready="civicaup serving", env=debug)
        parts.append(serve)

        body = f"Hello Dana,\r\nthe code word is {marker}.\r\n".encode()
        with smtplib.SMTP("127.0.0.1", relay.port(), timeout=60) as smtp:
            smtp.sendmail("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"],
                          b"From: pat.jones@kirkwoodmo.org\r\nSubject: lunch\r\n\r\n" + body)
            smtp.sendmail("pat.jones@kirkwoodmo.org", ["all-users@kirkwoodmo.org"],  # held for approval
                          b"From: pat.jones@kirkwoodmo.org\r\nTo: all-users@kirkwoodmo.org\r\nSubject: Picnic\r\n\r\n"
                          + body)
            sink.refuse = "451 4.3.0 try later"
            with pytest.raises(smtplib.SMTPResponseException):
                smtp.sendmail("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"],
                              b"From: pat.jones@kirkwoodmo.org\r\nSubject: again\r\n\r\n" + body)
        assert len(sink.received) == 1 and marker.encode() in sink.received[0]

        mta = FakeMTA(("127.0.0.1", milter.port()))
        headers = [("From", "pat.jones@kirkwoodmo.org"), ("To", "dana.reed@kirkwoodmo.org"), ("Subject", "hi")]
        assert mta.message("pat.jones@kirkwoodmo.org", ["dana.reed@kirkwoodmo.org"], headers, body)[-1] == (b"c", b"")
        mta.close()
    finally:
        codes = [p.stop() for p in parts]
        controller.stop()
    assert codes == [0, 0, 0], [p.stderr[-2000:] for p in parts]

    records = []
    for part in parts:
        assert marker not in part.stderr and marker not in part.first_line
        for line in part.stderr.splitlines():
            if line.strip():
                rec = json.loads(line)  # every line is one JSON object
                assert ISO_UTC.match(rec["time"]) and rec["level"] in ("debug", "info", "warning", "error")
                assert isinstance(rec["logger"], str) and isinstance(rec["event"], str)
                records.append(rec)
    assert any(r["logger"] == "civicaup.mail" and "hold as quarantine" in r["event"] for r in records), records
    assert any(r["logger"] == "civicaup.relay" and r["level"] == "warning" and r.get("policy") == "kirkwood-mo"
               for r in records), records
    assert any(r["logger"].startswith("uvicorn") for r in records), records
